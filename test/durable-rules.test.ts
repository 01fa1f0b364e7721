/**
 * The service's own rules (evaluator SERVICE) on a SageMaker job outlive the process evaluating them:
 * a restart of a single instance (embedded database) resumes the evaluation by itself, and with two
 * instances on PostgreSQL + Redis the survivor takes over from an evaluator killed with SIGKILL and
 * goes on to the final status. Every instance answers the summaries and the history from the database,
 * and ruleStatusChanged reaches subscribers on every instance.
 *
 * The job runs on the local SageMaker-protocol endpoint; its trial is the abalone fixture, uploaded to a
 * local S3-protocol server step by step as the container's hook would (event file, then index).
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { labTimeline, startSageMakerEndpoint, type SageMakerEndpoint } from "./support/sagemaker-endpoint.js";
import { createBucket, createTestClient, start as startS3, S3RVER_CREDENTIALS, type S3TestServer } from "./support/s3-server.js";
import { startChildServer, type ChildServer } from "./support/child-server.js";
import { createTestDatabase } from "./support/database.js";
import { deleteKeys, SHARED_REDIS_URL } from "./support/redis-server.js";
import { collect, eventually, wsClient } from "./support/ws-events.js";
import { ABALONE_TRIAL } from "./support/fixtures.js";
import { collectionsFileKey, DEFAULT_WORKER, eventFileKey, indexFileKey } from "../src/format/locations.js";
import { Store } from "../src/store/index.js";
import { LocalSource } from "../src/storage/local-source.js";
import { openTrial } from "../src/trials/trial.js";
import { evaluateRules } from "../src/rules/index.js";

const BUCKET = "durable-rules";
const POLL_MS = 150;
const LEASE_MS = 900;
const STEPS = [0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50];
let sm: SageMakerEndpoint;
let s3: S3TestServer;
let client: S3Client;

before(async () => {
  sm = await startSageMakerEndpoint({ port: 0 });
  sm.script("*", { stages: labTimeline(), advanceOn: "manual" });
  s3 = await startS3();
  client = createTestClient(s3, { maxAttempts: 3 });
  await createBucket(client, BUCKET);
});
after(async () => {
  client?.destroy();
  await s3?.close();
  await sm?.close();
});

function instanceEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    TRIALGRAPH_SAGEMAKER_ENDPOINT: sm.url,
    TRIALGRAPH_SAGEMAKER_ENABLED: "true",
    TRIALGRAPH_S3_ENDPOINT: s3.endpoint,
    // One set of keys signs for both: s3rver checks them, the SageMaker endpoint does not.
    AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
    AWS_REGION: "us-east-1",
    TRIALGRAPH_SAGEMAKER_ROLE_ARN: "arn:aws:iam::123456789012:role/x",
    TRIALGRAPH_SAGEMAKER_OUTPUT_PATH: `s3://${BUCKET}/out`,
    TRIALGRAPH_POLL_INTERVAL_MS: String(POLL_MS),
    TRIALGRAPH_LEASE_MS: String(LEASE_MS),
    ...extra,
  };
}

const trialPrefix = (job: string) => `out/${job}/debug-output/`;

/** Uploads fixture steps into the job's trial as SageMaker's hook does: event file first, then its index. */
async function uploadSteps(job: string, steps: number[]): Promise<void> {
  const put = async (key: string) => client.send(new PutObjectCommand({
    Bucket: BUCKET, Key: trialPrefix(job) + key, Body: await fs.readFile(path.join(ABALONE_TRIAL, key)),
  }));
  for (const step of steps) {
    await put(eventFileKey(step, DEFAULT_WORKER));
    await put(indexFileKey(step, DEFAULT_WORKER));
  }
  await put(collectionsFileKey(DEFAULT_WORKER));
}

async function startJob(on: ChildServer, name: string): Promise<void> {
  const { body } = await on.gql(`mutation($input: StartTrainingJobInput!) { startTrainingJob(input: $input) { name debugOutputPath ruleSummaries { ruleConfigurationName ruleEvaluationStatus evaluator } } }`, {
    input: {
      backend: "SAGEMAKER", name, algorithm: { builtin: "xgboost", version: "1.7-1" },
      hyperparameters: { num_round: 51, eta: 0.2 }, inputs: [{ name: "train", uri: `s3://${BUCKET}/train/` }], instanceType: "ml.m5.xlarge",
      debugHookConfig: { s3OutputPath: `s3://${BUCKET}/out`, collectionConfigs: [{ name: "metrics", parameters: { save_interval: "5" } }] },
      rules: [{ builtin: "LossNotDecreasing", evaluator: "SERVICE", parameters: { collection_names: "metrics", num_steps: "10" } }],
    },
  });
  assert.equal(body.errors, undefined, JSON.stringify(body.errors));
  const started = body.data.startTrainingJob;
  assert.equal(started.debugOutputPath, `s3://${BUCKET}/${trialPrefix(name).replace(/\/$/, "")}`);
  assert.deepEqual(started.ruleSummaries, [{ ruleConfigurationName: "LossNotDecreasing", ruleEvaluationStatus: "IN_PROGRESS", evaluator: "SERVICE" }]);
}

