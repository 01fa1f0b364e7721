/**
 * The records the service keeps about jobs and rules, shared by every layer that stores, publishes
 * or serves them (store, events, rules, jobs, graphql). Plain data: no behaviour, no I/O.
 */
import type { Mode } from "../format/tensor.js";

export type Backend = "LOCAL" | "SAGEMAKER";
export type TrainingJobStatus = "IN_PROGRESS" | "COMPLETED" | "FAILED" | "STOPPING" | "STOPPED";
export type RuleEvaluationStatus =
  | "IN_PROGRESS" | "NO_ISSUES_FOUND" | "ISSUES_FOUND" | "ERROR" | "STOPPING" | "STOPPED";
export type RuleEvaluator = "SAGEMAKER" | "SERVICE";

export const TERMINAL_JOB_STATUSES: ReadonlySet<TrainingJobStatus> = new Set(["COMPLETED", "FAILED", "STOPPED"]);
export const TERMINAL_RULE_STATUSES: ReadonlySet<RuleEvaluationStatus> = new Set([
  "NO_ISSUES_FOUND", "ISSUES_FOUND", "ERROR", "STOPPED",
]);

export type ParameterValue = string | number | boolean;

/** How many firings a rule summary keeps (the first ones); later firings only count. */
export const MAX_RULE_FINDINGS = 20;

/** One step at which a rule's condition held, as the engine saw it (no text parsing needed). */
export interface RuleFinding {
  /** Global step. */
  step: number;
  mode: Mode;
  /** The step within `mode` (equals `step` for GLOBAL). */
  modeStep: number;
  /** The tensors that met the condition (empty for rules about the run, e.g. a stall). */
  tensorNames: string[];
  message: string;
}

export interface RuleSummaryRecord {
  ruleConfigurationName: string;
  ruleEvaluationJobArn: string | null;
  status: RuleEvaluationStatus;
  statusDetails: string | null;
  lastModifiedTime: Date | null;
  evaluator: RuleEvaluator;
  /** The first MAX_RULE_FINDINGS firings of the service's own evaluation; empty for SageMaker's rule jobs. */
  findings: RuleFinding[];
}

export interface JobProgress {
  /** Boosting rounds done. */
  current: number;
  total: number;
}

export interface TrainingJobRecord {
  name: string;
  arn: string | null;
  backend: Backend;
  status: TrainingJobStatus;
  secondaryStatus: string | null;
  failureReason: string | null;
  createdAt: Date;
  startedAt: Date | null;
  endedAt: Date | null;
  hyperparameters: Record<string, string>;
  /** Where the job's smdebug trial is (s3://… or a path relative to the data dir). */
  debugOutputPath: string | null;
  ruleSummaries: RuleSummaryRecord[];
  progress: JobProgress | null;
}

/** A rule as a client asks for it (at job start or attached later); kept with the rule's attachment. */
export interface RuleSpec {
  /** A built-in rule name, e.g. "LossNotDecreasing". Absent for custom rules. */
  builtin?: string | null;
  /** RuleConfigurationName; defaults to the builtin name. */
  name?: string | null;
  parameters?: Record<string, ParameterValue> | null;
  evaluator?: RuleEvaluator | null;
  instanceType?: string | null;
  volumeSizeInGB?: number | null;
  /** Custom SageMaker rules: the evaluator image and the rule source. */
  image?: string | null;
  ruleSourceS3Uri?: string | null;
}

/** One entry of a rule's evaluation history: what the rule concluded at a step (or at its end). */
export interface RuleEvaluationRecord {
  /** Opaque, increasing per store: the paging cursor. */
  id: number;
  /** The evaluated global step; null for conclusions not tied to a step (no data was ever saved). */
  step: number | null;
  /** The rule's status after this evaluation. */
  status: RuleEvaluationStatus;
  message: string;
  time: Date;
}

/** A page of records, newest or oldest first as the query says, with the cursor for the next page. */
export interface RecordPage<T> {
  nodes: T[];
  endCursor: string | null;
  hasNextPage: boolean;
}
