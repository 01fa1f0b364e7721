/**
 * Live subscriptions over graphql-ws against the real service: SageMaker jobs polled by the job
 * watcher (a SageMaker-protocol test endpoint with scripted timelines), local XGBoost jobs that
 * publish directly, growing trials (local and S3), and the error and limit paths.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Client } from "graphql-ws";
import { SageMakerBackend } from "../src/jobs/sagemaker/backend.js";
import { TrialWriter } from "../src/trials/trial-writer.js";
import { startTestServer, type TestServer } from "./support/server.js";
import { labTimeline, startSageMakerEndpoint, type SageMakerEndpoint } from "./support/sagemaker-endpoint.js";
import { createBucket, createTestClient, start as startS3, uploadDirectory, S3RVER_CREDENTIALS, type S3TestServer } from "./support/s3-server.js";
import { collect, errorsOf, eventually, sleep, wsClient } from "./support/ws-events.js";
import { ABALONE_TRIAL, FIXTURES, loadGolden } from "./support/fixtures.js";

const ROLE = "arn:aws:iam::123456789012:role/x";
const POLL_MS = 100;
const MAX_DEPTH = 6;

let sm: SageMakerEndpoint;
let s3: S3TestServer;
let server: TestServer;
const clients: Client[] = [];
const golden = loadGolden();

function client(): Client {
  const c = wsClient(server.wsUrl);
  clients.push(c);
  return c;
}

before(async () => {
  sm = await startSageMakerEndpoint({ port: 0 });
  // Every job advances only when a test says so: each transition is then seen exactly once.
  sm.script("*", { stages: labTimeline(), advanceOn: "manual" });
  s3 = await startS3();
  // The service's SDK clients take credentials from the environment: s3rver checks them, the SageMaker endpoint does not.
  process.env.AWS_ACCESS_KEY_ID = S3RVER_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = S3RVER_CREDENTIALS.secretAccessKey;
  server = await startTestServer({
    TRIALGRAPH_SAGEMAKER_ENDPOINT: sm.url,
    TRIALGRAPH_SAGEMAKER_ENABLED: "true",
    AWS_REGION: "us-east-1",
    TRIALGRAPH_SAGEMAKER_ROLE_ARN: ROLE,
    TRIALGRAPH_SAGEMAKER_OUTPUT_PATH: "s3://bucket/out",
    TRIALGRAPH_S3_ENDPOINT: s3.endpoint,
    TRIALGRAPH_POLL_INTERVAL_MS: String(POLL_MS),
    TRIALGRAPH_MAX_DEPTH: String(MAX_DEPTH),
    TRIALGRAPH_MAX_VALUES: "1000",
  });
  await fs.mkdir(path.join(server.dataDir, "lab"), { recursive: true });
  for (const f of ["abalone.train.libsvm", "abalone.validation.libsvm"]) {
    await fs.copyFile(path.join(FIXTURES, "data", f), path.join(server.dataDir, "lab", f));
  }
});

after(async () => {
  await Promise.all(clients.map((c) => c.dispose()));
  await server?.close();
  await s3?.close();
  await sm?.close();
});

const JOB_FIELDS = "name backend status secondaryStatus ruleSummaries { ruleConfigurationName ruleEvaluationStatus evaluator }";
const JOB_STATUS_SUB = `subscription($j: String) { trainingJobStatusChanged(jobName: $j) { eventId previousStatus job { ${JOB_FIELDS} } } }`;
const JOB_UPDATED_SUB = `subscription($j: String) { trainingJobUpdated(jobName: $j) { eventId ${JOB_FIELDS} } }`;
const RULE_STATUS_SUB = `subscription($j: String) { ruleStatusChanged(jobName: $j) { jobName previousStatus rule { ruleConfigurationName ruleEvaluationStatus statusDetails evaluator } } }`;

const jobEvent = (name: string, secondary: string) => (r: any) =>
  r.data?.trainingJobStatusChanged?.job.name === name && r.data.trainingJobStatusChanged.job.secondaryStatus === secondary;
const updateOf = (name: string, secondary: string) => (r: any) =>
  r.data?.trainingJobUpdated?.name === name && r.data.trainingJobUpdated.secondaryStatus === secondary;
const ruleEvent = (name: string, rule: string, status: string) => (r: any) =>
  r.data?.ruleStatusChanged?.jobName === name && r.data.ruleStatusChanged.rule.ruleConfigurationName === rule &&
  r.data.ruleStatusChanged.rule.ruleEvaluationStatus === status;

const JOB_STATUS: Record<string, string> = { InProgress: "IN_PROGRESS", Completed: "COMPLETED", Failed: "FAILED", Stopping: "STOPPING", Stopped: "STOPPED" };

async function startSageMakerJob(name: string, rules: string[]): Promise<any> {
  const { body } = await server.gql(`mutation($input: StartTrainingJobInput!) { startTrainingJob(input: $input) { ${JOB_FIELDS} } }`, {
    input: {
      backend: "SAGEMAKER",
      name,
      algorithm: { builtin: "xgboost", version: "1.7-1" },
      hyperparameters: { max_depth: 5, eta: 0.2, num_round: 51, objective: "reg:squarederror" },
      inputs: [{ name: "train", uri: "s3://bucket/train/", contentType: "libsvm" }],
      instanceType: "ml.m5.xlarge",
      debugHookConfig: { s3OutputPath: "s3://bucket/debug/", collectionConfigs: [{ name: "metrics", parameters: { save_interval: "5" } }] },
      rules: rules.map((builtin) => ({ builtin })),
    },
  });
  assert.equal(body.errors, undefined, JSON.stringify(body.errors));
  return body.data!.startTrainingJob;
}

/** Describe calls for a job stay where they are for `quietMs` (the watcher stopped polling it). */
async function assertNotPolled(name: string, quietMs = 12 * POLL_MS): Promise<void> {
  await sleep(3 * POLL_MS); // a poll in flight when the watch ended may still land
  const before = sm.count("DescribeTrainingJob", name);
  await sleep(quietMs);
  assert.equal(sm.count("DescribeTrainingJob", name), before, `${name} is still polled`);
}

