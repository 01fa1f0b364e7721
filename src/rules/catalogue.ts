/** The rule catalogue: built-in rules (spec §8.2) plus custom rules from TRIALGRAPH_RULES_DIR. */
import { classImbalance, confusion } from "./builtin/classification.js";
import {
  checkInputImages, deadRelu, explodingTensor, nlpSequenceRatio, poorWeightInitialization, saturatedActivation, vanishingGradient,
  weightUpdateRatio,
} from "./builtin/deep-learning.js";
import { lossNotDecreasing, overfit, overtraining } from "./builtin/losses.js";
import { allZero, similarAcrossRuns, tensorVariance, unchangedTensor } from "./builtin/tensors.js";
import { featureImportanceOverweight, stalledTrainingRule, treeDepth } from "./builtin/xgboost.js";
import { DEFAULT_STEP_TIMEOUT_MS, loadCustomRules, type CustomRuleLoadError } from "./custom.js";
import { formatDefault } from "./params.js";
import type { RuleDefinition } from "./types.js";

export const BUILTIN_RULES: readonly RuleDefinition[] = [
  lossNotDecreasing,
  overfit,
  overtraining,
  stalledTrainingRule,
  allZero,
  classImbalance,
  confusion,
  similarAcrossRuns,
  unchangedTensor,
  tensorVariance,
  treeDepth,
  featureImportanceOverweight,
  vanishingGradient,
  explodingTensor,
  weightUpdateRatio,
  deadRelu,
  saturatedActivation,
  poorWeightInitialization,
  checkInputImages,
  nlpSequenceRatio,
];

/** As the GraphQL RuleDefinition type shows it. */
export interface RuleDefinitionInfo {
  name: string;
  appliesToXgboost: boolean;
  description: string;
  source: "builtin" | "custom";
  parameters: { name: string; default: string | null; description: string; required: boolean; requiredOneOf: string[] | null }[];
}

export class RuleRegistry {
  private byName = new Map<string, RuleDefinition>();

  constructor(definitions: readonly RuleDefinition[] = BUILTIN_RULES) {
    for (const d of definitions) this.byName.set(d.name.toLowerCase(), d);
  }

  /** Case-insensitive, as the old open-source rule invoker matched names. */
  get(name: string): RuleDefinition | undefined {
    return this.byName.get(name.trim().toLowerCase());
  }

  list(): RuleDefinition[] {
    return [...this.byName.values()];
  }

  info(): RuleDefinitionInfo[] {
    return this.list().map((d) => ({
      name: d.name,
      appliesToXgboost: d.appliesToXgboost,
      description: d.description,
      source: d.source,
      parameters: d.parameters.map((p) => ({
        name: p.name, default: formatDefault(p), description: p.description, required: !!p.required,
        requiredOneOf: d.requiredOneOf?.find((group) => group.includes(p.name))?.slice() ?? null,
      })),
    }));
  }

  /**
   * Built-ins plus the custom rules of `dir` (default TRIALGRAPH_RULES_DIR). Custom rules that fail
   * to load are reported, not fatal.
   */
  static async load(
    dir: string | null | undefined = process.env.TRIALGRAPH_RULES_DIR,
    opts: { timeoutMs?: number; evaluationTimeoutMs?: number; memoryMb?: number } = {},
  ): Promise<{ registry: RuleRegistry; errors: CustomRuleLoadError[] }> {
    if (!dir) return { registry: new RuleRegistry(), errors: [] };
    const { definitions, errors } = await loadCustomRules(dir, {
      timeoutMs: opts.timeoutMs ?? stepTimeoutFromEnv(),
      evaluationTimeoutMs: opts.evaluationTimeoutMs,
      memoryMb: opts.memoryMb,
      reservedNames: BUILTIN_RULES.map((d) => d.name),
    });
    return { registry: new RuleRegistry([...BUILTIN_RULES, ...definitions]), errors };
  }
}

/** TRIALGRAPH_RULE_STEP_TIMEOUT_MS: a custom rule's time budget per call. */
export function stepTimeoutFromEnv(): number {
  const v = Number(process.env.TRIALGRAPH_RULE_STEP_TIMEOUT_MS);
  return Number.isFinite(v) && v > 0 ? v : DEFAULT_STEP_TIMEOUT_MS;
}

export const DEFAULT_REGISTRY = new RuleRegistry();

/** builtinRules: every rule with its parameters and defaults. */
export function builtinRules(registry: RuleRegistry = DEFAULT_REGISTRY): RuleDefinitionInfo[] {
  return registry.info();
}
