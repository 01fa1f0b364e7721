/**
 * Statistics benchmark (issue: deep-learning trials): statistics over steps of every weight and
 * gradient of a trial with a few million elements per step, computed on the server, against reading
 * the raw values. The trial is an MLP's weights, biases and gradients (3.4 M float32 elements per
 * step, 16 TRAIN steps, 219 MB) written with the project's TrialWriter into bench/.data/dl-trial
 * (git-ignored). Each case runs in a fresh process (median of BENCH_RUNS, default 3).
 */
import { spawnSync } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import path from "node:path";
import { TrialWriter } from "../dist/src/trials/trial-writer.js";
import { BENCH_DATA, median } from "./trials.js";

export const DL_TRIAL = path.join(BENCH_DATA, "dl-trial");
export const DL_STEPS = 16;
/** [rows, cols] of each layer's weight; its bias has `rows` elements. */
export const DL_LAYERS: [number, number][] = [[1024, 1024], [512, 1024], [256, 512], [10, 256]];

/** Deterministic values of a plausible spread (no Math.random: every run writes the same trial). */
function fill(n: number, seed: number, scale: number): Float32Array {
  const out = new Float32Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = ((x >>> 0) / 4294967296 - 0.5) * scale;
  }
  return out;
}

export async function ensureDlTrial(): Promise<string> {
  if (existsSync(path.join(DL_TRIAL, "training_job_end.ts"))) return DL_TRIAL;
  rmSync(DL_TRIAL, { recursive: true, force: true });
  console.log(`writing ${DL_STEPS} steps of an MLP's weights and gradients into ${DL_TRIAL}`);
  const w = new TrialWriter(DL_TRIAL);
  await w.writeCollections([
    { name: "weights", includeRegex: ["^(?!gradient).*weight"] },
    { name: "biases", includeRegex: ["^(?!gradient).*bias"] },
    { name: "gradients", includeRegex: ["^gradient"] },
  ]);
  for (let step = 0; step < DL_STEPS; step++) {
    const tensors = DL_LAYERS.flatMap(([rows, cols], l) => {
      const name = `fc${l + 1}`;
      const seed = 1 + step * 97 + l * 13;
      return [
        { name: `${name}.weight`, dtype: "float32" as const, shape: [rows, cols], values: fill(rows * cols, seed, 0.1) },
        { name: `${name}.bias`, dtype: "float32" as const, shape: [rows], values: fill(rows, seed + 1, 0.1) },
        { name: `gradient/${name}.weight`, dtype: "float32" as const, shape: [rows, cols], values: fill(rows * cols, seed + 2, 1e-3) },
        { name: `gradient/${name}.bias`, dtype: "float32" as const, shape: [rows], values: fill(rows, seed + 3, 1e-3) },
      ];
    });
    await w.writeStep(step, tensors, { mode: "TRAIN", modeStep: step });
  }
  await w.end();
  return DL_TRIAL;
}

interface CaseResult { ms: number; warmMs?: number; rssMb: number; detail?: string }

function runCase(name: string): CaseResult {
  const r = spawnSync(process.execPath, ["--import", "tsx", path.join(__dirname, "stats-case.ts"), name], {
    encoding: "utf8", env: { ...process.env, NODE_NO_WARNINGS: "1", NODE_ENV: "production" }, maxBuffer: 64 << 20,
  });
  const line = r.stdout.trim().split("\n").pop() ?? "";
  try {
    return JSON.parse(line);
  } catch {
    throw new Error(`case ${name} failed: ${r.stderr.slice(-2000)}`);
  }
}

export async function runStatsBench(runs = Number(process.env.BENCH_RUNS ?? 3)): Promise<Record<string, string | number>[]> {
  await ensureDlTrial();
  const cases: [string, string][] = [
    ["raw", "read every raw value (trial.values, step by step)"],
    ["stats", "statistics over steps of every tensor (trial.statsSeries)"],
    ["graphql", "statsSeries of every tensor through GraphQL over HTTP"],
  ];
  const rows: Record<string, string | number>[] = [];
  const medians: Record<string, number> = {};
  for (const [id, label] of cases) {
    const results = Array.from({ length: runs }, () => runCase(id));
    const ms = median(results.map((r) => r.ms));
    medians[id] = ms;
    const warm = results[0].warmMs !== undefined ? median(results.map((r) => r.warmMs!)) : null;
    rows.push({
      case: label,
      "cold ms (median)": ms.toFixed(0),
      "warm ms (median)": warm === null ? "" : warm.toFixed(1),
      "vs raw": id === "raw" ? "1.0×" : `${(medians.raw / ms).toFixed(2)}×`,
      "peak RSS MB": Math.max(...results.map((r) => r.rssMb)).toFixed(0),
      detail: results[0].detail ?? "",
    });
  }
  return rows;
}
