export { SageMakerBackend, type SageMakerBackendOptions } from "./backend.js";
export { buildCreateTrainingJobRequest, debugOutputPathFor, type BuiltCreateRequest, type ResolvedRule } from "./request.js";
export { recordFromDescribe, recordFromSummary, mapJobStatus, mapRuleStatus } from "./mapping.js";
export { toTrialgraphError, isDebuggerUnavailable, isNotFound } from "./errors.js";
export {
  xgboostImageUri, debuggerRulesImageUri, customRuleEvaluatorImageUri, normalizeXgboostVersion, XGBOOST_VERSIONS,
  debuggerSupportedRegions,
} from "./images.js";
export { ruleBaseConfigs, builtinRuleNames, type RuleBaseConfig, type DefaultCollection } from "./rule-configs.js";
export { nameFromBase, sagemakerTimestamp, isValidJobName, pythonStr } from "./names.js";
