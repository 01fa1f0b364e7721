/**
 * The local backend: real XGBoost in a worker thread, job records in the database (the engine under
 * test: TRIALGRAPH_TEST_DATABASE), statuses as SageMaker's, the queue beyond the concurrency cap,
 * names reserved atomically, stop requests from any instance, trials uploaded to S3.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { LocalBackend, type LocalBackendOptions, type LocalJobEvent } from "../src/jobs/local/local-backend.js";
import { InstanceMonitor } from "../src/jobs/instance-monitor.js";
import { runTraining, type TrainSpec } from "../src/jobs/xgboost/train-worker.js";
import type { StartTrainingJobSpec } from "../src/jobs/types.js";
import { EventBus } from "../src/events/event-bus.js";
import { Store } from "../src/store/index.js";
import { S3Source } from "../src/storage/s3-source.js";
import { openTrial } from "../src/trials/trial.js";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { FIXTURES } from "./support/fixtures.js";
import { createTestDatabase, testEngine } from "./support/database.js";
import { createBucket, createTestClient, start as startS3 } from "./support/s3-server.js";
import { expectError } from "./support/assertions.js";
import { eventually } from "./support/ws-events.js";

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

/** The database of one test: SQLite in the data dir, or a fresh PostgreSQL database. */
async function databaseUrl(): Promise<string | null> {
  if (testEngine() === "sqlite") return null;
  const db = await createTestDatabase("local");
  cleanups.push(() => db.drop());
  return db.url;
}

/** Opens the store of a data dir (the same database on every call for that dir). */
const urls = new Map<string, string | null>();
async function storeFor(dir: string): Promise<Store> {
  if (!urls.has(dir)) urls.set(dir, await databaseUrl());
  const store = await Store.open({ databaseUrl: urls.get(dir)!, dataDir: dir });
  cleanups.push(() => store.close());
  return store;
}

/** A local backend as one instance of the service: its own instance id, the data dir's database. */
async function localBackend(dir: string, over: Partial<LocalBackendOptions> = {}): Promise<LocalBackend> {
  const store = await storeFor(dir);
  const backend = new LocalBackend({ dataDir: dir, store: store.jobs, instanceId: randomUUID(), ...over });
  cleanups.push(() => backend.close());
  return backend;
}

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

async function backendWithEvents(dir: string, over: Partial<LocalBackendOptions> = {}) {
  const events: LocalJobEvent[] = [];
  const waiter: { fn?: (e: LocalJobEvent) => void } = {};
  const backend = await localBackend(dir, { onEvent: (e) => { events.push(e); waiter.fn?.(e); }, ...over });
  return { backend, events, waiter };
}

test("a local job goes Starting -> Training -> Completed, reports progress and steps, and writes trial and model", async () => {
  const dir = dataDir();
  const { backend, events } = await backendWithEvents(dir);
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
  assert.equal(ended.trialPath, "jobs/lab-run/debug-output");
  // Every steps event pointed at files already there; the trial ends with the marker.
  assert.ok(fs.existsSync(path.join(dir, "jobs/lab-run/debug-output/index/000000000/000000000050_worker_0.json")));
  assert.ok(fs.existsSync(path.join(dir, "jobs/lab-run/debug-output/training_job_end.ts")));
  assert.ok(fs.statSync(path.join(dir, "jobs/lab-run/output/xgboost-model")).size > 0);
  // The record is in the database: another instance sharing it reads the same job.
  assert.deepEqual(await (await localBackend(dir)).describe("lab-run"), done);
  assert.equal(fs.existsSync(path.join(dir, "jobs/lab-run/job.json")), false, "no record in the data folder any more");
});

