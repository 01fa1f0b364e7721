import { Arg, Field, Float, ID, Int, ObjectType } from "type-graphql";
import { ValueColumn, type Trial as DomainTrial } from "../../trials/trial.js";
import type { Mode as ModeName, TensorData } from "../../format/tensor.js";
import type { CollectionInfo } from "../../format/collections-file.js";
import { reductionTensorName, type ReductionName } from "../../format/reductions.js";
import {
  finiteRange, hasNumericElements, histogram as computeHistogram, MAX_HISTOGRAM_BINS,
  type Histogram as DomainHistogram, type TensorStats as DomainStats,
} from "../../trials/tensor-stats.js";
import { TrialgraphError } from "../../errors.js";
import { Mode, Reduction } from "../enums.js";
import { JSONScalar } from "../scalars.js";

@ObjectType({ description: "An smdebug trial: the tensors one training job saved" })
export class Trial {
  constructor(readonly trial: DomainTrial) {
    this.path = trial.path;
    this.id = `trial:${trial.path}`;
  }

  @Field(() => ID, { description: "Derived from the path" })
  id: string;

  @Field(() => String, { description: 's3://bucket/prefix, or a path relative to the data directory' })
  path: string;
}

@ObjectType({ description: "A named group of tensors, as the hook's collections file defines it" })
export class Collection {
  constructor(readonly trial: DomainTrial, readonly info: CollectionInfo) {
    this.id = `collection:${trial.path}#${info.name}`;
    this.name = info.name;
    this.includeRegex = info.includeRegex;
    this.saveConfig = info.saveConfig;
  }

  @Field(() => ID)
  id: string;

  @Field(() => String)
  name: string;

  @Field(() => [String], { description: "Python regexes (search semantics) whose matches belong to the collection" })
  includeRegex: string[];

  @Field(() => JSONScalar, { nullable: true, description: "Save config per mode, as written by the hook" })
  saveConfig: unknown;
}

@ObjectType({ description: "One tensor of a trial, across its steps" })
export class Tensor {
  constructor(readonly trial: DomainTrial, name: string) {
    this.id = `tensor:${trial.path}#${name}`;
    this.name = name;
  }

  @Field(() => ID)
  id: string;

  @Field(() => String)
  name: string;
}

@ObjectType({ description: "A NaN or infinite element of data or values, by its index there" })
export class NonFiniteElement {
  constructor(index: number, value: number) {
    this.index = index;
    this.value = Number.isNaN(value) ? "NaN" : value > 0 ? "Infinity" : "-Infinity";
  }

  @Field(() => Int)
  index: number;

  @Field(() => String, { description: '"NaN", "Infinity" or "-Infinity"' })
  value: string;
}

/** GraphQL's Float has no NaN or ±Infinity: such elements travel as null plus a NonFiniteElement. */
export function splitNonFinite(values: ArrayLike<number>): { finite: (number | null)[]; nonFinite: NonFiniteElement[] } {
  const finite = new Array<number | null>(values.length);
  const nonFinite: NonFiniteElement[] = [];
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (Number.isFinite(v)) finite[i] = v;
    else {
      finite[i] = null;
      nonFinite.push(new NonFiniteElement(i, v));
    }
  }
  return { finite, nonFinite };
}

/** GraphQL Float has no NaN: a statistic of no finite element is null. */
const finiteOrNull = (x: number): number | null => (Number.isFinite(x) ? x : null);

@ObjectType({ description: "Statistics of a tensor value: MIN, MAX, MEAN, STD (population), SUM and L2 over its finite elements (null when there is none)" })
export class TensorStats {
  constructor(private readonly s: DomainStats) {}

  @Field(() => Int, { description: "Elements" })
  get size(): number {
    return this.s.size;
  }

  @Field(() => Int, { description: "Finite elements" })
  get finite(): number {
    return this.s.finite;
  }

  @Field(() => Float, { nullable: true })
  get min(): number | null {
    return finiteOrNull(this.s.min);
  }

