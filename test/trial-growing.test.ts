import { test } from "node:test";
import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { LocalSource } from "../src/storage/local-source.js";
import { openTrial } from "../src/trials/trial.js";
import { TrialWriter } from "../src/trials/trial-writer.js";
import { ABALONE_TRIAL } from "./support/fixtures.js";

async function tempDir(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), "trialgraph-grow-"));
}

async function copyFile(fromRoot: string, toRoot: string, rel: string): Promise<void> {
  await fs.mkdir(path.dirname(path.join(toRoot, rel)), { recursive: true });
  await fs.copyFile(path.join(fromRoot, rel), path.join(toRoot, rel));
}

const pad = (n: number, w: number) => String(n).padStart(w, "0");

test("a trial copied in step by step: each refresh sees exactly the new steps; half-written files wait", async () => {
  const dir = await tempDir();
  await copyFile(ABALONE_TRIAL, dir, "collections/000000000/worker_0_collections.json");
  const trial = (await openTrial(new LocalSource(dir), "grow"))!;
  assert.ok(trial, "a trial with only its collections file exists");
  assert.deepEqual(trial.steps(), []);
  const seen: number[] = [];
  for (const step of [0, 5, 10, 15, 20]) {
    const ev = `events/${pad(step, 12)}/${pad(step, 12)}_worker_0.tfevents`;
    const ix = `index/000000000/${pad(step, 12)}_worker_0.json`;
    await copyFile(ABALONE_TRIAL, dir, ev);
    // The index arrives in two halves, the way an upload that is not atomic would land.
    const full = await fs.readFile(path.join(ABALONE_TRIAL, ix));
    await fs.mkdir(path.join(dir, "index/000000000"), { recursive: true });
    await fs.writeFile(path.join(dir, ix), full.subarray(0, full.length >> 1));
    const half = await trial.refresh({ force: true });
    assert.deepEqual(half.newSteps, [], `a half-written index for step ${step} is not a step yet`);
    await fs.writeFile(path.join(dir, ix), full);
    const r = await trial.refresh({ force: true });
    assert.deepEqual(r.newSteps, [step]);
    seen.push(step);
    assert.deepEqual(trial.steps(), seen);
    assert.equal(trial.trainingEnded, false);
    const v = await trial.value("validation-rmse", step);
    assert.equal(v.shape[0], 1);
  }
  await copyFile(ABALONE_TRIAL, dir, "training_job_end.ts");
  const end = await trial.refresh({ force: true });
  assert.equal(end.trainingEnded, true);
  assert.equal(trial.lastCompleteStep, 20);
});

test("the writer's trials read back exactly; a truncated event file is CORRUPT_RECORD naming file and offset", async () => {
  const dir = await tempDir();
  const w = new TrialWriter(dir);
  await w.writeStep(0, [
    { name: "loss", dtype: "float32", shape: [1], values: [0.5] },
    { name: "w", dtype: "float64", shape: [2, 2], values: [1, NaN, Infinity, -Infinity] },
    { name: "trees/Feature", dtype: "string", shape: [2], strings: ["f0", "Leaf"] },
  ]);
  await w.writeCollections([{ name: "losses", includeRegex: ["^loss$"] }]);
  await w.writeStep(1, [{ name: "loss", dtype: "float32", shape: [1], values: [0.25] }]);
  await w.end();
  const trial = (await openTrial(new LocalSource(dir), "w"))!;
  assert.deepEqual(trial.steps(), [0, 1]);
  assert.deepEqual(trial.tensorNames({ collection: "losses" }), ["loss"]);
  const m = await trial.value("w", 0);
  assert.deepEqual([m.dtype, m.shape, [...m.values!]], ["float64", [2, 2], [1, NaN, Infinity, -Infinity]]);
  assert.deepEqual((await trial.value("trees/Feature", 0)).strings, ["f0", "Leaf"]);

  // Damage step 1's event file: its only record loses its last bytes.
  const ev = path.join(dir, "events/000000000001/000000000001_worker_0.tfevents");
  const bytes = await fs.readFile(ev);
  bytes[bytes.length - 1] ^= 0xff;
  await fs.writeFile(ev, bytes);
  const fresh = (await openTrial(new LocalSource(dir), "w"))!;
  await assert.rejects(fresh.value("loss", 1), (e: any) =>
    e.code === "CORRUPT_RECORD" && /000000000001_worker_0\.tfevents/.test(e.message) && e.details.offset === 0);
  // The rest of the trial still reads.
  assert.equal((await fresh.value("loss", 0)).values![0], 0.5);
  await fs.truncate(ev, 10);
  const truncated = (await openTrial(new LocalSource(dir), "w"))!;
  // Training ended: a cut file is damage, not "not written yet".
  await assert.rejects(truncated.value("loss", 1), (e: any) =>
    e.code === "CORRUPT_RECORD" && e.details.file === "events/000000000001/000000000001_worker_0.tfevents" && /past the end of the event file/.test(e.message));
});

test("several workers: a step is complete only when every worker wrote it; smallest worker answers by default", async () => {
  const dir = await tempDir();
  const w0 = new TrialWriter(dir, { worker: "worker_0" });
  const w1 = new TrialWriter(dir, { worker: "worker_1" });
  await w0.writeCollections([{ name: "default", includeRegex: [] }], 2);
  await w1.writeCollections([{ name: "default", includeRegex: [] }], 2);
  await w0.writeStep(0, [{ name: "g", dtype: "float64", shape: [1], values: [0] }]);
  const trial = (await openTrial(new LocalSource(dir), "mw"))!;
  assert.deepEqual(trial.steps(), [], "worker_1 has not written step 0");
  await w1.writeStep(0, [{ name: "g", dtype: "float64", shape: [1], values: [1] }]);
  await w0.writeStep(1, [{ name: "g", dtype: "float64", shape: [1], values: [10] }]);
  const r = await trial.refresh({ force: true });
  assert.deepEqual(r.newSteps, [0]);
  assert.deepEqual(trial.tensorWorkers("g", 0), ["worker_0", "worker_1"]);
  assert.equal((await trial.value("g", 0)).values![0], 0);
  assert.equal((await trial.value("g", 0, { worker: "worker_1" })).values![0], 1);
  await w1.writeStep(1, [{ name: "g", dtype: "float64", shape: [1], values: [11] }]);
  assert.deepEqual((await trial.refresh({ force: true })).newSteps, [1]);
});
