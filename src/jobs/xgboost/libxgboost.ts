/**
 * libxgboost through its C API (koffi FFI): discovery, bindings and a small typed wrapper.
 *
 * Discovery order: env TRIALGRAPH_XGBOOST_LIB, an explicit path given by the caller, the system
 * library path (Debian's libxgboost0 installs libxgboost.so.0), then a pip-installed xgboost's lib/.
 * Every native call is synchronous; callers run training off the main thread (train-worker.ts).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import koffi, { type LibraryHandle } from "koffi";
import { TrialgraphError } from "../../errors.js";

export const XGBOOST_INSTALL_HINT =
  "Install libxgboost (Debian/Ubuntu: `apt-get install libxgboost0`, or `pip install xgboost==1.7.*`) " +
  "or point TRIALGRAPH_XGBOOST_LIB at libxgboost.so.";

type Handle = bigint;
type NativeFn = (...args: unknown[]) => any;

interface Bindings {
  version: { major: number; minor: number; patch: number };
  XGBGetLastError: NativeFn;
  XGBSetGlobalConfig: NativeFn;
  XGDMatrixCreateFromCSREx: NativeFn;
  XGDMatrixCreateFromFile: NativeFn;
  XGDMatrixCreateFromMat: NativeFn;
  XGDMatrixSetFloatInfo: NativeFn;
  XGDMatrixGetFloatInfo: NativeFn;
  XGDMatrixFree: NativeFn;
  XGDMatrixNumRow: NativeFn;
  XGDMatrixNumCol: NativeFn;
  XGBoosterCreate: NativeFn;
  XGBoosterFree: NativeFn;
  XGBoosterSetParam: NativeFn;
  XGBoosterGetNumFeature: NativeFn;
  XGBoosterUpdateOneIter: NativeFn;
  XGBoosterEvalOneIter: NativeFn;
  XGBoosterPredictFromDMatrix: NativeFn;
  XGBoosterSaveModel: NativeFn;
  XGBoosterSlice: NativeFn;
  XGBoosterSaveJsonConfig: NativeFn;
  XGBoosterDumpModelEx: NativeFn;
  XGBoosterFeatureScore: NativeFn;
}

export interface LoadedXGBoost {
  path: string;
  version: string;
  lib: XGBoostLib;
}

/** Candidate library paths, in the order they are tried. */
export function libraryCandidates(explicitPath?: string | null): string[] {
  const out: string[] = [];
  const env = process.env.TRIALGRAPH_XGBOOST_LIB;
  if (env) out.push(env);
  if (explicitPath) out.push(explicitPath);
  // Bare sonames go through the dynamic loader's search (ld.so.cache, LD_LIBRARY_PATH).
  out.push("libxgboost.so.0", "libxgboost.so");
  for (const dir of ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/local/lib", "/usr/lib", "/opt/homebrew/lib"]) {
    out.push(path.join(dir, "libxgboost.so.0"), path.join(dir, "libxgboost.so"), path.join(dir, "libxgboost.dylib"));
  }
  out.push(...pipLibraryCandidates());
  return [...new Set(out)];
}

/** xgboost/lib/libxgboost.so inside the usual Python site-packages folders. */
function pipLibraryCandidates(): string[] {
  const roots: string[] = [];
  const prefixes = [process.env.VIRTUAL_ENV, process.env.CONDA_PREFIX, "/usr/local", "/usr", path.join(os.homedir(), ".local")]
    .filter((p): p is string => !!p);
  for (const prefix of prefixes) {
    const libDir = path.join(prefix, "lib");
    let entries: string[] = [];
    try {
      entries = fs.readdirSync(libDir).filter((e) => /^python3(\.\d+)?$/.test(e));
    } catch {
      continue;
    }
    for (const py of entries) {
      for (const sub of ["site-packages", "dist-packages"]) roots.push(path.join(libDir, py, sub, "xgboost", "lib"));
    }
  }
  const out: string[] = [];
  for (const root of roots) {
    for (const name of ["libxgboost.so", "libxgboost.dylib"]) {
      const p = path.join(root, name);
      if (fs.existsSync(p)) out.push(p);
    }
  }
  return out;
}

const cache = new Map<string, LoadedXGBoost>();

