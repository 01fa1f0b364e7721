/**
 * Builds the CreateTrainingJob request the SageMaker Python SDK (v2) would send for the same
 * estimator, validating everything SageMaker would reject before any call to AWS.
 * Spec: /work/shared/spec/sagemaker-api.md §1 and §3.
 */
import type {
  CollectionConfiguration,
  CreateTrainingJobRequest,
  DebugHookConfig,
  DebugRuleConfiguration,
  TrainingInstanceType,
  ProcessingInstanceType,
} from "@aws-sdk/client-sagemaker";
import { badInput } from "../../errors.js";
import type { ParameterValue, RuleEvaluator, RuleSpec, StartTrainingJobSpec } from "../types.js";
import { debuggerRulesImageUri, normalizeXgboostVersion, xgboostImageUri, XGBOOST_VERSIONS } from "./images.js";
import { baseNameFromImage, isValidJobName, nameFromBase, pythonStr } from "./names.js";
import { ruleBaseConfigs } from "./rule-configs.js";

export interface RequestContext {
  region: string;
  /** Defaults when the spec has none (TRIALGRAPH_SAGEMAKER_ROLE_ARN / _OUTPUT_PATH). */
  roleArn?: string | null;
  outputPath?: string | null;
  now: Date;
  tags?: Record<string, string> | null;
}

/** A rule after validation: who evaluates it and under which RuleConfigurationName. */
export interface ResolvedRule {
  name: string;
  evaluator: RuleEvaluator;
  builtin: string | null;
  spec: RuleSpec;
}

export interface BuiltCreateRequest {
  request: CreateTrainingJobRequest;
  rules: ResolvedRule[];
  /** `<DebugHookConfig.S3OutputPath>/<job>/debug-output`, or null without a hook. */
  debugOutputPath: string | null;
}

// Service-model limits (botocore sagemaker/2017-07-24).
const MAX_RULES = 20;
const MAX_COLLECTIONS = 20;
const MAX_HOOK_PARAMETERS = 20;
const MAX_COLLECTION_PARAMETERS = 20;
const MAX_RULE_PARAMETERS = 100;
const MAX_HYPERPARAMETERS = 100;
const MAX_CHANNELS = 20;
/** The SDK's defaults for an Estimator. */
export const DEFAULT_INSTANCE_COUNT = 1;
export const DEFAULT_VOLUME_SIZE_GB = 30;
export const DEFAULT_MAX_RUNTIME_SECONDS = 24 * 60 * 60;
/** The smdebug XGBoost hook's own save_interval, used for SERVICE rules' default collections. */
const XGBOOST_HOOK_SAVE_INTERVAL = "10";

const S3_URI = /^(https|s3):\/\/([^/]+)\/?(.*)$/;
const ROLE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\/?[a-zA-Z_0-9+=,.@\-_/]+$/;
const CHANNEL_NAME = /^[A-Za-z0-9.\-_]+$/;
const INSTANCE_TYPE = /^ml\.[a-z0-9-]+\.[a-z0-9]+$/;
/** Parameters SageMaker or the SDK set themselves on built-in rules. */
const RESERVED_BUILTIN_RULE_PARAMETERS = new Set(["rule_to_invoke", "base_trial"]);

const builtinByLowerName = new Map([...ruleBaseConfigs.keys()].map((name) => [name.toLowerCase(), name]));

/** `<path>/<job>/debug-output`, joined like Python's os.path.join (one slash between parts). */
export function debugOutputPathFor(s3OutputPath: string, jobName: string): string {
  return `${s3OutputPath.replace(/\/+$/, "")}/${jobName}/debug-output`;
}