const SUMMARY = `trainingJob(name: $n) { status ruleSummaries { ruleConfigurationName ruleEvaluationStatus statusDetails evaluator findings { step tensorNames } } }`;

/** The rule's whole history, paged 4 at a time (the connection as a client pages it). */
async function history(on: ChildServer, job: string): Promise<{ step: number | null; status: string; message: string; time: string }[]> {
  const out: any[] = [];
  let after: string | null = null;
  for (let page = 0; page < 50; page++) {
    const { body } = await on.gql(`query($n: String!, $a: String) { trainingJob(name: $n) { ruleSummaries { evaluations(first: 4, after: $a) { nodes { step status message time } pageInfo { endCursor hasNextPage } } } } }`, { n: job, a: after });
    assert.equal(body.errors, undefined, JSON.stringify(body.errors));
    const conn = body.data.trainingJob.ruleSummaries[0].evaluations;
    out.push(...conn.nodes);
    if (!conn.pageInfo.hasNextPage) return out;
    after = conn.pageInfo.endCursor;
  }
  throw new Error("history did not end");
}

/** The firings of LossNotDecreasing over the whole fixture, evaluated in one go in this process. */
async function uninterruptedFindingSteps(): Promise<number[]> {
  const trial = (await openTrial(new LocalSource(ABALONE_TRIAL), "abalone"))!;
  const [result] = await evaluateRules(trial, [{ builtin: "LossNotDecreasing", parameters: { collection_names: "metrics", num_steps: "10" } }]);
  assert.equal(result.status, "ISSUES_FOUND");
  return result.findings.map((f) => f.step);
}

const evaluatedSteps = (h: { step: number | null; message: string }[]) => h.filter((e) => !/^evaluation finished|^no issues found|^required/.test(e.message)).map((e) => e.step);

test("restart mid-evaluation (one instance, embedded database): the evaluation resumes by itself and reaches its final status", async () => {
  const name = "durable-restart";
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), "tg-durable-"));
  const env = instanceEnv({ TRIALGRAPH_DATA_DIR: dataDir });
  let first: ChildServer | null = await startChildServer({ name: "first", env });
  let second: ChildServer | null = null;
  try {
    assert.equal((await first.health()).database.engine, "sqlite");
    await startJob(first, name);
    await uploadSteps(name, [0, 5, 10, 15, 20]);
    await eventually(async () => evaluatedSteps(await history(first!, name)).includes(20), "steps 0-20 evaluated", 30_000);

    await first.kill();
    first = null;
    second = await startChildServer({ name: "second", env });
    const ws = wsClient(second.wsUrl);
    try {
      const rules = collect(ws, `subscription($j: String) { ruleStatusChanged(jobName: $j) { previousStatus rule { ruleEvaluationStatus statusDetails } } }`, { j: name });
      // Resumed by itself: the restarted instance found its predecessor dead and took the rules over.
      await eventually(() => second!.logs.some((l) => l.msg === "rule evaluation resumed on this instance" && l.job === name), "the evaluation resumed", 30_000);
      await uploadSteps(name, [25, 30, 35, 40, 45, 50]);
      await rules.waitFor((r) => r.data?.ruleStatusChanged.rule.ruleEvaluationStatus === "ISSUES_FOUND", "ISSUES_FOUND after the restart", 30_000);
      sm.finish(name);
      await eventually(async () => {
        const { body } = await second!.gql(`query($n: String!) { ${SUMMARY} }`, { n: name });
        return body.data?.trainingJob?.status === "COMPLETED" ? body.data.trainingJob : undefined;
      }, "the job completed", 30_000);
      await eventually(async () => (await history(second!, name)).some((e) => /^evaluation finished/.test(e.message)), "the conclusion in the history", 30_000);
      const { body } = await second.gql(`query($n: String!) { ${SUMMARY} }`, { n: name });
      const [rule] = body.data.trainingJob.ruleSummaries;
      assert.equal(rule.ruleEvaluationStatus, "ISSUES_FOUND");
      assert.match(rule.statusDetails, /step 30/);
      assert.match(rule.statusDetails, /validation-rmse/);
      // The same findings as one uninterrupted evaluation of the whole trial.
      assert.deepEqual(rule.findings.map((f: any) => f.step), await uninterruptedFindingSteps());
      assert.ok(rule.findings[0].tensorNames.includes("validation-rmse"));
      // The subscription's current state first (previousStatus null), then the firing once, from
      // IN_PROGRESS (the resume itself announced nothing).
      const statuses = rules.results.map((r) => `${r.data.ruleStatusChanged.previousStatus}>${r.data.ruleStatusChanged.rule.ruleEvaluationStatus}`);
      assert.deepEqual(statuses, ["null>IN_PROGRESS", "IN_PROGRESS>ISSUES_FOUND"]);
      // Every step once, in order, across both lives, then the conclusion.
      const h = await history(second, name);
      assert.deepEqual(evaluatedSteps(h), STEPS);
      assert.deepEqual(h.map((e) => e.status), [...STEPS.map((s) => (s >= 30 ? "ISSUES_FOUND" : "IN_PROGRESS")), "ISSUES_FOUND"]);
      assert.match(h.find((e) => e.step === 30)!.message, /found an issue at step 30/);
      assert.match(h[h.length - 1].message, /evaluation finished after \d+ step\(s\); issues at step\(s\) 30/);
      for (let i = 1; i < h.length; i++) assert.ok(Date.parse(h[i].time) >= Date.parse(h[i - 1].time));
    } finally {
      await ws.dispose();
    }
  } finally {
    await first?.kill();
    await second?.stop();
    await fs.rm(dataDir, { recursive: true, force: true });
  }
});

