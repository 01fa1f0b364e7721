/**
 * A trial: smdebug's analysis API over a ByteSource (spec §5–§6).
 *
 * The index lives in memory and grows by incremental refreshes: only index files not read before
 * are fetched. Tensor values are read by byte range through the index, never by parsing a whole
 * event file, and every read of one batch that hits the same event file becomes one read.
 */
import type { ByteSource } from "../storage/byte-source.js";
import { internalError, TrialgraphError } from "../errors.js";
import type { DType, Mode, TensorData } from "../format/tensor.js";
import { MODES } from "../format/tensor.js";
import { EntryColumns, EntryNames, parseIndexFile, type ParsedIndexFile } from "../format/index-file.js";
import { parseCollectionsFile, type CollectionInfo } from "../format/collections-file.js";
import { cachedPythonRegex, PythonRegexError, type PatternMatcher } from "../format/python-regex.js";
import {
  COLLECTIONS_PREFIX, END_OF_TRAINING, INDEX_PREFIX, indexFileKey, parseCollectionsKey, parseIndexKey,
} from "../format/locations.js";
import { recordPayloadEnd, RecordError } from "../format/tfrecord.js";
import { coalesceRanges } from "../storage/ranges.js";
import { decodeEventTensor, decodeScalarEvent, EventDecodeError, lastScalar, TensorTooLargeError } from "../format/event.js";
import { ELEMENT_BYTES, type ReadBudget } from "./budget.js";
import { ProtoError } from "../format/protobuf.js";
import { parseReductionTensorName, REDUCTIONS_PREFIX, type ReductionName } from "../format/reductions.js";
import type { ValueCache } from "./value-cache.js";
import { TensorIndex, type RecordRef } from "./tensor-index.js";
import { giveScratch, MAX_SCRATCH_BYTES, takeScratch } from "./scratch.js";
import {
  computeReduction, computeStats, finiteRange, hasNumericElements, histogram, packStats, unpackStats,
  type Histogram, type TensorStats,
} from "./tensor-stats.js";

/** Records to read from one event file, as parallel columns (no object per record). */
class RecordBatch implements RecordList {
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

/** Records to read from one event file, as parallel columns (what readRecords needs). */
interface RecordList {
  readonly start: ArrayLike<number>;
  readonly length: ArrayLike<number>;
  readonly size: number;
}

/**
 * The records of one event file as read: record k is at offset[k] of buffers[span[k]]; or, read as
 * one span (the usual case, no per-record arrays), at start[k] - lo of buffers[0], which is
 * `scratch` when the span was read into a reused buffer (given back once the records are visited).
 */
interface RecordsRead {
  buffers: Buffer[];
  span: Int32Array | null;
  offset: Float64Array | null;
  lo: number;
  scratch: Buffer | null;
}

/** A RecordList over typed columns (views of a larger sorted set). */
class RecordColumns implements RecordList {
  constructor(readonly start: Float64Array, readonly length: Float64Array) {}
  get size(): number {
    return this.start.length;
  }
}

/** The records of series in one event file: request req[k]'s position pos[k] is records[k]. */
interface SeriesRecords {
  req: Int32Array;
  pos: Int32Array;
  records: RecordColumns;
}

/**
 * Where each value of a batch read is, in request order (file -1: nothing to read), then grouped by
 * event file as typed columns (a counting sort) for visitRecords: a read of every value of a trial is
 * ~300,000 records, and arrays growing per file cost more in the collector than the reads.
 */
class RecordLocations {
  readonly file: Int32Array;
  readonly start: Float64Array;
  readonly length: Float64Array;

  constructor(total: number) {
    this.file = new Int32Array(total).fill(-1);
    this.start = new Float64Array(total);
    this.length = new Float64Array(total);
  }

  set(at: number, file: number, start: number, length: number): void {
    this.file[at] = file;
    this.start[at] = start;
    this.length[at] = length;
  }

