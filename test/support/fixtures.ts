/** Paths to the shared, read-only fixtures (CI has ../shared beside the clone). */
import path from "node:path";
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from "node:fs";

export const FIXTURES = path.resolve(__dirname, "../../../shared/fixtures");
export const ABALONE_TRIAL = path.join(FIXTURES, "trials/abalone-eta0.2");
export const ABALONE_GOLDEN_FILE = path.join(FIXTURES, "golden/abalone-eta0.2.json");

export interface GoldenValue {
  dtype: string;
  shape: number[];
  value: unknown;
}
export interface GoldenTensor {
  steps: number[];
  steps_by_mode: Record<string, number[]>;
  workers_by_step: Record<string, string[]>;
  values: Record<string, GoldenValue>;
}
export interface Golden {
  tensor_names: string[];
  collections: { name: string; tensor_names: string[]; include_regex: string[]; tensor_names_api: string[] }[];
  tensor_names_by_step: Record<string, string[]>;
  steps: number[];
  steps_by_mode: Record<string, number[]>;
  modes: string[];
  mode_of_step: Record<string, [string, number]>;
  workers: string[];
  num_workers: number;
  last_complete_step: number;
  loaded_all_steps: boolean;
  training_ended: boolean;
  tensors: Record<string, GoldenTensor>;
}

export function loadGolden(): Golden {
  return JSON.parse(readFileSync(ABALONE_GOLDEN_FILE, "utf8"));
}

/** Golden floats: numbers, or "NaN"/"Infinity"/"-Infinity" strings. */
export function goldenNumber(v: unknown): number {
  if (v === "NaN") return NaN;
  if (v === "Infinity") return Infinity;
  if (v === "-Infinity") return -Infinity;
  return v as number;
}

export function flattenGolden(v: unknown): unknown[] {
  return Array.isArray(v) ? v.flatMap(flattenGolden) : [v];
}

export const PERF_ARCHIVE = path.join(FIXTURES, "trials/perf-synth.tar.xz");
/** Scratch space for unpacked fixtures (git-ignored). */
export const SCRATCH = path.resolve(__dirname, "../../.tmp");

/**
 * The perf-synth trial (587 tensors × 500 steps, 63 MB), unpacked once into the git-ignored
 * scratch folder; returns its folder. Copy or link it into a data directory to serve it.
 */
export function perfTrial(): string {
  const dir = path.join(SCRATCH, "fixtures", "perf-trial");
  if (!existsSync(path.join(dir, "training_job_end.ts"))) {
    const tmp = path.join(SCRATCH, "fixtures", `.unpack-${process.pid}`);
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    execFileSync("tar", ["-xJf", PERF_ARCHIVE, "-C", tmp]);
    rmSync(dir, { recursive: true, force: true });
    renameSync(path.join(tmp, "perf-trial"), dir);
    rmSync(tmp, { recursive: true, force: true });
  }
  return dir;
}

/** Copies the perf trial into `<dataDir>/<rel>` (hard links where the file system allows: fast, no space). */
export function installPerfTrial(dataDir: string, rel = "trials/perf"): string {
  const dest = path.join(dataDir, rel);
  mkdirSync(path.dirname(dest), { recursive: true });
  try {
    execFileSync("cp", ["-al", perfTrial(), dest]);
  } catch {
    cpSync(perfTrial(), dest, { recursive: true });
  }
  return rel;
}

export const DIGITS_TRIAL = path.join(FIXTURES, "trials/digits-mlp");
export const DIGITS_GOLDEN_FILE = path.join(FIXTURES, "golden/digits-mlp.json");

/** Statistics the digits-mlp golden gives for tensors of more than 64 elements (over finite elements). */
export interface DigitsStats {
  min: number;
  max: number;
  mean: number;
  sum: number;
  l2: number;
  nan: number;
  posinf: number;
  neginf: number;
  sha256: string;
}
export interface DigitsValue {
  dtype: string;
  shape: number[];
  mode: string;
  /** At most 64 elements; null where not finite. */
  data?: (number | null)[];
  stats?: DigitsStats;
  /** Gradients: reduction_value as smdebug returns it, by "min", "max", "mean", "abs_max", "l2". */
  reductions?: Record<string, number>;
}
export interface DigitsGolden {
  tensor_names: string[];
  workers: string[];
  steps: Record<string, number[]>;
  collections: Record<string, { include_regex: string[]; tensor_names: string[] }>;
  tensors: Record<string, { steps: number[]; mode_steps: Record<string, Record<string, number>>; values: Record<string, DigitsValue> }>;
}

export function loadDigitsGolden(): DigitsGolden {
  return JSON.parse(readFileSync(DIGITS_GOLDEN_FILE, "utf8"));
}
