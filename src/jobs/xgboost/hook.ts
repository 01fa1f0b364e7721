/**
 * smdebug's XGBoost hook (spec §7), re-implemented: the same collections, save configs, tensor names,
 * dtypes and values as `smdebug.xgboost.Hook` built from a SageMaker DebugHookConfig, so a local job
 * writes the trial SageMaker would have written.
 */
import { TrialgraphError } from "../../errors.js";
import type { CollectionInfo, SaveConfigMode } from "../../format/collections-file.js";
import { compilePythonRegex, type PatternMatcher } from "../../format/python-regex.js";
import type { Mode, TensorInput } from "../../format/tensor.js";
import type { DebugHookConfigSpec, ParameterValue } from "../types.js";
import type { HyperValue } from "./hyperparameters.js";
import type { Booster, DMatrix } from "./libxgboost.js";
import type { ShapContributions } from "./shap.js";

export type { SaveConfigMode };

const MODES: readonly Mode[] = ["TRAIN", "EVAL", "PREDICT", "GLOBAL"];
const MODE_PREFIX: Record<Mode, string> = { TRAIN: "train.", EVAL: "eval.", PREDICT: "predict.", GLOBAL: "global." };

/** smdebug core default (SaveConfigMode with nothing given). */
const CORE_DEFAULT_INTERVAL = 500;
/** The XGBoost hook's default save interval (hook-level config only). */
export const XGBOOST_DEFAULT_INTERVAL = 10;

/** Built-in collections in the order smdebug's collections file lists them (see the abalone fixture). */
export const XGBOOST_COLLECTIONS: readonly { name: string; regex: string[]; histogram: boolean }[] = [
  { name: "default", regex: [], histogram: true },
  { name: "trees", regex: ["^trees/.*"], histogram: true },
  { name: "all", regex: [], histogram: true },
  { name: "hyperparameters", regex: ["^hyperparameters/.*$"], histogram: true },
  { name: "average_shap", regex: ["^average_shap/.*[^/bias]$"], histogram: false },
  { name: "full_shap", regex: ["^full_shap/.*[^/bias]$"], histogram: true },
  { name: "feature_importance", regex: ["^feature_importance/.*"], histogram: false },
  { name: "predictions", regex: ["^predictions$"], histogram: true },
  { name: "labels", regex: ["^labels$"], histogram: true },
  { name: "metrics", regex: ["^[a-zA-z]+-[a-zA-z0-9]+$"], histogram: false },
  { name: "losses", regex: ["^[a-zA-z]+-.+(?<!(auc|map))$"], histogram: false },
];
const BUILTIN = new Set(XGBOOST_COLLECTIONS.map((c) => c.name));
const INCREASING_METRICS = /^[a-zA-z]+-(auc|map)$/;
const IMPORTANCE_TYPES = ["weight", "gain", "cover", "total_gain", "total_cover"] as const;

export function shouldSaveStep(c: SaveConfigMode, step: number): boolean {
  if (c.save_steps.length > 0 && c.save_steps.includes(step)) return true;
  const inRange = step >= c.start_step && (c.end_step === null || step < c.end_step);
  return inRange && step % c.save_interval === 0;
}

export interface HookCollection {
  name: string;
  includeRegex: string[];
  regexes: PatternMatcher[];
  /** Names matched so far (what the collections file lists when it is exported). */
  tensorNames: Set<string>;
  saveConfig: Record<Mode, SaveConfigMode>;
  saveHistogram: boolean;
}

export interface HookPlan {
  collections: HookCollection[];
  /** Names of the collections being saved. */
  included: Set<string>;
}

type RawModes = Record<Mode, Partial<Record<keyof SaveConfigMode, unknown>>>;

const bad = (field: string, message: string) => new TrialgraphError("BAD_USER_INPUT", message, { field });

function parseIntParam(value: unknown, field: string): number {
  const text = String(value).trim();
  if (!/^[+-]?\d+$/.test(text)) throw bad(field, `${field} must be an integer, got '${value}'`);
  return Number(text);
}

