/** Helpers shared by the built-in rules. */
import type { TensorData } from "../../format/tensor.js";
import type { ParameterSpec, ParsedParameters, TensorSelector, TrialView } from "../types.js";

export const COLLECTION_NAMES: ParameterSpec = {
  name: "collection_names", type: "list", default: null,
  description: "Comma-separated collection names whose tensors the rule inspects (union with tensor_regex).",
};
export const TENSOR_REGEX: ParameterSpec = {
  name: "tensor_regex", type: "regexList", default: null,
  description: "Comma-separated regular expressions (search semantics) selecting the tensors the rule inspects (union with collection_names).",
};

export function selectorOf(p: ParsedParameters): TensorSelector {
  return {
    collections: (p.collection_names as string[] | null) ?? null,
    regex: (p.tensor_regex as string[] | null) ?? null,
  };
}

/** The tensors a rule inspects: by collection, by name pattern, or both; one of them is needed. */
export const SELECTOR_ALTERNATIVES = ["collection_names", "tensor_regex"] as const;

export function describeSelector(p: ParsedParameters): string {
  const parts: string[] = [];
  if (p.collection_names) parts.push(`collection_names=${(p.collection_names as string[]).join(",")}`);
  if (p.tensor_regex) parts.push(`tensor_regex=${(p.tensor_regex as string[]).join(",")}`);
  return parts.join(" and ") || "the selected tensors";
}

/** Numeric elements, or null for string tensors. */
export function numeric(t: TensorData | undefined): Float64Array | null {
  return t && t.values ? t.values : null;
}

export function scalarOf(t: TensorData | undefined): number | undefined {
  const v = numeric(t);
  return v && v.length === 1 ? v[0] : undefined;
}

/** Short number text for status details. */
export function fmt(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  return Number(n.toPrecision(6)).toString();
}

/** numpy.allclose(a, b, rtol, atol, equal_nan): |a − b| ≤ atol + rtol·|b| elementwise. */
export function allclose(a: TensorData, b: TensorData, rtol: number, atol: number, equalNan: boolean): boolean {
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) return false;
  if (a.strings || b.strings) {
    if (!a.strings || !b.strings || a.strings.length !== b.strings.length) return false;
    return a.strings.every((s, i) => s === b.strings![i]);
  }
  const x = a.values!;
  const y = b.values!;
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) {
    const p = x[i];
    const q = y[i];
    if (Number.isNaN(p) || Number.isNaN(q)) {
      if (equalNan && Number.isNaN(p) && Number.isNaN(q)) continue;
      return false;
    }
    if (p === q) continue; // also equal infinities
    if (!(Math.abs(p - q) <= atol + rtol * Math.abs(q))) return false;
  }
  return true;
}

/** Population variance (numpy.var, ddof 0). */
export function variance(v: Float64Array): number {
  let mean = 0;
  for (let i = 0; i < v.length; i++) mean += v[i];
  mean /= v.length;
  let s = 0;
  for (let i = 0; i < v.length; i++) s += (v[i] - mean) * (v[i] - mean);
  return s / v.length;
}

/**
 * Class ids from a label or prediction tensor: argmax over the last axis for [N, K] (K > 1) when
 * `argmax` is set or the tensor is 2-D, else each value rounded to the nearest integer.
 */
export function classIds(t: TensorData, argmax: boolean): number[] {
  const v = t.values;
  if (!v) return [];
  const k = t.shape.length >= 2 ? t.shape[t.shape.length - 1] : 1;
  if ((argmax || t.shape.length >= 2) && k > 1) {
    const out: number[] = [];
    for (let r = 0; r + k <= v.length; r += k) {
      let best = 0;
      for (let j = 1; j < k; j++) if (v[r + j] > v[r + best]) best = j;
      out.push(best);
    }
    return out;
  }
  return Array.from(v, (x) => Math.round(x));
}

/**
 * XGBoost eval tensors `<evalset>-<metric>` grouped by metric: the set whose name contains
 * "train" is the training series, the others are validation series.
 */
export function pairEvalMetrics(names: readonly string[]): { metric: string; train: string; validation: string[] }[] {
  const byMetric = new Map<string, { train: string | null; others: string[] }>();
  for (const n of names) {
    const m = /^([^-/]+)-(.+)$/.exec(n);
    if (!m) continue;
    let g = byMetric.get(m[2]);
    if (!g) byMetric.set(m[2], (g = { train: null, others: [] }));
    if (/train/i.test(m[1]) && g.train === null) g.train = n;
    else g.others.push(n);
  }
  const out: { metric: string; train: string; validation: string[] }[] = [];
  for (const [metric, g] of [...byMetric].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    if (g.train && g.others.length) out.push({ metric, train: g.train, validation: g.others.sort() });
  }
  return out;
}

export function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/**
 * Percent of a layer's units that are inactive: axis 0 of a tensor of rank ≥ 2 holds the samples,
 * every other position is a unit (a rank-0/1 tensor is one sample of size units). A unit is
 * inactive when `active(x)` held for less than `thresholdPercent` % of the samples.
 */
export function inactiveUnitsPercent(t: TensorData, active: (x: number) => boolean, thresholdPercent: number): number {
  const v = t.values!;
  const samples = t.shape.length >= 2 ? t.shape[0] : 1;
  if (samples === 0 || v.length === 0) return 0;
  const units = v.length / samples;
  const activeCount = new Int32Array(units);
  for (let i = 0; i < v.length; i++) if (active(v[i])) activeCount[i % units]++;
  let inactive = 0;
  for (let u = 0; u < units; u++) if ((100 * activeCount[u]) / samples < thresholdPercent) inactive++;
  return (100 * inactive) / units;
}

/** numpy.percentile (linear interpolation) of the finite elements; NaN when there is none. */
export function percentiles(v: Float64Array, qs: readonly number[]): number[] {
  let n = 0;
  for (let i = 0; i < v.length; i++) if (Number.isFinite(v[i])) n++;
  if (n === 0) return qs.map(() => NaN);
  const sorted = new Float64Array(n);
  let k = 0;
  for (let i = 0; i < v.length; i++) if (Number.isFinite(v[i])) sorted[k++] = v[i];
  sorted.sort();
  return qs.map((q) => {
    const at = (q / 100) * (n - 1);
    const lo = Math.floor(at);
    const hi = Math.min(lo + 1, n - 1);
    return sorted[lo] + (sorted[hi] - sorted[lo]) * (at - lo);
  });
}

/** The gradient tensors at a step: the gradients collection, or names starting with gradient(s)/ when the trial has none. */
export function gradientNames(trial: TrialView, step: number): string[] {
  return trial.collectionNames().includes("gradients")
    ? trial.select({ collections: ["gradients"] }, step)
    : trial.select({ regex: ["^gradients?/"] }, step);
}
