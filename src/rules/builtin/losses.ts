/**
 * Loss rules: LossNotDecreasing, Overfit, Overtraining (spec §8.3). The AWS implementations are
 * closed; where the spec marks the algorithm INFERRED, the reading used is written next to the
 * code and in ../RULES.md.
 */
import type { Mode } from "../../format/tensor.js";
import { newestAtOrBefore } from "../steps.js";
import type {
  ParsedParameters, RequiredTensors, RuleDefinition, RuleInstance, StepContext, StepResult, StepValues, TensorRequest,
  TensorSelector,
} from "../types.js";
import { COLLECTION_NAMES, TENSOR_REGEX, fmt, mean, pairEvalMetrics, scalarOf } from "./common.js";
import { higherIsBetter } from "../metric-direction.js";

/** Percent decrease from base to cur (negative when the loss rose). */
function percentDecrease(base: number, cur: number): number {
  if (base === 0) return cur === 0 ? 0 : cur < 0 ? Infinity : -Infinity;
  return ((base - cur) / Math.abs(base)) * 100;
}

// ---------------------------------------------------------------------------------------------
// LossNotDecreasing
// ---------------------------------------------------------------------------------------------

interface LossPlan {
  key: string;
  name: string;
  mode: Mode | null;
  cur: number;
  /** Set at evaluation steps: the step compared with. */
  base?: number;
}

/**
 * Reading (documented outline, INFERRED formula, see RULES.md):
 * - Each scalar loss tensor is a series over the saved steps of one mode (the `mode` parameter;
 *   if it is not passed, each step's own mode, so EVAL, TRAIN and GLOBAL series are separate).
 * - Evaluation steps: the first saved step s that has a saved step ≤ s − num_steps, then the first
 *   saved step ≥ previous evaluation + num_steps. At s, compare with base = the newest saved step
 *   ≤ s − num_steps.
 * - Fire when the loss did not decrease by at least diff_percent: (base − cur)/|base|·100 < diff_percent
 *   (any rise fires), or when it rose more than increase_threshold_percent above the best (lowest)
 *   loss of the series so far (a loss that "has been increasing" even if the last window looks fine).
 */
class LossNotDecreasing implements RuleInstance {
  private lastEval = new Map<string, number>();
  private best = new Map<string, number>();
  private plan: LossPlan[] = [];

  constructor(private readonly p: ParsedParameters) {}

  private selector(ctx: StepContext): TensorSelector {
    const collections = [...((this.p.collection_names as string[] | null) ?? [])];
    if (this.p.use_losses_collection && ctx.trial.collectionNames().includes("losses") && !collections.includes("losses")) {
      collections.push("losses");
    }
    return { collections, regex: (this.p.tensor_regex as string[] | null) ?? null };
  }

  requiredTensors(ctx: StepContext): RequiredTensors {
    const numSteps = this.p.num_steps as number;
    const explicit = this.p.mode as Mode | null;
    this.plan = [];
    let seriesMode: Mode | null;
    let cur: number;
    if (explicit === null) {
      seriesMode = ctx.mode === "GLOBAL" ? null : ctx.mode;
      cur = ctx.mode === "GLOBAL" ? ctx.step : ctx.modeStep;
    } else if (explicit === "GLOBAL") {
      seriesMode = null;
      cur = ctx.step;
    } else {
      if (ctx.mode !== explicit) return [];
      seriesMode = explicit;
      cur = ctx.modeStep;
    }
    const sel = this.selector(ctx);
    const reqs: TensorRequest[] = [];
    for (const name of ctx.trial.select(sel, cur, seriesMode)) {
      const key = `${seriesMode ?? "GLOBAL"}\u0000${name}`;
      const plan: LossPlan = { key, name, mode: seriesMode, cur };
      reqs.push({ name, step: cur, mode: seriesMode });
      const series = ctx.trial.tensorSteps(name, seriesMode);
      const base = newestAtOrBefore(series, cur - numSteps);
      const last = this.lastEval.get(key);
      if (base !== undefined && (last === undefined || cur >= last + numSteps)) {
        plan.base = base;
        reqs.push({ name, step: base, mode: seriesMode });
      }
      this.plan.push(plan);
    }
    return reqs;
  }