  @Field(() => Float, { nullable: true })
  get max(): number | null {
    return finiteOrNull(this.s.max);
  }

  @Field(() => Float, { nullable: true })
  get mean(): number | null {
    return finiteOrNull(this.s.mean);
  }

  @Field(() => Float, { nullable: true, description: "Population standard deviation" })
  get std(): number | null {
    return finiteOrNull(this.s.std);
  }

  @Field(() => Float, { nullable: true })
  get sum(): number | null {
    return finiteOrNull(this.s.sum);
  }

  @Field(() => Float, { nullable: true, description: "Euclidean norm of the finite elements" })
  get l2(): number | null {
    return finiteOrNull(this.s.l2);
  }

  @Field(() => Int, { description: "Elements equal to 0" })
  get zeros(): number {
    return this.s.zeros;
  }

  @Field(() => Int)
  get nan(): number {
    return this.s.nan;
  }

  @Field(() => Int)
  get posInf(): number {
    return this.s.posInf;
  }

  @Field(() => Int)
  get negInf(): number {
    return this.s.negInf;
  }
}

@ObjectType({ description: "numpy.histogram of a value's finite elements: bin i is [edges[i], edges[i+1]), the last bin includes its right edge" })
export class Histogram {
  constructor(h: DomainHistogram) {
    this.edges = h.edges;
    this.counts = h.counts;
    this.below = h.below;
    this.above = h.above;
    this.nonFinite = h.nonFinite;
  }

  @Field(() => [Float], { description: "bins + 1 edges, ascending" })
  edges: number[];

  @Field(() => [Int])
  counts: number[];

  @Field(() => Int, { description: "Finite elements below the range (in no bin)" })
  below: number;

  @Field(() => Int, { description: "Finite elements above the range (in no bin)" })
  above: number;

  @Field(() => Int, { description: "NaN and ±Infinity elements (in no bin)" })
  nonFinite: number;
}

/** Validates histogram arguments (GraphQL: bins, range). */
export function histogramArgs(bins: number, range: number[] | null): [number, [number, number] | null] {
  if (!Number.isInteger(bins) || bins < 1 || bins > MAX_HISTOGRAM_BINS) {
    throw new TrialgraphError("BAD_USER_INPUT", `bins must be from 1 to ${MAX_HISTOGRAM_BINS}, got ${bins}`, { field: "bins" });
  }
  if (range === null || range === undefined) return [bins, null];
  if (range.length !== 2 || !range.every(Number.isFinite) || !(range[0] < range[1])) {
    throw new TrialgraphError("BAD_USER_INPUT", `range must be two finite numbers [low, high] with low < high, got [${range}]`, { field: "range" });
  }
  return [bins, [range[0], range[1]]];
}

@ObjectType({ description: "A reduction the hook saved for a tensor (smdebug/reductions/…)" })
export class SavedReduction {
  constructor(tensor: string, reduction: ReductionName, abs: boolean) {
    this.name = reduction;
    this.abs = abs;
    this.tensorName = reductionTensorName(tensor, reduction, abs);
  }

  @Field(() => Reduction)
  name: string;

  @Field(() => Boolean, { description: "Over the absolute values" })
  abs: boolean;

  @Field(() => String, { description: "The reduction tensor's name in the trial files (not a tensor name of the trial)" })
  tensorName: string;
}

@ObjectType({ description: "A reduction of a tensor at one step, as smdebug's Tensor.reduction_value returns it" })
export class ReductionValue {
  constructor(
    private readonly trial: DomainTrial,
    private readonly tensorName: string,
    private readonly globalStep: number,
    private readonly requestedWorker: string | null,
    reduction: ReductionName,
    abs: boolean,
    value: number,
    saved: boolean,
  ) {
    this.name = reduction;
    this.abs = abs;
    this.value = finiteOrNull(value);
    this.nonFinite = Number.isNaN(value) ? "NaN" : value === Infinity ? "Infinity" : value === -Infinity ? "-Infinity" : null;
    this.saved = saved;
  }