  /** Grouped by event file (of `files`); the locations are `countOf(r)` positions of each request `r` of `toRead`, in that order. */
  byFile(files: number, toRead: readonly number[], countOf: (r: number) => number): Map<number, SeriesRecords> {
    const fileAt = this.file;
    const first = new Int32Array(files + 1);
    for (let j = 0; j < fileAt.length; j++) if (fileAt[j] >= 0) first[fileAt[j] + 1]++;
    for (let f = 0; f < files; f++) first[f + 1] += first[f];
    const fill = first.slice(0, files);
    const placed = first[files];
    const reqCol = new Int32Array(placed);
    const posCol = new Int32Array(placed);
    const startCol = new Float64Array(placed);
    const lengthCol = new Float64Array(placed);
    let at = 0;
    for (const r of toRead) {
      const count = countOf(r);
      for (let i = 0; i < count; i++, at++) {
        const file = fileAt[at];
        if (file < 0) continue;
        const k = fill[file]++;
        reqCol[k] = r;
        posCol[k] = i;
        startCol[k] = this.start[at];
        lengthCol[k] = this.length[at];
      }
    }
    const byFile = new Map<number, SeriesRecords>();
    for (let f = 0; f < files; f++) {
      const a = first[f];
      const b = first[f + 1];
      if (a === b) continue;
      byFile.set(f, { req: reqCol.subarray(a, b), pos: posCol.subarray(a, b), records: new RecordColumns(startCol.subarray(a, b), lengthCol.subarray(a, b)) });
    }
    return byFile;
  }
}

/** Where an index entry's records are registered: its tensor's index, or a saved reduction's (and its tensor's). */
interface EntryTarget {
  /** The tensor it belongs to. */
  tensor: string;
  index: TensorIndex;
  reduction: TensorIndex | null;
}

/** An index file listed, and once read, parsed (null: not readable yet). */
interface ListedIndexFile {
  key: string;
  step: number;
  worker: string;
  parsed: ParsedIndexFile | null;
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

export interface SeriesRequest {
  name: string;
  mode?: Mode | null;
  /** One worker's values (its steps only); by default each step's first worker. */
  worker?: string | null;
}

/** A reduction saved by the hook (smdebug/reductions/…), or one to compute from the raw value. */
export interface SavedReduction {
  reduction: ReductionName;
  abs: boolean;
}

export interface ReductionRequest extends ValueRequest {
  reduction: ReductionName;
  abs: boolean;
}

export interface ReductionValue {
  value: number;
  /** True when the hook saved it; false when it was computed from the raw value. */
  saved: boolean;
}

/**
 * Accounts for the elements a computation covers (cached or read); throwing stops the computation
 * (a request over its budget reads no further).
 */
export interface ComputeOptions {
  charge?: (elements: number) => void;
}

export interface HistogramRequest extends ValueRequest {
  bins: number;
  /** Null: the value's own finite min and max. */
  range: [number, number] | null;
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
/** Index entries parsed before they are registered, at most (about 20 bytes each). */
const REGISTER_BATCH_ENTRIES = 1 << 19;
/**
 * Readers without a request budget (rules, statistics) still never allocate more than this for one
 * tensor whose few bytes declare a large shape ("fill" form); real tensors are bounded by their bytes.
 */
const UNBUDGETED_MAX_ELEMENTS = 1 << 26;
/** Why a record could not be read from its event file (wording the rule engine also recognizes as "not yet"). */
const MISSING_FILE = "its event file does not exist (yet)";
const SHORT_FILE = "its event file is not completely written yet";
/** Records of one event file closer than this are read as one span (a page-cache or S3 read costs about this much). */
const SPAN_GAP = 64 * 1024;
/**
 * Statistics and distributions read values in chunks of about this many record bytes, so a request
 * over every step of large tensors holds a bounded amount of decoded data at a time.
 */
const COMPUTE_CHUNK_BYTES = 32 * 1024 * 1024;

const reductionKey = (reduction: string, abs: boolean) => (abs ? `abs_${reduction}` : reduction);

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

/** The steps within [from, to] (either end open when null). */
export function inRange(steps: number[], from?: number | null, to?: number | null): number[] {
  if ((from === undefined || from === null) && (to === undefined || to === null)) return steps;
  return steps.filter((s) => (from == null || s >= from) && (to == null || s <= to));
}

function notNumeric(req: ValueRequest, v: TensorData): TrialgraphError {
  return new TrialgraphError("BAD_USER_INPUT", `tensor ${req.name} is ${v.dtype} with shape [${v.shape}] at step ${req.step}: this needs a real numeric tensor`, { field: "name" });
}

let nextTrialSerial = 0;

/** A trial's size now (Trial.size). Trials only grow, so each figure stays a bound as they do. */
export interface TrialSize {
  /** Tensors listed. */
  tensors: number;
  /** Steps listed for the longest tensor, incomplete ones included: at most what it returns. */
  maxSteps: number;
  /** Complete steps of every tensor added up: at least what \`tensors { values }\` returns. */
  completeValues: number;
}

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
  /** Names of index entries as ids, and where the records of each go, by id. */
  private readonly entryNames = new EntryNames();
  private entryTargets: EntryTarget[] = [];
  /** Saved reductions (smdebug/reductions/…) by base tensor, then "abs_max", "l2", …: not tensor names. */
  private reductionsByTensor = new Map<string, Map<string, TensorIndex>>();
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
      this.entryNames.forgetPayloads();
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
    const found: ListedIndexFile[] = [];
    const foundKeys = new Set<string>();
    const add = (key: string) => {
      const parsed = parseIndexKey(key);
      if (parsed && !foundKeys.has(key)) {
        foundKeys.add(key);
        found.push({ key, step: parsed.step, worker: parsed.worker, parsed: null });
      }
    };
    for (const key of listed) if (!this.readIndexKeys.has(key)) add(key);
    for (const key of this.pendingIndexKeys) add(key);
    if (found.length === 0) return;
    // Step order, so "the first writer of a step wins" holds.
    found.sort((a, b) => a.step - b.step || (a.key < b.key ? -1 : 1));
    const limit = this.options.concurrency ?? 16;
    const chunk = Math.max(16, limit * 4);
    // Entries are parsed into columns and registered in batches (each index then grows once per
    // batch); a batch is bounded, so a big first refresh holds a bounded amount of parsed entries.
    const columns = new EntryColumns();
    let estimated = false;
    let batchFrom = 0;
    for (let i = 0; i < found.length; i += chunk) {
      const to = Math.min(found.length, i + chunk);
      let next = i;
      await Promise.all(Array.from({ length: Math.min(limit, to - i) }, async () => {
        let scratch = takeScratch();
        try {
          while (next < to) {
            const f = found[next++];
            const bytes = await this.source.read(f.key, { scratch });
            // Parsed at once (the bytes may be the scratch buffer, reused by the next read).
            f.parsed = bytes ? this.parseOrNull(bytes, columns) : null;
            if (bytes && bytes.length > scratch.length) {
              giveScratch(scratch);
              scratch = takeScratch(bytes.length);
            }
            if (f.parsed && !estimated) {
              // Files of a trial hold about as many entries each: room for all of them at once.
              estimated = true;
              columns.reserve(Math.min(REGISTER_BATCH_ENTRIES, (f.parsed.to - f.parsed.from) * (found.length - i)));
            }
          }
        } finally {
          giveScratch(scratch);
        }
      }));
      if (columns.size >= REGISTER_BATCH_ENTRIES || to === found.length) {
        this.registerBatch(found.slice(batchFrom, to));
        batchFrom = to;
        columns.size = 0;
      }
    }
    this.advanceToken(listed[listed.length - 1]);
  }

