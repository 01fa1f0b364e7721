import type { GraphQLResolveInfo } from "graphql";
import { Arg, Args, Ctx, FieldResolver, Float, Info, Int, Resolver, Root } from "type-graphql";
import { SeriesArgs, StepRangeArgs, WorkerStepsArgs } from "../inputs.js";
import type { Context } from "../context.js";
import {
  globalStepsOf, HistogramSeries, histogramArgs, ReductionValue, SavedReduction, Series, splitNonFinite, StatsSeries, Tensor,
  TensorValue,
} from "../types/trial.types.js";
import { Mode, Reduction, TensorStat } from "../enums.js";
import type { Mode as ModeName, TensorData } from "../../format/tensor.js";
import type { ReductionName } from "../../format/reductions.js";
import { inRange, type Trial as DomainTrial } from "../../trials/trial.js";
import type { StatKey } from "../../trials/tensor-stats.js";
import { minMaxDownsample } from "../../trials/downsample.js";
import { TrialgraphError } from "../../errors.js";
import { COLUMN_VALUE_BYTES } from "../../trials/budget.js";
import { checkedFloatList, checkedIntList } from "../checked-lists.js";
import { packedSelection, TensorValues } from "../packed-values.js";

/** Charges the request's budget for one returned list of `elements` numbers (elements and memory). */
function charge(ctx: Context, elements: number): void {
  ctx.budget.charge(1, elements);
}

/** The decoded value at a (mode) step. */
function toTensorValue(trial: DomainTrial, name: string, step: number, mode: ModeName | null, worker: string | null, v: TensorData): TensorValue {
  return new TensorValue(trial, name, globalStepsOf(trial, mode, [step])[0], worker, v);
}

function checkMaxPoints(maxPoints: number | null): void {
  if (maxPoints != null && maxPoints < 2) throw new TrialgraphError("BAD_USER_INPUT", "maxPoints must be at least 2", { field: "maxPoints" });
}

/** A plot-ready Series of (steps, values): the range sliced, maxPoints applied, NaN/±Infinity split out. */
function toSeries(
  ctx: Context,
  trial: DomainTrial,
  of: { name: string; mode: ModeName | null; worker: string | null },
  all: { steps: number[]; values: Float64Array },
  range: { fromStep: number | null; toStep: number | null; maxPoints: number | null },
): Series {
  // The range is a slice of the whole series (steps ascending).
  let lo = 0;
  let hi = all.steps.length;
  if (range.fromStep != null) while (lo < hi && all.steps[lo] < range.fromStep) lo++;
  if (range.toStep != null) while (hi > lo && all.steps[hi - 1] > range.toStep) hi--;
  const whole = lo === 0 && hi === all.steps.length;
  const steps = whole ? all.steps : all.steps.slice(lo, hi);
  const values = whole ? all.values : all.values.subarray(lo, hi);
  const keep = range.maxPoints ? minMaxDownsample(values, range.maxPoints) : null;
  const picked = keep ? keep.map((i) => values[i]) : values;
  charge(ctx, picked.length);
  // A whole series (cached by the trial) is split once, and its lists are answered as they are from
  // then on (checked-lists.ts); they are only read afterwards.
  const split = keep || !whole ? null : splitOnce(all.values, all.steps);
  const { finite, nonFinite } = split ?? splitNonFinite(picked);
  const s = new Series();
  s.trial = trial;
  s.tensorName = of.name;
  s.mode = of.mode ?? "GLOBAL";
  s.worker = of.worker;
  s.steps = split ? split.steps : keep ? keep.map((i) => steps[i]) : steps;
  s.values = finite;
  s.nonFinite = nonFinite;
  s.sampled = keep !== null && keep.length < steps.length;
  s.totalPoints = steps.length;
  return s;
}

type Split = ReturnType<typeof splitNonFinite> & { steps: number[] };

const splits = new WeakMap<Float64Array, Split>();

/** The split of a cached series, with its steps: the same arrays each time, checked once. */
function splitOnce(values: Float64Array, steps: number[]): Split {
  let split = splits.get(values);
  // The trial lists the steps afresh each time; the same values come with the same steps.
  if (!split || !sameSteps(split.steps, steps)) {
    const { finite, nonFinite } = splitNonFinite(values);
    split = { finite: checkedFloatList(finite), nonFinite, steps: checkedIntList(steps) };
    splits.set(values, split);
  }
  return split;
}

