/**
 * Several service instances sharing Redis: events reach subscribers on every instance, exactly one
 * instance polls a given SageMaker job (a lease in Redis), another takes over when the poller dies,
 * and a Redis outage degrades to local delivery, reported in health and log, until Redis returns.
 *
 * Each instance is a real `node --import tsx src/server.ts` process. The SageMaker-protocol endpoint
 * runs here and tells instances apart by the SDK's user agent (AWS_SDK_UA_APP_ID -> "app/<id>").
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { labTimeline, startSageMakerEndpoint, type SageMakerEndpoint } from "./support/sagemaker-endpoint.js";
import { startChildServer, type ChildServer } from "./support/child-server.js";
import { deleteKeys, privateRedis, SHARED_REDIS_URL } from "./support/redis-server.js";
import { collect, eventually, sleep, wsClient } from "./support/ws-events.js";
import { createTestDatabase } from "./support/database.js";

const POLL_MS = 100;
const ROLE = "arn:aws:iam::123456789012:role/x";
let sm: SageMakerEndpoint;

before(async () => {
  sm = await startSageMakerEndpoint({ port: 0 });
  sm.script("*", { stages: labTimeline(), advanceOn: "manual" });
});
after(async () => sm?.close());

/** Instances that share Redis share the database too (the event log's ids are the database's). */
function instanceEnv(id: string, redisUrl: string, prefix: string, databaseUrl: string): Record<string, string> {
  return {
    TRIALGRAPH_DATABASE_URL: databaseUrl,
    TRIALGRAPH_SAGEMAKER_ENDPOINT: sm.url,
    TRIALGRAPH_SAGEMAKER_ENABLED: "true",
    AWS_ACCESS_KEY_ID: "AKIDFAKE",
    AWS_SECRET_ACCESS_KEY: "fake-secret",
    AWS_REGION: "us-east-1",
    TRIALGRAPH_SAGEMAKER_ROLE_ARN: ROLE,
    TRIALGRAPH_SAGEMAKER_OUTPUT_PATH: "s3://bucket/out",
    TRIALGRAPH_POLL_INTERVAL_MS: String(POLL_MS),
    TRIALGRAPH_REDIS_URL: redisUrl,
    TRIALGRAPH_REDIS_PREFIX: prefix,
    AWS_SDK_UA_APP_ID: id,
  };
}

/** Describe calls for a job, from index `from` of the endpoint's request log, by instance id. */
function describesByInstance(job: string, from: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of sm.requests.slice(from)) {
    if (r.operation !== "DescribeTrainingJob" || r.body?.TrainingJobName !== job) continue;
    const id = /app\/(\S+)/.exec(String(r.headers["user-agent"] ?? ""))?.[1] ?? "?";
    out[id] = (out[id] ?? 0) + 1;
  }
  return out;
}

async function startJob(on: ChildServer, name: string, rules: string[] = []): Promise<void> {
  const { body } = await on.gql(`mutation($input: StartTrainingJobInput!) { startTrainingJob(input: $input) { name status } }`, {
    input: {
      backend: "SAGEMAKER", name, algorithm: { builtin: "xgboost", version: "1.7-1" },
      hyperparameters: { num_round: 51, eta: 0.2 }, inputs: [{ name: "train", uri: "s3://bucket/train/" }],
      instanceType: "ml.m5.xlarge", rules: rules.map((builtin) => ({ builtin })),
    },
  });
  assert.equal(body.errors, undefined, JSON.stringify(body.errors));
}

const JOB_SUB = `subscription($j: String) { trainingJobStatusChanged(jobName: $j) { previousStatus job { name status secondaryStatus } } }`;
/** Secondary-status moves are job updates, not status changes. */
const UPDATE_SUB = `subscription($j: String) { trainingJobUpdated(jobName: $j) { name status secondaryStatus } }`;
const isUpdate = (name: string, secondary: string) => (r: any) =>
  r.data?.trainingJobUpdated?.name === name && r.data.trainingJobUpdated.secondaryStatus === secondary;