  invokeAtStep(ctx: StepContext, values: StepValues): StepResult {
    const diffPercent = this.p.diff_percent as number;
    const increasePercent = this.p.increase_threshold_percent as number;
    const numSteps = this.p.num_steps as number;
    let checked = 0;
    let fired: StepResult | null = null;
    const firedTensors: string[] = [];
    for (const plan of this.plan) {
      const cur = scalarOf(values.get(plan.name, plan.cur, { mode: plan.mode }));
      if (cur === undefined || Number.isNaN(cur)) continue; // only scalar losses are used
      checked++;
      const bestBefore = this.best.get(plan.key);
      if (bestBefore === undefined || cur < bestBefore) this.best.set(plan.key, cur);
      if (plan.base === undefined) continue;
      const base = scalarOf(values.get(plan.name, plan.base, { mode: plan.mode }));
      if (base === undefined) continue;
      this.lastEval.set(plan.key, plan.cur);
      const decrease = percentDecrease(base, cur);
      const stepText = (s: number) => (plan.mode ? `${plan.mode} step ${s}` : `step ${s}`);
      if (decrease < diffPercent) {
        firedTensors.push(plan.name);
        fired ??= {
          fired: true,
          tensor: plan.name,
          details: `${plan.name} is ${fmt(cur)} at ${stepText(plan.cur)} and was ${fmt(base)} at ${stepText(plan.base)}: `
            + `it changed by ${decrease <= 0 ? "+" : "-"}${fmt(Math.abs(decrease))}%, `
            + `less than the required decrease of ${fmt(diffPercent)}% over ${numSteps} steps`,
        };
        continue;
      }
      if (bestBefore !== undefined && -percentDecrease(bestBefore, cur) > increasePercent) {
        firedTensors.push(plan.name);
        fired ??= {
          fired: true,
          tensor: plan.name,
          details: `${plan.name} is ${fmt(cur)} at ${stepText(plan.cur)}, ${fmt(-percentDecrease(bestBefore, cur))}% above `
            + `its best value ${fmt(bestBefore)} (allowed increase ${fmt(increasePercent)}%)`,
        };
      }
    }
    return { ...(fired ?? { fired: false }), tensors: firedTensors, checked };
  }

  missingRequirement(): string {
    const parts: string[] = [];
    if (this.p.collection_names) parts.push(`collection_names=${(this.p.collection_names as string[]).join(",")}`);
    if (this.p.tensor_regex) parts.push(`tensor_regex=${(this.p.tensor_regex as string[]).join(",")}`);
    if (this.p.use_losses_collection) parts.push("the losses collection");
    return `no scalar loss tensor was found (looked for ${parts.join(", ") || "nothing: give collection_names or tensor_regex"})`;
  }
}

export const lossNotDecreasing: RuleDefinition = {
  name: "LossNotDecreasing",
  source: "builtin",
  appliesToXgboost: true,
  description: "Fires when a scalar loss does not decrease by at least diff_percent over num_steps steps.",
  parameters: [
    COLLECTION_NAMES,
    TENSOR_REGEX,
    {
      name: "use_losses_collection", type: "boolean", default: true,
      description: "Also inspect the tensors of the losses collection when the trial has one.",
    },
    {
      name: "num_steps", type: "integer", default: 10, min: 1,
      description: "Steps between evaluations; each evaluation compares with the newest saved step at least num_steps earlier.",
    },
    {
      name: "diff_percent", type: "number", default: 0.1, min: 0, max: 100, maxExclusive: true,
      description: "Minimum percentage by which the loss must decrease between two evaluations (0 <= x < 100).",
    },
    {
      name: "increase_threshold_percent", type: "number", default: 5, min: 0, max: 100, maxExclusive: true,
      description: "Maximum percentage the loss may rise above its best value so far (0 <= x < 100).",
    },
    {
      name: "mode", type: "mode", default: null, shownDefault: "GLOBAL",
      description: "Mode whose steps are compared (TRAIN, EVAL, PREDICT, GLOBAL). If not passed, each mode's steps form "
        + "their own series (EVAL, TRAIN, GLOBAL); XGBoost trials are all GLOBAL.",
    },
  ],
  create: (p) => new LossNotDecreasing(p),
};

// ---------------------------------------------------------------------------------------------
// Train/validation series, shared by Overfit and Overtraining
// ---------------------------------------------------------------------------------------------

/** The loss tensors of a DL trial (TRAIN/EVAL modes): tensor_regex, else the losses collection. */
function dlLossSelector(p: ParsedParameters): TensorSelector {
  const regex = (p.tensor_regex as string[] | null) ?? null;
  return regex ? { regex } : { collections: ["losses"] };
}

/** XGBoost eval tensors at a GLOBAL step: tensor_regex matches (or every name), paired by metric. */
function xgbPairs(ctx: StepContext, p: ParsedParameters) {
  const regex = (p.tensor_regex as string[] | null) ?? null;
  const names = regex ? ctx.trial.select({ regex }, ctx.step) : ctx.trial.tensorNames({ step: ctx.step });
  return pairEvalMetrics(names);
}

