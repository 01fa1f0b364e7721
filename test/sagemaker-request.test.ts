/**
 * startTrainingJob on SAGEMAKER: the CreateTrainingJob request as the real SDK client puts it on the
 * wire (checked at a local SageMaker-protocol endpoint), and validation before any AWS call.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { TrialgraphError } from "../src/errors.js";
import { SageMakerBackend, type SageMakerBackendOptions } from "../src/jobs/sagemaker/backend.js";
import {
  customRuleEvaluatorImageUri, debuggerRulesImageUri, normalizeXgboostVersion, xgboostImageUri,
} from "../src/jobs/sagemaker/images.js";
import { baseNameFromImage, isValidJobName, nameFromBase, pythonStr, sagemakerTimestamp } from "../src/jobs/sagemaker/names.js";
import type { RuleSpec, StartTrainingJobSpec } from "../src/jobs/types.js";
import { startSageMakerEndpoint, type SageMakerEndpoint } from "./support/sagemaker-endpoint.js";

const ROLE = "arn:aws:iam::111122223333:role/service-role/AmazonSageMaker-ExecutionRole-lab";
const FIXED_NOW = new Date(Date.UTC(2026, 7, 21, 10, 15, 30, 123));

let sm: SageMakerEndpoint;
const backends: SageMakerBackend[] = [];
/** One second later on every call, so generated names never clash (the first is FIXED_NOW). */
let ticks = 0;
const tickingClock = () => new Date(FIXED_NOW.getTime() + 1000 * ticks++);

function backendFor(overrides: Partial<SageMakerBackendOptions> = {}): SageMakerBackend {
  const backend = new SageMakerBackend({
    region: "us-east-1",
    endpoint: sm.url,
    credentials: sm.credentials,
    maxAttempts: 2,
    now: tickingClock,
    ...overrides,
  });
  backends.push(backend);
  return backend;
}

/** The lab's estimator: XGBoost on abalone with a debugger hook and LossNotDecreasing. */
function labSpec(overrides: Partial<StartTrainingJobSpec> = {}): StartTrainingJobSpec {
  return {
    baseJobName: "abalone-xgb-debugger",
    algorithm: { builtin: "xgboost", version: "1.7-1" },
    hyperparameters: {
      max_depth: 5, eta: 0.2, gamma: 4, min_child_weight: 6, subsample: 0.7,
      objective: "reg:squarederror", num_round: 51,
    },
    inputs: [
      { name: "train", uri: "s3://lab-bucket/abalone/train/", contentType: "libsvm" },
      { name: "validation", uri: "s3://lab-bucket/abalone/validation/", contentType: "libsvm" },
    ],
    outputPath: "s3://lab-bucket/abalone/output",
    instanceType: "ml.m5.xlarge",
    roleArn: ROLE,
    debugHookConfig: {
      s3OutputPath: "s3://lab-bucket/abalone/debug",
      collectionConfigs: [
        { name: "metrics", parameters: { save_interval: "5" } },
        { name: "feature_importance", parameters: { save_interval: "5" } },
        { name: "average_shap", parameters: { save_interval: "5" } },
      ],
    },
    rules: [{ builtin: "LossNotDecreasing", parameters: { collection_names: "metrics", num_steps: 10 } }],
    ...overrides,
  };
}

function lastCreateBody(): any {
  const creates = sm.requests.filter((r) => r.operation === "CreateTrainingJob");
  assert.ok(creates.length > 0, "no CreateTrainingJob reached the endpoint");
  return creates[creates.length - 1].body;
}

/** Starts the spec and asserts a BAD_USER_INPUT for `field` with no request sent to SageMaker. */
async function rejects(backend: SageMakerBackend, spec: StartTrainingJobSpec, field: string, message?: RegExp) {
  const before = sm.requests.length;
  await assert.rejects(backend.start(spec), (e: unknown) => {
    assert.ok(e instanceof TrialgraphError, `expected a TrialgraphError, got ${e}`);
    assert.equal(e.code, "BAD_USER_INPUT");
    assert.equal(e.details.field, field, `field for: ${e.message}`);
    if (message) assert.match(e.message, message);
    return true;
  });
  assert.equal(sm.requests.length, before, "validation must fail before any request to SageMaker");
}

before(async () => { sm = await startSageMakerEndpoint({ port: 0 }); });
after(async () => {
  for (const b of backends) b.close();
  await sm.close();
});

