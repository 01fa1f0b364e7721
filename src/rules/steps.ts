/** Step lists (ascending) as rules and the engine walk them. */

/** Count of entries ≤ x in an ascending list (the insertion point after x). */
export function countAtOrBefore(sorted: readonly number[], x: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid] <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The newest entry of an ascending list that is ≤ x, or undefined. */
export function newestAtOrBefore(sorted: readonly number[], x: number): number | undefined {
  const n = countAtOrBefore(sorted, x);
  return n > 0 ? sorted[n - 1] : undefined;
}
