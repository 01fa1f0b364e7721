/**
 * Hyperparameter validation and coercion as SageMaker's XGBoost container does it (its algorithm
 * toolkit: aliases, required num_round, typed parsing, ranges, dependencies, "Extraneous
 * hyperparameter" for unknown names). Values arrive as strings or numbers.
 */
import { TrialgraphError } from "../../errors.js";
import type { ParameterValue } from "../types.js";

/** A typed value as the container hands it to xgb.train and to the debugger hook. */
export type HyperValue = { kind: "int"; value: number } | { kind: "float"; value: number } | { kind: "str"; value: string }
  | { kind: "list"; value: string[] };

interface Interval { min?: number; minOpen?: boolean; max?: number; maxOpen?: boolean }

type Spec =
  | { type: "int"; range?: Interval }
  | { type: "float"; range?: Interval }
  | { type: "cat"; values: readonly string[] }
  | { type: "list"; values?: readonly string[] }
  | { type: "text" };

const MAXIMIZE_METRICS = [
  "accuracy", "auc", "aucpr", "balanced_accuracy", "f1", "f1_binary", "f1_macro", "map", "ndcg", "precision", "r2",
  "recall", "precision_macro", "precision_micro", "recall_macro", "recall_micro",
];
const MINIMIZE_METRICS = [
  "aft-nloglik", "cox-nloglik", "error", "gamma-deviance", "gamma-nloglik", "interval-regression-accuracy", "logloss",
  "mae", "mape", "merror", "mlogloss", "mphe", "mse", "poisson-nloglik", "rmse", "rmsle", "tweedie-nloglik",
];
/** Metrics the container supports but libxgboost 1.7 does not compute itself (they need a Python feval). */
const PYTHON_ONLY_METRICS = new Set([
  "accuracy", "balanced_accuracy", "f1", "f1_binary", "f1_macro", "precision", "r2", "recall", "precision_macro",
  "precision_micro", "recall_macro", "recall_micro", "mse",
]);

export const OBJECTIVES = [
  "binary:logistic", "binary:logitraw", "binary:hinge", "count:poisson", "multi:softmax", "multi:softprob",
  "rank:pairwise", "rank:ndcg", "rank:map", "reg:linear", "reg:squarederror", "reg:logistic", "reg:gamma",
  "reg:pseudohubererror", "reg:squaredlogerror", "reg:absoluteerror", "reg:tweedie", "survival:aft", "survival:cox",
] as const;

const nonNeg: Interval = { min: 0 };
const unitOpenLow: Interval = { min: 0, minOpen: true, max: 1 };

const SPECS: Record<string, Spec> = {
  num_round: { type: "int", range: { min: 1 } },
  csv_weights: { type: "int", range: { min: 0, max: 1 } },
  early_stopping_rounds: { type: "int", range: { min: 1 } },
  booster: { type: "cat", values: ["gbtree", "gblinear", "dart"] },
  verbosity: { type: "int", range: { min: 0, max: 3 } },
  silent: { type: "int", range: { min: 0, max: 1 } },
  nthread: { type: "int", range: { min: 1 } },
  eta: { type: "float", range: { min: 0, max: 1 } },
  gamma: { type: "float", range: nonNeg },
  max_depth: { type: "int", range: nonNeg },
  min_child_weight: { type: "float", range: nonNeg },
  max_delta_step: { type: "float", range: nonNeg },
  subsample: { type: "float", range: unitOpenLow },
  colsample_bytree: { type: "float", range: unitOpenLow },
  colsample_bylevel: { type: "float", range: unitOpenLow },
  colsample_bynode: { type: "float", range: unitOpenLow },
  lambda: { type: "float", range: nonNeg },
  alpha: { type: "float", range: nonNeg },
  tree_method: { type: "cat", values: ["auto", "exact", "approx", "hist"] },
  sketch_eps: { type: "float", range: { min: 0, minOpen: true, max: 1, maxOpen: true } },
  scale_pos_weight: { type: "float", range: { min: 0, minOpen: true } },
  updater: {
    type: "list",
    values: ["grow_colmaker", "distcol", "grow_histmaker", "grow_skmaker", "sync", "refresh", "prune", "shotgun",
      "coord_descent", "grow_quantile_histmaker"],
  },
  dsplit: { type: "cat", values: ["row", "col"] },
  refresh_leaf: { type: "int", range: { min: 0, max: 1 } },
  process_type: { type: "cat", values: ["default", "update"] },
  grow_policy: { type: "cat", values: ["depthwise", "lossguide"] },
  max_leaves: { type: "int", range: nonNeg },
  max_bin: { type: "int", range: nonNeg },
  predictor: { type: "cat", values: ["auto", "cpu_predictor"] },
  monotone_constraints: { type: "text" },
  interaction_constraints: { type: "text" },
  sample_type: { type: "cat", values: ["uniform", "weighted"] },
  normalize_type: { type: "cat", values: ["tree", "forest"] },
  rate_drop: { type: "float", range: { min: 0, max: 1 } },
  one_drop: { type: "int", range: { min: 0, max: 1 } },
  skip_drop: { type: "float", range: { min: 0, max: 1 } },
  lambda_bias: { type: "float", range: { min: 0, max: 1 } },
  tweedie_variance_power: { type: "float", range: { min: 1, minOpen: true, max: 2, maxOpen: true } },
  objective: { type: "cat", values: OBJECTIVES },
  num_class: { type: "int", range: { min: 2 } },
  base_score: { type: "float", range: nonNeg },
  eval_metric: { type: "list" },
  seed: { type: "int", range: { min: -(2 ** 31), minOpen: true, max: 2 ** 31 - 1, maxOpen: true } },
  num_parallel_tree: { type: "int", range: { min: 1 } },
  save_model_on_termination: { type: "cat", values: ["true", "false"] },
  aft_loss_distribution: { type: "cat", values: ["normal", "logistic", "extreme"] },
  aft_loss_distribution_scale: { type: "float", range: nonNeg },
  deterministic_histogram: { type: "cat", values: ["true", "false"] },
  sampling_method: { type: "cat", values: ["uniform"] },
};