function stringMap(
  values: Record<string, ParameterValue> | null | undefined,
  field: string,
  limits: { maxEntries: number; maxValue: number; maxKey?: number },
): Record<string, string> {
  if (values == null) return {};
  if (typeof values !== "object" || Array.isArray(values)) throw badInput(`${field} must be an object`, field);
  const entries = Object.entries(values);
  if (entries.length > limits.maxEntries) {
    throw badInput(`${field} has ${entries.length} entries; SageMaker allows at most ${limits.maxEntries}`, field);
  }
  const out: Record<string, string> = {};
  for (const [key, value] of entries) {
    if (key.length < 1 || key.length > (limits.maxKey ?? 256)) {
      throw badInput(`${field} key "${key.slice(0, 40)}" must be 1-${limits.maxKey ?? 256} characters`, field);
    }
    if (typeof value !== "string" && typeof value !== "number" && typeof value !== "boolean") {
      throw badInput(`${field}.${key} must be a string, number or boolean`, `${field}.${key}`);
    }
    if (typeof value === "number" && !Number.isFinite(value)) {
      throw badInput(`${field}.${key} must be a finite number`, `${field}.${key}`);
    }
    const text = pythonStr(value);
    if (text.length > limits.maxValue) {
      throw badInput(`${field}.${key} is longer than ${limits.maxValue} characters`, `${field}.${key}`);
    }
    out[key] = text;
  }
  return out;
}

function requireS3Uri(value: string | null | undefined, field: string, what: string): string {
  if (value == null || value === "") throw badInput(`${what} is required`, field);
  if (value.length > 1024 || !S3_URI.test(value)) {
    throw badInput(`${what} must be an s3:// (or https://) URI of at most 1024 characters, got "${value.slice(0, 80)}"`, field);
  }
  return value;
}

function positiveInt(value: number | null | undefined, fallback: number, field: string): number {
  if (value == null) return fallback;
  if (!Number.isInteger(value) || value < 1) throw badInput(`${field} must be a positive integer`, field);
  return value;
}

function resolveJobName(spec: StartTrainingJobSpec, image: string, now: Date): string {
  if (spec.name != null) {
    if (!isValidJobName(spec.name)) {
      throw badInput(
        `name "${spec.name.slice(0, 80)}" is not a valid training job name: 1-63 letters, digits and hyphens, ` +
        "starting and ending with a letter or digit", "name");
    }
    return spec.name;
  }
  if (spec.baseJobName != null) {
    // The timestamp suffix keeps 39 characters of the base; validate the base the way the name will use it.
    if (!/^[a-zA-Z0-9](-*[a-zA-Z0-9])*$/.test(spec.baseJobName)) {
      throw badInput(
        `baseJobName "${spec.baseJobName.slice(0, 80)}" may only hold letters, digits and hyphens, ` +
        "starting and ending with a letter or digit", "baseJobName");
    }
    return nameFromBase(spec.baseJobName, now);
  }
  return nameFromBase(baseNameFromImage(image), now);
}

function resolveImage(spec: StartTrainingJobSpec, region: string): { image: string; builtinXgboost: boolean } {
  const algorithm = spec.algorithm;
  if (algorithm == null) throw badInput("algorithm is required", "algorithm");
  if (algorithm.image != null && algorithm.builtin != null) {
    throw badInput("give either algorithm.builtin or algorithm.image, not both", "algorithm");
  }
  if (algorithm.image != null) {
    if (algorithm.image.length < 1 || algorithm.image.length > 255) {
      throw badInput("algorithm.image must be 1-255 characters", "algorithm.image");
    }
    return { image: algorithm.image, builtinXgboost: false };
  }
  if (algorithm.builtin == null) throw badInput("algorithm.builtin or algorithm.image is required", "algorithm");
  if (algorithm.builtin.toLowerCase() !== "xgboost") {
    throw badInput(`unknown built-in algorithm "${algorithm.builtin}"; only "xgboost" is supported`, "algorithm.builtin");
  }
  if (algorithm.version == null) {
    throw badInput(`algorithm.version is required for xgboost (one of ${XGBOOST_VERSIONS.join(", ")})`, "algorithm.version");
  }
  if (normalizeXgboostVersion(algorithm.version) == null) {
    throw badInput(
      `unknown SageMaker XGBoost version "${algorithm.version}"; use one of ${XGBOOST_VERSIONS.join(", ")}`,
      "algorithm.version");
  }
  const image = xgboostImageUri(region, algorithm.version);
  if (image == null) throw badInput(`no SageMaker XGBoost image is known for region "${region}"`, "algorithm");
  return { image, builtinXgboost: true };
}

