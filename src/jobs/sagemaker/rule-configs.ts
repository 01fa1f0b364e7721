/**
 * The rulesconfig base configs (awslabs/sagemaker-debugger-rulesconfig 1.0.2, ruleConfigs.json) as
 * the SageMaker Python SDK sends them: each built-in rule's `rule_to_invoke` and the collections the
 * rule needs saved. Parameter defaults of the rules are owned by src/rules (the rule engine); this file
 * only knows what SageMaker needs in the CreateTrainingJob request. Spec: smdebug-format.md §8.2.
 */

export type RuleGroup = "UNIVERSAL" | "XGBOOST" | "DEEP_LEARNING" | "DEEP_LEARNING_APPLICATION" | "REPORT";

export interface DefaultCollection {
  name: string;
  /** Strings, exactly as rulesconfig ships them. */
  parameters: Readonly<Record<string, string>>;
}

export interface RuleBaseConfig {
  /** Also the default RuleConfigurationName and the `rule_to_invoke` parameter. */
  name: string;
  group: RuleGroup;
  /** True for rules rulesconfig offers for XGBoost (universal, XGBoost-only and the XGBoost report). */
  appliesToXgboost: boolean;
  defaultCollections: readonly DefaultCollection[];
}

const every500 = { save_interval: "500" } as const;

const base = (
  name: string, group: RuleGroup, defaultCollections: DefaultCollection[] = [],
): RuleBaseConfig => ({
  name, group, defaultCollections,
  appliesToXgboost: group === "UNIVERSAL" || group === "XGBOOST" || group === "REPORT",
});

const CONFIGS: readonly RuleBaseConfig[] = [
  base("AllZero", "UNIVERSAL"),
  base("ClassImbalance", "UNIVERSAL"),
  base("Confusion", "UNIVERSAL"),
  base("LossNotDecreasing", "UNIVERSAL", [{ name: "losses", parameters: every500 }]),
  base("Overfit", "UNIVERSAL"),
  base("Overtraining", "UNIVERSAL"),
  base("SimilarAcrossRuns", "UNIVERSAL"),
  base("StalledTrainingRule", "UNIVERSAL"),
  base("UnchangedTensor", "UNIVERSAL"),
  base("FeatureImportanceOverweight", "XGBOOST", [{ name: "feature_importance", parameters: every500 }]),
  base("TreeDepth", "XGBOOST"),
  base("CreateXgboostReport", "REPORT", [
    { name: "metrics", parameters: { save_interval: "5" } },
    { name: "feature_importance", parameters: { save_interval: "5" } },
    { name: "hyperparameters", parameters: { save_steps: "0" } },
    { name: "predictions", parameters: { save_interval: "5" } },
    { name: "labels", parameters: { save_interval: "5" } },
  ]),
  base("DeadRelu", "DEEP_LEARNING", [
    { name: "relu_output", parameters: { include_regex: ".*relu_output", save_interval: "500" } },
  ]),
  base("ExplodingTensor", "DEEP_LEARNING"),
  base("PoorWeightInitialization", "DEEP_LEARNING", [
    { name: "relu_input", parameters: { include_regex: ".*relu_input", save_interval: "500" } },
  ]),
  base("SaturatedActivation", "DEEP_LEARNING"),
  base("TensorVariance", "DEEP_LEARNING"),
  base("VanishingGradient", "DEEP_LEARNING", [{ name: "gradients", parameters: every500 }]),
  base("WeightUpdateRatio", "DEEP_LEARNING", [{ name: "weights", parameters: every500 }]),
  base("CheckInputImages", "DEEP_LEARNING_APPLICATION", [
    { name: "input_image", parameters: { include_regex: ".*hybridsequential0_input_0", save_interval: "500" } },
  ]),
  base("NLPSequenceRatio", "DEEP_LEARNING_APPLICATION", [
    { name: "input_sequence", parameters: { include_regex: ".*embedding0_input_0", save_interval: "500" } },
  ]),
];

/** Built-in Debugger rules SageMaker can run, by name. */
export const ruleBaseConfigs: ReadonlyMap<string, RuleBaseConfig> = new Map(CONFIGS.map((c) => [c.name, c]));

export const builtinRuleNames = (): string[] => [...ruleBaseConfigs.keys()].sort();
