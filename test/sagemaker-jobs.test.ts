/**
 * trainingJob / stopTrainingJob / trainingJobs on SAGEMAKER through the real SDK client against the
 * local SageMaker-protocol endpoint: the lab's timeline, status mapping, stopping, and paging.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { SageMakerBackend, type SageMakerBackendOptions } from "../src/jobs/sagemaker/backend.js";
import type { StartTrainingJobSpec, TrainingJobRecord } from "../src/jobs/types.js";
import { expectError } from "./support/assertions.js";
import { labTimeline, startSageMakerEndpoint, type SageMakerEndpoint } from "./support/sagemaker-endpoint.js";

const ROLE = "arn:aws:iam::111122223333:role/lab";
let sm: SageMakerEndpoint;
const backends: SageMakerBackend[] = [];

function backendFor(overrides: Partial<SageMakerBackendOptions> = {}): SageMakerBackend {
  const backend = new SageMakerBackend({
    region: "us-east-1", endpoint: sm.url, credentials: sm.credentials, maxAttempts: 2,
    roleArn: ROLE, outputPath: "s3://lab-bucket/output/", ...overrides,
  });
  backends.push(backend);
  return backend;
}

function labSpec(name: string): StartTrainingJobSpec {
  return {
    name,
    algorithm: { builtin: "xgboost", version: "1.7-1" },
    hyperparameters: { num_round: 51, eta: 0.2, objective: "reg:squarederror" },
    inputs: [{ name: "train", uri: "s3://lab-bucket/train/", contentType: "libsvm" }],
    instanceType: "ml.m5.xlarge",
    debugHookConfig: {
      s3OutputPath: "s3://lab-bucket/debug/",
      collectionConfigs: [{ name: "metrics", parameters: { save_interval: "5" } }],
    },
    rules: [{ builtin: "LossNotDecreasing" }],
  };
}

before(async () => { sm = await startSageMakerEndpoint({ port: 0 }); });
after(async () => {
  for (const b of backends) b.close();
  await sm.close();
});

describe("trainingJob(name): DescribeTrainingJob mapped", () => {
  test("the lab's timeline: the job completes while LossNotDecreasing still runs, then the rule finds issues", async () => {
    const backend = backendFor();
    const name = "lab-timeline-1";
    await backend.start(labSpec(name));
    const seen: TrainingJobRecord[] = [];
    for (let i = 0; i < 7; i++) seen.push((await backend.describe(name))!);
    assert.deepEqual(seen.map((r) => [r.status, r.secondaryStatus, r.ruleSummaries[0].status]), [
      ["IN_PROGRESS", "Starting", "IN_PROGRESS"],
      ["IN_PROGRESS", "Downloading", "IN_PROGRESS"],
      ["IN_PROGRESS", "Training", "IN_PROGRESS"],
      ["IN_PROGRESS", "Uploading", "IN_PROGRESS"],
      ["COMPLETED", "Completed", "IN_PROGRESS"],
      ["COMPLETED", "Completed", "ISSUES_FOUND"],
      ["COMPLETED", "Completed", "ISSUES_FOUND"],
    ]);
    assert.equal(sm.count("DescribeTrainingJob", name), 7);

    const starting = seen[0];
    assert.equal(starting.startedAt, null);
    assert.equal(starting.endedAt, null);
    const done = seen[6];
    assert.equal(done.name, name);
    assert.equal(done.backend, "SAGEMAKER");
    assert.equal(done.arn, `arn:aws:sagemaker:us-east-1:123456789012:training-job/${name}`);
    assert.equal(done.failureReason, null);
    assert.ok(done.createdAt instanceof Date && done.startedAt instanceof Date && done.endedAt instanceof Date);
    assert.ok(done.createdAt <= done.startedAt! && done.startedAt! <= done.endedAt!);
    assert.deepEqual(done.hyperparameters, { num_round: "51", eta: "0.2", objective: "reg:squarederror" });
    // DebugHookConfig.S3OutputPath + job name + debug-output, one slash between parts.
    assert.equal(done.debugOutputPath, `s3://lab-bucket/debug/${name}/debug-output`);
    assert.equal(done.progress, null);
    const [rule] = done.ruleSummaries;
    assert.equal(rule.ruleConfigurationName, "LossNotDecreasing");
    assert.equal(rule.evaluator, "SAGEMAKER");
    assert.match(rule.ruleEvaluationJobArn!, /^arn:aws:sagemaker:us-east-1:\d{12}:processing-job\/lab-timeline-1-lossnotdecreasing-[0-9a-f]{8}$/);
    assert.match(rule.statusDetails!, /RuleEvaluationConditionMet/);
    assert.ok(rule.lastModifiedTime instanceof Date);
    assert.equal(seen[4].ruleSummaries[0].statusDetails, null);
  });

  test("FAILED with its failure reason; STOPPED for MaxRuntimeExceeded; end time falls back to the last change", async () => {
    const backend = backendFor();
    sm.script("failing-job", {
      advanceOn: "manual",
      stages: [
        { status: "InProgress", secondaryStatus: "Starting" },
        { status: "Failed", secondaryStatus: "Failed", failureReason: "AlgorithmError: num_class is required", rules: { "*": "Error" } },
      ],
    });
    await backend.start(labSpec("failing-job"));
    assert.equal((await backend.describe("failing-job"))!.status, "IN_PROGRESS");
    sm.advance("failing-job");
    const failed = (await backend.describe("failing-job"))!;
    assert.equal(failed.status, "FAILED");
    assert.equal(failed.secondaryStatus, "Failed");
    assert.equal(failed.failureReason, "AlgorithmError: num_class is required");
    assert.equal(failed.startedAt, null, "it never reached Training");
    assert.ok(failed.endedAt instanceof Date);
    assert.equal(failed.ruleSummaries[0].status, "ERROR");

    sm.seed({ name: "timed-out-job", status: "Stopped", secondaryStatus: "MaxRuntimeExceeded" });
    const stopped = (await backend.describe("timed-out-job"))!;
    assert.equal(stopped.status, "STOPPED");
    assert.equal(stopped.secondaryStatus, "MaxRuntimeExceeded");
    assert.equal(stopped.debugOutputPath, null, "no hook config, no trial");
    assert.deepEqual(stopped.ruleSummaries, []);
  });

  test("every rule status maps", async () => {
    sm.seed({
      name: "rule-statuses", status: "Completed",
      rules: { a: "InProgress", b: "NoIssuesFound", c: "IssuesFound", d: "Error", e: "Stopping", f: "Stopped" },
    });
    const job = (await backendFor().describe("rule-statuses"))!;
    assert.deepEqual(job.ruleSummaries.map((r) => [r.ruleConfigurationName, r.status]), [
      ["a", "IN_PROGRESS"], ["b", "NO_ISSUES_FOUND"], ["c", "ISSUES_FOUND"], ["d", "ERROR"], ["e", "STOPPING"], ["f", "STOPPED"],
    ]);
  });

  test("an unknown job is null (SageMaker answers ValidationException 'Requested resource not found.')", async () => {
    const backend = backendFor();
    const before = sm.count("DescribeTrainingJob", "no-such-job");
    assert.equal(await backend.describe("no-such-job"), null);
    const calls = sm.requests.filter((r) => r.operation === "DescribeTrainingJob" && r.body.TrainingJobName === "no-such-job");
    assert.equal(calls.length, before + 1, "not-found is not retried");
    assert.deepEqual(calls[calls.length - 1].answer, { status: 400, errorType: "ValidationException" });
    // A name SageMaker could never have accepted needs no call.
    const total = sm.requests.length;
    assert.equal(await backend.describe("not_a_job_name"), null);
    assert.equal(sm.requests.length, total);
  });
});

describe("stopTrainingJob", () => {
  test("a running job is STOPPING, stopping again is harmless, then STOPPED with its rules stopped", async () => {
    const backend = backendFor();
    sm.script("stop-me", { stages: labTimeline(), advanceOn: "manual" });
    await backend.start(labSpec("stop-me"));
    sm.advance("stop-me", 2);
    const stopping = await backend.stop("stop-me");
    assert.equal(stopping.status, "STOPPING");
    assert.equal(stopping.secondaryStatus, "Stopping");
    assert.equal(sm.count("StopTrainingJob", "stop-me"), 1);

    const again = await backend.stop("stop-me");
    assert.equal(again.status, "STOPPING");
    assert.equal(sm.count("StopTrainingJob", "stop-me"), 2);

    sm.advance("stop-me");
    const stopped = (await backend.describe("stop-me"))!;
    assert.equal(stopped.status, "STOPPED");
    assert.equal(stopped.ruleSummaries[0].status, "STOPPED");
    assert.ok(stopped.endedAt instanceof Date);
  });

  test("a finished job is JOB_NOT_STOPPABLE; an unknown job NOT_FOUND", async () => {
    const backend = backendFor();
    sm.seed({ name: "already-done", status: "Completed" });
    const e = await expectError(backend.stop("already-done"), "JOB_NOT_STOPPABLE");
    assert.equal(e.details.status, "COMPLETED");
    assert.match(e.message, /already-done/);
    sm.seed({ name: "already-failed", status: "Failed" });
    assert.equal((await expectError(backend.stop("already-failed"), "JOB_NOT_STOPPABLE")).details.status, "FAILED");
    await expectError(backend.stop("never-existed"), "NOT_FOUND");
  });

  test("a refusal whose message names no status is resolved by describing the job", async () => {
    const backend = backendFor();
    sm.seed({ name: "odd-refusal", status: "Stopped" });
    sm.fail({ operation: "StopTrainingJob", jobName: "odd-refusal", type: "ValidationException", message: "Job cannot be stopped." });
    const e = await expectError(backend.stop("odd-refusal"), "JOB_NOT_STOPPABLE");
    assert.equal(e.details.status, "STOPPED");
  });
});

describe("trainingJobs: ListTrainingJobs as a connection", () => {
  let lister: SageMakerEndpoint;
  let backend: SageMakerBackend;
  const t0 = Date.UTC(2026, 7, 1);
  // Newest first: job-09 … job-00. Even jobs Completed, odd ones InProgress, one Failed.
  before(async () => {
    lister = await startSageMakerEndpoint({ port: 0 });
    for (let i = 0; i < 10; i++) {
      lister.seed({
        name: `job-${String(i).padStart(2, "0")}`,
        status: i === 4 ? "Failed" : i % 2 === 0 ? "Completed" : "InProgress",
        creationTime: new Date(t0 + i * 60_000),
        request: { HyperParameters: { num_round: String(10 + i) }, DebugHookConfig: { S3OutputPath: "s3://b/debug" } },
      });
    }
    lister.seed({ name: "other-thing", status: "Completed", creationTime: new Date(t0 - 60_000) });
    backend = new SageMakerBackend({ region: "us-east-1", endpoint: lister.url, credentials: lister.credentials, maxAttempts: 2 });
  });
  after(async () => {
    backend.close();
    await lister.close();
  });

  test("pages with first/after, newest first, full records", async () => {
    const names: string[] = [];
    let after: string | null = null;
    let pages = 0;
    do {
      const page = await backend.list({ first: 4, after });
      names.push(...page.nodes.map((n) => n.name));
      assert.equal(page.hasNextPage, page.endCursor != null);
      after = page.endCursor;
      pages++;
    } while (after);
    assert.equal(pages, 3);
    assert.deepEqual(names, [
      "job-09", "job-08", "job-07", "job-06", "job-05", "job-04", "job-03", "job-02", "job-01", "job-00", "other-thing",
    ]);
    const first = await backend.list({ first: 1 });
    assert.equal(first.nodes[0].hyperparameters.num_round, "19");
    assert.equal(first.nodes[0].debugOutputPath, "s3://b/debug/job-09/debug-output");
    assert.equal(first.nodes[0].status, "IN_PROGRESS");
  });

  test("status filter: short and empty pages that still carry a token are followed", async () => {
    const listCalls = lister.count("ListTrainingJobs");
    // The newest two are InProgress and Completed: SageMaker filters within its window of MaxResults jobs.
    const page = await backend.list({ first: 3, status: "COMPLETED" });
    assert.deepEqual(page.nodes.map((n) => n.name), ["job-08", "job-06", "job-02"]);
    assert.ok(page.nodes.every((n) => n.status === "COMPLETED"));
    const calls = lister.requests.filter((r) => r.operation === "ListTrainingJobs").slice(listCalls);
    assert.ok(calls.length > 1, "a short page with a token must be followed");
    assert.deepEqual(calls[0].body, { MaxResults: 3, SortBy: "CreationTime", SortOrder: "Descending", StatusEquals: "Completed" });
    assert.equal(page.hasNextPage, true);

    const rest = await backend.list({ first: 3, status: "COMPLETED", after: page.endCursor });
    assert.deepEqual(rest.nodes.map((n) => n.name), ["job-00", "other-thing"]);
    assert.equal(rest.hasNextPage, false);
    assert.equal(rest.endCursor, null);
  });

  test("an empty page with a token, then nothing: no nodes, no next page", async () => {
    // Window of 1 over the newest job (job-09, InProgress) is empty for FAILED; paging reaches job-04.
    const failed = await backend.list({ first: 1, status: "FAILED" });
    assert.deepEqual(failed.nodes.map((n) => n.name), ["job-04"]);
    assert.equal(failed.hasNextPage, true);
    const before = lister.count("ListTrainingJobs");
    const tail = await backend.list({ first: 1, status: "FAILED", after: failed.endCursor });
    assert.deepEqual(tail.nodes, []);
    assert.equal(tail.hasNextPage, false);
    const bodies = lister.requests.filter((r) => r.operation === "ListTrainingJobs").slice(before).map((r) => r.body);
    assert.ok(bodies.length >= 2 && bodies.every((b) => b.NextToken), "the empty pages were followed by token");
  });

  test("nameContains, and summary-only listing without per-job describes", async () => {
    const page = await backend.list({ first: 20, nameContains: "other" });
    assert.deepEqual(page.nodes.map((n) => n.name), ["other-thing"]);
    const summaries = new SageMakerBackend({
      region: "us-east-1", endpoint: lister.url, credentials: lister.credentials, listDetails: "summary",
    });
    try {
      const describes = lister.count("DescribeTrainingJob");
      const quick = await summaries.list({ first: 2 });
      assert.deepEqual(quick.nodes.map((n) => [n.name, n.status]), [["job-09", "IN_PROGRESS"], ["job-08", "COMPLETED"]]);
      assert.equal(lister.count("DescribeTrainingJob"), describes);
    } finally {
      summaries.close();
    }
  });

  test("bad paging input is BAD_USER_INPUT on its field", async () => {
    assert.equal((await expectError(backend.list({ first: 0 }), "BAD_USER_INPUT")).details.field, "first");
    assert.equal((await expectError(backend.list({ first: 101 }), "BAD_USER_INPUT")).details.field, "first");
    assert.equal((await expectError(backend.list({ first: 2, after: "garbage" }), "BAD_USER_INPUT")).details.field, "after");
    assert.equal((await expectError(backend.list({ first: 2, nameContains: "no_underscores" }), "BAD_USER_INPUT")).details.field,
      "nameContains");
    const page = await backend.list({ first: 2, status: "COMPLETED" });
    assert.equal((await expectError(backend.list({ first: 2, after: page.endCursor }), "BAD_USER_INPUT")).details.field, "after");
  });
});