test("a SageMaker job started here is watched from the start: every transition once, with its previous status, rules outliving the job", async () => {
  const c = client();
  // All jobs: these subscriptions give the watcher no job to watch; only the start does.
  const jobs = collect(c, JOB_STATUS_SUB);
  const updates = collect(c, JOB_UPDATED_SUB);
  const rules = collect(c, RULE_STATUS_SUB);
  await sleep(200);
  const name = "lab-watched-from-start";
  const started = await startSageMakerJob(name, ["LossNotDecreasing", "Overtraining"]);
  assert.equal(started.status, "IN_PROGRESS");

  const first = await jobs.waitFor(jobEvent(name, "Starting"), "the first report");
  assert.equal(first.data.trainingJobStatusChanged.previousStatus, null);
  for (const rule of ["LossNotDecreasing", "Overtraining"]) {
    const r = await rules.waitFor(ruleEvent(name, rule, "IN_PROGRESS"), `${rule}'s first report`);
    assert.equal(r.data.ruleStatusChanged.previousStatus, null);
    assert.equal(r.data.ruleStatusChanged.rule.evaluator, "SAGEMAKER");
  }

  const timeline = labTimeline();
  for (let i = 1; i <= 4; i++) {
    sm.advance(name);
    // Secondary statuses move the job (trainingJobUpdated); only Completed changes its status.
    const e = await updates.waitFor(updateOf(name, timeline[i].secondaryStatus), timeline[i].secondaryStatus);
    assert.equal(e.data.trainingJobUpdated.status, JOB_STATUS[timeline[i].status]);
  }
  const completed = await jobs.waitFor(jobEvent(name, "Completed"), "the status change to COMPLETED");
  assert.equal(completed.data.trainingJobStatusChanged.previousStatus, "IN_PROGRESS");
  // The training job is Completed, its rules still run: the watcher keeps polling until they finish.
  const polledWhenCompleted = sm.count("DescribeTrainingJob", name);
  await eventually(() => sm.count("DescribeTrainingJob", name) >= polledWhenCompleted + 3, "polls after the job completed");
  sm.advance(name);
  for (const rule of ["LossNotDecreasing", "Overtraining"]) {
    const r = await rules.waitFor(ruleEvent(name, rule, "ISSUES_FOUND"), `${rule} ISSUES_FOUND`);
    assert.equal(r.data.ruleStatusChanged.previousStatus, "IN_PROGRESS");
    assert.match(r.data.ruleStatusChanged.rule.statusDetails, /RuleEvaluationConditionMet/);
  }

  // Job and rules terminal: nothing more to learn, so no more DescribeTrainingJob calls.
  await assertNotPolled(name);
  const seq = jobs.results.filter((r) => r.data.trainingJobStatusChanged.job.name === name)
    .map((r) => `${r.data.trainingJobStatusChanged.previousStatus}>${r.data.trainingJobStatusChanged.job.status}/${r.data.trainingJobStatusChanged.job.secondaryStatus}`);
  assert.deepEqual(seq, ["null>IN_PROGRESS/Starting", "IN_PROGRESS>COMPLETED/Completed"], "each status change published once");
  const updateSeq = updates.results.filter((r) => r.data.trainingJobUpdated.name === name).map((r) => r.data.trainingJobUpdated.secondaryStatus);
  assert.deepEqual(updateSeq, ["Starting", "Downloading", "Training", "Uploading", "Completed"], "each update once");
  const ids = [...jobs.results.map((r) => r.data.trainingJobStatusChanged.eventId), ...updates.results.map((r) => r.data.trainingJobUpdated.eventId)];
  assert.ok(ids.every((i) => typeof i === "string" && i.length > 0), "every event carries its cursor");
  const ruleSeq = rules.results.filter((r) => r.data.ruleStatusChanged.jobName === name)
    .map((r) => `${r.data.ruleStatusChanged.rule.ruleConfigurationName}:${r.data.ruleStatusChanged.previousStatus}>${r.data.ruleStatusChanged.rule.ruleEvaluationStatus}`)
    .sort();
  assert.deepEqual(ruleSeq, [
    "LossNotDecreasing:IN_PROGRESS>ISSUES_FOUND", "LossNotDecreasing:null>IN_PROGRESS",
    "Overtraining:IN_PROGRESS>ISSUES_FOUND", "Overtraining:null>IN_PROGRESS",
  ]);
  jobs.stop();
  updates.stop();
  rules.stop();
});

