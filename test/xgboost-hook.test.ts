import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { LocalSource } from "../src/storage/local-source.js";
import { openTrial, type Trial } from "../src/trials/trial.js";
import { trainInProcess, type TrainSpec } from "../src/jobs/xgboost/train-worker.js";
import { planHook, shouldSaveStep, treeTensors } from "../src/jobs/xgboost/hook.js";
import { parseData } from "../src/jobs/xgboost/data.js";
import type { DebugHookConfigSpec } from "../src/jobs/types.js";
import { FIXTURES, ABALONE_TRIAL, loadGolden } from "./support/fixtures.js";

const DATA = path.join(FIXTURES, "data");
const LAB_HYPERPARAMETERS = {
  max_depth: "5", eta: "0.2", gamma: "4", min_child_weight: "6", subsample: "0.7",
  objective: "reg:squarederror", num_round: "51", seed: 0,
};

function tmpDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

function labSpec(dir: string, hook: DebugHookConfigSpec | null, hyper: Record<string, string | number> = LAB_HYPERPARAMETERS): TrainSpec {
  return {
    jobName: "lab",
    train: { path: path.join(DATA, "abalone.train.libsvm"), format: "libsvm", displayName: "abalone.train.libsvm", confineTo: DATA },
    validation: { path: path.join(DATA, "abalone.validation.libsvm"), format: "libsvm", displayName: "abalone.validation.libsvm", confineTo: DATA },
    hyperparameters: hyper,
    debugHookConfig: hook,
    trialDir: path.join(dir, "debug-output"),
    modelPath: path.join(dir, "output", "xgboost-model"),
    workDir: path.join(dir, "work"),
  };
}

async function open(dir: string): Promise<Trial> {
  const trial = await openTrial(new LocalSource(path.join(dir, "debug-output")), "t");
  assert.ok(trial, "a trial was written");
  return trial!;
}

const LAB_HOOK: DebugHookConfigSpec = {
  hookParameters: { save_interval: "5" },
  collectionConfigs: [{ name: "metrics" }, { name: "feature_importance" }, { name: "average_shap" }],
};

test("the lab run reproduces smdebug's golden: metrics, feature importance and average SHAP at every saved step", async () => {
  const golden = loadGolden();
  const dir = tmpDir("tg-lab-");
  const result = await trainInProcess(labSpec(dir, LAB_HOOK), { hook: true });
  assert.equal(result.status, "COMPLETED");
  assert.equal(result.roundsDone, 51);
  assert.deepEqual(result.savedSteps, golden.steps);
  const trial = await open(dir);
  assert.deepEqual(trial.steps(), golden.steps);
  assert.deepEqual(trial.tensorNames(), golden.tensor_names);
  assert.equal(trial.trainingEnded, true);
  for (const [step, names] of Object.entries(golden.tensor_names_by_step)) {
    assert.deepEqual(trial.tensorNames({ step: Number(step) }), names, `tensor names at step ${step}`);
  }
  let maxAbsDiff = 0;
  let compared = 0;
  for (const [name, t] of Object.entries(golden.tensors)) {
    for (const [step, g] of Object.entries(t.values)) {
      const v = await trial.value(name, Number(step));
      const expectedDtype = g.dtype === "<f4" ? "float32" : g.dtype === "<f8" ? "float64" : g.dtype;
      assert.equal(v.dtype, expectedDtype, `${name}@${step} dtype`);
      assert.deepEqual(v.shape, g.shape, `${name}@${step} shape`);
      const expected = (g.value as number[])[0];
      const diff = Math.abs(v.values![0] - expected);
      maxAbsDiff = Math.max(maxAbsDiff, diff);
      assert.ok(diff <= 1e-6 * Math.max(1, Math.abs(expected)), `${name}@${step}: ${v.values![0]} vs golden ${expected}`);
      compared++;
    }
  }
  assert.equal(compared, Object.values(golden.tensors).reduce((n, t) => n + Object.keys(t.values).length, 0));
  console.log(`# lab run: ${compared} tensor values compared with the golden, max abs diff ${maxAbsDiff}`);
  // The model was saved where SageMaker's container puts it.
  assert.ok(fs.statSync(path.join(dir, "output", "xgboost-model")).size > 0);
});

test("the collections file has exactly the content smdebug wrote for the lab run", async () => {
  const dir = tmpDir("tg-coll-");
  await trainInProcess(labSpec(dir, LAB_HOOK, { ...LAB_HYPERPARAMETERS, num_round: "7" }), { hook: true });
  const ours = JSON.parse(fs.readFileSync(path.join(dir, "debug-output/collections/000000000/worker_0_collections.json"), "utf8"));
  const theirs = JSON.parse(fs.readFileSync(path.join(ABALONE_TRIAL, "collections/000000000/worker_0_collections.json"), "utf8"));
  assert.deepEqual(ours, theirs);
  assert.deepEqual(Object.keys(ours.collections), Object.keys(theirs.collections));
});

