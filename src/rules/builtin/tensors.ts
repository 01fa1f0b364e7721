/** Per-tensor rules: AllZero, UnchangedTensor, TensorVariance, SimilarAcrossRuns (spec §8.3). */
import type {
  ParsedParameters, RequiredTensors, RuleDefinition, RuleInstance, StepContext, StepResult, StepValues,
} from "../types.js";
import {
  COLLECTION_NAMES, SELECTOR_ALTERNATIVES, TENSOR_REGEX, allclose, describeSelector, fmt, numeric, selectorOf, variance,
} from "./common.js";

// ---------------------------------------------------------------------------------------------
// AllZero
// ---------------------------------------------------------------------------------------------

/** Reading (INFERRED detail): per tensor per step, fire when 100·zeros/size ≥ threshold. */
class AllZero implements RuleInstance {
  private names: string[] = [];
  constructor(private readonly p: ParsedParameters) {}

  requiredTensors(ctx: StepContext): RequiredTensors {
    this.names = ctx.trial.select(selectorOf(this.p), ctx.step);
    return this.names.map((name) => ({ name, step: ctx.step }));
  }

  invokeAtStep(_ctx: StepContext, values: StepValues): StepResult {
    const threshold = this.p.threshold as number;
    let checked = 0;
    let first: { name: string; pct: number } | null = null;
    const firedTensors: string[] = [];
    for (const name of this.names) {
      const v = numeric(values.get(name));
      if (!v || v.length === 0) continue;
      checked++;
      let zeros = 0;
      for (let i = 0; i < v.length; i++) if (v[i] === 0) zeros++;
      const pct = (100 * zeros) / v.length;
      if (pct >= threshold) {
        firedTensors.push(name);
        first ??= { name, pct };
      }
    }
    if (!first) return { fired: false, checked };
    return {
      fired: true, tensor: first.name, tensors: firedTensors, checked,
      details: `${fmt(first.pct)}% of the values of ${first.name} are zero (threshold ${fmt(threshold)}%)`
        + (firedTensors.length > 1 ? `; ${firedTensors.length} tensors in all` : ""),
    };
  }

  missingRequirement(): string {
    return `no numeric tensor matched ${describeSelector(this.p)}`;
  }
}

export const allZero: RuleDefinition = {
  name: "AllZero",
  source: "builtin",
  appliesToXgboost: true,
  description: "Fires when all (or threshold percent) of a tensor's values are zero.",
  parameters: [
    COLLECTION_NAMES,
    TENSOR_REGEX,
    {
      name: "threshold", type: "number", default: 100, min: 0, max: 100,
      description: "Percentage of zero values in a tensor that fires the rule.",
    },
  ],
  requiredOneOf: [SELECTOR_ALTERNATIVES],
  create: (p) => new AllZero(p),
};

// ---------------------------------------------------------------------------------------------
// UnchangedTensor
// ---------------------------------------------------------------------------------------------

/**
 * Documented: over the last num_steps available steps of a tensor (up to the current step), fire
 * when every earlier value is numpy.allclose to the current one.
 */
class UnchangedTensor implements RuleInstance {
  private plan: { name: string; steps: number[] }[] = [];
  constructor(private readonly p: ParsedParameters) {}

  requiredTensors(ctx: StepContext): RequiredTensors {
    const n = this.p.num_steps as number;
    this.plan = [];
    for (const name of ctx.trial.select(selectorOf(this.p), ctx.step)) {
      const steps = ctx.trial.lastSteps(name, ctx.step, n);
      this.plan.push({ name, steps: steps.length >= n ? steps : [] });
    }
    return this.plan.flatMap((pl) => pl.steps.map((step) => ({ name: pl.name, step })));
  }

  invokeAtStep(ctx: StepContext, values: StepValues): StepResult {
    const rtol = this.p.rtol as number;
    const atol = this.p.atol as number;
    const equalNan = this.p.equal_nan as boolean;
    let checked = 0;
    for (const pl of this.plan) {
      checked++; // the tensor is there, even when it has too few steps yet
      if (!pl.steps.length) continue;
      const cur = values.get(pl.name, ctx.step);
      if (!cur) continue;
      const same = pl.steps.every((s) => {
        const v = values.get(pl.name, s);
        return v !== undefined && allclose(v, cur, rtol, atol, equalNan);
      });
      if (same) {
        return {
          fired: true, tensor: pl.name, checked,
          details: `${pl.name} did not change over steps ${pl.steps.join(", ")} (rtol ${rtol}, atol ${atol})`,
        };
      }
    }
    return { fired: false, checked };
  }

  missingRequirement(): string {
    return `no tensor matched ${describeSelector(this.p)}`;
  }
}

export const unchangedTensor: RuleDefinition = {
  name: "UnchangedTensor",
  source: "builtin",
  appliesToXgboost: true,
  description: "Fires when a tensor is unchanged (numpy.allclose) over its last num_steps saved steps.",
  parameters: [
    COLLECTION_NAMES,
    TENSOR_REGEX,
    { name: "num_steps", type: "integer", default: 3, min: 2, description: "Number of saved steps compared (the current one included)." },
    { name: "rtol", type: "number", default: 1e-5, min: 0, description: "Relative tolerance of numpy.allclose." },
    { name: "atol", type: "number", default: 1e-8, min: 0, description: "Absolute tolerance of numpy.allclose." },
    { name: "equal_nan", type: "boolean", default: false, description: "Whether NaNs compare equal." },
  ],
  requiredOneOf: [SELECTOR_ALTERNATIVES],
  create: (p) => new UnchangedTensor(p),
};