/** smdebug's parse_save_config_modes_dict: plain keys apply to every mode, `<mode>.` keys override. */
function parseModes(params: Record<string, ParameterValue>, base: RawModes | null, field: string): RawModes {
  const pick = (prefix: string) => {
    const out: Partial<Record<keyof SaveConfigMode, unknown>> = {};
    for (const [k, v] of Object.entries(params)) {
      if (!k.startsWith(prefix)) continue;
      const key = k.slice(prefix.length);
      if (key === "save_interval" || key === "start_step" || key === "end_step") out[key] = v;
      else if (key === "save_steps") {
        out.save_steps = String(v).split(",").map((s) => parseIntParam(s, `${field}.${k}`));
      }
    }
    return out;
  };
  const plain = pick("");
  const result = {} as RawModes;
  for (const m of MODES) {
    result[m] = { ...(base ? base[m] : {}), ...plain, ...pick(MODE_PREFIX[m]) };
  }
  return result;
}

function toSaveConfig(raw: Partial<Record<keyof SaveConfigMode, unknown>>, defaultInterval: number, field: string): SaveConfigMode {
  const interval = raw.save_interval === undefined ? defaultInterval : parseIntParam(raw.save_interval, `${field}.save_interval`);
  if (interval <= 0) throw bad(`${field}.save_interval`, `save_interval must be a positive integer, got ${interval}`);
  const start = raw.start_step === undefined ? 0 : parseIntParam(raw.start_step, `${field}.start_step`);
  const end = raw.end_step === undefined || raw.end_step === null ? null : parseIntParam(raw.end_step, `${field}.end_step`);
  const steps = (raw.save_steps as number[] | undefined) ?? [];
  return { save_interval: interval, save_steps: steps, start_step: start, end_step: end };
}

function parseBool(value: ParameterValue | undefined, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value === "boolean") return value;
  const s = String(value);
  if (s === "true" || s === "True") return true;
  if (s === "false" || s === "False") return false;
  return fallback;
}

const splitList = (s: ParameterValue) => String(s).split(",").map((x) => x.trim());

function compile(regex: string, field: string): PatternMatcher {
  try {
    return compilePythonRegex(regex);
  } catch (e) {
    throw bad(field, `include_regex '${regex}' is not a valid regular expression: ${(e as Error).message}`);
  }
}

/**
 * What `Hook.create_from_json_file` builds from a DebugHookConfig (spec §7.4): the collections, which
 * are saved, and each one's save config (collection params > hook params > XGBoost default 10 for the
 * hook level > core default 500 for listed collections). Throws BAD_USER_INPUT on malformed values.
 */
export function planHook(config: DebugHookConfigSpec | null | undefined): HookPlan {
  const hookParams = config?.hookParameters ?? {};
  const hookModes = parseModes(hookParams, null, "debugHookConfig.hookParameters");
  const hookSave = {} as Record<Mode, SaveConfigMode>;
  for (const m of MODES) hookSave[m] = toSaveConfig(hookModes[m], XGBOOST_DEFAULT_INTERVAL, "debugHookConfig.hookParameters");

  const byName = new Map<string, HookCollection>();
  for (const c of XGBOOST_COLLECTIONS) {
    byName.set(c.name, {
      name: c.name, includeRegex: [...c.regex], regexes: [], tensorNames: new Set(), saveConfig: hookSave,
      saveHistogram: c.histogram,
    });
  }
  const included = new Set<string>(["metrics"]);
  if (hookParams.include_regex !== undefined) {
    byName.get("default")!.includeRegex.push(...splitList(hookParams.include_regex));
    included.add("default");
  }
  if (parseBool(hookParams.save_all, false)) {
    byName.get("all")!.includeRegex.push(".*");
    included.add("all");
  }
  const configs = config?.collectionConfigs ?? [];
  configs.forEach((cc, i) => {
    const field = `debugHookConfig.collectionConfigs[${i}]`;
    if (!cc.name) throw bad(`${field}.name`, "collection name is required");
    const params = cc.parameters ?? {};
    let coll = byName.get(cc.name);
    if (!coll) {
      coll = { name: cc.name, includeRegex: [], regexes: [], tensorNames: new Set(), saveConfig: hookSave, saveHistogram: true };
      byName.set(cc.name, coll);
    }
    const modes = parseModes(params, hookModes, `${field}.parameters`);
    const save = {} as Record<Mode, SaveConfigMode>;
    for (const m of MODES) save[m] = toSaveConfig(modes[m], CORE_DEFAULT_INTERVAL, `${field}.parameters`);
    coll.saveConfig = save;
    if (params.include_regex !== undefined) coll.includeRegex.push(...splitList(params.include_regex));
    if (params.save_histogram !== undefined) coll.saveHistogram = parseBool(params.save_histogram, true);
    included.add(cc.name);
  });
  for (const c of byName.values()) {
    if (!BUILTIN.has(c.name) && c.includeRegex.length === 0) {
      throw bad("debugHookConfig.collectionConfigs", `collection '${c.name}' is not an XGBoost collection and has no include_regex`);
    }
    // smdebug forces these off for scalar collections whatever the parameters say.
    if (["metrics", "losses", "feature_importance", "average_shap"].includes(c.name)) c.saveHistogram = false;
    c.regexes = c.includeRegex.map((r) => compile(r, "debugHookConfig"));
  }
  return { collections: [...byName.values()], included };
}

