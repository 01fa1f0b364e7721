/**
 * Debugger's deep-learning rules: VanishingGradient, ExplodingTensor, WeightUpdateRatio, DeadRelu,
 * SaturatedActivation, PoorWeightInitialization, and the application rules CheckInputImages and
 * NLPSequenceRatio (rulesconfig's DEEP_LEARNING and DEEP_LEARNING_APPLICATION groups; TensorVariance
 * is in tensors.ts). Names, parameters and defaults are SageMaker's; the AWS implementations are
 * closed (smdebug 0.5 moved them out of the open repository), so each reading is written next to the
 * code and in ../RULES.md with its evidence, inferred parts marked.
 */
import type { Mode, TensorData } from "../../format/tensor.js";
import { hasNumericElements } from "../../trials/tensor-stats.js";
import type {
  ParsedParameters, RequiredTensors, RuleDefinition, RuleInstance, StepContext, StepResult, StepValues, TensorRequest,
} from "../types.js";
import {
  COLLECTION_NAMES, SELECTOR_ALTERNATIVES, TENSOR_REGEX, describeSelector, fmt, gradientNames, inactiveUnitsPercent, percentiles, scalarOf, selectorOf,
  variance,
} from "./common.js";

/**
 * The tensors that meet a rule's condition at a step: every one is named (StepResult.tensors), the
 * first one's details are the status details.
 */
class Firings {
  private readonly names: string[] = [];
  private details: string | null = null;

  add(name: string, details: string): void {
    if (!this.names.includes(name)) this.names.push(name);
    this.details ??= details;
  }

  result(checked: number): StepResult {
    if (!this.names.length) return { fired: false, checked };
    const more = this.names.length > 1 ? `; ${this.names.length} tensors in all` : "";
    return { fired: true, tensor: this.names[0], tensors: [...this.names], checked, details: `${this.details}${more}` };
  }
}

/** A numeric, real value with elements, or null. */
function realValue(t: TensorData | undefined): TensorData | null {
  return t && hasNumericElements(t) && t.values!.length > 0 ? t : null;
}

// ---------------------------------------------------------------------------------------------
// VanishingGradient
// ---------------------------------------------------------------------------------------------

/**
 * Documented: fire when the mean of the absolute values of a gradient is below `threshold`; the
 * documented example reads it as reduction_value(step, "mean", abs=True) of each tensor of the
 * gradients collection, so a saved abs_mean reduction is used when the raw gradient was not saved.
 * INFERRED: any one gradient below the threshold fires; without a gradients collection, tensors
 * named gradient(s)/… are the gradients.
 */
class VanishingGradient implements RuleInstance {
  private names: string[] = [];
  constructor(private readonly p: ParsedParameters) {}

  requiredTensors(ctx: StepContext): RequiredTensors {
    this.names = gradientNames(ctx.trial, ctx.step);
    return this.names.map((name) => ({ name, step: ctx.step, reduction: "mean", abs: true }));
  }

  invokeAtStep(_ctx: StepContext, values: StepValues): StepResult {
    const threshold = this.p.threshold as number;
    const firings = new Firings();
    let checked = 0;
    for (const name of this.names) {
      const absMean = values.reduction(name, "mean", true);
      if (absMean === undefined || Number.isNaN(absMean)) continue;
      checked++;
      if (absMean < threshold) firings.add(name, `the mean absolute gradient of ${name} is ${fmt(absMean)}, below threshold ${fmt(threshold)}`);
    }
    return firings.result(checked);
  }

  missingRequirement(): string {
    return "no gradient was saved (include the gradients collection in the hook configuration)";
  }
}

export const vanishingGradient: RuleDefinition = {
  name: "VanishingGradient",
  source: "builtin",
  appliesToXgboost: false,
  description: "Fires when the mean of the absolute values of a gradient drops below threshold.",
  parameters: [
    { name: "threshold", type: "number", default: 1e-7, min: 0, description: "The value at which the gradient is determined to be vanishing." },
  ],
  create: (p) => new VanishingGradient(p),
};

// ---------------------------------------------------------------------------------------------
// ExplodingTensor
// ---------------------------------------------------------------------------------------------

/**
 * Documented: fire when a tensor has a non-finite value — NaN, or (unless only_nan) ±Infinity;
 * collection_names ∪ tensor_regex select the tensors, every tensor when neither is given.
 * INFERRED: a tensor saved only as reductions is checked through its saved reductions (a NaN or
 * infinite element makes its min, max, mean or norm non-finite).
 */
