/** DescribeTrainingJob / ListTrainingJobs responses to the backend-neutral TrainingJobRecord. */
import type { DescribeTrainingJobResponse, TrainingJobSummary } from "@aws-sdk/client-sagemaker";
import type { RuleEvaluationStatus, RuleSummaryRecord, TrainingJobRecord, TrainingJobStatus } from "../types.js";
import { TERMINAL_JOB_STATUSES } from "../types.js";
import { debugOutputPathFor } from "./request.js";

const JOB_STATUS: Readonly<Record<string, TrainingJobStatus>> = {
  InProgress: "IN_PROGRESS",
  Completed: "COMPLETED",
  Failed: "FAILED",
  Stopping: "STOPPING",
  Stopped: "STOPPED",
  // A job being deleted is on its way out but not gone; describe turns null once it is.
  Deleting: "STOPPING",
};

const RULE_STATUS: Readonly<Record<string, RuleEvaluationStatus>> = {
  InProgress: "IN_PROGRESS",
  NoIssuesFound: "NO_ISSUES_FOUND",
  IssuesFound: "ISSUES_FOUND",
  Error: "ERROR",
  Stopping: "STOPPING",
  Stopped: "STOPPED",
};

/**
 * SageMaker says its status values "are subject to change". An unknown job status is reported as
 * IN_PROGRESS (non-terminal, so watchers keep polling) with the raw value kept in secondaryStatus by
 * the caller; an unknown rule status likewise as IN_PROGRESS.
 */
export const mapJobStatus = (status: string | undefined): TrainingJobStatus =>
  (status && JOB_STATUS[status]) || "IN_PROGRESS";
export const mapRuleStatus = (status: string | undefined): RuleEvaluationStatus =>
  (status && RULE_STATUS[status]) || "IN_PROGRESS";

export function recordFromDescribe(job: DescribeTrainingJobResponse): TrainingJobRecord {
  const name = job.TrainingJobName ?? "";
  const status = mapJobStatus(job.TrainingJobStatus);
  const known = job.TrainingJobStatus != null && job.TrainingJobStatus in JOB_STATUS;
  const ruleSummaries: RuleSummaryRecord[] = (job.DebugRuleEvaluationStatuses ?? []).map((rule) => ({
    ruleConfigurationName: rule.RuleConfigurationName ?? "",
    ruleEvaluationJobArn: rule.RuleEvaluationJobArn ?? null,
    status: mapRuleStatus(rule.RuleEvaluationStatus),
    statusDetails: rule.StatusDetails ?? null,
    lastModifiedTime: rule.LastModifiedTime ?? null,
    evaluator: "SAGEMAKER",
    findings: [],
  }));
  return {
    name,
    arn: job.TrainingJobArn ?? null,
    backend: "SAGEMAKER",
    status,
    secondaryStatus: known ? job.SecondaryStatus ?? null : job.SecondaryStatus ?? job.TrainingJobStatus ?? null,
    failureReason: job.FailureReason ?? null,
    createdAt: job.CreationTime ?? new Date(0),
    startedAt: job.TrainingStartTime ?? null,
    // A job that failed or was stopped before training has no TrainingEndTime; its last status change is its end.
    endedAt: job.TrainingEndTime ?? (TERMINAL_JOB_STATUSES.has(status) ? job.LastModifiedTime ?? null : null),
    hyperparameters: { ...(job.HyperParameters ?? {}) },
    debugOutputPath: job.DebugHookConfig?.S3OutputPath ? debugOutputPathFor(job.DebugHookConfig.S3OutputPath, name) : null,
    ruleSummaries,
    // DescribeTrainingJob has no boosting-round counter for built-in XGBoost (ProgressInfo is only set for
    // epoch-based serverless jobs), so a SageMaker record never carries progress.
    progress: null,
  };
}

/**
 * A summary-only record (ListTrainingJobs has no hyperparameters, hook or rules). Used when a listed
 * job vanished before it could be described.
 */
export function recordFromSummary(summary: TrainingJobSummary): TrainingJobRecord {
  const status = mapJobStatus(summary.TrainingJobStatus);
  return {
    name: summary.TrainingJobName ?? "",
    arn: summary.TrainingJobArn ?? null,
    backend: "SAGEMAKER",
    status,
    secondaryStatus: summary.SecondaryStatus ?? null,
    failureReason: null,
    createdAt: summary.CreationTime ?? new Date(0),
    startedAt: null,
    endedAt: summary.TrainingEndTime ?? null,
    hyperparameters: {},
    debugOutputPath: null,
    ruleSummaries: [],
    progress: null,
  };
}
