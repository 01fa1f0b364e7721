import { test } from "node:test";
import assert from "node:assert/strict";
import { TensorIndex } from "../src/trials/tensor-index.js";

/** A small seeded generator, so a failure repeats. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

interface Slot {
  worker: number;
  file: number;
  start: number;
  length: number;
  shape: number[] | null;
}

test("TensorIndex (typed columns, grown and reserved) answers as a plain map of steps and workers", () => {
  const name = (w: number) => `worker_${String.fromCharCode(100 - w)}`; // names sort opposite to ids
  for (let seed = 1; seed <= 40; seed++) {
    const random = rng(seed);
    const index = new TensorIndex();
    const model = new Map<number, Slot[]>();
    const ops = 50 + Math.floor(random() * 400);
    for (let op = 0; op < ops; op++) {
      if (random() < 0.05) index.reserve(Math.floor(random() * 100));
      // Mostly ascending steps (a live trial), some late ones (a slow worker, a retried file).
      const step = random() < 0.8 ? op * 3 : Math.floor(random() * op * 3);
      const worker = Math.floor(random() * (seed % 3 === 0 ? 1 : 3));
      const shapeOnly = random() < 0.1;
      const file = shapeOnly ? -1 : Math.floor(random() * 1000);
      const start = shapeOnly ? 0 : Math.floor(random() * 2 ** 40);
      const length = shapeOnly ? 0 : 16 + Math.floor(random() * 1000);
      const shape = random() < 0.15 ? [Math.floor(random() * 5)] : null;
      index.add(step, worker, file, start, length, shape);
      const slots = model.get(step) ?? [];
      model.set(step, slots);
      const slot = slots.find((x) => x.worker === worker);
      if (!slot) slots.push({ worker, file, start, length, shape });
      else {
        if (file >= 0) Object.assign(slot, { file, start, length });
        if (shape) slot.shape = shape;
      }
    }
    const steps = [...model.keys()].sort((a, b) => a - b);
    assert.deepEqual([...index.steps], steps, `seed ${seed}: steps`);
    for (const step of [...steps, -1, 1e9]) {
      const slots = model.get(step) ?? [];
      assert.deepEqual(index.workersAt(step), slots.map((x) => x.worker), `seed ${seed} step ${step}: workers`);
      assert.equal(index.has(step), slots.length > 0);
      assert.deepEqual(index.shapeAt(step), slots.find((x) => x.shape)?.shape ?? null, `seed ${seed} step ${step}: shape`);
      for (let w = 0; w < 4; w++) {
        const at = index.slotAt(step, w, name);
        const want = slots.find((x) => x.worker === w);
        assert.equal(index.hasWorker(step, w), !!want);
        if (!slots.length) assert.equal(at, -1);
        else if (!want) assert.equal(at, -2);
        else assert.deepEqual(index.ref(at), { file: want.file, start: want.start, length: want.length }, `seed ${seed} step ${step} worker ${w}`);
      }
      if (slots.length) {
        const first = [...slots].sort((a, b) => (name(a.worker) < name(b.worker) ? -1 : 1))[0];
        const at = index.slotAt(step, null, name);
        assert.deepEqual([index.fileOf(at), index.startOf(at), index.lengthOf(at)], [first.file, first.start, first.length]);
      }
    }
  }
});
