/**
 * Series downsampling for plots: per bucket keep the extremes (so spikes survive), always keep
 * the first and last point. Returns the kept indexes, ascending.
 */
export function minMaxDownsample(values: ArrayLike<number>, maxPoints: number): number[] {
  const n = values.length;
  if (n <= maxPoints || maxPoints < 1) return Array.from({ length: n }, (_, i) => i);
  if (maxPoints < 4) {
    return maxPoints === 1 ? [0] : [0, n - 1];
  }
  const keep = new Set<number>([0, n - 1]);
  const buckets = Math.floor((maxPoints - 2) / 2);
  const inner = n - 2;
  for (let b = 0; b < buckets; b++) {
    const from = 1 + Math.floor((b * inner) / buckets);
    const to = 1 + Math.floor(((b + 1) * inner) / buckets);
    if (to <= from) continue;
    let lo = from;
    let hi = from;
    for (let i = from; i < to; i++) {
      const v = values[i];
      // NaN/Infinity points are kept as extremes too: a plot should show where they are.
      if (!Number.isFinite(v)) { lo = i; continue; }
      if (Number.isFinite(values[lo]) && v < values[lo]) lo = i;
      if (!Number.isFinite(values[hi]) || v > values[hi]) hi = i;
    }
    keep.add(lo);
    keep.add(hi);
  }
  return [...keep].sort((a, b) => a - b);
}