test("the main thread keeps serving while a job trains; stop ends the job STOPPED", async () => {
  const dir = dataDir();
  const { backend, events, waiter } = await backendWithEvents(dir);
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
  const url = await databaseUrl();
  urls.set(dir, url);
  const backendModule = path.resolve(__dirname, "../src/jobs/local/local-backend.ts");
  const storeModule = path.resolve(__dirname, "../src/store/index.ts");
  const monitorModule = path.resolve(__dirname, "../src/jobs/instance-monitor.ts");
  // A service process registers, starts a long job, then dies without any chance to clean up.
  const script = `
    const { LocalBackend } = require(${JSON.stringify(backendModule)});
    const { Store } = require(${JSON.stringify(storeModule)});
    const { machineIdentity } = require(${JSON.stringify(monitorModule)});
    (async () => {
      const store = await Store.open({ databaseUrl: ${JSON.stringify(url)}, dataDir: ${JSON.stringify(dir)} });
      await store.instances.register("crashing-instance", machineIdentity(), process.pid);
      const b = new LocalBackend({ dataDir: ${JSON.stringify(dir)}, store: store.jobs, instanceId: "crashing-instance", onEvent: (e) => {
        if (e.type === "status" && e.job.secondaryStatus === "Training") process.stdout.write("TRAINING\\n");
      }});
      await b.start(${JSON.stringify(jobSpec("crashed", {}, { ...LAB, num_round: "100000" }))});
    })().catch((e) => { console.error(e); process.exit(2); });
  `;
  const first = await localBackend(dir);
  await first.start(jobSpec("finished", {}, { ...LAB, num_round: "3" }));
  assert.equal((await first.waitUntilDone("finished"))!.status, "COMPLETED");
  const child = spawn(process.execPath, ["--import", "tsx", "-e", script], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (d: Buffer) => { if (d.toString().includes("TRAINING")) resolve(); });
    child.on("exit", (code) => reject(new Error(`service process exited early (${code})`)));
  });
  child.kill("SIGKILL");
  await new Promise((r) => child.once("exit", r));

  // The restarted service registers anew: its dead predecessor on this machine is ended at once.
  const store = await storeFor(dir);
  assert.equal((await store.jobs.get("crashed"))!.record.status, "IN_PROGRESS");
  const events = new EventBus();
  const published: string[] = [];
  const sub = events.subscribe("jobStatus");
  void (async () => { for await (const e of sub) published.push(`${e.job.name}:${e.previousStatus}>${e.job.status}`); })();
  const monitor = new InstanceMonitor({ instances: store.instances, events, instanceId: randomUUID(), leaseMs: 60_000, log: pino({ level: "silent" }) });
  await monitor.start();
  cleanups.push(() => monitor.close());
  const restarted = await localBackend(dir);
  const crashed = (await restarted.describe("crashed"))!;
  assert.equal(crashed.status, "FAILED");
  assert.equal(crashed.secondaryStatus, "Failed");
  assert.match(crashed.failureReason!, /instance running this job restarted while it was running; local jobs cannot resume/);
  assert.ok(crashed.endedAt);
  const names = (await restarted.list({ first: 10 })).nodes.map((n) => n.name).sort();
  assert.deepEqual(names, ["crashed", "finished"]);
  await eventually(() => published.includes("crashed:IN_PROGRESS>FAILED"), "the FAILED status announced");
  await sub.return?.();
});

test("list pages by creation time (newest first) with cursors and filters", async () => {
  const dir = dataDir();
  let clock = Date.parse("2024-01-01T00:00:00Z");
  const backend = await localBackend(dir, { now: () => new Date((clock += 1000)) });
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
});

test("bad input is refused at start with BAD_USER_INPUT naming the field", async () => {
  const dir = dataDir();
  const backend = await localBackend(dir);
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
    const noLib = await localBackend(dir, { xgboostLibPath: path.join(dir, "no-such-libxgboost.so") });
    await assert.rejects(noLib.start(jobSpec("nolib")), (e: any) => e.code === "XGBOOST_UNAVAILABLE" && /apt-get install libxgboost0/.test(e.message));
    assert.equal(await noLib.describe("nolib"), null);
  }
});