  @Field(() => Int, { description: "Global step" })
  get step(): number {
    return this.globalStep;
  }

  @Field(() => Mode)
  get mode(): string {
    return this.trial.modeOfStep(this.globalStep)?.mode ?? "GLOBAL";
  }

  @Field(() => Int)
  get modeStep(): number {
    return this.trial.modeOfStep(this.globalStep)?.modeStep ?? this.globalStep;
  }

  @Field(() => String)
  get worker(): string {
    return this.requestedWorker ?? this.trial.tensorWorkers(this.tensorName, this.globalStep)[0] ?? "";
  }

  @Field(() => Reduction)
  name: string;

  @Field(() => Boolean)
  abs: boolean;

  @Field(() => Float, { nullable: true, description: "null when NaN or infinite (see nonFinite)" })
  value: number | null;

  @Field(() => String, { nullable: true, description: '"NaN", "Infinity" or "-Infinity" when value is null' })
  nonFinite: string | null;

  @Field(() => Boolean, { description: "Saved by the hook; false when computed from the raw value" })
  saved: boolean;
}

@ObjectType({ description: "A tensor's value at one step" })
export class TensorValue {
  /** The decoded value, or (column, index) of a packed scalar: built only when a field needs it. */
  private decoded: TensorData | null;
  private readonly column: ValueColumn | null;
  private at: number;

  /** Fields are computed when asked for: bulk queries often want only step and data. */
  constructor(
    private readonly trial: DomainTrial,
    private readonly tensorName: string,
    private globalStep: number,
    private readonly requestedWorker: string | null,
    value: TensorData | ValueColumn,
    at = 0,
  ) {
    if (value instanceof ValueColumn) {
      this.decoded = null;
      this.column = value;
      this.at = at;
    } else {
      this.decoded = value;
      this.column = null;
      this.at = 0;
    }
  }

  /**
   * Makes this the value at position `at` of its column (at `globalStep`): one object then reads a
   * whole column field by field (packed-values.ts writes a list's JSON that way).
   */
  moveTo(at: number, globalStep: number): this {
    this.at = at;
    this.globalStep = globalStep;
    this.decoded = null;
    this.computed = null;
    return this;
  }

  private get value(): TensorData {
    return (this.decoded ??= this.column!.value(this.at));
  }

  /** The packed scalar, or undefined when this value is not one. */
  private get packed(): number | undefined {
    return this.decoded === null && this.column!.isScalar(this.at) ? this.column!.scalars[this.at] : undefined;
  }

  @Field(() => Int, { description: "Global step" })
  get step(): number {
    return this.globalStep;
  }

  @Field(() => Mode)
  get mode(): string {
    return this.trial.modeOfStep(this.step)?.mode ?? "GLOBAL";
  }

  @Field(() => Int)
  get modeStep(): number {
    return this.trial.modeOfStep(this.step)?.modeStep ?? this.step;
  }

  @Field(() => String)
  get worker(): string {
    return this.requestedWorker ?? this.trial.tensorWorkers(this.tensorName, this.step)[0] ?? "";
  }

  @Field(() => String, { description: "float32, float64, int32, int64, bool, string, ..." })
  get dtype(): string {
    return this.value.dtype;
  }

  @Field(() => [Int])
  get shape(): number[] {
    return this.value.shape;
  }

  @Field(() => [Float], { nullable: "itemsAndList", description: "Every element, flattened row-major; null for string tensors. NaN and ±Infinity are null here and listed in nonFinite" })
  get data(): (number | null)[] | null {
    const p = this.packed;
    if (p !== undefined) return [Number.isFinite(p) ? p : null];
    const v = this.value.values;
    if (!v) return null;
    if (v.length === 1) return Number.isFinite(v[0]) ? [v[0]] : [null];
    return splitNonFinite(v).finite;
  }