const updatesOf = (results: any[], name: string) => results.filter((r) => r.data?.trainingJobUpdated?.name === name).map((r) => r.data.trainingJobUpdated.secondaryStatus);
const RULE_SUB = `subscription($j: String) { ruleStatusChanged(jobName: $j) { jobName previousStatus rule { ruleConfigurationName ruleEvaluationStatus } } }`;
const isJobEvent = (name: string, secondary: string) => (r: any) =>
  r.data?.trainingJobStatusChanged?.job.name === name && r.data.trainingJobStatusChanged.job.secondaryStatus === secondary;
const eventsOf = (results: any[], name: string) => results.filter((r) => r.data?.trainingJobStatusChanged?.job.name === name)
  .map((r) => `${r.data.trainingJobStatusChanged.previousStatus}>${r.data.trainingJobStatusChanged.job.secondaryStatus}`);

test("two instances: events reach both, exactly one polls each job, and the other takes over when it is killed", async () => {
  const prefix = `tg-test-${randomUUID()}`;
  const instances: ChildServer[] = [];
  const clients: ReturnType<typeof wsClient>[] = [];
  const db = await createTestDatabase("multi");
  try {
    instances.push(...(await Promise.all([
      startChildServer({ name: "A", env: instanceEnv("inst-A", SHARED_REDIS_URL, prefix, db.url) }),
      startChildServer({ name: "B", env: instanceEnv("inst-B", SHARED_REDIS_URL, prefix, db.url) }),
    ])));
    const [a, b] = instances;
    for (const i of instances) await eventually(async () => (await i.health()).events.redis === "up", `${i.name} connected to Redis`);

    // Subscribed on A to every job; the job is started on B.
    const ca = wsClient(a.wsUrl);
    const cb = wsClient(b.wsUrl);
    clients.push(ca, cb);
    const allOnA = collect(ca, JOB_SUB);
    // Redis pub/sub has no replay: wait until A's subscription demonstrably receives B's events
    // (probe jobs started on B), rather than for a fixed time.
    for (let i = 0; ; i++) {
      await startJob(b, `multi-instance-probe-${i}`);
      const seen = await allOnA.waitFor(isJobEvent(`multi-instance-probe-${i}`, "Starting"), "a probe", 1000).then(() => true, () => false);
      if (seen) break;
      assert.ok(i < 20, "A never received events published on B");
    }
    const name = "multi-instance-job";
    await startJob(b, name, ["LossNotDecreasing"]);
    const first = await allOnA.waitFor(isJobEvent(name, "Starting"), "B's first report, on A");
    assert.equal(first.data.trainingJobStatusChanged.previousStatus, null);

    // Subscribers for the job on both instances: both want it watched, one may poll.
    const onA = collect(ca, UPDATE_SUB, { j: name });
    const rulesOnA = collect(ca, RULE_SUB, { j: name });
    const onB = collect(cb, UPDATE_SUB, { j: name });
    // By name, each starts with where the job stands.
    for (const [where, sub] of [["A", onA], ["B", onB]] as const) await sub.waitFor(isUpdate(name, "Starting"), `the current state on ${where}`);
    await sleep(500);
    const mark = sm.requests.length;
    sm.advance(name); // Downloading
    for (const [where, sub] of [["A", onA], ["B", onB]] as const) await sub.waitFor(isUpdate(name, "Downloading"), `Downloading on ${where}`);
    await sleep(10 * POLL_MS);
    const byInstance = describesByInstance(name, mark);
    const pollers = Object.keys(byInstance);
    assert.deepEqual(pollers, ["inst-B"], `the instance that started the job polls it, alone: ${JSON.stringify(byInstance)}`);
    assert.ok(byInstance["inst-B"] >= 5, JSON.stringify(byInstance));

    // Kill the poller outright: its lease expires and A, which still has subscribers, takes over.
    await b.kill();
    const afterKill = sm.requests.length;
    await eventually(() => (describesByInstance(name, afterKill)["inst-A"] ?? 0) > 0, "A polling the job", 15_000);
    sm.advance(name); // Training
    await onA.waitFor(isUpdate(name, "Training"), "Training on A after the takeover");
    // A diffed from the state B left in Redis: no spurious "first report" of Downloading.
    assert.deepEqual(updatesOf(onA.results, name), ["Starting", "Downloading", "Training"]);
    assert.deepEqual(eventsOf(allOnA.results, name), ["null>Starting"], "no status change yet, and no repeated first report");
    assert.deepEqual(Object.keys(describesByInstance(name, afterKill)), ["inst-A"]);

    // Rules outlive the job on A's watch too.
    sm.advance(name, 2); // Uploading, Completed
    await onA.waitFor(isUpdate(name, "Completed"), "Completed");
    const completed = await allOnA.waitFor(isJobEvent(name, "Completed"), "the status change to Completed");
    assert.equal(completed.data.trainingJobStatusChanged.previousStatus, "IN_PROGRESS");
    sm.advance(name);
    const fired = await rulesOnA.waitFor((r) => r.data.ruleStatusChanged.rule.ruleEvaluationStatus === "ISSUES_FOUND", "the rule firing");
    assert.equal(fired.data.ruleStatusChanged.previousStatus, "IN_PROGRESS");
    assert.equal(fired.data.ruleStatusChanged.jobName, name);
  } finally {
    await Promise.all(clients.map((c) => c.dispose()));
    await Promise.all(instances.map((i) => i.kill()));
    await deleteKeys(SHARED_REDIS_URL, prefix);
    await db.drop();
  }
});

