import { test } from "node:test";
import assert from "node:assert/strict";
import { LocalSource } from "../src/storage/local-source.js";
import { openTrial } from "../src/trials/trial.js";
import { numpyDtype } from "./support/numpy-dtype.js";
import { ABALONE_TRIAL, flattenGolden, goldenNumber, loadGolden } from "./support/fixtures.js";

const golden = loadGolden();

test("the abalone fixture matches smdebug's golden: names, steps, collections, workers", async () => {
  const trial = (await openTrial(new LocalSource(ABALONE_TRIAL), "abalone"))!;
  assert.ok(trial);
  assert.deepEqual(trial.tensorNames(), golden.tensor_names);
  assert.deepEqual(trial.steps(), golden.steps);
  for (const [mode, steps] of Object.entries(golden.steps_by_mode)) {
    assert.deepEqual(trial.steps(mode as any), steps, `steps of mode ${mode}`);
  }
  assert.deepEqual(trial.modes(), golden.modes);
  assert.deepEqual(trial.workers, golden.workers);
  assert.equal(trial.lastCompleteStep, golden.last_complete_step);
  assert.equal(trial.trainingEnded, golden.training_ended);
  for (const [step, [mode, modeStep]] of Object.entries(golden.mode_of_step)) {
    assert.deepEqual(trial.modeOfStep(Number(step)), { mode, modeStep });
  }
  for (const [step, names] of Object.entries(golden.tensor_names_by_step)) {
    assert.deepEqual(trial.tensorNames({ step: Number(step) }), names, `tensor names at step ${step}`);
  }
  assert.deepEqual(trial.collectionNames(), golden.collections.map((c) => c.name).sort());
  for (const c of golden.collections) {
    const info = trial.collection(c.name)!;
    assert.deepEqual(info.tensorNames, c.tensor_names, `${c.name} listed names`);
    assert.deepEqual(info.includeRegex, c.include_regex, `${c.name} include_regex`);
    assert.deepEqual(trial.tensorNames({ collection: c.name }), c.tensor_names_api, `${c.name} members`);
  }
});

test("every value, dtype and shape of every tensor matches the golden", async () => {
  const trial = (await openTrial(new LocalSource(ABALONE_TRIAL), "abalone"))!;
  let compared = 0;
  for (const [name, t] of Object.entries(golden.tensors)) {
    assert.deepEqual(trial.tensorSteps(name), t.steps, `${name} steps`);
    for (const [mode, steps] of Object.entries(t.steps_by_mode)) assert.deepEqual(trial.tensorSteps(name, mode as any), steps);
    const requests = t.steps.map((step) => ({ name, step }));
    const values = await trial.values(requests);
    for (const [i, step] of t.steps.entries()) {
      const v = values[i];
      assert.ok(!(v instanceof Error), `${name}@${step}: ${v}`);
      const g = t.values[String(step)];
      assert.equal(numpyDtype(v), g.dtype, `${name}@${step} dtype`);
      assert.deepEqual(v.shape, g.shape, `${name}@${step} shape`);
      const expected = flattenGolden(g.value);
      if (v.strings) assert.deepEqual(v.strings, expected);
      else assert.deepEqual([...v.values!], expected.map(goldenNumber), `${name}@${step} value`);
      assert.deepEqual(trial.tensorWorkers(name, step), t.workers_by_step[String(step)]);
      compared++;
    }
  }
  assert.equal(compared, Object.values(golden.tensors).reduce((a, t) => a + t.steps.length, 0));
});

test("a missing step or tensor is TENSOR_UNAVAILABLE_FOR_STEP; a bad regex is BAD_USER_INPUT", async () => {
  const trial = (await openTrial(new LocalSource(ABALONE_TRIAL), "abalone"))!;
  await assert.rejects(trial.value("train-rmse", 3), (e: any) => e.code === "TENSOR_UNAVAILABLE_FOR_STEP");
  await assert.rejects(trial.value("no-such-tensor", 0), (e: any) => e.code === "TENSOR_UNAVAILABLE_FOR_STEP");
  assert.throws(() => trial.tensorNames({ regex: "([" }), (e: any) => e.code === "BAD_USER_INPUT");
  assert.deepEqual(trial.tensorNames({ regex: "rmse$" }), ["train-rmse", "validation-rmse"]);
});

test("a folder with no trial opens as null", async () => {
  assert.equal(await openTrial(new LocalSource("/nonexistent/trialgraph"), "x"), null);
});

test("LocalSource reads files over 1 MB whole and by range from one open, clamped to the file, and refuses whole files over 64 MB", async () => {
  const { mkdtempSync, rmSync, truncateSync, writeFileSync } = await import("node:fs");
  const os = await import("node:os");
  const path = await import("node:path");
  const dir = mkdtempSync(path.join(os.tmpdir(), "trialgraph-local-source-"));
  try {
    const bytes = Buffer.alloc(3 * 1024 * 1024 + 5);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + (i >> 12)) & 0xff;
    writeFileSync(path.join(dir, "big.json"), bytes);
    const source = new LocalSource(dir);
    assert.ok((await source.read("big.json"))!.equals(bytes), "the whole file");
    const [a, b] = (await source.readRanges("big.json", [{ start: 0, length: 2 * 1024 * 1024 }, { start: 3 * 1024 * 1024, length: 1000 }]))!;
    assert.ok(a.equals(bytes.subarray(0, 2 * 1024 * 1024)));
    assert.ok(b.equals(bytes.subarray(3 * 1024 * 1024)), "a range past the end reads short");
    assert.equal(await source.read("missing.json"), null);
    // Sparse: nothing is written but the size.
    writeFileSync(path.join(dir, "huge.json"), "");
    truncateSync(path.join(dir, "huge.json"), 65 * 1024 * 1024);
    await assert.rejects(source.read("huge.json"), (e: any) => e.code === "CORRUPT_RECORD" && /huge\.json is 68157440 bytes/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