function buildChannels(spec: StartTrainingJobSpec): NonNullable<CreateTrainingJobRequest["InputDataConfig"]> {
  const inputs = spec.inputs;
  if (!Array.isArray(inputs) || inputs.length === 0) throw badInput("inputs needs at least one channel", "inputs");
  if (inputs.length > MAX_CHANNELS) throw badInput(`at most ${MAX_CHANNELS} input channels`, "inputs");
  const seen = new Set<string>();
  return inputs.map((input, i) => {
    const field = `inputs[${i}]`;
    if (typeof input.name !== "string" || input.name.length > 64 || !CHANNEL_NAME.test(input.name)) {
      throw badInput(`${field}.name must be 1-64 characters of letters, digits, ".", "-" or "_"`, `${field}.name`);
    }
    if (seen.has(input.name)) throw badInput(`channel "${input.name}" is given twice`, `${field}.name`);
    seen.add(input.name);
    const uri = requireS3Uri(input.uri, `${field}.uri`, `${field}.uri`);
    if (input.contentType != null && (input.contentType.length < 1 || input.contentType.length > 256)) {
      throw badInput(`${field}.contentType must be 1-256 characters`, `${field}.contentType`);
    }
    return {
      ChannelName: input.name,
      DataSource: { S3DataSource: { S3DataType: "S3Prefix", S3Uri: uri, S3DataDistributionType: "FullyReplicated" } },
      ...(input.contentType != null ? { ContentType: input.contentType } : {}),
    };
  });
}

function resolveRules(spec: StartTrainingJobSpec): ResolvedRule[] {
  const rules = spec.rules ?? [];
  if (!Array.isArray(rules)) throw badInput("rules must be a list", "rules");
  const names = new Set<string>();
  const resolved = rules.map((rule, i): ResolvedRule => {
    const field = `rules[${i}]`;
    const evaluator: RuleEvaluator = rule.evaluator ?? "SAGEMAKER";
    if (evaluator !== "SAGEMAKER" && evaluator !== "SERVICE") {
      throw badInput(`${field}.evaluator must be SAGEMAKER or SERVICE`, `${field}.evaluator`);
    }
    // Case-insensitive like the rule engine's registry; SageMaker needs the canonical class name.
    const builtin = rule.builtin != null ? builtinByLowerName.get(rule.builtin.trim().toLowerCase()) ?? null : null;
    if (rule.builtin != null && builtin == null && evaluator === "SAGEMAKER") {
      throw badInput(`unknown built-in rule "${rule.builtin}"`, `${field}.builtin`);
    }
    // SERVICE rules the rulesconfig does not know (the engine's custom rules) are the engine's to validate;
    // they just bring no default collections.
    const name = rule.name ?? builtin ?? (evaluator === "SERVICE" ? rule.builtin ?? null : null);
    if (name == null) throw badInput("a rule needs a built-in rule name or a name", `${field}.name`);
    if (name.length < 1 || name.length > 256) throw badInput(`${field}.name must be 1-256 characters`, `${field}.name`);
    if (names.has(name)) {
      throw badInput(`two rules are named "${name}"; give each rule a distinct name`, `${field}.name`);
    }
    names.add(name);
    return { name, evaluator, builtin, spec: rule };
  });
  const onSageMaker = resolved.filter((r) => r.evaluator === "SAGEMAKER").length;
  if (onSageMaker > MAX_RULES) {
    throw badInput(`${onSageMaker} rules for SageMaker to evaluate; a training job takes at most ${MAX_RULES}`, "rules");
  }
  return resolved;
}