test("Redis down at start and mid-run: queries keep working, health and log say so, events resume when it returns", async () => {
  const redis = await privateRedis();
  const prefix = `tg-test-${randomUUID()}`;
  const instances: ChildServer[] = [];
  const clients: ReturnType<typeof wsClient>[] = [];
  const db = await createTestDatabase("outage");
  try {
    // Redis is not running yet.
    instances.push(...(await Promise.all([
      startChildServer({ name: "A", env: instanceEnv("inst-A", redis.url, prefix, db.url) }),
      startChildServer({ name: "B", env: instanceEnv("inst-B", redis.url, prefix, db.url) }),
    ])));
    const [a, b] = instances;
    for (const i of instances) {
      assert.equal((await i.health()).events.redis, "down");
      const q = await i.gql(`{ trials { path } }`);
      assert.equal(q.body.errors, undefined, JSON.stringify(q.body));
      await eventually(() => i.logs.some((l) => l.level === 40 && /redis unavailable/i.test(l.msg ?? "")), `${i.name}'s log saying Redis is unavailable`);
    }

    await redis.start();
    for (const i of instances) await eventually(async () => (await i.health()).events.redis === "up", `${i.name} reconnected`);
    const ca = wsClient(a.wsUrl);
    clients.push(ca);
    const onA = collect(ca, UPDATE_SUB);
    await sleep(500);
    const name = "redis-outage-job";
    await startJob(b, name);
    await onA.waitFor(isUpdate(name, "Starting"), "the job's first report on A, through Redis");

    // Redis dies mid-run.
    await redis.kill();
    for (const i of instances) await eventually(async () => (await i.health()).events.redis === "down", `${i.name} noticing the outage`);
    const q = await a.gql(`{ trials { path } trainingJob(name: "${name}") { status } }`);
    assert.equal(q.body.errors, undefined, JSON.stringify(q.body));
    assert.equal(q.body.data.trainingJob.status, "IN_PROGRESS");
    sm.advance(name); // Downloading: B still polls the job it started, alone, while Redis is away
    const during = sm.requests.length;
    await eventually(() => (describesByInstance(name, during)["inst-B"] ?? 0) >= 3, "B polling during the outage");

    // Redis returns (empty: no persistence); the instances re-register, and events flow between them again.
    await redis.start();
    for (const i of instances) await eventually(async () => (await i.health()).events.redis === "up", `${i.name} back on Redis`);
    await sleep(1000); // resubscription and a coordination tick
    sm.advance(name); // Training
    await onA.waitFor(isUpdate(name, "Training"), "Training on A after Redis returned");
    // Nothing lost meanwhile: Downloading (published while Redis was away) came from the shared event log.
    assert.deepEqual(updatesOf(onA.results, name), ["Starting", "Downloading", "Training"]);
    for (const i of instances) {
      assert.ok(i.logs.some((l) => /redis connected/i.test(l.msg ?? "")), `${i.name} logged the reconnection`);
    }
  } finally {
    await Promise.all(clients.map((c) => c.dispose()));
    await Promise.all(instances.map((i) => i.kill()));
    await redis.kill();
    await db.drop();
  }
});