// ---------------------------------------------------------------------------------------------
// Overfit
// ---------------------------------------------------------------------------------------------

/**
 * Reading (documented outline, INFERRED pairing): ratio = (validation − training) / |training|
 * (sign flipped for higher-is-better metrics such as auc). XGBoost (GLOBAL steps): per metric,
 * `train-<m>` against each `validation-<m>` at the same step. DL trials: the mean of the loss
 * tensors over the TRAIN steps since the last EVAL step against their mean at the EVAL step.
 * Fires when the ratio exceeded ratio_threshold on `patience` consecutive evaluated steps ≥ start_step.
 */
class Overfit implements RuleInstance {
  private violations = new Map<string, number>();
  private trainSince: number[] = [];
  private lastTrainMean: number | null = null;
  private names: string[] = [];
  private pairs: ReturnType<typeof pairEvalMetrics> = [];

  constructor(private readonly p: ParsedParameters) {}

  requiredTensors(ctx: StepContext): RequiredTensors {
    this.names = [];
    this.pairs = [];
    if (ctx.mode === "GLOBAL") {
      if (ctx.step < (this.p.start_step as number)) return [];
      this.pairs = xgbPairs(ctx, this.p);
      return this.pairs.flatMap((pr) => [pr.train, ...pr.validation]).map((name) => ({ name, step: ctx.step }));
    }
    if (ctx.mode !== "TRAIN" && ctx.mode !== "EVAL") return [];
    this.names = ctx.trial.select(dlLossSelector(this.p), ctx.step);
    return this.names.map((name) => ({ name, step: ctx.step }));
  }

  private check(key: string, ratio: number): boolean {
    const threshold = this.p.ratio_threshold as number;
    const n = ratio > threshold ? (this.violations.get(key) ?? 0) + 1 : 0;
    this.violations.set(key, n);
    return n >= (this.p.patience as number);
  }

  invokeAtStep(ctx: StepContext, values: StepValues): StepResult {
    const threshold = this.p.ratio_threshold as number;
    let checked = 0;
    let fired: StepResult | null = null;
    const firedTensors: string[] = [];
    for (const pr of this.pairs) {
      const train = values.scalar(pr.train);
      if (train === undefined) continue;
      for (const v of pr.validation) {
        const val = values.scalar(v);
        if (val === undefined) continue;
        checked++;
        const gap = higherIsBetter(pr.metric) ? train - val : val - train;
        const ratio = train === 0 ? (gap > 0 ? Infinity : 0) : gap / Math.abs(train);
        if (this.check(v, ratio)) {
          firedTensors.push(v);
          fired ??= {
            fired: true, tensor: v,
            details: `${v} = ${fmt(val)} vs ${pr.train} = ${fmt(train)}: ratio ${fmt(ratio)} > ratio_threshold ${fmt(threshold)} `
              + `for ${this.violations.get(v)} consecutive step(s) (patience ${this.p.patience})`,
          };
        }
      }
    }
    if (this.names.length) {
      const vals = this.names.map((n) => values.scalar(n)).filter((x): x is number => x !== undefined);
      if (vals.length) {
        checked += vals.length;
        const m = mean(vals);
        if (ctx.mode === "TRAIN") this.trainSince.push(m);
        else if (ctx.step >= (this.p.start_step as number)) {
          if (this.trainSince.length) this.lastTrainMean = mean(this.trainSince);
          this.trainSince = [];
          const train = this.lastTrainMean;
          if (train !== null) {
            const ratio = train === 0 ? (m > 0 ? Infinity : 0) : (m - train) / Math.abs(train);
            if (this.check("\u0000dl", ratio)) {
              firedTensors.push(...this.names);
              fired ??= {
                fired: true, tensor: this.names[0],
                details: `mean validation loss ${fmt(m)} vs mean training loss ${fmt(train)}: ratio ${fmt(ratio)} > `
                  + `ratio_threshold ${fmt(threshold)} (patience ${this.p.patience})`,
              };
            }
          }
        }
      }
    }
    return { ...(fired ?? { fired: false }), tensors: firedTensors, checked };
  }

  missingRequirement(): string {
    return "no training/validation loss pair was found (XGBoost train-<metric> with validation-<metric>, "
      + "or loss tensors saved in TRAIN and EVAL mode)";
  }
}