  /** An index file, or null when it does not parse (half-written or corrupt: "not yet"). */
  private parseOrNull(bytes: Buffer, columns: EntryColumns): ParsedIndexFile | null {
    try {
      return parseIndexFile(bytes, this.entryNames, columns);
    } catch {
      return null;
    }
  }

  /** Registers parsed index files in their (step) order, making room in each index once for all of them. */
  private registerBatch(files: ListedIndexFile[]): void {
    const counts = new Int32Array(this.entryNames.list.length);
    for (const { parsed } of files) {
      if (!parsed) continue;
      const nameId = parsed.entries.nameId;
      for (let k = parsed.from; k < parsed.to; k++) counts[nameId[k]]++;
    }
    const room = new Map<TensorIndex, number>();
    for (let id = 0; id < counts.length; id++) {
      if (counts[id] === 0) continue;
      const target = this.entryTarget(id);
      room.set(target.index, (room.get(target.index) ?? 0) + counts[id]);
      if (target.reduction) room.set(target.reduction, (room.get(target.reduction) ?? 0) + counts[id]);
    }
    for (const [index, more] of room) index.reserve(more);
    for (const { key, step, worker, parsed } of files) {
      if (!parsed) {
        this.pendingIndexKeys.add(key);
        continue;
      }
      this.pendingIndexKeys.delete(key);
      this.readIndexKeys.add(key);
      this.register(step, worker, parsed);
    }
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
    const { nameId, start, length } = f.entries;
    const targets = this.entryTargets;
    for (let k = f.from; k < f.to; k++) {
      const target = targets[nameId[k]]!;
      if (target.reduction) {
        // As smdebug: the reduction belongs to its base tensor, which exists at the step even when
        // only reductions were saved (a slot without a location until a raw record comes).
        target.reduction.add(step, workerId, fileId, start[k], length[k], null);
        target.index.add(step, workerId, -1, 0, 0, null);
      } else target.index.add(step, workerId, fileId, start[k], length[k], null);
      modeNames?.add(target.tensor);
    }
    for (const sh of f.shapes) {
      if (sh.name.includes(REDUCTIONS_PREFIX) && parseReductionTensorName(sh.name)) continue; // shapes are of raw tensors only
      this.indexOf(sh.name).add(step, workerId, -1, 0, 0, sh.shape);
      modeNames?.add(sh.name);
    }
    if (info.workers.size >= this.numWorkers && step > this._lastCompleteStep) this._lastCompleteStep = step;
  }

  /** Where the records of index entries named by `id` (see EntryNames) go: a tensor's index, or a reduction's and its tensor's. */
  private entryTarget(id: number): EntryTarget {
    let target = this.entryTargets[id];
    if (!target) {
      const name = this.entryNames.list[id];
      const red = name.includes(REDUCTIONS_PREFIX) ? parseReductionTensorName(name) : null;
      target = red
        ? { tensor: red.tensor, index: this.indexOf(red.tensor), reduction: this.reductionIndexOf(red.tensor, reductionKey(red.reduction, red.abs)) }
        : { tensor: name, index: this.indexOf(name), reduction: null };
      this.entryTargets[id] = target;
    }
    return target;
  }

  private indexOf(name: string): TensorIndex {
    let index = this.tensorsByName.get(name);
    if (!index) this.tensorsByName.set(name, (index = new TensorIndex()));
    return index;
  }

  private reductionIndexOf(tensor: string, key: string): TensorIndex {
    let byKey = this.reductionsByTensor.get(tensor);
    if (!byKey) this.reductionsByTensor.set(tensor, (byKey = new Map()));
    let index = byKey.get(key);
    if (!index) byKey.set(key, (index = new TensorIndex()));
    return index;
  }