class ExplodingTensor implements RuleInstance {
  private plan: { name: string; raw: boolean; reductions: TensorRequest[] }[] = [];
  constructor(private readonly p: ParsedParameters) {}

  requiredTensors(ctx: StepContext): RequiredTensors {
    const sel = selectorOf(this.p);
    const names = sel.collections || sel.regex ? ctx.trial.select(sel, ctx.step) : ctx.trial.tensorNames({ step: ctx.step });
    this.plan = names.map((name) => {
      if (ctx.trial.hasValue(name, ctx.step)) return { name, raw: true, reductions: [] };
      const reductions = ctx.trial.savedReductions(name, ctx.step).map((r) => ({ name, step: ctx.step, reduction: r.reduction, abs: r.abs }));
      return { name, raw: false, reductions };
    });
    return this.plan.flatMap((pl) => (pl.raw ? [{ name: pl.name, step: ctx.step }] : pl.reductions));
  }

  invokeAtStep(ctx: StepContext, values: StepValues): StepResult {
    const onlyNan = this.p.only_nan as boolean;
    const exploded = (x: number) => Number.isNaN(x) || (!onlyNan && (x === Infinity || x === -Infinity));
    const firings = new Firings();
    let checked = 0;
    for (const pl of this.plan) {
      if (pl.raw) {
        const t = values.get(pl.name);
        if (!t?.values) continue;
        checked++;
        let nan = 0;
        let inf = 0;
        for (let i = 0; i < t.values.length; i++) {
          const x = t.values[i];
          if (Number.isNaN(x)) nan++;
          else if (x === Infinity || x === -Infinity) inf++;
        }
        if (nan > 0 || (!onlyNan && inf > 0)) {
          firings.add(pl.name, `${pl.name} has ${nan} NaN${onlyNan ? "" : ` and ${inf} infinite`} value(s) at step ${ctx.step}`);
        }
        continue;
      }
      for (const r of pl.reductions) {
        const x = values.reduction(pl.name, r.reduction!, !!r.abs);
        if (x === undefined) continue;
        checked++;
        if (exploded(x)) firings.add(pl.name, `the saved ${r.abs ? "abs_" : ""}${r.reduction} of ${pl.name} is ${x} at step ${ctx.step}`);
      }
    }
    return firings.result(checked);
  }

  missingRequirement(): string {
    return `no tensor matched ${describeSelector(this.p)}`;
  }
}

export const explodingTensor: RuleDefinition = {
  name: "ExplodingTensor",
  source: "builtin",
  appliesToXgboost: false,
  description: "Fires when a tensor has non-finite values: NaN, or ±Infinity unless only_nan.",
  parameters: [
    { ...COLLECTION_NAMES, description: "Comma-separated collection names whose tensors the rule inspects (default: every tensor)." },
    { ...TENSOR_REGEX, description: "Comma-separated regular expressions selecting the tensors to inspect (default: every tensor)." },
    { name: "only_nan", type: "boolean", default: false, description: "True to look for NaN only; False treats NaN and ±Infinity as exploding." },
  ],
  create: (p) => new ExplodingTensor(p),
};

// ---------------------------------------------------------------------------------------------
// WeightUpdateRatio
// ---------------------------------------------------------------------------------------------

/**
 * Documented: the ratio of the update of the weights to the weights, compared between step s and
 * the previous saved step (num_steps None) or a step ≥ s − num_steps; fire when it is above
 * large_threshold or below small_threshold; epsilon avoids dividing by zero; on TRAIN steps only
 * when the trial has TRAIN mode, else on GLOBAL steps.
 * INFERRED: ratio = ‖W_s − W_p‖₂ / (‖W_p‖₂ + epsilon) per tensor of the weights collection
 * (the update relative to the weights it was applied to); with num_steps, p is the earliest saved
 * step in [s − num_steps, s).
 */
class WeightUpdateRatio implements RuleInstance {
  private plan: { name: string; cur: number; prev: number; mode: Mode | null }[] = [];
  constructor(private readonly p: ParsedParameters) {}

