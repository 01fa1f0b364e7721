/**
 * The rule engine: parameters and validation, incremental evaluation (a growing trial gives the
 * same result as the whole trial), statuses and their changes, actions (webhook, stop training),
 * the stall clock. Trials are written by TrialWriter and read back with openTrial.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { readFileSync } from "node:fs";
import { LocalSource } from "../src/storage/local-source.js";
import { openTrial, type Trial } from "../src/trials/trial.js";
import { TrialWriter, type CollectionSpec } from "../src/trials/trial-writer.js";
import type { TensorInput } from "../src/format/tensor.js";
import type { RuleEvaluationStatus, RuleSpec, RuleSummaryRecord } from "../src/jobs/types.js";
import { TrialgraphError } from "../src/errors.js";
import {
  RuleSession, builtinRules, evaluateRules, parseParameters, validateRuleSpecs, type ActionOutcome,
} from "../src/rules/index.js";
import { ABALONE_TRIAL, FIXTURES } from "./support/fixtures.js";

const COLLECTIONS: CollectionSpec[] = [
  { name: "metrics", includeRegex: ["^[a-zA-z]+-[a-zA-z0-9]+$"] },
  { name: "losses", includeRegex: ["^[a-zA-z]+-.+(?<!(auc|map))$"] },
  { name: "feature_importance", includeRegex: ["^feature_importance/.*"] },
];

const dirs: string[] = [];
test.after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), "rules-engine-"));
  dirs.push(d);
  return d;
}

const scalar = (name: string, v: number): TensorInput => ({ name, dtype: "float64", shape: [1], values: [v] });

/** A small XGBoost-like run: validation loss bottoms out at step 6, feature importance concentrated early. */
function stepTensors(s: number): TensorInput[] {
  const train = 5 * Math.exp(-0.3 * s) + 1;
  const validation = 5 * Math.exp(-0.3 * s) + 1.2 + (s > 6 ? 0.3 * (s - 6) : 0);
  const w = s < 3 ? [0.5, 0.4, 0.1] : [0.3, 0.3, 0.2, 0.2];
  return [
    scalar("train-rmse", train),
    scalar("validation-rmse", validation),
    ...w.map((x, i) => scalar(`feature_importance/weight/f${i}`, x)),
    scalar("constant", 0),
  ];
}

const RULES: RuleSpec[] = [
  { builtin: "LossNotDecreasing", parameters: { collection_names: "metrics", num_steps: "4" } },
  { builtin: "FeatureImportanceOverweight" },
  { builtin: "AllZero", parameters: { tensor_regex: "constant" } },
  { builtin: "UnchangedTensor", name: "unchanged-metrics", parameters: { collection_names: "metrics" } },
  { builtin: "Overtraining", parameters: { patience_validation: "3" } },
  { builtin: "TreeDepth" },
];

// ------------------------------------------------------------------ parameters

test("parameters: SageMaker strings are parsed; defaults fill the rest", () => {
  const lnd = builtinRulesDef("LossNotDecreasing");
  const { params } = parseParameters(lnd.name, lnd.parameters, {
    collection_names: "metrics, losses", num_steps: "10", use_losses_collection: "False", diff_percent: 0.5,
  });
  assert.deepEqual(params.collection_names, ["metrics", "losses"]);
  assert.equal(params.num_steps, 10);
  assert.equal(params.use_losses_collection, false);
  assert.equal(params.diff_percent, 0.5);
  assert.equal(params.increase_threshold_percent, 5);
  assert.equal(params.tensor_regex, null);
});

function builtinRulesDef(name: string) {
  const d = validateRuleSpecs([{ builtin: name }].filter(() => name !== "SimilarAcrossRuns"))[0]?.definition;
  assert.ok(d);
  return d;
}