test("a lease has one holder: renew and release only by the owner, free again after expiry", async () => {
  const { Redis } = await import("ioredis");
  const { RedisLeases } = await import("../src/events/lease.js");
  const redis = new Redis(SHARED_REDIS_URL, { maxRetriesPerRequest: 1 });
  const prefix = `tg-test-${randomUUID()}`;
  const key = `${prefix}:lease`;
  try {
    const one = new RedisLeases(redis, "one", 300);
    const two = new RedisLeases(redis, "two", 300);
    assert.equal(await one.acquire(key), true);
    assert.equal(await two.acquire(key), false);
    assert.equal(await two.renew(key), false);
    await two.release(key);
    assert.equal(await one.holder(key), "one", "a non-owner cannot release");
    assert.equal(await one.renew(key), true);
    assert.ok((await redis.pttl(key)) > 200, "renewal restores the full expiry");
    await one.release(key);
    assert.equal(await one.holder(key), null);
    assert.equal(await two.acquire(key), true);
    await eventually(async () => (await two.holder(key)) === null, "the lease expiring unrenewed", 5_000);
    assert.equal(await one.acquire(key), true, "an expired lease can be taken");
  } finally {
    await deleteKeys(SHARED_REDIS_URL, prefix);
    redis.disconnect();
  }
});

