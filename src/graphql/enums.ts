/** GraphQL enums; their values are the domain's string unions, so no mapping is needed. */
import { registerEnumType } from "type-graphql";

export const Mode = { TRAIN: "TRAIN", EVAL: "EVAL", PREDICT: "PREDICT", GLOBAL: "GLOBAL" } as const;
export const Backend = { LOCAL: "LOCAL", SAGEMAKER: "SAGEMAKER" } as const;
export const TrainingJobStatus = {
  IN_PROGRESS: "IN_PROGRESS", COMPLETED: "COMPLETED", FAILED: "FAILED", STOPPING: "STOPPING", STOPPED: "STOPPED",
} as const;
export const RuleEvaluationStatus = {
  IN_PROGRESS: "IN_PROGRESS", NO_ISSUES_FOUND: "NO_ISSUES_FOUND", ISSUES_FOUND: "ISSUES_FOUND",
  ERROR: "ERROR", STOPPING: "STOPPING", STOPPED: "STOPPED",
} as const;
export const RuleEvaluator = { SAGEMAKER: "SAGEMAKER", SERVICE: "SERVICE" } as const;

registerEnumType(Mode, { name: "Mode", description: "smdebug modes; XGBoost writes everything as GLOBAL" });
registerEnumType(Backend, { name: "Backend", description: "Where a training job runs" });
registerEnumType(TrainingJobStatus, { name: "TrainingJobStatus" });
registerEnumType(RuleEvaluationStatus, { name: "RuleEvaluationStatus" });
registerEnumType(RuleEvaluator, {
  name: "RuleEvaluator",
  description: "Who evaluates a rule: SageMaker's managed rule job, or this service's own rule engine",
});
