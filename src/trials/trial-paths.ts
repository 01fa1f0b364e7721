/**
 * The trial paths the service knows (the data directory's trials/ and known jobs' trials), and the
 * ones nearest a mistyped path: `trial(path:)` answers null for "nothing there" (the contract), so
 * the hints live where an answer can carry them: trialPaths(near:) and the NOT_FOUND errors.
 */
import { TrialgraphError } from "../errors.js";
import type { TrialRegistry } from "./trial-registry.js";

/** At most this many known paths are ranked (a data folder with more is not browsed by typo). */
const MAX_CANDIDATES = 10_000;
/** Suggestions a NOT_FOUND error carries. */
const SUGGESTIONS = 3;

/** Levenshtein distance (insertions, deletions, substitutions), two rows at a time. */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length];
}

/** The candidates closest to `target` first (ties in name order), at most `n`. */
export function nearest(target: string, candidates: readonly string[], n: number): string[] {
  const t = target.trim().replace(/\/+$/, "");
  return candidates
    .slice(0, MAX_CANDIDATES)
    .map((path) => ({ path, d: editDistance(t, path) }))
    .sort((x, y) => x.d - y.d || (x.path < y.path ? -1 : x.path > y.path ? 1 : 0))
    .slice(0, n)
    .map((x) => x.path);
}

export class TrialPaths {
  /** `jobTrialPaths`: the debug output paths of known jobs (given by the layer that knows jobs). */
  constructor(
    private readonly trials: TrialRegistry,
    private readonly jobTrialPaths: () => Promise<string[]> = async () => [],
  ) {}

  /** Every known trial path, sorted. */
  async list(): Promise<string[]> {
    const paths = new Set(await this.trials.listLocal());
    for (const p of await this.jobTrialPaths().catch(() => [])) paths.add(p);
    return [...paths].sort();
  }

  /** Known paths nearest `target` (a mistyped path), closest first. */
  async near(target: string, n: number): Promise<string[]> {
    let normalized = target;
    try {
      normalized = this.trials.normalize(target);
    } catch {
      // A path outside the data folder is still compared as typed.
    }
    return nearest(normalized, await this.list(), n);
  }

  /** NOT_FOUND for a path with no trial, naming the closest known paths (also as `suggestions`). */
  async notFound(path: string): Promise<TrialgraphError> {
    const suggestions = await this.near(path, SUGGESTIONS).catch(() => []);
    const hint = suggestions.length ? `; closest known: ${suggestions.join(", ")}` : "; no trials are known yet (trialPaths lists them)";
    return new TrialgraphError("NOT_FOUND", `no trial at ${path}${hint}`, { field: "path", suggestions });
  }
}
