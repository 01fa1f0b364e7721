/**
 * Resolves trial paths to open trials: "s3://bucket/prefix" through S3, anything else relative to
 * the data directory and never outside it. Open trials are kept (they hold their index) so later
 * requests only refresh what is new.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import { TrialgraphError } from "../errors.js";
import type { ByteSource } from "../storage/byte-source.js";
import { LocalSource } from "../storage/local-source.js";
import { confinedDir, confinement, type Confinement } from "../storage/confine.js";
import { parseS3Uri } from "../storage/s3-client.js";
import { openTrial, type Trial } from "./trial.js";
import { createValueCache, type ValueCache } from "./value-cache.js";

export interface TrialRegistryOptions {
  dataDir: string;
  /** Builds the source of an s3:// trial; absent when S3 is not available. */
  s3Source?: (uri: string) => ByteSource;
  valueCacheBytes: number;
  /** A live trial is re-listed at most this often by queries (subscriptions refresh on their own). */
  minRefreshIntervalMs?: number;
  /** Trials kept open at once. */
  maxOpenTrials?: number;
  /** When set, s3:// trials must be in one of these buckets (TRIALGRAPH_S3_ALLOWED_BUCKETS). */
  s3AllowedBuckets?: readonly string[] | null;
}

export const TRIALS_DIR = "trials";

function forbidden(p: string): TrialgraphError {
  return new TrialgraphError("FORBIDDEN_PATH", `path ${JSON.stringify(p)} is outside the service's data directory`, { field: "path" });
}

export class TrialRegistry {
  readonly cache: ValueCache;
  private open = new Map<string, Promise<Trial | null>>();
  /** The open trials among `open`, for lookups that must not wait. */
  private settled = new Map<string, Trial>();
  /** Every local trial file resolves inside the data directory (shared: files checked once). */
  private readonly confinement: Confinement;

  constructor(private readonly options: TrialRegistryOptions) {
    this.cache = createValueCache(options.valueCacheBytes);
    this.confinement = confinement(options.dataDir);
  }

  /** The canonical form of a path: "s3://b/p" (no trailing slash) or a normalized data-dir-relative path. */
  normalize(input: string): string {
    const p = input.trim();
    if (p.startsWith("s3://")) return p.replace(/\/+$/, "");
    if (p.includes("\0")) throw forbidden(input);
    const abs = path.resolve(this.options.dataDir, p);
    const rel = path.relative(this.options.dataDir, abs);
    if (rel === "" ) return ".";
    if (rel.startsWith("..") || path.isAbsolute(rel)) throw forbidden(input);
    return rel.split(path.sep).join("/");
  }

  /** The trial at `input`, refreshed if it is still growing; null when nothing is there. */
  async resolve(input: string): Promise<Trial | null> {
    const key = this.normalize(input);
    let pending = this.open.get(key);
    if (!pending) {
      pending = this.openUncached(key);
      this.open.set(key, pending);
      this.evict();
    }
    let trial: Trial | null;
    try {
      trial = await pending;
    } catch (e) {
      this.open.delete(key);
      this.settled.delete(key);
      throw e;
    }
    if (!trial) {
      // Nothing there (yet): do not remember the miss, a trial may appear later.
      if (this.open.get(key) === pending) this.open.delete(key);
      return null;
    }
    if (this.open.get(key) === pending) this.settled.set(key, trial);
    await trial.refresh();
    return trial;
  }

  /** The trial at `input` if it is open already (no I/O, no refresh); null otherwise. */
  opened(input: string): Trial | null {
    let key: string;
    try {
      key = this.normalize(input);
    } catch {
      return null;
    }
    return this.settled.get(key) ?? null;
  }

  private evict(): void {
    const max = this.options.maxOpenTrials ?? 256;
    for (const k of this.open.keys()) {
      if (this.open.size <= max) break;
      this.open.delete(k);
      this.settled.delete(k);
    }
  }

  private async openUncached(key: string): Promise<Trial | null> {
    let source: ByteSource;
    if (key.startsWith("s3://")) {
      if (!this.options.s3Source) {
        throw new TrialgraphError("S3_UNAVAILABLE", "S3 is not configured on this service", { field: "path" });
      }
      checkS3Bucket(key, this.options.s3AllowedBuckets, "path");
      source = this.options.s3Source(key);
    } else {
      const dir = await this.realLocalDir(key);
      if (!dir) return null;
      source = new LocalSource(dir, { confineTo: this.confinement, label: key });
    }
    // Single decoded values are worth caching when bytes are remote; local files sit in the page
    // cache, and decoding them again costs less than the bookkeeping. Whole series are always cached.
    return openTrial(source, key, {
      cache: this.cache,
      cacheValues: key.startsWith("s3://"),
      minRefreshIntervalMs: this.options.minRefreshIntervalMs ?? 1000,
    });
  }

  /** The real directory of a local trial, checked against symlinks that lead out of the data dir. */
  private async realLocalDir(key: string): Promise<string | null> {
    const full = path.join(this.options.dataDir, key);
    const real = await confinedDir(full, this.confinement, { baseDir: this.options.dataDir, key, where: `path ${JSON.stringify(key)}` });
    if (!real) return null;
    const stat = await fs.stat(real);
    return stat.isDirectory() ? real : null;
  }

  /** Paths of the trials under <data>/trials/ (folders holding an index or collections folder). */
  async listLocal(): Promise<string[]> {
    const root = path.join(this.options.dataDir, TRIALS_DIR);
    const out: string[] = [];
    const walk = async (dir: string, rel: string, depth: number): Promise<void> => {
      let entries: import("node:fs").Dirent[];
      try {
        entries = await fs.readdir(dir, { withFileTypes: true });
      } catch {
        return;
      }
      const names = new Set(entries.map((e) => e.name));
      if (names.has("index") || names.has("collections")) {
        out.push(rel);
        return;
      }
      if (depth >= 3) return;
      for (const e of entries) if (e.isDirectory()) await walk(path.join(dir, e.name), `${rel}/${e.name}`, depth + 1);
    };
    await walk(root, TRIALS_DIR, 0);
    return out.filter((p) => p !== TRIALS_DIR).sort();
  }
}

/** FORBIDDEN_PATH unless the s3:// URI's bucket is allowed (no list: every bucket is). */
export function checkS3Bucket(uri: string, allowed: readonly string[] | null | undefined, field: string): void {
  if (!allowed) return;
  const { bucket } = parseS3Uri(uri, field);
  if (!allowed.includes(bucket)) {
    throw new TrialgraphError("FORBIDDEN_PATH", `S3 bucket ${bucket} is not one this service may read (TRIALGRAPH_S3_ALLOWED_BUCKETS)`, { field });
  }
}