test("problems found while training fail the job with a reason naming the cause", async () => {
  const dir = dataDir();
  fs.writeFileSync(path.join(dir, "lab/broken.libsvm"), "1 1:0.5 2:0.25\n2 1:0.75 oops\n");
  fs.mkdirSync(path.join(dir, "lab/empty"));
  fs.writeFileSync(path.join(dir, "lab/labels.csv"), "0,1.5,2\n3,0.5,1\n");
  const backend = await localBackend(dir);
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

test("beyond the concurrency cap jobs queue in order with their position, start as slots free, and can be stopped while queued", async () => {
  const dir = dataDir();
  const { backend, events } = await backendWithEvents(dir, { maxConcurrentJobs: 1 });
  const long = { ...LAB, num_round: "100000" };
  await backend.start(jobSpec("q-first", {}, long));
  const second = await backend.start(jobSpec("q-second", {}, long));
  const third = await backend.start(jobSpec("q-third", {}, { ...LAB, num_round: "3" }));
  assert.deepEqual([second.status, second.secondaryStatus], ["IN_PROGRESS", "Queued (0 ahead)"]);
  assert.deepEqual([third.status, third.secondaryStatus], ["IN_PROGRESS", "Queued (1 ahead)"]);
  // Every instance sees the queue position in the record.
  assert.equal((await (await localBackend(dir)).describe("q-third"))!.secondaryStatus, "Queued (1 ahead)");

  // Stopping a queued job ends it at once; the one behind it moves up.
  const stopped = await backend.stop("q-second");
  assert.deepEqual([stopped.status, stopped.secondaryStatus], ["STOPPED", "Stopped"]);
  assert.equal(stopped.startedAt, null);
  await eventually(async () => (await backend.describe("q-third"))!.secondaryStatus === "Queued (0 ahead)", "q-third moving up");
  await eventually(async () => (await backend.describe("q-first"))!.secondaryStatus === "Training", "q-first training");

  // The running job ends: the next queued one starts and completes.
  await backend.stop("q-first");
  assert.equal((await backend.waitUntilDone("q-first"))!.status, "STOPPED");
  const done = (await backend.waitUntilDone("q-third"))!;
  assert.equal(done.status, "COMPLETED");
  const seq = (name: string) => events.filter((e) => e.type === "status" && e.job.name === name).map((e) => (e.type === "status" ? e.job.secondaryStatus : ""));
  assert.deepEqual(seq("q-second"), ["Queued (0 ahead)", "Stopped"]);
  assert.deepEqual(seq("q-third"), ["Queued (1 ahead)", "Queued (0 ahead)", "Starting", "Training", "Completed"]);
  assert.equal(fs.existsSync(path.join(dir, "jobs/q-second/debug-output")), false, "a job stopped in the queue never trained");
});

test("one name, many concurrent starts on two instances: exactly one job, the others JOB_NAME_IN_USE, and one run in its trial", async () => {
  const dir = dataDir();
  const a = await localBackend(dir);
  const b = await localBackend(dir);
  const spec = jobSpec("contested", {}, { ...LAB, num_round: "11" });
  const results = await Promise.allSettled([a, b, a, b, a, b].map((backend) => backend.start(spec)));
  const winners = results.filter((r) => r.status === "fulfilled");
  assert.equal(winners.length, 1, JSON.stringify(results.map((r) => r.status)));
  for (const r of results) {
    if (r.status === "rejected") assert.equal((r.reason as { code?: string }).code, "JOB_NAME_IN_USE", String(r.reason));
  }
  const winner = a.runsHere("contested") ? a : b;
  assert.notEqual(a.runsHere("contested"), b.runsHere("contested"), "one instance trains it");
  assert.equal((await winner.waitUntilDone("contested"))!.status, "COMPLETED");
  // save_interval 5 over 11 rounds: steps 0, 5, 10, once each.
  assert.deepEqual(fs.readdirSync(path.join(dir, "jobs/contested/debug-output/index/000000000")).sort(),
    ["000000000000_worker_0.json", "000000000005_worker_0.json", "000000000010_worker_0.json"]);
  await expectError(a.start(spec), "JOB_NAME_IN_USE");
});

test("a stop request made on another instance reaches the one training the job", async () => {
  const dir = dataDir();
  const { backend: trainer, events, waiter } = await backendWithEvents(dir);
  const other = await localBackend(dir);
  await trainer.start(jobSpec("remote-stop", {}, { ...LAB, num_round: "100000" }));
  await nextEvent(events, (e) => e.type === "progress" && e.job.progress!.current >= 2, waiter);
  const answer = await other.stop("remote-stop");
  assert.equal(answer.status, "STOPPING");
  assert.equal(other.runsHere("remote-stop"), false);
  // No event bus between them here: the trainer finds the request in the record.
  const done = (await trainer.waitUntilDone("remote-stop"))!;
  assert.equal(done.status, "STOPPED");
  assert.ok(done.progress!.current < 100000);
  await expectError(other.stop("remote-stop"), "JOB_NOT_STOPPABLE");
});

test("a local job given an S3 output path writes its trial to S3 like SageMaker's container, readable from anywhere", async () => {
  const s3 = await startS3();
  cleanups.push(() => s3.close());
  const client = createTestClient(s3, { maxAttempts: 3 });
  cleanups.push(async () => client.destroy());
  await createBucket(client, "local-trials");
  const dir = dataDir();
  const puts: string[] = [];
  const { backend, events } = await backendWithEvents(dir, {
    putS3Object: async (uri, body) => {
      const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri)!;
      puts.push(m[2]);
      await client.send(new PutObjectCommand({ Bucket: m[1], Key: m[2], Body: body }));
    },
  });
  const started = await backend.start(jobSpec("to-s3", { debugHookConfig: { s3OutputPath: "s3://local-trials/runs/", hookParameters: { save_interval: "5" }, collectionConfigs: [{ name: "metrics" }] } }, { ...LAB, num_round: "12" }));
  assert.equal(started.debugOutputPath, "s3://local-trials/runs/to-s3/debug-output");
  assert.equal((await backend.waitUntilDone("to-s3"))!.status, "COMPLETED");
  const steps = events.flatMap((e) => (e.type === "steps" ? [[e.trialPath, e.steps[0]]] : []));
  assert.deepEqual(steps, [0, 5, 10].map((s) => ["s3://local-trials/runs/to-s3/debug-output", s]));
  // Each step's event file went up before its index; the end marker last.
  const eventAt = puts.indexOf("runs/to-s3/debug-output/events/000000000005/000000000005_worker_0.tfevents");
  const indexAt = puts.indexOf("runs/to-s3/debug-output/index/000000000/000000000005_worker_0.json");
  assert.ok(eventAt >= 0 && indexAt > eventAt, puts.join("\n"));
  assert.equal(puts[puts.length - 1], "runs/to-s3/debug-output/training_job_end.ts");
  // Read back through S3 as any instance would: the same values as the local files.
  const trial = (await openTrial(new S3Source({ client, bucket: "local-trials", prefix: "runs/to-s3/debug-output/" }), started.debugOutputPath!))!;
  assert.deepEqual(trial.steps(), [0, 5, 10]);
  assert.equal(trial.trainingEnded, true);
  const [remote] = await trial.values([{ name: "validation-rmse", step: 10, mode: null }]);
  const local = (await openTrial(new (await import("../src/storage/local-source.js")).LocalSource(path.join(dir, "jobs/to-s3/debug-output")), "local"))!;
  const [same] = await local.values([{ name: "validation-rmse", step: 10, mode: null }]);
  assert.deepEqual(remote, same);

  // Without S3 configured the path is refused up front.
  const noS3 = await localBackend(dataDir());
  await expectError(noS3.start(jobSpec("no-s3", { outputPath: "s3://local-trials/out" })), "BAD_USER_INPUT");
});