const ALIASES: Record<string, string> = {
  learning_rate: "eta",
  min_split_loss: "gamma",
  reg_lambda: "lambda",
  reg_alpha: "alpha",
};

/** Accepted by the container but consumed by it, never passed to libxgboost. */
const CONTAINER_ONLY = new Set(["num_round", "csv_weights", "early_stopping_rounds", "save_model_on_termination", "silent"]);
/** Popped from the training config before the debugger hook sees it (so not in `hyperparameters/*`). */
const POPPED_BEFORE_HOOK = new Set(["num_round", "save_model_on_termination", "early_stopping_rounds"]);

export interface ValidatedHyperparameters {
  numRound: number;
  /** Ordered (name, value) pairs for XGBoosterSetParam; eval_metric appears once per metric. */
  boosterParams: [string, string][];
  /** What smdebug's hook saves under hyperparameters/<name> (the container's train_cfg). */
  hookHyperparameters: Record<string, HyperValue>;
  /** Metric names in eval order (XGBoost's default metric when none given is decided by libxgboost). */
  evalMetrics: string[];
  earlyStoppingRounds: number | null;
  csvWeights: boolean;
  /** save_model_on_termination: keep the model of a stopped job. */
  saveModelOnTermination: boolean;
  objective: string;
  booster: string;
}

const fail = (name: string, message: string) =>
  new TrialgraphError("BAD_USER_INPUT", `Hyperparameter ${name}: ${message}`, { field: `hyperparameters.${name}` });

function inInterval(v: number, r: Interval | undefined): boolean {
  if (!r) return true;
  if (r.min !== undefined && (r.minOpen ? v <= r.min : v < r.min)) return false;
  if (r.max !== undefined && (r.maxOpen ? v >= r.max : v > r.max)) return false;
  return true;
}

function describeInterval(r: Interval): string {
  const lo = r.min === undefined ? "(-inf" : `${r.minOpen ? "(" : "["}${r.min}`;
  const hi = r.max === undefined ? "+inf)" : `${r.max}${r.maxOpen ? ")" : "]"}`;
  return `${lo}, ${hi}`;
}

/** Python int(): optional sign and whitespace, digits only. */
function parseInt_(name: string, raw: ParameterValue): number {
  if (typeof raw === "number") {
    if (!Number.isInteger(raw)) throw fail(name, `could not parse value ${raw} as an integer`);
    return raw;
  }
  const text = String(raw).trim().replace(/_/g, "");
  if (!/^[+-]?\d+$/.test(text)) throw fail(name, `could not parse value '${raw}' as an integer`);
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw fail(name, `value '${raw}' is out of range`);
  return n;
}

/** Python float(), without nan/inf (they would pass every range check and break training). */
function parseFloat_(name: string, raw: ParameterValue): number {
  const text = typeof raw === "number" ? String(raw) : String(raw).trim();
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) throw fail(name, `could not parse value '${raw}' as a number`);
  const n = Number(text);
  if (!Number.isFinite(n)) throw fail(name, `value '${raw}' is not finite`);
  return n;
}

function checkEvalMetric(metric: string): void {
  if (metric.includes("@")) {
    const [base, threshold] = metric.split("@").map((s) => s.trim());
    if (!["error", "ndcg", "map"].includes(base)) {
      throw fail("eval_metric", `metric '${metric}' is not supported; a custom threshold needs one of error, ndcg, map`);
    }
    if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?-?$/.test(threshold)) {
      throw fail("eval_metric", `threshold value in '${metric}' expects a float`);
    }
    return;
  }
  if (!MAXIMIZE_METRICS.includes(metric) && !MINIMIZE_METRICS.includes(metric)) {
    throw fail("eval_metric", `'${metric}' is not a supported metric`);
  }
  if (PYTHON_ONLY_METRICS.has(metric)) {
    throw fail("eval_metric", `'${metric}' is computed by the SageMaker container in Python and is not available in local jobs`);
  }
}

