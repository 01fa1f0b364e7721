/**
 * Built-in rules firing and not firing: on the shared abalone fixture (read in place) and on small
 * synthetic trials written by the project's TrialWriter and read back with openTrial.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { LocalSource } from "../src/storage/local-source.js";
import { openTrial, type Trial } from "../src/trials/trial.js";
import { TrialWriter, type CollectionSpec } from "../src/trials/trial-writer.js";
import type { Mode, TensorInput } from "../src/format/tensor.js";
import { MAX_RULE_FINDINGS, type RuleSpec } from "../src/jobs/types.js";
import { evaluateRules, type RuleEvaluationResult } from "../src/rules/index.js";
import { ABALONE_TRIAL, loadGolden } from "./support/fixtures.js";

const golden = loadGolden();

const XGB_COLLECTIONS: CollectionSpec[] = [
  { name: "metrics", includeRegex: ["^[a-zA-z]+-[a-zA-z0-9]+$"] },
  { name: "losses", includeRegex: ["^[a-zA-z]+-.+(?<!(auc|map))$"] },
  { name: "feature_importance", includeRegex: ["^feature_importance/.*"] },
  { name: "trees", includeRegex: ["^trees/.*"] },
  { name: "labels", includeRegex: ["^labels$"] },
  { name: "predictions", includeRegex: ["^predictions$"] },
];

type Tensors = Record<string, number | number[] | TensorInput>;
interface StepSpec {
  step: number;
  tensors: Tensors;
  mode?: Mode;
  modeStep?: number;
}

function toInput(name: string, v: number | number[] | TensorInput): TensorInput {
  if (typeof v === "number") return { name, dtype: "float64", shape: [1], values: [v] };
  if (Array.isArray(v)) return { name, dtype: "float64", shape: [v.length], values: v };
  return { ...v, name };
}

const dirs: string[] = [];
test.after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function writeTrial(steps: StepSpec[], opts: { collections?: CollectionSpec[]; end?: boolean } = {}): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "rules-builtin-"));
  dirs.push(dir);
  const w = new TrialWriter(dir);
  await w.writeCollections(opts.collections ?? XGB_COLLECTIONS);
  for (const s of steps) {
    await w.writeStep(s.step, Object.entries(s.tensors).map(([n, v]) => toInput(n, v)), { mode: s.mode, modeStep: s.modeStep });
  }
  if (opts.end ?? true) await w.end();
  return dir;
}

async function open(dir: string): Promise<Trial> {
  const t = await openTrial(new LocalSource(dir), dir);
  assert.ok(t, `a trial at ${dir}`);
  return t;
}

async function evalOne(dir: string, spec: RuleSpec, opener?: (p: string) => Promise<Trial | null>): Promise<RuleEvaluationResult> {
  const [r] = await evaluateRules(await open(dir), [spec], { otherTrialOpener: opener, webhookUrl: null });
  return r;
}

const range = (from: number, to: number, by: number) => Array.from({ length: Math.floor((to - from) / by) + 1 }, (_, i) => from + i * by);
const gold = (name: string, step: number) => (golden.tensors[name].values[String(step)].value as number[])[0];

// ------------------------------------------------------------------ LossNotDecreasing

test("lab: LossNotDecreasing {collection_names: metrics, num_steps: 10} fires first at step 30 on validation-rmse (eta 0.2 fixture)", async () => {
  const r = await evalOne(ABALONE_TRIAL, { builtin: "LossNotDecreasing", parameters: { collection_names: "metrics", num_steps: "10" } });
  // Independent check from the golden values: evaluations at 10, 20, 30, 40, 50 compare with 0, 10, 20, 30, 40.
  const expected: number[] = [];
  const firedAt = new Map<number, string[]>();
  for (const s of [10, 20, 30, 40, 50]) {
    for (const t of ["train-rmse", "validation-rmse"]) {
      const decrease = ((gold(t, s - 10) - gold(t, s)) / Math.abs(gold(t, s - 10))) * 100;
      if (decrease < 0.1) {
        if (!expected.includes(s)) expected.push(s);
        firedAt.set(s, [...(firedAt.get(s) ?? []), t]);
      }
    }
  }
  assert.deepEqual(expected, [30, 40, 50]);
  assert.equal(r.status, "ISSUES_FOUND");
  assert.deepEqual(r.triggeredSteps, expected);
  assert.equal(r.evaluatedSteps, golden.steps.length);
  assert.match(r.statusDetails!, /step 30/);
  assert.match(r.statusDetails!, /validation-rmse/);
  assert.doesNotMatch(r.statusDetails!, /train-rmse/);
  // The structured findings name the step and every tensor that fired there, without parsing statusDetails.
  assert.deepEqual(r.findings.map((f) => [f.step, f.mode, f.modeStep, f.tensorNames]), expected.map((s) => [s, "GLOBAL", s, firedAt.get(s)]));
  assert.deepEqual(r.findings[0].tensorNames, ["validation-rmse"]);
  assert.match(r.findings[0].message, /validation-rmse is 2\.26\d* at step 30 and was 2\.24\d* at step 20/);
});

test("LossNotDecreasing with defaults uses the losses collection and gives the same outcome on the fixture", async () => {
  const r = await evalOne(ABALONE_TRIAL, { builtin: "LossNotDecreasing" });
  assert.equal(r.status, "ISSUES_FOUND");
  assert.deepEqual(r.triggeredSteps, [30, 40, 50]);
});

test("lab: a steadily decreasing 'eta 0.05-like' trial does not fire LossNotDecreasing", async () => {
  const steps = range(0, 50, 5).map((s) => ({
    step: s,
    tensors: { "train-rmse": 8 * Math.exp(-0.05 * s) + 1.2, "validation-rmse": 8 * Math.exp(-0.05 * s) + 1.6 },
  }));
  const dir = await writeTrial(steps);
  const r = await evalOne(dir, { builtin: "LossNotDecreasing", parameters: { collection_names: "metrics", num_steps: "10" } });
  assert.equal(r.status, "NO_ISSUES_FOUND");
  assert.deepEqual(r.triggeredSteps, []);
  assert.equal(r.evaluatedSteps, 11);
});

test("LossNotDecreasing reproduces smdebug's old test: loss flat after 12 steps fires at 12 (compared with step 0)", async () => {
  const values = [0.3, 0.33, 0.31, 0.3, 0.28];
  const dir = await writeTrial(values.map((v, i) => ({ step: i * 4, tensors: { loss_0: v, loss_1: v } })), { collections: [] });
  const r = await evalOne(dir, { builtin: "LossNotDecreasing", parameters: { tensor_regex: "loss_" } });
  assert.equal(r.status, "ISSUES_FOUND");
  assert.deepEqual(r.triggeredSteps, [12]); // the next evaluation would be ≥ 22
});

test("LossNotDecreasing fires when the loss climbs above its best by more than increase_threshold_percent", async () => {
  // At the evaluation step 10 the loss is 10% below step 0 (a decrease), but 80% above its best (0.5 at step 5).
  const dir = await writeTrial([{ step: 0, tensors: { "train-rmse": 1 } }, { step: 5, tensors: { "train-rmse": 0.5 } }, { step: 10, tensors: { "train-rmse": 0.9 } }]);
  const fired = await evalOne(dir, { builtin: "LossNotDecreasing", parameters: { tensor_regex: "train-rmse" } });
  assert.equal(fired.status, "ISSUES_FOUND");
  assert.deepEqual(fired.triggeredSteps, [10]);
  assert.match(fired.statusDetails!, /above its best/);
  const tolerant = await evalOne(dir, { builtin: "LossNotDecreasing", parameters: { tensor_regex: "train-rmse", increase_threshold_percent: "90" } });
  assert.equal(tolerant.status, "NO_ISSUES_FOUND");
});

test("LossNotDecreasing mode selects the series: EVAL flat fires, TRAIN decreasing does not", async () => {
  const steps: StepSpec[] = [];
  let g = 0;
  for (let i = 0; i < 12; i++) {
    steps.push({ step: g++, mode: "TRAIN", modeStep: i, tensors: { loss: 1 / (i + 1) } });
    steps.push({ step: g++, mode: "EVAL", modeStep: i, tensors: { loss: 0.5 } });
  }
  const dir = await writeTrial(steps, { collections: [] });
  const evalMode = await evalOne(dir, { builtin: "LossNotDecreasing", parameters: { tensor_regex: "^loss$", mode: "EVAL", num_steps: "5" } });
  assert.equal(evalMode.status, "ISSUES_FOUND");
  // EVAL mode step 5 (compared with mode step 0) is global step 11.
  assert.equal(evalMode.triggeredSteps[0], 11);
  const trainMode = await evalOne(dir, { builtin: "LossNotDecreasing", parameters: { tensor_regex: "^loss$", mode: "TRAIN", num_steps: "5" } });
  assert.equal(trainMode.status, "NO_ISSUES_FOUND");
});

test("LossNotDecreasing ends in ERROR when no loss tensor is there at the end", async () => {
  const r = await evalOne(ABALONE_TRIAL, { builtin: "LossNotDecreasing", parameters: { collection_names: "nothing_here", use_losses_collection: "False" } });
  assert.equal(r.status, "ERROR");
  assert.match(r.statusDetails!, /required tensors absent/);
  assert.match(r.statusDetails!, /nothing_here/);
});

// ------------------------------------------------------------------ Overfit / Overtraining

test("Overfit fires on the fixture where (validation - train)/train first exceeds 0.1", async () => {
  const r = await evalOne(ABALONE_TRIAL, { builtin: "Overfit" });
  const expected = golden.steps.filter((s) => (gold("validation-rmse", s) - gold("train-rmse", s)) / gold("train-rmse", s) > 0.1);
  assert.equal(r.status, "ISSUES_FOUND");
  assert.deepEqual(r.triggeredSteps, expected);
  assert.equal(expected[0], 10);
});

test("Overfit does not fire when validation tracks training, and patience counts consecutive steps", async () => {
  const close = await writeTrial(range(0, 9, 1).map((s) => ({ step: s, tensors: { "train-rmse": 2 - s * 0.1, "validation-rmse": (2 - s * 0.1) * 1.05 } })));
  assert.equal((await evalOne(close, { builtin: "Overfit" })).status, "NO_ISSUES_FOUND");
  const ratios = [0, 0.2, 0.2, 0, 0.2, 0.2, 0.2, 0];
  const gaps = await writeTrial(ratios.map((q, s) => ({ step: s, tensors: { "train-logloss": 1, "validation-logloss": 1 + q } })));
  const r = await evalOne(gaps, { builtin: "Overfit", parameters: { patience: "3" } });
  assert.deepEqual(r.triggeredSteps, [6]);
  const late = await evalOne(gaps, { builtin: "Overfit", parameters: { start_step: "7" } });
  assert.equal(late.status, "NO_ISSUES_FOUND");
});

test("Overfit flips the sign for higher-is-better metrics (auc)", async () => {
  const dir = await writeTrial([{ step: 0, tensors: { "train-auc": 0.99, "validation-auc": 0.7 } }]);
  assert.equal((await evalOne(dir, { builtin: "Overfit" })).status, "ISSUES_FOUND");
  const fine = await writeTrial([{ step: 0, tensors: { "train-auc": 0.8, "validation-auc": 0.82 } }]);
  assert.equal((await evalOne(fine, { builtin: "Overfit" })).status, "NO_ISSUES_FOUND");
});

test("Overtraining: no fire on the fixture with defaults; patience_validation 3 fires at step 35", async () => {
  const dflt = await evalOne(ABALONE_TRIAL, { builtin: "Overtraining" });
  assert.equal(dflt.status, "NO_ISSUES_FOUND");
  const r = await evalOne(ABALONE_TRIAL, { builtin: "Overtraining", parameters: { patience_validation: "3" } });
  // validation-rmse is best at 20 (2.2495): 25, 30, 35 do not improve on it by more than 0.01.
  assert.equal(r.status, "ISSUES_FOUND");
  assert.equal(r.triggeredSteps[0], 35);
  assert.match(r.statusDetails!, /validation-rmse/);
});

test("Overtraining fires on a training loss that plateaus for patience_train steps", async () => {
  const train = [1, 0.5, 0.4, 0.399, 0.398, 0.397, 0.396, 0.395];
  const dir = await writeTrial(train.map((v, s) => ({ step: s, tensors: { "train-rmse": v, "validation-rmse": 2 - s * 0.1 } })));
  const r = await evalOne(dir, { builtin: "Overtraining", parameters: { patience_train: "4" } });
  assert.deepEqual(r.triggeredSteps, [6, 7]);
  assert.match(r.statusDetails!, /train-rmse/);
});

// ------------------------------------------------------------------ per-tensor rules

test("AllZero fires on average_shap/f0 (f0 is always missing) and not on the metrics", async () => {
  const r = await evalOne(ABALONE_TRIAL, { builtin: "AllZero", parameters: { tensor_regex: "average_shap/f0" } });
  assert.equal(r.status, "ISSUES_FOUND");
  assert.deepEqual(r.triggeredSteps, golden.steps);
  assert.deepEqual(r.findings.map((f) => f.tensorNames), golden.steps.map(() => ["average_shap/f0"]));
  // Every tensor that fired at a step is named, not only the first.
  const both = await evalOne(ABALONE_TRIAL, { builtin: "AllZero", parameters: { tensor_regex: "average_shap/f0, feature_importance/.*/f0" } });
  const zeroAt0 = golden.tensor_names.filter((n) => /^(average_shap\/f0|feature_importance\/.*\/f0)$/.test(n) && golden.tensors[n].values["0"]
    && (golden.tensors[n].values["0"].value as number[]).every((v) => v === 0));
  assert.deepEqual(both.findings[0].tensorNames.slice().sort(), zeroAt0.sort());
  const m = await evalOne(ABALONE_TRIAL, { builtin: "AllZero", parameters: { collection_names: "metrics, feature_importance" } });
  assert.equal(m.status, "NO_ISSUES_FOUND");
});

