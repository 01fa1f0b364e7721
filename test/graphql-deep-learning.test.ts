/**
 * The deep-learning API over HTTP: reductions, statistics, histograms, losses by mode and workers,
 * on the digits-mlp fixture (against smdebug's golden) and on trials written with the TrialWriter
 * (several workers, NaN/Inf, reductions without raw tensors), plus the limits these fields obey.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import path from "node:path";
import { startTestServer, type TestServer } from "./support/server.js";
import { DIGITS_TRIAL, loadDigitsGolden } from "./support/fixtures.js";
import { matrix, writeTrialTo } from "./support/write-trial.js";

const golden = loadDigitsGolden();
let server: TestServer;
let small: TestServer;

const WEIGHTS = ["MLP_fc1.weight", "MLP_fc2.weight", "MLP_fc3.weight"];

before(async () => {
  server = await startTestServer();
  const trials = path.join(server.dataDir, "trials");
  await fs.mkdir(trials, { recursive: true });
  await fs.cp(DIGITS_TRIAL, path.join(trials, "digits"), { recursive: true });

  // Two workers (smdebug include_workers "all"): each writes every step with its own values.
  const steps = [];
  for (const worker of ["worker_0", "worker_1"]) {
    const k = worker === "worker_0" ? 1 : 2;
    for (let step = 0; step < 4; step++) {
      steps.push({ step, worker, tensors: { loss: 10 * k - step, "fc.weight": matrix(4, 8, (r, c) => k * (r + c + step)) } });
    }
  }
  await writeTrialTo(path.join(trials, "workers"), steps, { workers: ["worker_0", "worker_1"] });

  // Reductions only (save_raw_tensor False), and tensors with NaN and ±Inf.
  await writeTrialTo(path.join(trials, "reduced"), [0, 1, 2].map((step) => ({
    step, tensors: { "gradient/fc.weight": matrix(8, 8, (r, c) => (r - c) * 10 ** -step), "fc.weight": matrix(2, 2, () => step) },
  })), {
    reductions: [{
      match: /^gradient\//, saveRaw: false,
      reductions: [{ reduction: "mean", abs: true }, { reduction: "max", abs: false }, { reduction: "l2", abs: false }],
    }],
  });
  await writeTrialTo(path.join(trials, "nonfinite"), [
    { step: 0, tensors: { x: [1, NaN, Infinity, -Infinity, 0, 3] } },
    { step: 1, tensors: { x: [NaN, NaN] } },
  ]);

  small = await startTestServer({ TRIALGRAPH_DATA_DIR: server.dataDir, TRIALGRAPH_MAX_ELEMENTS_READ: "3000" });
});
after(async () => {
  await small.close();
  await server.close();
});

async function ok(query: string, variables?: Record<string, unknown>, s = server) {
  const r = await s.gql(query, variables);
  assert.equal(r.body.errors, undefined, JSON.stringify(r.body.errors));
  return r.body.data;
}

async function code(query: string, s = server): Promise<string> {
  const r = await s.gql(query);
  assert.ok(r.body.errors?.length, `expected an error from ${query}`);
  return r.body.errors![0].extensions.code;
}

test("digits: reductions are not tensor names; saved ones are listed and read as smdebug's reduction_value", async () => {
  const d = await ok(`{ trial(path: "trials/digits") {
    tensorNames
    g: tensor(name: "gradient/MLP_fc1.weight") {
      reductionsOnly
      reductions { name abs tensorName }
      atEval: reductions(step: 0, mode: EVAL) { name }
      absMax: reductionValue(step: 0, name: MAX, abs: true) { step mode modeStep worker name abs value saved nonFinite }
      byMode: reductionValue(step: 25, mode: TRAIN, name: L2) { step value saved }
      series: reductionSeries(name: MAX, abs: true, mode: TRAIN) { steps globalSteps values mode }
    }
    w: tensor(name: "MLP_fc1.weight") { reductions { name } max: reductionValue(step: 5, name: MAX) { value saved } }
  } }`);
  const t = d.trial;
  assert.deepEqual(t.tensorNames, golden.tensor_names);
  assert.equal(t.g.reductionsOnly, false);
  assert.deepEqual(t.g.reductions.map((r: any) => `${r.abs ? "abs_" : ""}${r.name}`), ["L2", "MAX", "MEAN", "MIN", "abs_MAX"]);
  assert.ok(t.g.reductions.some((r: any) => r.tensorName === "smdebug/reductions/abs_max/gradient/MLP_fc1.weight"));
  assert.deepEqual(t.g.atEval, [], "gradients are saved in TRAIN steps only");
  const g = golden.tensors["gradient/MLP_fc1.weight"];
  assert.deepEqual(t.g.absMax, {
    step: 0, mode: "TRAIN", modeStep: 0, worker: "worker_0", name: "MAX", abs: true, value: g.values["0"].reductions!.abs_max, saved: true, nonFinite: null,
  });
  assert.deepEqual(t.g.byMode, { step: 31, value: g.values["31"].reductions!.l2, saved: true });
  assert.deepEqual(t.g.series.globalSteps, g.steps);
  assert.deepEqual(t.g.series.values, g.steps.map((s) => g.values[String(s)].reductions!.abs_max));
  assert.equal(t.g.series.mode, "TRAIN");
  assert.deepEqual(t.w.reductions, []);
  assert.deepEqual(t.w.max, { value: golden.tensors["MLP_fc1.weight"].values["5"].stats!.max, saved: false });
});

test("digits: the dashboard's per-layer query — statistics of every weight and gradient over steps in one request", async () => {
  const d = await ok(`{ trial(path: "trials/digits") {
    weights: tensors(collection: "weights") { name statsSeries(mode: TRAIN) { tensorName mode steps globalSteps min max mean std l2 zeros nan size } }
    gradients: tensors(collection: "gradients") { name statsSeries { steps min max mean } maxSeries: statSeries(stat: MAX, mode: TRAIN, maxPoints: 4) { steps values sampled totalPoints } }
  } }`);
  assert.deepEqual(d.trial.weights.map((w: any) => w.name), WEIGHTS);
  for (const w of d.trial.weights) {
    const g = golden.tensors[w.name];
    const s = w.statsSeries;
    assert.equal(s.mode, "TRAIN");
    assert.deepEqual(s.steps, Object.keys(g.mode_steps.TRAIN).map(Number).sort((a, b) => a - b));
    assert.deepEqual(s.globalSteps, s.steps.map((ms: number) => g.mode_steps.TRAIN[String(ms)]));
    s.globalSteps.forEach((step: number, i: number) => {
      const gs = g.values[String(step)].stats!;
      assert.equal(s.min[i], gs.min);
      assert.equal(s.max[i], gs.max);
      assert.ok(Math.abs(s.mean[i] - gs.mean) <= 1e-12 * gs.l2, `${w.name}@${step} mean`);
      assert.ok(Math.abs(s.l2[i] - gs.l2) <= 1e-12 * gs.l2);
      assert.ok(s.std[i] > 0 && s.std[i] < gs.l2);
      assert.equal(s.nan[i], 0);
      assert.equal(s.size[i], golden.tensors[w.name].values[String(step)].shape.reduce((a, b) => a * b, 1));
    });
  }
  for (const t of d.trial.gradients) {
    const g = golden.tensors[t.name];
    assert.deepEqual(t.statsSeries.steps, g.steps, "gradients exist in TRAIN steps only");
    const max = (step: number) => g.values[String(step)].stats?.max ?? Math.max(...(g.values[String(step)].data as number[]));
    assert.deepEqual(t.statsSeries.max, g.steps.map(max));
    assert.equal(t.maxSeries.totalPoints, 14);
    assert.equal(t.maxSeries.sampled, true);
    assert.ok(t.maxSeries.steps.length <= 4 && t.maxSeries.steps[0] === 0 && t.maxSeries.steps.at(-1) === 65);
  }
});

test("digits: losses by mode on one chart (mode steps and their global steps); stats and histograms of one value", async () => {
  const d = await ok(`{ trial(path: "trials/digits") { tensor(name: "CrossEntropyLoss_output_0") {
      train: series(mode: TRAIN) { steps globalSteps values }
      eval: series(mode: EVAL) { steps globalSteps values }
    }
    relu: tensor(name: "relu2_output_0") {
      value(step: 23) { mode shape stats { size finite min max mean zeros nan posInf negInf } histogram(bins: 8) { edges counts below above nonFinite } narrow: histogram(bins: 2, range: [0.1, 0.2]) { counts below above } }
      histogramSeries(bins: 5, mode: EVAL) { steps globalSteps edges counts outside nonFinite }
    } } }`);
  const loss = golden.tensors.CrossEntropyLoss_output_0;
  const t = d.trial.tensor;
  assert.deepEqual(t.eval.steps, [0, 5, 10, 15]);
  assert.deepEqual(t.eval.globalSteps, [23, 28, 56, 84]);
  assert.deepEqual(t.eval.values, t.eval.globalSteps.map((s: number) => loss.values[String(s)].data![0]));
  assert.deepEqual(t.train.globalSteps, loss.steps.filter((s) => loss.values[String(s)].mode === "TRAIN"));
  const v = d.trial.relu.value;
  const gs = golden.tensors.relu2_output_0.values["23"].stats!;
  assert.equal(v.mode, "EVAL");
  assert.deepEqual([v.stats.size, v.stats.finite, v.stats.min, v.stats.max], [64 * 16, 64 * 16, gs.min, gs.max]);
  assert.ok(v.stats.zeros > 0 && v.stats.nan === 0 && v.stats.posInf === 0);
  assert.equal(v.histogram.edges.length, 9);
  assert.equal(v.histogram.counts.reduce((a: number, b: number) => a + b, 0), 64 * 16);
  assert.ok(v.histogram.counts[0] >= v.stats.zeros);
  assert.ok(v.narrow.below >= v.stats.zeros);
  assert.equal(v.narrow.counts[0] + v.narrow.counts[1] + v.narrow.below + v.narrow.above, 64 * 16);
  const h = d.trial.relu.histogramSeries;
  assert.deepEqual(h.steps, [0, 5, 10, 15]);
  assert.equal(h.edges.length, 6);
  assert.equal(h.edges[0], 0);
  assert.equal(h.edges[5], Math.max(...h.globalSteps.map((s: number) => golden.tensors.relu2_output_0.values[String(s)].stats!.max)));
  h.counts.forEach((row: number[], i: number) => {
    const [rows, cols] = golden.tensors.relu2_output_0.values[String(h.globalSteps[i])].shape;
    assert.equal(row.reduce((a, b) => a + b, 0), rows * cols, "a common range holds every element of every step (the last EVAL batch has 40 rows)");
  });
  assert.deepEqual(h.outside, [0, 0, 0, 0]);
});

test("workers: per-worker values and series, and the view across workers", async () => {
  const d = await ok(`{ trial(path: "trials/workers") {
    workers
    loss: tensor(name: "loss") {
      workers
      first: series { steps values worker }
      w1: series(worker: "worker_1") { steps values worker }
      perWorker: workerSeries { worker steps values }
      v: value(step: 2, worker: "worker_1") { worker scalar }
      vs: values(worker: "worker_1", fromStep: 1, toStep: 2) { step worker scalar }
      steps(worker: "worker_1")
    }
    w: tensor(name: "fc.weight") {
      meanPerWorker: workerSeries(stat: MEAN) { worker steps values }
      w1: statsSeries(worker: "worker_1") { worker max }
    }
  } }`);
  const t = d.trial;
  assert.deepEqual(t.workers, ["worker_0", "worker_1"]);
  assert.deepEqual(t.loss.workers, ["worker_0", "worker_1"]);
  assert.deepEqual(t.loss.first, { steps: [0, 1, 2, 3], values: [10, 9, 8, 7], worker: null }, "smdebug reads the first worker by default");
  assert.deepEqual(t.loss.w1, { steps: [0, 1, 2, 3], values: [20, 19, 18, 17], worker: "worker_1" });
  assert.deepEqual(t.loss.perWorker, [
    { worker: "worker_0", steps: [0, 1, 2, 3], values: [10, 9, 8, 7] },
    { worker: "worker_1", steps: [0, 1, 2, 3], values: [20, 19, 18, 17] },
  ]);
  assert.deepEqual(t.loss.v, { worker: "worker_1", scalar: 18 });
  assert.deepEqual(t.loss.vs, [{ step: 1, worker: "worker_1", scalar: 19 }, { step: 2, worker: "worker_1", scalar: 18 }]);
  assert.deepEqual(t.loss.steps, [0, 1, 2, 3]);
  // Mean of k·(r + c + step) over r < 4, c < 8 is k·(1.5 + 3.5 + step).
  assert.deepEqual(t.w.meanPerWorker, [
    { worker: "worker_0", steps: [0, 1, 2, 3], values: [5, 6, 7, 8] },
    { worker: "worker_1", steps: [0, 1, 2, 3], values: [10, 12, 14, 16] },
  ]);
  assert.deepEqual(t.w.w1, { worker: "worker_1", max: [20, 22, 24, 26] });
  assert.equal(await code(`{ trial(path: "trials/workers") { tensor(name: "loss") { series(worker: "worker_9") { values } } } }`), "BAD_USER_INPUT");
});

test("reductions without raw tensors: the tensor exists, its values are unavailable, its reductions plot", async () => {
  const d = await ok(`{ trial(path: "trials/reduced") {
    tensorNames
    tensor(name: "gradient/fc.weight") {
      steps reductionsOnly
      reductions { name abs }
      absMean: reductionSeries(name: MEAN, abs: true) { steps values }
      l2: reductionValue(step: 1, name: L2) { value saved }
      statsSeries { steps }
    }
    raw: tensor(name: "fc.weight") { reductionsOnly }
  } }`);
  const t = d.trial.tensor;
  assert.deepEqual(d.trial.tensorNames, ["fc.weight", "gradient/fc.weight"]);
  assert.deepEqual(t.steps, [0, 1, 2]);
  assert.equal(t.reductionsOnly, true);
  assert.equal(d.trial.raw.reductionsOnly, false);
  assert.deepEqual(t.reductions, [{ name: "L2", abs: false }, { name: "MAX", abs: false }, { name: "MEAN", abs: true }]);
  // mean |r − c| over an 8×8 grid is 2.625 (float32-exact), scaled by 10^-step.
  assert.deepEqual(t.absMean.steps, [0, 1, 2]);
  t.absMean.values.forEach((v: number, i: number) => assert.equal(v, Math.fround(2.625 * 10 ** -i)));
  assert.equal(t.l2.saved, true);
  assert.equal(t.l2.value, Math.fround(Math.sqrt(2 * [1, 2, 3, 4, 5, 6, 7].reduce((a, k) => a + (8 - k) * k * k, 0)) * 0.1));
  assert.deepEqual(t.statsSeries.steps, [], "no raw value to compute statistics from");
  const r = await server.gql(`{ trial(path: "trials/reduced") { tensor(name: "gradient/fc.weight") { value(step: 0) { data } } } }`);
  assert.equal(r.body.errors?.[0].extensions.code, "TENSOR_UNAVAILABLE_FOR_STEP");
  assert.match(r.body.errors![0].message, /only its reductions were saved/);
  const missing = await server.gql(`{ trial(path: "trials/reduced") { tensor(name: "gradient/fc.weight") { reductionValue(step: 0, name: MIN) { value } } } }`);
  assert.equal(missing.body.errors?.[0].extensions.code, "TENSOR_UNAVAILABLE_FOR_STEP");
  assert.match(missing.body.errors![0].message, /reduction min was not saved and neither was the raw value/);
});

test("NaN and ±Infinity: counted apart, statistics over the finite elements, null plus nonFinite in series", async () => {
  const d = await ok(`{ trial(path: "trials/nonfinite") { tensor(name: "x") {
    value(step: 0) { stats { size finite min max mean sum zeros nan posInf negInf } histogram(bins: 3) { counts nonFinite edges } }
    statsSeries { min nan finite }
    statSeries(stat: MIN) { steps values nonFinite { index value } }
    reductionValue(step: 0, name: MAX) { value nonFinite saved }
  } } }`);
  const t = d.trial.tensor;
  assert.deepEqual(t.value.stats, { size: 6, finite: 3, min: 0, max: 3, mean: 4 / 3, sum: 4, zeros: 1, nan: 1, posInf: 1, negInf: 1 });
  assert.deepEqual(t.value.histogram, { counts: [1, 1, 1], nonFinite: 3, edges: [0, 1, 2, 3] });
  assert.deepEqual(t.statsSeries, { min: [0, null], nan: [1, 2], finite: [3, 0] });
  assert.deepEqual(t.statSeries, { steps: [0, 1], values: [0, null], nonFinite: [{ index: 1, value: "NaN" }] });
  assert.deepEqual(t.reductionValue, { value: null, nonFinite: "NaN", saved: false }, "numpy's max propagates NaN");
});

test("limits: elements read for statistics are charged (cached or not); bad bins, ranges and reductions are BAD_USER_INPUT", async () => {
  // 32×64 = 2,048 elements per step: two steps exceed a budget of 3,000 elements read.
  const one = `{ trial(path: "trials/digits") { tensor(name: "MLP_fc1.weight") { statsSeries(fromStep: 0, toStep: 0) { max } } } }`;
  const two = `{ trial(path: "trials/digits") { tensor(name: "MLP_fc1.weight") { statsSeries(fromStep: 0, toStep: 5) { max } } } }`;
  await ok(one, undefined, small);
  const r = await small.gql(two);
  assert.equal(r.body.errors?.[0].extensions.code, "LIMIT_EXCEEDED");
  assert.equal(r.body.errors?.[0].extensions.limit, "elementsRead");
  await ok(two); // the default budget allows it, and caches both steps' statistics
  assert.equal((await small.gql(two)).body.errors?.[0].extensions.code, "LIMIT_EXCEEDED", "cached statistics count too");

  const bad = [
    `{ trial(path: "trials/digits") { tensor(name: "relu1_output_0") { value(step: 0) { histogram(bins: 1001) { counts } } } } }`,
    `{ trial(path: "trials/digits") { tensor(name: "relu1_output_0") { value(step: 0) { histogram(bins: 0) { counts } } } } }`,
    `{ trial(path: "trials/digits") { tensor(name: "relu1_output_0") { value(step: 0) { histogram(range: [1, 0]) { counts } } } } }`,
    `{ trial(path: "trials/digits") { tensor(name: "relu1_output_0") { histogramSeries(range: [0]) { counts } } } }`,
    `{ trial(path: "trials/digits") { tensor(name: "relu1_output_0") { statSeries(stat: MAX, maxPoints: 1) { values } } } }`,
    `{ trial(path: "trials/digits") { tensor(name: "relu1_output_0") { reductionValue(step: 0, name: median) { value } } } }`,
    `{ trial(path: "trials/digits") { tensor(name: "relu1_output_0") { statsSeries(worker: "nobody") { max } } } }`,
  ];
  for (const q of bad) assert.equal(await code(q), q.includes("median") ? "GRAPHQL_VALIDATION_FAILED" : "BAD_USER_INPUT", q);
  assert.equal(await code(`{ trial(path: "trials/digits") { tensor(name: "relu1_output_0") { reductionValue(step: 1, name: MAX) { value } } } }`), "TENSOR_UNAVAILABLE_FOR_STEP");
});