test("parameters: bad values are rejected with a clear BAD_USER_INPUT naming the parameter", () => {
  const bad: [RuleSpec, RegExp][] = [
    [{ builtin: "LossNotDecreasing", parameters: { use_losses_collection: "yes" } }, /use_losses_collection must be "True" or "False"/],
    [{ builtin: "LossNotDecreasing", parameters: { num_steps: "ten" } }, /num_steps must be a number/],
    [{ builtin: "LossNotDecreasing", parameters: { num_steps: "2.5" } }, /num_steps must be an integer/],
    [{ builtin: "LossNotDecreasing", parameters: { num_steps: "0" } }, /num_steps must be >= 1/],
    [{ builtin: "LossNotDecreasing", parameters: { diff_percent: "100" } }, /diff_percent must be < 100/],
    [{ builtin: "LossNotDecreasing", parameters: { mode: "TRAINING" } }, /mode must be one of TRAIN, EVAL, PREDICT, GLOBAL/],
    [{ builtin: "LossNotDecreasing", parameters: { tensor_regex: "loss(" } }, /tensor_regex has an invalid regular expression/],
    [{ builtin: "LossNotDecreasing", parameters: { nonsense: "1" } }, /nonsense is not a parameter of this rule/],
    [{ builtin: "LossNotDecreasing", parameters: { rule_to_invoke: "Overfit" } }, /rule_to_invoke names rule Overfit/],
    [{ builtin: "LossNotDecreasing", parameters: { action_json: "{not json" } }, /action_json is not valid JSON/],
    [{ builtin: "LossNotDecreasing", parameters: { webhook_url: "ftp://x" } }, /webhook_url must be an http\(s\) URL/],
    [{ builtin: "AllZero" }, /give collection_names or tensor_regex/],
    [{ builtin: "AllZero", parameters: { tensor_regex: "x", threshold: "101" } }, /threshold must be <= 100/],
    [{ builtin: "TensorVariance", parameters: { tensor_regex: "x" } }, /give max_threshold or min_threshold/],
    [{ builtin: "TensorVariance", parameters: { tensor_regex: "x", min_threshold: "2", max_threshold: "1" } }, /must not exceed/],
    [{ builtin: "SimilarAcrossRuns" }, /other_trials is required/],
    [{ builtin: "NoSuchRule" }, /unknown rule NoSuchRule/],
    [{ builtin: "StalledTrainingRule", parameters: { threshold: "0" } }, /threshold must be > 0/],
  ];
  for (const [spec, message] of bad) {
    assert.throws(() => validateRuleSpecs([spec]), (e: unknown) => {
      assert.ok(e instanceof TrialgraphError, `${JSON.stringify(spec)} gives a TrialgraphError`);
      assert.equal(e.code, "BAD_USER_INPUT");
      assert.match(e.message, message);
      return true;
    });
  }
  assert.throws(() => validateRuleSpecs([{ builtin: "Overfit" }, { builtin: "Overfit" }]), /two rules are named Overfit/);
  // SageMaker's spellings are accepted: case-insensitive names, rule_to_invoke, other_trial_<i>, "None".
  const [c] = validateRuleSpecs([{ name: "sim", parameters: { rule_to_invoke: "similaracrossruns", other_trial_1: "b", other_trial_0: "a", tensor_regex: "None" } }]);
  assert.equal(c.definition.name, "SimilarAcrossRuns");
  assert.deepEqual(c.otherTrials, ["a", "b"]);
  assert.equal(c.params.tensor_regex, null);
});

test("builtinRules lists every rule with the documented defaults (facts JSON)", () => {
  const facts = JSON.parse(readFileSync(path.join(FIXTURES, "../spec/smdebug-format-facts.json"), "utf8"));
  const listed = builtinRules();
  const expectedNames = ["LossNotDecreasing", "Overfit", "Overtraining", "StalledTrainingRule", "AllZero", "ClassImbalance", "Confusion",
    "SimilarAcrossRuns", "UnchangedTensor", "TensorVariance", "TreeDepth", "FeatureImportanceOverweight",
    "VanishingGradient", "ExplodingTensor", "WeightUpdateRatio", "DeadRelu", "SaturatedActivation", "PoorWeightInitialization",
    "CheckInputImages", "NLPSequenceRatio"];
  assert.deepEqual(listed.map((r) => r.name).sort(), [...expectedNames].sort());
  // Every rule of rulesconfig's groups (CreateXgboostReport, a report generator, is in none).
  const groups = Object.values(facts.rule_groups_rulesconfig as Record<string, string[]>).flat();
  assert.deepEqual([...new Set(groups)].sort(), [...expectedNames].sort());
  // Defaults as SageMaker shows them: booleans True/False, tuples (a, b), lists comma-separated.
  const show = (v: unknown): string | null =>
    v === null || v === "REQUIRED" ? null : typeof v === "boolean" ? (v ? "True" : "False") : Array.isArray(v) ? `(${v.join(", ")})` : String(v);
  for (const rule of listed) {
    const f = facts.rules.find((x: { name: string }) => x.name === rule.name);
    assert.ok(f, `${rule.name} in the facts`);
    assert.deepEqual(rule.parameters.map((p) => p.name).sort(), Object.keys(f.params).sort(), `${rule.name} parameter names`);
    for (const p of rule.parameters) assert.equal(p.default, show(f.params[p.name]), `${rule.name}.${p.name} default`);
    assert.equal(rule.appliesToXgboost, f.xgboost !== false, `${rule.name} applies to XGBoost`);
  }
});