test("a rule that fires at every step keeps only the first MAX_RULE_FINDINGS findings, and counts every step", async () => {
  const dir = await writeTrial(range(0, 29, 1).map((s) => ({ step: s, tensors: { w: [0, 0] } })), { collections: [] });
  const r = await evalOne(dir, { builtin: "AllZero", parameters: { tensor_regex: "w" } });
  assert.deepEqual(r.triggeredSteps, range(0, 29, 1));
  assert.equal(MAX_RULE_FINDINGS, 20);
  assert.deepEqual(r.findings.map((f) => [f.step, f.tensorNames]), range(0, MAX_RULE_FINDINGS - 1, 1).map((s) => [s, ["w"]]));
});

test("AllZero threshold is a percentage of zero values", async () => {
  const dir = await writeTrial([{ step: 0, tensors: { w: [0, 0, 1, 1] } }], { collections: [] });
  assert.equal((await evalOne(dir, { builtin: "AllZero", parameters: { tensor_regex: "w" } })).status, "NO_ISSUES_FOUND");
  assert.equal((await evalOne(dir, { builtin: "AllZero", parameters: { tensor_regex: "w", threshold: "50" } })).status, "ISSUES_FOUND");
});

test("UnchangedTensor (smdebug's old test): ones at steps 0,1,2 fire at 2; fewer steps or changing values do not", async () => {
  const dir = await writeTrial([
    { step: 0, tensors: { a: [1, 1], b: [1] } },
    { step: 1, tensors: { a: [1, 1] } },
    { step: 2, tensors: { a: [1, 1] } },
    { step: 3, tensors: { c: [5] } },
  ], { collections: [] });
  const r = await evalOne(dir, { builtin: "UnchangedTensor", parameters: { tensor_regex: ".*" } });
  assert.deepEqual(r.triggeredSteps, [2]);
  const changing = await writeTrial(range(0, 4, 1).map((s) => ({ step: s, tensors: { a: [s, 1] } })), { collections: [] });
  assert.equal((await evalOne(changing, { builtin: "UnchangedTensor", parameters: { tensor_regex: "a" } })).status, "NO_ISSUES_FOUND");
  const tiny = await writeTrial(range(0, 3, 1).map((s) => ({ step: s, tensors: { a: [1 + s * 1e-9] } })), { collections: [] });
  assert.equal((await evalOne(tiny, { builtin: "UnchangedTensor", parameters: { tensor_regex: "a" } })).status, "ISSUES_FOUND");
  assert.equal((await evalOne(tiny, { builtin: "UnchangedTensor", parameters: { tensor_regex: "a", rtol: "0", atol: "0" } })).status, "NO_ISSUES_FOUND");
});