export const overfit: RuleDefinition = {
  name: "Overfit",
  source: "builtin",
  appliesToXgboost: true,
  description: "Fires when validation loss exceeds training loss by more than ratio_threshold (relative) for patience steps.",
  parameters: [
    { ...TENSOR_REGEX, description: "Regular expressions selecting the loss tensors (default: XGBoost train-/validation- metrics, or the losses collection)." },
    { name: "start_step", type: "integer", default: 0, min: 0, description: "First step evaluated." },
    { name: "patience", type: "integer", default: 1, min: 1, description: "Consecutive evaluated steps the ratio must exceed the threshold." },
    {
      name: "ratio_threshold", type: "number", default: 0.1, min: 0,
      description: "Maximum (validation − training) / training loss ratio.",
    },
  ],
  create: (p) => new Overfit(p),
};

// ---------------------------------------------------------------------------------------------
// Overtraining
// ---------------------------------------------------------------------------------------------

interface Series {
  best: number;
  since: number;
}

/**
 * Reading (INFERRED, early-stopping style): a value improves its series' best only if it beats it
 * by more than delta. Fires when the training series has not improved for patience_train saved
 * steps, or a validation series for patience_validation saved steps (either one).
 */
class Overtraining implements RuleInstance {
  private series = new Map<string, Series>();
  private pairs: ReturnType<typeof pairEvalMetrics> = [];
  private names: string[] = [];

  constructor(private readonly p: ParsedParameters) {}

  requiredTensors(ctx: StepContext): RequiredTensors {
    this.pairs = [];
    this.names = [];
    if (ctx.mode === "GLOBAL") {
      this.pairs = xgbPairs(ctx, this.p);
      return this.pairs.flatMap((pr) => [pr.train, ...pr.validation]).map((name) => ({ name, step: ctx.step }));
    }
    if (ctx.mode !== "TRAIN" && ctx.mode !== "EVAL") return [];
    this.names = ctx.trial.select(dlLossSelector(this.p), ctx.step);
    return this.names.map((name) => ({ name, step: ctx.step }));
  }

  /** Updates a series; returns the steps without improvement. */
  private update(key: string, value: number, higherBetter: boolean): number {
    const delta = this.p.delta as number;
    const s = this.series.get(key);
    if (!s) {
      this.series.set(key, { best: value, since: 0 });
      return 0;
    }
    const improvement = higherBetter ? value - s.best : s.best - value;
    if (improvement > delta) {
      s.best = value;
      s.since = 0;
    } else s.since++;
    return s.since;
  }

  invokeAtStep(ctx: StepContext, values: StepValues): StepResult {
    const pt = this.p.patience_train as number;
    const pv = this.p.patience_validation as number;
    let checked = 0;
    let fired: StepResult | null = null;
    const firedTensors: string[] = [];
    const observe = (key: string, tensor: string, value: number, isTrain: boolean, higherBetter: boolean) => {
      checked++;
      const since = this.update(key, value, higherBetter);
      const patience = isTrain ? pt : pv;
      if (since >= patience) {
        firedTensors.push(tensor);
        fired ??= {
          fired: true, tensor,
          details: `${isTrain ? "training" : "validation"} loss ${tensor} has not improved by more than delta ${fmt(this.p.delta as number)} `
            + `for ${since} saved steps (best ${fmt(this.series.get(key)!.best)}, patience_${isTrain ? "train" : "validation"} ${patience})`,
        };
      }
    };
    for (const pr of this.pairs) {
      const hb = higherIsBetter(pr.metric);
      const train = values.scalar(pr.train);
      if (train !== undefined && !Number.isNaN(train)) observe(pr.train, pr.train, train, true, hb);
      for (const v of pr.validation) {
        const val = values.scalar(v);
        if (val !== undefined && !Number.isNaN(val)) observe(v, v, val, false, hb);
      }
    }
    if (this.names.length) {
      const vals = this.names.map((n) => values.scalar(n)).filter((x): x is number => x !== undefined && !Number.isNaN(x));
      if (vals.length) observe(`\u0000${ctx.mode}`, this.names[0], mean(vals), ctx.mode === "TRAIN", false);
    }
    return { ...(fired ?? { fired: false }), tensors: firedTensors, checked };
  }

  missingRequirement(): string {
    return "no training/validation loss was found (XGBoost train-<metric>/validation-<metric>, or loss tensors in TRAIN and EVAL mode)";
  }
}

export const overtraining: RuleDefinition = {
  name: "Overtraining",
  source: "builtin",
  appliesToXgboost: true,
  description: "Fires when training or validation loss stops improving (early-stopping style).",
  parameters: [
    { name: "patience_train", type: "integer", default: 5, min: 1, description: "Saved steps without training-loss improvement before firing." },
    {
      name: "patience_validation", type: "integer", default: 10, min: 1,
      description: "Saved steps without validation-loss improvement before firing.",
    },
    { name: "delta", type: "number", default: 0.01, min: 0, description: "Minimum improvement that counts as a new best." },
  ],
  create: (p) => new Overtraining(p),
};