/**
 * Loads libxgboost, or throws TrialgraphError XGBOOST_UNAVAILABLE saying how to install it.
 * With `explicitPath` only that path (and the env override) is tried.
 */
export function loadXGBoost(explicitPath?: string | null): LoadedXGBoost {
  const configured = process.env.TRIALGRAPH_XGBOOST_LIB || explicitPath || null;
  const key = `${process.env.TRIALGRAPH_XGBOOST_LIB ?? ""}|${explicitPath ?? ""}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const candidates = configured
    ? [...new Set([process.env.TRIALGRAPH_XGBOOST_LIB, explicitPath].filter((p): p is string => !!p))]
    : libraryCandidates();
  const errors: { path: string; reason: string }[] = [];
  for (const candidate of candidates) {
    let native: LibraryHandle;
    try {
      native = koffi.load(candidate);
    } catch (e) {
      errors.push({ path: candidate, reason: (e as Error).message.split("\n")[0].replace(/^Failed to load shared library: /, "") });
      continue;
    }
    try {
      const bindings = bind(native);
      const loaded: LoadedXGBoost = {
        path: candidate,
        version: `${bindings.version.major}.${bindings.version.minor}.${bindings.version.patch}`,
        lib: new XGBoostLib(bindings),
      };
      cache.set(key, loaded);
      return loaded;
    } catch (e) {
      errors.push({ path: candidate, reason: `not a usable libxgboost: ${(e as Error).message}` });
    }
  }
  if (configured && errors.length === 1) {
    // One configured path: the message names it once and says why it failed.
    const { path: p, reason } = errors[0];
    const name = p === process.env.TRIALGRAPH_XGBOOST_LIB ? `TRIALGRAPH_XGBOOST_LIB=${p}` : `libxgboost at ${p}`;
    throw new TrialgraphError("XGBOOST_UNAVAILABLE",
      `${name} cannot be loaded (${reason}): point it at libxgboost.so, or unset it to use the system's (Debian/Ubuntu: \`apt-get install libxgboost0\`)`);
  }
  throw new TrialgraphError("XGBOOST_UNAVAILABLE", `libxgboost was not found or could not be loaded. ${XGBOOST_INSTALL_HINT}`, {
    tried: errors.slice(0, 8).map((e) => `${e.path}: ${e.reason}`),
  });
}

