/**
 * The example trial a newcomer can query at once: a deterministic, XGBoost-like training run
 * (metrics, feature importance, average SHAP, hyperparameters) written by our own smdebug writer.
 */
import { promises as fs } from "node:fs";
import { confinedDir, confinement } from "../storage/confine.js";
import path from "node:path";
import type { TensorInput } from "../format/tensor.js";
import { TrialWriter, type CollectionSpec } from "./trial-writer.js";

export const EXAMPLE_TRIAL_PATH = "trials/example";
const ROUNDS = 100;
const FEATURES = ["f0", "f1", "f2", "f3", "f4", "f5", "f6", "f7"];
const IMPORTANCE_TYPES = ["weight", "gain", "cover", "total_gain", "total_cover"];

/** mulberry32: a tiny seeded PRNG, so every install writes the same example. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const saveEvery = { save_interval: 1, save_steps: [], start_step: 0, end_step: null };
const COLLECTIONS: CollectionSpec[] = [
  { name: "metrics", includeRegex: ["^[a-zA-z]+-[a-zA-z0-9]+$"], saveConfig: saveEvery, saveHistogram: false },
  { name: "losses", includeRegex: ["^[a-zA-z]+-.+(?<!(auc|map))$"], saveConfig: saveEvery, saveHistogram: false },
  { name: "feature_importance", includeRegex: ["^feature_importance/.*"], saveConfig: saveEvery, saveHistogram: false },
  { name: "average_shap", includeRegex: ["^average_shap/.*[^/bias]$"], saveConfig: saveEvery, saveHistogram: false },
  { name: "hyperparameters", includeRegex: ["^hyperparameters/.*$"], saveConfig: { ...saveEvery, save_steps: [0], save_interval: 1_000_000 } },
];

export function exampleRound(round: number, random: () => number): TensorInput[] {
  const scalar = (name: string, dtype: "float32" | "float64", v: number): TensorInput => ({ name, dtype, shape: [1], values: [v] });
  const decay = Math.exp(-round / 9);
  const noise = () => (random() - 0.5) * 0.02;
  const tensors: TensorInput[] = [
    scalar("train-rmse", "float64", 1.55 + 6.5 * decay - 0.003 * round + noise()),
    // Validation bottoms out around round 45, then overfits slowly: LossNotDecreasing has something to find.
    scalar("validation-rmse", "float64", 2.05 + 6.2 * decay + 0.00012 * Math.max(0, round - 45) ** 2 + noise()),
  ];
  const base = FEATURES.map((_, i) => (i === 0 ? 0 : 1 + ((i * 37) % 11)));
  for (const type of IMPORTANCE_TYPES) {
    const raw = base.map((b, i) => (b === 0 ? 0 : b * (1 + 0.4 * Math.sin(round / 15 + i + type.length)) + random() * 0.3));
    const sum = raw.reduce((a, b) => a + b, 0);
    FEATURES.forEach((f, i) => raw[i] > 0 && tensors.push(scalar(`feature_importance/${type}/${f}`, "float64", raw[i] / sum)));
  }
  FEATURES.forEach((f, i) => {
    if (i === 0) return tensors.push(scalar(`average_shap/${f}`, "float32", 0));
    tensors.push(scalar(`average_shap/${f}`, "float32", (i % 2 ? 1 : -1) * (0.02 * i) * (1 - decay) + noise() / 10));
  });
  if (round === 0) {
    tensors.push({ name: "hyperparameters/max_depth", dtype: "int64", shape: [1], values: [5] });
    tensors.push({ name: "hyperparameters/eta", dtype: "float64", shape: [1], values: [0.2] });
    tensors.push({ name: "hyperparameters/objective", dtype: "string", shape: [1], strings: ["reg:squarederror"] });
    tensors.push({ name: "hyperparameters/num_round", dtype: "int64", shape: [1], values: [ROUNDS] });
  }
  return tensors;
}

/**
 * Writes the example trial unless something is already there (a link included: it is left alone,
 * and reading it is confined like any trial). Throws FORBIDDEN_PATH when the trials folder leads
 * out of the data directory: the example is never written elsewhere.
 */
export async function ensureExampleTrial(dataDir: string): Promise<boolean> {
  const dir = path.join(dataDir, EXAMPLE_TRIAL_PATH);
  if (await fs.lstat(dir).then(() => true, () => false)) return false;
  const parent = path.dirname(dir);
  await fs.mkdir(parent, { recursive: true });
  const c = confinement(dataDir);
  await confinedDir(parent, c, { baseDir: dataDir, key: path.relative(dataDir, parent).split(path.sep).join("/"), where: "the example trial" });
  // Written beside, then renamed: a half-written example never looks like a trial.
  const tmp = `${dir}.tmp-${process.pid}`;
  await fs.rm(tmp, { recursive: true, force: true });
  const writer = new TrialWriter(tmp);
  const random = prng(20260726);
  const start = Date.UTC(2026, 6, 26, 12, 0, 0) / 1000;
  for (let round = 0; round < ROUNDS; round++) {
    await writer.writeStep(round, exampleRound(round, random), { wallTime: start + round * 0.25 });
    if (round === 0) await writer.writeCollections(COLLECTIONS);
  }
  await writer.end();
  await fs.rename(tmp, dir);
  return true;
}
