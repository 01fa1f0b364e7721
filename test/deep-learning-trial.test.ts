/**
 * The deep-learning fixture (digits-mlp, written by smdebug 1.0.34's PyTorch hook) read in process
 * against smdebug's golden: names (reductions are not tensor names), steps by mode, values,
 * statistics, saved reductions, and reductions computed from raw values.
 *
 * Exactness: values and saved reductions are float32 numbers and compare exactly; min and max are
 * exact; mean, sum and l2 are float64 in both (numpy sums pairwise, we sum in order), so they agree
 * to a relative 1e-12. The golden's computed values are float64 over the float32 data.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { LocalSource } from "../src/storage/local-source.js";
import type { ByteRange, ByteSource } from "../src/storage/byte-source.js";
import { openTrial, type Trial } from "../src/trials/trial.js";
import { createValueCache } from "../src/trials/value-cache.js";
import type { Mode } from "../src/format/tensor.js";
import { numpyDtype } from "./support/numpy-dtype.js";
import { DIGITS_TRIAL, loadDigitsGolden } from "./support/fixtures.js";

const golden = loadDigitsGolden();
const NAMES = Object.keys(golden.tensors);
const GRADIENTS = NAMES.filter((n) => n.startsWith("gradient/"));

/** A LocalSource that counts range reads, to see what a computation reads. */
class CountingSource implements ByteSource {
  rangeReads = 0;
  private readonly inner: LocalSource;
  constructor(dir: string) {
    this.inner = new LocalSource(dir);
  }
  get location() {
    return this.inner.location;
  }
  list(prefix: string, startAfter?: string) {
    return this.inner.list(prefix, startAfter);
  }
  read(key: string) {
    return this.inner.read(key);
  }
  readRanges(key: string, ranges: ByteRange[]) {
    this.rangeReads++;
    return this.inner.readRanges(key, ranges);
  }
  exists(key: string) {
    return this.inner.exists(key);
  }
}

async function open(source: ByteSource = new LocalSource(DIGITS_TRIAL)): Promise<Trial> {
  const t = await openTrial(source, "digits-mlp", { cache: createValueCache(64 * 1024 * 1024) });
  assert.ok(t);
  return t;
}

/**
 * Equal up to summation order: |Δ| ≤ rel·scale, the scale being the size of the terms summed (a mean
 * near 0 of values near 0.01 differs in its last digits between two summation orders).
 */
function close(actual: number, expected: number, what: string, rel = 1e-12, scale = Math.abs(expected)): void {
  assert.ok(Math.abs(actual - expected) <= rel * Math.max(scale, 1e-300), `${what}: ${actual} vs ${expected}`);
}

/** sha256 of the value as float32 little-endian bytes, as the golden hashes numpy's array. */
function sha256Float32(values: Float64Array): string {
  return createHash("sha256").update(Buffer.from(Float32Array.from(values).buffer)).digest("hex");
}

test("digits-mlp: tensor names exclude reductions; steps by mode, mode steps and workers match smdebug", async () => {
  const trial = await open();
  assert.deepEqual(trial.tensorNames(), golden.tensor_names);
  assert.ok(!trial.tensorNames().some((n) => n.includes("smdebug/reductions/")));
  assert.ok(!trial.hasTensor("smdebug/reductions/abs_max/gradient/MLP_fc1.bias"));
  assert.deepEqual(trial.workers, golden.workers);
  for (const [mode, steps] of Object.entries(golden.steps)) assert.deepEqual(trial.steps(mode as Mode), steps, `steps ${mode}`);
  for (const [name, t] of Object.entries(golden.tensors)) {
    assert.deepEqual(trial.tensorSteps(name), t.steps, `${name} steps`);
    for (const [mode, byModeStep] of Object.entries(t.mode_steps)) {
      const modeSteps = Object.keys(byModeStep).map(Number).sort((a, b) => a - b);
      assert.deepEqual(trial.tensorSteps(name, mode as Mode), modeSteps, `${name} ${mode} steps`);
      for (const [ms, global] of Object.entries(byModeStep)) assert.equal(trial.globalStep(mode as Mode, Number(ms)), global);
    }
  }
  for (const [name, c] of Object.entries(golden.collections)) {
    assert.deepEqual(trial.collection(name)?.includeRegex, c.include_regex, `${name} include_regex`);
    assert.deepEqual(trial.tensorNames({ collection: name }), c.tensor_names.filter((n) => golden.tensor_names.includes(n)).sort(), `${name} members`);
  }
});

