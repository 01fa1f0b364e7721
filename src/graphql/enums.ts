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
/** Values are the domain's StatKey names (trials/tensor-stats.ts). */
export const TensorStat = {
  MIN: "min", MAX: "max", MEAN: "mean", STD: "std", SUM: "sum", L2: "l2",
  ZEROS: "zeros", NAN: "nan", POS_INF: "posInf", NEG_INF: "negInf", FINITE: "finite", SIZE: "size",
} as const;
/** Values are smdebug's reduction names (format/reductions.ts). */
export const Reduction = {
  MIN: "min", MAX: "max", MEAN: "mean", STD: "std", VARIANCE: "variance", SUM: "sum", PROD: "prod", L1: "l1", L2: "l2",
} as const;

registerEnumType(Mode, { name: "Mode", description: "smdebug modes; XGBoost writes everything as GLOBAL" });
registerEnumType(Backend, { name: "Backend", description: "Where a training job runs" });
registerEnumType(TrainingJobStatus, { name: "TrainingJobStatus" });
registerEnumType(RuleEvaluationStatus, { name: "RuleEvaluationStatus" });
registerEnumType(RuleEvaluator, {
  name: "RuleEvaluator",
  description: "Who evaluates a rule: SageMaker's managed rule job, or this service's own rule engine",
});
registerEnumType(TensorStat, {
  name: "TensorStat",
  description: "A statistic of a tensor value: MIN, MAX, MEAN, STD (population), SUM and L2 are over its finite elements; "
    + "ZEROS, NAN, POS_INF, NEG_INF and FINITE count elements; SIZE is the element count",
});
registerEnumType(Reduction, {
  name: "Reduction",
  description: "smdebug's reductions (reduction_value names); with abs they apply to the absolute values. L1 and L2 are norms",
});
