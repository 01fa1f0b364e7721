/**
 * Faults: dependencies that stop, throttle, stall or return truncated data, and SIGTERM while work
 * runs. Each must end in a clear error code or a recovery, never a 500 or lost job records.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { createClient } from "graphql-ws";
import WebSocket from "ws";
import { startTestServer, type TestServer } from "./support/server.js";
import * as s3server from "./support/s3-server.js";
import { startSageMakerEndpoint, type SageMakerEndpoint } from "./support/sagemaker-endpoint.js";
import { privateRedis } from "./support/redis-server.js";
import { startServiceProcess, gqlAt } from "./support/service-process.js";
import { ABALONE_TRIAL, FIXTURES, loadGolden } from "./support/fixtures.js";
import { TrialWriter } from "../src/trials/trial-writer.js";
import { Store } from "../src/store/index.js";
import { serviceDatabase } from "./support/database.js";

const golden = loadGolden();
const goldenAt = (tensor: string, step: number) => (golden.tensors[tensor].values[String(step)].value as number[])[0];
/** Codes a dependency failure may surface as: all of them name the cause. */
const CLEAR_S3_CODES = new Set(["S3_UNAVAILABLE", "CORRUPT_RECORD"]);

before(() => {
  // The S3 and SageMaker clients use the SDK's credential chain; these are the local servers' accounts.
  process.env.AWS_ACCESS_KEY_ID = s3server.S3RVER_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = s3server.S3RVER_CREDENTIALS.secretAccessKey;
});

function assertNoInternalError(body: any): void {
  for (const e of body.errors ?? []) assert.notEqual(e.extensions?.code, "INTERNAL_SERVER_ERROR", JSON.stringify(e));
}

test("S3 stopped mid-query: a clear S3_UNAVAILABLE, the service keeps serving, and recovers when S3 returns", async () => {
  const directory = await fs.mkdtemp(path.join(os.tmpdir(), "tg-faults-s3-"));
  let s3 = await s3server.start({ directory });
  const client = s3server.createTestClient(s3);
  await s3server.createBucket(client, "faults-bucket");
  await s3server.uploadDirectory(client, "faults-bucket", "abalone", ABALONE_TRIAL);
  client.destroy();
  const proxyPort = Number(new URL(s3.endpoint).port);
  const server = await startTestServer({ TRIALGRAPH_S3_ENDPOINT: s3.endpoint, TRIALGRAPH_S3_TIMEOUT_MS: "2000" });
  try {
    const p = "s3://faults-bucket/abalone";
    const index = await server.gql(`query($p: String!) { trial(path: $p) { steps } }`, { p });
    assert.deepEqual(index.body.data.trial.steps, golden.steps);

    s3.responseDelayMs = 400;
    const inFlight = server.gql(`query($p: String!) { trial(path: $p) { tensor(name: "validation-rmse") { series { values } } } }`, { p });
    await new Promise((r) => setTimeout(r, 150));
    await s3.close(); // the proxy cuts every open connection; s3rver stops
    const r = await inFlight;
    assert.equal(r.status, 200, "a partial GraphQL result, not a 5xx");
    assert.ok(r.body.errors?.length, "the failure is reported");
    assert.equal(r.body.errors[0].extensions.code, "S3_UNAVAILABLE", JSON.stringify(r.body.errors[0]));
    assertNoInternalError(r.body);
    const local = await server.gql(`{ trial(path: "trials/example") { steps } }`);
    assert.equal(local.body.data.trial.steps.length, 100, "local trials still served");

    s3 = await s3server.start({ directory, port: proxyPort });
    const again = await server.gql(`query($p: String!) { trial(path: $p) { tensor(name: "validation-rmse") { series { steps values } } } }`, { p });
    assert.equal(again.body.errors, undefined, JSON.stringify(again.body.errors));
    const series = again.body.data.trial.tensor.series;
    assert.deepEqual(series.values, series.steps.map((s: number) => goldenAt("validation-rmse", s)));

    // A trial file truncated while being read: the fault fires once; the next read succeeds.
    s3.inject({ operation: "GetObject", keyPrefix: "abalone/index/", truncateBodyAfter: 7, times: 1 });
    s3.inject({ operation: "GetObject", keyPrefix: "abalone/events/", truncateBodyAfter: 11, times: 1 });
    const fresh = await startTestServer({ TRIALGRAPH_S3_ENDPOINT: s3.endpoint, TRIALGRAPH_S3_TIMEOUT_MS: "2000" });
    try {
      const q = `query($p: String!) { trial(path: $p) { tensor(name: "train-rmse") { value(step: 40) { scalar } } } }`;
      let answer: any = null;
      const seen: string[] = [];
      for (let attempt = 0; attempt < 4 && !answer; attempt++) {
        const t = await fresh.gql(q, { p });
        assertNoInternalError(t.body);
        if (t.body.errors) {
          for (const e of t.body.errors) assert.ok(CLEAR_S3_CODES.has(e.extensions.code), JSON.stringify(e));
          seen.push(t.body.errors[0].extensions.code);
        } else answer = t.body.data.trial.tensor.value.scalar;
      }
      assert.equal(answer, goldenAt("train-rmse", 40), `recovered after ${JSON.stringify(seen)}`);
      assert.ok(s3.requests({ operation: "GetObject" }).some((e) => e.injected), "a truncated body was served");
    } finally {
      await fresh.close();
    }
  } finally {
    await server.close();
    await s3.close();
    await fs.rm(directory, { recursive: true, force: true });
  }
});

