/**
 * What the job report reads: one GraphQL query, run in process through the public schema; for a
 * deep-learning trial a second one (losses, per-layer statistics), so that a part it cannot read
 * (e.g. past the elements-read budget) costs only that part.
 */
import type { TrainingMode } from "./trial-shape.js";

/** Points per series in the report's charts (the server keeps first, last and each bucket's extremes). */
export const REPORT_POINTS = 400;

export const JOB_REPORT_QUERY = `query JobReport($name: String!, $max: Int!) {
  trainingJob(name: $name) {
    name arn backend status secondaryStatus failureReason createdAt startedAt endedAt hyperparameters debugOutputPath
    progress { current total }
    ruleSummaries {
      ruleConfigurationName ruleEvaluationStatus statusDetails lastModifiedTime evaluator
      findings { step mode modeStep tensorNames message }
    }
    trial {
      path steps lastCompleteStep trainingEnded workers modes
      collections { name tensorNames }
      metrics: collection(name: "metrics") { tensors { name series(maxPoints: $max) { steps values sampled } } }
      importance: collection(name: "feature_importance") { tensors { name series(maxPoints: $max) { steps values sampled } } }
      shap: collection(name: "average_shap") { tensors { name series(maxPoints: $max) { steps values sampled } } }
    }
  }
}`;

export interface ReportSeries {
  name: string;
  series: { steps: number[]; values: (number | null)[]; sampled: boolean };
}

export interface ReportFinding {
  step: number;
  mode: string;
  modeStep: number;
  tensorNames: string[];
  message: string;
}

export interface ReportRule {
  ruleConfigurationName: string;
  ruleEvaluationStatus: string;
  statusDetails: string | null;
  lastModifiedTime: string | null;
  evaluator: string;
  findings: ReportFinding[];
}

export interface ReportTrial {
  path: string;
  steps: number[];
  lastCompleteStep: number | null;
  trainingEnded: boolean;
  workers: string[];
  modes: string[];
  collections: { name: string; tensorNames: string[] }[];
  metrics: { tensors: ReportSeries[] } | null;
  importance: { tensors: ReportSeries[] } | null;
  shap: { tensors: ReportSeries[] } | null;
}

export interface ReportJob {
  name: string;
  arn: string | null;
  backend: string;
  status: string;
  secondaryStatus: string | null;
  failureReason: string | null;
  createdAt: string;
  startedAt: string | null;
  endedAt: string | null;
  hyperparameters: Record<string, unknown>;
  debugOutputPath: string | null;
  progress: { current: number; total: number } | null;
  ruleSummaries: ReportRule[];
  trial: ReportTrial | null;
}

/** Per-layer statistics over the steps of one mode (a min/max band and the mean). */
export interface ReportLayer {
  name: string;
  reductionsOnly: boolean;
  statsSeries: { steps: number[]; min: (number | null)[]; max: (number | null)[]; mean: (number | null)[] };
}

export interface ReportLoss {
  name: string;
  /** One series per mode (GLOBAL when the trial has no modes), over global steps. */
  byMode: { mode: string; series: { steps: number[]; globalSteps: number[]; values: (number | null)[]; sampled: boolean } }[];
}

export interface ReportDeepLearning {
  /** The mode of the per-layer statistics (TRAIN when the trial has it); null: every step. */
  mode: TrainingMode | null;
  losses: ReportLoss[];
  weights: ReportLayer[];
  gradients: ReportLayer[];
}

const STATS_FIELDS = "name reductionsOnly statsSeries(mode: $mode) { steps min max mean }";

/** The deep-learning part: losses by mode, and every weight's and gradient's statistics over the steps of `mode`. */
export function deepLearningReportQuery(modes: readonly TrainingMode[]): string {
  const byMode = modes.length
    ? modes.map((m) => `${m.toLowerCase()}: series(mode: ${m}, maxPoints: $max) { steps globalSteps values sampled }`)
    : ["global: series(maxPoints: $max) { steps globalSteps values sampled }"];
  return `query JobReportDeepLearning($name: String!, $max: Int!, $mode: Mode) {
  trainingJob(name: $name) {
    trial {
      losses: tensors(collection: "losses") { name ${byMode.join(" ")} }
      weights: tensors(collection: "weights") { ${STATS_FIELDS} }
      gradients: tensors(collection: "gradients") { ${STATS_FIELDS} }
    }
  }
}`;
}

export interface JobReportData {
  job: ReportJob;
  /** Losses and per-layer statistics of a deep-learning trial. */
  deepLearning?: ReportDeepLearning | null;
  /** Parts the service could not read (e.g. the trial), with their error code: the report says so. */
  problems: { path: string; message: string; code: string }[];
  generatedAt: Date;
}