  @Field(() => [NonFiniteElement])
  get nonFinite(): NonFiniteElement[] {
    const p = this.packed;
    if (p !== undefined) return Number.isFinite(p) ? [] : [new NonFiniteElement(0, p)];
    return this.value.values ? splitNonFinite(this.value.values).nonFinite : [];
  }

  @Field(() => [String], { nullable: true })
  get strings(): string[] | null {
    if (this.packed !== undefined) return null;
    return this.value.strings;
  }

  @Field(() => Float, { nullable: true, description: "When the tensor has exactly one finite numeric element" })
  get scalar(): number | null {
    const p = this.packed;
    if (p !== undefined) return Number.isFinite(p) ? p : null;
    const v = this.value.values;
    return v && v.length === 1 && Number.isFinite(v[0]) ? v[0] : null;
  }

  @Field(() => Int, { description: "Number of elements" })
  get size(): number {
    if (this.packed !== undefined) return 1;
    return this.value.values?.length ?? this.value.strings?.length ?? 0;
  }

  private computed: DomainStats | null = null;

  private domainStats(): DomainStats {
    this.computed ??= this.trial.statsOf({ name: this.tensorName, step: this.globalStep, worker: this.requestedWorker }, this.value);
    return this.computed;
  }

  @Field(() => TensorStats, { nullable: true, description: "Computed on the server from this value; null for string and complex tensors" })
  get stats(): TensorStats | null {
    return hasNumericElements(this.value) ? new TensorStats(this.domainStats()) : null;
  }

  @Field(() => Histogram, { nullable: true, description: "Of the finite elements; range defaults to their min and max. null for string and complex tensors" })
  histogram(
    @Arg("bins", () => Int, { defaultValue: 50, description: "1 to 1000" }) bins: number,
    @Arg("range", () => [Float], { nullable: true, description: "[low, high]" }) range: number[] | null,
  ): Histogram | null {
    const [n, r] = histogramArgs(bins, range);
    if (!hasNumericElements(this.value)) return null;
    const [lo, hi] = r ?? finiteRange(this.domainStats());
    return new Histogram(computeHistogram(this.value.values!, n, lo, hi));
  }
}

@ObjectType({ description: "A scalar tensor (or a statistic or reduction of a tensor) over steps: parallel arrays, ready to plot" })
export class Series {
  /** For globalSteps. */
  trial!: DomainTrial;

  @Field(() => String)
  tensorName!: string;

  @Field(() => Mode)
  mode!: string;

  @Field(() => String, { nullable: true, description: "The worker whose values these are; null: each step's first worker" })
  worker!: string | null;

  @Field(() => [Int], { description: "Mode steps for TRAIN, EVAL or PREDICT, else global steps" })
  steps!: number[];

  @Field(() => [Int], { description: "The global step of each point (to plot several modes on one axis)" })
  get globalSteps(): number[] {
    return globalStepsOf(this.trial, this.mode as ModeName, this.steps);
  }

  @Field(() => [Float], { nullable: "items", description: "null where the value is NaN or infinite (see nonFinite)" })
  values!: (number | null)[];

  @Field(() => [NonFiniteElement])
  nonFinite!: NonFiniteElement[];

  @Field(() => Boolean, { description: "Whether maxPoints dropped points" })
  sampled!: boolean;

  @Field(() => Int, { description: "Points in the full series before sampling" })
  totalPoints!: number;
}

/** Global steps of mode steps (identity for GLOBAL). */
export function globalStepsOf(trial: DomainTrial, mode: ModeName | null, steps: number[]): number[] {
  if (!mode || mode === "GLOBAL") return steps;
  return steps.map((s) => trial.globalStep(mode, s) ?? s);
}

const column = (stats: DomainStats[], key: keyof DomainStats) => stats.map((s) => finiteOrNull(s[key]));
const counts = (stats: DomainStats[], key: keyof DomainStats) => stats.map((s) => s[key]);