test("digits-mlp: every value's dtype, shape, mode and data (or bytes, by sha256) matches the golden", async () => {
  const trial = await open();
  let compared = 0;
  for (const [name, t] of Object.entries(golden.tensors)) {
    const values = await trial.values(t.steps.map((step) => ({ name, step })));
    t.steps.forEach((step, i) => {
      const v = values[i];
      assert.ok(!(v instanceof Error), `${name}@${step}: ${v}`);
      const g = t.values[String(step)];
      assert.equal(numpyDtype(v), g.dtype, `${name}@${step} dtype`);
      assert.deepEqual(v.shape, g.shape, `${name}@${step} shape`);
      assert.equal(trial.modeOfStep(step)?.mode, g.mode);
      if (g.data) assert.deepEqual([...v.values!], g.data, `${name}@${step} data`);
      else assert.equal(sha256Float32(v.values!), g.stats!.sha256, `${name}@${step} bytes`);
      compared++;
    });
  }
  assert.equal(compared, Object.values(golden.tensors).reduce((a, t) => a + t.steps.length, 0));
});

test("digits-mlp: statistics equal the golden's (min/max exact, mean/sum/l2 to 1e-12) and are computed once", async () => {
  const source = new CountingSource(DIGITS_TRIAL);
  const trial = await open(source);
  const requests = Object.entries(golden.tensors)
    .flatMap(([name, t]) => t.steps.filter((s) => t.values[String(s)].stats).map((step) => ({ name, step })));
  assert.ok(requests.length >= 100);
  const first = await trial.stats(requests);
  const reads = source.rangeReads;
  assert.ok(reads > 0 && reads <= 18, `one read per event file at most, got ${reads}`);
  requests.forEach((r, i) => {
    const s = first[i];
    assert.ok(!(s instanceof Error), String(s));
    const g = golden.tensors[r.name].values[String(r.step)].stats!;
    assert.equal(s.min, g.min, `${r.name}@${r.step} min`);
    assert.equal(s.max, g.max, `${r.name}@${r.step} max`);
    // Σ|x| ≤ √n·l2 bounds the terms of the sum.
    close(s.mean, g.mean, `${r.name}@${r.step} mean`, 1e-12, g.l2 / Math.sqrt(s.size));
    close(s.sum, g.sum, `${r.name}@${r.step} sum`, 1e-12, g.l2 * Math.sqrt(s.size));
    close(s.l2, g.l2, `${r.name}@${r.step} l2`);
    assert.deepEqual([s.nan, s.posInf, s.negInf], [g.nan, g.posinf, g.neginf]);
    assert.equal(s.finite, s.size);
    assert.ok(s.std > 0);
  });
  // relu outputs are ReLU(x): about half zeros, and zeros are counted.
  const relu = first[requests.findIndex((r) => r.name === "relu1_output_0")];
  assert.ok(!(relu instanceof Error) && relu.zeros > 0 && relu.min === 0);
  const again = await trial.stats(requests);
  assert.equal(source.rangeReads, reads, "cached statistics read nothing");
  assert.deepEqual(again, first);
});

test("digits-mlp: saved reductions are listed per tensor and step and read exactly as smdebug's reduction_value", async () => {
  const trial = await open();
  for (const name of GRADIENTS) {
    assert.deepEqual(trial.savedReductions(name).map((r) => `${r.abs ? "abs_" : ""}${r.reduction}`), ["l2", "max", "mean", "min", "abs_max"]);
    const t = golden.tensors[name];
    const requests = t.steps.flatMap((step) => ["min", "max", "mean", "abs_max", "l2"].map((key) => ({
      name, step, reduction: key.replace("abs_", "") as "min", abs: key.startsWith("abs_"), key,
    })));
    const got = await trial.reductionValues(requests);
    requests.forEach((r, i) => {
      const v = got[i];
      assert.ok(!(v instanceof Error), String(v));
      assert.equal(v.saved, true);
      assert.equal(v.value, t.values[String(r.step)].reductions![r.key], `${name}@${r.step} ${r.key}`);
    });
    // By mode step, as smdebug's reduction_value(step, name, mode=TRAIN).
    const [ms, global] = Object.entries(t.mode_steps.TRAIN).at(-1)!;
    const [byMode] = await trial.reductionValues([{ name, step: Number(ms), mode: "TRAIN", reduction: "max", abs: true }]);
    assert.equal((byMode as { value: number }).value, t.values[String(global)].reductions!.abs_max);
  }
  assert.deepEqual(trial.savedReductions("MLP_fc1.weight"), []);
  assert.deepEqual(trial.savedReductions("gradient/MLP_fc1.bias", 23), [], "no gradients at an EVAL step");
  assert.equal(trial.onlyReductions("gradient/MLP_fc1.bias"), false);
});