test("builtinRules says which parameters are alternatives (one of a group required), and configuring none of a group is refused naming it", () => {
  const groups = Object.fromEntries(builtinRules().map((r) => [r.name, Object.fromEntries(r.parameters.map((p) => [p.name, p.requiredOneOf]))]));
  const selector = ["collection_names", "tensor_regex"];
  for (const rule of ["AllZero", "UnchangedTensor", "TensorVariance"]) {
    assert.deepEqual([groups[rule].collection_names, groups[rule].tensor_regex], [selector, selector], rule);
    assert.equal(builtinRules().find((r) => r.name === rule)!.parameters.find((p) => p.name === "collection_names")!.required, false, "no single one is required");
  }
  assert.deepEqual(groups.TensorVariance.max_threshold, ["max_threshold", "min_threshold"]);
  assert.equal(groups.AllZero.threshold, null);
  // Elsewhere the selector is optional (LossNotDecreasing falls back to the losses collection).
  assert.equal(groups.LossNotDecreasing.collection_names, null);
  assert.equal(groups.SimilarAcrossRuns.tensor_regex, null);
  // Any one of the group is enough; none is refused with the group's names.
  for (const parameters of [{ collection_names: "metrics" }, { tensor_regex: "rmse" }, { collection_names: "metrics", tensor_regex: "rmse" }]) {
    assert.equal(validateRuleSpecs([{ builtin: "UnchangedTensor", parameters }]).length, 1, JSON.stringify(parameters));
  }
  assert.throws(() => validateRuleSpecs([{ builtin: "UnchangedTensor", parameters: { collection_names: "None", num_steps: "4" } }]),
    /rule UnchangedTensor: give collection_names or tensor_regex \(or both\)/);
});

// ------------------------------------------------------------------ incremental evaluation

test("a growing trial evaluated step by step gives the same result as the whole trial at once", async () => {
  const dir = await tempDir();
  const w = new TrialWriter(dir);
  await w.writeCollections(COLLECTIONS);
  await w.writeStep(0, stepTensors(0));
  const trial = (await openTrial(new LocalSource(dir), dir))!;
  const changes: [string, RuleEvaluationStatus | null, RuleEvaluationStatus][] = [];
  const session = await RuleSession.create(trial, RULES, {
    webhookUrl: null,
    onStatusChange: (s, prev) => changes.push([s.ruleConfigurationName, prev, s.status]),
  });
  await session.advance();
  for (let s = 1; s <= 14; s++) {
    await w.writeStep(s, stepTensors(s));
    await trial.refresh();
    const summaries = await session.advance();
    assert.ok(summaries.every((x) => x.status !== "NO_ISSUES_FOUND"), "no final status before training ends");
    assert.ok(summaries.every((x) => x.evaluator === "SERVICE" && x.ruleEvaluationJobArn === null));
  }
  assert.equal(session.summaries.find((x) => x.ruleConfigurationName === "TreeDepth")!.status, "IN_PROGRESS", "absent tensors are an error only at the end");
  await w.end();
  await trial.refresh();
  await session.advance();
  assert.ok(session.done);
  const incremental = session.results();

  const whole = await evaluateRules((await openTrial(new LocalSource(dir), dir))!, RULES, { webhookUrl: null });
  assert.deepEqual(incremental, whole);

  const by = Object.fromEntries(whole.map((r) => [r.ruleConfigurationName, r]));
  assert.equal(by.LossNotDecreasing.status, "ISSUES_FOUND");
  assert.deepEqual(by.FeatureImportanceOverweight.triggeredSteps, [0, 1, 2]);
  assert.equal(by.AllZero.triggeredSteps.length, 15);
  assert.equal(by["unchanged-metrics"].status, "NO_ISSUES_FOUND");
  assert.equal(by.TreeDepth.status, "ERROR");
  assert.ok(whole.every((r) => r.status === "ERROR" || r.evaluatedSteps === 15));
  // Independent check of LossNotDecreasing: evaluations every 4 steps from 4, each against 4 steps
  // earlier (decrease < 0.1% fires) and against the best earlier value (more than 5% above fires).
  const val = (s: number) => 5 * Math.exp(-0.3 * s) + 1.2 + (s > 6 ? 0.3 * (s - 6) : 0);
  const best = (s: number) => Math.min(...Array.from({ length: s }, (_, i) => val(i)));
  const expected = [4, 8, 12].filter((s) => ((val(s - 4) - val(s)) / val(s - 4)) * 100 < 0.1 || ((val(s) - best(s)) / best(s)) * 100 > 5);
  assert.deepEqual(expected, [8, 12]);
  assert.deepEqual(by.LossNotDecreasing.triggeredSteps, expected);

  // Status changes: every rule announced once, then each moved at most to its final status.
  for (const r of whole) {
    const mine = changes.filter((c) => c[0] === r.ruleConfigurationName);
    assert.deepEqual(mine[0], [r.ruleConfigurationName, null, "IN_PROGRESS"]);
    assert.deepEqual(mine.slice(1), [[r.ruleConfigurationName, "IN_PROGRESS", r.status]]);
  }
});