test("two instances sharing the database and Redis: a subscriber cut on A resumes on B with after, and gets the same sequence A delivered", async () => {
  const { createTestDatabase } = await import("./support/database.js");
  const { promises: fs } = await import("node:fs");
  const os = await import("node:os");
  const path = await import("node:path");
  const { FIXTURES } = await import("./support/fixtures.js");
  const { killableClient } = await import("./support/ws-events.js");
  const db = await createTestDatabase("live");
  const prefix = `tg-test-${randomUUID()}`;
  const instances: ChildServer[] = [];
  const clients: ReturnType<typeof wsClient>[] = [];
  const dataDirWithLab = async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "tg-live-multi-"));
    await fs.mkdir(path.join(dir, "lab"));
    for (const f of ["abalone.train.libsvm", "abalone.validation.libsvm"]) await fs.copyFile(path.join(FIXTURES, "data", f), path.join(dir, "lab", f));
    return dir;
  };
  try {
    const env = async () => ({
      TRIALGRAPH_DATABASE_URL: db.url, TRIALGRAPH_REDIS_URL: SHARED_REDIS_URL, TRIALGRAPH_REDIS_PREFIX: prefix,
      TRIALGRAPH_SAGEMAKER_ENABLED: "false", TRIALGRAPH_POLL_INTERVAL_MS: "100", TRIALGRAPH_DATA_DIR: await dataDirWithLab(),
    });
    instances.push(...(await Promise.all([startChildServer({ name: "A", env: await env() }), startChildServer({ name: "B", env: await env() })])));
    const [a, b] = instances;
    for (const i of instances) await eventually(async () => (await i.health()).events.redis === "up", `${i.name} connected to Redis`);
    const name = "live-multi";
    const { body } = await a.gql(`mutation($i: StartTrainingJobInput!) { startTrainingJob(input: $i) { name } }`, { i: {
      backend: "LOCAL", name, algorithm: { builtin: "xgboost", version: "1.7-1" },
      hyperparameters: { max_depth: "5", eta: "0.2", objective: "reg:squarederror", num_round: "150" },
      inputs: [{ name: "train", uri: "lab/abalone.train.libsvm", contentType: "libsvm" }, { name: "validation", uri: "lab/abalone.validation.libsvm", contentType: "libsvm" }],
      debugHookConfig: { collectionConfigs: [{ name: "metrics", parameters: { save_interval: "5" } }] },
      rules: [{ builtin: "LossNotDecreasing", parameters: { collection_names: "metrics", num_steps: "10" } }],
    } });
    assert.equal(body.errors, undefined, JSON.stringify(body.errors));
    const SUB = `subscription($j: String, $a: String) { trainingJobUpdated(jobName: $j, after: $a) { eventId name status secondaryStatus progress { current } } }`;
    const RULES = `subscription($j: String, $a: String) { ruleStatusChanged(jobName: $j, after: $a) { eventId jobName previousStatus rule { ruleConfigurationName ruleEvaluationStatus } } }`;
    const ca = wsClient(a.wsUrl);
    const cb = wsClient(b.wsUrl);
    clients.push(ca, cb);
    // On A, where the job runs and publishes: a subscriber that stays, and one whose socket is cut.
    const control = collect(ca, SUB, { j: name });
    const cut = killableClient(a.wsUrl);
    clients.push(cut.client);
    const first = collect(cut.client, SUB, { j: name });
    await first.waitFor((r) => (r.data?.trainingJobUpdated?.progress?.current ?? 0) > 0, "progress on A before the cut", 60_000);
    cut.kill();
    const firstPart = first.results.slice();
    // Resumed on B, from the last event A delivered.
    const resumed = collect(cb, SUB, { j: name, a: firstPart.at(-1).data.trainingJobUpdated.eventId });
    // And everything from the start of the log, on B, for every job.
    const everything = collect(cb, SUB, { a: "0" });
    const rulesOnB = collect(cb, RULES, { j: name });
    for (const [what, sub] of [["resumed on B", resumed], ["control on A", control], ["replayed on B", everything]] as const) {
      await sub.waitFor((r) => r.data.trainingJobUpdated.status === "COMPLETED", `COMPLETED ${what}`, 120_000);
    }
    const id = (r: any) => Number(r.data.trainingJobUpdated.eventId);
    const cursor = firstPart.at(-1).data.trainingJobUpdated.eventId;
    // No repeat across the cut; no gap against the subscriber that stayed on A.
    const ids = [...firstPart.slice(1), ...resumed.results].map(id);
    assert.deepEqual(ids, [...new Set(ids)].sort((x, y) => x - y), "no event twice, in order");
    const onB = new Set(resumed.results.map(id));
    assert.deepEqual(control.results.filter((r) => id(r) > Number(cursor) && !onB.has(id(r))).map(id), [], "events A delivered after the cursor that B's resumed stream lacks");
    assert.ok(resumed.results.length > 3, `the job moved after the cut: ${resumed.results.length} updates`);
    // The same sequence on either instance: B's resumed stream = a replay on A from the same cursor,
    // and B's replay of the whole log = A's.
    const replayOnA = collect(ca, SUB, { j: name, a: cursor });
    const allOnA = collect(ca, SUB, { a: "0" });
    for (const sub of [replayOnA, allOnA]) await sub.waitFor((r) => r.data.trainingJobUpdated.status === "COMPLETED", "COMPLETED in a replay on A", 60_000);
    const text = (rs: any[]) => rs.map((r) => JSON.stringify(r.data));
    assert.deepEqual(text(resumed.results), text(replayOnA.results), "resumed on B = replayed on A");
    const mine = (rs: any[]) => rs.filter((r) => r.data.trainingJobUpdated.name === name);
    assert.deepEqual(text(mine(everything.results)), text(mine(allOnA.results)), "the whole log replayed on B = on A");
    // The rule's current state first on B, then its final status once.
    const fired = await rulesOnB.waitFor((r) => r.data.ruleStatusChanged.rule.ruleEvaluationStatus !== "IN_PROGRESS", "the rule's final status on B", 60_000);
    assert.equal(rulesOnB.results[0].data.ruleStatusChanged.previousStatus, null);
    assert.equal(rulesOnB.results.filter((r) => r.data.ruleStatusChanged.rule.ruleEvaluationStatus === fired.data.ruleStatusChanged.rule.ruleEvaluationStatus).length, 1);
  } finally {
    await Promise.all(clients.map((c) => c.dispose()));
    await Promise.all(instances.map((i) => i.kill()));
    await deleteKeys(SHARED_REDIS_URL, prefix);
    await db.drop();
  }
});
