import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import path from "node:path";
import { createClient } from "graphql-ws";
import WebSocket from "ws";
import { startTestServer, type TestServer } from "./support/server.js";
import { ABALONE_TRIAL, flattenGolden, goldenNumber, loadGolden } from "./support/fixtures.js";

let server: TestServer;
const golden = loadGolden();

before(async () => {
  server = await startTestServer();
  await fs.mkdir(path.join(server.dataDir, "trials"), { recursive: true });
  // A temp copy: a symlink out of the data dir would rightly be FORBIDDEN_PATH.
  await fs.cp(ABALONE_TRIAL, path.join(server.dataDir, "trials/abalone"), { recursive: true });
});
after(async () => server.close());

test("first start writes the example trial, listed by trials and ready to query", async () => {
  const { body } = await server.gql(`{ trials { id path trainingEnded } trial(path: "trials/example") {
    steps collections { name } tensorNames(collection: "metrics")
    collection(name: "metrics") { tensors { name series { steps values } } } } }`);
  assert.equal(body.errors, undefined);
  assert.ok(body.data.trials.some((t: any) => t.path === "trials/example" && t.trainingEnded));
  const trial = body.data.trial;
  assert.equal(trial.steps.length, 100);
  assert.deepEqual(trial.tensorNames, ["train-rmse", "validation-rmse"]);
  for (const t of trial.collection.tensors) {
    assert.equal(t.series.steps.length, 100);
    assert.ok(t.series.values.every((v: number) => Number.isFinite(v)));
  }
});

test("a mistyped trial path: trial answers null (the contract), trialPaths(near:) and evaluateRules' NOT_FOUND name the closest known paths", async () => {
  const { body } = await server.gql(`{ trial(path: "trials/exampel") { path }
    all: trialPaths near: trialPaths(near: "trials/exampel", first: 2) abalone: trialPaths(near: "trials/abalon/", first: 1) }`);
  assert.equal(body.errors, undefined, JSON.stringify(body.errors));
  assert.equal(body.data.trial, null);
  assert.deepEqual(body.data.all, ["trials/abalone", "trials/example"], "every known path, sorted");
  assert.deepEqual(body.data.near, ["trials/example", "trials/abalone"], "closest first");
  assert.deepEqual(body.data.abalone, ["trials/abalone"]);
  const rules = await server.gql(`{ evaluateRules(path: "trials/exampel", rules: [{ builtin: "Overfit" }]) { status } }`);
  const [error] = rules.body.errors!;
  assert.equal(error.extensions.code, "NOT_FOUND");
  assert.equal(error.message, "no trial at trials/exampel; closest known: trials/example, trials/abalone");
  assert.deepEqual(error.extensions.suggestions, ["trials/example", "trials/abalone"]);
  assert.equal(error.extensions.field, "path");
  const bad = await server.gql(`{ trialPaths(first: 0) }`);
  assert.equal(bad.body.errors?.[0].extensions.code, "BAD_USER_INPUT");
});

test("the lab's analysis over GraphQL matches smdebug's golden", async () => {
  const { body } = await server.gql(`query($p: String!) { trial(path: $p) {
      tensorNames steps
      rmse: tensor(name: "train-rmse") { steps value(step: 30) { step mode modeStep worker dtype shape data scalar } }
      metrics: collection(name: "metrics") { tensors { name series { tensorName steps values nonFinite { index } sampled } } }
      fi: tensors(regex: "feature_importance/gain/") { name values { step scalar } }
      shap: tensors(collection: "average_shap") { name series(maxPoints: 4) { steps values sampled } }
    } }`, { p: "trials/abalone" });
  assert.equal(body.errors, undefined, JSON.stringify(body.errors));
  const t = body.data.trial;
  assert.deepEqual(t.tensorNames, golden.tensor_names);
  assert.deepEqual(t.steps, golden.steps);
  const g = golden.tensors["train-rmse"];
  assert.deepEqual(t.rmse.steps, g.steps);
  assert.deepEqual(t.rmse.value, { step: 30, mode: "GLOBAL", modeStep: 30, worker: "worker_0", dtype: "float64", shape: [1], data: [g.values["30"].value as any][0], scalar: (g.values["30"].value as number[])[0] });
  for (const s of t.metrics.tensors) {
    const gt = golden.tensors[s.name];
    assert.deepEqual(s.series.steps, gt.steps);
    assert.deepEqual(s.series.values, gt.steps.map((st) => goldenNumber(flattenGolden(gt.values[String(st)].value)[0])));
    assert.equal(s.series.sampled, false);
  }
  assert.ok(t.fi.length >= 5);
  for (const tensor of t.fi) {
    for (const v of tensor.values) assert.equal(v.scalar, goldenNumber(flattenGolden(golden.tensors[tensor.name].values[String(v.step)].value)[0]));
  }
  for (const s of t.shap) {
    assert.equal(s.series.sampled, true);
    assert.deepEqual([s.series.steps[0], s.series.steps.at(-1)], [0, 50], "first and last kept");
    assert.ok(s.series.steps.length <= 4);
  }
});

