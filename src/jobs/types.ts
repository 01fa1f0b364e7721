/** The training-job domain, shared by every backend (SageMaker, local) and the GraphQL layer. */
import type { NewRule } from "../store/index.js";
import type { Backend, ParameterValue, RuleSpec, TrainingJobRecord, TrainingJobStatus } from "../store/records.js";

// The records themselves live in the store layer (they are what the database keeps); re-exported
// here so the job domain reads as one module.
export * from "../store/records.js";

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
  /**
   * Starts a job. `rules` are the rules the service evaluates on it: recorded with the job, in one
   * write, before anything starts.
   */
  start(spec: StartTrainingJobSpec, options?: { rules?: readonly NewRule[] }): Promise<TrainingJobRecord>;
  stop(name: string): Promise<TrainingJobRecord>;
  /** Null when the backend does not know the job. */
  describe(name: string): Promise<TrainingJobRecord | null>;
  list(query: ListJobsQuery): Promise<JobPage>;
}
