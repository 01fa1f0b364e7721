/**
 * SageMaker errors as the SDK surfaces them (matched by name), retries counted at the local endpoint,
 * and the Debugger-unavailable matcher.
 */
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { after, before, describe, test } from "node:test";
import { TrialgraphError } from "../src/errors.js";
import { SageMakerBackend, type SageMakerBackendOptions } from "../src/jobs/sagemaker/backend.js";
import { isDebuggerUnavailable, toTrialgraphError } from "../src/jobs/sagemaker/errors.js";
import type { StartTrainingJobSpec } from "../src/jobs/types.js";
import { expectError } from "./support/assertions.js";
import { startSageMakerEndpoint, type SageMakerEndpoint } from "./support/sagemaker-endpoint.js";

let sm: SageMakerEndpoint;
const backends: SageMakerBackend[] = [];

function backendFor(overrides: Partial<SageMakerBackendOptions> = {}): SageMakerBackend {
  const backend = new SageMakerBackend({
    region: "us-east-1", endpoint: sm.url, credentials: sm.credentials, maxAttempts: 2,
    roleArn: "arn:aws:iam::111122223333:role/lab", outputPath: "s3://lab-bucket/output", ...overrides,
  });
  backends.push(backend);
  return backend;
}

function spec(name: string): StartTrainingJobSpec {
  return {
    name,
    algorithm: { builtin: "xgboost", version: "1.7-1" },
    hyperparameters: { num_round: 10 },
    inputs: [{ name: "train", uri: "s3://lab-bucket/train/" }],
    instanceType: "ml.m5.xlarge",
    rules: [{ builtin: "LossNotDecreasing" }],
  };
}

before(async () => {
  sm = await startSageMakerEndpoint({ port: 0 });
  sm.seed({ name: "existing-job", status: "InProgress" });
});
after(async () => {
  for (const b of backends) b.close();
  await sm.close();
});

describe("errors from SageMaker", () => {
  test("ResourceInUse on a duplicate name is JOB_NAME_IN_USE on field name", async () => {
    const backend = backendFor();
    await backend.start(spec("dup-name"));
    const e = await expectError(backend.start(spec("dup-name")), "JOB_NAME_IN_USE");
    assert.equal(e.details.field, "name");
    assert.equal(e.details.awsError, "ResourceInUse");
    assert.equal(sm.count("CreateTrainingJob", "dup-name"), 2, "not retried");
  });

  test("throttling is retried by the SDK with backoff, then THROTTLED", async () => {
    const backend = backendFor({ maxAttempts: 3 });
    sm.fail({ operation: "DescribeTrainingJob", jobName: "existing-job", type: "ThrottlingException", message: "Rate exceeded", times: 3 });
    const before = sm.count("DescribeTrainingJob", "existing-job");
    const e = await expectError(backend.describe("existing-job"), "THROTTLED");
    assert.equal(sm.count("DescribeTrainingJob", "existing-job") - before, 3);
    assert.equal(e.details.attempts, 3);
    assert.equal(e.details.httpStatus, 400);
  });

  test("a throttled request that gets through on retry succeeds", async () => {
    const backend = backendFor();
    sm.fail({ operation: "DescribeTrainingJob", jobName: "existing-job", type: "ThrottlingException", message: "Rate exceeded" });
    const before = sm.count("DescribeTrainingJob", "existing-job");
    const job = await backend.describe("existing-job");
    assert.equal(job?.status, "IN_PROGRESS");
    assert.equal(sm.count("DescribeTrainingJob", "existing-job") - before, 2);
  });

  test("AccessDeniedException is ACCESS_DENIED and not retried", async () => {
    const backend = backendFor();
    sm.fail({
      operation: "DescribeTrainingJob", type: "AccessDeniedException",
      message: "User: arn:aws:sts::111122223333:assumed-role/x is not authorized to perform: sagemaker:DescribeTrainingJob",
    });
    const before = sm.count("DescribeTrainingJob");
    const e = await expectError(backend.describe("existing-job"), "ACCESS_DENIED");
    assert.equal(sm.count("DescribeTrainingJob") - before, 1);
    assert.match(e.message, /not authorized/);
  });

  test("an account without Debugger: DEBUGGER_UNAVAILABLE suggesting evaluator SERVICE", async () => {
    const backend = backendFor();
    sm.fail({
      operation: "CreateTrainingJob", type: "ValidationException",
      message: "Amazon SageMaker Debugger is no longer available to new customers. DebugRuleConfigurations cannot be specified.",
    });
    const e = await expectError(backend.start(spec("no-debugger-1")), "DEBUGGER_UNAVAILABLE");
    assert.match(e.message, /evaluator SERVICE/);
    sm.fail({
      operation: "CreateTrainingJob", type: "AccessDeniedException",
      message: "Access to SageMaker Debugger rule evaluation is not enabled for this account",
    });
    await expectError(backend.start(spec("no-debugger-2")), "DEBUGGER_UNAVAILABLE");
  });

  test("other ValidationExceptions are BAD_USER_INPUT; ResourceLimitExceeded is LIMIT_EXCEEDED", async () => {
    const backend = backendFor();
    sm.fail({
      operation: "CreateTrainingJob", type: "ValidationException",
      message: "No S3 objects found under S3 URL \"s3://lab-bucket/train/\" given in input data source.",
    });
    const e = await expectError(backend.start(spec("empty-prefix")), "BAD_USER_INPUT");
    assert.match(e.message, /No S3 objects found/);
    sm.fail({ operation: "CreateTrainingJob", type: "ResourceLimitExceeded", message: "The account-level service limit 'ml.m5.xlarge for training job usage' is 0 Instances" });
    await expectError(backend.start(spec("over-quota")), "LIMIT_EXCEEDED");
  });

  test("500s are retried; persistent ones are SAGEMAKER_UNAVAILABLE", async () => {
    const backend = backendFor();
    sm.fail({ operation: "DescribeTrainingJob", jobName: "existing-job", type: "InternalFailure", status: 500 });
    let before = sm.count("DescribeTrainingJob", "existing-job");
    assert.equal((await backend.describe("existing-job"))?.name, "existing-job");
    assert.equal(sm.count("DescribeTrainingJob", "existing-job") - before, 2);

    sm.fail({ operation: "DescribeTrainingJob", jobName: "existing-job", type: "ServiceUnavailable", status: 503, times: 2 });
    before = sm.count("DescribeTrainingJob", "existing-job");
    const e = await expectError(backend.describe("existing-job"), "SAGEMAKER_UNAVAILABLE");
    assert.equal(sm.count("DescribeTrainingJob", "existing-job") - before, 2);
    assert.equal(e.details.httpStatus, 503);
  });

  test("a response slower than the request timeout is retried, then SAGEMAKER_UNAVAILABLE", async () => {
    const backend = backendFor({ requestTimeoutMs: 200 });
    sm.fail({ operation: "ListTrainingJobs", delayMs: 1_500, times: 2 });
    const before = sm.count("ListTrainingJobs");
    const e = await expectError(backend.list({ first: 5 }), "SAGEMAKER_UNAVAILABLE");
    assert.equal(sm.count("ListTrainingJobs") - before, 2);
    assert.equal(e.details.operation, "ListTrainingJobs");
    assert.equal(e.details.awsError, "TimeoutError");
    assert.equal(e.details.attempts, 2);
  });

  test("an unreachable endpoint is SAGEMAKER_UNAVAILABLE", async () => {
    // A port that was just free: nothing listens there.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const backend = backendFor({ endpoint: `http://127.0.0.1:${port}`, connectionTimeoutMs: 500 });
    const e = await expectError(backend.describe("existing-job"), "SAGEMAKER_UNAVAILABLE");
    assert.match(e.message, /ECONNREFUSED/);
    assert.equal(e.details.attempts, 2, "connection errors are retried by the SDK");
    await expectError(backend.start(spec("unreachable-job")), "SAGEMAKER_UNAVAILABLE");
  });
});

