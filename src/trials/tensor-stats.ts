/**
 * Statistics, distributions and reductions of a tensor value, computed on the server in one pass
 * over its elements (the decoded Float64Array; float16/bfloat16/int… are widened by the decoder),
 * without allocating per element.
 */
import type { TensorData } from "../format/tensor.js";
import type { ReductionName } from "../format/reductions.js";

/**
 * Statistics of one value. min, max, mean, std, sum and l2 are over the finite elements (NaN when
 * there is none); NaN and ±Infinity are counted apart. std is the population standard deviation.
 */
export interface TensorStats {
  /** Elements in the tensor. */
  size: number;
  /** Finite elements. */
  finite: number;
  min: number;
  max: number;
  mean: number;
  std: number;
  sum: number;
  l2: number;
  zeros: number;
  nan: number;
  posInf: number;
  negInf: number;
}

/** The statistics a series can be asked for, as TensorStats keys. */
export const STAT_KEYS = ["min", "max", "mean", "std", "sum", "l2", "zeros", "nan", "posInf", "negInf", "finite", "size"] as const;
export type StatKey = (typeof STAT_KEYS)[number];

/** Whether statistics make sense for a value: numeric and real (complex values interleave re, im). */
export function hasNumericElements(v: TensorData): boolean {
  return v.values !== null && v.dtype !== "complex64" && v.dtype !== "complex128";
}

/** Statistics of the elements of `values` (one pass). */
export function computeStats(values: Float64Array): TensorStats {
  const n = values.length;
  // A shift near the data keeps the one-pass variance exact enough (sums of (x − k) and (x − k)²).
  let k = 0;
  for (let i = 0; i < n; i++) {
    if (Number.isFinite(values[i])) {
      k = values[i];
      break;
    }
  }
  let finite = 0;
  let zeros = 0;
  let nan = 0;
  let posInf = 0;
  let negInf = 0;
  let min = Infinity;
  let max = -Infinity;
  let shifted = 0;
  let shiftedSquares = 0;
  let squares = 0;
  for (let i = 0; i < n; i++) {
    const x = values[i];
    if (x - x !== 0) {
      // NaN or ±Infinity (x − x is NaN for both)
      if (x === Infinity) posInf++;
      else if (x === -Infinity) negInf++;
      else nan++;
      continue;
    }
    finite++;
    if (x === 0) zeros++;
    if (x < min) min = x;
    if (x > max) max = x;
    const d = x - k;
    shifted += d;
    shiftedSquares += d * d;
    squares += x * x;
  }
  if (finite === 0) {
    return { size: n, finite, min: NaN, max: NaN, mean: NaN, std: NaN, sum: NaN, l2: NaN, zeros, nan, posInf, negInf };
  }
  const variance = Math.max(0, (shiftedSquares - (shifted * shifted) / finite) / finite);
  return {
    size: n, finite, min, max,
    mean: k + shifted / finite,
    std: Math.sqrt(variance),
    sum: shifted + finite * k,
    l2: Math.sqrt(squares),
    zeros, nan, posInf, negInf,
  };
}

const PACKED = 12;

/** Statistics as a Float64Array, so they live in the value cache next to decoded values. */
export function packStats(s: TensorStats): Float64Array {
  return Float64Array.of(s.size, s.finite, s.min, s.max, s.mean, s.std, s.sum, s.l2, s.zeros, s.nan, s.posInf, s.negInf);
}

export function unpackStats(a: Float64Array): TensorStats | null {
  if (a.length !== PACKED) return null;
  return {
    size: a[0], finite: a[1], min: a[2], max: a[3], mean: a[4], std: a[5], sum: a[6], l2: a[7],
    zeros: a[8], nan: a[9], posInf: a[10], negInf: a[11],
  };
}

export const MAX_HISTOGRAM_BINS = 1000;

