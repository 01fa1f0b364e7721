import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { LocalBackend, type LocalJobEvent } from "../src/jobs/local/local-backend.js";
import { runTraining, type TrainSpec } from "../src/jobs/xgboost/train-worker.js";
import type { StartTrainingJobSpec } from "../src/jobs/types.js";
import { FIXTURES } from "./support/fixtures.js";

const LAB = {
  max_depth: "5", eta: "0.2", gamma: "4", min_child_weight: "6", subsample: "0.7",
  objective: "reg:squarederror", num_round: "51", seed: 0,
};

/** A data dir holding copies of the abalone files under lab/ (inputs are relative to the data dir). */
function dataDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tg-local-"));
  fs.mkdirSync(path.join(dir, "lab"));
  for (const f of ["abalone.train.libsvm", "abalone.validation.libsvm"]) {
    fs.copyFileSync(path.join(FIXTURES, "data", f), path.join(dir, "lab", f));
  }
  return dir;
}

function jobSpec(name: string, over: Partial<StartTrainingJobSpec> = {}, hyper: Record<string, string | number> = LAB): StartTrainingJobSpec {
  return {
    backend: "LOCAL",
    name,
    algorithm: { builtin: "xgboost", version: "1.7-1" },
    hyperparameters: hyper,
    inputs: [
      { name: "train", uri: "lab/abalone.train.libsvm", contentType: "libsvm" },
      { name: "validation", uri: "lab/abalone.validation.libsvm", contentType: "text/libsvm" },
    ],
    debugHookConfig: { hookParameters: { save_interval: "5" }, collectionConfigs: [{ name: "metrics" }, { name: "feature_importance" }] },
    ...over,
  };
}

function nextEvent(events: LocalJobEvent[], pred: (e: LocalJobEvent) => boolean, onEvent: { fn?: (e: LocalJobEvent) => void }): Promise<LocalJobEvent> {
  const hit = events.find(pred);
  if (hit) return Promise.resolve(hit);
  return new Promise((resolve) => {
    onEvent.fn = (e) => {
      if (pred(e)) {
        onEvent.fn = undefined;
        resolve(e);
      }
    };
  });
}

function backendWithEvents(dir: string) {
  const events: LocalJobEvent[] = [];
  const waiter: { fn?: (e: LocalJobEvent) => void } = {};
  const backend = new LocalBackend({ dataDir: dir, onEvent: (e) => { events.push(e); waiter.fn?.(e); } });
  return { backend, events, waiter };
}

test("a local job goes Starting -> Training -> Completed, reports progress and steps, and writes trial and model", async () => {
  const dir = dataDir();
  const { backend, events } = backendWithEvents(dir);
  const started = await backend.start(jobSpec("lab-run"));
  assert.equal(started.status, "IN_PROGRESS");
  assert.equal(started.secondaryStatus, "Starting");
  assert.equal(started.backend, "LOCAL");
  assert.deepEqual(started.progress, { current: 0, total: 51 });
  assert.equal(started.debugOutputPath, "jobs/lab-run/debug-output");
  assert.equal(started.hyperparameters.seed, "0");

  const done = (await backend.waitUntilDone("lab-run"))!;
  assert.equal(done.status, "COMPLETED");
  assert.equal(done.secondaryStatus, "Completed");
  assert.deepEqual(done.progress, { current: 51, total: 51 });
  assert.ok(done.startedAt && done.endedAt && done.endedAt >= done.startedAt);

  const statusSeq = events.filter((e) => e.type === "status").map((e) => (e.type === "status" ? `${e.job.status}/${e.job.secondaryStatus}` : ""));
  assert.deepEqual(statusSeq, ["IN_PROGRESS/Starting", "IN_PROGRESS/Training", "COMPLETED/Completed"]);
  const rounds = events.filter((e) => e.type === "progress").map((e) => (e.type === "progress" ? e.job.progress!.current : 0));
  assert.deepEqual(rounds, Array.from({ length: 51 }, (_, i) => i + 1));
  const steps = events.flatMap((e) => (e.type === "steps" ? e.steps : []));
  assert.deepEqual(steps, [0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50]);
  const ended = events.find((e) => e.type === "ended");
  assert.ok(ended && ended.type === "ended");
  assert.equal(ended.trialPath, path.join(dir, "jobs/lab-run/debug-output"));
  // Every steps event pointed at files already there; the trial ends with the marker.
  assert.ok(fs.existsSync(path.join(dir, "jobs/lab-run/debug-output/index/000000000/000000000050_worker_0.json")));
  assert.ok(fs.existsSync(path.join(dir, "jobs/lab-run/debug-output/training_job_end.ts")));
  assert.ok(fs.statSync(path.join(dir, "jobs/lab-run/output/xgboost-model")).size > 0);
  // The persisted record matches what describe returns.
  const persisted = JSON.parse(fs.readFileSync(path.join(dir, "jobs/lab-run/job.json"), "utf8"));
  assert.equal(persisted.record.status, "COMPLETED");
  assert.deepEqual(await new LocalBackend({ dataDir: dir }).describe("lab-run"), done);
});

