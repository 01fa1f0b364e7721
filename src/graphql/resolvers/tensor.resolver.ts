import { Arg, Ctx, FieldResolver, Int, Resolver, Root } from "type-graphql";
import type { Context } from "../context.js";
import { Series, splitNonFinite, Tensor, TensorValue } from "../types/trial.types.js";
import { Mode } from "../enums.js";
import type { Mode as ModeName, TensorData } from "../../format/tensor.js";
import type { Trial as DomainTrial } from "../../trials/trial.js";
import { minMaxDownsample } from "../../trials/downsample.js";
import { TrialgraphError } from "../../errors.js";

function inRange(steps: number[], from: number | null, to: number | null): number[] {
  return steps.filter((s) => (from == null || s >= from) && (to == null || s <= to));
}


function toTensorValue(trial: DomainTrial, name: string, step: number, mode: ModeName | null, worker: string | null, v: TensorData): TensorValue {
  const global = !mode || mode === "GLOBAL" ? step : trial.globalStep(mode, step) ?? step;
  return new TensorValue(trial, name, global, worker, v);
}

@Resolver(() => Tensor)
export class TensorResolver {
  @FieldResolver(() => [Int], { description: "Steps at which it was saved; mode steps for TRAIN, EVAL or PREDICT" })
  steps(@Root() t: Tensor, @Arg("mode", () => Mode, { nullable: true }) mode: ModeName | null): number[] {
    return t.trial.tensorSteps(t.name, mode);
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
  async values(
    @Root() t: Tensor,
    @Arg("fromStep", () => Int, { nullable: true }) fromStep: number | null,
    @Arg("toStep", () => Int, { nullable: true }) toStep: number | null,
    @Arg("mode", () => Mode, { nullable: true }) mode: ModeName | null,
    @Arg("worker", () => String, { nullable: true }) worker: string | null,
    @Ctx() ctx: Context,
  ): Promise<TensorValue[]> {
    // A finished trial with an unreadable index file in the range: the answer would silently miss that step.
    const damaged = t.trial.corruptStepError(mode && mode !== "GLOBAL" ? null : fromStep, mode && mode !== "GLOBAL" ? null : toStep);
    if (damaged) throw damaged;
    const steps = inRange(t.trial.tensorSteps(t.name, mode), fromStep, toStep);
    const loaded = await ctx.stepValues.load({ trial: t.trial, name: t.name, steps, mode, worker });
    const out = new Array<TensorValue>(loaded.length);
    for (let i = 0; i < loaded.length; i++) {
      const v = loaded[i];
      if (v instanceof Error) throw v;
      out[i] = toTensorValue(t.trial, t.name, steps[i], mode, worker, v);
    }
    return out;
  }

  @FieldResolver(() => Series, { description: "For scalar tensors: parallel arrays; maxPoints keeps the first, the last and each bucket's extremes" })
  async series(
    @Root() t: Tensor,
    @Arg("fromStep", () => Int, { nullable: true }) fromStep: number | null,
    @Arg("toStep", () => Int, { nullable: true }) toStep: number | null,
    @Arg("mode", () => Mode, { nullable: true }) mode: ModeName | null,
    @Arg("maxPoints", () => Int, { nullable: true }) maxPoints: number | null,
    @Ctx() ctx: Context,
  ): Promise<Series> {
    if (maxPoints != null && maxPoints < 2) throw new TrialgraphError("BAD_USER_INPUT", "maxPoints must be at least 2", { field: "maxPoints" });
    const damaged = t.trial.corruptStepError(mode && mode !== "GLOBAL" ? null : fromStep, mode && mode !== "GLOBAL" ? null : toStep);
    if (damaged) throw damaged;
    const full = await ctx.series.load({ trial: t.trial, name: t.name, mode });
    // The range is a slice of the whole series (steps ascending).
    let lo = 0;
    let hi = full.steps.length;
    if (fromStep != null) while (lo < hi && full.steps[lo] < fromStep) lo++;
    if (toStep != null) while (hi > lo && full.steps[hi - 1] > toStep) hi--;
    const steps = full.steps.slice(lo, hi);
    const all = full.values.subarray(lo, hi);
    const keep = maxPoints ? minMaxDownsample(all, maxPoints) : null;
    const picked = keep ? keep.map((i) => all[i]) : all;
    ctx.budget.charge(1, picked.length);
    const { finite, nonFinite } = splitNonFinite(picked);
    const s = new Series();
    s.tensorName = t.name;
    s.mode = mode ?? "GLOBAL";
    s.steps = keep ? keep.map((i) => steps[i]) : steps;
    s.values = finite;
    s.nonFinite = nonFinite;
    s.sampled = keep !== null && keep.length < steps.length;
    s.totalPoints = steps.length;
    return s;
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
}