  /** The index of a tensor, or of a reduction tensor by its smdebug/reductions/… name (internal reads). */
  private indexFor(name: string): TensorIndex | undefined {
    const index = this.tensorsByName.get(name);
    if (index || !name.includes(REDUCTIONS_PREFIX)) return index;
    const red = parseReductionTensorName(name);
    return red ? this.reductionsByTensor.get(red.tensor)?.get(reductionKey(red.reduction, red.abs)) : undefined;
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

  /**
   * Steps at which the tensor (or a reduction of it) was saved, complete steps only; mode steps for
   * a non-GLOBAL mode. With `worker`, the steps that worker wrote; with `withValue`, only steps whose
   * raw value was saved (not only reductions or the shape).
   */
  tensorSteps(name: string, mode?: Mode | null, opts: { worker?: string | null; withValue?: boolean } = {}): number[] {
    const index = this.tensorsByName.get(name);
    if (!index) return [];
    const workerId = opts.worker ? this.workerIds.get(opts.worker) : null;
    if (workerId === undefined) return [];
    // Sized once and cut to what was kept: an array grown by push makes about twice its size in
    // garbage, and a read of every tensor asks for every tensor's steps on every request.
    const out = new Array<number>(index.steps.length);
    let n = 0;
    const global = !mode || mode === "GLOBAL";
    const steps = index.steps;
    for (let i = 0; i < steps.length; i++) {
      // As small integers when they are (the index keeps float64): arrays of them stay packed integers.
      const step = steps[i] === (steps[i] | 0) ? steps[i] | 0 : steps[i];
      // A step in an index is a known step (register records both): only later ones need a look.
      if (step > this._lastCompleteStep && !this.loadedAllSteps && !this.isComplete(step)) continue;
      if (workerId !== null && !index.hasWorker(step, workerId)) continue;
      if (opts.withValue) {
        const slot = index.slotAt(step, workerId, (w) => this.workerNames[w]);
        if (slot < 0 || index.fileOf(slot) < 0) continue;
      }
      if (global) out[n++] = step;
      else {
        const info = this.stepsInfo.get(step)!;
        if (info.mode === mode) out[n++] = info.modeStep;
      }
    }
    out.length = n;
    // Global steps are already ascending; mode steps follow them but need not.
    return global ? out : out.sort((a, b) => a - b);
  }

  /**
   * The trial's size as its index says now, without reading values: what a request will read is
   * judged from it before the request runs. With a filter, the size of the tensors it lists.
   */
  size(filter?: Pick<TensorNamesQuery, "regex" | "collection">): TrialSize {
    let maxSteps = 0;
    let completeValues = 0;
    const filtered = filter && (filter.regex != null || filter.collection != null);
    const names = filtered ? this.tensorNames(filter) : null;
    const indexes = names ? names.map((n) => this.tensorsByName.get(n)!) : this.tensorsByName.values();
    for (const index of indexes) {
      const steps = index.steps;
      maxSteps = Math.max(maxSteps, steps.length);
      if (this.loadedAllSteps) completeValues += steps.length;
      else for (let i = 0; i < steps.length; i++) if (steps[i] <= this._lastCompleteStep) completeValues++;
    }
    return { tensors: names ? names.length : this.tensorsByName.size, maxSteps, completeValues };
  }

  /** Throws BAD_USER_INPUT for a worker the trial does not know (null and undefined pass). */
  checkWorker(worker: string | null | undefined): void {
    if (worker && !this.workerIds.has(worker) && !this.workerSet.has(worker)) {
      throw new TrialgraphError("BAD_USER_INPUT", `trial ${this.path} has no worker ${worker} (workers: ${this.workers.join(", ")})`, { field: "worker" });
    }
  }

  /** Whether the raw value of the tensor was saved at a (global or mode) step, for the worker or the default one. */
  hasValue(name: string, step: number, mode?: Mode | null, worker?: string | null): boolean {
    const index = this.tensorsByName.get(name);
    const global = !mode || mode === "GLOBAL" ? step : this.globalStep(mode, step);
    if (!index || global === null) return false;
    const workerId = worker ? this.workerIds.get(worker) ?? -3 : null;
    const slot = index.slotAt(global, workerId, (w) => this.workerNames[w]);
    return slot >= 0 && index.fileOf(slot) >= 0;
  }

  /**
   * Reductions the hook saved for the tensor: at a (global or mode) step (for the worker, or any
   * worker), or at any step. Sorted by name, abs ones after plain ones.
   */
  savedReductions(name: string, step?: number | null, mode?: Mode | null, worker?: string | null): SavedReduction[] {
    const byKey = this.reductionsByTensor.get(name);
    if (!byKey) return [];
    let global: number | null = null;
    if (step !== undefined && step !== null) {
      global = !mode || mode === "GLOBAL" ? step : this.globalStep(mode, step);
      if (global === null) return [];
    }
    const workerId = worker ? this.workerIds.get(worker) ?? -3 : null;
    const out: SavedReduction[] = [];
    for (const [key, index] of byKey) {
      if (global !== null && (workerId === null ? !index.has(global) : !index.hasWorker(global, workerId))) continue;
      if (global === null && workerId !== null && !index.steps.some((s) => index.hasWorker(s, workerId))) continue;
      const abs = key.startsWith("abs_");
      out.push({ reduction: (abs ? key.slice(4) : key) as ReductionName, abs });
    }
    return out.sort((a, b) => Number(a.abs) - Number(b.abs) || (a.reduction < b.reduction ? -1 : a.reduction > b.reduction ? 1 : 0));
  }

  /**
   * The name to read a saved reduction by (values() accepts it), or null when the hook did not save
   * that reduction at the (global or mode) step.
   */
  savedReductionRecord(name: string, step: number, mode: Mode | null | undefined, reduction: ReductionName, abs: boolean, worker?: string | null): string | null {
    const key = reductionKey(reduction, abs);
    const index = this.reductionsByTensor.get(name)?.get(key);
    const global = !mode || mode === "GLOBAL" ? step : this.globalStep(mode, step);
    if (!index || global === null) return null;
    const workerId = worker ? this.workerIds.get(worker) ?? -3 : null;
    const slot = index.slotAt(global, workerId, (w) => this.workerNames[w]);
    return slot >= 0 && index.fileOf(slot) >= 0 ? `${REDUCTIONS_PREFIX}${key}/${name}` : null;
  }

  /** Whether no step of the tensor has a raw value (only reductions or shapes were saved). */
  onlyReductions(name: string): boolean {
    const index = this.tensorsByName.get(name);
    if (!index || !this.reductionsByTensor.has(name)) return false;
    return index.steps.every((step) => {
      for (const w of index.workersAt(step)) if (index.fileOf(index.slotAt(step, w, (id) => this.workerNames[id])) >= 0) return false;
      return true;
    });
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
      if (damaged && !this.indexFor(req.name)?.has(req.step)) throw damaged;
    }
    const index = this.indexFor(req.name);
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
    if (index.fileOf(slot) < 0) throw unavailable(req.name, req.step, mode, this.noValueReason(req.name));
    return index.ref(slot);
  }

