// GraphQL documents and the result shapes the views use.
import { gql, GraphQLRequestError } from "./api.js";

export type TrainingJobStatus = "IN_PROGRESS" | "COMPLETED" | "FAILED" | "STOPPING" | "STOPPED";
export type RuleEvaluationStatus = "IN_PROGRESS" | "NO_ISSUES_FOUND" | "ISSUES_FOUND" | "ERROR" | "STOPPING" | "STOPPED";

/** One step at which a rule found an issue (RuleSummary.findings). */
export interface RuleFinding {
  step: number;
  mode: string;
  modeStep: number;
  tensorNames: string[];
  message: string;
}

export interface RuleSummary {
  id?: string;
  ruleConfigurationName: string;
  ruleEvaluationStatus: RuleEvaluationStatus;
  statusDetails: string | null;
  lastModifiedTime?: string | null;
  evaluator?: string;
  findings?: RuleFinding[];
}

const ruleFields = "id ruleConfigurationName ruleEvaluationStatus statusDetails lastModifiedTime evaluator findings { step mode modeStep tensorNames message }";

export interface Progress {
  current: number;
  total: number | null;
}

export interface TrainingJob {
  id: string;
  name: string;
  backend: "LOCAL" | "SAGEMAKER";
  status: TrainingJobStatus;
  secondaryStatus: string | null;
  failureReason: string | null;
  createdAt: string;
  startedAt: string | null;
  endedAt: string | null;
  hyperparameters: Record<string, unknown>;
  debugOutputPath: string | null;
  trial: { id: string; path: string } | null;
  ruleSummaries: RuleSummary[];
  progress?: Progress | null;
}

export interface NonFinite {
  index: number;
  value: string;
}

export interface Series {
  steps: number[];
  values: (number | null)[];
  nonFinite: NonFinite[];
  sampled: boolean;
}

export interface TensorSeries {
  name: string;
  series: Series;
}

export interface CollectionSeries {
  name: string;
  tensors: TensorSeries[];
}

// The service may or may not expose TrainingJob.progress (it was added after the contract).
// Ask for it first; if the schema rejects the field, stop asking.
let progressSupported = true;
export function jobFields(): string {
  return `id name backend status secondaryStatus failureReason createdAt startedAt endedAt hyperparameters debugOutputPath
    trial { id path }
    ruleSummaries { ${ruleFields} }
    ${progressSupported ? "progress { current total }" : ""}`;
}

function isMissingProgressField(err: unknown): boolean {
  return err instanceof GraphQLRequestError && err.errors.some((e) => /progress/.test(e.message) && /field/i.test(e.message));
}

/** Runs a query built from jobFields(), retrying once without `progress` if the schema lacks it. */
export async function gqlWithJobFields<T>(build: () => string, variables: Record<string, unknown> = {}): Promise<T> {
  try {
    return await gql<T>(build(), variables);
  } catch (err) {
    if (progressSupported && isMissingProgressField(err)) {
      progressSupported = false;
      return gql<T>(build(), variables);
    }
    throw err;
  }
}

export const seriesFields = `steps values nonFinite { index value } sampled`;

/** Points per series when showing a whole run; the server downsamples, keeping first and last. */
export const OVERVIEW_POINTS = 600;
/** Points per series inside a zoomed range: enough to be full resolution for any range a person zooms to. */
export const ZOOM_POINTS = 5000;

/** Sorted by name with numbers compared as numbers ("f2" < "f10"). */
export function byNaturalName<T extends { name: string }>(items: readonly T[]): T[] {
  return items.slice().sort((a, b) => a.name.localeCompare(b.name, "en", { numeric: true }));
}

// Each subscription takes the eventId of the last event received as `after`: api.subscribe keeps it
// current, so a reconnect resumes where the stream stopped.
export const jobStatusSubscription = () => `subscription JobStatus($jobName: String, $after: String) {
  trainingJobStatusChanged(jobName: $jobName, after: $after) { eventId previousStatus job { ${jobFields()} } }
}`;

/** Every status, secondary-status and progress move of a job (or of every job). */
export const jobUpdatedSubscription = () => `subscription JobUpdated($jobName: String, $after: String) {
  trainingJobUpdated(jobName: $jobName, after: $after) { eventId ${jobFields()} }
}`;

export const ruleStatusSubscription = `subscription RuleStatus($jobName: String, $after: String) {
  ruleStatusChanged(jobName: $jobName, after: $after) {
    eventId jobName previousStatus
    rule { ${ruleFields} }
  }
}`;

export const stepsAddedSubscription = `subscription StepsAdded($path: String!, $after: String) {
  trialStepsAdded(path: $path, after: $after) { eventId path steps lastCompleteStep trainingEnded }
}`;

export interface JobStatusEvent {
  trainingJobStatusChanged: { eventId: string; previousStatus: TrainingJobStatus | null; job: TrainingJob };
}
export interface JobUpdatedEvent {
  trainingJobUpdated: TrainingJob & { eventId: string };
}
export interface RuleStatusEvent {
  ruleStatusChanged: { eventId: string; jobName: string; previousStatus: RuleEvaluationStatus | null; rule: RuleSummary };
}
export interface StepsAddedEvent {
  trialStepsAdded: { eventId: string; path: string; steps: number[]; lastCompleteStep: number | null; trainingEnded: boolean };
}

/** The cursor of each subscription's events (for api.subscribe's resume). */
export const cursors = {
  jobStatus: (e: JobStatusEvent) => e.trainingJobStatusChanged.eventId,
  jobUpdated: (e: JobUpdatedEvent) => e.trainingJobUpdated.eventId,
  ruleStatus: (e: RuleStatusEvent) => e.ruleStatusChanged.eventId,
  stepsAdded: (e: StepsAddedEvent) => e.trialStepsAdded.eventId,
};

export const stopJobMutation = () => `mutation StopJob($name: String!) { stopTrainingJob(name: $name) { ${jobFields()} } }`;
export const startJobMutation = () => `mutation StartJob($input: StartTrainingJobInput!) { startTrainingJob(input: $input) { ${jobFields()} } }`;

const TERMINAL_JOB: ReadonlySet<TrainingJobStatus> = new Set(["COMPLETED", "FAILED", "STOPPED"]);

/**
 * A job's newer state: a live event can overtake a mutation's answer (STOPPED arrives before the
 * stop mutation's STOPPING), so an ended job never goes back to running or stopping.
 */
export function mergeJob(previous: TrainingJob | undefined | null, next: TrainingJob): TrainingJob {
  if (previous && TERMINAL_JOB.has(previous.status) && !TERMINAL_JOB.has(next.status)) return previous;
  return { ...previous, ...next };
}

/** Merge a rule summary into a list, by configuration name. */
export function mergeRule(rules: RuleSummary[], rule: RuleSummary): RuleSummary[] {
  const i = rules.findIndex((r) => r.ruleConfigurationName === rule.ruleConfigurationName);
  if (i < 0) return [...rules, rule];
  const copy = rules.slice();
  copy[i] = { ...copy[i], ...rule };
  return copy;
}

/** Quote a string as a GraphQL string literal (JSON string syntax is valid GraphQL). */
export function gqlString(s: string): string {
  return JSON.stringify(s);
}