test("bad input: unknown trial is null, escapes are FORBIDDEN_PATH, bad regex BAD_USER_INPUT, missing step TENSOR_UNAVAILABLE_FOR_STEP", async () => {
  let r = await server.gql(`{ trial(path: "trials/nope") { path } }`);
  assert.deepEqual(r.body, { data: { trial: null } });
  for (const p of ["../etc", "/etc", "trials/../../x"]) {
    r = await server.gql(`query($p: String!) { trial(path: $p) { path } }`, { p });
    assert.equal(r.body.errors?.[0].extensions.code, "FORBIDDEN_PATH", p);
  }
  await fs.symlink("/etc", path.join(server.dataDir, "trials/escape"));
  r = await server.gql(`{ trial(path: "trials/escape") { path } }`);
  assert.equal(r.body.errors?.[0].extensions.code, "FORBIDDEN_PATH", "a symlink out of the data dir");
  r = await server.gql(`{ trial(path: "trials/abalone") { tensorNames(regex: "([") } }`);
  assert.equal(r.body.errors?.[0].extensions.code, "BAD_USER_INPUT");
  r = await server.gql(`{ trial(path: "trials/abalone") { tensor(name: "train-rmse") { value(step: 7) { data } } } }`);
  assert.equal(r.body.errors?.[0].extensions.code, "TENSOR_UNAVAILABLE_FOR_STEP");
  assert.deepEqual(r.body.data.trial.tensor.value, null);
  for (const e of [r.body.errors[0]]) assert.equal(e.extensions.stacktrace, undefined);
});

test("NaN and infinities travel as null plus nonFinite", async () => {
  const { TrialWriter } = await import("../src/trials/trial-writer.js");
  const w = new TrialWriter(path.join(server.dataDir, "trials/nonfinite"));
  await w.writeCollections([{ name: "default", includeRegex: [] }]);
  await w.writeStep(0, [{ name: "x", dtype: "float32", shape: [3], values: [1, NaN, -Infinity] }, { name: "s", dtype: "float64", shape: [1], values: [Infinity] }]);
  await w.writeStep(1, [{ name: "s", dtype: "float64", shape: [1], values: [2] }]);
  await w.end();
  const { body } = await server.gql(`{ trial(path: "trials/nonfinite") { x: tensor(name: "x") { value(step: 0) { data nonFinite { index value } scalar } }
    s: tensor(name: "s") { series { values nonFinite { index value } } } } }`);
  assert.deepEqual(body.data.trial.x.value, { data: [1, null, null], nonFinite: [{ index: 1, value: "NaN" }, { index: 2, value: "-Infinity" }], scalar: null });
  assert.deepEqual(body.data.trial.s.series, { values: [null, 2], nonFinite: [{ index: 0, value: "Infinity" }] });
});

test("the playground is served offline at GET /graphql", async () => {
  const res = await fetch(server.url, { headers: { accept: "text/html" } });
  assert.equal(res.status, 200);
  const html = await res.text();
  assert.match(html, /graphiql/i);
  assert.doesNotMatch(html, /<script[^>]+src="https?:\/\//i, "no external scripts");
  assert.doesNotMatch(html, /<link[^>]+href="https?:\/\//i, "no external stylesheets");
});

test("queries over graphql-ws answer like HTTP; a growing trial pushes trialStepsAdded", async () => {
  const client = createClient({ url: server.wsUrl, webSocketImpl: WebSocket, retryAttempts: 0 });
  try {
    const once = await new Promise<any>((resolve, reject) => {
      let result: any;
      client.subscribe({ query: `{ trial(path: "trials/abalone") { tensor(name: "validation-rmse") { value(step: 20) { scalar } } } }` }, {
        next: (v) => (result = v), error: reject, complete: () => resolve(result),
      });
    });
    assert.equal(once.data.trial.tensor.value.scalar, (golden.tensors["validation-rmse"].values["20"].value as number[])[0]);

    const { TrialWriter } = await import("../src/trials/trial-writer.js");
    const dir = path.join(server.dataDir, "trials/live");
    const w = new TrialWriter(dir);
    await w.writeCollections([{ name: "metrics", includeRegex: ["^[a-zA-z]+-[a-zA-z0-9]+$"] }]);
    await w.writeStep(0, [{ name: "train-rmse", dtype: "float64", shape: [1], values: [3] }]);
    const events: any[] = [];
    const done = new Promise<void>((resolve, reject) => {
      const stop = client.subscribe({ query: `subscription { trialStepsAdded(path: "trials/live") { path steps lastCompleteStep trainingEnded } }` }, {
        next: (v) => {
          events.push(v);
          if ((v.data as any)?.trialStepsAdded.trainingEnded) { stop(); resolve(); }
        },
        error: reject, complete: () => resolve(),
      });
    });
    await new Promise((r) => setTimeout(r, 300));
    await w.writeStep(1, [{ name: "train-rmse", dtype: "float64", shape: [1], values: [2] }]);
    await new Promise((r) => setTimeout(r, 2500));
    await w.writeStep(2, [{ name: "train-rmse", dtype: "float64", shape: [1], values: [1] }]);
    await w.end();
    await done;
    const steps = events.flatMap((e) => e.data.trialStepsAdded.steps);
    // The first event has the steps the trial has (0, and 1 if it landed before the subscription
    // was live); then each new step once, in order.
    assert.deepEqual(steps, [0, 1, 2]);
    assert.ok(events[0].data.trialStepsAdded.steps.includes(0), JSON.stringify(events[0]));
    assert.equal(events.at(-1).data.trialStepsAdded.lastCompleteStep, 2);

    const err = await new Promise<any>((resolve) => {
      client.subscribe({ query: `subscription { trialStepsAdded(path: "trials/none") { steps } }` }, {
        next: (v) => resolve(v), error: (e) => resolve(e), complete: () => {},
      });
    });
    const errors = Array.isArray(err) ? err : err.errors;
    assert.equal(errors[0].extensions.code, "NOT_FOUND");
  } finally {
    await client.dispose();
  }
});
