/**
 * Debugger's deep-learning rules firing and not firing, on the digits-mlp fixture (a healthy run)
 * and on trials written with the TrialWriter for clear-cut cases far from the thresholds:
 * vanishing and exploding gradients, frozen and blown-up weights, dead ReLUs, saturated tanh and
 * sigmoid layers, poor initialization, unnormalized images and padded sequences; tensors saved only
 * as reductions; and a live session that stops the job through the engine's actions.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { LocalSource } from "../src/storage/local-source.js";
import { openTrial, type Trial } from "../src/trials/trial.js";
import { TrialWriter, withReductions } from "../src/trials/trial-writer.js";
import type { CollectionSpec } from "../src/trials/trial-writer.js";
import type { RuleSpec } from "../src/jobs/types.js";
import { configureRule, evaluateRules, RuleSession, type RuleEvaluationResult } from "../src/rules/index.js";
import { TempTrials, matrix, tensorInput, type StepSpec } from "./support/write-trial.js";
import { DIGITS_TRIAL } from "./support/fixtures.js";

const trials = new TempTrials();
after(() => trials.cleanup());

const DL_COLLECTIONS: CollectionSpec[] = [
  { name: "weights", includeRegex: ["^(?!gradient).*weight"] },
  { name: "gradients", includeRegex: ["^gradient"] },
  { name: "losses", includeRegex: ["[Ll]oss_(?!input).*output"] },
];

async function open(dir: string): Promise<Trial> {
  const t = await openTrial(new LocalSource(dir), dir);
  assert.ok(t);
  return t;
}

async function run(dir: string, ...specs: RuleSpec[]): Promise<RuleEvaluationResult[]> {
  return evaluateRules(await open(dir), specs, { webhookUrl: null });
}

async function one(dir: string, spec: RuleSpec): Promise<RuleEvaluationResult> {
  return (await run(dir, spec))[0];
}

/** A deterministic spread of values in [-1, 1] (no randomness in tests). */
const wave = (i: number) => Math.sin(i * 12.9898);

// ------------------------------------------------------------------ the fixture: a healthy run

test("digits-mlp (a healthy MLP): no deep-learning rule fires with SageMaker's defaults", async () => {
  const results = await run(DIGITS_TRIAL,
    { builtin: "VanishingGradient" },
    { builtin: "ExplodingTensor" },
    { builtin: "WeightUpdateRatio" },
    { builtin: "DeadRelu", parameters: { tensor_regex: "relu.*_output_0" } },
    { builtin: "PoorWeightInitialization", parameters: { activation_inputs_regex: "relu.*_output_0" } });
  for (const r of results) assert.equal(r.status, "NO_ISSUES_FOUND", `${r.ruleConfigurationName}: ${r.statusDetails}`);
  // Without the ReLU tensors' names (the PyTorch hook calls them reluN_output_0), DeadRelu finds nothing to check.
  const missing = await one(DIGITS_TRIAL, { builtin: "DeadRelu" });
  assert.equal(missing.status, "ERROR");
  assert.match(missing.statusDetails!, /required tensors absent/);
});