/** Where the hook writes (TrialWriter satisfies this through a thin adapter). */
export interface TrialSink {
  writeStep(step: number, tensors: TensorInput[]): Promise<void>;
  writeCollections(collections: CollectionInfo[], numWorkers: number): Promise<void>;
  end(): Promise<void>;
}

export interface HookData {
  /** SHAP values of hook.train_data as the model grows (null without training data). */
  shap: ShapContributions | null;
  /** hook.validation_data: predictions and labels. */
  validation: DMatrix | null;
  validationLabels: Float32Array | null;
  hyperparameters: Record<string, HyperValue>;
  /** gbtree/dart have feature importances and trees; gblinear does not. */
  booster: string;
}

/** One (eval set, metric) value of a round, in XGBoost's eval order. */
export interface EvalResult {
  name: string;
  value: number;
}

/** "[3]\ttrain-rmse:2.1\tvalidation-rmse:2.3" -> [{train-rmse, 2.1}, ...] (xgboost's _parse_eval_str). */
export function parseEvalLine(line: string): EvalResult[] {
  return line.trim().split(/\s+/).slice(1).map((part) => {
    const colon = part.lastIndexOf(":");
    return { name: part.slice(0, colon), value: Number(part.slice(colon + 1)) };
  });
}

export class XGBoostHook {
  private readonly toSaveCache = new Map<string, HookCollection[]>();
  private readonly savedCollections: HookCollection[];
  private lastSavedStep: number | null = null;
  private exported = false;
  /** Steps written so far. */
  readonly savedSteps: number[] = [];
  private writes: Promise<void> = Promise.resolve();

  constructor(private readonly plan: HookPlan, private readonly sink: TrialSink, private readonly data: HookData) {
    this.savedCollections = plan.collections.filter((c) => plan.included.has("all") || plan.included.has(c.name));
  }