describe("the lab's CreateTrainingJob request", () => {
  test("matches what the SageMaker Python SDK sends for the same estimator, field by field", async () => {
    const record = await backendFor().start(labSpec());
    const body = lastCreateBody();
    const name = "abalone-xgb-debugger-2026-08-21-10-15-30-123";
    assert.equal(body.TrainingJobName, name);
    assert.deepEqual(body.AlgorithmSpecification, {
      TrainingImage: "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",
      TrainingInputMode: "File",
    });
    assert.equal(body.RoleArn, ROLE);
    assert.deepEqual(body.HyperParameters, {
      max_depth: "5", eta: "0.2", gamma: "4", min_child_weight: "6", subsample: "0.7",
      objective: "reg:squarederror", num_round: "51",
    });
    assert.deepEqual(body.InputDataConfig, [
      {
        ChannelName: "train",
        DataSource: { S3DataSource: { S3DataType: "S3Prefix", S3Uri: "s3://lab-bucket/abalone/train/", S3DataDistributionType: "FullyReplicated" } },
        ContentType: "libsvm",
      },
      {
        ChannelName: "validation",
        DataSource: { S3DataSource: { S3DataType: "S3Prefix", S3Uri: "s3://lab-bucket/abalone/validation/", S3DataDistributionType: "FullyReplicated" } },
        ContentType: "libsvm",
      },
    ]);
    assert.deepEqual(body.OutputDataConfig, { S3OutputPath: "s3://lab-bucket/abalone/output" });
    // The SDK's Estimator defaults: one instance, 30 GB, one day.
    assert.deepEqual(body.ResourceConfig, { InstanceCount: 1, InstanceType: "ml.m5.xlarge", VolumeSizeInGB: 30 });
    assert.deepEqual(body.StoppingCondition, { MaxRuntimeInSeconds: 86400 });
    assert.deepEqual(body.DebugHookConfig, {
      S3OutputPath: "s3://lab-bucket/abalone/debug",
      CollectionConfigurations: [
        { CollectionName: "metrics", CollectionParameters: { save_interval: "5" } },
        { CollectionName: "feature_importance", CollectionParameters: { save_interval: "5" } },
        { CollectionName: "average_shap", CollectionParameters: { save_interval: "5" } },
        // LossNotDecreasing's rulesconfig default, sent as the SDK sends it.
        { CollectionName: "losses", CollectionParameters: { save_interval: "500" } },
      ],
    });
    assert.deepEqual(body.DebugRuleConfigurations, [{
      RuleConfigurationName: "LossNotDecreasing",
      RuleEvaluatorImage: "503895931360.dkr.ecr.us-east-1.amazonaws.com/sagemaker-debugger-rules:latest",
      RuleParameters: { rule_to_invoke: "LossNotDecreasing", collection_names: "metrics", num_steps: "10" },
    }]);
    assert.deepEqual(Object.keys(body).sort(), [
      "AlgorithmSpecification", "DebugHookConfig", "DebugRuleConfigurations", "HyperParameters", "InputDataConfig",
      "OutputDataConfig", "ResourceConfig", "RoleArn", "StoppingCondition", "TrainingJobName",
    ]);

    assert.equal(record.name, name);
    assert.equal(record.backend, "SAGEMAKER");
    assert.equal(record.status, "IN_PROGRESS");
    assert.equal(record.arn, `arn:aws:sagemaker:us-east-1:123456789012:training-job/${name}`);
    assert.equal(record.debugOutputPath, `s3://lab-bucket/abalone/debug/${name}/debug-output`);
    assert.deepEqual(record.hyperparameters, body.HyperParameters);
    assert.deepEqual(record.ruleSummaries.map((r) => [r.ruleConfigurationName, r.status, r.evaluator]),
      [["LossNotDecreasing", "IN_PROGRESS", "SAGEMAKER"]]);
    assert.equal(record.progress, null);
  });

  test("XGBoost 0.90-2 uses the -cpu-py3 tag; the request went over AWS JSON 1.1 with a SigV4 signature", async () => {
    await backendFor().start(labSpec({ algorithm: { builtin: "xgboost", version: "0.90-2" } }));
    assert.equal(lastCreateBody().AlgorithmSpecification.TrainingImage,
      "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:0.90-2-cpu-py3");
    const request = sm.requests[sm.requests.length - 1];
    assert.equal(request.headers["x-amz-target"], "SageMaker.CreateTrainingJob");
    assert.equal(request.headers["content-type"], "application/x-amz-json-1.1");
    assert.match(String(request.headers.authorization), /^AWS4-HMAC-SHA256 Credential=AKIDTESTENDPOINT\/\d{8}\/us-east-1\/sagemaker\/aws4_request/);
  });

  test("a hook collection identical to a rule default is sent once; the user's own config of it wins", async () => {
    const hook = labSpec().debugHookConfig!;
    await backendFor().start(labSpec({
      debugHookConfig: { ...hook, collectionConfigs: [...hook.collectionConfigs!, { name: "losses", parameters: { save_interval: "500" } }] },
    }));
    const collections = lastCreateBody().DebugHookConfig.CollectionConfigurations;
    assert.deepEqual(collections.filter((c: any) => c.CollectionName === "losses"),
      [{ CollectionName: "losses", CollectionParameters: { save_interval: "500" } }]);
    assert.equal(collections.length, 4);

    await backendFor().start(labSpec({
      debugHookConfig: { ...hook, collectionConfigs: [{ name: "losses", parameters: { save_interval: 5 } }] },
    }));
    assert.deepEqual(lastCreateBody().DebugHookConfig.CollectionConfigurations,
      [{ CollectionName: "losses", CollectionParameters: { save_interval: "5" } }]);
  });

  test("several rules: default collections merged by name, each rule configured as the SDK does", async () => {
    await backendFor().start(labSpec({
      debugHookConfig: { s3OutputPath: "s3://lab-bucket/abalone/debug" },
      rules: [
        { builtin: "LossNotDecreasing" },
        { builtin: "FeatureImportanceOverweight", parameters: { threshold: 0.5, nfeatures: 2 } },
        { builtin: "CreateXgboostReport" },
        { builtin: "Overtraining", name: "overtraining-strict", parameters: { patience_train: 3 } },
      ],
    }));
    const body = lastCreateBody();
    assert.deepEqual(body.DebugHookConfig.CollectionConfigurations, [
      { CollectionName: "losses", CollectionParameters: { save_interval: "500" } },
      // First requester wins on a clash: FeatureImportanceOverweight (500) before CreateXgboostReport (5).
      { CollectionName: "feature_importance", CollectionParameters: { save_interval: "500" } },
      { CollectionName: "metrics", CollectionParameters: { save_interval: "5" } },
      { CollectionName: "hyperparameters", CollectionParameters: { save_steps: "0" } },
      { CollectionName: "predictions", CollectionParameters: { save_interval: "5" } },
      { CollectionName: "labels", CollectionParameters: { save_interval: "5" } },
    ]);
    const image = "503895931360.dkr.ecr.us-east-1.amazonaws.com/sagemaker-debugger-rules:latest";
    assert.deepEqual(body.DebugRuleConfigurations, [
      { RuleConfigurationName: "LossNotDecreasing", RuleEvaluatorImage: image, RuleParameters: { rule_to_invoke: "LossNotDecreasing" } },
      {
        RuleConfigurationName: "FeatureImportanceOverweight", RuleEvaluatorImage: image,
        RuleParameters: { rule_to_invoke: "FeatureImportanceOverweight", threshold: "0.5", nfeatures: "2" },
      },
      { RuleConfigurationName: "CreateXgboostReport", RuleEvaluatorImage: image, RuleParameters: { rule_to_invoke: "CreateXgboostReport" } },
      {
        RuleConfigurationName: "overtraining-strict", RuleEvaluatorImage: image,
        RuleParameters: { rule_to_invoke: "Overtraining", patience_train: "3" },
      },
    ]);
    for (const rule of body.DebugRuleConfigurations) {
      assert.equal(rule.InstanceType, undefined);
      assert.equal(rule.VolumeSizeInGB, undefined);
    }
  });

  test("rules with evaluator SERVICE are not sent, but their collections are saved at a useful XGBoost interval", async () => {
    const record = await backendFor().start(labSpec({
      debugHookConfig: { s3OutputPath: "s3://lab-bucket/abalone/debug" },
      rules: [
        { builtin: "LossNotDecreasing", evaluator: "SERVICE" },
        { builtin: "FeatureImportanceOverweight", evaluator: "SERVICE" },
      ],
    }));
    const body = lastCreateBody();
    assert.equal(body.DebugRuleConfigurations, undefined);
    assert.deepEqual(body.DebugHookConfig.CollectionConfigurations, [
      { CollectionName: "losses", CollectionParameters: { save_interval: "10" } },
      { CollectionName: "feature_importance", CollectionParameters: { save_interval: "10" } },
    ]);
    assert.deepEqual(record.ruleSummaries, [], "SERVICE rule summaries come from the service's engine, not SageMaker");
    assert.equal(record.debugOutputPath, `s3://lab-bucket/abalone/debug/${record.name}/debug-output`);

    // The hook's own save_interval is the interval for SERVICE rules' collections; SAGEMAKER rules keep 500.
    await backendFor().start(labSpec({
      debugHookConfig: { s3OutputPath: "s3://lab-bucket/abalone/debug", hookParameters: { save_interval: 2 } },
      rules: [{ builtin: "FeatureImportanceOverweight", evaluator: "SERVICE" }, { builtin: "LossNotDecreasing" }],
    }));
    const mixed = lastCreateBody();
    assert.deepEqual(mixed.DebugHookConfig.HookParameters, { save_interval: "2" });
    assert.deepEqual(mixed.DebugHookConfig.CollectionConfigurations, [
      { CollectionName: "feature_importance", CollectionParameters: { save_interval: "2" } },
      { CollectionName: "losses", CollectionParameters: { save_interval: "500" } },
    ]);
    assert.deepEqual(mixed.DebugRuleConfigurations.map((r: any) => r.RuleConfigurationName), ["LossNotDecreasing"]);
  });

  test("built-in names match case-insensitively; SERVICE rules unknown to rulesconfig pass to the engine", async () => {
    const record = await backendFor().start(labSpec({
      debugHookConfig: { s3OutputPath: "s3://lab-bucket/abalone/debug" },
      rules: [{ builtin: "lossnotdecreasing" }, { builtin: "MyTeamsRule", evaluator: "SERVICE" }],
    }));
    const body = lastCreateBody();
    assert.deepEqual(body.DebugRuleConfigurations.map((r: any) => [r.RuleConfigurationName, r.RuleParameters.rule_to_invoke]),
      [["LossNotDecreasing", "LossNotDecreasing"]]);
    assert.deepEqual(body.DebugHookConfig.CollectionConfigurations,
      [{ CollectionName: "losses", CollectionParameters: { save_interval: "500" } }]);
    assert.deepEqual(record.ruleSummaries.map((r) => r.ruleConfigurationName), ["LossNotDecreasing"]);
  });

  test("a custom rule carries its image, source, instance type and volume", async () => {
    await backendFor().start(labSpec({
      rules: [{
        name: "CustomGradientRule",
        image: "759209512951.dkr.ecr.us-west-2.amazonaws.com/sagemaker-debugger-rule-evaluator:latest",
        ruleSourceS3Uri: "s3://lab-bucket/rules/my_rule.py",
        instanceType: "ml.c4.xlarge",
        volumeSizeInGB: 400,
        parameters: { rule_to_invoke: "MyRule", threshold: 20.0 },
      }],
    }));
    const body = lastCreateBody();
    assert.deepEqual(body.DebugRuleConfigurations, [{
      RuleConfigurationName: "CustomGradientRule",
      RuleEvaluatorImage: "759209512951.dkr.ecr.us-west-2.amazonaws.com/sagemaker-debugger-rule-evaluator:latest",
      InstanceType: "ml.c4.xlarge",
      VolumeSizeInGB: 400,
      RuleParameters: { source_s3_uri: "s3://lab-bucket/rules/my_rule.py", rule_to_invoke: "MyRule", threshold: "20" },
    }]);
    // A custom rule brings no default collections: only the user's three.
    assert.equal(body.DebugHookConfig.CollectionConfigurations.length, 3);
  });

  test("SimilarAcrossRuns takes other_trials as the SDK's other_trial_<i> parameters", async () => {
    await backendFor().start(labSpec({
      rules: [{ builtin: "SimilarAcrossRuns", parameters: { other_trials: "s3://b/run-a/debug-output, s3://b/run-b/debug-output" } }],
    }));
    assert.deepEqual(lastCreateBody().DebugRuleConfigurations[0].RuleParameters, {
      other_trial_0: "s3://b/run-a/debug-output", other_trial_1: "s3://b/run-b/debug-output", rule_to_invoke: "SimilarAcrossRuns",
    });
  });

  test("defaults: role and output path from the backend options, hook path from the output path, SDK-style name", async () => {
    const backend = backendFor({ roleArn: ROLE, outputPath: "s3://sagemaker-us-east-1-111122223333/", now: () => FIXED_NOW });
    const record = await backend.start(labSpec({
      baseJobName: null, roleArn: null, outputPath: null, instanceCount: 2, volumeSizeInGB: 50, maxRuntimeSeconds: 3600,
      debugHookConfig: null,
    }));
    const body = lastCreateBody();
    assert.equal(body.RoleArn, ROLE);
    assert.deepEqual(body.OutputDataConfig, { S3OutputPath: "s3://sagemaker-us-east-1-111122223333/" });
    assert.deepEqual(body.DebugHookConfig, {
      S3OutputPath: "s3://sagemaker-us-east-1-111122223333/",
      CollectionConfigurations: [{ CollectionName: "losses", CollectionParameters: { save_interval: "500" } }],
    });
    assert.deepEqual(body.ResourceConfig, { InstanceCount: 2, InstanceType: "ml.m5.xlarge", VolumeSizeInGB: 50 });
    assert.deepEqual(body.StoppingCondition, { MaxRuntimeInSeconds: 3600 });
    // The SDK's base name for an image is its repository name.
    assert.equal(body.TrainingJobName, "sagemaker-xgboost-2026-08-21-10-15-30-123");
    assert.equal(record.debugOutputPath,
      "s3://sagemaker-us-east-1-111122223333/sagemaker-xgboost-2026-08-21-10-15-30-123/debug-output");
  });

  test("without a hook config or rules no DebugHookConfig is sent; an exact name is used as given", async () => {
    const record = await backendFor().start(labSpec({ name: "plain-xgb-job", debugHookConfig: null, rules: null }));
    const body = lastCreateBody();
    assert.equal(body.TrainingJobName, "plain-xgb-job");
    assert.equal(body.DebugHookConfig, undefined);
    assert.equal(body.DebugRuleConfigurations, undefined);
    assert.equal(record.debugOutputPath, null);
  });

  test("tags from the backend options are put on every job", async () => {
    await backendFor({ tags: { "created-by": "trialgraph" } }).start(labSpec({ name: "tagged-job" }));
    assert.deepEqual(lastCreateBody().Tags, [{ Key: "created-by", Value: "trialgraph" }]);
  });
});