  requiredTensors(ctx: StepContext): RequiredTensors {
    this.plan = [];
    const train = ctx.trial.modes().includes("TRAIN");
    if (train && ctx.mode !== "TRAIN") return [];
    const mode: Mode | null = train ? "TRAIN" : null;
    const cur = train ? ctx.modeStep : ctx.step;
    const numSteps = this.p.num_steps as number | null;
    const weights = ctx.trial.collectionNames().includes("weights") ? ctx.trial.select({ collections: ["weights"] }, cur, mode) : [];
    for (const name of weights) {
      if (!ctx.trial.hasValue(name, cur, mode)) continue;
      const steps = ctx.trial.tensorSteps(name, mode).filter((s) => s < cur && ctx.trial.hasValue(name, s, mode));
      const candidates = numSteps === null ? steps.slice(-1) : steps.filter((s) => s >= cur - numSteps);
      if (!candidates.length) continue;
      this.plan.push({ name, cur, prev: candidates[0], mode });
    }
    return this.plan.flatMap((pl) => [{ name: pl.name, step: pl.cur, mode: pl.mode }, { name: pl.name, step: pl.prev, mode: pl.mode }]);
  }

  invokeAtStep(_ctx: StepContext, values: StepValues): StepResult {
    const large = this.p.large_threshold as number;
    const small = this.p.small_threshold as number;
    const epsilon = this.p.epsilon as number;
    const firings = new Firings();
    let checked = 0;
    for (const pl of this.plan) {
      const cur = realValue(values.get(pl.name, pl.cur, { mode: pl.mode }));
      const prev = realValue(values.get(pl.name, pl.prev, { mode: pl.mode }));
      if (!cur || !prev || cur.values!.length !== prev.values!.length) continue;
      checked++;
      let update = 0;
      let base = 0;
      for (let i = 0; i < cur.values!.length; i++) {
        const d = cur.values![i] - prev.values![i];
        update += d * d;
        base += prev.values![i] * prev.values![i];
      }
      const ratio = Math.sqrt(update) / (Math.sqrt(base) + epsilon);
      const where = `${pl.mode ? `${pl.mode} step` : "step"} ${pl.cur} vs ${pl.prev}`;
      if (ratio > large) firings.add(pl.name, `the update ratio of ${pl.name} is ${fmt(ratio)} (${where}), above large_threshold ${fmt(large)}`);
      else if (ratio < small) firings.add(pl.name, `the update ratio of ${pl.name} is ${fmt(ratio)} (${where}), below small_threshold ${fmt(small)}`);
    }
    return firings.result(checked);
  }

  missingRequirement(): string {
    return "no weight of the weights collection was saved at two steps (include the weights collection in the hook configuration)";
  }
}

export const weightUpdateRatio: RuleDefinition = {
  name: "WeightUpdateRatio",
  source: "builtin",
  appliesToXgboost: false,
  description: "Fires when the ratio of the updates to the weights is above large_threshold or below small_threshold.",
  parameters: [
    {
      name: "num_steps", type: "integer", default: null, min: 1,
      description: "Compare the weights at step s with those at a step ≥ s − num_steps (default: the previous saved step).",
    },
    { name: "large_threshold", type: "number", default: 10.0, description: "The largest ratio of updates to weights before the rule fires." },
    { name: "small_threshold", type: "number", default: 1e-8, description: "The smallest ratio of updates to weights; below it the rule fires." },
    { name: "epsilon", type: "number", default: 1e-9, min: 0, description: "A small constant that keeps the ratio from dividing by zero." },
  ],
  validate: (p) => ((p.small_threshold as number) > (p.large_threshold as number)
    ? `small_threshold (${p.small_threshold}) must not exceed large_threshold (${p.large_threshold})` : null),
  create: (p) => new WeightUpdateRatio(p),
};

// ---------------------------------------------------------------------------------------------
// DeadRelu and SaturatedActivation: inactive units of a layer
// ---------------------------------------------------------------------------------------------

/**
 * Documented: a ReLU is dead when it is active (output > 0) less than threshold_inactivity % of
 * the time; fire when more than threshold_layer % of a layer's ReLUs are dead.
 * INFERRED: per tensor and step; axis 0 holds the samples of the batch and every other position is
 * a unit (see inactiveUnitsPercent); the default tensor_regex is rulesconfig's relu_output collection.
 */
class DeadRelu implements RuleInstance {
  private names: string[] = [];
  constructor(private readonly p: ParsedParameters) {}