function builtinRuleConfiguration(rule: ResolvedRule, index: number, rulesImage: string): DebugRuleConfiguration {
  const field = `rules[${index}]`;
  const spec = rule.spec;
  if (spec.instanceType != null || spec.volumeSizeInGB != null) {
    throw badInput("built-in rules run on compute SageMaker picks; instanceType and volumeSizeInGB are for custom rules",
      spec.instanceType != null ? `${field}.instanceType` : `${field}.volumeSizeInGB`);
  }
  if (spec.image != null || spec.ruleSourceS3Uri != null) {
    throw badInput("image and ruleSourceS3Uri are for custom rules, not built-in ones",
      spec.image != null ? `${field}.image` : `${field}.ruleSourceS3Uri`);
  }
  const user = stringMap(spec.parameters, `${field}.parameters`, { maxEntries: MAX_RULE_PARAMETERS, maxValue: 256 });
  // The SDK refuses a user rule_to_invoke on built-ins; one that just repeats the rule's name is harmless.
  if (user.rule_to_invoke === rule.builtin) delete user.rule_to_invoke;
  for (const key of Object.keys(user)) {
    if (RESERVED_BUILTIN_RULE_PARAMETERS.has(key)) {
      throw badInput(`${key} is set by SageMaker for built-in rules`, `${field}.parameters.${key}`);
    }
  }
  // SimilarAcrossRuns takes its other trials as other_trial_<i>, which the SDK builds from a list.
  const otherTrials: Record<string, string> = {};
  if ("other_trials" in user) {
    user.other_trials.split(",").map((s) => s.trim()).filter(Boolean).forEach((path, i) => {
      requireS3Uri(path, `${field}.parameters.other_trials`, `other trial ${i}`);
      otherTrials[`other_trial_${i}`] = path;
    });
    delete user.other_trials;
  }
  if (rule.builtin === "SimilarAcrossRuns" && Object.keys(otherTrials).length === 0 &&
      !Object.keys(user).some((k) => k.startsWith("other_trial_"))) {
    throw badInput("SimilarAcrossRuns needs parameters.other_trials (comma-separated S3 trial paths)",
      `${field}.parameters.other_trials`);
  }
  const parameters = { ...otherTrials, rule_to_invoke: rule.builtin!, ...user };
  if (Object.keys(parameters).length > MAX_RULE_PARAMETERS) {
    throw badInput(`at most ${MAX_RULE_PARAMETERS} rule parameters`, `${field}.parameters`);
  }
  return { RuleConfigurationName: rule.name, RuleEvaluatorImage: rulesImage, RuleParameters: parameters };
}

function customRuleConfiguration(rule: ResolvedRule, index: number): DebugRuleConfiguration {
  const field = `rules[${index}]`;
  const spec = rule.spec;
  if (spec.image == null || spec.image.length < 1 || spec.image.length > 255) {
    throw badInput("a custom rule needs its evaluator image (at most 255 characters)", `${field}.image`);
  }
  const source = requireS3Uri(spec.ruleSourceS3Uri, `${field}.ruleSourceS3Uri`, "a custom rule's ruleSourceS3Uri");
  if (spec.instanceType == null || !INSTANCE_TYPE.test(spec.instanceType)) {
    throw badInput("a custom rule needs an instanceType such as ml.c5.xlarge", `${field}.instanceType`);
  }
  if (spec.volumeSizeInGB == null || !Number.isInteger(spec.volumeSizeInGB) || spec.volumeSizeInGB < 1) {
    throw badInput("a custom rule needs volumeSizeInGB (a positive integer)", `${field}.volumeSizeInGB`);
  }
  const user = stringMap(spec.parameters, `${field}.parameters`, { maxEntries: MAX_RULE_PARAMETERS - 1, maxValue: 256 });
  if (!user.rule_to_invoke) {
    throw badInput("a custom rule needs parameters.rule_to_invoke (the rule class in its source)",
      `${field}.parameters.rule_to_invoke`);
  }
  return {
    RuleConfigurationName: rule.name,
    RuleEvaluatorImage: spec.image,
    InstanceType: spec.instanceType as ProcessingInstanceType,
    VolumeSizeInGB: spec.volumeSizeInGB,
    RuleParameters: { source_s3_uri: source, ...user },
  };
}