@ObjectType({ description: "Statistics of a tensor over its steps with a raw value: parallel arrays (a min/max band and a mean in one field)" })
export class StatsSeries {
  constructor(
    private readonly trial: DomainTrial,
    private readonly of: { tensorName: string; mode: ModeName | null; worker: string | null; steps: number[] },
    private readonly stats: DomainStats[],
  ) {}

  @Field(() => String)
  get tensorName(): string {
    return this.of.tensorName;
  }

  @Field(() => Mode)
  get mode(): string {
    return this.of.mode ?? "GLOBAL";
  }

  @Field(() => String, { nullable: true, description: "The worker whose values these are; null: each step's first worker" })
  get worker(): string | null {
    return this.of.worker;
  }

  @Field(() => [Int], { description: "Mode steps for TRAIN, EVAL or PREDICT, else global steps" })
  get steps(): number[] {
    return this.of.steps;
  }

  @Field(() => [Int])
  get globalSteps(): number[] {
    return globalStepsOf(this.trial, this.of.mode, this.of.steps);
  }

  @Field(() => [Float], { nullable: "items" })
  get min(): (number | null)[] {
    return column(this.stats, "min");
  }

  @Field(() => [Float], { nullable: "items" })
  get max(): (number | null)[] {
    return column(this.stats, "max");
  }

  @Field(() => [Float], { nullable: "items" })
  get mean(): (number | null)[] {
    return column(this.stats, "mean");
  }

  @Field(() => [Float], { nullable: "items" })
  get std(): (number | null)[] {
    return column(this.stats, "std");
  }

  @Field(() => [Float], { nullable: "items" })
  get sum(): (number | null)[] {
    return column(this.stats, "sum");
  }

  @Field(() => [Float], { nullable: "items" })
  get l2(): (number | null)[] {
    return column(this.stats, "l2");
  }

  @Field(() => [Int])
  get zeros(): number[] {
    return counts(this.stats, "zeros");
  }

  @Field(() => [Int])
  get nan(): number[] {
    return counts(this.stats, "nan");
  }

  @Field(() => [Int])
  get posInf(): number[] {
    return counts(this.stats, "posInf");
  }

  @Field(() => [Int])
  get negInf(): number[] {
    return counts(this.stats, "negInf");
  }

  @Field(() => [Int])
  get finite(): number[] {
    return counts(this.stats, "finite");
  }

  @Field(() => [Int])
  get size(): number[] {
    return counts(this.stats, "size");
  }
}

@ObjectType({ description: "Histograms of a tensor over steps with common bins (a distribution heat map)" })
export class HistogramSeries {
  @Field(() => String)
  tensorName!: string;

  @Field(() => Mode)
  mode!: string;

  @Field(() => String, { nullable: true })
  worker!: string | null;

  @Field(() => [Int], { description: "Mode steps for TRAIN, EVAL or PREDICT, else global steps" })
  steps!: number[];

  @Field(() => [Int])
  globalSteps!: number[];

  @Field(() => [Float], { description: "bins + 1 edges shared by every step" })
  edges!: number[];

  @Field(() => [[Int]], { description: "Per step, the count of each bin" })
  counts!: number[][];

  @Field(() => [Int], { description: "Per step, finite elements outside the range" })
  outside!: number[];

  @Field(() => [Int], { description: "Per step, NaN and ±Infinity elements" })
  nonFinite!: number[];
}

@ObjectType({ description: "New complete steps of a growing trial" })
export class StepsAdded {
  @Field(() => String)
  path!: string;

  @Field(() => [Int])
  steps!: number[];

  @Field(() => Int, { nullable: true })
  lastCompleteStep!: number | null;

  @Field(() => Boolean)
  trainingEnded!: boolean;

  @Field(() => String, { description: "This event's cursor (the last step it delivered): subscribe again with after: eventId to get the steps after it" })
  eventId!: string;
}