  requiredTensors(ctx: StepContext): RequiredTensors {
    this.names = ctx.trial.select(selectorOf(this.p), ctx.step).filter((n) => ctx.trial.hasValue(n, ctx.step));
    return this.names.map((name) => ({ name, step: ctx.step }));
  }

  invokeAtStep(ctx: StepContext, values: StepValues): StepResult {
    const inactivity = this.p.threshold_inactivity as number;
    const layer = this.p.threshold_layer as number;
    const firings = new Firings();
    let checked = 0;
    for (const name of this.names) {
      const t = realValue(values.get(name));
      if (!t) continue;
      checked++;
      const dead = inactiveUnitsPercent(t, (x) => x > 0, inactivity);
      if (dead > layer) {
        firings.add(name, `${fmt(dead)}% of the ReLUs of ${name} are dead at step ${ctx.step} (active < ${fmt(inactivity)}% of the samples; threshold_layer ${fmt(layer)}%)`);
      }
    }
    return firings.result(checked);
  }

  missingRequirement(): string {
    return `no tensor matched ${describeSelector(this.p)} (save the ReLU outputs, e.g. the relu_output collection)`;
  }
}

export const deadRelu: RuleDefinition = {
  name: "DeadRelu",
  source: "builtin",
  appliesToXgboost: false,
  description: "Fires when more than threshold_layer percent of a layer's ReLUs are dead (active less than threshold_inactivity percent of the time).",
  parameters: [
    { ...TENSOR_REGEX, default: [".*relu_output"], description: "Comma-separated regular expressions selecting the ReLU output tensors." },
    { name: "threshold_inactivity", type: "number", default: 1.0, min: 0, max: 100, description: "Percent of activity below which a ReLU is dead." },
    { name: "threshold_layer", type: "number", default: 50.0, min: 0, max: 100, description: "Percent of dead ReLUs in a layer above which the rule fires." },
  ],
  validate: (p) => (p.tensor_regex ? null : "give tensor_regex"),
  create: (p) => new DeadRelu(p),
};

/**
 * Documented: a tanh or sigmoid node is saturated when its input stays outside (min, max) of
 * threshold_tanh / threshold_sigmoid — active (inside) less than threshold_inactivity % of the
 * time; fire when more than threshold_layer % of a layer's nodes are saturated.
 * INFERRED: tensors whose name contains "tanh" use threshold_tanh, "sigmoid" threshold_sigmoid
 * (others are skipped); units as for DeadRelu; the bounds are exclusive.
 */
class SaturatedActivation implements RuleInstance {
  private names: string[] = [];
  constructor(private readonly p: ParsedParameters) {}

  requiredTensors(ctx: StepContext): RequiredTensors {
    this.names = ctx.trial.select(selectorOf(this.p), ctx.step)
      .filter((n) => /tanh|sigmoid/i.test(n) && ctx.trial.hasValue(n, ctx.step));
    return this.names.map((name) => ({ name, step: ctx.step }));
  }

  invokeAtStep(ctx: StepContext, values: StepValues): StepResult {
    const inactivity = this.p.threshold_inactivity as number;
    const layer = this.p.threshold_layer as number;
    const firings = new Firings();
    let checked = 0;
    for (const name of this.names) {
      const t = realValue(values.get(name));
      if (!t) continue;
      checked++;
      const kind = /tanh/i.test(name) ? "tanh" : "sigmoid";
      const [lo, hi] = this.p[kind === "tanh" ? "threshold_tanh" : "threshold_sigmoid"] as number[];
      const saturated = inactiveUnitsPercent(t, (x) => x > lo && x < hi, inactivity);
      if (saturated > layer) {
        firings.add(name, `${fmt(saturated)}% of the ${kind} nodes of ${name} are saturated at step ${ctx.step} (input outside (${lo}, ${hi}); threshold_layer ${fmt(layer)}%)`);
      }
    }
    return firings.result(checked);
  }

  missingRequirement(): string {
    return `no tanh or sigmoid input tensor matched ${describeSelector(this.p)}`;
  }
}