test("the main thread keeps serving while a job trains; stop ends the job STOPPED", async () => {
  const dir = dataDir();
  const { backend, events, waiter } = backendWithEvents(dir);
  await backend.start(jobSpec("long", {}, { ...LAB, num_round: "100000" }));
  // Progress events are handled on the main thread while rounds run in the worker.
  await nextEvent(events, (e) => e.type === "progress" && e.job.progress!.current >= 3, waiter);
  const mid = (await backend.describe("long"))!;
  assert.equal(mid.status, "IN_PROGRESS");
  assert.equal(mid.secondaryStatus, "Training");
  assert.ok(mid.progress!.current >= 3 && mid.progress!.current < 100000);
  const stopping = await backend.stop("long");
  assert.equal(stopping.status, "STOPPING");
  const done = (await backend.waitUntilDone("long"))!;
  assert.equal(done.status, "STOPPED");
  assert.equal(done.secondaryStatus, "Stopped");
  assert.ok(done.progress!.current < 100000);
  assert.ok(fs.existsSync(path.join(dir, "jobs/long/debug-output/training_job_end.ts")));
  // Without save_model_on_termination the stopped job leaves no model, as on SageMaker.
  assert.equal(fs.existsSync(path.join(dir, "jobs/long/output/xgboost-model")), false);
  await assert.rejects(backend.stop("long"), (e: any) => e.code === "JOB_NOT_STOPPABLE");
  await assert.rejects(backend.stop("nope"), (e: any) => e.code === "NOT_FOUND");
});

test("a stop request is honoured before the next boosting round", async () => {
  const dir = dataDir();
  const spec: TrainSpec = {
    jobName: "x",
    train: { path: path.join(dir, "lab/abalone.train.libsvm"), format: "libsvm", displayName: "train", confineTo: dir },
    validation: null,
    hyperparameters: { ...LAB, num_round: "40" },
    debugHookConfig: null,
    trialDir: path.join(dir, "trial"),
    modelPath: null,
    workDir: path.join(dir, "work"),
  };
  let rounds = 0;
  const result = await runTraining(spec, { shouldStop: () => rounds >= 7, onRound: (n) => { rounds = n; } });
  assert.equal(result.status, "STOPPED");
  assert.equal(result.roundsDone, 7);
  assert.deepEqual(result.savedSteps, [0]); // default hook config: metrics every 10 rounds
});

test("after a restart every job is listed, and one that was running is FAILED with a reason", async () => {
  const dir = dataDir();
  const backendModule = path.resolve(__dirname, "../src/jobs/local/local-backend.ts");
  // A service process that starts a long job, then dies without any chance to clean up.
  const script = `
    const { LocalBackend } = require(${JSON.stringify(backendModule)});
    const b = new LocalBackend({ dataDir: ${JSON.stringify(dir)}, onEvent: (e) => {
      if (e.type === "status" && e.job.secondaryStatus === "Training") process.stdout.write("TRAINING\\n");
    }});
    b.start(${JSON.stringify(jobSpec("crashed", {}, { ...LAB, num_round: "100000" }))}).catch((e) => { console.error(e); process.exit(2); });
  `;
  const first = new LocalBackend({ dataDir: dir });
  await first.start(jobSpec("finished", {}, { ...LAB, num_round: "3" }));
  assert.equal((await first.waitUntilDone("finished"))!.status, "COMPLETED");
  const child = spawn(process.execPath, ["--import", "tsx", "-e", script], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (d: Buffer) => { if (d.toString().includes("TRAINING")) resolve(); });
    child.on("exit", (code) => reject(new Error(`service process exited early (${code})`)));
  });
  child.kill("SIGKILL");
  await new Promise((r) => child.once("exit", r));

  const restarted = new LocalBackend({ dataDir: dir });
  const crashed = (await restarted.describe("crashed"))!;
  assert.equal(crashed.status, "FAILED");
  assert.equal(crashed.secondaryStatus, "Failed");
  assert.match(crashed.failureReason!, /restarted while this job was running/);
  const names = (await restarted.list({ first: 10 })).nodes.map((n) => n.name).sort();
  assert.deepEqual(names, ["crashed", "finished"]);
  // The recovery was persisted.
  assert.equal(JSON.parse(fs.readFileSync(path.join(dir, "jobs/crashed/job.json"), "utf8")).record.status, "FAILED");
});