describe("validation before calling AWS (BAD_USER_INPUT with the field at fault)", () => {
  test("job names", async () => {
    const b = backendFor();
    await rejects(b, labSpec({ name: "under_score" }), "name");
    await rejects(b, labSpec({ name: "-leading" }), "name");
    await rejects(b, labSpec({ name: "a".repeat(64) }), "name");
    await rejects(b, labSpec({ baseJobName: "bad base" }), "baseJobName");
    await rejects(b, labSpec({ baseJobName: "trailing-" }), "baseJobName");
  });

  test("rules: more than 20 for SageMaker, unknown built-ins, duplicates, misplaced or reserved parameters", async () => {
    const b = backendFor();
    const many: RuleSpec[] = Array.from({ length: 21 }, (_, i) => ({ builtin: "LossNotDecreasing", name: `loss-${i}` }));
    await rejects(b, labSpec({ rules: many }), "rules", /at most 20/);
    await rejects(b, labSpec({ rules: [{ builtin: "LossNotDecreasing" }, { builtin: "LossIsSad" }] }), "rules[1].builtin", /LossIsSad/);
    await rejects(b, labSpec({ rules: [{ builtin: "LossNotDecreasing" }, { builtin: "LossNotDecreasing" }] }), "rules[1].name");
    await rejects(b, labSpec({ rules: [{ builtin: "LossNotDecreasing", instanceType: "ml.m5.xlarge" }] }), "rules[0].instanceType");
    await rejects(b, labSpec({ rules: [{ builtin: "LossNotDecreasing", parameters: { rule_to_invoke: "Overfit" } }] }),
      "rules[0].parameters.rule_to_invoke");
    await rejects(b, labSpec({ rules: [{ builtin: "LossNotDecreasing", parameters: { base_trial: "s3://x/y" } }] }),
      "rules[0].parameters.base_trial");
    await rejects(b, labSpec({ rules: [{ builtin: "SimilarAcrossRuns" }] }), "rules[0].parameters.other_trials");
    await rejects(b, labSpec({ rules: [{ evaluator: "SERVICE" }] }), "rules[0].name");
    // 21 rules are fine when SageMaker evaluates at most 20 of them.
    const mixed: RuleSpec[] = [...many.slice(0, 20), { builtin: "Overfit", evaluator: "SERVICE" }];
    await b.start(labSpec({ name: "twenty-one-rules", rules: mixed }));
    assert.equal(lastCreateBody().DebugRuleConfigurations.length, 20);
  });

  test("custom rules need image, rule source, instance type, volume and rule_to_invoke", async () => {
    const b = backendFor();
    const custom: RuleSpec = {
      name: "Custom", image: "x.dkr.ecr.us-east-1.amazonaws.com/eval:latest", ruleSourceS3Uri: "s3://b/r.py",
      instanceType: "ml.c4.xlarge", volumeSizeInGB: 30, parameters: { rule_to_invoke: "R" },
    };
    await rejects(b, labSpec({ rules: [{ ...custom, image: null }] }), "rules[0].image");
    await rejects(b, labSpec({ rules: [{ ...custom, ruleSourceS3Uri: null }] }), "rules[0].ruleSourceS3Uri");
    await rejects(b, labSpec({ rules: [{ ...custom, instanceType: null }] }), "rules[0].instanceType");
    await rejects(b, labSpec({ rules: [{ ...custom, volumeSizeInGB: null }] }), "rules[0].volumeSizeInGB");
    await rejects(b, labSpec({ rules: [{ ...custom, parameters: {} }] }), "rules[0].parameters.rule_to_invoke");
    await rejects(b, labSpec({ rules: [{ ...custom, name: null }] }), "rules[0].name");
  });

  test("regions without Debugger images refuse rules and hook configs", async () => {
    const b = backendFor({ region: "ap-southeast-3" });
    await rejects(b, labSpec(), "rules", /ap-southeast-3/);
    await rejects(b, labSpec({ rules: null }), "debugHookConfig", /Debugger/);
    await b.start(labSpec({ name: "no-debugger-job", rules: null, debugHookConfig: null }));
    assert.equal(lastCreateBody().AlgorithmSpecification.TrainingImage,
      "951798379941.dkr.ecr.ap-southeast-3.amazonaws.com/sagemaker-xgboost:1.7-1");
    await rejects(backendFor({ region: "xx-nowhere-1" }), labSpec(), "algorithm", /xx-nowhere-1/);
  });

  test("role and output path are required when no default is configured", async () => {
    const b = backendFor();
    await rejects(b, labSpec({ roleArn: null }), "roleArn", /TRIALGRAPH_SAGEMAKER_ROLE_ARN/);
    await rejects(b, labSpec({ roleArn: "arn:aws:iam::123:role/x" }), "roleArn");
    await rejects(b, labSpec({ outputPath: null }), "outputPath", /TRIALGRAPH_SAGEMAKER_OUTPUT_PATH/);
    await rejects(b, labSpec({ outputPath: "/local/path" }), "outputPath");
  });

  test("algorithm, hyperparameters, channels and resources", async () => {
    const b = backendFor();
    await rejects(b, labSpec({ algorithm: { builtin: "xgboost", version: "9.9-9" } }), "algorithm.version");
    await rejects(b, labSpec({ algorithm: { builtin: "xgboost" } }), "algorithm.version");
    await rejects(b, labSpec({ algorithm: { builtin: "lightgbm", version: "1" } }), "algorithm.builtin");
    await rejects(b, labSpec({ algorithm: {} }), "algorithm");
    await rejects(b, labSpec({ hyperparameters: { eta: 0.2 } }), "hyperparameters.num_round");
    await rejects(b, labSpec({ hyperparameters: { num_round: 5, bad: { nested: 1 } as never } }), "hyperparameters.bad");
    await rejects(b, labSpec({ inputs: [] }), "inputs");
    await rejects(b, labSpec({ inputs: [{ name: "train", uri: "/tmp/train" }] }), "inputs[0].uri");
    await rejects(b, labSpec({ inputs: [{ name: "tr ain", uri: "s3://b/t" }] }), "inputs[0].name");
    await rejects(b, labSpec({ inputs: [{ name: "train", uri: "s3://b/t" }, { name: "train", uri: "s3://b/u" }] }), "inputs[1].name");
    await rejects(b, labSpec({ instanceType: null }), "instanceType");
    await rejects(b, labSpec({ instanceCount: 0 }), "instanceCount");
    await rejects(b, labSpec({ volumeSizeInGB: 2.5 }), "volumeSizeInGB");
    await rejects(b, labSpec({ maxRuntimeSeconds: -1 }), "maxRuntimeSeconds");
    const many = Array.from({ length: 21 }, (_, i) => ({ name: `c${i}` }));
    await rejects(b, labSpec({ debugHookConfig: { collectionConfigs: many } }), "debugHookConfig.collectionConfigs");
    await rejects(b, labSpec({ debugHookConfig: { collectionConfigs: [{ name: "metrics" }, { name: "metrics" }] } }),
      "debugHookConfig.collectionConfigs[1].name");
  });
});