export const saturatedActivation: RuleDefinition = {
  name: "SaturatedActivation",
  source: "builtin",
  appliesToXgboost: false,
  description: "Fires when more than threshold_layer percent of a tanh or sigmoid layer's nodes are saturated.",
  parameters: [
    COLLECTION_NAMES,
    { ...TENSOR_REGEX, default: [".*tanh_input", ".*sigmoid_input"], shownDefault: ".*tanh_input, .*sigmoid_input" },
    { name: "threshold_tanh", type: "range", default: [-9.4999, 9.4999], description: "(min, max): tanh inputs outside it are saturated." },
    { name: "threshold_sigmoid", type: "range", default: [-23, 16.99999], description: "(min, max): sigmoid inputs outside it are saturated." },
    { name: "threshold_inactivity", type: "number", default: 1.0, min: 0, max: 100, description: "Percent of activity below which a node is saturated." },
    { name: "threshold_layer", type: "number", default: 50.0, min: 0, max: 100, description: "Percent of saturated nodes in a layer above which the rule fires." },
  ],
  requiredOneOf: [SELECTOR_ALTERNATIVES],
  create: (p) => new SaturatedActivation(p),
};

// ---------------------------------------------------------------------------------------------
// PoorWeightInitialization
// ---------------------------------------------------------------------------------------------

/**
 * Documented: over the first `steps` steps, fire when (a) the ratio between the largest and the
 * smallest variance of the activation inputs across layers exceeds `threshold`, (b) the smallest
 * difference between the 5th and 95th percentiles of a gradient's distribution is below
 * distribution_range, or (c) the loss has not decreased for `patience` steps.
 * INFERRED: "the first steps" are the first `steps` training steps saved (TRAIN, or GLOBAL without
 * modes), since rulesconfig saves relu_input every 500 steps; (a) needs two or more layers; (b)
 * uses numpy's linear percentiles of each gradient's finite elements; (c) counts analyzed steps
 * since the lowest loss of the losses collection.
 */
class PoorWeightInitialization implements RuleInstance {
  private analyzed = 0;
  private bestLoss = Infinity;
  private sinceBest = 0;
  private activations: string[] = [];
  private gradients: string[] = [];
  private losses: string[] = [];
  private active = false;
  constructor(private readonly p: ParsedParameters) {}

  requiredTensors(ctx: StepContext): RequiredTensors {
    this.active = false;
    const training = ctx.trial.modes().includes("TRAIN") ? "TRAIN" : "GLOBAL";
    if (ctx.mode !== training || this.analyzed >= (this.p.steps as number)) return [];
    this.active = true;
    const at = (names: string[]) => names.filter((n) => ctx.trial.hasValue(n, ctx.step));
    this.activations = at(ctx.trial.select({ regex: this.p.activation_inputs_regex as string[] }, ctx.step));
    this.gradients = at(gradientNames(ctx.trial, ctx.step));
    this.losses = ctx.trial.collectionNames().includes("losses") ? at(ctx.trial.select({ collections: ["losses"] }, ctx.step)) : [];
    return [...this.activations, ...this.gradients, ...this.losses].map((name) => ({ name, step: ctx.step }));
  }

  invokeAtStep(ctx: StepContext, values: StepValues): StepResult {
    if (!this.active) return { fired: false, checked: 0 };
    this.analyzed++;
    const firings = new Firings();
    let checked = 0;
    const variances: { name: string; v: number }[] = [];
    for (const name of this.activations) {
      const t = realValue(values.get(name));
      if (t) variances.push({ name, v: variance(t.values!) });
    }
    if (variances.length >= 2) {
      checked++;
      const lo = variances.reduce((a, b) => (b.v < a.v ? b : a));
      const hi = variances.reduce((a, b) => (b.v > a.v ? b : a));
      const ratio = hi.v / lo.v;
      if (ratio > (this.p.threshold as number) || (lo.v === 0 && hi.v > 0)) {
        const details = `the activation inputs' variances span a ratio of ${fmt(ratio)} across layers (${hi.name} ${fmt(hi.v)}, ${lo.name} ${fmt(lo.v)}), above threshold ${fmt(this.p.threshold as number)}`;
        firings.add(hi.name, details);
        firings.add(lo.name, details);
      }
    }
    let narrowest: { name: string; range: number } | null = null;
    for (const name of this.gradients) {
      const t = realValue(values.get(name));
      if (!t) continue;
      const [p5, p95] = percentiles(t.values!, [5, 95]);
      if (!Number.isFinite(p95 - p5)) continue;
      checked++;
      if (!narrowest || p95 - p5 < narrowest.range) narrowest = { name, range: p95 - p5 };
    }
    if (narrowest && narrowest.range < (this.p.distribution_range as number)) {
      firings.add(narrowest.name, `the 5th to 95th percentile range of ${narrowest.name} is ${fmt(narrowest.range)} at step ${ctx.step}, below distribution_range ${fmt(this.p.distribution_range as number)}`);
    }
    const loss = this.losses.map((n) => ({ n, v: scalarOf(values.get(n)) })).find((x) => x.v !== undefined && Number.isFinite(x.v));
    if (loss) {
      checked++;
      if (loss.v! < this.bestLoss) {
        this.bestLoss = loss.v!;
        this.sinceBest = 0;
      } else if (++this.sinceBest >= (this.p.patience as number)) {
        firings.add(loss.n, `${loss.n} has not decreased for ${this.sinceBest} analyzed steps (best ${fmt(this.bestLoss)}; patience ${this.p.patience})`);
      }
    }
    return firings.result(checked);
  }