test("list pages by creation time (newest first) with cursors and filters; rule summaries persist", async () => {
  const dir = dataDir();
  let clock = Date.parse("2024-01-01T00:00:00Z");
  const backend = new LocalBackend({ dataDir: dir, now: () => new Date((clock += 1000)) });
  for (const n of ["alpha-1", "beta-2", "alpha-3"]) {
    await backend.start(jobSpec(n, {}, { ...LAB, num_round: "2" }));
    await backend.waitUntilDone(n);
  }
  const p1 = await backend.list({ first: 2 });
  assert.deepEqual(p1.nodes.map((n) => n.name), ["alpha-3", "beta-2"]);
  assert.equal(p1.hasNextPage, true);
  const p2 = await backend.list({ first: 2, after: p1.endCursor });
  assert.deepEqual(p2.nodes.map((n) => n.name), ["alpha-1"]);
  assert.equal(p2.hasNextPage, false);
  assert.deepEqual((await backend.list({ first: 10, nameContains: "ALPHA" })).nodes.map((n) => n.name), ["alpha-3", "alpha-1"]);
  assert.deepEqual((await backend.list({ first: 10, status: "FAILED" })).nodes, []);
  assert.equal((await backend.list({ first: 10, status: "COMPLETED" })).nodes.length, 3);
  await assert.rejects(backend.list({ first: 0 }), (e: any) => e.code === "BAD_USER_INPUT" && e.details.field === "first");
  await assert.rejects(backend.list({ first: 1, after: "garbage" }), (e: any) => e.details.field === "after");

  const when = new Date("2024-02-02T00:00:00Z");
  await backend.setRuleSummaries("beta-2", [{
    ruleConfigurationName: "LossNotDecreasing", ruleEvaluationJobArn: null, status: "ISSUES_FOUND",
    statusDetails: "loss stopped decreasing", lastModifiedTime: when, evaluator: "SERVICE",
    findings: [{ step: 30, mode: "GLOBAL", modeStep: 30, tensorNames: ["validation-rmse"], message: "loss stopped decreasing" }],
  }]);
  const reread = (await new LocalBackend({ dataDir: dir }).describe("beta-2"))!;
  assert.equal(reread.ruleSummaries[0].status, "ISSUES_FOUND");
  assert.deepEqual(reread.ruleSummaries[0].findings, [{ step: 30, mode: "GLOBAL", modeStep: 30, tensorNames: ["validation-rmse"], message: "loss stopped decreasing" }]);
  assert.deepEqual(reread.ruleSummaries[0].lastModifiedTime, when);
});