describe("image URIs, names and strings", () => {
  test("XGBoost image tags by version and partition", () => {
    assert.equal(xgboostImageUri("us-east-1", "1.0-1"), "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.0-1-cpu-py3");
    assert.equal(xgboostImageUri("us-east-1", "0.90-1"), "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:0.90-1-cpu-py3");
    assert.equal(xgboostImageUri("us-east-1", "1.2-1"), "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.2-1");
    assert.equal(xgboostImageUri("eu-west-1", "0.90-2-cpu-py3"), "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:0.90-2-cpu-py3");
    assert.equal(xgboostImageUri("cn-north-1", "1.5-1"), "450853457545.dkr.ecr.cn-north-1.amazonaws.com.cn/sagemaker-xgboost:1.5-1");
    assert.equal(xgboostImageUri("us-east-1", "1.1-1"), null);
    assert.equal(normalizeXgboostVersion("1.7-1-cpu-py3"), "1.7-1");
    assert.equal(debuggerRulesImageUri("cn-northwest-1"), "658757709296.dkr.ecr.cn-northwest-1.amazonaws.com.cn/sagemaker-debugger-rules:latest");
    assert.equal(debuggerRulesImageUri("us-west-2"), "895741380848.dkr.ecr.us-west-2.amazonaws.com/sagemaker-debugger-rules:latest");
    assert.equal(debuggerRulesImageUri("me-central-1"), null);
    assert.equal(customRuleEvaluatorImageUri("us-east-1"), "864354269164.dkr.ecr.us-east-1.amazonaws.com/sagemaker-debugger-rule-evaluator:latest");
  });

  test("generated names fit 63 characters and SageMaker's pattern", () => {
    assert.equal(sagemakerTimestamp(FIXED_NOW), "2026-08-21-10-15-30-123");
    const long = nameFromBase("x".repeat(80), FIXED_NOW);
    assert.equal(long.length, 63);
    assert.equal(long, `${"x".repeat(39)}-2026-08-21-10-15-30-123`);
    assert.ok(isValidJobName(long));
    // A cut that ends on a hyphen still yields a valid name (repeated hyphens are allowed).
    const cutAtHyphen = nameFromBase(`${"a".repeat(38)}-b`, FIXED_NOW);
    assert.ok(cutAtHyphen.includes("--") && isValidJobName(cutAtHyphen), cutAtHyphen);
    assert.equal(baseNameFromImage("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"), "sagemaker-xgboost");
    assert.equal(baseNameFromImage("acct.dkr.ecr.r.amazonaws.com/team/my_algo@sha256:abc"), "my-algo");
  });

  test("values are stringified like Python's str()", () => {
    assert.equal(pythonStr(0.2), "0.2");
    assert.equal(pythonStr(51), "51");
    assert.equal(pythonStr(1e-7), "1e-07");
    assert.equal(pythonStr(0.00001), "1e-05");
    assert.equal(pythonStr(0.0001), "0.0001");
    assert.equal(pythonStr(-2.5e-10), "-2.5e-10");
    assert.equal(pythonStr(123456789.25), "123456789.25");
    assert.equal(pythonStr(1e22), "1e+22");
    assert.equal(pythonStr(2 ** 53 - 1), "9007199254740991");
    assert.equal(pythonStr(true), "True");
    assert.equal(pythonStr(false), "False");
    assert.equal(pythonStr("reg:squarederror"), "reg:squarederror");
  });
});