  missingRequirement(): string {
    return "no activation input, gradient or loss was saved in the first steps (save relu_input, gradients and losses)";
  }
}

export const poorWeightInitialization: RuleDefinition = {
  name: "PoorWeightInitialization",
  source: "builtin",
  appliesToXgboost: false,
  description: "Fires when, over the first steps, activation input variances differ too much across layers, a gradient's distribution is too narrow, or the loss does not decrease.",
  parameters: [
    {
      name: "activation_inputs_regex", type: "regexList", default: [".*relu_input"],
      description: "Comma-separated regular expressions selecting the activation input tensors.",
    },
    { name: "threshold", type: "number", default: 10.0, min: 0, description: "Largest ratio between the largest and smallest variance of activation inputs across layers." },
    { name: "distribution_range", type: "number", default: 0.001, min: 0, description: "Smallest difference between the 5th and 95th percentiles of a gradient." },
    { name: "patience", type: "integer", default: 5, min: 1, description: "Steps to wait until the loss is considered no longer decreasing." },
    { name: "steps", type: "integer", default: 10, min: 1, description: "The number of (first) steps the rule analyzes." },
  ],
  create: (p) => new PoorWeightInitialization(p),
};

// ---------------------------------------------------------------------------------------------
// CheckInputImages
// ---------------------------------------------------------------------------------------------

/**
 * Documented: fire when the mean of the input images differs from 0 by more than threshold_mean,
 * once threshold_samples images were seen; `channel` is the position of the color channel.
 * INFERRED: per input tensor, the mean of each channel accumulates over the evaluated steps (axis
 * 0 counts the images); fire when any channel's |mean| > threshold_mean; `regex` is searched like
 * tensor_regex.
 */
class CheckInputImages implements RuleInstance {
  private acc = new Map<string, { sums: Float64Array; counts: Float64Array; images: number }>();
  private names: string[] = [];
  constructor(private readonly p: ParsedParameters) {}

  requiredTensors(ctx: StepContext): RequiredTensors {
    this.names = ctx.trial.select({ regex: this.p.regex as string[] }, ctx.step).filter((n) => ctx.trial.hasValue(n, ctx.step));
    return this.names.map((name) => ({ name, step: ctx.step }));
  }

  invokeAtStep(ctx: StepContext, values: StepValues): StepResult {
    const channel = this.p.channel as number;
    const firings = new Firings();
    let checked = 0;
    for (const name of this.names) {
      const t = realValue(values.get(name));
      if (!t || t.shape.length <= channel) continue;
      checked++;
      const channels = t.shape[channel];
      const stride = t.shape.slice(channel + 1).reduce((a, b) => a * b, 1);
      let a = this.acc.get(name);
      if (!a || a.sums.length !== channels) this.acc.set(name, (a = { sums: new Float64Array(channels), counts: new Float64Array(channels), images: 0 }));
      const v = t.values!;
      for (let i = 0; i < v.length; i++) {
        if (!Number.isFinite(v[i])) continue;
        const c = Math.floor(i / stride) % channels;
        a.sums[c] += v[i];
        a.counts[c]++;
      }
      a.images += t.shape[0];
      if (a.images < (this.p.threshold_samples as number)) continue;
      for (let c = 0; c < channels; c++) {
        const mean = a.counts[c] ? a.sums[c] / a.counts[c] : 0;
        if (Math.abs(mean) > (this.p.threshold_mean as number)) {
          firings.add(name, `the mean of channel ${c} of ${name} over ${a.images} images is ${fmt(mean)}, more than threshold_mean ${fmt(this.p.threshold_mean as number)} from 0`);
        }
      }
    }
    return firings.result(checked);
  }