export interface Histogram {
  /** bins + 1 edges, ascending; bin i is [edges[i], edges[i+1]), the last bin includes its right edge. */
  edges: number[];
  counts: number[];
  /** Finite elements below / above the range (not counted in any bin). */
  below: number;
  above: number;
  /** NaN and ±Infinity elements (never counted in a bin). */
  nonFinite: number;
}

/**
 * numpy.histogram over the finite elements with `bins` equal-width bins on [lo, hi] (numpy's edge
 * rule: a value on an inner edge goes to the bin on its right, the last bin includes hi). A range
 * of zero width is widened to [lo − 0.5, hi + 0.5], as numpy does.
 */
export function histogram(values: Float64Array, bins: number, lo: number, hi: number): Histogram {
  if (lo === hi) {
    lo -= 0.5;
    hi += 0.5;
  }
  const edges = new Array<number>(bins + 1);
  const step = (hi - lo) / bins;
  for (let i = 0; i < bins; i++) edges[i] = lo + i * step;
  edges[bins] = hi;
  const counts = new Array<number>(bins).fill(0);
  const norm = bins / (hi - lo);
  let below = 0;
  let above = 0;
  let nonFinite = 0;
  for (let j = 0; j < values.length; j++) {
    const x = values[j];
    if (x - x !== 0) {
      nonFinite++;
      continue;
    }
    if (x < lo) {
      below++;
      continue;
    }
    if (x > hi) {
      above++;
      continue;
    }
    let i = Math.floor((x - lo) * norm);
    if (i >= bins) i = bins - 1;
    // Rounding in (x − lo)·norm can land one bin off; the edges decide, as in numpy.
    if (i > 0 && x < edges[i]) i--;
    else if (i < bins - 1 && x >= edges[i + 1]) i++;
    counts[i]++;
  }
  return { edges, counts, below, above, nonFinite };
}

/** The default histogram range: the finite elements' min and max (0, 0 when there is none). */
export function finiteRange(s: TensorStats): [number, number] {
  return s.finite > 0 ? [s.min, s.max] : [0, 0];
}

/**
 * A reduction computed from the raw value, as smdebug's reduction_value does when the reduction was
 * not saved (numpy over all elements, so NaN propagates; std and variance are population ones).
 * l1 and l2 are vector norms over all elements — the norms hooks save — where smdebug's on-the-fly
 * numpy.linalg.norm would take a matrix norm of 2-D values and fail on 3-D ones.
 */
export function computeReduction(values: Float64Array, reduction: ReductionName, abs: boolean): number {
  const n = values.length;
  const at = abs ? (i: number) => Math.abs(values[i]) : (i: number) => values[i];
  switch (reduction) {
    case "min":
    case "max": {
      if (n === 0) return NaN;
      let m = at(0);
      for (let i = 1; i < n; i++) {
        const x = at(i);
        if (Number.isNaN(x)) return NaN;
        if (reduction === "min" ? x < m : x > m) m = x;
      }
      return m;
    }
    case "sum":
    case "mean": {
      let s = 0;
      for (let i = 0; i < n; i++) s += at(i);
      return reduction === "sum" ? s : s / n;
    }
    case "prod": {
      let p = 1;
      for (let i = 0; i < n; i++) p *= at(i);
      return p;
    }
    case "variance":
    case "std": {
      let s = 0;
      for (let i = 0; i < n; i++) s += at(i);
      const mean = s / n;
      let ss = 0;
      for (let i = 0; i < n; i++) {
        const d = at(i) - mean;
        ss += d * d;
      }
      return reduction === "variance" ? ss / n : Math.sqrt(ss / n);
    }
    case "l1": {
      let s = 0;
      for (let i = 0; i < n; i++) s += Math.abs(values[i]);
      return s;
    }
    case "l2": {
      let s = 0;
      for (let i = 0; i < n; i++) s += values[i] * values[i];
      return Math.sqrt(s);
    }
  }
}
