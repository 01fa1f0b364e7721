/** Per-request DataLoaders: many tensor fields of one query become few reads. */
import DataLoader from "dataloader";
import type { Mode, TensorData } from "../format/tensor.js";
import type { ReductionName } from "../format/reductions.js";
import type { ComputeOptions, ReductionValue, ScalarSeries, Trial, ValueColumn } from "../trials/trial.js";
import type { Histogram, TensorStats } from "../trials/tensor-stats.js";
import type { ReadBudget } from "../trials/budget.js";

/** Runs one batch per trial and puts each result back at its key's position. */
async function perTrial<K extends { trial: Trial }, R>(keys: readonly K[], run: (trial: Trial, keys: K[]) => Promise<R[]>): Promise<R[]> {
  const out = new Array<R>(keys.length);
  const byTrial = new Map<Trial, number[]>();
  keys.forEach((k, i) => {
    const list = byTrial.get(k.trial);
    if (list) list.push(i);
    else byTrial.set(k.trial, [i]);
  });
  await Promise.all(
    [...byTrial].map(async ([trial, indexes]) => {
      const results = await run(trial, indexes.map((i) => keys[i]));
      indexes.forEach((keyIndex, j) => (out[keyIndex] = results[j]));
    }),
  );
  return out;
}

export interface ValueKey {
  trial: Trial;
  name: string;
  /** Global step, or a mode step when mode is TRAIN/EVAL/PREDICT. */
  step: number;
  mode: Mode | null;
  worker: string | null;
}

/**
 * Charges the objects of `values` answers before reading them: a query asking for millions of
 * values (aliases of whole trials) is refused before one of them is read. Elements are charged by
 * the trial as it decodes.
 */
function precharge<K>(budget: ReadBudget, keys: readonly K[], values: number, bytes = 0): Promise<Error[]> | null {
  return budget.take(values, 0, bytes) ? null : Promise.resolve(keys.map(() => budget.error()));
}

export function createValueLoader(budget: ReadBudget): DataLoader<ValueKey, TensorData, string> {
  return new DataLoader<ValueKey, TensorData, string>(
    // Each trial turns its batch into one ranged read per event file.
    (keys) => precharge(budget, keys, keys.length) ?? perTrial(keys, (trial, mine) => trial.values(mine, { budget })),
    {
      cacheKeyFn: (k) => `${k.trial.path}\u0000${k.name}\u0000${k.step}\u0000${k.mode ?? "GLOBAL"}\u0000${k.worker ?? ""}`,
      maxBatchSize: 1_000_000,
    },
  );
}

export interface SeriesKey {
  trial: Trial;
  name: string;
  mode: Mode | null;
  /** One worker's steps and values; null: each step's first worker. */
  worker?: string | null;
}

const seriesCacheKey = (k: SeriesKey) => `${k.trial.path}\u0000${k.name}\u0000${k.mode ?? "GLOBAL"}\u0000${k.worker ?? ""}`;

/** Whole scalar series, batched per trial: the bulk path for plots and analysis. */
export function createSeriesLoader(budget: ReadBudget): DataLoader<SeriesKey, ScalarSeries, string> {
  return new DataLoader<SeriesKey, ScalarSeries, string>(
    // The trial charges each whole series (8 bytes a step) before reading it, from the steps it lists anyway.
    (keys) => precharge(budget, keys, 0) ?? perTrial(keys, (trial, mine) => trial.scalarSeries(mine, budget)),
    { cacheKeyFn: seriesCacheKey, maxBatchSize: 100_000 },
  );
}

export interface RangeKey extends SeriesKey {
  fromStep: number | null;
  toStep: number | null;
}

const rangeCacheKey = (k: RangeKey) => `${seriesCacheKey(k)}\u0000${k.fromStep ?? ""}\u0000${k.toStep ?? ""}`;

/**
 * Statistics of tensors over steps, batched per trial: every tensor of a request is computed in one
 * pass over the records (cached ones are not read). Several statistics of one tensor share a key.
 */
export function createStatsSeriesLoader(opts: ComputeOptions): DataLoader<RangeKey, { steps: number[]; stats: TensorStats[] }, string> {
  return new DataLoader<RangeKey, { steps: number[]; stats: TensorStats[] }, string>(
    (keys) => perTrial(keys, (trial, mine) => trial.statsSeries(mine, opts)),
    { cacheKeyFn: rangeCacheKey, maxBatchSize: 10_000 },
  );
}

export interface ReductionKey extends ValueKey {
  reduction: ReductionName;
  abs: boolean;
}

/** Reductions at a step: saved ones read as scalars, the others computed from raw values, per trial in one batch. */
export function createReductionLoader(opts: ComputeOptions): DataLoader<ReductionKey, ReductionValue, string> {
  return new DataLoader<ReductionKey, ReductionValue, string>(
    (keys) => perTrial(keys, (trial, mine) => trial.reductionValues(mine, opts)),
    {
      cacheKeyFn: (k) => `${k.trial.path}\u0000${k.name}\u0000${k.step}\u0000${k.mode ?? "GLOBAL"}\u0000${k.worker ?? ""}\u0000${k.reduction}\u0000${k.abs}`,
      maxBatchSize: 100_000,
    },
  );
}

export interface ReductionSeriesKey extends RangeKey {
  reduction: ReductionName;
  abs: boolean;
}

export function createReductionSeriesLoader(opts: ComputeOptions): DataLoader<ReductionSeriesKey, { steps: number[]; values: Float64Array }, string> {
  return new DataLoader<ReductionSeriesKey, { steps: number[]; values: Float64Array }, string>(
    (keys) => perTrial(keys, (trial, mine) => trial.reductionSeries(mine, opts)),
    { cacheKeyFn: (k) => `${rangeCacheKey(k)}\u0000${k.reduction}\u0000${k.abs}`, maxBatchSize: 10_000 },
  );
}

export interface HistogramKey extends ValueKey {
  bins: number;
  range: [number, number] | null;
}

/** Histograms of values, batched per trial (read in bounded chunks). */
export function createHistogramLoader(opts: ComputeOptions): DataLoader<HistogramKey, Histogram, string> {
  return new DataLoader<HistogramKey, Histogram, string>(
    (keys) => perTrial(keys, (trial, mine) => trial.histograms(mine, opts)),
    {
      cacheKeyFn: (k) => `${k.trial.path}\u0000${k.name}\u0000${k.step}\u0000${k.mode ?? "GLOBAL"}\u0000${k.worker ?? ""}\u0000${k.bins}\u0000${k.range ?? ""}`,
      maxBatchSize: 100_000,
    },
  );
}

export interface StepValuesKey {
  trial: Trial;
  name: string;
  steps: number[];
  mode: Mode | null;
  worker: string | null;
}

/**
 * Many steps of one tensor per key (Tensor.values): one key per tensor instead of one per value,
 * every key of a request read in one batch per trial, numeric scalars packed into columns.
 */
export function createStepValuesLoader(budget: ReadBudget): DataLoader<StepValuesKey, ValueColumn, StepValuesKey> {
  return new DataLoader<StepValuesKey, ValueColumn, StepValuesKey>(
    // Tensor.values charges each key's values (COLUMN_VALUE_BYTES a step) as it makes the key.
    (keys) => precharge(budget, keys, 0) ?? perTrial(keys, (trial, mine) => trial.valueColumns(mine, budget)),
    // Keys are objects made per resolver call; caching them would never hit.
    { cache: false, maxBatchSize: 100_000 },
  );
}