  /** XGBoost's after_iteration. Returns the tensors written (empty when the round is not saved). */
  /**
   * Computes this round's tensors now (they depend on the model as it is) and queues their files:
   * writes run in order while later rounds train, so file I/O is not added to training time.
   * `written` resolves once this step's files exist.
   */
  afterIteration(model: Booster, epoch: number, evals: EvalResult[]): { tensors: TensorInput[]; written: Promise<void> } {
    if (this.lastSavedStep !== null && !this.exported) {
      const exporting = this.exportCollections();
      this.enqueue(() => exporting);
    }
    const forStep = new Set(this.savedCollections.filter((c) => shouldSaveStep(c.saveConfig.GLOBAL, epoch)));
    if (forStep.size === 0) return { tensors: [], written: Promise.resolve() };
    const is = (name: string) => [...forStep].some((c) => c.name === name);
    const out: TensorInput[] = [];
    const save = (t: TensorInput) => {
      const colls = this.collectionsOf(t.name);
      if (!colls.some((c) => forStep.has(c))) return;
      const size = t.shape.reduce((a, n) => a * n, 1);
      if (size > 0) out.push(t);
    };

    if (is("hyperparameters")) {
      for (const [name, v] of Object.entries(this.data.hyperparameters)) save(hyperTensor(`hyperparameters/${name}`, v));
    }
    if (is("metrics")) for (const e of evals) save(scalar64(e.name, e.value));
    if (is("losses") && !is("metrics")) {
      for (const e of evals) if (!INCREASING_METRICS.test(e.name)) save(scalar64(e.name, e.value));
    }
    if (is("predictions") && this.data.validation) {
      const p = model.predict(this.data.validation);
      save({ name: "predictions", dtype: "float32", shape: p.shape, values: p.values });
    }
    if (is("labels") && this.data.validation && this.data.validationLabels) {
      const l = this.data.validationLabels;
      save({ name: "labels", dtype: "float32", shape: [l.length], values: l });
    }
    const treeBooster = this.data.booster === "gbtree" || this.data.booster === "dart";
    if (is("feature_importance") && treeBooster) {
      for (const type of IMPORTANCE_TYPES) {
        const { features, scores } = model.featureScore(type);
        // Python's sum(): float64, left to right, in the order get_score returns.
        let total = 0;
        for (const s of scores) total += s;
        features.forEach((f, i) => save(scalar64(`feature_importance/${type}/${f}`, scores[i] / total)));
      }
    }
    if (is("trees") && treeBooster) {
      for (const t of treeTensors(model.dump(true), epoch)) save(t);
    }
    let shap: { shape: number[]; values: Float32Array } | null = null;
    const names = () => featureNames(model).concat("bias");
    const shapData = this.data.shap;
    if (is("full_shap") && shapData) {
      shap ??= shapData.of(model, epoch + 1);
      for (const f of names()) save({ name: `full_shap/${f}`, dtype: "float32", shape: shap.shape, values: shap.values });
    }
    if (is("average_shap") && shapData) {
      shap ??= shapData.of(model, epoch + 1);
      const avg = meanOverLeadingAxes(shap.shape, shap.values);
      names().forEach((f, i) => save({ name: `average_shap/${f}`, dtype: "float32", shape: [1], values: [avg[i]] }));
    }
    this.lastSavedStep = epoch;
    // A step whose collections yield nothing (e.g. labels without validation data) leaves no files.
    if (out.length === 0) return { tensors: out, written: Promise.resolve() };
    this.savedSteps.push(epoch);
    return { tensors: out, written: this.enqueue(() => this.sink.writeStep(epoch, out)) };
  }

  /** Queued writes not finished yet. */
  pendingWrites = 0;

  /** Resolves when every queued write has run (failures surface at close()). */
  settled(): Promise<void> {
    return this.writes.then(() => undefined, () => undefined);
  }

  /** Writes happen one after another, in the order they were asked for. */
  private enqueue(write: () => Promise<void>): Promise<void> {
    this.pendingWrites++;
    const next = this.writes.then(write).finally(() => this.pendingWrites--);
    // A failed write fails every later one, and close() reports it.
    this.writes = next;
    return next;
  }

  /** Hook close: pending writes, the collections file if it was never exported, then training_job_end.ts. */
  async close(): Promise<void> {
    await this.writes;
    if (!this.exported) await this.exportCollections();
    await this.sink.end();
  }

  /** The collections file content, as smdebug would export it now. */
  collectionsInfo(): CollectionInfo[] {
    return this.plan.collections.map((c) => ({
      name: c.name,
      includeRegex: c.includeRegex,
      tensorNames: [...c.tensorNames].sort(),
      saveConfig: { ...c.saveConfig },
      reductionConfig: { save_raw_tensor: true, reductions: "", save_shape: false },
      saveHistogram: c.saveHistogram,
    }));
  }

  /** The content is taken now (the names known so far, as smdebug exports it); the write may follow. */
  private exportCollections(): Promise<void> {
    this.exported = true;
    const info = this.collectionsInfo();
    return this.sink.writeCollections(info, 1);
  }

  /** smdebug's _get_collections_with_tensor: matched once per name, and the match is remembered. */
  private collectionsOf(name: string): HookCollection[] {
    let hit = this.toSaveCache.get(name);
    if (!hit) {
      hit = [];
      for (const c of this.savedCollections) {
        if (c.tensorNames.has(name)) hit.push(c);
        else if (c.regexes.some((r) => r.test(name))) {
          c.tensorNames.add(name);
          hit.push(c);
        }
      }
      this.toSaveCache.set(name, hit);
    }
    return hit;
  }
}