test("UnchangedTensor on the fixture: average_shap/f0 never changes, the metrics do", async () => {
  const r = await evalOne(ABALONE_TRIAL, { builtin: "UnchangedTensor", parameters: { tensor_regex: "average_shap/f0" } });
  assert.deepEqual(r.triggeredSteps, golden.steps.slice(2));
  const m = await evalOne(ABALONE_TRIAL, { builtin: "UnchangedTensor", parameters: { collection_names: "metrics" } });
  assert.equal(m.status, "NO_ISSUES_FOUND");
});

test("TensorVariance compares the population variance with the thresholds", async () => {
  const dir = await writeTrial([{ step: 0, tensors: { w: [1, 2, 3, 4] } }], { collections: [] }); // variance 1.25
  assert.equal((await evalOne(dir, { builtin: "TensorVariance", parameters: { tensor_regex: "w", max_threshold: "1" } })).status, "ISSUES_FOUND");
  assert.equal((await evalOne(dir, { builtin: "TensorVariance", parameters: { tensor_regex: "w", max_threshold: "2" } })).status, "NO_ISSUES_FOUND");
  assert.equal((await evalOne(dir, { builtin: "TensorVariance", parameters: { tensor_regex: "w", min_threshold: "1.3" } })).status, "ISSUES_FOUND");
  assert.equal((await evalOne(dir, { builtin: "TensorVariance", parameters: { tensor_regex: "w", min_threshold: "1.2" } })).status, "NO_ISSUES_FOUND");
});

