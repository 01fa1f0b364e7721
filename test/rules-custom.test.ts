/**
 * Custom rules from TRIALGRAPH_RULES_DIR: same contract as the built-ins; a rule that throws,
 * loops or allocates without end ends in ERROR and the process stays responsive.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { LocalSource } from "../src/storage/local-source.js";
import { openTrial } from "../src/trials/trial.js";
import { BUILTIN_RULES, RuleRegistry, RuleSession, builtinRules, customRuleWorkers, evaluateRules, validateRuleSpecs } from "../src/rules/index.js";
import { ABALONE_TRIAL, loadGolden } from "./support/fixtures.js";

const golden = loadGolden();
let dir = "";

const RULES: Record<string, string> = {
  // Fires when a metric goes above a threshold; keeps state per instance (count of steps seen).
  "metric-above.js": `
    module.exports = {
      name: "MetricAbove",
      description: "fires when a metric is above a threshold",
      parameters: [
        { name: "tensor", type: "string", default: "validation-rmse", description: "metric" },
        { name: "threshold", type: "number", default: "3", description: "limit" },
        { name: "padding", type: "integer", default: "0", description: "spaces in the details (for bounds)" },
      ],
      create(params) {
        let seen = 0;
        return {
          requiredTensors(ctx) {
            return ctx.trial.tensorNames({ step: ctx.step }).includes(params.tensor) ? [{ name: params.tensor, step: ctx.step }] : [];
          },
          invokeAtStep(ctx, values) {
            seen++;
            const v = values.scalar(params.tensor);
            return v === undefined ? { fired: false, checked: 0 }
              : { fired: v > params.threshold, tensor: params.tensor, tensors: [params.tensor, "also-" + params.tensor],
                  details: params.tensor + " = " + v + " after " + seen + " steps" + " ".repeat(params.padding) + "end" };
          },
        };
      },
    };`,
  // The short form: handlers at the top level.
  "always-throws.js": `
    module.exports = {
      name: "AlwaysThrows",
      parameters: [],
      requiredTensors(ctx) { return [{ name: "train-rmse", step: ctx.step }]; },
      invokeAtStep() { throw new Error("boom from the rule"); },
    };`,
  "loops.js": `
    module.exports = {
      name: "LoopsForever",
      parameters: [],
      requiredTensors() { return []; },
      invokeAtStep() { for (;;) {} },
    };`,
  "async-loop.js": `
    module.exports = {
      name: "AsyncLoop",
      parameters: [],
      requiredTensors() { return []; },
      invokeAtStep() { const spin = () => Promise.resolve().then(spin); spin(); return false; },
    };`,
  "uses-eval.js": `
    module.exports = {
      name: "UsesEval",
      parameters: [],
      requiredTensors() { return []; },
      invokeAtStep() { return eval("1 + 1") === 2; },
    };`,
  // One of two parameters is needed, as AllZero needs collection_names or tensor_regex.
  "either.js": `
    module.exports = {
      name: "EitherMetric",
      parameters: [
        { name: "metric", type: "string", description: "a tensor name" },
        { name: "metric_regex", type: "regexList", description: "tensor names" },
      ],
      requiredOneOf: [["metric", "metric_regex"]],
      requiredTensors() { return []; },
      invokeAtStep() { return false; },
    };`,
  "bad-group.js": `
    module.exports = { name: "BadGroup", parameters: [{ name: "a" }], requiredOneOf: [["a", "nope"]],
      requiredTensors() { return []; }, invokeAtStep() { return false; } };`,
  "broken.js": "module.exports = { name: 'Broken', ",
  "shadows.js": "module.exports = { name: 'AllZero', requiredTensors() { return []; }, invokeAtStep() { return false; } };",
  "not-a-rule.txt": "ignored",
};

test.before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "rules-custom-"));
  for (const [f, code] of Object.entries(RULES)) await writeFile(path.join(dir, f), code);
});
test.after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test("custom rules load beside the built-ins; broken modules are reported, not fatal", async () => {
  const { registry, errors } = await RuleRegistry.load(dir, { timeoutMs: 200 });
  const custom = builtinRules(registry).filter((r) => r.source === "custom").map((r) => r.name).sort();
  assert.deepEqual(custom, ["AlwaysThrows", "EitherMetric", "LoopsForever", "MetricAbove", "UsesEval"]);
  assert.equal(builtinRules(registry).length, BUILTIN_RULES.length + 5);
  const byFile = Object.fromEntries(errors.map((e) => [path.basename(e.file), e.message]));
  assert.deepEqual(Object.keys(byFile).sort(), ["async-loop.js", "bad-group.js", "broken.js", "shadows.js"]);
  assert.match(byFile["bad-group.js"], /requiredOneOf group \[a, nope\] must name two or more of its parameters/);
  const either = builtinRules(registry).find((r) => r.name === "EitherMetric")!;
  assert.deepEqual(either.parameters.map((p) => p.requiredOneOf), [["metric", "metric_regex"], ["metric", "metric_regex"]]);
  assert.throws(() => validateRuleSpecs([{ builtin: "EitherMetric" }], registry), /rule EitherMetric: give metric or metric_regex \(or both\)/);
  assert.equal(validateRuleSpecs([{ builtin: "EitherMetric", parameters: { metric_regex: "rmse$" } }], registry).length, 1);
  // A microtask loop cannot be cut off safely (see src/rules/custom.ts): asynchronous rules are refused.
  assert.match(byFile["async-loop.js"], /rules must be synchronous \(found "Promise"\)/);
  assert.match(byFile["broken.js"], /syntax error/);
  assert.match(byFile["shadows.js"], /AllZero is already taken/);
  const info = builtinRules(registry).find((r) => r.name === "MetricAbove")!;
  assert.deepEqual(info.parameters.map((p) => [p.name, p.default]), [["tensor", "validation-rmse"], ["threshold", "3"], ["padding", "0"]]);
  assert.throws(() => validateRuleSpecs([{ builtin: "MetricAbove", parameters: { threshold: "high" } }], registry), /threshold must be a number/);
});

test("a custom rule fires like a built-in; throwing and looping rules end in ERROR; the process stays responsive", async () => {
  const { registry } = await RuleRegistry.load(dir, { timeoutMs: 200 });
  const trial = (await openTrial(new LocalSource(ABALONE_TRIAL), "abalone"))!;
  let timerRan = false;
  setTimeout(() => (timerRan = true), 0);
  const results = await evaluateRules(trial, [
    { builtin: "MetricAbove", name: "val-above-2.27", parameters: { threshold: "2.27" } },
    { builtin: "MetricAbove", name: "val-above-9" , parameters: { threshold: "9" } },
    { builtin: "MetricAbove", name: "every-step", parameters: { tensor: "train-rmse", threshold: "0", padding: "5000" } },
    { builtin: "AlwaysThrows" },
    { builtin: "LoopsForever" },
    { builtin: "AsyncLoop" },
    { builtin: "UsesEval" },
    { builtin: "LossNotDecreasing", parameters: { collection_names: "metrics", num_steps: "10" } },
  ], { registry, webhookUrl: null });
  const by = Object.fromEntries(results.map((r) => [r.ruleConfigurationName, r]));
  const val = (s: number) => (golden.tensors["validation-rmse"].values[String(s)].value as number[])[0];
  assert.deepEqual(by["val-above-2.27"].triggeredSteps, golden.steps.filter((s) => val(s) > 2.27));
  assert.match(by["val-above-2.27"].statusDetails!, /after 1 steps/, "state starts fresh per instance");
  // A custom rule's tensors reach the findings like a built-in's.
  assert.deepEqual(by["val-above-2.27"].findings.map((f) => [f.step, f.tensorNames]),
    golden.steps.filter((s) => val(s) > 2.27).map((s) => [s, ["validation-rmse", "also-validation-rmse"]]));
  assert.equal(by["val-above-9"].status, "NO_ISSUES_FOUND");
  // A custom rule's long details are cut in the findings (statusDetails keeps them).
  const long = by["every-step"].findings;
  assert.deepEqual(long.map((f) => f.step), golden.steps);
  assert.ok(long.every((f) => f.message.length === 500 && f.message.endsWith("…")), "long messages are cut");
  assert.equal(by.AlwaysThrows.status, "ERROR");
  assert.match(by.AlwaysThrows.statusDetails!, /threw: boom from the rule/);
  assert.equal(by.LoopsForever.status, "ERROR");
  assert.match(by.LoopsForever.statusDetails!, /exceeded its time budget of 200 ms/);
  assert.equal(by.AsyncLoop.status, "ERROR");
  assert.match(by.AsyncLoop.statusDetails!, /unknown rule AsyncLoop/);
  assert.equal(by.UsesEval.status, "ERROR");
  assert.match(by.UsesEval.statusDetails!, /threw: .*[Cc]ode generation from strings disallowed/);
  assert.deepEqual(by.LossNotDecreasing.triggeredSteps, [30, 40, 50], "the built-ins beside them are unaffected");
  await new Promise((r) => setImmediate(r));
  assert.ok(timerRan, "the event loop kept running");
});

test("a looping custom rule in a live session is stopped per step and later advances still work", async () => {
  const { registry } = await RuleRegistry.load(dir, { timeoutMs: 100 });
  const trial = (await openTrial(new LocalSource(ABALONE_TRIAL), "abalone"))!;
  const session = await RuleSession.create(trial, [{ builtin: "LoopsForever" }, { builtin: "MetricAbove" }], { registry, webhookUrl: null });
  await session.advance();
  await session.advance();
  const [loop, metric] = session.results();
  assert.equal(loop.status, "ERROR");
  assert.equal(loop.evaluatedSteps, 0);
  assert.equal(metric.status, "ISSUES_FOUND");
  assert.deepEqual(metric.triggeredSteps, [0, 5]);
});

// ------------------------------------------------------------------------------------------------
// Bounds: each custom rule instance is a worker thread with a heap limit, a time budget per call and
// per evaluation, no share of the service's environment, terminated when nobody waits.
// ------------------------------------------------------------------------------------------------

const BOUNDED: Record<string, string> = {
  "hoards.js": `
    module.exports = {
      name: "Hoards", parameters: [],
      create() {
        const kept = [];
        return {
          requiredTensors() { return []; },
          invokeAtStep() { for (let i = 0; i < 50; i++) kept.push(new Array(100000).fill(i + kept.length)); return { fired: false, checked: 1 }; },
        };
      },
    };`,
  "slow.js": `
    module.exports = {
      name: "Slow", parameters: [],
      requiredTensors() { return []; },
      invokeAtStep() { const until = Date.now() + 60; while (Date.now() < until) {} return { fired: false, checked: 1 }; },
    };`,
  "escapes.js": `
    module.exports = {
      name: "Escapes", parameters: [],
      requiredTensors() { return []; },
      invokeAtStep() {
        const proc = console.log.constructor("return process")();
        return { fired: true, details: "env=" + JSON.stringify(proc.env) };
      },
    };`,
  "asks.js": `
    module.exports = {
      name: "Asks", parameters: [],
      requiredTensors(ctx) { return [{ name: "validation-rmse", step: ctx.step }]; },
      invokeAtStep(ctx, values) {
        const names = ctx.trial.tensorNames({ regex: "rmse$", step: ctx.step });
        return { fired: ctx.step === 50, details: names.join("+") + " " + values.scalar("validation-rmse").toFixed(3) + " " + ctx.trial.steps().length };
      },
    };`,
};

test("a rule that allocates per step ends in ERROR at its memory limit; built-ins beside it and the service are unaffected", async () => {
  const d = await mkdtemp(path.join(os.tmpdir(), "rules-bounded-"));
  try {
    for (const [f, code] of Object.entries(BOUNDED)) await writeFile(path.join(d, f), code);
    const { registry, errors } = await RuleRegistry.load(d, { timeoutMs: 5000, memoryMb: 32 });
    assert.deepEqual(errors, []);
    const trial = (await openTrial(new LocalSource(ABALONE_TRIAL), "abalone"))!;
    const [hoards, asks, loss] = await evaluateRules(trial, [
      { builtin: "Hoards" }, { builtin: "Asks" },
      { builtin: "LossNotDecreasing", parameters: { collection_names: "metrics", num_steps: "10" } },
    ], { registry, webhookUrl: null });
    assert.equal(hoards.status, "ERROR");
    assert.match(hoards.statusDetails!, /exceeded its memory limit of 32 MB/);
    assert.ok(hoards.evaluatedSteps < golden.steps.length, "stopped part way");
    // A rule calls its context synchronously from its thread: names, values and steps come from the service.
    assert.equal(asks.status, "ISSUES_FOUND");
    const val50 = (golden.tensors["validation-rmse"].values["50"].value as number[])[0];
    assert.match(asks.statusDetails!, new RegExp(`train-rmse\\+validation-rmse ${val50.toFixed(3)} ${golden.steps.length}`));
    assert.deepEqual(loss.triggeredSteps, [30, 40, 50]);
  } finally {
    await rm(d, { recursive: true, force: true });
  }
});

test("time is bounded per evaluation, not only per call; rule code never sees the service's environment", async () => {
  const d = await mkdtemp(path.join(os.tmpdir(), "rules-bounded-"));
  process.env.TRIALGRAPH_API_TOKENS_PROBE = "ops:operator:a-secret-token-never-shown";
  try {
    for (const [f, code] of Object.entries(BOUNDED)) await writeFile(path.join(d, f), code);
    const { registry } = await RuleRegistry.load(d, { timeoutMs: 1000, evaluationTimeoutMs: 300 });
    const trial = (await openTrial(new LocalSource(ABALONE_TRIAL), "abalone"))!;
    const [slow, escapes] = await evaluateRules(trial, [{ builtin: "Slow" }, { builtin: "Escapes" }], { registry, webhookUrl: null });
    assert.equal(slow.status, "ERROR");
    assert.match(slow.statusDetails!, /exceeded its time budget of 300 ms for the whole evaluation/);
    assert.ok(slow.evaluatedSteps >= 2 && slow.evaluatedSteps < golden.steps.length, `each call fits, the sum does not (${slow.evaluatedSteps} steps)`);
    assert.equal(escapes.status, "ISSUES_FOUND");
    assert.match(escapes.statusDetails!, /env=\{\}/, "the worker's environment is empty");
    assert.doesNotMatch(escapes.statusDetails!, /secret/);
  } finally {
    delete process.env.TRIALGRAPH_API_TOKENS_PROBE;
    await rm(d, { recursive: true, force: true });
  }
});

test("evaluateRules over HTTP: when the client leaves, the custom rule's worker is terminated at once", async () => {
  const d = await mkdtemp(path.join(os.tmpdir(), "rules-bounded-"));
  const { startTestServer } = await import("./support/server.js");
  const { cp } = await import("node:fs/promises");
  for (const [f, code] of Object.entries(BOUNDED)) await writeFile(path.join(d, f), code);
  const server = await startTestServer({ TRIALGRAPH_RULES_DIR: d, TRIALGRAPH_RULE_STEP_TIMEOUT_MS: "5000" });
  try {
    await cp(ABALONE_TRIAL, path.join(server.dataDir, "trials/abalone"), { recursive: true });
    const workersBefore = customRuleWorkers();
    const aborter = new AbortController();
    // 51 steps × 60 ms: about 3 s if it ran to the end.
    const pending = fetch(server.url, {
      method: "POST", signal: aborter.signal, headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: `{ evaluateRules(path: "trials/abalone", rules: [{ builtin: "Slow" }]) { status } }` }),
    }).catch((e) => e);
    const until = Date.now() + 10_000;
    while (customRuleWorkers() === workersBefore && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    assert.equal(customRuleWorkers(), workersBefore + 1, "the rule runs in a worker");
    const abortedAt = Date.now();
    aborter.abort();
    await pending;
    while (customRuleWorkers() > workersBefore && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    assert.equal(customRuleWorkers(), workersBefore, "no worker is left running");
    assert.ok(Date.now() - abortedAt < 1500, "terminated well before the evaluation would have ended");
    const health = await fetch(server.url.replace(/graphql$/, "healthz"));
    assert.equal(health.status, 200);
  } finally {
    await server.close();
    await rm(d, { recursive: true, force: true });
  }
});

test("the rules folder is confined: a module linked from outside it is refused, naming the link", async () => {
  const d = await mkdtemp(path.join(os.tmpdir(), "rules-confined-"));
  const outside = await mkdtemp(path.join(os.tmpdir(), "rules-outside-"));
  try {
    await writeFile(path.join(outside, "planted.js"), RULES["metric-above.js"]);
    await symlink(path.join(outside, "planted.js"), path.join(d, "planted.js"));
    const { registry, errors } = await RuleRegistry.load(d);
    assert.equal(registry.get("MetricAbove"), undefined);
    assert.match(errors[0].message, /planted\.js is a symbolic link whose target is outside the rules folder/);
  } finally {
    await rm(d, { recursive: true, force: true });
    await rm(outside, { recursive: true, force: true });
  }
});