test("the lab outcome is the same when the fixture is followed step by step", async () => {
  const whole = await evaluateRules((await openTrial(new LocalSource(ABALONE_TRIAL), "abalone"))!,
    [{ builtin: "LossNotDecreasing", parameters: { collection_names: "metrics", num_steps: "10" } }]);
  assert.deepEqual(whole[0].triggeredSteps, [30, 40, 50]);
  // Replay the fixture's values into a new trial one step at a time.
  const source = (await openTrial(new LocalSource(ABALONE_TRIAL), "abalone"))!;
  const dir = await tempDir();
  const w = new TrialWriter(dir);
  await w.writeCollections(COLLECTIONS);
  let trial: Trial | null = null;
  let session: RuleSession | null = null;
  const seen: RuleSummaryRecord[] = [];
  for (const s of source.steps()) {
    const names = source.tensorNames({ step: s });
    const values = await source.values(names.map((name) => ({ name, step: s })));
    await w.writeStep(s, names.map((name, i) => {
      const v = values[i] as { dtype: "float64"; shape: number[]; values: Float64Array };
      return { name, dtype: v.dtype, shape: v.shape, values: v.values };
    }));
    if (!trial) {
      trial = (await openTrial(new LocalSource(dir), dir))!;
      session = await RuleSession.create(trial, [{ builtin: "LossNotDecreasing", parameters: { collection_names: "metrics", num_steps: "10" } }], {
        webhookUrl: null, onStatusChange: (x) => seen.push(x),
      });
    } else await trial.refresh();
    await session!.advance();
    const status = session!.summaries[0].status;
    assert.equal(status, s < 30 ? "IN_PROGRESS" : "ISSUES_FOUND", `status after step ${s}`);
  }
  await w.end();
  await trial!.refresh();
  await session!.advance();
  assert.deepEqual(session!.results(), whole.map((r) => ({ ...r })));
  assert.match(seen.find((x) => x.status === "ISSUES_FOUND")!.statusDetails!, /step 30 \(tensor validation-rmse\)/);
});

test("a session with a bad rule reports ERROR with the reason and still evaluates the others", async () => {
  const trial = (await openTrial(new LocalSource(ABALONE_TRIAL), "abalone"))!;
  const session = await RuleSession.create(trial, [
    { builtin: "AllZero", name: "no-selector" },
    { builtin: "NoSuchRule" },
    { builtin: "SimilarAcrossRuns", parameters: { other_trials: "somewhere" } },
    { builtin: "FeatureImportanceOverweight" },
  ], { webhookUrl: null });
  await session.advance();
  const [a, b, c, d] = session.summaries;
  assert.equal(a.status, "ERROR");
  assert.match(a.statusDetails!, /give collection_names or tensor_regex/);
  assert.equal(b.status, "ERROR");
  assert.match(b.statusDetails!, /unknown rule NoSuchRule/);
  assert.equal(c.status, "ERROR");
  assert.match(c.statusDetails!, /no trial opener/);
  assert.equal(d.status, "ISSUES_FOUND");
});