/** Whether a larger value of this metric is better (XGBoost's early-stopping rule). */
export function metricMaximizes(metric: string): boolean {
  const base = metric.split("@")[0];
  return MAXIMIZE_METRICS.includes(base) || base.startsWith("ndcg") || base.startsWith("map") || base.startsWith("auc");
}

/** Validates and coerces; throws TrialgraphError BAD_USER_INPUT naming the field. */
export function validateHyperparameters(input: Record<string, ParameterValue> | null | undefined): ValidatedHyperparameters {
  const raw: Record<string, ParameterValue> = {};
  for (const [k0, v] of Object.entries(input ?? {})) {
    const k = ALIASES[k0] ?? k0;
    if (v === null || v === undefined) continue;
    raw[k] = v;
  }
  if (!("num_round" in raw)) throw fail("num_round", "missing required hyperparameter num_round");

  const typed: Record<string, HyperValue> = {};
  for (const [name, value] of Object.entries(raw)) {
    const spec = SPECS[name];
    if (!spec) throw fail(name, `extraneous hyperparameter found: ${name} (not accepted by the XGBoost algorithm)`);
    if (typeof value === "boolean" && spec.type !== "cat") throw fail(name, `could not parse value ${value}`);
    switch (spec.type) {
      case "int": {
        const n = parseInt_(name, value);
        if (!inInterval(n, spec.range)) throw fail(name, `${n} is not in ${describeInterval(spec.range!)}`);
        typed[name] = { kind: "int", value: n };
        break;
      }
      case "float": {
        const n = parseFloat_(name, value);
        if (!inInterval(n, spec.range)) throw fail(name, `${n} is not in ${describeInterval(spec.range!)}`);
        typed[name] = { kind: "float", value: n };
        break;
      }
      case "cat": {
        const s = typeof value === "boolean" ? String(value) : String(value);
        if (!spec.values.includes(s)) throw fail(name, `'${s}' is not one of ${spec.values.join(", ")}`);
        typed[name] = { kind: "str", value: s };
        break;
      }
      case "list": {
        const items = String(value).split(",");
        if (spec.values) {
          const bad = items.find((i) => !spec.values!.includes(i));
          if (bad !== undefined) throw fail(name, `value '${bad}' is not one of ${spec.values.join(", ")}`);
        }
        typed[name] = { kind: "list", value: items };
        break;
      }
      case "text":
        typed[name] = { kind: "str", value: String(value) };
        break;
    }
  }

  // Dependencies, as the container's validators check them.
  const objective = typed.objective?.value as string | undefined;
  const numClass = typed.num_class?.value as number | undefined;
  if ((objective === "multi:softmax" || objective === "multi:softprob") && numClass === undefined) {
    throw fail("num_class", "required for multi-class objectives (multi:softmax, multi:softprob)");
  }
  if (objective === undefined && numClass !== undefined) {
    throw fail("num_class", "only used with a multi-class objective");
  }
  const metrics = typed.eval_metric ? (typed.eval_metric.value as string[]) : [];
  for (const m of metrics) checkEvalMetric(m);
  if (metrics.includes("auc") && !(objective ?? "reg:squarederror").match(/^(binary|rank):/)) {
    throw fail("eval_metric", "metric 'auc' can only be applied to classification and ranking problems");
  }
  if (metrics.includes("aft-nloglik") && objective !== "survival:aft") {
    throw fail("eval_metric", "metric 'aft-nloglik' can only be applied with objective survival:aft");
  }
  const treeMethod = typed.tree_method?.value as string | undefined;
  if (typed.monotone_constraints && treeMethod !== "exact" && treeMethod !== "hist") {
    throw fail("monotone_constraints", "can only be used with tree_method exact or hist");
  }
  if (typed.interaction_constraints && !["exact", "hist", "approx"].includes(treeMethod ?? "")) {
    throw fail("interaction_constraints", "can only be used with tree_method exact, hist or approx");
  }

  const boosterParams: [string, string][] = [];
  const hookHyperparameters: Record<string, HyperValue> = {};
  for (const [name, v] of Object.entries(typed)) {
    if (!POPPED_BEFORE_HOOK.has(name)) hookHyperparameters[name] = v;
    if (CONTAINER_ONLY.has(name)) continue;
    if (v.kind === "list") {
      if (name === "eval_metric") for (const m of v.value) boosterParams.push([name, m]);
      else boosterParams.push([name, v.value.join(",")]);
    } else {
      boosterParams.push([name, String(v.value)]);
    }
  }
  return {
    numRound: typed.num_round.value as number,
    boosterParams,
    hookHyperparameters,
    evalMetrics: metrics,
    earlyStoppingRounds: (typed.early_stopping_rounds?.value as number | undefined) ?? null,
    csvWeights: typed.csv_weights?.value === 1,
    saveModelOnTermination: typed.save_model_on_termination?.value === "true",
    objective: objective ?? "reg:squarederror",
    booster: (typed.booster?.value as string | undefined) ?? "gbtree",
  };
}

/** The job record's string map (what DescribeTrainingJob echoes). */
export function hyperparametersAsStrings(input: Record<string, ParameterValue> | null | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(input ?? {})) if (v !== null && v !== undefined) out[k] = String(v);
  return out;
}
