/** What the job report reads: one GraphQL query, run in process through the public schema. */

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
      path steps lastCompleteStep trainingEnded workers
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

export interface JobReportData {
  job: ReportJob;
  /** Parts the service could not read (e.g. the trial), with their error code: the report says so. */
  problems: { path: string; message: string; code: string }[];
  generatedAt: Date;
}