test("SimilarAcrossRuns: the fixture against itself does not fire; a run that differs at step 2 fires there", async () => {
  const opener = async (p: string) => openTrial(new LocalSource(p), p);
  const same = await evalOne(ABALONE_TRIAL, { builtin: "SimilarAcrossRuns", parameters: { other_trials: ABALONE_TRIAL, collection_names: "metrics" } }, opener);
  assert.equal(same.status, "NO_ISSUES_FOUND");
  assert.equal(same.evaluatedSteps, golden.steps.length);
  const a = await writeTrial(range(0, 4, 1).map((s) => ({ step: s, tensors: { "train-rmse": 1 / (s + 1) } })));
  const b = await writeTrial(range(0, 4, 1).map((s) => ({ step: s, tensors: { "train-rmse": s === 2 ? 0.9 : 1 / (s + 1) } })));
  const r = await evalOne(a, { builtin: "SimilarAcrossRuns", parameters: { other_trial_0: b, tensor_regex: "rmse" } }, opener);
  assert.equal(r.status, "ISSUES_FOUND");
  assert.equal(r.triggeredSteps[0], 2);
  assert.match(r.statusDetails!, /train-rmse/);
});

// ------------------------------------------------------------------ classification

test("ClassImbalance (smdebug's old test): 990 zeros and 10 ones fire at step 3; balanced labels do not", async () => {
  const labels = [...new Array(990).fill(0), ...new Array(10).fill(1)];
  const dir = await writeTrial([{ step: 3, tensors: { labels, predictions: labels } }]);
  const r = await evalOne(dir, { builtin: "ClassImbalance" });
  assert.deepEqual(r.triggeredSteps, [3]);
  assert.match(r.statusDetails!, /ratio 99/);
  const balanced = Array.from({ length: 600 }, (_, i) => i % 2);
  const ok = await writeTrial([{ step: 0, tensors: { labels: balanced, predictions: balanced } }]);
  assert.equal((await evalOne(ok, { builtin: "ClassImbalance" })).status, "NO_ISSUES_FOUND");
});