test("save configs: precedence collection > hook > XGBoost default 10 > core 500, save_steps union, start/end", () => {
  const plan = planHook({
    hookParameters: { save_interval: "3", end_step: 20 },
    collectionConfigs: [
      { name: "feature_importance", parameters: { save_interval: "4", save_steps: "1, 2" } },
      { name: "average_shap" },
      { name: "labels", parameters: { "global.start_step": "6", save_interval: "2" } },
    ],
  });
  const byName = new Map(plan.collections.map((c) => [c.name, c]));
  const steps = (name: string, n = 30) =>
    Array.from({ length: n }, (_, i) => i).filter((i) => shouldSaveStep(byName.get(name)!.saveConfig.GLOBAL, i));
  assert.deepEqual([...plan.included].sort(), ["average_shap", "feature_importance", "labels", "metrics"]);
  assert.deepEqual(steps("metrics"), [0, 3, 6, 9, 12, 15, 18]); // hook level, end_step exclusive
  assert.deepEqual(steps("feature_importance"), [0, 1, 2, 4, 8, 12, 16]); // own interval, hook end, save_steps added
  assert.deepEqual(steps("average_shap"), [0, 3, 6, 9, 12, 15, 18]); // listed without params: inherits hook params
  assert.deepEqual(steps("labels"), [6, 8, 10, 12, 14, 16, 18]);
  // Nothing given at all: the XGBoost default interval for the hook.
  const bare = planHook(null);
  assert.deepEqual([...bare.included], ["metrics"]);
  assert.equal(bare.collections.find((c) => c.name === "metrics")!.saveConfig.GLOBAL.save_interval, 10);
  // A listed collection with no interval anywhere falls back to smdebug's core default.
  const core = planHook({ collectionConfigs: [{ name: "losses" }] });
  assert.equal(core.collections.find((c) => c.name === "losses")!.saveConfig.GLOBAL.save_interval, 500);
  assert.equal(core.collections.find((c) => c.name === "metrics")!.saveConfig.GLOBAL.save_interval, 10);
  // Bad values are user errors naming the field.
  assert.throws(() => planHook({ hookParameters: { save_interval: "0" } }), (e: any) => e.code === "BAD_USER_INPUT");
  assert.throws(() => planHook({ hookParameters: { save_interval: "five" } }), (e: any) => e.code === "BAD_USER_INPUT" && /save_interval/.test(e.details.field));
  assert.throws(() => planHook({ collectionConfigs: [{ name: "mine" }] }), (e: any) => e.code === "BAD_USER_INPUT");
});

test("a short run honours save_steps, start/end, include_regex and losses-only rounds", async () => {
  const dir = tmpDir("tg-save-");
  await trainInProcess(labSpec(dir, {
    hookParameters: { save_interval: "100", include_regex: "^validation-" },
    collectionConfigs: [
      { name: "losses", parameters: { save_interval: "3", start_step: "2", end_step: "9" } },
      { name: "feature_importance", parameters: { save_steps: "4,7", save_interval: "1000" } },
      { name: "custom", parameters: { include_regex: "^feature_importance/weight/", save_steps: "5", save_interval: "1000" } },
    ],
  }, { ...LAB_HYPERPARAMETERS, num_round: "10" }), { hook: true });
  const trial = await open(dir);
  // metrics/default at 0 (interval 100); losses at 3, 6; feature_importance at 0, 4, 7. The custom
  // collection's step 5 writes nothing: as in smdebug, tensors are only computed for built-in
  // collections saved that round, and a custom regex only selects among them.
  assert.deepEqual(trial.steps(), [0, 3, 4, 6, 7]);
  // Losses rounds without metrics write the loss tensors themselves.
  assert.deepEqual(trial.tensorNames({ step: 3 }), ["train-rmse", "validation-rmse"]);
  assert.ok(trial.tensorNames({ step: 4 }).some((n) => n.startsWith("feature_importance/gain/")));
  assert.ok(!trial.tensorNames({ step: 4 }).includes("validation-rmse"));
  const colls = JSON.parse(fs.readFileSync(path.join(dir, "debug-output/collections/000000000/worker_0_collections.json"), "utf8"));
  assert.deepEqual(colls.collections.default.include_regex, ["^validation-"]);
  assert.deepEqual(colls.collections.default.tensor_names, ["validation-rmse"]);
  assert.deepEqual(colls.collections.custom.include_regex, ["^feature_importance/weight/"]);
  assert.ok(colls.collections.custom.tensor_names.length > 0);
  assert.ok(colls.collections.custom.tensor_names.every((n: string) => n.startsWith("feature_importance/weight/")));
  assert.deepEqual(colls.collections.losses.save_config.GLOBAL, { save_interval: 3, save_steps: [], start_step: 2, end_step: 9 });
  // Exported after the first saved step (0): only step-0 names are listed.
  assert.deepEqual(colls.collections.metrics.tensor_names, ["train-rmse", "validation-rmse"]);
});