function bind(lib: LibraryHandle): Bindings {
  const f = (proto: string) => lib.func(proto) as unknown as NativeFn;
  const XGBoostVersion = f("void XGBoostVersion(_Out_ int *major, _Out_ int *minor, _Out_ int *patch)");
  const major = [0], minor = [0], patch = [0];
  XGBoostVersion(major, minor, patch);
  if (major[0] < 1 || (major[0] === 1 && minor[0] < 5)) {
    throw new Error(`version ${major[0]}.${minor[0]}.${patch[0]} is too old (need >= 1.5)`);
  }
  return {
    version: { major: major[0], minor: minor[0], patch: patch[0] },
    XGBGetLastError: f("const char *XGBGetLastError()"),
    XGBSetGlobalConfig: f("int XGBSetGlobalConfig(const char *config)"),
    XGDMatrixCreateFromCSREx: f(
      "int XGDMatrixCreateFromCSREx(const size_t *indptr, const uint32_t *indices, const float *data, size_t nindptr, size_t nelem, size_t num_col, _Out_ void **out)",
    ),
    XGDMatrixCreateFromFile: f("int XGDMatrixCreateFromFile(const char *fname, int silent, _Out_ void **out)"),
    XGDMatrixCreateFromMat: f("int XGDMatrixCreateFromMat(const float *data, uint64_t nrow, uint64_t ncol, float missing, _Out_ void **out)"),
    XGDMatrixSetFloatInfo: f("int XGDMatrixSetFloatInfo(void *handle, const char *field, const float *array, uint64_t len)"),
    XGDMatrixGetFloatInfo: f("int XGDMatrixGetFloatInfo(void *handle, const char *field, _Out_ uint64_t *len, _Out_ void **out)"),
    XGDMatrixFree: f("int XGDMatrixFree(void *handle)"),
    XGDMatrixNumRow: f("int XGDMatrixNumRow(void *handle, _Out_ uint64_t *out)"),
    XGDMatrixNumCol: f("int XGDMatrixNumCol(void *handle, _Out_ uint64_t *out)"),
    XGBoosterCreate: f("int XGBoosterCreate(void **dmats, uint64_t len, _Out_ void **out)"),
    XGBoosterFree: f("int XGBoosterFree(void *handle)"),
    XGBoosterSetParam: f("int XGBoosterSetParam(void *handle, const char *name, const char *value)"),
    XGBoosterGetNumFeature: f("int XGBoosterGetNumFeature(void *handle, _Out_ uint64_t *out)"),
    XGBoosterUpdateOneIter: f("int XGBoosterUpdateOneIter(void *handle, int iter, void *dtrain)"),
    XGBoosterEvalOneIter: f(
      "int XGBoosterEvalOneIter(void *handle, int iter, void **dmats, const char **evnames, uint64_t len, _Out_ const char **out)",
    ),
    XGBoosterPredictFromDMatrix: f(
      "int XGBoosterPredictFromDMatrix(void *handle, void *dmat, const char *config, _Out_ void **out_shape, _Out_ uint64_t *out_dim, _Out_ void **out_result)",
    ),
    XGBoosterSaveModel: f("int XGBoosterSaveModel(void *handle, const char *fname)"),
    XGBoosterSlice: f("int XGBoosterSlice(void *handle, int begin_layer, int end_layer, int step, _Out_ void **out)"),
    XGBoosterSaveJsonConfig: f("int XGBoosterSaveJsonConfig(void *handle, _Out_ uint64_t *out_len, _Out_ const char **out_str)"),
    XGBoosterDumpModelEx: f(
      "int XGBoosterDumpModelEx(void *handle, const char *fmap, int with_stats, const char *format, _Out_ uint64_t *out_len, _Out_ void **out_dump)",
    ),
    XGBoosterFeatureScore: f(
      "int XGBoosterFeatureScore(void *handle, const char *config, _Out_ uint64_t *n_features, _Out_ void **features, _Out_ uint64_t *out_dim, _Out_ void **out_shape, _Out_ void **scores)",
    ),
  };
}

const toNum = (v: number | bigint): number => (typeof v === "bigint" ? Number(v) : v);

/** Copies `count` elements of native memory into a fresh typed array (XGBoost reuses its buffers). */
function copyFloat32(ptr: Handle, count: number): Float32Array {
  if (count === 0) return new Float32Array(0);
  return new Float32Array(koffi.view(ptr, count * 4).slice(0));
}

function decodeU64Array(ptr: Handle, count: number): number[] {
  if (count === 0) return [];
  return Array.from(new BigUint64Array(koffi.view(ptr, count * 8).slice(0)), (v) => Number(v));
}

function decodeStringArray(ptr: Handle, count: number): string[] {
  if (count === 0) return [];
  // An array of `count` C-string pointers starting at ptr.
  return koffi.decode(ptr, koffi.array("const char *", count, "Array")) as string[];
}

export interface CsrMatrix {
  /** Row offsets, length rows + 1. */
  indptr: Float64Array | number[];
  indices: Uint32Array;
  values: Float32Array;
  numCol: number;
}

export interface DenseMatrix {
  /** Row-major, NaN = missing. */
  values: Float32Array;
  rows: number;
  cols: number;
}

export interface PredictOptions {
  /** 0 value, 1 margin, 2 contribs (SHAP), 3 approx contribs, 4 interactions, 6 leaf. */
  type?: number;
  iterationBegin?: number;
  iterationEnd?: number;
  strictShape?: boolean;
}

export interface Prediction {
  shape: number[];
  values: Float32Array;
}

export interface FeatureScores {
  features: string[];
  /** One score per feature (gbtree); float32 values widened. */
  scores: number[];
}

export class XGBoostLib {
  constructor(private readonly b: Bindings) {}

  get version(): string {
    return `${this.b.version.major}.${this.b.version.minor}.${this.b.version.patch}`;
  }

  lastError(): string {
    return (this.b.XGBGetLastError() as string | null) ?? "unknown libxgboost error";
  }

  /** Throws the library's last error message when rc != 0. */
  check(rc: number, what: string): void {
    if (rc !== 0) throw new XGBoostCallError(`${what}: ${this.lastError()}`);
  }