test("ClassImbalance waits for `samples` labels and checks mispredictions (probabilities rounded, argmax for [N, K])", async () => {
  const labels = Array.from({ length: 300 }, (_, i) => i % 2);
  const probs = labels.map(() => 0.2); // always predicts class 0: class 1 is 100% mispredicted
  const dir = await writeTrial([0, 1, 2].map((s) => ({ step: s, tensors: { labels, predictions: probs } })));
  const r = await evalOne(dir, { builtin: "ClassImbalance" });
  assert.deepEqual(r.triggeredSteps, [1, 2]); // 600 labels counted from step 1 on
  assert.match(r.statusDetails!, /class 1/);
  const softprob: TensorInput = { name: "predictions", dtype: "float32", shape: [300, 2], values: labels.flatMap((y) => (y ? [0.1, 0.9] : [0.8, 0.2])) };
  const good = await writeTrial([{ step: 0, tensors: { labels, predictions: softprob } }, { step: 1, tensors: { labels, predictions: softprob } }]);
  assert.equal((await evalOne(good, { builtin: "ClassImbalance", parameters: { argmax: "True" } })).status, "NO_ISSUES_FOUND");
});

test("Confusion (smdebug's old test): y == y_hat passes; one wrong prediction or strict bounds fire", async () => {
  const y = range(0, 9, 1);
  const ok = await writeTrial([{ step: 0, tensors: { labels: y, predictions: y } }]);
  assert.equal((await evalOne(ok, { builtin: "Confusion" })).status, "NO_ISSUES_FOUND");
  const yHat = [...y];
  yHat[4] = 7;
  const bad = await writeTrial([{ step: 0, tensors: { labels: y, predictions: yHat } }]);
  const r = await evalOne(bad, { builtin: "Confusion" });
  assert.equal(r.status, "ISSUES_FOUND");
  assert.match(r.statusDetails!, /predicted class 7/);
  const strict = await evalOne(bad, { builtin: "Confusion", parameters: { min_diag: "0", max_off_diag: "0.01" } });
  assert.equal(strict.status, "ISSUES_FOUND");
  assert.equal((await evalOne(ABALONE_TRIAL, { builtin: "Confusion" })).status, "ERROR");
});