describe("matching by error name", () => {
  test("the Debugger matcher needs a Debugger mention and, for ValidationException, an availability phrase", () => {
    const v = (message: string) => ({ name: "ValidationException", message });
    assert.equal(isDebuggerUnavailable(v("SageMaker Debugger is not available in this account")), true);
    assert.equal(isDebuggerUnavailable(v("Debugger rules are no longer offered to new customers")), true);
    assert.equal(isDebuggerUnavailable(v("1 validation error: DebugHookConfig.S3OutputPath must match pattern")), false);
    assert.equal(isDebuggerUnavailable(v("Requested resource not found.")), false);
    assert.equal(isDebuggerUnavailable({ name: "AccessDeniedException", message: "not authorized to use sagemaker-debugger-rules image" }), true);
    assert.equal(isDebuggerUnavailable({ name: "AccessDeniedException", message: "not authorized to perform sagemaker:CreateTrainingJob" }), false);
    assert.equal(isDebuggerUnavailable({ name: "ThrottlingException", message: "Debugger is not available" }), false);
  });

  test("errors are classified by name, whatever their class", () => {
    class SomeOtherClass extends Error {}
    const named = (name: string, message = "m", extra: object = {}) => Object.assign(new SomeOtherClass(message), { name, ...extra });
    assert.equal(toTrialgraphError(named("ResourceInUse"), "CreateTrainingJob").code, "JOB_NAME_IN_USE");
    assert.equal(toTrialgraphError(named("ValidationException", "Requested resource not found."), "DescribeTrainingJob").code, "NOT_FOUND");
    assert.equal(toTrialgraphError(named("ResourceNotFound"), "StopTrainingJob").code, "NOT_FOUND");
    assert.equal(toTrialgraphError(named("TooManyRequestsException"), "ListTrainingJobs").code, "THROTTLED");
    assert.equal(toTrialgraphError(named("UnrecognizedClientException"), "ListTrainingJobs").code, "ACCESS_DENIED");
    assert.equal(toTrialgraphError(named("Error", "connect ECONNREFUSED", { code: "ECONNREFUSED" }), "ListTrainingJobs").code,
      "SAGEMAKER_UNAVAILABLE");
    assert.equal(toTrialgraphError(named("TimeoutError"), "ListTrainingJobs").code, "SAGEMAKER_UNAVAILABLE");
    assert.equal(toTrialgraphError(named("ConflictException", "m", { $metadata: { httpStatusCode: 409 } }), "ListTrainingJobs").code,
      "INTERNAL_SERVER_ERROR");
  });
});