test("two instances on PostgreSQL + Redis: the evaluator killed with SIGKILL, the other takes the rules over and finishes; both answer alike", async () => {
  const name = "durable-failover";
  const db = await createTestDatabase("failover");
  const prefix = `tg-test-${randomUUID()}`;
  const shared = { TRIALGRAPH_DATABASE_URL: db.url, TRIALGRAPH_REDIS_URL: SHARED_REDIS_URL, TRIALGRAPH_REDIS_PREFIX: prefix };
  const instances: ChildServer[] = [];
  const clients: ReturnType<typeof wsClient>[] = [];
  const store = await Store.open({ databaseUrl: db.url, dataDir: os.tmpdir() });
  try {
    // A runs in its own PID namespace, as on another machine: B can tell it is gone only by its silence.
    const a = await startChildServer({ name: "A", env: instanceEnv(shared), isolatedPids: true });
    instances.push(a);
    const b = await startChildServer({ name: "B", env: instanceEnv(shared) });
    instances.push(b);
    for (const i of instances) await eventually(async () => (await i.health()).events.redis === "up", `${i.name} on Redis`);
    const idOf = async (i: ChildServer) => (await i.health()).instance as string;
    const [idA, idB] = [await idOf(a), await idOf(b)];

    await startJob(a, name);
    const cb = wsClient(b.wsUrl);
    clients.push(cb);
    const onB = collect(cb, `subscription($j: String) { ruleStatusChanged(jobName: $j) { previousStatus rule { ruleEvaluationStatus } } }`, { j: name });
    const holder = () => store.leases("observer", 1).holder(`rules:${name}`);
    assert.equal(await holder(), idA, "the instance that started the job evaluates its rules");
    await uploadSteps(name, [0, 5, 10, 15, 20, 25]);
    await eventually(async () => evaluatedSteps(await history(b, name)).includes(25), "steps 0-25 evaluated (read on B)", 30_000);
    // Both instances answer the same summaries, from the database.
    const summaryOn = async (i: ChildServer) => (await i.gql(`query($n: String!) { ${SUMMARY} }`, { n: name })).body.data.trainingJob.ruleSummaries;
    assert.deepEqual(await summaryOn(a), await summaryOn(b));

    // (How fast is measured by `npm run bench -- durable`.)
    await a.kill();
    await eventually(async () => (await holder()) === idB, "B holding the rules' lease", 30_000, 20);
    await eventually(() => b.logs.some((l) => l.msg === "rule evaluation resumed on this instance" && l.job === name), "B saying it resumed");

    await uploadSteps(name, [30, 35, 40, 45, 50]);
    await onB.waitFor((r) => r.data?.ruleStatusChanged.rule.ruleEvaluationStatus === "ISSUES_FOUND", "ISSUES_FOUND on B", 30_000);
    sm.finish(name);
    await eventually(async () => (await history(b, name)).some((e) => /^evaluation finished/.test(e.message)), "the conclusion", 30_000);
    const h = await history(b, name);
    assert.deepEqual(evaluatedSteps(h), STEPS, "every step once across the two evaluators");
    const [rule] = await summaryOn(b);
    assert.equal(rule.ruleEvaluationStatus, "ISSUES_FOUND");
    assert.deepEqual(rule.findings.map((f: any) => f.step), await uninterruptedFindingSteps());
    assert.equal(await holder(), null, "the lease is released once every rule is final");
    assert.deepEqual(onB.results.map((r) => `${r.data.ruleStatusChanged.previousStatus}>${r.data.ruleStatusChanged.rule.ruleEvaluationStatus}`),
      ["null>IN_PROGRESS", "IN_PROGRESS>ISSUES_FOUND"], "the current state, then the firing announced once");
  } finally {
    await Promise.all(clients.map((c) => c.dispose()));
    await Promise.all(instances.map((i) => i.kill()));
    await store.close();
    await db.drop();
    await deleteKeys(SHARED_REDIS_URL, prefix);
  }
});
