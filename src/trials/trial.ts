/**
 * A trial: smdebug's analysis API over a ByteSource (spec §5–§6).
 *
 * The index lives in memory and grows by incremental refreshes: only index files not read before
 * are fetched. Tensor values are read by byte range through the index, never by parsing a whole
 * event file, and every read of one batch that hits the same event file becomes one read.
 */
import type { ByteSource } from "../storage/byte-source.js";
import { internalError, TrialgraphError } from "../errors.js";
import type { Mode, TensorData } from "../format/tensor.js";
import { MODES } from "../format/tensor.js";
import { parseIndexFile, type ParsedIndexFile } from "../format/index-file.js";
import { parseCollectionsFile, type CollectionInfo } from "../format/collections-file.js";
import { cachedPythonRegex, PythonRegexError, type PatternMatcher } from "../format/python-regex.js";
import {
  COLLECTIONS_PREFIX, END_OF_TRAINING, INDEX_PREFIX, indexFileKey, parseCollectionsKey, parseIndexKey,
} from "../format/locations.js";
import { recordPayloadEnd, RecordError } from "../format/tfrecord.js";
import { coalesceRanges } from "../storage/ranges.js";
import { decodeEventTensor, decodeScalarEvent, EventDecodeError, TensorTooLargeError } from "../format/event.js";
import { ELEMENT_BYTES, type ReadBudget } from "./budget.js";
import { ProtoError } from "../format/protobuf.js";
import type { ValueCache } from "./value-cache.js";
import { TensorIndex, type RecordRef } from "./tensor-index.js";

/** Records to read from one event file, as parallel columns (no object per record). */
class RecordBatch {
  readonly start: number[] = [];
  readonly length: number[] = [];
  push(start: number, length: number): void {
    this.start.push(start);
    this.length.push(length);
  }
  get size(): number {
    return this.start.length;
  }
}

interface StepInfo {
  mode: Mode;
  modeStep: number;
  workers: Set<string>;
}

export interface ValueRequest {
  name: string;
  step: number;
  mode?: Mode | null;
  worker?: string | null;
}

/** A scalar tensor over its steps: parallel arrays. */
export interface ScalarSeries {
  steps: number[];
  values: Float64Array;
}

export interface TensorNamesQuery {
  regex?: string | string[] | null;
  collection?: string | null;
  mode?: Mode | null;
  step?: number | null;
}

export interface RefreshResult {
  /** Global steps that became complete in this refresh, ascending. */
  newSteps: number[];
  trainingEnded: boolean;
}

export interface TrialOptions {
  /** Decoded series (and, with cacheValues, single values) are kept here. */
  cache?: ValueCache;
  /** Cache single decoded values too (worth it when bytes are remote). */
  cacheValues?: boolean;
  /** Parallel index-file reads during a refresh. */
  concurrency?: number;
  /** A refresh is skipped when the last one finished less than this long ago (ms). */
  minRefreshIntervalMs?: number;
}

const COLLECTIONS_FILE = /_?collections\.json$/;
/** Why a record could not be read from its event file (wording the rule engine also recognizes as "not yet"). */
const MISSING_FILE = "its event file does not exist (yet)";
const SHORT_FILE = "its event file is not completely written yet";
/** Records of one event file closer than this are read as one span (a page-cache or S3 read costs about this much). */
const SPAN_GAP = 64 * 1024;

export function badRegex(pattern: string, why?: string): TrialgraphError {
  return new TrialgraphError("BAD_USER_INPUT", `invalid regular expression ${JSON.stringify(pattern)}${why ? `: ${why}` : ""}`, { field: "regex" });
}

/** A user's pattern, compiled for linear-time search (BAD_USER_INPUT when it cannot run). */
export function compileUserRegex(pattern: string): PatternMatcher {
  try {
    return cachedPythonRegex(pattern);
  } catch (e) {
    if (e instanceof PythonRegexError) throw badRegex(pattern, e.message);
    throw e;
  }
}

/** A collections file's pattern: one that cannot run matches nothing rather than failing every query. */
function fileRegex(pattern: string): PatternMatcher | null {
  try {
    return cachedPythonRegex(pattern);
  } catch {
    return null;
  }
}

function unavailable(name: string, step: number, mode: Mode, why: string): TrialgraphError {
  // An expected answer, often by the thousand (rules probing steps): no stack trace to capture.
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return unavailableError(name, step, mode, why);
  } finally {
    Error.stackTraceLimit = limit;
  }
}