test("digits-mlp: far-away thresholds make the same rules fire at the first step", async () => {
  const [vg, dead] = await run(DIGITS_TRIAL,
    { builtin: "VanishingGradient", parameters: { threshold: "1" } }, // real mean |gradient| are 1e-4 … 1e-2
    { builtin: "DeadRelu", parameters: { tensor_regex: "relu.*_output_0", threshold_inactivity: "99", threshold_layer: "1" } });
  assert.equal(vg.status, "ISSUES_FOUND");
  assert.equal(vg.triggeredSteps[0], 0);
  assert.match(vg.statusDetails!, /mean absolute gradient of gradient\//);
  assert.equal(dead.status, "ISSUES_FOUND", "most ReLUs are active less than 99% of the time");
  assert.equal(dead.triggeredSteps[0], 0);
});

// ------------------------------------------------------------------ VanishingGradient

function gradientSteps(scale: (step: number) => number, steps = 4): StepSpec[] {
  return Array.from({ length: steps }, (_, step) => ({
    step, tensors: { "gradient/fc.weight": matrix(16, 8, (r, c) => scale(step) * wave(r * 8 + c + step)) },
  }));
}

test("VanishingGradient fires when a gradient's mean absolute value drops to ~1e-12, not at ~1e-2", async () => {
  const vanishing = await trials.write(gradientSteps((s) => (s < 2 ? 1e-2 : 1e-12)), { collections: DL_COLLECTIONS });
  const healthy = await trials.write(gradientSteps(() => 1e-2), { collections: DL_COLLECTIONS });
  const fired = await one(vanishing, { builtin: "VanishingGradient" });
  assert.equal(fired.status, "ISSUES_FOUND");
  assert.deepEqual(fired.triggeredSteps, [2, 3]);
  assert.match(fired.statusDetails!, /at step 2 \(tensor gradient\/fc\.weight\)/);
  assert.equal((await one(healthy, { builtin: "VanishingGradient" })).status, "NO_ISSUES_FOUND");
});

test("VanishingGradient uses the saved abs_mean reduction when only reductions were saved", async () => {
  const reductionsOnly = [{ match: /^gradient\//, saveRaw: false, reductions: [{ reduction: "mean" as const, abs: true }, { reduction: "max" as const, abs: false }] }];
  const vanishing = await trials.write(gradientSteps((s) => (s < 2 ? 1e-2 : 1e-12)), { collections: DL_COLLECTIONS, reductions: reductionsOnly });
  const healthy = await trials.write(gradientSteps(() => 1e-2), { collections: DL_COLLECTIONS, reductions: reductionsOnly });
  const t = await open(vanishing);
  assert.equal(t.onlyReductions("gradient/fc.weight"), true);
  const fired = await one(vanishing, { builtin: "VanishingGradient" });
  assert.equal(fired.status, "ISSUES_FOUND", fired.statusDetails ?? "");
  assert.deepEqual(fired.triggeredSteps, [2, 3]);
  assert.equal((await one(healthy, { builtin: "VanishingGradient" })).status, "NO_ISSUES_FOUND");
  // Only a max saved: the mean of absolute values can be neither read nor computed.
  const maxOnly = await trials.write(gradientSteps(() => 1e-12), {
    collections: DL_COLLECTIONS, reductions: [{ match: /^gradient\//, saveRaw: false, reductions: [{ reduction: "max", abs: false }] }],
  });
  const nothing = await one(maxOnly, { builtin: "VanishingGradient" });
  assert.equal(nothing.status, "ERROR");
  assert.match(nothing.statusDetails!, /required tensors absent/);
});

// ------------------------------------------------------------------ ExplodingTensor

test("ExplodingTensor fires on NaN and on ±Infinity (unless only_nan), also through saved reductions", async () => {
  const steps = (bad: number): StepSpec[] => [0, 1, 2].map((step) => ({
    step, tensors: { "fc.weight": matrix(4, 4, (r, c) => (step === 1 && r === 2 && c === 3 ? bad : r - c)), loss: 1 },
  }));
  const nan = await trials.write(steps(NaN));
  const inf = await trials.write(steps(-Infinity));
  const fine = await trials.write(steps(7));
  const onNan = await one(nan, { builtin: "ExplodingTensor" });
  assert.equal(onNan.status, "ISSUES_FOUND");
  assert.deepEqual(onNan.triggeredSteps, [1]);
  assert.match(onNan.statusDetails!, /fc\.weight has 1 NaN and 0 infinite value/);
  assert.equal((await one(inf, { builtin: "ExplodingTensor" })).status, "ISSUES_FOUND");
  assert.equal((await one(inf, { builtin: "ExplodingTensor", parameters: { only_nan: "True" } })).status, "NO_ISSUES_FOUND");
  assert.equal((await one(nan, { builtin: "ExplodingTensor", parameters: { only_nan: "True" } })).status, "ISSUES_FOUND");
  assert.equal((await one(fine, { builtin: "ExplodingTensor" })).status, "NO_ISSUES_FOUND");
  assert.equal((await one(nan, { builtin: "ExplodingTensor", parameters: { tensor_regex: "^loss$" } })).status, "NO_ISSUES_FOUND", "only the selected tensors");

  // Every tensor that exploded at a step is named in the findings.
  const two = await trials.write([0, 1].map((step) => ({
    step, tensors: { "a.weight": [1, step ? NaN : 2], "b.weight": [step ? Infinity : 3, 4], "c.weight": [5, 6] },
  })));
  const both = await one(two, { builtin: "ExplodingTensor" });
  assert.deepEqual(both.findings.map((f) => [f.step, f.tensorNames]), [[1, ["a.weight", "b.weight"]]]);
  assert.match(both.statusDetails!, /2 tensors in all/);

  const reduced = await trials.write(steps(NaN), { reductions: [{ match: /weight/, saveRaw: false, reductions: [{ reduction: "mean", abs: false }] }] });
  const viaReductions = await one(reduced, { builtin: "ExplodingTensor" });
  assert.equal(viaReductions.status, "ISSUES_FOUND");
  assert.match(viaReductions.statusDetails!, /the saved mean of fc\.weight is NaN/);
});

// ------------------------------------------------------------------ WeightUpdateRatio

/** TRAIN steps 0..4 whose weights are W0·g(s), with an EVAL step (same weights) after each. */
function weightSteps(g: (s: number) => number): StepSpec[] {
  const out: StepSpec[] = [];
  let global = 0;
  for (let s = 0; s < 5; s++) {
    const w = matrix(8, 8, (r, c) => g(s) * (1 + wave(r * 8 + c)));
    out.push({ step: global++, mode: "TRAIN", modeStep: s, tensors: { "fc.weight": w } });
    out.push({ step: global++, mode: "EVAL", modeStep: s, tensors: { "fc.weight": w } });
  }
  return out;
}

test("WeightUpdateRatio: TRAIN steps only; fires on frozen (ratio ~1e-12) and exploding (~99) updates, not on ~1e-3", async () => {
  const healthy = await trials.write(weightSteps((s) => 1 + 1e-3 * s), { collections: DL_COLLECTIONS });
  const frozen = await trials.write(weightSteps((s) => 1 + 1e-12 * s), { collections: DL_COLLECTIONS });
  const blowing = await trials.write(weightSteps((s) => 100 ** s), { collections: DL_COLLECTIONS });
  // EVAL steps repeat the weights unchanged (ratio 0): they must not count.
  assert.equal((await one(healthy, { builtin: "WeightUpdateRatio" })).status, "NO_ISSUES_FOUND");
  const small = await one(frozen, { builtin: "WeightUpdateRatio" });
  assert.equal(small.status, "ISSUES_FOUND");
  assert.equal(small.triggeredSteps[0], 2, "global step 2 is TRAIN step 1, compared with TRAIN step 0");
  assert.deepEqual(small.findings[0], { ...small.findings[0], step: 2, mode: "TRAIN", modeStep: 1, tensorNames: ["fc.weight"] });
  assert.match(small.statusDetails!, /below small_threshold/);
  const large = await one(blowing, { builtin: "WeightUpdateRatio" });
  assert.equal(large.status, "ISSUES_FOUND");
  assert.match(large.statusDetails!, /above large_threshold 10/);
  // num_steps: compare with the earliest saved step within num_steps (TRAIN step 0 from 1 and 2).
  const wide = await one(healthy, { builtin: "WeightUpdateRatio", parameters: { num_steps: "2", large_threshold: "1.5e-3" } });
  assert.equal(wide.status, "ISSUES_FOUND", "two updates of 1e-3 exceed 1.5e-3");
  assert.equal(wide.triggeredSteps[0], 4);
  assert.equal((await one(healthy, { builtin: "WeightUpdateRatio", parameters: { large_threshold: "1.5e-3" } })).status, "NO_ISSUES_FOUND");
});

// ------------------------------------------------------------------ DeadRelu, SaturatedActivation

test("DeadRelu fires when 3/4 of a layer's units never activate, not when every unit is active half the time", async () => {
  const dead = await trials.write([0, 1].map((step) => ({
    step, tensors: { dense0_relu_output: matrix(64, 32, (r, c) => (c < 24 ? 0 : Math.abs(wave(r * 32 + c)) + 0.1)) },
  })));
  const alive = await trials.write([0, 1].map((step) => ({
    step, tensors: { dense0_relu_output: matrix(64, 32, (r, c) => ((r + c) % 2 ? 0 : 1 + r)) },
  })));
  const fired = await one(dead, { builtin: "DeadRelu" });
  assert.equal(fired.status, "ISSUES_FOUND");
  assert.match(fired.statusDetails!, /75% of the ReLUs of dense0_relu_output are dead/);
  assert.equal((await one(alive, { builtin: "DeadRelu" })).status, "NO_ISSUES_FOUND");
});

test("SaturatedActivation fires when most tanh or sigmoid inputs sit far outside the thresholds", async () => {
  const layer = (big: number) => matrix(32, 16, (r, c) => (c < 12 ? big * Math.sign(wave(r + c) || 1) : wave(r * 16 + c)));
  const saturated = await trials.write([{ step: 0, tensors: { lstm_tanh_input: layer(40) } }]);
  const sigmoid = await trials.write([{ step: 0, tensors: { gate_sigmoid_input: matrix(32, 16, () => -60) } }]);
  const fine = await trials.write([{ step: 0, tensors: { lstm_tanh_input: layer(2), gate_sigmoid_input: layer(3) } }]);
  const fired = await one(saturated, { builtin: "SaturatedActivation" });
  assert.equal(fired.status, "ISSUES_FOUND");
  assert.match(fired.statusDetails!, /75% of the tanh nodes of lstm_tanh_input are saturated/);
  assert.equal((await one(sigmoid, { builtin: "SaturatedActivation" })).status, "ISSUES_FOUND");
  assert.equal((await one(fine, { builtin: "SaturatedActivation" })).status, "NO_ISSUES_FOUND");
  // Wider bounds (a SageMaker tuple string) make the same inputs unsaturated.
  assert.equal((await one(saturated, { builtin: "SaturatedActivation", parameters: { threshold_tanh: "(-50, 50)" } })).status, "NO_ISSUES_FOUND");
});

// ------------------------------------------------------------------ PoorWeightInitialization

function initSteps(opts: { varianceRatio: number; gradientScale: number; loss: (s: number) => number }): StepSpec[] {
  return Array.from({ length: 8 }, (_, step) => ({
    step,
    tensors: {
      layer1_relu_input: matrix(32, 16, (r, c) => wave(r * 16 + c)),
      layer2_relu_input: matrix(32, 16, (r, c) => Math.sqrt(opts.varianceRatio) * wave(r * 16 + c + 7)),
      "gradient/fc.weight": matrix(16, 16, (r, c) => opts.gradientScale * wave(r * 16 + c + step)),
      CrossEntropyLoss_output_0: opts.loss(step),
    },
  }));
}

test("PoorWeightInitialization fires on layer variances 1000× apart, on a collapsed gradient distribution and on a flat loss", async () => {
  const good = { varianceRatio: 2, gradientScale: 0.1, loss: (s: number) => 2 - 0.1 * s };
  const healthy = await trials.write(initSteps(good), { collections: DL_COLLECTIONS });
  const variances = await trials.write(initSteps({ ...good, varianceRatio: 1000 }), { collections: DL_COLLECTIONS });
  const narrow = await trials.write(initSteps({ ...good, gradientScale: 1e-7 }), { collections: DL_COLLECTIONS });
  const flat = await trials.write(initSteps({ ...good, loss: () => 2.3 }), { collections: DL_COLLECTIONS });
  assert.equal((await one(healthy, { builtin: "PoorWeightInitialization" })).status, "NO_ISSUES_FOUND");
  const v = await one(variances, { builtin: "PoorWeightInitialization" });
  assert.equal(v.status, "ISSUES_FOUND");
  assert.equal(v.triggeredSteps[0], 0);
  assert.match(v.statusDetails!, /variances span a ratio of 1000/);
  const n = await one(narrow, { builtin: "PoorWeightInitialization" });
  assert.equal(n.status, "ISSUES_FOUND");
  assert.match(n.statusDetails!, /5th to 95th percentile range of gradient\/fc\.weight/);
  const f = await one(flat, { builtin: "PoorWeightInitialization" });
  assert.equal(f.status, "ISSUES_FOUND");
  assert.deepEqual(f.triggeredSteps, [5, 6, 7], "patience 5: five steps without a lower loss after step 0");
  // Only the first `steps` steps are analyzed: a flat loss over 4 steps is within patience.
  assert.equal((await one(flat, { builtin: "PoorWeightInitialization", parameters: { steps: "4" } })).status, "NO_ISSUES_FOUND");
});

// ------------------------------------------------------------------ CheckInputImages, NLPSequenceRatio

test("CheckInputImages fires once 500 images of mean 0.5 were seen (step 7 with batches of 64), not on normalized images", async () => {
  const images = (value: (i: number) => number): StepSpec[] => Array.from({ length: 10 }, (_, step) => ({
    step, tensors: { hybridsequential0_input_0: { dtype: "float32", shape: [64, 3, 4, 4], values: Array.from({ length: 64 * 48 }, (_, i) => value(i)) } },
  }));
  const raw = await trials.write(images((i) => 0.5 + 0.4 * wave(i)));
  const normalized = await trials.write(images((i) => (i % 2 ? 1 : -1) * 0.9));
  const fired = await one(raw, { builtin: "CheckInputImages" });
  assert.equal(fired.status, "ISSUES_FOUND");
  assert.equal(fired.triggeredSteps[0], 7);
  assert.match(fired.statusDetails!, /over 512 images/);
  assert.equal((await one(normalized, { builtin: "CheckInputImages" })).status, "NO_ISSUES_FOUND");
  // Channel 3 of a [64, 3, 4, 4] tensor is a width position; the mean of each is still ~0.5.
  assert.equal((await one(raw, { builtin: "CheckInputImages", parameters: { channel: "3" } })).status, "ISSUES_FOUND");
});

test("NLPSequenceRatio fires when padding (token 0) is 80% of the sequences, not at 10%; several tokens with their thresholds", async () => {
  const sequences = (zeroEvery: (i: number) => boolean): StepSpec[] => [0, 1].map((step) => ({
    step, tensors: { embedding0_input_0: { dtype: "int64", shape: [8, 20], values: Array.from({ length: 160 }, (_, i) => (zeroEvery(i) ? 0 : i % 7 === 0 ? 3 : 5 + (i % 11))) } },
  }));
  const padded = await trials.write(sequences((i) => i % 10 < 8));
  const fine = await trials.write(sequences((i) => i % 10 === 0));
  const fired = await one(padded, { builtin: "NLPSequenceRatio" });
  assert.equal(fired.status, "ISSUES_FOUND");
  assert.match(fired.statusDetails!, /token 0 is 80% of embedding0_input_0/);
  assert.equal((await one(fine, { builtin: "NLPSequenceRatio" })).status, "NO_ISSUES_FOUND");
  const three = await one(fine, { builtin: "NLPSequenceRatio", parameters: { token_values: "3, 0", token_thresholds_percent: "5, 90" } });
  assert.equal(three.status, "ISSUES_FOUND");
  assert.match(three.statusDetails!, /token 3 is/);
});

// ------------------------------------------------------------------ parameters

test("deep-learning rule parameters: SageMaker strings, tuples and lists are parsed; bad ones are BAD_USER_INPUT", () => {
  const sat = configureRule({ builtin: "SaturatedActivation", parameters: { threshold_tanh: "(-3, 3)", threshold_sigmoid: "[-10, 12.5]" } });
  assert.deepEqual([sat.params.threshold_tanh, sat.params.threshold_sigmoid], [[-3, 3], [-10, 12.5]]);
  assert.deepEqual(configureRule({ builtin: "SaturatedActivation" }).params.tensor_regex, [".*tanh_input", ".*sigmoid_input"]);
  assert.deepEqual(configureRule({ builtin: "NLPSequenceRatio", parameters: { token_values: "3, 0", token_thresholds_percent: "10,20" } }).params.token_values, [3, 0]);
  const bad: RuleSpec[] = [
    { builtin: "SaturatedActivation", parameters: { threshold_tanh: "(3)" } },
    { builtin: "SaturatedActivation", parameters: { threshold_tanh: "(3, -3)" } },
    { builtin: "NLPSequenceRatio", parameters: { token_values: "1, 2, 3", token_thresholds_percent: "50" } },
    { builtin: "NLPSequenceRatio", parameters: { token_thresholds_percent: "150" } },
    { builtin: "WeightUpdateRatio", parameters: { small_threshold: "1", large_threshold: "0.1" } },
    { builtin: "DeadRelu", parameters: { threshold_layer: "101" } },
    { builtin: "DeadRelu", parameters: { tensor_regex: "([" } },
    { builtin: "VanishingGradient", parameters: { treshold: "1" } },
    { builtin: "PoorWeightInitialization", parameters: { steps: "2.5" } },
  ];
  for (const spec of bad) {
    assert.throws(() => configureRule(spec), (e: any) => e.code === "BAD_USER_INPUT", JSON.stringify(spec));
  }
});

// ------------------------------------------------------------------ live, with actions

test("live: a session following a growing DL trial fires VanishingGradient when the step arrives and stops the job", async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "trialgraph-dl-live-"));
  try {
    const w = new TrialWriter(dir);
    await w.writeCollections(DL_COLLECTIONS);
    const grad = (step: number, scale: number) => withReductions(
      tensorInput("gradient/fc.weight", matrix(8, 8, (r, c) => scale * wave(r * 8 + c + step))),
      [{ reduction: "mean", abs: true }],
      { saveRaw: false },
    );
    await w.writeStep(0, grad(0, 1e-2), { mode: "TRAIN", modeStep: 0 });
    const trial = await open(dir);
    const stops: string[] = [];
    const session = await RuleSession.create(trial, [{
      builtin: "VanishingGradient",
      parameters: { action_json: JSON.stringify({ name: "stoptraining", training_job_prefix: "dl-job" }) },
    }], { trainingJobName: "dl-job-1", stopTrainingJob: (name) => stops.push(name), webhookUrl: null, live: true });
    let [s] = await session.advance();
    assert.equal(s.status, "IN_PROGRESS");
    await w.writeStep(1, grad(1, 1e-2), { mode: "TRAIN", modeStep: 1 });
    await trial.refresh({ force: true });
    [s] = await session.advance();
    assert.equal(s.status, "IN_PROGRESS");
    await w.writeStep(2, grad(2, 1e-12), { mode: "TRAIN", modeStep: 2 });
    await trial.refresh({ force: true });
    [s] = await session.advance();
    assert.equal(s.status, "ISSUES_FOUND");
    assert.match(s.statusDetails!, /at step 2 \(tensor gradient\/fc\.weight\)/);
    await session.whenActionsSettled();
    assert.deepEqual(stops, ["dl-job-1"]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
