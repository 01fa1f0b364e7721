/**
 * What the graph asks of rules: the built-in catalogue, one-shot evaluation over a trial, and
 * attaching rules to a running job. Implemented over the rule engine in src/rules.
 */
import type {
  RecordPage, RuleEvaluationRecord, RuleEvaluationStatus, RuleFinding, RuleSpec, RuleSummaryRecord, TrainingJobRecord,
} from "./types.js";

export interface RuleParameterInfo {
  name: string;
  default: string | null;
  description: string | null;
  required: boolean;
  /** The group of alternatives this parameter belongs to (at least one must be given), or null. */
  requiredOneOf: string[] | null;
}

export interface RuleDefinitionInfo {
  name: string;
  appliesToXgboost: boolean;
  description: string | null;
  parameters: RuleParameterInfo[];
}

export interface RuleEvaluationResult {
  ruleConfigurationName: string;
  status: RuleEvaluationStatus;
  triggeredSteps: number[];
  evaluatedSteps: number;
  statusDetails: string | null;
  /** The first firings, with the tensors that fired. */
  findings: RuleFinding[];
}

export interface RuleService {
  builtinRules(): RuleDefinitionInfo[];
  /** Runs the rules now over the trial at `path` as it stands. */
  evaluate(path: string, rules: RuleSpec[], opts?: { signal?: AbortSignal }): Promise<RuleEvaluationResult[]>;
  /** Has the engine follow a running job's trial with these rules. */
  attach(jobName: string, rules: RuleSpec[]): Promise<TrainingJobRecord>;
  /** Summaries of the rules the service evaluates, per job (jobs without any are absent). */
  summaries(jobNames: readonly string[]): Promise<Map<string, RuleSummaryRecord[]>>;
  /** One rule's evaluation history, oldest first. */
  evaluations(jobName: string, ruleName: string, page: { first: number; after?: string | null }): Promise<RecordPage<RuleEvaluationRecord>>;
}