test("digits-mlp: reductions that were not saved are computed from the raw value (float64 over float32 data)", async () => {
  const trial = await open();
  const name = "MLP_fc1.weight";
  const t = golden.tensors[name];
  const requests = t.steps.flatMap((step) => (["min", "max", "mean", "sum", "l2"] as const).map((reduction) => ({ name, step, reduction, abs: false })));
  const got = await trial.reductionValues(requests);
  requests.forEach((r, i) => {
    const v = got[i];
    assert.ok(!(v instanceof Error), String(v));
    assert.equal(v.saved, false);
    const g = t.values[String(r.step)].stats!;
    if (r.reduction === "min" || r.reduction === "max") assert.equal(v.value, g[r.reduction]);
    else {
      const n = 32 * 64;
      const scale = r.reduction === "mean" ? g.l2 / Math.sqrt(n) : r.reduction === "sum" ? g.l2 * Math.sqrt(n) : g.l2;
      close(v.value, g[r.reduction], `${name}@${r.step} ${r.reduction}`, 1e-12, scale);
    }
  });
  // abs max of a bias from its data; mean of the absolute values of a gradient from its raw value.
  const bias = golden.tensors["MLP_fc3.bias"].values["0"].data as number[];
  const [absMax] = await trial.reductionValues([{ name: "MLP_fc3.bias", step: 0, reduction: "max", abs: true }]);
  assert.equal((absMax as { value: number }).value, Math.max(...bias.map(Math.abs)));
  const [absMean] = await trial.reductionValues([{ name: "gradient/MLP_fc3.bias", step: 0, reduction: "mean", abs: true }]);
  const grad = golden.tensors["gradient/MLP_fc3.bias"].values["0"].data as number[];
  close((absMean as { value: number }).value, grad.reduce((a, x) => a + Math.abs(x), 0) / grad.length, "abs mean", 1e-15);
  assert.equal((absMean as { saved: boolean }).saved, false);
});

test("digits-mlp: series of a reduction and of statistics over TRAIN mode steps", async () => {
  const trial = await open();
  const name = "gradient/MLP_fc2.weight";
  const t = golden.tensors[name];
  const [series] = await trial.reductionSeries([{ name, mode: "TRAIN", reduction: "max", abs: true }]);
  assert.ok(!(series instanceof Error), String(series));
  const modeSteps = Object.keys(t.mode_steps.TRAIN).map(Number).sort((a, b) => a - b);
  assert.deepEqual(series.steps, modeSteps);
  assert.deepEqual([...series.values], modeSteps.map((ms) => t.values[String(t.mode_steps.TRAIN[String(ms)])].reductions!.abs_max));
  assert.ok(series.saved.every(Boolean));

  const [evalStats] = await trial.statsSeries([{ name: "MLP_fc1.weight", mode: "EVAL" }]);
  assert.ok(!(evalStats instanceof Error));
  assert.deepEqual(evalStats.steps, [0, 5, 10, 15]);
  const w = golden.tensors["MLP_fc1.weight"];
  evalStats.steps.forEach((ms, i) => assert.equal(evalStats.stats[i].max, w.values[String(w.mode_steps.EVAL[String(ms)])].stats!.max));
});

test("digits-mlp: histograms count every finite element into numpy's bins", async () => {
  const trial = await open();
  const [s] = await trial.stats([{ name: "relu1_output_0", step: 0 }]);
  const [h, fixed] = await trial.histograms([
    { name: "relu1_output_0", step: 0, bins: 20, range: null },
    { name: "relu1_output_0", step: 0, bins: 4, range: [0.1, 0.2] },
  ]);
  assert.ok(!(h instanceof Error) && !(fixed instanceof Error) && !(s instanceof Error));
  assert.equal(h.counts.reduce((a, b) => a + b, 0), 64 * 32);
  assert.equal(h.edges.length, 21);
  assert.equal(h.edges[0], s.min);
  assert.equal(h.edges[20], s.max);
  assert.equal(h.counts[0] >= s.zeros, true, "zeros fall in the first bin");
  assert.equal(fixed.counts.reduce((a, b) => a + b, 0) + fixed.below + fixed.above, 64 * 32);
  assert.ok(fixed.below >= s.zeros);
});

test("digits-mlp: statistics of a value already read are cached for later series (no second read)", async () => {
  const source = new CountingSource(DIGITS_TRIAL);
  const trial = await open(source);
  const req = { name: "relu1_output_0", step: 28 };
  const v = await trial.value(req.name, req.step);
  const reads = source.rangeReads;
  const s = trial.statsOf(req, v);
  assert.equal(s.max, golden.tensors.relu1_output_0.values["28"].stats!.max);
  const [again] = await trial.stats([req]);
  assert.deepEqual(again, s);
  assert.equal(source.rangeReads, reads, "served from the statistics cache");
});
