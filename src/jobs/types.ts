/** The training-job domain, shared by every backend (SageMaker, local) and the GraphQL layer. */
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

export interface ChannelSpec {
  name: string;
  uri: string;
  contentType?: string | null;
}

export interface CollectionConfigSpec {
  name: string;
  parameters?: Record<string, ParameterValue> | null;
}

export interface DebugHookConfigSpec {
  s3OutputPath?: string | null;
  hookParameters?: Record<string, ParameterValue> | null;
  collectionConfigs?: CollectionConfigSpec[] | null;
}

export interface StartTrainingJobSpec {
  backend?: Backend | null;
  name?: string | null;
  baseJobName?: string | null;
  algorithm: { builtin?: string | null; version?: string | null; image?: string | null };
  hyperparameters?: Record<string, ParameterValue> | null;
  inputs: ChannelSpec[];
  outputPath?: string | null;
  instanceType?: string | null;
  instanceCount?: number | null;
  volumeSizeInGB?: number | null;
  maxRuntimeSeconds?: number | null;
  roleArn?: string | null;
  debugHookConfig?: DebugHookConfigSpec | null;
  rules?: RuleSpec[] | null;
}

export interface ListJobsQuery {
  first: number;
  after?: string | null;
  status?: TrainingJobStatus | null;
  nameContains?: string | null;
}

export interface JobPage {
  nodes: TrainingJobRecord[];
  endCursor: string | null;
  hasNextPage: boolean;
}

/** One place jobs run. Each backend maps its own world onto TrainingJobRecord. */
export interface TrainingJobBackend {
  readonly backend: Backend;
  start(spec: StartTrainingJobSpec): Promise<TrainingJobRecord>;
  stop(name: string): Promise<TrainingJobRecord>;
  /** Null when the backend does not know the job. */
  describe(name: string): Promise<TrainingJobRecord | null>;
  list(query: ListJobsQuery): Promise<JobPage>;
}