test("a local trial file truncated under the reader: a clear error for that step, the rest still reads", async () => {
  const server = await startTestServer();
  try {
    const dir = path.join(server.dataDir, "trials/cut");
    const w = new TrialWriter(dir);
    await w.writeCollections([{ name: "default", includeRegex: [] }]);
    for (let step = 0; step < 5; step++) await w.writeStep(step, [{ name: "x", dtype: "float64", shape: [64], values: Array.from({ length: 64 }, (_, i) => step * 100 + i) }]);
    await w.end();
    const steps = await server.gql(`{ trial(path: "trials/cut") { steps } }`);
    assert.deepEqual(steps.body.data.trial.steps, [0, 1, 2, 3, 4]);
    const eventsDir = path.join(dir, "events");
    const files: string[] = [];
    const walk = async (d: string) => {
      for (const e of await fs.readdir(d, { withFileTypes: true })) {
        if (e.isDirectory()) await walk(path.join(d, e.name));
        else if (e.name.endsWith(".tfevents")) files.push(path.join(d, e.name));
      }
    };
    await walk(eventsDir);
    files.sort();
    assert.equal(files.length, 5);
    const victim = files[3];
    await fs.truncate(victim, Math.floor((await fs.stat(victim)).size / 2));
    const broken = await server.gql(`{ trial(path: "trials/cut") { tensor(name: "x") { value(step: 3) { data } } } }`);
    assertNoInternalError(broken.body);
    // The reader cannot tell a cut file from one still being written: either answer names the cause.
    const e = broken.body.errors?.[0];
    assert.ok(["CORRUPT_RECORD", "TENSOR_UNAVAILABLE_FOR_STEP"].includes(e?.extensions?.code), JSON.stringify(broken.body));
    assert.match(e.message, /event file|corrupt|truncated/i);
    assert.equal(broken.status, 200);
    const fine = await server.gql(`{ trial(path: "trials/cut") { tensor(name: "x") { value(step: 4) { data } } } }`);
    assert.deepEqual(fine.body.data.trial.tensor.value.data, Array.from({ length: 64 }, (_, i) => 400 + i));
  } finally {
    await server.close();
  }
});