test("subscribing to a job started elsewhere reports where it stands, then its changes; a client that leaves frees the watcher", async () => {
  // The lab's notebook starts the job, not this service.
  const notebook = new SageMakerBackend({ region: "us-east-1", endpoint: sm.url, credentials: sm.credentials, roleArn: ROLE, outputPath: "s3://bucket/out" });
  const name = "lab-started-by-notebook";
  try {
    await notebook.start({
      name, algorithm: { builtin: "xgboost", version: "1.7-1" }, hyperparameters: { num_round: 51 },
      inputs: [{ name: "train", uri: "s3://bucket/train/" }], instanceType: "ml.m5.xlarge", rules: [{ builtin: "LossNotDecreasing" }],
    });
  } finally {
    notebook.close();
  }
  sm.advance(name, 2); // Training
  await sleep(5 * POLL_MS);
  assert.equal(sm.count("DescribeTrainingJob", name), 0, "nobody watches it yet");

  const c = client();
  const jobs = collect(c, JOB_STATUS_SUB, { j: name });
  const updates = collect(c, JOB_UPDATED_SUB, { j: name });
  const rules = collect(c, RULE_STATUS_SUB, { j: name });
  const first = await jobs.waitFor(jobEvent(name, "Training"), "where the job stands");
  assert.equal(first.data.trainingJobStatusChanged.previousStatus, null);
  await rules.waitFor(ruleEvent(name, "LossNotDecreasing", "IN_PROGRESS"), "the rule's first report");
  await updates.waitFor(updateOf(name, "Training"), "the job as it stands");

  sm.advance(name); // Uploading
  await updates.waitFor(updateOf(name, "Uploading"), "Uploading");
  await sleep(5 * POLL_MS);
  assert.equal(jobs.results.length, 1, "no status event without a status change");
  assert.equal(rules.results.length, 1, "the rule's state once: the watcher's first report of it is not a change");
  assert.deepEqual(updates.results.map((r) => r.data.trainingJobUpdated.secondaryStatus), ["Training", "Uploading"]);

  // Two subscriptions on one connection share one watcher; disconnecting releases both shares.
  await c.dispose();
  await assertNotPolled(name);
});