  missingRequirement(): string {
    return `no input tensor matched regex ${this.p.regex} (save the input_image collection)`;
  }
}

export const checkInputImages: RuleDefinition = {
  name: "CheckInputImages",
  source: "builtin",
  appliesToXgboost: false,
  description: "Fires when the mean of the input images differs from zero by more than threshold_mean (images not normalized).",
  parameters: [
    { name: "threshold_mean", type: "number", default: 0.2, min: 0, description: "How far from 0 the mean of the input data may be." },
    { name: "threshold_samples", type: "integer", default: 500, min: 1, description: "Images to see before the rule can fire." },
    { name: "regex", type: "regexList", default: [".*hybridsequential0_input_0"], description: "Regular expression naming the input data tensor." },
    { name: "channel", type: "integer", default: 1, min: 0, description: "The position of the color channel in the input tensor." },
  ],
  validate: (p) => (p.regex ? null : "give regex"),
  create: (p) => new CheckInputImages(p),
};

// ---------------------------------------------------------------------------------------------
// NLPSequenceRatio
// ---------------------------------------------------------------------------------------------

/**
 * Documented: the percentage of given tokens (token_values) in the input sequences; fire when a
 * token's percentage is above its threshold (token_thresholds_percent, in the same order).
 * INFERRED: per tensor and step, over all its elements; thresholds beyond the tokens are unused
 * (the defaults give one token and two thresholds).
 */
class NlpSequenceRatio implements RuleInstance {
  private names: string[] = [];
  constructor(private readonly p: ParsedParameters) {}

  requiredTensors(ctx: StepContext): RequiredTensors {
    this.names = ctx.trial.select(selectorOf(this.p), ctx.step).filter((n) => ctx.trial.hasValue(n, ctx.step));
    return this.names.map((name) => ({ name, step: ctx.step }));
  }

  invokeAtStep(ctx: StepContext, values: StepValues): StepResult {
    const tokens = this.p.token_values as number[];
    const thresholds = this.p.token_thresholds_percent as number[];
    const firings = new Firings();
    let checked = 0;
    for (const name of this.names) {
      const t = realValue(values.get(name));
      if (!t) continue;
      checked++;
      const v = t.values!;
      for (let k = 0; k < tokens.length; k++) {
        let count = 0;
        for (let i = 0; i < v.length; i++) if (v[i] === tokens[k]) count++;
        const pct = (100 * count) / v.length;
        if (pct > thresholds[k]) firings.add(name, `token ${tokens[k]} is ${fmt(pct)}% of ${name} at step ${ctx.step}, above ${fmt(thresholds[k])}%`);
      }
    }
    return firings.result(checked);
  }

  missingRequirement(): string {
    return `no input sequence tensor matched ${describeSelector(this.p)} (save the input_sequence collection)`;
  }
}

export const nlpSequenceRatio: RuleDefinition = {
  name: "NLPSequenceRatio",
  source: "builtin",
  appliesToXgboost: false,
  description: "Fires when given tokens (e.g. padding) make up more than their threshold percent of the input sequences.",
  parameters: [
    { ...TENSOR_REGEX, default: [".*embedding0_input_0"], description: "Comma-separated regular expressions selecting the input sequence tensors." },
    { name: "token_values", type: "numberList", default: [0], description: "Comma-separated token values, e.g. \"3, 0\"." },
    {
      name: "token_thresholds_percent", type: "numberList", default: [50, 50], min: 0, max: 100,
      description: "Comma-separated thresholds (percent), one per token value, in the same order.",
    },
  ],
  validate: (p) => {
    if (!p.tensor_regex) return "give tensor_regex";
    const tokens = (p.token_values as number[] | null) ?? [];
    const thresholds = (p.token_thresholds_percent as number[] | null) ?? [];
    if (!tokens.length) return "give token_values";
    return thresholds.length < tokens.length
      ? `token_thresholds_percent gives ${thresholds.length} threshold(s) for ${tokens.length} token value(s)` : null;
  },
  create: (p) => new NlpSequenceRatio(p),
};