// ---------------------------------------------------------------------------------------------
// TensorVariance
// ---------------------------------------------------------------------------------------------

/** Reading (INFERRED detail): population variance (numpy.var) of each tensor's elements at the step. */
class TensorVariance implements RuleInstance {
  private names: string[] = [];
  constructor(private readonly p: ParsedParameters) {}

  requiredTensors(ctx: StepContext): RequiredTensors {
    this.names = ctx.trial.select(selectorOf(this.p), ctx.step);
    return this.names.map((name) => ({ name, step: ctx.step }));
  }

  invokeAtStep(_ctx: StepContext, values: StepValues): StepResult {
    const max = this.p.max_threshold as number | null;
    const min = this.p.min_threshold as number | null;
    let checked = 0;
    for (const name of this.names) {
      const v = numeric(values.get(name));
      if (!v || v.length === 0) continue;
      checked++;
      const var_ = variance(v);
      if (max !== null && var_ > max) {
        return { fired: true, tensor: name, checked, details: `variance of ${name} is ${fmt(var_)}, above max_threshold ${fmt(max)}` };
      }
      if (min !== null && var_ < min) {
        return { fired: true, tensor: name, checked, details: `variance of ${name} is ${fmt(var_)}, below min_threshold ${fmt(min)}` };
      }
    }
    return { fired: false, checked };
  }

  missingRequirement(): string {
    return `no numeric tensor matched ${describeSelector(this.p)}`;
  }
}

export const tensorVariance: RuleDefinition = {
  name: "TensorVariance",
  source: "builtin",
  appliesToXgboost: true,
  description: "Fires when a tensor's variance is above max_threshold or below min_threshold.",
  parameters: [
    COLLECTION_NAMES,
    TENSOR_REGEX,
    { name: "max_threshold", type: "number", default: null, description: "Upper bound of the variance." },
    { name: "min_threshold", type: "number", default: null, description: "Lower bound of the variance." },
  ],
  requiredOneOf: [SELECTOR_ALTERNATIVES, ["max_threshold", "min_threshold"]],
  validate: (p) => {
    if (p.max_threshold !== null && p.min_threshold !== null && (p.min_threshold as number) > (p.max_threshold as number)) {
      return `min_threshold (${p.min_threshold}) must not exceed max_threshold (${p.max_threshold})`;
    }
    return null;
  },
  create: (p) => new TensorVariance(p),
};

// ---------------------------------------------------------------------------------------------
// SimilarAcrossRuns
// ---------------------------------------------------------------------------------------------

/**
 * Documented: fire when the base trial's tensors differ from another trial's at the same step.
 * INFERRED: same shape and numpy.allclose with numpy's default tolerances (rtol 1e-5, atol 1e-8,
 * NaN equal to NaN); tensors or steps present in only one trial are not compared.
 */
class SimilarAcrossRuns implements RuleInstance {
  private names: { trial: number; name: string }[] = [];
  constructor(private readonly p: ParsedParameters) {}

  requiredTensors(ctx: StepContext): RequiredTensors {
    this.names = [];
    const sel = selectorOf(this.p);
    const base = sel.collections || sel.regex ? ctx.trial.select(sel, ctx.step) : ctx.trial.tensorNames({ step: ctx.step });
    const reqs = [];
    for (let i = 0; i < ctx.otherTrials.length; i++) {
      const other = ctx.otherTrials[i];
      const there = new Set(other.tensorNames({ step: ctx.step }));
      if (there.size === 0 && ctx.live && !ctx.trial.trainingEnded && !other.trainingEnded) {
        return { defer: true, reason: `waiting for step ${ctx.step} of ${other.path}` };
      }
      for (const name of base) {
        if (!there.has(name)) continue;
        this.names.push({ trial: i + 1, name });
        reqs.push({ name, step: ctx.step }, { name, step: ctx.step, trial: i + 1 });
      }
    }
    return reqs;
  }

  invokeAtStep(ctx: StepContext, values: StepValues): StepResult {
    let checked = 0;
    for (const { trial, name } of this.names) {
      const a = values.get(name);
      const b = values.get(name, ctx.step, { trial });
      if (!a || !b) continue;
      checked++;
      if (!allclose(a, b, 1e-5, 1e-8, true)) {
        return {
          fired: true, tensor: name, checked,
          details: `${name} differs from ${ctx.otherTrials[trial - 1].path} at step ${ctx.step}`
            + (a.shape.join("x") !== b.shape.join("x") ? ` (shape [${a.shape}] vs [${b.shape}])` : ""),
        };
      }
    }
    return { fired: false, checked };
  }

  missingRequirement(): string {
    return `no tensor (${describeSelector(this.p)}) was saved at a common step in both trials`;
  }
}

export const similarAcrossRuns: RuleDefinition = {
  name: "SimilarAcrossRuns",
  source: "builtin",
  appliesToXgboost: true,
  description: "Fires when tensors differ from those of other trials at the same step.",
  parameters: [
    {
      name: "other_trials", type: "list", default: null, required: true,
      description: "Comma-separated paths (s3://… or data-dir relative) of the trials to compare with; "
        + "SageMaker's other_trial_0, other_trial_1, … parameters are accepted too.",
    },
    COLLECTION_NAMES,
    TENSOR_REGEX,
  ],
  create: (p) => new SimilarAcrossRuns(p),
};
