/**
 * Job records in the database, as users meet them: local jobs listed (and stopped) from every instance,
 * a dead instance's local job marked FAILED by a survivor, an old data folder's records imported once,
 * and the database going away (at start: one clear line and a non-zero exit; later: DATABASE_UNAVAILABLE
 * for what needs it, trials still served, no acknowledged write lost, recovery by itself).
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { startChildServer, type ChildServer } from "./support/child-server.js";
import { startServiceProcess } from "./support/service-process.js";
import { startTestServer, type TestServer } from "./support/server.js";
import { createTestDatabase, POSTGRES_ADMIN_URL, serviceDatabase, tcpProxy } from "./support/database.js";
import { deleteKeys, SHARED_REDIS_URL } from "./support/redis-server.js";
import { collect, eventually, wsClient } from "./support/ws-events.js";
import { ABALONE_TRIAL, FIXTURES } from "./support/fixtures.js";
import { freePort } from "./support/net.js";
import { Store } from "../src/store/index.js";

// A sixth of the default (15 s). Shorter, an instance training two jobs on this 2-core machine (XGBoost
// threads on both cores, progress appended to the event log) can miss a heartbeat by a period and be
// taken for dead while it runs.
const LEASE_MS = 2_500;
const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

/** A data dir with the lab's data under lab/. */
async function dataDirWithLab(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "tg-shared-"));
  cleanups.push(() => fs.rm(dir, { recursive: true, force: true }));
  await fs.mkdir(path.join(dir, "lab"));
  for (const f of ["abalone.train.libsvm", "abalone.validation.libsvm"]) await fs.copyFile(path.join(FIXTURES, "data", f), path.join(dir, "lab", f));
  return dir;
}

const localJob = (name: string, numRound: number, rules: unknown[] = []) => ({
  backend: "LOCAL", name, algorithm: { builtin: "xgboost" },
  hyperparameters: { max_depth: "5", eta: "0.2", objective: "reg:squarederror", num_round: String(numRound) },
  inputs: [{ name: "train", uri: "lab/abalone.train.libsvm", contentType: "libsvm" }, { name: "validation", uri: "lab/abalone.validation.libsvm", contentType: "libsvm" }],
  debugHookConfig: { collectionConfigs: [{ name: "metrics", parameters: { save_interval: "5" } }] },
  rules,
});
const START = `mutation($i: StartTrainingJobInput!) { startTrainingJob(input: $i) { name status secondaryStatus } }`;
const JOB = `query($n: String!) { trainingJob(name: $n) { name status secondaryStatus failureReason progress { current total } ruleSummaries { ruleConfigurationName ruleEvaluationStatus statusDetails } } }`;