/** Booster feature names: f0..f{n-1} (local data has no names). */
function featureNames(model: Booster): string[] {
  return Array.from({ length: model.numFeatures() }, (_, i) => `f${i}`);
}

const scalar64 = (name: string, value: number): TensorInput => ({ name, dtype: "float64", shape: [1], values: [value] });

function hyperTensor(name: string, v: HyperValue): TensorInput {
  switch (v.kind) {
    case "int": return { name, dtype: "int64", shape: [1], values: [v.value] };
    case "float": return { name, dtype: "float64", shape: [1], values: [v.value] };
    case "str": return { name, dtype: "string", shape: [1], strings: [v.value] };
    case "list": return { name, dtype: "string", shape: [v.value.length], strings: v.value };
  }
}

/**
 * numpy's float32 mean over every axis but the last: a float32 running sum per column, row after row,
 * then one float32 division (what `np.mean(shap, axis=(0..d-2))` computes for these shapes).
 */
export function meanOverLeadingAxes(shape: number[], values: Float32Array): Float32Array {
  const last = shape[shape.length - 1];
  const rows = values.length / last;
  const acc = new Float32Array(last);
  for (let r = 0; r < rows; r++) {
    const base = r * last;
    for (let c = 0; c < last; c++) acc[c] = Math.fround(acc[c] + values[base + c]);
  }
  for (let c = 0; c < last; c++) acc[c] = Math.fround(acc[c] / rows);
  return acc;
}

/**
 * smdebug's parse_tree_model for the tree whose dump index equals the round (its quirk with several
 * trees per round kept): one tensor per column, rows sorted by node id.
 */
export function treeTensors(dumps: string[], iteration: number): TensorInput[] {
  const tree = dumps[iteration];
  if (tree === undefined) return [];
  type Row = { node: number; feature: string; split: number; yes: string; no: string; missing: string; gain: number; cover: number; category: string };
  const rows: Row[] = [];
  const firstInt = (s: string) => Number(/\b\d+\b/.exec(s)?.[0] ?? Number.NaN);
  for (const line of tree.split("\n")) {
    if (line === "") continue;
    const arr = line.split("[");
    if (arr.length === 1) {
      const parse = arr[0].split(":");
      const stats = parse[1].split(/=|,/);
      rows.push({ node: firstInt(parse[0]), feature: "Leaf", split: Number.NaN, yes: "nan", no: "nan", missing: "nan",
        gain: Number(stats[1]), cover: Number(stats[3]), category: "nan" });
    } else {
      const fid = arr[1].split("]");
      let feature: string, split = Number.NaN, category = "nan";
      if (fid[0].includes("<")) {
        const parse = fid[0].split("<");
        feature = parse[0];
        split = Number(parse[1]);
      } else if (fid[0].includes(":{")) {
        const parse = fid[0].split(":");
        feature = parse[0];
        category = parse[1].slice(1, -1);
      } else {
        throw new Error(`failed to parse tree model text dump line: ${line}`);
      }
      const stats = fid[1].split(/=|,/);
      rows.push({ node: firstInt(arr[0]), feature, split, yes: `${iteration}-${stats[1]}`, no: `${iteration}-${stats[3]}`,
        missing: `${iteration}-${stats[5]}`, gain: Number(stats[7]), cover: Number(stats[9]), category });
    }
  }
  rows.sort((a, b) => a.node - b.node);
  const n = rows.length;
  const num = (name: string, dtype: "int64" | "float64", f: (r: Row) => number): TensorInput =>
    ({ name: `trees/${name}`, dtype, shape: [n], values: rows.map(f) });
  const str = (name: string, f: (r: Row) => string): TensorInput =>
    ({ name: `trees/${name}`, dtype: "string", shape: [n], strings: rows.map(f) });
  return [
    num("Tree", "int64", () => iteration),
    num("Node", "int64", (r) => r.node),
    str("ID", (r) => `${iteration}-${r.node}`),
    str("Feature", (r) => r.feature),
    num("Split", "float64", (r) => r.split),
    str("Yes", (r) => r.yes),
    str("No", (r) => r.no),
    str("Missing", (r) => r.missing),
    num("Gain", "float64", (r) => r.gain),
    num("Cover", "float64", (r) => r.cover),
    str("Category", (r) => r.category),
  ];
}