test("subscribing to an unknown job is an error event with a code, and starts no polling", async () => {
  const c = client();
  for (const query of [JOB_STATUS_SUB, RULE_STATUS_SUB]) {
    const sub = collect(c, query, { j: "no-such-job" });
    const errors = errorsOf(await sub.waitForError());
    assert.equal(errors[0]?.extensions?.code, "NOT_FOUND", JSON.stringify(errors));
    assert.match(errors[0].message, /no-such-job/);
  }
  const validations = sm.count("DescribeTrainingJob", "no-such-job");
  await sleep(10 * POLL_MS);
  assert.equal(sm.count("DescribeTrainingJob", "no-such-job"), validations, "an unknown job is not polled");
});

test("a local job publishes its statuses directly, without polling", async () => {
  const c = client();
  const name = "lab-local-run";
  const statuses = collect(c, JOB_STATUS_SUB);
  await sleep(200);
  const { body } = await server.gql(`mutation($input: StartTrainingJobInput!) { startTrainingJob(input: $input) { name status } }`, {
    input: {
      backend: "LOCAL", name,
      algorithm: { builtin: "xgboost", version: "1.7-1" },
      hyperparameters: { max_depth: 5, eta: 0.2, gamma: 4, min_child_weight: 6, subsample: 0.7, objective: "reg:squarederror", num_round: 51 },
      inputs: [
        { name: "train", uri: "lab/abalone.train.libsvm", contentType: "libsvm" },
        { name: "validation", uri: "lab/abalone.validation.libsvm", contentType: "libsvm" },
      ],
      debugHookConfig: { hookParameters: { save_interval: "5" }, collectionConfigs: [{ name: "metrics" }] },
    },
  });
  assert.equal(body.errors, undefined, JSON.stringify(body.errors));
  await statuses.waitFor((r) => r.data.trainingJobStatusChanged.job.name === name && r.data.trainingJobStatusChanged.job.status === "COMPLETED", "COMPLETED", 60_000);
  const seq = statuses.results.filter((r) => r.data.trainingJobStatusChanged.job.name === name)
    .map((r) => `${r.data.trainingJobStatusChanged.previousStatus}>${r.data.trainingJobStatusChanged.job.status}/${r.data.trainingJobStatusChanged.job.secondaryStatus}`);
  assert.deepEqual(seq, ["null>IN_PROGRESS/Starting", "IN_PROGRESS>COMPLETED/Completed"], "status changes only (Starting -> Training is not one)");
  assert.equal(sm.count("DescribeTrainingJob", name), 0, "a local job is never described on SageMaker");

  // A subscription naming the ended local job gets where it stands at once, and does not start SageMaker polling.
  const named = collect(c, JOB_STATUS_SUB, { j: name });
  const now = await named.waitFor(() => true, "the current state");
  assert.equal(now.data.trainingJobStatusChanged.previousStatus, null);
  assert.equal(now.data.trainingJobStatusChanged.job.status, "COMPLETED");
  await sleep(10 * POLL_MS);
  assert.equal(named.error, undefined);
  assert.equal(named.results.length, 1);
  assert.equal(sm.count("DescribeTrainingJob", name), 0);
  named.stop();
  statuses.stop();
});