function sameSteps(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

@Resolver(() => Tensor)
export class TensorResolver {
  @FieldResolver(() => [Int], { description: "Steps at which it (or a reduction of it) was saved; mode steps for TRAIN, EVAL or PREDICT" })
  steps(
    @Root() t: Tensor,
    @Arg("mode", () => Mode, { nullable: true }) mode: ModeName | null,
    @Arg("worker", () => String, { nullable: true, description: "Only the steps this worker wrote" }) worker: string | null,
  ): number[] {
    t.trial.checkWorker(worker);
    return t.trial.tensorSteps(t.name, mode, { worker });
  }

  @FieldResolver(() => TensorValue, { nullable: true, description: "A missing step is an error with code TENSOR_UNAVAILABLE_FOR_STEP" })
  async value(
    @Root() t: Tensor,
    @Arg("step", () => Int) step: number,
    @Arg("mode", () => Mode, { nullable: true }) mode: ModeName | null,
    @Arg("worker", () => String, { nullable: true }) worker: string | null,
    @Ctx() ctx: Context,
  ): Promise<TensorValue> {
    // Read, decoded and charged to the request's budget by the loader.
    const v = await ctx.values.load({ trial: t.trial, name: t.name, step, mode, worker });
    return toTensorValue(t.trial, t.name, step, mode, worker, v);
  }

  @FieldResolver(() => [TensorValue])
  values(
    @Root() t: Tensor,
    @Args(() => WorkerStepsArgs) { fromStep = null, toStep = null, mode = null, worker = null }: WorkerStepsArgs,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ): Promise<Iterable<TensorValue>> {
    // Not async: a refusal below is thrown at once, which costs execution much less than a rejected
    // promise when a request over budget is refused for thousands of tensors.
    // A finished trial with an unreadable index file in the range: the answer would silently miss that step.
    const damaged = t.trial.corruptStepError(mode && mode !== "GLOBAL" ? null : fromStep, mode && mode !== "GLOBAL" ? null : toStep);
    if (damaged) throw damaged;
    t.trial.checkWorker(worker);
    // Charged as each tensor's steps are listed, not when the batch is read: a query of many
    // whole-trial aliases stops at the budget's worth of tensors instead of listing every one first.
    if (ctx.budget.exhausted) throw ctx.budget.error();
    const steps = inRange(t.trial.tensorSteps(t.name, mode, { worker }), fromStep, toStep);
    ctx.budget.charge(0, 0, COLUMN_VALUE_BYTES * steps.length);
    return ctx.stepValues.load({ trial: t.trial, name: t.name, steps, mode, worker })
      .then((column) => new TensorValues(t.trial, t.name, steps, mode, worker, column, packedSelection(info)));
  }

  @FieldResolver(() => Series, { description: "For scalar tensors: parallel arrays; maxPoints keeps the first, the last and each bucket's extremes" })
  async series(
    @Root() t: Tensor,
    @Args(() => SeriesArgs) { fromStep = null, toStep = null, mode = null, maxPoints = null, worker = null }: SeriesArgs,
    @Ctx() ctx: Context,
  ): Promise<Series> {
    checkMaxPoints(maxPoints);
    const damaged = t.trial.corruptStepError(mode && mode !== "GLOBAL" ? null : fromStep, mode && mode !== "GLOBAL" ? null : toStep);
    if (damaged) throw damaged;
    t.trial.checkWorker(worker);
    const full = await ctx.series.load({ trial: t.trial, name: t.name, mode, worker });
    return toSeries(ctx, t.trial, { name: t.name, mode, worker }, full, { fromStep, toStep, maxPoints });
  }

  @FieldResolver(() => [String])
  workers(@Root() t: Tensor, @Arg("step", () => Int, { nullable: true }) step: number | null): string[] {
    if (step != null) return t.trial.tensorWorkers(t.name, step);
    const all = new Set<string>();
    for (const s of t.trial.tensorSteps(t.name)) for (const w of t.trial.tensorWorkers(t.name, s)) all.add(w);
    return [...all].sort();
  }

  @FieldResolver(() => [Int], { nullable: true, description: "The shape at a step, from the value" })
  async shape(@Root() t: Tensor, @Arg("step", () => Int) step: number, @Ctx() ctx: Context): Promise<number[]> {
    const known = t.trial.knownShape(t.name, step);
    if (known) return known;
    return (await ctx.values.load({ trial: t.trial, name: t.name, step, mode: null, worker: null })).shape;
  }

  // ------------------------------------------------------------------------- reductions

  @FieldResolver(() => [SavedReduction], { description: "Reductions the hook saved (smdebug/reductions/…): at a step, or at any step" })
  reductions(
    @Root() t: Tensor,
    @Arg("step", () => Int, { nullable: true }) step: number | null,
    @Arg("mode", () => Mode, { nullable: true }) mode: ModeName | null,
    @Arg("worker", () => String, { nullable: true }) worker: string | null,
  ): SavedReduction[] {
    t.trial.checkWorker(worker);
    return t.trial.savedReductions(t.name, step, mode, worker).map((r) => new SavedReduction(t.name, r.reduction, r.abs));
  }

  @FieldResolver(() => Boolean, { description: "True when the hook saved only reductions (or shapes) of it, never its raw value" })
  reductionsOnly(@Root() t: Tensor): boolean {
    return t.trial.onlyReductions(t.name);
  }

  @FieldResolver(() => ReductionValue, {
    nullable: true,
    description: "smdebug's reduction_value: the saved reduction, else computed from the raw value; TENSOR_UNAVAILABLE_FOR_STEP when neither was saved",
  })
  async reductionValue(
    @Root() t: Tensor,
    @Arg("step", () => Int) step: number,
    @Arg("name", () => Reduction) name: ReductionName,
    @Arg("abs", () => Boolean, { defaultValue: false }) abs: boolean,
    @Arg("mode", () => Mode, { nullable: true }) mode: ModeName | null,
    @Arg("worker", () => String, { nullable: true }) worker: string | null,
    @Ctx() ctx: Context,
  ): Promise<ReductionValue> {
    t.trial.checkWorker(worker);
    const r = await ctx.reductions.load({ trial: t.trial, name: t.name, step, mode, worker, reduction: name, abs });
    const global = !mode || mode === "GLOBAL" ? step : t.trial.globalStep(mode, step) ?? step;
    return new ReductionValue(t.trial, t.name, global, worker, name, abs, r.value, r.saved);
  }

  @FieldResolver(() => Series, { description: "A reduction over the steps where it was saved or can be computed from the raw value" })
  async reductionSeries(
    @Root() t: Tensor,
    @Arg("name", () => Reduction) name: ReductionName,
    @Arg("abs", () => Boolean, { defaultValue: false }) abs: boolean,
    @Args(() => SeriesArgs) { fromStep = null, toStep = null, mode = null, maxPoints = null, worker = null }: SeriesArgs,
    @Ctx() ctx: Context,
  ): Promise<Series> {
    checkMaxPoints(maxPoints);
    t.trial.checkWorker(worker);
    const all = await ctx.reductionSeries.load({ trial: t.trial, name: t.name, mode, worker, fromStep, toStep, reduction: name, abs });
    return toSeries(ctx, t.trial, { name: t.name, mode, worker }, all, { fromStep: null, toStep: null, maxPoints });
  }

  // ------------------------------------------------------------------------- statistics

  @FieldResolver(() => Series, {
    description: "One statistic of the value at each step with a raw value, computed on the server and cached; maxPoints as for series",
  })
  async statSeries(
    @Root() t: Tensor,
    @Arg("stat", () => TensorStat) stat: StatKey,
    @Args(() => SeriesArgs) { fromStep = null, toStep = null, mode = null, maxPoints = null, worker = null }: SeriesArgs,
    @Ctx() ctx: Context,
  ): Promise<Series> {
    checkMaxPoints(maxPoints);
    t.trial.checkWorker(worker);
    const { steps, stats } = await ctx.statsSeries.load({ trial: t.trial, name: t.name, mode, worker, fromStep, toStep });
    return toSeries(ctx, t.trial, { name: t.name, mode, worker }, { steps, values: Float64Array.from(stats, (s) => s[stat]) }, {
      fromStep: null, toStep: null, maxPoints,
    });
  }

  @FieldResolver(() => StatsSeries, {
    description: "Every statistic at each step with a raw value, as parallel arrays (min/max band and mean in one field); computed on the server and cached",
  })
  async statsSeries(
    @Root() t: Tensor,
    @Args(() => WorkerStepsArgs) { fromStep = null, toStep = null, mode = null, worker = null }: WorkerStepsArgs,
    @Ctx() ctx: Context,
  ): Promise<StatsSeries> {
    t.trial.checkWorker(worker);
    const { steps, stats } = await ctx.statsSeries.load({ trial: t.trial, name: t.name, mode, worker, fromStep, toStep });
    charge(ctx, steps.length);
    return new StatsSeries(t.trial, { tensorName: t.name, mode, worker, steps }, stats);
  }

  @FieldResolver(() => HistogramSeries, {
    description: "A histogram per step with a raw value, all with the same bins: range defaults to the min and max over those steps",
  })
  async histogramSeries(
    @Root() t: Tensor,
    @Arg("bins", () => Int, { defaultValue: 50, description: "1 to 1000" }) bins: number,
    @Arg("range", () => [Float], { nullable: true, description: "[low, high]" }) range: number[] | null,
    @Args(() => WorkerStepsArgs) { fromStep = null, toStep = null, mode = null, worker = null }: WorkerStepsArgs,
    @Ctx() ctx: Context,
  ): Promise<HistogramSeries> {
    const [n, given] = histogramArgs(bins, range);
    t.trial.checkWorker(worker);
    let shared = given;
    let steps: number[];
    if (!shared) {
      // Common bins need the range over all the steps first: the statistics give it (and are cached).
      const s = await ctx.statsSeries.load({ trial: t.trial, name: t.name, mode, worker, fromStep, toStep });
      steps = s.steps;
      const finite = s.stats.filter((x) => x.finite > 0);
      shared = finite.length ? [Math.min(...finite.map((x) => x.min)), Math.max(...finite.map((x) => x.max))] : [0, 0];
    } else steps = inRange(t.trial.tensorSteps(t.name, mode, { worker, withValue: true }), fromStep, toStep);
    const hs = await Promise.all(steps.map((step) => ctx.histograms.load({ trial: t.trial, name: t.name, step, mode, worker, bins: n, range: shared })));
    charge(ctx, steps.length * n);
    const out = new HistogramSeries();
    out.tensorName = t.name;
    out.mode = mode ?? "GLOBAL";
    out.worker = worker;
    out.steps = steps;
    out.globalSteps = globalStepsOf(t.trial, mode, steps);
    out.edges = hs[0]?.edges ?? [];
    out.counts = hs.map((h) => h.counts);
    out.outside = hs.map((h) => h.below + h.above);
    out.nonFinite = hs.map((h) => h.nonFinite);
    return out;
  }

  // ------------------------------------------------------------------------- workers

  @FieldResolver(() => [Series], {
    description: "The view across workers: one series per worker of the trial, of the (scalar) value, or of a statistic when stat is given",
  })
  async workerSeries(
    @Root() t: Tensor,
    @Arg("stat", () => TensorStat, { nullable: true }) stat: StatKey | null,
    @Args(() => StepRangeArgs) { fromStep = null, toStep = null, mode = null }: StepRangeArgs,
    @Arg("maxPoints", () => Int, { nullable: true }) maxPoints: number | null,
    @Ctx() ctx: Context,
  ): Promise<Series[]> {
    checkMaxPoints(maxPoints);
    const workers = t.trial.workers.filter((w) => t.trial.tensorSteps(t.name, mode, { worker: w }).length > 0);
    return Promise.all(workers.map(async (worker) => {
      if (!stat) {
        const full = await ctx.series.load({ trial: t.trial, name: t.name, mode, worker });
        return toSeries(ctx, t.trial, { name: t.name, mode, worker }, full, { fromStep, toStep, maxPoints });
      }
      const { steps, stats } = await ctx.statsSeries.load({ trial: t.trial, name: t.name, mode, worker, fromStep, toStep });
      return toSeries(ctx, t.trial, { name: t.name, mode, worker }, { steps, values: Float64Array.from(stats, (s) => s[stat]) }, {
        fromStep: null, toStep: null, maxPoints,
      });
    }));
  }
}