test("bad input is refused at start with BAD_USER_INPUT naming the field", async () => {
  const dir = dataDir();
  const backend = new LocalBackend({ dataDir: dir });
  const refuse = async (spec: StartTrainingJobSpec, field: string, code = "BAD_USER_INPUT") =>
    assert.rejects(backend.start(spec), (e: any) => {
      assert.equal(e.code, code, e.message);
      assert.equal(e.details.field, field, e.message);
      return true;
    });
  const inputs = (uri: string, contentType = "libsvm") => ({ inputs: [{ name: "train", uri, contentType }] });
  await refuse(jobSpec("a", inputs("lab/missing.libsvm")), "inputs[0].uri");
  // A missing lab input says how to get the lab's data; other folders do not mention the lab.
  await assert.rejects(backend.start(jobSpec("a", inputs("lab/missing.libsvm"))), (e: any) =>
    e.message === "input lab/missing.libsvm does not exist in the data directory; lab/ holds the lab's data: run `npm run lab:data` to download it " +
      "(lab/abalone.train.libsvm, lab/abalone.validation.libsvm), or copy LIBSVM files there");
  await assert.rejects(backend.start(jobSpec("a", inputs("mine/train.libsvm"))), (e: any) => e.message === "input mine/train.libsvm does not exist in the data directory");
  await refuse(jobSpec("a", inputs("../etc/passwd")), "inputs[0].uri", "FORBIDDEN_PATH");
  await refuse(jobSpec("a", inputs("lab/abalone.train.libsvm", "application/json")), "inputs[0].contentType");
  await refuse(jobSpec("a", inputs("s3://bucket/train.libsvm")), "inputs[0].uri");
  await refuse(jobSpec("a", { inputs: [] }), "inputs");
  await refuse(jobSpec("a", { inputs: [{ name: "test", uri: "lab/abalone.train.libsvm" }] }), "inputs[0].name");
  await refuse(jobSpec("a", {}, { ...LAB, colour: "blue" }), "hyperparameters.colour");
  await refuse(jobSpec("a", {}, { ...LAB, objective: "reg:nonsense" }), "hyperparameters.objective");
  await refuse(jobSpec("a", {}, { ...LAB, num_round: 0 }), "hyperparameters.num_round");
  await refuse(jobSpec("a", {}, { ...LAB, num_round: "ten" }), "hyperparameters.num_round");
  await refuse(jobSpec("a", {}, { max_depth: "5" }), "hyperparameters.num_round");
  await refuse(jobSpec("a", {}, { ...LAB, eta: "1.5" }), "hyperparameters.eta");
  await refuse(jobSpec("a", {}, { ...LAB, objective: "multi:softmax" }), "hyperparameters.num_class");
  await refuse(jobSpec("a", {}, { ...LAB, eval_metric: "rmse,bogus" }), "hyperparameters.eval_metric");
  await refuse(jobSpec("a", { debugHookConfig: { hookParameters: { save_interval: "0" } } }), "debugHookConfig.hookParameters.save_interval");
  await refuse(jobSpec("bad_name"), "name");
  await refuse(jobSpec("a", { algorithm: { image: "my/image:1" } }), "algorithm");
  // Aliases and `silent` are accepted, numbers or strings alike.
  const ok = await backend.start(jobSpec("ok", {}, { ...LAB, learning_rate: 0.3, silent: 1, num_round: 2, eta: undefined as any }));
  assert.equal(ok.status, "IN_PROGRESS");
  await backend.waitUntilDone("ok");
  assert.equal((await backend.describe("ok"))!.status, "COMPLETED");
  await refuse(jobSpec("ok"), "name", "JOB_NAME_IN_USE");
  // A library that cannot be loaded: the job is refused with how to install libxgboost.
  if (!process.env.TRIALGRAPH_XGBOOST_LIB) {
    const noLib = new LocalBackend({ dataDir: dir, xgboostLibPath: path.join(dir, "no-such-libxgboost.so") });
    await assert.rejects(noLib.start(jobSpec("nolib")), (e: any) => e.code === "XGBOOST_UNAVAILABLE" && /apt-get install libxgboost0/.test(e.message));
    assert.equal(await noLib.describe("nolib"), null);
  }
});

test("problems found while training fail the job with a reason naming the cause", async () => {
  const dir = dataDir();
  fs.writeFileSync(path.join(dir, "lab/broken.libsvm"), "1 1:0.5 2:0.25\n2 1:0.75 oops\n");
  fs.mkdirSync(path.join(dir, "lab/empty"));
  fs.writeFileSync(path.join(dir, "lab/labels.csv"), "0,1.5,2\n3,0.5,1\n");
  const backend = new LocalBackend({ dataDir: dir });
  const failed = async (name: string, spec: StartTrainingJobSpec) => {
    const r = await backend.start(spec);
    assert.equal(r.status, "IN_PROGRESS");
    const done = (await backend.waitUntilDone(name))!;
    assert.equal(done.status, "FAILED");
    assert.equal(done.secondaryStatus, "Failed");
    return done.failureReason!;
  };
  const inputs = (uri: string, contentType = "libsvm") => ({ inputs: [{ name: "train", uri, contentType }] });
  assert.match(await failed("broken", jobSpec("broken", inputs("lab/broken.libsvm"))), /lab\/broken\.libsvm line 2: malformed LIBSVM line.*oops/);
  assert.match(await failed("empty", jobSpec("empty", inputs("lab/empty"))), /lab\/empty has no data files/);
  // libxgboost's own check (labels outside [0,1] for logistic loss) becomes the reason.
  assert.match(
    await failed("logistic", jobSpec("logistic", inputs("lab/labels.csv", "text/csv"), { objective: "binary:logistic", num_round: "2" })),
    /label must be in \[0,1\]/,
  );
  // The backend keeps working after failures.
  await backend.start(jobSpec("after", {}, { ...LAB, num_round: "2" }));
  assert.equal((await backend.waitUntilDone("after"))!.status, "COMPLETED");
});