test("every event resolves with a fresh context: per-request budgets and loader caches do not carry over", async () => {
  // The job's trial (the abalone trial, in S3 at the job's debug output path) has 51 tensors of 11 steps:
  // 561 values per event. The server allows 1000 per request, so a context reused for a second
  // event would fail it with LIMIT_EXCEEDED.
  const name = "lab-fresh-context";
  const s3client = createTestClient(s3);
  try {
    await createBucket(s3client, "lab-debug");
    await uploadDirectory(s3client, "lab-debug", `debug/${name}/debug-output/`, ABALONE_TRIAL);
  } finally {
    s3client.destroy();
  }
  const { body } = await server.gql(`mutation($input: StartTrainingJobInput!) { startTrainingJob(input: $input) { name debugOutputPath } }`, {
    input: {
      backend: "SAGEMAKER", name, algorithm: { builtin: "xgboost", version: "1.7-1" }, hyperparameters: { num_round: 51 },
      inputs: [{ name: "train", uri: "s3://bucket/train/" }], instanceType: "ml.m5.xlarge",
      debugHookConfig: { s3OutputPath: "s3://lab-debug/debug/" },
    },
  });
  assert.equal(body.errors, undefined, JSON.stringify(body.errors));
  assert.equal(body.data.startTrainingJob.debugOutputPath, `s3://lab-debug/debug/${name}/debug-output`);

  const c = client();
  const sub = collect(c, `subscription($j: String) { trainingJobUpdated(jobName: $j) {
    secondaryStatus trial { tensors(regex: ".") { series { values } } } } }`, { j: name });
  await sub.waitFor(() => true, "the job as it stands");
  const timeline = labTimeline();
  for (let i = 1; i <= 3; i++) {
    sm.advance(name);
    await sub.waitFor((r) => r.data?.trainingJobUpdated?.secondaryStatus === timeline[i].secondaryStatus, timeline[i].secondaryStatus);
  }
  assert.equal(sub.results.length, 4);
  for (const r of sub.results) {
    assert.equal(r.errors, undefined, JSON.stringify(r.errors));
    const values = r.data.trainingJobUpdated.trial.tensors.reduce((n: number, t: any) => n + t.series.values.length, 0);
    assert.equal(values, golden.tensor_names.reduce((n, t) => n + golden.tensors[t].steps.length, 0));
  }
  // The budget does bite: one request asking for two events' worth is refused.
  const twice = await server.gql(`query($j: String!) { trainingJob(name: $j) { trial {
    a: tensors(regex: ".") { series { values } } b: tensors(regex: ".") { series { values } } } } }`, { j: name });
  assert.equal(twice.body.errors?.[0]?.extensions?.code, "LIMIT_EXCEEDED", JSON.stringify(twice.body).slice(0, 500));
  sub.stop();
});

test("trialStepsAdded follows an S3 trial incrementally while subscribed", async () => {
  const s3client = createTestClient(s3);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "tg-s3-live-"));
  try {
    await createBucket(s3client, "live-trials");
    const w = new TrialWriter(dir);
    await w.writeCollections([{ name: "metrics", includeRegex: ["rmse"] }]);
    await w.writeStep(0, [{ name: "train-rmse", dtype: "float64", shape: [1], values: [3] }]);
    await uploadDirectory(s3client, "live-trials", "run-1/", dir);

    const c = client();
    const sub = collect(c, `subscription { trialStepsAdded(path: "s3://live-trials/run-1") { path steps lastCompleteStep trainingEnded } }`);
    await sleep(500);
    await w.writeStep(1, [{ name: "train-rmse", dtype: "float64", shape: [1], values: [2] }]);
    await w.writeStep(2, [{ name: "train-rmse", dtype: "float64", shape: [1], values: [1] }]);
    await uploadDirectory(s3client, "live-trials", "run-1/", dir);
    await sub.waitFor((r) => r.data.trialStepsAdded.steps.includes(2), "steps 1 and 2");
    await w.end();
    await uploadDirectory(s3client, "live-trials", "run-1/", dir);
    const ended = await sub.waitFor((r) => r.data.trialStepsAdded.trainingEnded, "training end");
    assert.equal(ended.data.trialStepsAdded.path, "s3://live-trials/run-1");
    assert.equal(ended.data.trialStepsAdded.lastCompleteStep, 2);
    const steps = sub.results.flatMap((r) => r.data.trialStepsAdded.steps);
    assert.deepEqual(steps.filter((s: number) => s > 0), [1, 2], "each new step once");
    sub.stop();
  } finally {
    s3client.destroy();
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test("the depth limit applies to subscriptions over WebSocket", async () => {
  const c = client();
  const deep = collect(c, `subscription { trainingJobStatusChanged { job { trial { collection(name: "metrics") { tensors { series { steps } } } } } } }`);
  const errors = errorsOf(await deep.waitForError());
  assert.ok(errors.length > 0);
  assert.equal(errors[0].extensions?.code, "LIMIT_EXCEEDED", JSON.stringify(errors));
  assert.equal(errors[0].extensions?.limit, "depth");
  // A subscription within the limit is accepted on the same connection.
  const fine = collect(c, JOB_STATUS_SUB);
  await sleep(300);
  assert.equal(fine.error, undefined);
  fine.stop();
});