  setGlobalConfig(config: Record<string, unknown>): void {
    this.check(this.b.XGBSetGlobalConfig(JSON.stringify(config)), "XGBSetGlobalConfig");
  }

  dmatrixFromCsr(m: CsrMatrix, label?: Float32Array): DMatrix {
    const rows = m.indptr.length - 1;
    const indptr = new BigUint64Array(m.indptr.length);
    for (let i = 0; i < m.indptr.length; i++) indptr[i] = BigInt(m.indptr[i]);
    const out: Handle[] = [0n];
    this.check(
      this.b.XGDMatrixCreateFromCSREx(indptr, m.indices, m.values, m.indptr.length, m.values.length, m.numCol, out),
      "XGDMatrixCreateFromCSREx",
    );
    const d = new DMatrix(this, this.b, out[0]);
    if (label) d.setFloatInfo("label", label);
    if (d.numRow() !== rows) throw new XGBoostCallError(`DMatrix has ${d.numRow()} rows, expected ${rows}`);
    return d;
  }

  /**
   * XGBoost's own text parser (dmlc), as SageMaker's container and `xgb.DMatrix(path)` use it. Its float
   * parsing is not correctly rounded (some values differ from strtof by 1 ulp), so this is the way to get
   * bit-identical training. `uri` is e.g. "/data/train.libsvm?format=libsvm".
   */
  dmatrixFromUri(uri: string): DMatrix {
    const out: Handle[] = [0n];
    this.check(this.b.XGDMatrixCreateFromFile(uri, 1, out), "XGDMatrixCreateFromFile");
    return new DMatrix(this, this.b, out[0]);
  }

  dmatrixFromDense(m: DenseMatrix, label?: Float32Array): DMatrix {
    const out: Handle[] = [0n];
    this.check(this.b.XGDMatrixCreateFromMat(m.values, m.rows, m.cols, Number.NaN, out), "XGDMatrixCreateFromMat");
    const d = new DMatrix(this, this.b, out[0]);
    if (label) d.setFloatInfo("label", label);
    return d;
  }

  createBooster(cache: DMatrix[]): Booster {
    const out: Handle[] = [0n];
    const handles = new BigUint64Array(cache.map((d) => d.handle));
    this.check(this.b.XGBoosterCreate(handles, cache.length, out), "XGBoosterCreate");
    return new Booster(this, this.b, out[0]);
  }
}

export class XGBoostCallError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "XGBoostCallError";
  }
}

export class DMatrix {
  private freed = false;
  constructor(private readonly lib: XGBoostLib, private readonly b: Bindings, readonly handle: Handle) {}

  setFloatInfo(field: "label" | "weight" | "base_margin", values: Float32Array): void {
    this.lib.check(this.b.XGDMatrixSetFloatInfo(this.handle, field, values, values.length), "XGDMatrixSetFloatInfo");
  }

  getFloatInfo(field: "label" | "weight" | "base_margin"): Float32Array {
    const len = [0], ptr: Handle[] = [0n];
    this.lib.check(this.b.XGDMatrixGetFloatInfo(this.handle, field, len, ptr), "XGDMatrixGetFloatInfo");
    return copyFloat32(ptr[0], toNum(len[0]));
  }

  numRow(): number {
    const out = [0];
    this.lib.check(this.b.XGDMatrixNumRow(this.handle, out), "XGDMatrixNumRow");
    return toNum(out[0]);
  }

  numCol(): number {
    const out = [0];
    this.lib.check(this.b.XGDMatrixNumCol(this.handle, out), "XGDMatrixNumCol");
    return toNum(out[0]);
  }

  free(): void {
    if (this.freed) return;
    this.freed = true;
    this.b.XGDMatrixFree(this.handle);
  }
}

export class Booster {
  private freed = false;
  constructor(private readonly lib: XGBoostLib, private readonly b: Bindings, readonly handle: Handle) {}

  setParam(name: string, value: string): void {
    this.lib.check(this.b.XGBoosterSetParam(this.handle, name, value), `XGBoosterSetParam(${name})`);
  }

  numFeatures(): number {
    const out = [0];
    this.lib.check(this.b.XGBoosterGetNumFeature(this.handle, out), "XGBoosterGetNumFeature");
    return toNum(out[0]);
  }