test("Redis stopped and restarted: readiness reports it, queries keep working, the bus reconnects", async () => {
  const redis = await privateRedis();
  await redis.start();
  const server = await startTestServer({ TRIALGRAPH_REDIS_URL: redis.url, TRIALGRAPH_REDIS_PREFIX: `faults-${process.pid}`, TRIALGRAPH_READY_TIMEOUT_MS: "500" });
  const base = server.url.replace(/\/graphql$/, "");
  const readyz = async () => {
    const res = await fetch(`${base}/readyz`);
    return { status: res.status, body: (await res.json()) as any };
  };
  const until = async (pred: () => Promise<boolean>, what: string) => {
    for (let i = 0; i < 100; i++) {
      if (await pred()) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.fail(`timed out waiting for ${what}`);
  };
  try {
    await until(async () => (await readyz()).status === 200, "ready with Redis up");
    assert.equal((await readyz()).body.checks.redis.ok, true);
    await redis.kill();
    const down = await readyz();
    assert.equal(down.status, 503);
    assert.equal(down.body.ready, false);
    assert.equal(down.body.checks.redis.ok, false);
    assert.match(down.body.checks.redis.detail, /ECONNREFUSED|closed|Connection|connect/i);
    const q = await server.gql(`{ trial(path: "trials/example") { tensor(name: "train-rmse") { value(step: 5) { scalar } } } }`);
    assert.equal(q.status, 200);
    assert.equal(typeof q.body.data.trial.tensor.value.scalar, "number");
    await until(async () => ((await (await fetch(`${base}/healthz`)).json()) as any).events.redis === "down", "the bus to notice");

    await redis.start();
    await until(async () => (await readyz()).status === 200, "ready again after Redis returned");
    await until(async () => ((await (await fetch(`${base}/healthz`)).json()) as any).events.redis === "up", "the bus to reconnect");
  } finally {
    await server.close();
    if (redis.running) await redis.kill();
  }
});

test("SageMaker throttling and timeouts: THROTTLED and SAGEMAKER_UNAVAILABLE, readiness 503, then recovery", async () => {
  const sm: SageMakerEndpoint = await startSageMakerEndpoint({ port: 0 });
  sm.seed({ name: "seeded-job", status: "Completed", secondaryStatus: "Completed" });
  const server = await startTestServer({
    TRIALGRAPH_SAGEMAKER_ENDPOINT: sm.url,
    TRIALGRAPH_SAGEMAKER_TIMEOUT_MS: "300",
    TRIALGRAPH_READY_TIMEOUT_MS: "400",
    TRIALGRAPH_READY_CHECK_S3: "false",
  });
  const base = server.url.replace(/\/graphql$/, "");
  const q = `{ trainingJob(name: "seeded-job") { name status backend } }`;
  try {
    const ok = await server.gql(q);
    assert.deepEqual(ok.body.data.trainingJob, { name: "seeded-job", status: "COMPLETED", backend: "SAGEMAKER" });
    assert.equal((await fetch(`${base}/readyz`)).status, 200);

    sm.fail({ operation: "DescribeTrainingJob", type: "ThrottlingException", message: "Rate exceeded", times: Infinity });
    const before = sm.count("DescribeTrainingJob");
    const throttled = await server.gql(q);
    assertNoInternalError(throttled.body);
    assert.equal(throttled.body.errors[0].extensions.code, "THROTTLED");
    assert.ok(sm.count("DescribeTrainingJob") - before >= 2, "the SDK retried before giving up");
    sm.clearFaults();
    assert.equal((await server.gql(q)).body.data.trainingJob.status, "COMPLETED", "recovered");

    sm.fail({ delayMs: 1500, times: Infinity });
    const slow = await server.gql(q);
    assertNoInternalError(slow.body);
    assert.equal(slow.body.errors[0].extensions.code, "SAGEMAKER_UNAVAILABLE");
    const notReady = await fetch(`${base}/readyz`);
    assert.equal(notReady.status, 503);
    const detail = ((await notReady.json()) as any).checks.sagemaker;
    assert.equal(detail.ok, false);
    sm.clearFaults();
    await new Promise((r) => setTimeout(r, 1600)); // let the stalled answers drain
    assert.equal((await fetch(`${base}/readyz`)).status, 200);
    assert.equal((await server.gql(q)).body.data.trainingJob.status, "COMPLETED");
  } finally {
    await server.close();
    await sm.close();
  }
});

/** A data dir with the abalone data under lab/, as local jobs read inputs relative to it. */
async function jobDataDir(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "tg-faults-jobs-"));
  await fs.mkdir(path.join(dir, "lab"));
  for (const f of ["abalone.train.libsvm", "abalone.validation.libsvm"]) await fs.copyFile(path.join(FIXTURES, "data", f), path.join(dir, "lab", f));
  return dir;
}

const START_JOB = `mutation($name: String!) { startTrainingJob(input: {
  backend: LOCAL, name: $name, algorithm: { builtin: "xgboost", version: "1.7-1" },
  hyperparameters: { max_depth: 5, eta: 0.2, objective: "reg:squarederror", num_round: 20000 },
  inputs: [{ name: "train", uri: "lab/abalone.train.libsvm", contentType: "libsvm" }, { name: "validation", uri: "lab/abalone.validation.libsvm", contentType: "libsvm" }],
  debugHookConfig: { hookParameters: { save_interval: "10" }, collectionConfigs: [{ name: "metrics" }] }
}) { name status debugOutputPath } }`;

