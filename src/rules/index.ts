/** The rule engine's public surface. */
export * from "./types.js";
export { parseParameters, formatDefault, ENGINE_PARAMETERS, type RawParameterValue } from "./params.js";
export { parseActionJson, postWebhook, type WebhookOptions, type WebhookOutcome } from "./actions.js";
export { BUILTIN_RULES, DEFAULT_REGISTRY, RuleRegistry, builtinRules, stepTimeoutFromEnv, type RuleDefinitionInfo } from "./catalogue.js";
export { loadCustomRules, customRuleWorkers, DEFAULT_STEP_TIMEOUT_MS, type CustomRuleLoadError } from "./custom.js";
export {
  RuleSession, RuleWatch, evaluateRules, configureRule, validateRuleSpecs,
  type ConfiguredRule, type RuleEvaluationEvent, type RuleEvaluationResult, type RuleSessionOptions, type StopTrainingRequest, type ActionOutcome,
} from "./engine.js";