test("hyperparameters, trees, predictions, labels and full SHAP tensors read back through the trial reader", async () => {
  const dir = tmpDir("tg-str-");
  await trainInProcess(labSpec(dir, {
    hookParameters: { save_steps: "2", save_interval: "1000" },
    collectionConfigs: ["hyperparameters", "trees", "predictions", "labels", "full_shap", "average_shap"].map((name) => ({ name })),
  }, { ...LAB_HYPERPARAMETERS, num_round: "3", eval_metric: "rmse,mae" }), { hook: true });
  const trial = await open(dir);
  assert.deepEqual(trial.steps(), [0, 2]);
  const v = (name: string, step = 2) => trial.value(name, step);
  // The container pops num_round before handing the config to the hook; types follow its parsing.
  assert.equal(trial.hasTensor("hyperparameters/num_round"), false);
  assert.deepEqual((await v("hyperparameters/objective")).strings, ["reg:squarederror"]);
  assert.equal((await v("hyperparameters/objective")).dtype, "string");
  const depth = await v("hyperparameters/max_depth");
  assert.equal(depth.dtype, "int64");
  assert.deepEqual(Array.from(depth.values!), [5]);
  const eta = await v("hyperparameters/eta");
  assert.equal(eta.dtype, "float64");
  assert.deepEqual(Array.from(eta.values!), [0.2]);
  assert.deepEqual((await v("hyperparameters/eval_metric")).strings, ["rmse", "mae"]);
  assert.ok(trial.hasTensor("validation-mae"));

  // Trees: the round's tree, as columns sorted by node id, leaves marked the way smdebug does.
  const node = Array.from((await v("trees/Node")).values!);
  assert.deepEqual(node, [...node].sort((a, b) => a - b));
  assert.ok(Array.from((await v("trees/Tree")).values!).every((t) => t === 2));
  const feature = (await v("trees/Feature")).strings!;
  const yes = (await v("trees/Yes")).strings!;
  const ids = (await v("trees/ID")).strings!;
  const split = Array.from((await v("trees/Split")).values!);
  feature.forEach((f, i) => {
    assert.equal(ids[i], `2-${node[i]}`);
    if (f === "Leaf") {
      assert.equal(yes[i], "nan");
      assert.ok(Number.isNaN(split[i]));
    } else {
      assert.match(f, /^f\d$/);
      assert.match(yes[i], /^2-\d+$/);
      assert.ok(Number.isFinite(split[i]));
    }
  });
  assert.equal((await v("trees/Category")).strings!.length, node.length);

  // Labels: the validation labels, as float32 (independently parsed from the file).
  const validation = parseData(fs.readFileSync(path.join(DATA, "abalone.validation.libsvm"), "utf8"), "libsvm");
  const labels = await v("labels");
  assert.equal(labels.dtype, "float32");
  assert.deepEqual(Array.from(labels.values!), Array.from(validation.labels));
  const predictions = await v("predictions");
  assert.deepEqual(predictions.shape, [validation.rows]);
  // full_shap: the whole SHAP matrix (rows x features+bias) under every feature name; no */bias names.
  const full = await v("full_shap/f3");
  assert.deepEqual(full.shape, [3342, 10]);
  assert.equal(trial.hasTensor("full_shap/bias"), false);
  assert.equal(trial.hasTensor("average_shap/bias"), false);
  // Row sums of SHAP values equal the margin prediction; their mean is the mean prediction on train data.
  const avg = await Promise.all(Array.from({ length: 9 }, (_, i) => v(`average_shap/f${i}`)));
  assert.ok(avg.every((a) => a.dtype === "float32" && a.shape[0] === 1));
});

test("tree dump parsing follows smdebug's parse_tree_model", () => {
  const dump = [
    "0:[f1<0.5] yes=1,no=2,missing=1,gain=10.5,cover=100\n\t1:leaf=0.25,cover=60\n\t2:leaf=-0.125,cover=40\n",
  ];
  const t = Object.fromEntries(treeTensors(dump, 0).map((x) => [x.name, x]));
  assert.deepEqual(t["trees/Feature"].strings, ["f1", "Leaf", "Leaf"]);
  assert.deepEqual(Array.from(t["trees/Split"].values!).map((x) => (Number.isNaN(x) ? "nan" : x)), [0.5, "nan", "nan"]);
  assert.deepEqual(t["trees/Yes"].strings, ["0-1", "nan", "nan"]);
  assert.deepEqual(t["trees/Missing"].strings, ["0-1", "nan", "nan"]);
  assert.deepEqual(Array.from(t["trees/Gain"].values!), [10.5, 0.25, -0.125]);
  assert.deepEqual(Array.from(t["trees/Cover"].values!), [100, 60, 40]);
  assert.equal(t["trees/Tree"].dtype, "int64");
  assert.deepEqual(treeTensors(dump, 1), []);
});