test("SIGTERM during a local job and a subscription: 1001 Going Away, exit 0, the job recorded STOPPED with its trial intact", async () => {
  const dataDir = await jobDataDir();
  // Both lives of the service share one database (the data dir's, or one PostgreSQL database).
  const database = await serviceDatabase();
  const child = await startServiceProcess({ env: { ...database.env, TRIALGRAPH_DATA_DIR: dataDir, TRIALGRAPH_SHUTDOWN_TIMEOUT_MS: "20000" } });
  let restarted: Awaited<ReturnType<typeof startServiceProcess>> | null = null;
  const ws = createClient({ url: child.wsUrl, webSocketImpl: WebSocket, retryAttempts: 0, lazy: false, onNonLazyError: () => {} });
  try {
    const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on("closed", (e: any) => resolve({ code: e.code, reason: String(e.reason) })));
    const statusEvents: any[] = [];
    ws.subscribe({ query: `subscription { trainingJobStatusChanged(jobName: "sigterm-job") { job { status } previousStatus } }` }, {
      next: (v) => statusEvents.push(v), error: () => {}, complete: () => {},
    });
    await new Promise((r) => setTimeout(r, 300));
    const started = await gqlAt(child.url, START_JOB, { name: "sigterm-job" });
    assert.equal(started.body.errors, undefined, JSON.stringify(started.body.errors));
    const trialPath = started.body.data.startTrainingJob.debugOutputPath;
    // Let it save some steps.
    let steps: number[] = [];
    for (let i = 0; i < 200 && steps.length < 3; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const t = await gqlAt(child.url, `query($p: String!) { trial(path: $p) { steps } trainingJob(name: "sigterm-job") { status } }`, { p: trialPath });
      steps = t.body.data?.trial?.steps ?? [];
      assert.equal(t.body.data.trainingJob.status, "IN_PROGRESS", "still running when the signal comes");
    }
    assert.ok(steps.length >= 3, "the job saved steps before the signal");

    const exitCode = await child.stop(30_000);
    assert.equal(exitCode, 0, child.stderr);
    const { code, reason } = await closed;
    assert.equal(code, 1001, `subscription closed with ${code} ${reason}`);
    assert.match(reason, /going away/i);
    assert.ok(child.logs.some((l) => l.msg === "shut down cleanly"));

    const store = await Store.open({ databaseUrl: database.env.TRIALGRAPH_DATABASE_URL ?? null, dataDir });
    const job = (await store.jobs.get("sigterm-job"))!.record;
    await store.close();
    assert.equal(job.status, "STOPPED", JSON.stringify(job));
    assert.ok(job.endedAt, "an end time");
    assert.ok(job.progress!.current > 0 && job.progress!.current < 20000);

    // The next start keeps the record as it was (a clean stop is not a crash) and the trial reads.
    restarted = await startServiceProcess({ env: { ...database.env, TRIALGRAPH_DATA_DIR: dataDir } });
    const after = await gqlAt(restarted.url, `query($p: String!) { trainingJob(name: "sigterm-job") { status failureReason progress { current } }
      trial(path: $p) { steps tensor(name: "train-rmse") { series { steps values } } } }`, { p: trialPath });
    assert.equal(after.body.errors, undefined, JSON.stringify(after.body.errors));
    assert.equal(after.body.data.trainingJob.status, "STOPPED");
    assert.equal(after.body.data.trainingJob.progress.current, job.progress!.current);
    const series = after.body.data.trial.tensor.series;
    assert.ok(series.steps.length >= steps.length);
    assert.deepEqual(series.steps, after.body.data.trial.steps);
    assert.ok(series.values.every((v: number) => Number.isFinite(v) && v > 0), "every saved step reads back");
  } finally {
    await ws.dispose();
    if (child.proc.exitCode === null) await child.stop(5000);
    if (restarted) assert.equal(await restarted.stop(), 0);
    await database.release();
    await fs.rm(dataDir, { recursive: true, force: true });
  }
});