  private noValueReason(name: string): string {
    return this.reductionsByTensor.has(name)
      ? "only its reductions were saved (read them with reductionValue)"
      : "only its shape was saved";
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
  async values(requests: readonly ValueRequest[], opts: { keep?: boolean; budget?: ReadBudget } = {}): Promise<(TensorData | TrialgraphError)[]> {
    const budget = opts.budget;
    const out = new Array<TensorData | TrialgraphError>(requests.length);
    const byFile = new Map<number, { index: number[]; records: RecordBatch }>();
    const cache = this.options.cacheValues ? this.options.cache : undefined;
    // keep: false reads what a computation needs once (statistics of large tensors) without evicting cached values.
    const keep = opts.keep !== false;
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
          const value = this.decode(buf, at, file, start, g.records.length[k], req.name, budget ? budget.remainingBytes / ELEMENT_BYTES : UNBUDGETED_MAX_ELEMENTS);
          if (budget && !budget.take(0, sizeOf(value))) {
            out[i] = budget.error();
            return;
          }
          out[i] = value;
          if (keep) cache?.set(this.cacheKey(fileId, start), value);
        } catch (e) {
          out[i] = !(e instanceof TensorTooLargeError) ? (e as TrialgraphError) : budget ? budget.error()
            : new TrialgraphError("LIMIT_EXCEEDED", `tensor ${req.name} at step ${req.step}: ${e.message}, more than can be read at once (${UNBUDGETED_MAX_ELEMENTS})`, { limit: "elements" });
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
  private async visitRecords<G extends { records: RecordList }>(
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
      let read: RecordsRead | null = null;
      try {
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
          const buf = read.span ? read.buffers[read.span[k]] : read.buffers[0];
          const at = read.offset ? read.offset[k] : g.records.start[k] - read.lo;
          if (buf.length < at + g.records.length[k]) visit(g, k, SHORT_FILE, at, file, fileId);
          else visit(g, k, buf, at, file, fileId);
        }
      } finally {
        if (read?.scratch) giveScratch(read.scratch);
      }
    });
  }