test("a job without an end marker (SageMaker) is finalized with advance({final: true}); stop() marks STOPPED", async () => {
  const dir = await tempDir();
  const w = new TrialWriter(dir);
  await w.writeCollections(COLLECTIONS);
  for (let s = 0; s < 3; s++) await w.writeStep(s, stepTensors(s));
  const trial = (await openTrial(new LocalSource(dir), dir))!;
  const session = await RuleSession.create(trial, [{ builtin: "UnchangedTensor", parameters: { tensor_regex: "rmse" } }], { webhookUrl: null });
  await session.advance();
  assert.equal(session.summaries[0].status, "IN_PROGRESS");
  await session.advance({ final: true });
  assert.equal(session.summaries[0].status, "NO_ISSUES_FOUND");
  const stopped = await RuleSession.create(trial, [{ builtin: "UnchangedTensor", parameters: { tensor_regex: "rmse" } }], { webhookUrl: null });
  await stopped.advance();
  await stopped.stop();
  assert.equal(stopped.summaries[0].status, "STOPPED");
  assert.ok(stopped.done);
});

// ------------------------------------------------------------------ actions

async function webhookServer(failFirst: number) {
  const bodies: any[] = [];
  let calls = 0;
  const server = http.createServer((req, res) => {
    let data = "";
    req.on("data", (c) => (data += c));
    req.on("end", () => {
      calls++;
      if (calls <= failFirst) {
        res.statusCode = 503;
        res.end("busy");
        return;
      }
      bodies.push({ url: req.url, method: req.method, type: req.headers["content-type"], body: JSON.parse(data) });
      res.end("ok");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { base, bodies, calls: () => calls, close: () => new Promise((r) => server.close(r)) };
}

test("a firing rule POSTs its summary to the webhook (retried) and stops the training job once", async () => {
  const hook = await webhookServer(1);
  try {
    const trial = (await openTrial(new LocalSource(ABALONE_TRIAL), "abalone"))!;
    const stops: [string, unknown][] = [];
    const outcomes: ActionOutcome[] = [];
    const session = await RuleSession.create(trial, [
      {
        builtin: "LossNotDecreasing", name: "loss",
        parameters: {
          collection_names: "metrics", num_steps: "10",
          action_json: JSON.stringify([{ name: "StopTraining", training_job_prefix: "xgb-" }, { name: "email", endpoint: "ops@example.com" }]),
        },
      },
      { builtin: "Overtraining", name: "quiet" },
    ], {
      trainingJobName: "xgb-abalone-1",
      webhookUrl: `${hook.base}/default`,
      webhook: { retries: 2, backoffMs: 10, timeoutMs: 2000 },
      stopTrainingJob: async (name, req) => {
        stops.push([name, req]);
      },
      onActionOutcome: (o) => outcomes.push(o),
    });
    await session.advance();
    await session.whenActionsSettled();
    assert.deepEqual(stops, [["xgb-abalone-1", { ruleConfigurationName: "loss", step: 30, prefix: "xgb-", byPrefix: false }]]);
    assert.equal(hook.bodies.length, 1, "one POST for the one firing rule, although it fired at 3 steps");
    const { body, method, type, url } = hook.bodies[0];
    assert.equal(method, "POST");
    assert.equal(url, "/default");
    assert.match(type, /application\/json/);
    assert.equal(body.ruleConfigurationName, "loss");
    assert.equal(body.ruleEvaluationStatus, "ISSUES_FOUND");
    assert.equal(body.step, 30);
    assert.equal(body.tensor, "validation-rmse");
    assert.equal(body.trainingJobName, "xgb-abalone-1");
    assert.deepEqual(body.notify, [{ name: "email", endpoint: "ops@example.com" }]);
    const webhook = outcomes.find((o) => o.kind === "webhook")!;
    assert.equal(webhook.ok, true);
    assert.equal((webhook as { attempts: number }).attempts, 2, "the 503 was retried");
  } finally {
    await hook.close();
  }
});

test("the webhook URL comes from the rule's parameters first; a dead endpoint never blocks evaluation", async () => {
  const hook = await webhookServer(0);
  const dead = http.createServer((_req, res) => {
    res.statusCode = 500;
    res.end();
  });
  await new Promise<void>((r) => dead.listen(0, "127.0.0.1", r));
  try {
    const trial = (await openTrial(new LocalSource(ABALONE_TRIAL), "abalone"))!;
    const outcomes: ActionOutcome[] = [];
    const session = await RuleSession.create(trial, [
      { builtin: "FeatureImportanceOverweight", parameters: { webhook_url: `${hook.base}/rule` } },
      { builtin: "AllZero", parameters: { tensor_regex: "average_shap/f0" } },
    ], {
      webhookUrl: `http://127.0.0.1:${(dead.address() as AddressInfo).port}/dead`,
      webhook: { retries: 1, backoffMs: 10 },
      onActionOutcome: (o) => outcomes.push(o),
    });
    await session.advance();
    assert.ok(session.done, "evaluation finished without waiting for deliveries");
    await session.whenActionsSettled();
    assert.deepEqual(hook.bodies.map((b) => [b.url, b.body.ruleConfigurationName]), [["/rule", "FeatureImportanceOverweight"]]);
    const failed = outcomes.find((o) => o.kind === "webhook" && !o.ok) as { attempts: number; error: string; ruleConfigurationName: string };
    assert.equal(failed.ruleConfigurationName, "AllZero");
    assert.equal(failed.attempts, 2);
    assert.match(failed.error, /HTTP 500/);
  } finally {
    await hook.close();
    await new Promise((r) => dead.close(r));
  }
});

// ------------------------------------------------------------------ stalled training

test("StalledTrainingRule fires after threshold seconds without a new step and can stop the job", async () => {
  const dir = await tempDir();
  const w = new TrialWriter(dir);
  await w.writeCollections(COLLECTIONS);
  await w.writeStep(0, stepTensors(0));
  const trial = (await openTrial(new LocalSource(dir), dir))!;
  let clock = 1_000_000;
  const stops: string[] = [];
  const session = await RuleSession.create(trial, [
    { builtin: "StalledTrainingRule", parameters: { threshold: "60", stop_training_on_fire: "True" } },
  ], { now: () => clock, trainingJobName: "job-7", stopTrainingJob: (n) => void stops.push(n), webhookUrl: null });
  await session.advance();
  clock += 50_000;
  await w.writeStep(1, stepTensors(1));
  await trial.refresh();
  await session.advance(); // a new step: the stall clock restarts
  clock += 59_000;
  await session.advance();
  assert.equal(session.summaries[0].status, "IN_PROGRESS");
  clock += 2_000;
  await session.advance();
  await session.whenActionsSettled();
  assert.equal(session.summaries[0].status, "ISSUES_FOUND");
  assert.match(session.summaries[0].statusDetails!, /no new step for 61 s \(threshold 60 s\) after step 1/);
  assert.deepEqual(stops, ["job-7"]);
  assert.deepEqual(session.results()[0].triggeredSteps, [1]);
});

test("StalledTrainingRule does not fire on an ended trial", async () => {
  let clock = 0;
  const trial = (await openTrial(new LocalSource(ABALONE_TRIAL), "abalone"))!;
  const session = await RuleSession.create(trial, [{ builtin: "StalledTrainingRule", parameters: { threshold: "1" } }], { now: () => clock });
  clock += 3_600_000;
  await session.advance();
  assert.equal(session.summaries[0].status, "NO_ISSUES_FOUND");
});

test("SimilarAcrossRuns waits for a step the other (running) trial has not written yet", async () => {
  const a = await tempDir();
  const b = await tempDir();
  const wa = new TrialWriter(a);
  const wb = new TrialWriter(b);
  await wa.writeCollections(COLLECTIONS);
  await wb.writeCollections(COLLECTIONS);
  for (let s = 0; s < 3; s++) await wa.writeStep(s, stepTensors(s));
  await wb.writeStep(0, stepTensors(0));
  const base = (await openTrial(new LocalSource(a), a))!;
  const session = await RuleSession.create(base, [{ builtin: "SimilarAcrossRuns", parameters: { other_trials: b, collection_names: "metrics" } }], {
    otherTrialOpener: async (p) => openTrial(new LocalSource(p), p), webhookUrl: null,
  });
  await session.advance();
  assert.equal(session.results()[0].evaluatedSteps, 1, "steps 1 and 2 wait for the other trial");
  await wb.writeStep(1, stepTensors(1));
  await wb.writeStep(2, stepTensors(2).map((t) => (t.name === "validation-rmse" ? scalar(t.name, 99) : t)));
  await session.advance();
  assert.equal(session.results()[0].evaluatedSteps, 3);
  assert.deepEqual(session.results()[0].triggeredSteps, [2]);
});