/**
 * The hook's CollectionConfigurations: the user's collections first, then each rule's default
 * collections, merged by collection name. A name that appears more than once becomes one entry whose
 * parameters are the union, with earlier keys winning (user over rules, earlier rules over later ones).
 * The SDK de-duplicates on (name, parameters) instead and would send two "losses" entries with different
 * intervals, leaving smdebug to pick one; merging by name keeps the request unambiguous.
 */
function buildCollections(
  spec: StartTrainingJobSpec, rules: ResolvedRule[], hookSaveInterval: string | undefined, builtinXgboost: boolean,
): CollectionConfiguration[] {
  const merged = new Map<string, Record<string, string>>();
  const userConfigs = spec.debugHookConfig?.collectionConfigs ?? [];
  userConfigs.forEach((config, i) => {
    const field = `debugHookConfig.collectionConfigs[${i}]`;
    if (typeof config.name !== "string" || config.name.length < 1 || config.name.length > 256) {
      throw badInput(`${field}.name must be 1-256 characters`, `${field}.name`);
    }
    if (merged.has(config.name)) throw badInput(`collection "${config.name}" is configured twice`, `${field}.name`);
    merged.set(config.name, stringMap(config.parameters, `${field}.parameters`,
      { maxEntries: MAX_COLLECTION_PARAMETERS, maxValue: 256 }));
  });
  for (const rule of rules) {
    if (rule.builtin == null) continue;
    for (const collection of ruleBaseConfigs.get(rule.builtin)!.defaultCollections) {
      let parameters: Record<string, string> = { ...collection.parameters };
      // SERVICE rules on built-in XGBoost: rulesconfig's every-500 default would save only round 0 of a
      // typical job, so use the hook's interval (or smdebug's XGBoost default of 10). SAGEMAKER rules keep
      // the SDK's request byte for byte (save_interval "500").
      if (rule.evaluator === "SERVICE" && builtinXgboost && parameters.save_interval === "500") {
        parameters = { ...parameters, save_interval: hookSaveInterval ?? XGBOOST_HOOK_SAVE_INTERVAL };
      }
      const existing = merged.get(collection.name);
      merged.set(collection.name, existing ? { ...parameters, ...existing } : parameters);
    }
  }
  if (merged.size > MAX_COLLECTIONS) {
    throw badInput(`${merged.size} collections to save (yours plus the rules' defaults); SageMaker allows ${MAX_COLLECTIONS}`,
      "debugHookConfig.collectionConfigs");
  }
  return [...merged].map(([name, parameters]) => {
    if (Object.keys(parameters).length > MAX_COLLECTION_PARAMETERS) {
      throw badInput(`collection "${name}" has more than ${MAX_COLLECTION_PARAMETERS} parameters`,
        "debugHookConfig.collectionConfigs");
    }
    return Object.keys(parameters).length > 0
      ? { CollectionName: name, CollectionParameters: parameters }
      : { CollectionName: name };
  });
}