function unavailableError(name: string, step: number, mode: Mode, why: string): TrialgraphError {
  return new TrialgraphError("TENSOR_UNAVAILABLE_FOR_STEP", `tensor ${name} is not available for step ${step} (mode ${mode}): ${why}`, {
    tensor: name, step, mode,
  });
}

/**
 * Long reads and decodes give the event loop a turn every few milliseconds, so one bulk request
 * (or a rule evaluation over a whole trial) never stalls the other requests.
 */
let lastYield = performance.now();
const YIELD_EVERY_MS = 10;
export async function yieldIfBusy(): Promise<void> {
  const now = performance.now();
  if (now - lastYield < YIELD_EVERY_MS) return;
  await new Promise<void>((resolve) => setImmediate(resolve));
  lastYield = performance.now();
}

/** Runs `fn` over items with at most `limit` in flight. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  });
  await Promise.all(workers);
  return out;
}

let nextTrialSerial = 0;

export class Trial {
  /** Short, process-unique id for cache keys. */
  private readonly serial = (nextTrialSerial++).toString(36);
  /** Collections by name (from the first collections file). */
  private collectionsByName = new Map<string, CollectionInfo>();
  private collectionsLoaded = false;
  private numWorkers = 1;
  private workerSet = new Set<string>();

  private readIndexKeys = new Set<string>();
  /** Index files listed but not readable yet (half-uploaded or corrupt): retried on every refresh. */
  private pendingIndexKeys = new Set<string>();
  /** Index files still unreadable once training ended: damage, by global step. */
  private corruptIndex = new Map<number, string>();
  private indexToken: string | undefined;

  private tensorsByName = new Map<string, TensorIndex>();
  /** Worker names by id (the index stores ids). */
  private workerNames: string[] = [];
  private workerIds = new Map<string, number>();
  private namesAtStepCache = new Map<number, string[]>();
  private stepsInfo = new Map<number, StepInfo>();
  private modeStepToGlobal = new Map<Mode, Map<number, number>>();
  private tensorsByMode = new Map<Mode, Set<string>>();
  readonly eventFiles: string[] = [];
  private eventFileIds = new Map<string, number>();

  private _lastCompleteStep = -1;
  private loadedAllSteps = false;
  private refreshing: Promise<RefreshResult> | null = null;
  private lastRefreshAt = 0;
  private sortedStepsCache: number[] | null = null;

  private constructor(
    readonly path: string,
    readonly source: ByteSource,
    private readonly options: TrialOptions,
  ) {}

  /** Opens the trial at `source`; null when nothing that looks like a trial is there. */
  static async open(source: ByteSource, path: string, options: TrialOptions = {}): Promise<Trial | null> {
    const trial = new Trial(path, source, options);
    await trial.refresh({ force: true });
    if (!trial.collectionsLoaded && trial.stepsInfo.size === 0 && !trial.loadedAllSteps) return null;
    return trial;
  }

  get trainingEnded(): boolean {
    return this.loadedAllSteps;
  }

  get lastCompleteStep(): number | null {
    return this._lastCompleteStep >= 0 ? this._lastCompleteStep : null;
  }

  get workers(): string[] {
    const all = new Set(this.workerSet);
    for (const info of this.stepsInfo.values()) for (const w of info.workers) all.add(w);
    return [...all].sort();
  }

  /**
   * Reads what is new since the last refresh. Concurrent callers share one refresh; callers that
   * do not force it skip it when the trial ended or was refreshed moments ago.
   */
  refresh(opts: { force?: boolean } = {}): Promise<RefreshResult> {
    if (this.refreshing) return this.refreshing;
    const minInterval = this.options.minRefreshIntervalMs ?? 0;
    if (!opts.force && (this.loadedAllSteps || Date.now() - this.lastRefreshAt < minInterval)) {
      return Promise.resolve({ newSteps: [], trainingEnded: this.loadedAllSteps });
    }
    this.refreshing = this.doRefresh().finally(() => {
      this.refreshing = null;
      this.lastRefreshAt = Date.now();
    });
    return this.refreshing;
  }

  private async doRefresh(): Promise<RefreshResult> {
    if (this.loadedAllSteps) return { newSteps: [], trainingEnded: true };
    const completeBefore = new Set(this.steps());
    if (!this.collectionsLoaded) await this.loadCollections();
    // The end marker is checked first: everything listed after it is final.
    const ended = await this.hasEndMarker();
    await this.readNewIndexFiles();
    if (ended) {
      await this.readNewIndexFiles();
      this.loadedAllSteps = true;
      // Nothing more will be written: an index file that still does not parse is corrupt, and its step is named
      // wherever it is asked for rather than vanishing.
      for (const key of this.pendingIndexKeys) {
        const parsed = parseIndexKey(key);
        if (parsed && !this.corruptIndex.has(parsed.step)) this.corruptIndex.set(parsed.step, key);
      }
      const maxStep = Math.max(-1, ...this.stepsInfo.keys());
      if (maxStep > this._lastCompleteStep) this._lastCompleteStep = maxStep;
    }
    this.sortedStepsCache = null;
    const newSteps = this.steps().filter((s) => !completeBefore.has(s));
    return { newSteps, trainingEnded: this.loadedAllSteps };
  }

  private async hasEndMarker(): Promise<boolean> {
    return (await this.source.list(END_OF_TRAINING)).length > 0;
  }

  private async loadCollections(): Promise<void> {
    const keys = (await this.source.list(COLLECTIONS_PREFIX)).filter(
      (k) => !k.endsWith(".tmp") && (this.source.location.startsWith("s3://") || COLLECTIONS_FILE.test(k)),
    );
    if (keys.length === 0) return;
    const text = await this.source.read(keys[0]);
    if (!text) return;
    let parsed;
    try {
      parsed = parseCollectionsFile(text.toString("utf8"));
    } catch {
      return; // half-written: try again on the next refresh
    }
    for (const c of parsed.collections) this.collectionsByName.set(c.name, c);
    this.numWorkers = parsed.numWorkers;
    for (const k of keys) {
      const w = parseCollectionsKey(k);
      if (w) this.workerSet.add(w);
    }
    this.collectionsLoaded = true;
  }

  private async readNewIndexFiles(): Promise<void> {
    const listed = await this.source.list(INDEX_PREFIX, this.indexToken);
    const found = listed.map((key) => ({ key, parsed: parseIndexKey(key) })).filter((k) => k.parsed && !this.readIndexKeys.has(k.key));
    for (const key of this.pendingIndexKeys) {
      if (!found.some((f) => f.key === key)) found.push({ key, parsed: parseIndexKey(key) });
    }
    if (found.length === 0) return;
    // Step order, so "the first writer of a step wins" holds; chunks bound the memory of a big first refresh.
    found.sort((a, b) => a.parsed!.step - b.parsed!.step || (a.key < b.key ? -1 : 1));
    const chunk = Math.max(16, (this.options.concurrency ?? 16) * 4);
    for (let i = 0; i < found.length; i += chunk) {
      const part = found.slice(i, i + chunk);
      const files = await mapLimit(part, this.options.concurrency ?? 16, async ({ key }) => {
        const bytes = await this.source.read(key);
        if (!bytes) return null;
        try {
          return parseIndexFile(bytes.toString("utf8"));
        } catch {
          return null; // half-written or corrupt: "not yet"
        }
      });
      part.forEach(({ key, parsed }, j) => {
        const file = files[j];
        if (!file) {
          this.pendingIndexKeys.add(key);
          return;
        }
        this.pendingIndexKeys.delete(key);
        this.readIndexKeys.add(key);
        this.register(parsed!.step, parsed!.worker, file);
      });
    }
    this.advanceToken(listed[listed.length - 1]);
  }

  private register(step: number, worker: string, f: ParsedIndexFile): void {
    let info = this.stepsInfo.get(step);
    if (!info) {
      info = { mode: f.mode, modeStep: f.modeStep, workers: new Set() };
      this.stepsInfo.set(step, info);
      this.sortedStepsCache = null;
    }
    info.workers.add(worker);
    this.namesAtStepCache.delete(step);
    let byModeStep = this.modeStepToGlobal.get(f.mode);
    if (!byModeStep) this.modeStepToGlobal.set(f.mode, (byModeStep = new Map()));
    if (!byModeStep.has(f.modeStep)) byModeStep.set(f.modeStep, step);
    let workerId = this.workerIds.get(worker);
    if (workerId === undefined) {
      workerId = this.workerNames.push(worker) - 1;
      this.workerIds.set(worker, workerId);
    }

    let fileId = -1;
    if (f.eventFile) {
      fileId = this.eventFileIds.get(f.eventFile) ?? -1;
      if (fileId < 0) {
        fileId = this.eventFiles.push(f.eventFile) - 1;
        this.eventFileIds.set(f.eventFile, fileId);
      }
    }
    const modeNames = f.mode === "GLOBAL" ? null : this.namesOfMode(f.mode);
    for (const t of f.tensors) {
      this.indexOf(t.tensorname).add(step, workerId, fileId, t.start_idx, t.length, null);
      modeNames?.add(t.tensorname);
    }
    for (const sh of f.shapes) {
      this.indexOf(sh.name).add(step, workerId, -1, 0, 0, sh.shape);
      modeNames?.add(sh.name);
    }
    if (info.workers.size >= this.numWorkers && step > this._lastCompleteStep) this._lastCompleteStep = step;
  }

  private indexOf(name: string): TensorIndex {
    let index = this.tensorsByName.get(name);
    if (!index) this.tensorsByName.set(name, (index = new TensorIndex()));
    return index;
  }

  private namesOfMode(mode: Mode): Set<string> {
    let names = this.tensorsByMode.get(mode);
    if (!names) this.tensorsByMode.set(mode, (names = new Set()));
    return names;
  }

  /**
   * Lists resume after the last complete step's file (for its last worker), so files of
   * incomplete steps that other workers write late are still listed next time.
   */
  private advanceToken(lastListed: string | undefined): void {
    if (!lastListed) return;
    if (this._lastCompleteStep < 0) return;
    const workers = this.workers;
    const lastWorker = workers[workers.length - 1] ?? "worker_0";
    const token = indexFileKey(this._lastCompleteStep, lastWorker.replace(/\//g, "_").replace(/:/g, "-"));
    // Keys are relative to the trial root; the listing compares them lexicographically.
    if (!this.indexToken || token > this.indexToken) {
      this.indexToken = token;
      // Keys at or before the token can never be listed again: forget them (soft memory bound).
      if (this.readIndexKeys.size > 1000) {
        for (const k of this.readIndexKeys) if (k <= token) this.readIndexKeys.delete(k);
      }
    }
  }

  private isComplete(step: number): boolean {
    const info = this.stepsInfo.get(step);
    if (!info) return false;
    return this.loadedAllSteps || step <= this._lastCompleteStep || info.workers.size >= this.numWorkers;
  }

  /** All known global steps (complete or not), ascending. */
  private globalSteps(): number[] {
    if (!this.sortedStepsCache) this.sortedStepsCache = [...this.stepsInfo.keys()].sort((a, b) => a - b);
    return this.sortedStepsCache;
  }

  /** Complete steps; mode steps when a non-GLOBAL mode is given. */
  steps(mode?: Mode | null): number[] {
    const out: number[] = [];
    for (const s of this.globalSteps()) {
      if (!this.isComplete(s)) continue;
      if (!mode || mode === "GLOBAL") out.push(s);
      else {
        const info = this.stepsInfo.get(s)!;
        if (info.mode === mode) out.push(info.modeStep);
      }
    }
    return mode && mode !== "GLOBAL" ? [...new Set(out)].sort((a, b) => a - b) : out;
  }

  /** Modes seen other than GLOBAL (as smdebug's trial.modes()). */
  modes(): Mode[] {
    return MODES.filter((m) => m !== "GLOBAL" && this.modeStepToGlobal.has(m));
  }

  /** The global step of a mode step, or null. */
  globalStep(mode: Mode, modeStep: number): number | null {
    if (mode === "GLOBAL") return this.stepsInfo.has(modeStep) ? modeStep : null;
    return this.modeStepToGlobal.get(mode)?.get(modeStep) ?? null;
  }

  modeOfStep(step: number): { mode: Mode; modeStep: number } | null {
    const info = this.stepsInfo.get(step);
    return info ? { mode: info.mode, modeStep: info.modeStep } : null;
  }

  collectionNames(): string[] {
    return [...this.collectionsByName.keys()].sort();
  }

  collection(name: string): CollectionInfo | null {
    return this.collectionsByName.get(name) ?? null;
  }

  allCollections(): CollectionInfo[] {
    return this.collectionNames().map((n) => this.collectionsByName.get(n)!);
  }

  hasTensor(name: string): boolean {
    return this.tensorsByName.has(name);
  }

  /** Members of a collection among `names`: its listed names plus every name its regexes match. */
  private inCollection(c: CollectionInfo, names: Iterable<string>): string[] {
    const listed = new Set(c.tensorNames);
    // A regex JS cannot compile matches nothing rather than failing every query.
    const regexes = c.includeRegex.map(fileRegex).filter((r): r is PatternMatcher => r !== null);
    const out: string[] = [];
    for (const n of names) if (listed.has(n) || regexes.some((r) => r.test(n))) out.push(n);
    return out;
  }

  /** Names saved at a step, sorted; memoized until that step gets another index file. */
  private namesAtStep(step: number): string[] {
    let names = this.namesAtStepCache.get(step);
    if (!names) {
      names = [];
      for (const [name, index] of this.tensorsByName) if (index.has(step)) names.push(name);
      names.sort();
      this.namesAtStepCache.set(step, names);
    }
    return names;
  }

  /** smdebug's trial.tensor_names(step, mode, regex, collection), sorted. */
  tensorNames(q: TensorNamesQuery = {}): string[] {
    const mode = q.mode ?? "GLOBAL";
    let base: Iterable<string>;
    if (q.step === undefined || q.step === null) {
      base = mode === "GLOBAL" ? this.tensorsByName.keys() : this.tensorsByMode.get(mode) ?? [];
    } else {
      const global = mode === "GLOBAL" ? q.step : this.globalStep(mode, q.step);
      base = global === null || !this.stepsInfo.has(global) ? [] : this.namesAtStep(global);
    }
    const hasRegex = q.regex !== undefined && q.regex !== null && (!Array.isArray(q.regex) || q.regex.length > 0);
    if (hasRegex && q.collection) {
      throw new TrialgraphError("BAD_USER_INPUT", "give either regex or collection, not both", { field: "regex" });
    }
    let names: string[];
    if (hasRegex) {
      const regexes = (Array.isArray(q.regex) ? q.regex : [q.regex!]).map(compileUserRegex);
      names = [...base].filter((n) => regexes.some((r) => r.test(n)));
    } else if (q.collection) {
      const c = this.collectionsByName.get(q.collection);
      names = c ? this.inCollection(c, base) : [];
    } else names = [...base];
    return names.sort();
  }

  /** Steps at which the tensor was saved (complete steps only); mode steps for a non-GLOBAL mode. */
  tensorSteps(name: string, mode?: Mode | null): number[] {
    const index = this.tensorsByName.get(name);
    if (!index) return [];
    const out: number[] = [];
    const global = !mode || mode === "GLOBAL";
    for (const step of index.steps) {
      if (!this.isComplete(step)) continue;
      if (global) out.push(step);
      else {
        const info = this.stepsInfo.get(step)!;
        if (info.mode === mode) out.push(info.modeStep);
      }
    }
    // Global steps are already ascending; mode steps follow them but need not.
    return global ? out : out.sort((a, b) => a - b);
  }

  /** Workers that wrote the tensor at a (global or mode) step. */
  tensorWorkers(name: string, step: number, mode?: Mode | null): string[] {
    const global = !mode || mode === "GLOBAL" ? step : this.globalStep(mode, step);
    if (global === null) return [];
    return (this.tensorsByName.get(name)?.workersAt(global) ?? []).map((w) => this.workerNames[w]).sort();
  }

  /** The saved shape, without reading the value when the index knows it. */
  knownShape(name: string, step: number): number[] | null {
    return this.tensorsByName.get(name)?.shapeAt(step) ?? null;
  }

  /** CORRUPT_RECORD when the trial ended with an unreadable index file for a global step in [from, to]. */
  corruptStepError(from: number | null = null, to: number | null = null): TrialgraphError | null {
    for (const [step, key] of this.corruptIndex) {
      if ((from === null || step >= from) && (to === null || step <= to)) {
        return this.corrupt(key, null, `the index file of step ${step} is unreadable (not valid smdebug index JSON), though training ended: the step cannot be read`);
      }
    }
    return null;
  }

  private locate(req: ValueRequest): RecordRef {
    const mode = req.mode ?? "GLOBAL";
    if (this.corruptIndex.size && (!mode || mode === "GLOBAL")) {
      const damaged = this.corruptStepError(req.step, req.step);
      if (damaged && !this.tensorsByName.get(req.name)?.has(req.step)) throw damaged;
    }
    const index = this.tensorsByName.get(req.name);
    if (!index) {
      throw new TrialgraphError("TENSOR_UNAVAILABLE_FOR_STEP", `tensor ${req.name} does not exist in trial ${this.path}`, {
        tensor: req.name, step: req.step, mode,
      });
    }
    const global = mode === "GLOBAL" ? req.step : this.globalStep(mode, req.step);
    const workerId = req.worker ? this.workerIds.get(req.worker) ?? -3 : null;
    const slot = global === null ? -1 : index.slotAt(global, workerId, (w) => this.workerNames[w]);
    if (slot === -1) {
      const why = this.stepsInfo.has(req.step) || (global !== null && this.stepsInfo.has(global))
        ? "the tensor was not saved at this step"
        : this.loadedAllSteps || req.step < this._lastCompleteStep
          ? "the step was not saved"
          : "the step is not available yet";
      throw unavailable(req.name, req.step, mode, why);
    }
    if (slot < 0) {
      throw new TrialgraphError("BAD_USER_INPUT", `worker ${req.worker} did not write tensor ${req.name} at step ${req.step}`, { field: "worker" });
    }
    if (index.fileOf(slot) < 0) throw unavailable(req.name, req.step, mode, "only its shape was saved");
    return index.ref(slot);
  }

  private cacheKey(fileId: number, start: number): string {
    return `${this.serial}:${fileId}:${start}`;
  }

  /** One tensor value. Throws TENSOR_UNAVAILABLE_FOR_STEP when it does not exist. */
  async value(name: string, step: number, opts: { mode?: Mode | null; worker?: string | null } = {}): Promise<TensorData> {
    const [v] = await this.values([{ name, step, mode: opts.mode, worker: opts.worker }]);
    if (v instanceof Error) throw v;
    return v;
  }

  /**
   * Many values in one batch: requests that hit the same event file become one ranged read.
   * Each result is the value or the error for that request (the batch never fails as a whole).
   */
  async values(requests: readonly ValueRequest[], budget?: ReadBudget): Promise<(TensorData | TrialgraphError)[]> {
    const out = new Array<TensorData | TrialgraphError>(requests.length);
    const byFile = new Map<number, { index: number[]; records: RecordBatch }>();
    const cache = this.options.cacheValues ? this.options.cache : undefined;
    for (let index = 0; index < requests.length; index++) {
      let entry: RecordRef;
      try {
        entry = this.locate(requests[index]);
      } catch (e) {
        out[index] = e as TrialgraphError;
        continue;
      }
      const cached = cache?.get(this.cacheKey(entry.file, entry.start));
      if (cached) {
        out[index] = budget && !budget.take(0, sizeOf(cached)) ? budget.error() : cached;
        continue;
      }
      let group = byFile.get(entry.file);
      if (!group) byFile.set(entry.file, (group = { index: [], records: new RecordBatch() }));
      group.index.push(index);
      group.records.push(entry.start, entry.length);
    }
    await this.visitRecords(
      byFile,
      (g, k, buf, at, file, fileId) => {
        const i = g.index[k];
        const req = requests[i];
        const start = g.records.start[k];
        if (typeof buf === "string") {
          out[i] = this.unreadable(req.name, req.step, req.mode ?? "GLOBAL", buf, file, start);
          return;
        }
        try {
          // The declared size must fit what the request may still hold before the tensor is allocated.
          const value = this.decode(buf, at, file, start, g.records.length[k], req.name, budget ? budget.remainingBytes / ELEMENT_BYTES : Infinity);
          if (budget && !budget.take(0, sizeOf(value))) {
            out[i] = budget.error();
            return;
          }
          out[i] = value;
          cache?.set(this.cacheKey(fileId, start), value);
        } catch (e) {
          out[i] = e instanceof TensorTooLargeError && budget ? budget.error() : (e as TrialgraphError);
        }
      },
      (g, error) => g.index.forEach((i) => (out[i] = error)),
      budget,
    );
    return out;
  }

  /**
   * Reads the records of every group (one read per event file, bounded concurrency) and hands each
   * record to `visit` as its buffer and offset, or as the reason it cannot be read yet.
   */
  private async visitRecords<G extends { records: RecordBatch }>(
    byFile: Map<number, G>,
    visit: (group: G, k: number, buf: Buffer | typeof MISSING_FILE | typeof SHORT_FILE, at: number, file: string, fileId: number) => void,
    failed: (group: G, error: TrialgraphError) => void,
    budget?: ReadBudget,
  ): Promise<void> {
    await mapLimit([...byFile], this.options.concurrency ?? 16, async ([fileId, g]) => {
      await yieldIfBusy();
      if (budget?.exhausted) {
        failed(g, budget.error()); // spent, or the client left: nothing more is read
        return;
      }
      const file = this.eventFiles[fileId];
      let read;
      try {
        read = await this.readRecords(file, g.records, budget?.remainingBytes);
      } catch (e) {
        failed(g, e instanceof TrialgraphError ? e : internalError(`reading ${this.path}/${file} failed`, e));
        return;
      }
      for (let k = 0; k < g.records.size; k++) {
        if (!read) {
          visit(g, k, MISSING_FILE, 0, file, fileId);
          continue;
        }
        const buf = read.buffers[read.span[k]];
        const at = read.offset[k];
        if (buf.length < at + g.records.length[k]) visit(g, k, SHORT_FILE, at, file, fileId);
        else visit(g, k, buf, at, file, fileId);
      }
    });
  }

  /**
   * Reads the records of one event file as a few spans (records closer than SPAN_GAP share one),
   * so decoding works on offsets into a handful of buffers instead of one buffer per record.
   * For each entry: its span's buffer and its offset there; null when the file does not exist.
   */
  private async readRecords(file: string, records: RecordBatch, maxBytes?: number): Promise<{ buffers: Buffer[]; span: Int32Array; offset: Float64Array } | null> {
    const n = records.size;
    const span = new Int32Array(n);
    const offset = new Float64Array(n);
    let lo = Infinity;
    let hi = 0;
    let total = 0;
    for (let k = 0; k < n; k++) {
      const s = records.start[k];
      const e = s + records.length[k];
      if (s < lo) lo = s;
      if (e > hi) hi = e;
      total += records.length[k];
    }
    // Usually the records asked for fill most of their span: read it whole, no sorting.
    if (hi - lo <= Math.max(SPAN_GAP, 2 * total)) {
      const buffers = await this.source.readRanges(file, [{ start: lo, length: hi - lo }], { maxBytes });
      if (!buffers) return null;
      for (let k = 0; k < n; k++) offset[k] = records.start[k] - lo;
      return { buffers, span, offset };
    }
    const ranges = records.start.map((start, k) => ({ start, length: records.length[k] }));
    const groups = coalesceRanges(ranges, SPAN_GAP);
    const buffers = await this.source.readRanges(file, groups, { maxBytes });
    if (!buffers) return null;
    groups.forEach((g, gi) => {
      for (const m of g.members) {
        span[m] = gi;
        offset[m] = ranges[m].start - g.start;
      }
    });
    return { buffers, span, offset };
  }

  /**
   * Scalar tensors over all their (complete) steps, for many tensors in one batch: one read per
   * event file, values decoded straight into one Float64Array per tensor (no object per value).
   */
  async scalarSeries(requests: readonly { name: string; mode?: Mode | null }[], budget?: ReadBudget): Promise<(ScalarSeries | TrialgraphError)[]> {
    const out = new Array<ScalarSeries | TrialgraphError>(requests.length);
    const cache = this.options.cache;
    const byFile = new Map<number, { req: number[]; pos: number[]; records: RecordBatch }>();
    requests.forEach((req, r) => {
      const steps = this.tensorSteps(req.name, req.mode);
      const key = `${this.serial}:s:${req.mode ?? "GLOBAL"}:${steps.length}:${steps[steps.length - 1]}:${req.name}`;
      const cached = cache?.get(key);
      if (cached) {
        out[r] = { steps, values: cached.values! };
        return;
      }
      const series: ScalarSeries = { steps, values: new Float64Array(steps.length) };
      out[r] = series;
      const index = this.tensorsByName.get(req.name);
      const global = !req.mode || req.mode === "GLOBAL";
      let lastFile = -1;
      let group: { req: number[]; pos: number[]; records: RecordBatch } | undefined;
      for (let i = 0; i < steps.length; i++) {
        // Steps listed by tensorSteps exist; only mode steps need translating.
        const slot = index ? index.slotAt(global ? steps[i] : this.globalStep(req.mode!, steps[i]) ?? -1, null, (w) => this.workerNames[w]) : -1;
        const file = slot >= 0 ? index!.fileOf(slot) : -1;
        if (file < 0) {
          out[r] = unavailable(req.name, steps[i], req.mode ?? "GLOBAL", "only its shape was saved");
          return;
        }
        if (file !== lastFile) {
          lastFile = file;
          group = byFile.get(file);
          if (!group) byFile.set(file, (group = { req: [], pos: [], records: new RecordBatch() }));
        }
        group!.req.push(r);
        group!.pos.push(i);
        group!.records.push(index!.startOf(slot), index!.lengthOf(slot));
      }
    });
    await this.visitRecords(
      byFile,
      (g, k, buf, at, file) => {
        const r = g.req[k];
        const series = out[r];
        if (series instanceof Error) return;
        const start = g.records.start[k];
        const length = g.records.length[k];
        const req = requests[r];
        const step = series.steps[g.pos[k]];
        if (typeof buf === "string") {
          out[r] = this.unreadable(req.name, step, req.mode ?? "GLOBAL", buf, file, start);
          return;
        }
        let value: number | undefined;
        try {
          value = decodeScalarEvent(buf, at + 12, recordPayloadEnd(buf, at, at + length));
        } catch {
          value = undefined;
        }
        if (value === undefined) {
          // Not a scalar, or damaged: the full decode says which, precisely.
          try {
            // Only its shape is needed: a tensor declaring many elements is not allocated to learn it.
            let shape: number[];
            try {
              shape = this.decode(buf, at, file, start, length, req.name, 1 << 20).shape;
            } catch (e) {
              if (!(e instanceof TensorTooLargeError)) throw e;
              shape = e.shape;
            }
            out[r] = new TrialgraphError("BAD_USER_INPUT", `series needs a scalar tensor; ${req.name} has shape [${shape}] at step ${step}`, { field: "series" });
          } catch (e) {
            out[r] = e as TrialgraphError;
          }
          return;
        }
        series.values[g.pos[k]] = value;
      },
      (g, error) => g.req.forEach((r) => (out[r] = error)),
      budget,
    );
    if (cache) {
      requests.forEach((req, r) => {
        const series = out[r];
        if (series instanceof Error || series.steps.length === 0) return;
        const key = `${this.serial}:s:${req.mode ?? "GLOBAL"}:${series.steps.length}:${series.steps[series.steps.length - 1]}:${req.name}`;
        cache.set(key, { dtype: "float64", shape: [series.values.length], values: series.values, strings: null });
      });
    }
    return out;
  }

  /**
   * A record that cannot be read: while training runs its file may still come (TENSOR_UNAVAILABLE_FOR_STEP);
   * once training ended, a missing or short event file is damage (CORRUPT_RECORD naming the file).
   */
  private unreadable(name: string, step: number, mode: Mode, why: typeof MISSING_FILE | typeof SHORT_FILE, file: string, start: number): TrialgraphError {
    if (!this.loadedAllSteps) return unavailable(name, step, mode, why);
    return this.corrupt(file, start, why === MISSING_FILE
      ? `the event file is missing, though training ended and the index lists tensor ${name} at step ${step} in it`
      : `the record of tensor ${name} at step ${step} extends past the end of the event file, though training ended`);
  }

  /** CORRUPT_RECORD naming the file relative to the trial (never an absolute path). */
  private corrupt(file: string, offset: number | null, why: string): TrialgraphError {
    return new TrialgraphError("CORRUPT_RECORD", `trial ${this.path}: ${file}${offset === null ? "" : ` at offset ${offset}`}: ${why}`, {
      trial: this.path, file, ...(offset === null ? {} : { offset }),
    });
  }

  /** Decodes the record of `entry`, which starts at `at` in `buf`; TensorTooLargeError past `maxElements`. */
  private decode(buf: Buffer, at: number, file: string, start: number, length: number, name: string, maxElements = Infinity): TensorData {
    const corrupt = (why: string, offset: number) => this.corrupt(file, offset, `corrupt record: ${why}`);
    let end;
    try {
      // Bounded to the entry, so a record claiming more bytes reads as truncated.
      end = recordPayloadEnd(buf, at, at + length);
    } catch (e) {
      if (e instanceof RecordError) throw corrupt(e.message, start + (e.offset - at));
      throw e;
    }
    if (end + 4 - at !== length) throw corrupt("record length does not match the index", start);
    let tensor;
    try {
      tensor = decodeEventTensor(buf, at + 12, end, name, maxElements);
    } catch (e) {
      if (e instanceof TensorTooLargeError) throw e;
      if (e instanceof EventDecodeError || e instanceof ProtoError) throw corrupt(e.message, start);
      throw e;
    }
    if (!tensor) throw corrupt("record holds no tensor", start);
    return tensor;
  }
}

/** Elements of a decoded value (what the budget counts). */
function sizeOf(v: TensorData): number {
  return v.values?.length ?? v.strings?.length ?? 0;
}

/** Opens a trial; null when nothing that looks like a trial is at the source. */
export function openTrial(source: ByteSource, path: string, options?: TrialOptions): Promise<Trial | null> {
  return Trial.open(source, path, options);
}