test("local jobs across instances: listed on both, stopped from either, and a dead instance's job FAILED by the survivor", async () => {
  const db = await createTestDatabase("shared");
  cleanups.push(() => db.drop());
  const prefix = `tg-test-${randomUUID()}`;
  cleanups.push(() => deleteKeys(SHARED_REDIS_URL, prefix));
  const env = (dataDir: string) => ({
    TRIALGRAPH_DATABASE_URL: db.url, TRIALGRAPH_REDIS_URL: SHARED_REDIS_URL, TRIALGRAPH_REDIS_PREFIX: prefix,
    TRIALGRAPH_LEASE_MS: String(LEASE_MS), TRIALGRAPH_DATA_DIR: dataDir, TRIALGRAPH_SAGEMAKER_ENABLED: "false",
  });
  // A trains; it runs in its own PID namespace, as on another machine.
  const a: ChildServer = await startChildServer({ name: "A", env: env(await dataDirWithLab()), isolatedPids: true });
  cleanups.push(() => a.kill());
  const b: ChildServer = await startChildServer({ name: "B", env: env(await dataDirWithLab()) });
  cleanups.push(() => b.kill());
  for (const i of [a, b]) await eventually(async () => (await i.health()).events.redis === "up", `${i.name} on Redis`);

  for (const n of ["shared-long", "shared-stopped"]) {
    // AllZero never fires on these metrics: the rule is still IN_PROGRESS when A dies.
    const r = await a.gql(START, { i: localJob(n, 100_000, [{ builtin: "AllZero", parameters: { collection_names: "metrics" } }]) });
    assert.equal(r.body.errors, undefined, JSON.stringify(r.body.errors));
  }
  // Both instances list both jobs, with progress.
  for (const i of [a, b]) {
    let seen: unknown = null;
    await eventually(async () => {
      const { body } = await i.gql(`{ trainingJobs(backend: LOCAL) { nodes { name status secondaryStatus failureReason progress { current } } } }`);
      seen = body;
      const nodes = body.data.trainingJobs.nodes;
      return nodes.length === 2 && nodes.every((n: any) => n.secondaryStatus === "Training" && n.progress.current > 0) ? nodes : undefined;
    }, `both jobs training, as listed on ${i.name}`).catch((e) => {
      throw new Error(`${e.message}; last answer: ${JSON.stringify(seen)}`);
    });
  }
  // Stopped from B, the instance that does not train it.
  const stopped = await b.gql(`mutation { stopTrainingJob(name: "shared-stopped") { status } }`);
  assert.equal(stopped.body.data.stopTrainingJob.status, "STOPPING");
  await eventually(async () => (await b.gql(JOB, { n: "shared-stopped" })).body.data.trainingJob.status === "STOPPED", "STOPPED, seen on B");

  // Rules attached on B to A's job are evaluated by A, which trains it (and has its trial).
  const attached = await b.gql(`mutation { attachRules(jobName: "shared-long", rules: [{ builtin: "AllZero", name: "attached-on-b", parameters: { tensor_regex: "validation-rmse" } }]) {
    ruleSummaries { ruleConfigurationName ruleEvaluationStatus } } }`);
  assert.equal(attached.body.errors, undefined, JSON.stringify(attached.body.errors));
  assert.deepEqual(attached.body.data.attachRules.ruleSummaries.map((r: any) => r.ruleConfigurationName), ["AllZero", "attached-on-b"]);
  const store = await Store.open({ databaseUrl: db.url, dataDir: os.tmpdir() });
  cleanups.push(() => store.close());
  const idA = (await a.health()).instance;
  await eventually(async () => (await store.rules.lastEvaluations("shared-long")).has("attached-on-b"), "A evaluating the attached rule", 20_000);
  await eventually(async () => (await store.leases("observer", 1).holder("rules:shared-long")) === idA, "A holding the job's rule lease");

  const cb = wsClient(b.wsUrl);
  cleanups.push(() => cb.dispose());
  // The job's updates on B; a first progress event (from A, through Redis) shows the subscription is live.
  const onB = collect(cb, `subscription { trainingJobUpdated(jobName: "shared-long") { status failureReason } }`);
  await onB.waitFor((r) => r.data?.trainingJobUpdated.status === "IN_PROGRESS", "A's progress, seen on B");
  await a.kill();
  // B notices A's silence (A ran in its own PID namespace: B cannot see its process is gone).
  const failed = await onB.waitFor((r) => r.data?.trainingJobUpdated.status === "FAILED", "FAILED announced on B", 30_000);
  assert.match(failed.data.trainingJobUpdated.failureReason, /instance running this job stopped \(no heartbeat for \d+ s\) while it was running; local jobs cannot resume/);
  await eventually(() => b.logs.some((l) => /^ended the local jobs of an instance that stopped \(no heartbeat/.test(l.msg ?? "")), "B saying so in its log");
  const job = (await b.gql(JOB, { n: "shared-long" })).body.data.trainingJob;
  assert.equal(job.status, "FAILED");
  assert.deepEqual(job.ruleSummaries.map((r: any) => r.ruleEvaluationStatus), ["STOPPED", "STOPPED"]);
  assert.match(job.ruleSummaries[0].statusDetails, /the training job's instance stopped/);
});

for (const engine of ["sqlite", "postgres"] as const) test(`an old data folder's job records are imported once on first start (${engine}): nothing a user had disappears`, async () => {
  const database = await serviceDatabase(engine);
  cleanups.push(() => database.release());
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), "tg-import-"));
  cleanups.push(() => fs.rm(dataDir, { recursive: true, force: true }));
  // As the file-based service left them (version 1 records, trials beside them).
  const record = (name: string, status: string, over: Record<string, unknown> = {}) => ({
    version: 1,
    record: {
      name, arn: null, backend: "LOCAL", status, secondaryStatus: status === "COMPLETED" ? "Completed" : "Training", failureReason: null,
      createdAt: "2026-06-01T10:00:00.000Z", startedAt: "2026-06-01T10:00:01.000Z", endedAt: status === "COMPLETED" ? "2026-06-01T10:01:00.000Z" : null,
      hyperparameters: { eta: "0.2", num_round: "51" }, debugOutputPath: `jobs/${name}/debug-output`, progress: { current: 51, total: 51 },
      ruleSummaries: [{ ruleConfigurationName: "LossNotDecreasing", ruleEvaluationJobArn: null, status: status === "COMPLETED" ? "ISSUES_FOUND" : "IN_PROGRESS",
        statusDetails: status === "COMPLETED" ? "LossNotDecreasing found an issue at step 30" : null, lastModifiedTime: "2026-06-01T10:00:30.000Z", evaluator: "SERVICE" }],
      ...over,
    },
  });
  for (const [name, status] of [["old-done", "COMPLETED"], ["old-running", "IN_PROGRESS"]]) {
    await fs.mkdir(path.join(dataDir, "jobs", name), { recursive: true });
    await fs.writeFile(path.join(dataDir, "jobs", name, "job.json"), JSON.stringify(record(name, status)));
    await fs.cp(ABALONE_TRIAL, path.join(dataDir, "jobs", name, "debug-output"), { recursive: true });
  }
  await fs.mkdir(path.join(dataDir, "jobs", "half-written"), { recursive: true });
  await fs.writeFile(path.join(dataDir, "jobs", "half-written", "job.json"), "{\"version\":1,\"rec");

  let server: TestServer = await startTestServer({ ...database.env, TRIALGRAPH_DATA_DIR: dataDir });
  const check = async () => {
    const { body } = await server.gql(`{ trainingJobs(backend: LOCAL) { nodes { name status secondaryStatus failureReason createdAt endedAt
      ruleSummaries { ruleConfigurationName ruleEvaluationStatus statusDetails lastModifiedTime } trial { steps } } } }`);
    assert.equal(body.errors, undefined, JSON.stringify(body.errors));
    return body.data!.trainingJobs.nodes as any[];
  };
  try {
    const jobs = await check();
    assert.deepEqual(jobs.map((j) => j.name).sort(), ["old-done", "old-running"]);
    const done = jobs.find((j) => j.name === "old-done");
    assert.equal(done.status, "COMPLETED");
    assert.equal(done.createdAt, "2026-06-01T10:00:00.000Z");
    assert.deepEqual(done.ruleSummaries, [{ ruleConfigurationName: "LossNotDecreasing", ruleEvaluationStatus: "ISSUES_FOUND", statusDetails: "LossNotDecreasing found an issue at step 30", lastModifiedTime: "2026-06-01T10:00:30.000Z" }]);
    assert.deepEqual(done.trial.steps, [0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50]);
    const running = jobs.find((j) => j.name === "old-running");
    assert.equal(running.status, "FAILED", "a job the old service was running when it stopped cannot resume");
    assert.match(running.failureReason, /restarted while this job was running/);
    assert.equal(running.ruleSummaries[0].ruleEvaluationStatus, "STOPPED");
    // A new job cannot take an imported name.
    const again = await server.gql(`mutation { startTrainingJob(input: { backend: LOCAL, name: "old-done", algorithm: { builtin: "xgboost" }, hyperparameters: { num_round: "2" }, inputs: [{ name: "train", uri: "jobs/old-done/job.json" }] }) { name } }`);
    assert.equal(again.body.errors?.[0].extensions.code, "JOB_NAME_IN_USE");
    await server.close();

    // Once: a second start imports nothing, even after the folder changed.
    await fs.writeFile(path.join(dataDir, "jobs", "old-done", "job.json"), JSON.stringify(record("old-done", "FAILED")));
    server = await startTestServer({ ...database.env, TRIALGRAPH_DATA_DIR: dataDir });
    const reread = await check();
    assert.equal(reread.length, 2);
    assert.equal(reread.find((j) => j.name === "old-done").status, "COMPLETED");
  } finally {
    await server.close();
  }
});

