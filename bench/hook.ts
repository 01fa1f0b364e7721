/**
 * Debugger-hook overhead (issue: local backend): the lab's training with and without the hook,
 * same data and rounds, in one process (a warm-up run first), medians of several runs.
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { trainInProcess, type TrainSpec } from "../dist/src/jobs/xgboost/train-worker.js";
import { median } from "./trials.js";

const DATA = path.resolve(__dirname, "../../shared/fixtures/data");
const LAB_HP = { max_depth: "5", eta: "0.2", gamma: "4", min_child_weight: "6", subsample: "0.7", objective: "reg:squarederror", num_round: "51" };
const ALL = ["metrics", "feature_importance", "average_shap", "full_shap", "predictions", "labels", "trees", "hyperparameters"];

function spec(collections: string[] | null, interval: number): TrainSpec {
  const dir = mkdtempSync(path.join(os.tmpdir(), "trialgraph-hook-bench-"));
  return {
    jobName: "bench",
    train: { path: path.join(DATA, "abalone.train.libsvm"), format: "libsvm", displayName: "train", confineTo: DATA },
    validation: { path: path.join(DATA, "abalone.validation.libsvm"), format: "libsvm", displayName: "validation", confineTo: DATA },
    hyperparameters: LAB_HP,
    debugHookConfig: collections ? { collectionConfigs: collections.map((name) => ({ name, parameters: { save_interval: String(interval) } })) } : null,
    trialDir: collections ? path.join(dir, "debug-output") : null,
    modelPath: null,
    workDir: path.join(dir, "work"),
  } as TrainSpec;
}

export async function runHookBench(runs = Math.max(11, Number(process.env.BENCH_RUNS ?? 11))): Promise<Record<string, string | number>[]> {
  const cases: [string, string[] | null, number][] = [
    ["bare training (no hook)", null, 5],
    ["hook: metrics + feature_importance, save_interval 5", ["metrics", "feature_importance"], 5],
    ["hook: + average_shap, save_interval 5 (the lab)", ["metrics", "feature_importance", "average_shap"], 5],
    ["hook: every collection, save_interval 1", ALL, 1],
  ];
  await trainInProcess(spec(null, 5), { hook: false }); // warm-up: library load, page cache
  // Cases take turns in every repeat, so drift on the machine hits them all alike.
  const timings = cases.map(() => [] as { totalMs: number; boostMs: number; hookMs: number }[]);
  for (let i = 0; i < runs; i++) {
    for (const [c, [, collections, interval]] of cases.entries()) {
      const s = spec(collections, interval);
      timings[c].push((await trainInProcess(s, { hook: collections !== null })).timings);
      rmSync(path.dirname(s.workDir), { recursive: true, force: true });
    }
  }
  const rows: Record<string, string | number>[] = [];
  const roundsOf = (c: number) => median(timings[c].map((t) => t.boostMs + t.hookMs));
  // Rounds = boosting + hook: data loading is the same work with or without the hook.
  const bare = roundsOf(0);
  const ratio = (c: number) => median(timings[c].map((t) => t.hookMs / t.boostMs));
  cases.forEach(([label, collections], c) => {
    const rounds = roundsOf(c);
    rows.push({
      case: label,
      "total ms (median)": median(timings[c].map((t) => t.totalMs)).toFixed(0),
      "boosting ms": median(timings[c].map((t) => t.boostMs)).toFixed(0),
      "hook ms": median(timings[c].map((t) => t.hookMs)).toFixed(0),
      "rounds ms (boost + hook)": rounds.toFixed(0),
      "overhead vs bare rounds": collections ? `${(((rounds - bare) / bare) * 100).toFixed(1)} %` : "",
      // Steadier than a difference of two noisy medians: the hook's own time over the boosting of the same run.
      "hook / boosting, same run (median)": collections ? `${(ratio(c) * 100).toFixed(1)} %` : "",
      // Issue 16's target is for the lab's metrics and feature importance every 5 rounds.
      target: c === 1 ? "≤ 5 %" : "",
      result: c === 1 ? (ratio(c) <= 0.05 ? "pass" : "FAIL") : "",
    });
  });
  return rows;
}