test("a finished trial's missing, truncated or past-end event file, or garbage index file, is CORRUPT_RECORD naming the file", async () => {
  const server = await startTestServer();
  try {
    const dir = path.join(server.dataDir, "trials/damaged");
    const w = new TrialWriter(dir);
    await w.writeCollections([{ name: "default", includeRegex: [] }]);
    for (let step = 0; step < 6; step++) await w.writeStep(step, [{ name: "x", dtype: "float64", shape: [1], values: [step] }]);
    await w.end();
    const ev = (step: number) => `events/00000000000${step}/00000000000${step}_worker_0.tfevents`;
    const ix = (step: number) => `index/000000000/00000000000${step}_worker_0.json`;
    await fs.rm(path.join(dir, ev(1)));                                   // missing
    await fs.truncate(path.join(dir, ev(2)), 20);                         // truncated
    const index3 = JSON.parse(await fs.readFile(path.join(dir, ix(3)), "utf8"));
    index3.tensor_payload[0].start_idx = 4096;                            // past the end
    await fs.writeFile(path.join(dir, ix(3)), JSON.stringify(index3));
    await fs.writeFile(path.join(dir, ix(4)), "{ this is not json");      // garbage index
    const valueAt = (step: number) => server.gql(`{ trial(path: "trials/damaged") { tensor(name: "x") { value(step: ${step}) { scalar } } } }`);
    for (const [step, file, why] of [
      [1, ev(1), /event file is missing/],
      [2, ev(2), /extends past the end of the event file/],
      [3, ev(3), /extends past the end of the event file/],
      [4, ix(4), /index file of step 4 is unreadable/],
    ] as const) {
      const { body } = await valueAt(step);
      const e = body.errors?.[0];
      assert.equal(e?.extensions.code, "CORRUPT_RECORD", `step ${step}: ${JSON.stringify(body)}`);
      assert.equal(e.extensions.file, file, `step ${step} names the file relative to the trial`);
      assert.match(e.message, why);
      assert.ok(!e.message.includes(server.dataDir), "no absolute path");
    }
    // Whole-tensor reads say so too, rather than leaving step 4 out silently.
    const series = await server.gql(`{ trial(path: "trials/damaged") { tensor(name: "x") { series { steps } values(fromStep: 5) { scalar } } } }`);
    assert.equal(series.body.errors?.[0]?.extensions.code, "CORRUPT_RECORD", JSON.stringify(series.body));
    assert.equal(series.body.errors[0].extensions.file, ix(4));
    assert.equal(series.body.errors.length, 1, "a range after the damaged step reads");
    assert.equal(series.body.data.trial.tensor, null);
    const fine = await server.gql(`{ trial(path: "trials/damaged") { tensor(name: "x") { value(step: 5) { scalar } values(fromStep: 5) { scalar } } } }`);
    assert.equal(fine.body.data.trial.tensor.value.scalar, 5);
  } finally {
    await server.close();
  }
});

test("unexpected errors: logged with the request id, answered as 'internal error, request id …' without the raw message", async () => {
  const { formatError, isExpectedError, logUnexpected, withRequestId } = await import("../src/graphql/errors.js");
  const { GraphQLError } = await import("graphql");
  const pino = (await import("pino")).default;
  const lines: any[] = [];
  const log = pino({ level: "error" }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  const raw = new Error("EIO: i/o error, read '/srv/secret/trials/x/events/1.tfevents'");
  const wrapped = new GraphQLError(raw.message, { path: ["trial", "tensor"], originalError: raw });
  assert.equal(isExpectedError(wrapped), false);
  logUnexpected(log, "req-42", wrapped);
  const [formatted] = withRequestId([formatError()({ message: raw.message, path: ["trial", "tensor"], extensions: { code: "INTERNAL_SERVER_ERROR" } }, wrapped)], "req-42");
  assert.equal(formatted.message, "internal error, request id req-42");
  assert.deepEqual(formatted.extensions, { code: "INTERNAL_SERVER_ERROR", requestId: "req-42" });
  assert.equal(lines[0].reqId, "req-42");
  assert.match(lines[0].err.message, /EIO/);
});

test("an automatic persisted query with a wrong hash is a client error (PERSISTED_QUERY_HASH_MISMATCH), not INTERNAL_SERVER_ERROR", async () => {
  const server = await startTestServer();
  try {
    const res = await fetch(server.url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: "{ builtinRules { name } }", extensions: { persistedQuery: { version: 1, sha256Hash: "0".repeat(64) } } }),
    });
    const body = (await res.json()) as any;
    assert.equal(res.status, 400);
    assert.equal(body.errors[0].extensions.code, "PERSISTED_QUERY_HASH_MISMATCH", JSON.stringify(body));
    // The right hash still works.
    const { createHash } = await import("node:crypto");
    const query = "{ builtinRules { name } }";
    const ok = await fetch(server.url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query, extensions: { persistedQuery: { version: 1, sha256Hash: createHash("sha256").update(query).digest("hex") } } }),
    });
    assert.equal(ok.status, 200);
  } finally {
    await server.close();
  }
});