test("the database away at start: one line naming it without its password, and a non-zero exit", async () => {
  const port = await freePort();
  const url = `postgres://trialgraph:hunter2-secret@127.0.0.1:${port}/trialgraph`;
  await assert.rejects(startServiceProcess({ env: { TRIALGRAPH_DATABASE_URL: url, TRIALGRAPH_DATA_DIR: await fs.mkdtemp(path.join(os.tmpdir(), "tg-nodb-")) } }), (e: Error) => {
    assert.match(e.message, /exited \(1\) before listening/);
    const stderr = e.message.slice(e.message.indexOf("stderr:") + "stderr:".length).trim();
    assert.equal(stderr.split("\n").length, 1, stderr);
    assert.match(stderr, new RegExp(`^trialgraph: cannot reach the database at postgres://trialgraph:\\*\\*\\*@127\\.0\\.0\\.1:${port}/trialgraph: .*ECONNREFUSED`));
    assert.doesNotMatch(stderr, /hunter2/);
    return true;
  });
});

test("the database away later: DATABASE_UNAVAILABLE where it is needed, trials still served, the job's outcome kept, recovery by itself", async () => {
  const db = await createTestDatabase("outage");
  cleanups.push(() => db.drop());
  const proxy = await tcpProxy(Number(new URL(POSTGRES_ADMIN_URL).port || 5432));
  cleanups.push(() => proxy.close());
  const dataDir = await dataDirWithLab();
  const server = await startTestServer({ TRIALGRAPH_DATA_DIR: dataDir, TRIALGRAPH_DATABASE_URL: proxy.url(db.url), TRIALGRAPH_LEASE_MS: String(LEASE_MS) });
  cleanups.push(() => server.close());
  const started = await server.gql(START, { i: localJob("outage-job", 300, [{ builtin: "LossNotDecreasing", parameters: { collection_names: "metrics", num_steps: "10" } }]) });
  assert.equal(started.body.errors, undefined, JSON.stringify(started.body.errors));
  await eventually(async () => (await server.gql(JOB, { n: "outage-job" })).body.data.trainingJob.secondaryStatus === "Training", "training");

  proxy.cut();
  const jobs = await server.gql(`{ trainingJobs(backend: LOCAL) { nodes { name } } }`);
  assert.equal(jobs.body.errors?.[0].extensions.code, "DATABASE_UNAVAILABLE");
  assert.doesNotMatch(JSON.stringify(jobs.body), /ECONNREFUSED|postgres:/, "no internals in the answer");
  const refused = await server.gql(START, { i: localJob("during-outage", 2) });
  assert.equal(refused.body.errors?.[0].extensions.code, "DATABASE_UNAVAILABLE");
  // Trials do not need the database.
  const trial = await server.gql(`{ trial(path: "trials/example") { steps tensor(name: "train-rmse") { series { values } } } }`);
  assert.equal(trial.body.errors, undefined, JSON.stringify(trial.body.errors));
  assert.ok(trial.body.data!.trial.steps.length > 0);
  const ready = await fetch(server.url.replace(/\/graphql$/, "/readyz"));
  assert.equal(ready.status, 503);
  assert.equal(((await ready.json()) as any).checks.database.ok, false);
  const health = (await (await fetch(server.url.replace(/\/graphql$/, "/healthz"))).json()) as any;
  assert.deepEqual(health.database, { engine: "postgres", reachable: false });
  // The job finishes while the database is away (its trial is local) ...
  await eventually(async () => fs.stat(path.join(dataDir, "jobs/outage-job/debug-output/training_job_end.ts")).then(() => true, () => false), "the job's end marker", 60_000);
  await new Promise((r) => setTimeout(r, 2 * LEASE_MS));

  proxy.restore();
  // ... and its outcome, and its rule's, are written once the database returns.
  const job = await eventually(async () => {
    const { body } = await server.gql(JOB, { n: "outage-job" });
    const j = body.data?.trainingJob;
    return j?.status === "COMPLETED" && j.ruleSummaries.every((r: any) => r.ruleEvaluationStatus !== "IN_PROGRESS") ? j : undefined;
  }, "the outcome recorded after the outage", 30_000);
  assert.deepEqual(job.progress, { current: 300, total: 300 });
  assert.equal(job.ruleSummaries[0].ruleEvaluationStatus, "ISSUES_FOUND");
  assert.equal((await fetch(server.url.replace(/\/graphql$/, "/readyz"))).status, 200);
  const listed = await server.gql(`{ trainingJobs(backend: LOCAL) { nodes { name } } }`);
  assert.deepEqual(listed.body.data!.trainingJobs.nodes.map((n: any) => n.name), ["outage-job"], "the refused start left nothing behind");
});