// ------------------------------------------------------------------ XGBoost

test("TreeDepth: floor(log2(max node id)); int64 trees/Node or string trees/ID", async () => {
  const tree = (maxId: number): Tensors => ({
    "trees/Tree": { name: "", dtype: "int64", shape: [maxId + 1], values: new Array(maxId + 1).fill(0) },
    "trees/Node": { name: "", dtype: "int64", shape: [maxId + 1], values: range(0, maxId, 1) },
    "trees/Feature": { name: "", dtype: "string", shape: [maxId + 1], strings: range(0, maxId, 1).map((i) => (i % 2 ? "Leaf" : "f1")) },
  });
  const dir = await writeTrial([{ step: 0, tensors: tree(30) }, { step: 1, tensors: tree(62) }]);
  const r = await evalOne(dir, { builtin: "TreeDepth" });
  assert.deepEqual(r.triggeredSteps, [1]); // depth 4 at step 0 (not above 4), depth 5 at step 1
  assert.equal((await evalOne(dir, { builtin: "TreeDepth", parameters: { depth: "5" } })).status, "NO_ISSUES_FOUND");
  const ids = await writeTrial([{ step: 0, tensors: { "trees/ID": { name: "", dtype: "string", shape: [3], strings: ["0-0", "0-1", "0-40"] } } }]);
  assert.equal((await evalOne(ids, { builtin: "TreeDepth" })).status, "ISSUES_FOUND");
  assert.equal((await evalOne(ABALONE_TRIAL, { builtin: "TreeDepth" })).status, "ERROR");
});

test("FeatureImportanceOverweight on the fixture: fires where the top 3 weights sum above the threshold", async () => {
  const names = golden.tensor_names.filter((n) => n.startsWith("feature_importance/weight/"));
  const topSum = (s: number, n: number) => names
    .map((t) => golden.tensors[t].values[String(s)])
    .filter(Boolean)
    .map((v) => (v.value as number[])[0])
    .sort((a, b) => b - a)
    .slice(0, n)
    .reduce((a, b) => a + b, 0);
  const r = await evalOne(ABALONE_TRIAL, { builtin: "FeatureImportanceOverweight" });
  assert.deepEqual(r.triggeredSteps, golden.steps.filter((s) => topSum(s, 3) > 0.8));
  assert.deepEqual(r.triggeredSteps, [0]);
  // The finding names the three heaviest features' tensors.
  const top3 = names.filter((t) => golden.tensors[t].values["0"]).sort((a, b) => (golden.tensors[b].values["0"].value as number[])[0] - (golden.tensors[a].values["0"].value as number[])[0]).slice(0, 3);
  assert.deepEqual(r.findings[0].tensorNames, top3);
  const four = await evalOne(ABALONE_TRIAL, { builtin: "FeatureImportanceOverweight", parameters: { nfeatures: "4", threshold: "0.65" } });
  assert.deepEqual(four.triggeredSteps, golden.steps.filter((s) => topSum(s, 4) > 0.65));
  assert.equal((await evalOne(ABALONE_TRIAL, { builtin: "FeatureImportanceOverweight", parameters: { threshold: "0.9" } })).status, "NO_ISSUES_FOUND");
});