  updateOneIter(iteration: number, dtrain: DMatrix): void {
    this.lib.check(this.b.XGBoosterUpdateOneIter(this.handle, iteration, dtrain.handle), "XGBoosterUpdateOneIter");
  }

  /** The raw evaluation line, e.g. "[3]\ttrain-rmse:2.1\tvalidation-rmse:2.3". */
  evalOneIter(iteration: number, sets: { dmatrix: DMatrix; name: string }[]): string {
    const out: (string | null)[] = [null];
    const handles = new BigUint64Array(sets.map((s) => s.dmatrix.handle));
    this.lib.check(
      this.b.XGBoosterEvalOneIter(this.handle, iteration, handles, sets.map((s) => s.name), sets.length, out),
      "XGBoosterEvalOneIter",
    );
    return out[0] ?? "";
  }

  predict(dmat: DMatrix, opts: PredictOptions = {}): Prediction {
    const config = JSON.stringify({
      type: opts.type ?? 0,
      training: false,
      iteration_begin: opts.iterationBegin ?? 0,
      iteration_end: opts.iterationEnd ?? 0,
      strict_shape: opts.strictShape ?? false,
    });
    const shapePtr: Handle[] = [0n], dim = [0], result: Handle[] = [0n];
    this.lib.check(this.b.XGBoosterPredictFromDMatrix(this.handle, dmat.handle, config, shapePtr, dim, result), "XGBoosterPredictFromDMatrix");
    const shape = decodeU64Array(shapePtr[0], toNum(dim[0]));
    const count = shape.reduce((a, n) => a * n, 1);
    return { shape, values: copyFloat32(result[0], count) };
  }

  /** The boosting rounds [begin, end) as a booster of their own (XGBoosterSlice: trees copied, learner parameters shared). */
  slice(begin: number, end: number): Booster {
    const out: Handle[] = [0n];
    this.lib.check(this.b.XGBoosterSlice(this.handle, begin, end, 1, out), "XGBoosterSlice");
    return new Booster(this.lib, this.b, out[0]);
  }

  /** The learner's configuration (XGBoosterSaveJsonConfig), parsed. */
  jsonConfig(): Record<string, unknown> {
    const len = [0], out: (string | null)[] = [null];
    this.lib.check(this.b.XGBoosterSaveJsonConfig(this.handle, len, out), "XGBoosterSaveJsonConfig");
    return JSON.parse(out[0] ?? "{}") as Record<string, unknown>;
  }

  /** XGBoosterFeatureScore, e.g. importanceType "gain" (what Booster.get_score returns in Python). */
  featureScore(importanceType: string): FeatureScores {
    const config = JSON.stringify({ importance_type: importanceType, feature_map: "" });
    const nFeatures = [0], features: Handle[] = [0n], dim = [0], shapePtr: Handle[] = [0n], scores: Handle[] = [0n];
    this.lib.check(
      this.b.XGBoosterFeatureScore(this.handle, config, nFeatures, features, dim, shapePtr, scores),
      "XGBoosterFeatureScore",
    );
    const n = toNum(nFeatures[0]);
    const shape = decodeU64Array(shapePtr[0], toNum(dim[0]));
    const count = shape.reduce((a, s) => a * s, 1);
    const names = decodeStringArray(features[0], n);
    const values = copyFloat32(scores[0], count);
    if (count !== n) throw new XGBoostCallError(`feature score shape ${JSON.stringify(shape)} is not one score per feature`);
    return { features: names, scores: Array.from(values) };
  }

  /** One text dump per tree (XGBoosterDumpModelEx, format "text"). */
  dump(withStats: boolean): string[] {
    const len = [0], arr: Handle[] = [0n];
    this.lib.check(this.b.XGBoosterDumpModelEx(this.handle, "", withStats ? 1 : 0, "text", len, arr), "XGBoosterDumpModelEx");
    return decodeStringArray(arr[0], toNum(len[0]));
  }

  /** The file extension picks the format: .json gives JSON, .ubj UBJSON, otherwise the legacy binary. */
  saveModel(file: string): void {
    this.lib.check(this.b.XGBoosterSaveModel(this.handle, file), "XGBoosterSaveModel");
  }

  free(): void {
    if (this.freed) return;
    this.freed = true;
    this.b.XGBoosterFree(this.handle);
  }
}
