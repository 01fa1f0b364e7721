import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { readDataPath } from "../src/jobs/xgboost/data.js";
import { loadXGBoost, type Booster, type DMatrix } from "../src/jobs/xgboost/libxgboost.js";
import { ShapContributions } from "../src/jobs/xgboost/shap.js";
import { FIXTURES } from "./support/fixtures.js";

const DATA = path.join(FIXTURES, "data");
const LAB = { max_depth: "5", eta: "0.2", gamma: "4", min_child_weight: "6", subsample: "0.7", objective: "reg:squarederror", seed: "0" };

async function trainingData(relabel?: (rings: number) => number): Promise<DMatrix> {
  const { lib } = loadXGBoost();
  const p = await readDataPath(path.join(DATA, "abalone.train.libsvm"), "libsvm", "train", DATA);
  return lib.dmatrixFromCsr(p, relabel ? p.labels.map(relabel) : p.labels);
}

/**
 * Trains `rounds` rounds and, at every `every`-th, checks the accumulated contributions against a
 * prediction with the whole model (what smdebug computes at each save): same shape, same float32 bits.
 */
async function compareWithWholeModel(params: Record<string, string>, opts: { rounds: number; every: number; additive: boolean; relabel?: (rings: number) => number }): Promise<number> {
  const { lib } = loadXGBoost();
  const dtrain = await trainingData(opts.relabel);
  const booster: Booster = lib.createBooster([dtrain]);
  const shap = new ShapContributions(lib, dtrain, opts.additive);
  let compared = 0;
  try {
    for (const [k, v] of Object.entries(params)) booster.setParam(k, v);
    for (let i = 0; i < opts.rounds; i++) {
      booster.updateOneIter(i, dtrain);
      if (i % opts.every !== 0 && i !== opts.rounds - 1) continue;
      const ours = shap.of(booster, i + 1);
      const whole = booster.predict(dtrain, { type: 2 });
      assert.deepEqual(ours.shape, whole.shape, `shape after round ${i}`);
      const a = Buffer.from(ours.values.buffer, ours.values.byteOffset, ours.values.byteLength);
      const b = Buffer.from(whole.values.buffer, whole.values.byteOffset, whole.values.byteLength);
      if (!a.equals(b)) {
        const at = ours.values.findIndex((v, j) => !Object.is(v, whole.values[j]));
        assert.fail(`after round ${i}: element ${at} is ${ours.values[at]}, the whole model gives ${whole.values[at]}`);
      }
      compared++;
    }
  } finally {
    shap.free();
    booster.free();
    dtrain.free();
  }
  return compared;
}

test("SHAP summed round by round equals the whole model's, bit for bit (the lab's settings: gbtree, saved every 5 rounds)", async () => {
  assert.equal(await compareWithWholeModel(LAB, { rounds: 26, every: 5, additive: true }), 6);
});

test("SHAP summed round by round: a base score of our own, saves every round and after gaps, the last round", async () => {
  assert.equal(await compareWithWholeModel({ ...LAB, base_score: "9.5", max_depth: "3" }, { rounds: 23, every: 7, additive: true }), 5);
  assert.equal(await compareWithWholeModel({ ...LAB, max_depth: "2" }, { rounds: 6, every: 1, additive: true }), 6);
});

test("SHAP summed round by round: several output groups (multi:softprob), one bias per group", async () => {
  const n = await compareWithWholeModel({ ...LAB, objective: "multi:softprob", num_class: "3" }, { rounds: 12, every: 4, additive: true, relabel: (r) => r % 3 });
  assert.equal(n, 4);
});

test("dart and gblinear are not additive over rounds: the whole model predicts every time", async () => {
  assert.equal(ShapContributions.isAdditive("gbtree", null), true);
  assert.equal(ShapContributions.isAdditive("gbtree", "default"), true);
  assert.equal(ShapContributions.isAdditive("gbtree", "update"), false);
  assert.equal(ShapContributions.isAdditive("dart", null), false);
  assert.equal(ShapContributions.isAdditive("gblinear", null), false);
  assert.equal(await compareWithWholeModel({ ...LAB, booster: "dart", rate_drop: "0.3" }, { rounds: 8, every: 3, additive: false }), 4);
});