export function buildCreateTrainingJobRequest(spec: StartTrainingJobSpec, ctx: RequestContext): BuiltCreateRequest {
  if (spec == null || typeof spec !== "object") throw badInput("a training job spec is required", "input");
  const { image, builtinXgboost } = resolveImage(spec, ctx.region);
  const jobName = resolveJobName(spec, image, ctx.now);

  const roleArn = spec.roleArn ?? ctx.roleArn ?? null;
  if (roleArn == null || roleArn === "") {
    throw badInput("roleArn is required (or set TRIALGRAPH_SAGEMAKER_ROLE_ARN)", "roleArn");
  }
  if (roleArn.length < 20 || roleArn.length > 2048 || !ROLE_ARN.test(roleArn)) {
    throw badInput(`roleArn "${roleArn.slice(0, 80)}" is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)`, "roleArn");
  }
  const outputPath = requireS3Uri(spec.outputPath ?? ctx.outputPath ?? null, "outputPath",
    "outputPath (or TRIALGRAPH_SAGEMAKER_OUTPUT_PATH)");

  const hyperParameters = stringMap(spec.hyperparameters, "hyperparameters",
    { maxEntries: MAX_HYPERPARAMETERS, maxValue: 2500 });
  if (builtinXgboost && hyperParameters.num_round == null) {
    throw badInput("SageMaker XGBoost needs hyperparameters.num_round", "hyperparameters.num_round");
  }
  const channels = buildChannels(spec);

  if (spec.instanceType == null || !INSTANCE_TYPE.test(spec.instanceType)) {
    throw badInput("instanceType is required, e.g. ml.m5.xlarge", "instanceType");
  }
  const instanceCount = positiveInt(spec.instanceCount, DEFAULT_INSTANCE_COUNT, "instanceCount");
  const volumeSizeInGB = positiveInt(spec.volumeSizeInGB, DEFAULT_VOLUME_SIZE_GB, "volumeSizeInGB");
  const maxRuntime = positiveInt(spec.maxRuntimeSeconds, DEFAULT_MAX_RUNTIME_SECONDS, "maxRuntimeSeconds");

  const rules = resolveRules(spec);
  const wantsHook = spec.debugHookConfig != null || rules.length > 0;
  const debuggerRegionSupported = debuggerRulesImageUri(ctx.region) != null;
  if (wantsHook && !debuggerRegionSupported) {
    const field = rules.some((r) => r.evaluator === "SAGEMAKER") ? "rules" : spec.debugHookConfig ? "debugHookConfig" : "rules";
    throw badInput(`SageMaker Debugger is not offered in region "${ctx.region}" (no sagemaker-debugger-rules image)`, field);
  }

  let debugHookConfig: DebugHookConfig | undefined;
  let debugOutputPath: string | null = null;
  if (wantsHook) {
    const hookPath = requireS3Uri(spec.debugHookConfig?.s3OutputPath ?? outputPath,
      "debugHookConfig.s3OutputPath", "debugHookConfig.s3OutputPath");
    const hookParameters = stringMap(spec.debugHookConfig?.hookParameters, "debugHookConfig.hookParameters",
      { maxEntries: MAX_HOOK_PARAMETERS, maxValue: 256 });
    const hookSaveInterval = hookParameters["global.save_interval"] ?? hookParameters.save_interval;
    const collections = buildCollections(spec, rules, hookSaveInterval, builtinXgboost);
    debugHookConfig = {
      S3OutputPath: hookPath,
      ...(Object.keys(hookParameters).length > 0 ? { HookParameters: hookParameters } : {}),
      ...(collections.length > 0 ? { CollectionConfigurations: collections } : {}),
    };
    debugOutputPath = debugOutputPathFor(hookPath, jobName);
  }

  const rulesImage = debuggerRulesImageUri(ctx.region);
  const ruleConfigurations: DebugRuleConfiguration[] = [];
  rules.forEach((rule, i) => {
    if (rule.evaluator !== "SAGEMAKER") return; // the service's engine evaluates these; SageMaker never sees them
    ruleConfigurations.push(rule.builtin != null
      ? builtinRuleConfiguration(rule, i, rulesImage!)
      : customRuleConfiguration(rule, i));
  });

  const tags = Object.entries(ctx.tags ?? {}).map(([Key, Value]) => ({ Key, Value }));
  const request: CreateTrainingJobRequest = {
    TrainingJobName: jobName,
    AlgorithmSpecification: { TrainingImage: image, TrainingInputMode: "File" },
    RoleArn: roleArn,
    InputDataConfig: channels,
    OutputDataConfig: { S3OutputPath: outputPath },
    ResourceConfig: {
      InstanceCount: instanceCount,
      InstanceType: spec.instanceType as TrainingInstanceType,
      VolumeSizeInGB: volumeSizeInGB,
    },
    StoppingCondition: { MaxRuntimeInSeconds: maxRuntime },
    ...(spec.hyperparameters != null ? { HyperParameters: hyperParameters } : {}),
    ...(debugHookConfig ? { DebugHookConfig: debugHookConfig } : {}),
    ...(ruleConfigurations.length > 0 ? { DebugRuleConfigurations: ruleConfigurations } : {}),
    ...(tags.length > 0 ? { Tags: tags } : {}),
  };
  return { request, rules, debugOutputPath };
}