  /**
   * Reads the records of one event file as a few spans (records closer than SPAN_GAP share one),
   * so decoding works on offsets into a handful of buffers instead of one buffer per record.
   * For each entry: its span's buffer and its offset there; null when the file does not exist.
   */
  private async readRecords(file: string, records: RecordList, maxBytes?: number): Promise<RecordsRead | null> {
    const n = records.size;
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
      // Visitors decode (copy out) what they need at once: a small span can go into a reused buffer.
      const scratch = hi - lo <= MAX_SCRATCH_BYTES ? takeScratch(hi - lo) : null;
      let buffers: Buffer[] | null = null;
      try {
        buffers = await this.source.readRanges(file, [{ start: lo, length: hi - lo }], { maxBytes, scratch: scratch ?? undefined });
      } finally {
        if (scratch && !buffers) giveScratch(scratch);
      }
      return buffers && { buffers, span: null, offset: null, lo, scratch };
    }
    const span = new Int32Array(n);
    const offset = new Float64Array(n);
    const ranges = Array.from({ length: n }, (_, k) => ({ start: records.start[k], length: records.length[k] }));
    const groups = coalesceRanges(ranges, SPAN_GAP);
    const buffers = await this.source.readRanges(file, groups, { maxBytes });
    if (!buffers) return null;
    groups.forEach((g, gi) => {
      for (const m of g.members) {
        span[m] = gi;
        offset[m] = ranges[m].start - g.start;
      }
    });
    return { buffers, span, offset, lo: 0, scratch: null };
  }

  /**
   * Scalar tensors over all their (complete) steps, for many tensors in one batch: one read per
   * event file, values decoded straight into one Float64Array per tensor (no object per value).
   * With a budget, every series is charged (8 bytes a step) before anything is read.
   */
  async scalarSeries(requests: readonly SeriesRequest[], budget?: ReadBudget): Promise<(ScalarSeries | TrialgraphError)[]> {
    const out = new Array<ScalarSeries | TrialgraphError>(requests.length);
    const cache = this.options.cache;
    const seriesKey = (req: SeriesRequest, steps: number[]) =>
      `${this.serial}:s:${req.mode ?? "GLOBAL"}:${req.worker ?? ""}:${steps.length}:${steps[steps.length - 1]}:${req.name}`;
    const workerName = (w: number) => this.workerNames[w];
    let total = 0;
    const toRead: number[] = [];
    const stepCount = new Int32Array(requests.length);
    const stepsOf = requests.map((req) => this.tensorSteps(req.name, req.mode, { worker: req.worker }));
    // A whole series is held (8 bytes a step) before a caller picks what it returns: charged first, cached or not.
    if (budget && !budget.take(0, 0, 8 * stepsOf.reduce((n, steps) => n + steps.length, 0))) return requests.map(() => budget.error());
    requests.forEach((req, r) => {
      const steps = stepsOf[r];
      const cached = cache?.get(seriesKey(req, steps));
      if (cached) {
        out[r] = { steps, values: cached.values! };
        return;
      }
      out[r] = { steps, values: new Float64Array(steps.length) };
      stepCount[r] = steps.length;
      toRead.push(r);
      total += steps.length;
    });
    const locations = new RecordLocations(total);
    let at = 0;
    for (const r of toRead) {
      const req = requests[r];
      const series = out[r] as ScalarSeries;
      const index = this.tensorsByName.get(req.name);
      const workerId = req.worker ? this.workerIds.get(req.worker) ?? -3 : null;
      const global = !req.mode || req.mode === "GLOBAL";
      const steps = series.steps;
      for (let i = 0; i < steps.length; i++, at++) {
        // Steps listed by tensorSteps exist; only mode steps need translating.
        const slot = index ? index.slotAt(global ? steps[i] : this.globalStep(req.mode!, steps[i]) ?? -1, workerId, workerName) : -1;
        const file = slot >= 0 ? index!.fileOf(slot) : -1;
        if (file < 0) {
          out[r] = unavailable(req.name, steps[i], req.mode ?? "GLOBAL", this.noValueReason(req.name));
          // The records listed before stay: they are read and skipped (as the request failed).
          at += steps.length - i;
          break;
        }
        locations.set(at, file, index!.startOf(slot), index!.lengthOf(slot));
      }
    }
    const byFile = locations.byFile(this.eventFiles.length, toRead, (r) => stepCount[r]);
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
        const key = seriesKey(req, series.steps);
        cache.set(key, { dtype: "float64", shape: [series.values.length], values: series.values, strings: null });
      });
    }
    return out;
  }

  /**
   * Many steps of many tensors (GraphQL's Tensor.values), as packed columns: a numeric scalar at a
   * step (what most steps of most trials hold) is decoded straight into the column's Float64Array
   * with its dtype and rank, so a read of every value makes no object per value. Any other value is
   * decoded in full, as values() does. One read per event file for the whole batch. Each result is
   * the column, or the error of its first step that cannot be read.
   */
  async valueColumns(requests: readonly ColumnRequest[], budget?: ReadBudget): Promise<(ValueColumn | TrialgraphError)[]> {
    const out = new Array<ValueColumn | TrialgraphError>(requests.length);
    // Remote trials keep single decoded values in the cache: they go the cached way.
    if (this.options.cacheValues) {
      const flat = await this.values(requests.flatMap((k) => k.steps.map((step) => ({ name: k.name, step, mode: k.mode, worker: k.worker }))), { budget });
      let at = 0;
      requests.forEach((k, r) => {
        const col = new ValueColumn(k.steps.length);
        for (let i = 0; i < k.steps.length; i++) {
          const v = flat[at++];
          if (v instanceof Error) out[r] ??= v;
          else col.setFull(i, v);
        }
        out[r] ??= col;
      });
      return out;
    }
    /** The first failing position of each request (its error is the answer). */
    const failedAt = new Int32Array(requests.length).fill(-1);
    const fail = (r: number, pos: number, e: TrialgraphError) => {
      if (failedAt[r] < 0 || pos < failedAt[r]) {
        failedAt[r] = pos;
        out[r] = e;
      }
    };
    const cache = this.options.cache;
    const keys = new Array<string>(requests.length);
    const toRead: number[] = [];
    let total = 0;
    requests.forEach((k, r) => {
      keys[r] = this.columnKey(k);
      const hit = cache?.get(keys[r]) as CachedColumn | undefined;
      if (hit?.column) {
        out[r] = budget && !budget.take(0, hit.column.length) ? budget.error() : hit.column;
        return;
      }
      out[r] = new ValueColumn(k.steps.length);
      toRead.push(r);
      total += k.steps.length;
    });
    const locations = new RecordLocations(total);
    const workerName = (w: number) => this.workerNames[w];
    let at = 0;
    for (const r of toRead) {
      const k = requests[r];
      const global = !k.mode || k.mode === "GLOBAL";
      // The usual case needs no object per step; anything unusual goes through locate(), which says what is wrong.
      const index = this.corruptIndex.size ? undefined : this.indexFor(k.name);
      const workerId = k.worker ? this.workerIds.get(k.worker) ?? -3 : null;
      const end = at + k.steps.length;
      for (let i = 0; i < k.steps.length; i++, at++) {
        const step = global ? k.steps[i] : this.globalStep(k.mode!, k.steps[i]);
        const slot = index && step !== null ? index.slotAt(step, workerId, workerName) : -1;
        const file = slot >= 0 ? index!.fileOf(slot) : -1;
        if (file >= 0) {
          locations.set(at, file, index!.startOf(slot), index!.lengthOf(slot));
          continue;
        }
        let ref: RecordRef;
        try {
          ref = this.locate({ name: k.name, step: k.steps[i], mode: k.mode, worker: k.worker });
        } catch (e) {
          fail(r, i, e as TrialgraphError);
          break;
        }
        locations.set(at, ref.file, ref.start, ref.length);
      }
      at = end;
    }
    const byFile = locations.byFile(this.eventFiles.length, toRead, (r) => requests[r].steps.length);
    await this.visitRecords(
      byFile,
      (g, k, buf, at, file) => {
        const r = g.req[k];
        const pos = g.pos[k];
        if (failedAt[r] >= 0 && failedAt[r] < pos) return;
        const col = out[r] as ValueColumn;
        const req = requests[r];
        const step = req.steps[pos];
        const start = g.records.start[k];
        const length = g.records.length[k];
        if (typeof buf === "string") {
          fail(r, pos, this.unreadable(req.name, step, req.mode ?? "GLOBAL", buf, file, start));
          return;
        }
        let value: number | undefined;
        try {
          // Only a record whose framing matches the index takes the short way; the full decode names any damage.
          if (recordPayloadEnd(buf, at, at + length) + 4 - at === length) value = decodeScalarEvent(buf, at + 12, at + length - 4, req.name);
        } catch {
          value = undefined;
        }
        if (value !== undefined) {
          if (budget && !budget.take(0, 1)) {
            fail(r, pos, budget.error());
            return;
          }
          col.setScalar(pos, value, lastScalar.dtype, lastScalar.rank);
          return;
        }
        try {
          const v = this.decode(buf, at, file, start, length, req.name, budget ? budget.remainingBytes / ELEMENT_BYTES : UNBUDGETED_MAX_ELEMENTS);
          if (budget && !budget.take(0, sizeOf(v))) fail(r, pos, budget.error());
          else col.setFull(pos, v);
        } catch (e) {
          fail(r, pos, !(e instanceof TensorTooLargeError) ? (e as TrialgraphError) : budget ? budget.error()
            : new TrialgraphError("LIMIT_EXCEEDED", `tensor ${req.name} at step ${step}: ${e.message}, more than can be read at once (${UNBUDGETED_MAX_ELEMENTS})`, { limit: "elements" }));
        }
      },
      (g, error) => g.req.forEach((r, k) => fail(r, g.pos[k], error)),
      budget,
    );
    // Columns of scalars are small (10 bytes a step): kept, so a repeated read decodes nothing.
    if (cache) {
      out.forEach((col, r) => {
        if (col instanceof ValueColumn && col.length > 0 && col.allScalar) {
          cache.set(keys[r], { dtype: "float64", shape: [col.length], values: col.scalars, strings: null, column: col } as CachedColumn);
        }
      });
    }
    return out;
  }

  /** The cache key of a column: the tensor, mode, worker and a hash of the exact steps. */
  private columnKey(k: ColumnRequest): string {
    let h = 0;
    for (const s of k.steps) h = (Math.imul(h, 31) + s) | 0;
    return `${this.serial}:c:${k.mode ?? "GLOBAL"}:${k.worker ?? ""}:${k.steps.length}:${k.steps[0]}:${k.steps[k.steps.length - 1]}:${h}:${k.name}`;
  }

  /**
   * Visits the values of many requests, read in chunks of about COMPUTE_CHUNK_BYTES of records in
   * event-file order (so a chunk reads each of its files once): a computation over every step of
   * large tensors holds one chunk of decoded values at a time. The values are not kept in the cache.
   */
  private async visitValues(requests: readonly ValueRequest[], visit: (i: number, v: TensorData | TrialgraphError) => void): Promise<void> {
    const located: { i: number; file: number; start: number; length: number }[] = [];
    for (let i = 0; i < requests.length; i++) {
      try {
        const ref = this.locate(requests[i]);
        located.push({ i, file: ref.file, start: ref.start, length: ref.length });
      } catch (e) {
        visit(i, e as TrialgraphError);
      }
    }
    located.sort((a, b) => a.file - b.file || a.start - b.start);
    for (let from = 0; from < located.length;) {
      let to = from;
      let bytes = 0;
      while (to < located.length && (to === from || bytes + located[to].length <= COMPUTE_CHUNK_BYTES)) bytes += located[to++].length;
      const chunk = located.slice(from, to);
      const values = await this.values(chunk.map((c) => requests[c.i]), { keep: false });
      for (let k = 0; k < chunk.length; k++) visit(chunk[k].i, values[k]);
      from = to;
      await yieldIfBusy();
    }
  }

  private statsKey(ref: RecordRef): string {
    return `${this.serial}:t:${ref.file}:${ref.start}`;
  }

  private cachedStats(key: string): TensorStats | null {
    const hit = this.options.cache?.get(key);
    return hit?.values ? unpackStats(hit.values) : null;
  }

  private rememberStats(key: string, s: TensorStats): void {
    this.options.cache?.set(key, { dtype: "float64", shape: [12], values: packStats(s), strings: null });
  }

  /**
   * Statistics of many values (tensor, step, worker), each computed once: they are cached by the
   * record they come from, so a later request (another statistic, another series) reads nothing.
   */
  async stats(requests: readonly ValueRequest[], opts: ComputeOptions = {}): Promise<(TensorStats | TrialgraphError)[]> {
    const out = new Array<TensorStats | TrialgraphError>(requests.length);
    const keys = new Array<string>(requests.length);
    const misses: number[] = [];
    for (let i = 0; i < requests.length; i++) {
      let ref: RecordRef;
      try {
        ref = this.locate(requests[i]);
      } catch (e) {
        out[i] = e as TrialgraphError;
        continue;
      }
      keys[i] = this.statsKey(ref);
      const hit = this.cachedStats(keys[i]);
      if (hit) {
        opts.charge?.(hit.size);
        out[i] = hit;
      } else misses.push(i);
    }
    await this.visitValues(misses.map((i) => requests[i]), (k, v) => {
      const i = misses[k];
      if (v instanceof Error) {
        out[i] = v;
        return;
      }
      if (!hasNumericElements(v)) {
        out[i] = notNumeric(requests[i], v);
        return;
      }
      opts.charge?.(v.values!.length);
      const s = computeStats(v.values!);
      this.rememberStats(keys[i], s);
      out[i] = s;
    });
    return out;
  }

  /**
   * Statistics of a value already read (TensorValue.stats): from the cache when computed before, else
   * computed from it and cached for later series.
   */
  statsOf(req: ValueRequest, value: TensorData): TensorStats {
    let key: string | null = null;
    try {
      key = this.statsKey(this.locate(req));
    } catch {
      // a value read a moment ago whose record is gone (a rewritten step): compute without caching
    }
    const hit = key ? this.cachedStats(key) : null;
    if (hit) return hit;
    const s = computeStats(value.values!);
    if (key) this.rememberStats(key, s);
    return s;
  }

  /** Statistics of tensors over their steps with a raw value (one batch for every tensor). */
  async statsSeries(
    requests: readonly (SeriesRequest & { fromStep?: number | null; toStep?: number | null })[],
    opts: ComputeOptions = {},
  ): Promise<({ steps: number[]; stats: TensorStats[] } | TrialgraphError)[]> {
    const steps = requests.map((r) => inRange(this.tensorSteps(r.name, r.mode, { worker: r.worker, withValue: true }), r.fromStep, r.toStep));
    const flat = await this.stats(requests.flatMap((r, i) => steps[i].map((step) => ({ name: r.name, step, mode: r.mode, worker: r.worker }))), opts);
    let at = 0;
    return requests.map((_, i) => {
      const stats = flat.slice(at, (at += steps[i].length));
      const failed = stats.find((s): s is TrialgraphError => s instanceof Error);
      return failed ?? { steps: steps[i], stats: stats as TensorStats[] };
    });
  }

  /** Histograms of many values; without a range each uses its own finite min and max. */
  async histograms(requests: readonly HistogramRequest[], opts: ComputeOptions = {}): Promise<(Histogram | TrialgraphError)[]> {
    const out = new Array<Histogram | TrialgraphError>(requests.length);
    await this.visitValues(requests, (i, v) => {
      const req = requests[i];
      if (v instanceof Error) {
        out[i] = v;
        return;
      }
      if (!hasNumericElements(v)) {
        out[i] = notNumeric(req, v);
        return;
      }
      opts.charge?.(v.values!.length);
      const [lo, hi] = req.range ?? finiteRange(computeStats(v.values!));
      out[i] = histogram(v.values!, req.bins, lo, hi);
    });
    return out;
  }

  /**
   * smdebug's Tensor.reduction_value for many requests: the reduction the hook saved when there is
   * one, else computed from the raw value; TENSOR_UNAVAILABLE_FOR_STEP when neither was saved.
   */
  async reductionValues(requests: readonly ReductionRequest[], opts: ComputeOptions = {}): Promise<(ReductionValue | TrialgraphError)[]> {
    const out = new Array<ReductionValue | TrialgraphError>(requests.length);
    const saved: number[] = [];
    const savedReqs: ValueRequest[] = [];
    const raw: number[] = [];
    requests.forEach((req, i) => {
      const record = this.savedReductionRecord(req.name, req.step, req.mode, req.reduction, req.abs, req.worker);
      if (record) {
        saved.push(i);
        savedReqs.push({ ...req, name: record });
      } else raw.push(i);
    });
    const values = await this.values(savedReqs);
    saved.forEach((i, k) => {
      const v = values[k];
      if (v instanceof Error) out[i] = v;
      else if (!v.values || v.values.length !== 1) out[i] = notNumeric(requests[i], v);
      else {
        opts.charge?.(1);
        out[i] = { value: v.values[0], saved: true };
      }
    });
    await this.visitValues(raw.map((i) => requests[i]), (k, v) => {
      const i = raw[k];
      const req = requests[i];
      if (v instanceof Error) {
        const onlyOthers = v.code === "TENSOR_UNAVAILABLE_FOR_STEP" && this.reductionsByTensor.has(req.name);
        out[i] = onlyOthers
          ? unavailable(req.name, req.step, req.mode ?? "GLOBAL", `reduction ${reductionKey(req.reduction, req.abs)} was not saved and neither was the raw value`)
          : v;
      } else if (!hasNumericElements(v)) out[i] = notNumeric(req, v);
      else {
        opts.charge?.(v.values!.length);
        out[i] = { value: computeReduction(v.values!, req.reduction, req.abs), saved: false };
      }
    });
    return out;
  }

  /** A reduction over the tensor's steps where it can be had (saved, or computed from the raw value). */
  async reductionSeries(
    requests: readonly (SeriesRequest & SavedReduction & { fromStep?: number | null; toStep?: number | null })[],
    opts: ComputeOptions = {},
  ): Promise<({ steps: number[]; values: Float64Array; saved: boolean[] } | TrialgraphError)[]> {
    const steps = requests.map((r) =>
      inRange(this.tensorSteps(r.name, r.mode, { worker: r.worker }), r.fromStep, r.toStep).filter((step) =>
        this.hasValue(r.name, step, r.mode, r.worker)
        || this.savedReductions(r.name, step, r.mode, r.worker).some((x) => x.reduction === r.reduction && x.abs === r.abs)));
    const flat = await this.reductionValues(requests.flatMap((r, i) => steps[i].map((step) => ({
      name: r.name, step, mode: r.mode, worker: r.worker, reduction: r.reduction, abs: r.abs,
    }))), opts);
    let at = 0;
    return requests.map((_, i) => {
      const part = flat.slice(at, (at += steps[i].length));
      const failed = part.find((x): x is TrialgraphError => x instanceof Error);
      if (failed) return failed;
      const ok = part as ReductionValue[];
      return { steps: steps[i], values: Float64Array.from(ok, (x) => x.value), saved: ok.map((x) => x.saved) };
    });
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

/** A column in the value cache: sized by its scalars (TensorData's values), found by `column`. */
type CachedColumn = TensorData & { column?: ValueColumn };

export interface ColumnRequest {
  name: string;
  /** Global steps, or mode steps of `mode`. */
  steps: number[];
  mode?: Mode | null;
  worker?: string | null;
}

const DTYPE_CODES: DType[] = [];
const dtypeCode = (d: DType): number => {
  let i = DTYPE_CODES.indexOf(d);
  if (i < 0) i = DTYPE_CODES.push(d) - 1;
  return i;
};
/** Shapes of one element by rank ([], [1], [1, 1], …), shared and frozen. */
const ONES: number[][] = [];
const onesShape = (rank: number): number[] => (ONES[rank] ??= Object.freeze(new Array<number>(rank).fill(1)) as number[]);

/**
 * Values of one tensor at many steps: numeric scalars packed (value, dtype code, rank), anything else
 * as its decoded TensorData. value(i) builds the TensorData of a packed scalar only when asked.
 */
export class ValueColumn {
  readonly scalars: Float64Array;
  private readonly dtype: Uint8Array;
  private readonly rank: Uint8Array;
  private full: Map<number, TensorData> | null = null;

  constructor(readonly length: number) {
    this.scalars = new Float64Array(length);
    this.dtype = new Uint8Array(length);
    this.rank = new Uint8Array(length);
  }

  setScalar(i: number, value: number, dtype: DType, rank: number): void {
    this.scalars[i] = value;
    this.dtype[i] = dtypeCode(dtype);
    this.rank[i] = rank;
  }

  setFull(i: number, v: TensorData): void {
    (this.full ??= new Map()).set(i, v);
  }

  /** Whether every step holds a packed numeric scalar. */
  get allScalar(): boolean {
    return this.full === null;
  }

  /** Whether step i holds a packed numeric scalar (scalars[i]). */
  isScalar(i: number): boolean {
    return !this.full?.has(i);
  }

  value(i: number): TensorData {
    const full = this.full?.get(i);
    if (full) return full;
    return { dtype: DTYPE_CODES[this.dtype[i]], shape: onesShape(this.rank[i]), values: Float64Array.of(this.scalars[i]), strings: null };
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
