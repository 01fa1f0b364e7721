/** Index files (spec §2): where each tensor record of a step lives in its event file. */
import type { Mode } from "./tensor.js";

export interface IndexEntry {
  name: string;
  start: number;
  length: number;
}

export interface ShapeEntry {
  name: string;
  originalName: string;
  shape: number[];
}

/** What an index file says, as written (see serializeIndexFile). */
export interface IndexFile {
  mode: Mode;
  modeStep: number;
  /** Event file path relative to the trial root; absent when only shapes were saved. */
  eventFile: string | null;
  tensors: IndexEntry[];
  shapes: ShapeEntry[];
}

/**
 * Names of index entries as small integers, numbered in the order first seen (a trial keeps one).
 * Index files of one trial mostly list the same names in the same order: the name at the same
 * position of the last file parsed is tried first, which skips a hash lookup.
 */
export class EntryNames {
  readonly list: string[] = [];
  private readonly ids = new Map<string, number>();
  private order: number[] = [];
  /** tensor_payload arrays of recent files and their entries, most recent first (see parseSplit). */
  readonly recent: RecentPayload[] = [];

  /** Keeps a payload (copied: `bytes` may be a reused buffer) and its parsed entries, columns[from, to). */
  remember(bytes: Buffer, columns: EntryColumns, from: number, to: number): void {
    if (bytes.length > MAX_RECENT_PAYLOAD_BYTES || to - from < 2) return;
    let kept = bytes.length;
    for (let i = 0; i < this.recent.length; i++) {
      kept += this.recent[i].bytes.length;
      if (i + 1 >= MAX_RECENT_PAYLOADS || kept > MAX_RECENT_PAYLOAD_BYTES) {
        this.recent.length = i;
        break;
      }
    }
    this.recent.unshift({
      bytes: Buffer.from(bytes),
      nameId: columns.nameId.slice(from, to),
      start: columns.start.slice(from, to),
      length: columns.length.slice(from, to),
    });
  }

  /** Drops the recent payloads (a trial that ended reads no more index files). */
  forgetPayloads(): void {
    this.recent.length = 0;
  }

  /** The id of `name`, the entry at `pos` of its file. */
  idAt(pos: number, name: string): number {
    const guess = this.order[pos];
    if (guess !== undefined && this.list[guess] === name) return guess;
    let id = this.ids.get(name);
    if (id === undefined) {
      id = this.list.push(name) - 1;
      this.ids.set(name, id);
    }
    this.order[pos] = id;
    return id;
  }
}

/** A tensor_payload array as its exact bytes, and the entries it parsed to (names of one EntryNames). */
interface RecentPayload extends EntrySource {
  bytes: Buffer;
  nameId: Int32Array;
  start: Float64Array;
  length: Float64Array;
}

/**
 * Recent payloads kept per trial, at most this many and this many bytes in all: a few variants
 * (tensors saved at different intervals) alternate.
 */
const MAX_RECENT_PAYLOADS = 4;
const MAX_RECENT_PAYLOAD_BYTES = 256 * 1024;

/** tensor_payload entries of many index files as columns (name id, start, length); grows by doubling. */
export class EntryColumns implements EntrySource {
  size = 0;
  nameId = new Int32Array(1024);
  start = new Float64Array(1024);
  length = new Float64Array(1024);

  /** Room for `n` entries in all (fresh memory is only paid for when written: an estimate may be generous). */
  reserve(n: number): void {
    if (n > this.nameId.length) this.grow(n);
  }

  push(nameId: number, start: number, length: number): void {
    const k = this.size;
    if (k === this.nameId.length) this.grow(k * 2);
    this.nameId[k] = nameId;
    this.start[k] = start;
    this.length[k] = length;
    this.size = k + 1;
  }

  private grow(n: number): void {
    const nameId = new Int32Array(n);
    const start = new Float64Array(n);
    const length = new Float64Array(n);
    nameId.set(this.nameId.subarray(0, this.size));
    start.set(this.start.subarray(0, this.size));
    length.set(this.length.subarray(0, this.size));
    this.nameId = nameId;
    this.start = start;
    this.length = length;
  }
}

/** Index entries as columns. */
export interface EntrySource {
  readonly nameId: Int32Array;
  readonly start: Float64Array;
  readonly length: Float64Array;
}

/**
 * A parsed index file: its tensor_payload entries are entries[from, to), in the columns parsed into,
 * or in a recent file's payload when the bytes were the same.
 */
export interface ParsedIndexFile {
  mode: Mode;
  modeStep: number;
  /** Event file path relative to the trial root; absent when only shapes were saved. */
  eventFile: string | null;
  entries: EntrySource;
  from: number;
  to: number;
  shapes: ShapeEntry[];
}

export class IndexFileError extends Error {}

const MODES = new Set(["TRAIN", "EVAL", "PREDICT", "GLOBAL"]);

/**
 * Parses an index file (UTF-8 JSON bytes or text), appending its tensor_payload entries to `into`;
 * throws IndexFileError, leaving `into` as it was, when the file is not a valid index file.
 */
export function parseIndexFile(bytes: Buffer | string, names = new EntryNames(), into = new EntryColumns()): ParsedIndexFile {
  const from = into.size;
  try {
    if (typeof bytes !== "string") {
      const split = parseSplit(bytes, names, into, from);
      if (split) return split;
      into.size = from;
    }
    const json = parseJson(typeof bytes === "string" ? bytes : bytes.toString("utf8"));
    return document(json, json?.tensor_payload, names, into, from);
  } catch (e) {
    into.size = from;
    throw e;
  }
}

function parseJson(text: string): any {
  try {
    return JSON.parse(text);
  } catch {
    throw new IndexFileError("Empty/Corrupt Index File");
  }
}

/** Validates a parsed index file whose tensor_payload entries are `tensors`, appending them to `into`. */
function document(json: any, tensors: any, names: EntryNames, into: EntryColumns, from: number, cached?: RecentPayload): ParsedIndexFile {
  const meta = json?.meta;
  if (!meta || typeof meta !== "object" || Object.keys(meta).length === 0) throw new IndexFileError("index file has no meta");
  if (!Array.isArray(json.tensor_payload) && !Array.isArray(json.shape_payload)) {
    throw new IndexFileError("index file has neither tensor_payload nor shape_payload");
  }
  const mode = String(meta.mode ?? "GLOBAL").trim().toUpperCase();
  if (!MODES.has(mode)) throw new IndexFileError(`unknown mode ${meta.mode}`);
  if (!cached) {
    const entries: any[] = tensors ?? [];
    for (let k = 0; k < entries.length; k++) {
      const t = entries[k];
      // Offsets and lengths are untrusted: a record is at least 16 bytes (header and footer).
      if (typeof t?.tensorname !== "string" || !Number.isSafeInteger(t.start_idx) || !Number.isSafeInteger(t.length) || t.start_idx < 0 || t.length < 16) {
        throw new IndexFileError("malformed tensor_payload entry");
      }
      into.push(names.idAt(k, t.tensorname), t.start_idx, t.length);
    }
  }
  const shapes: ShapeEntry[] = [];
  for (const s of json.shape_payload ?? []) {
    if (typeof s?.tensorname !== "string" || !Array.isArray(s.shape)) throw new IndexFileError("malformed shape_payload entry");
    shapes.push({ name: s.tensorname, originalName: s.originalname ?? s.tensorname, shape: s.shape.map(Number) });
  }
  return {
    mode: mode as Mode,
    modeStep: Number(meta.mode_step ?? 0),
    eventFile: typeof meta.event_file_name === "string" ? meta.event_file_name : null,
    entries: cached ?? into,
    from: cached ? 0 : from,
    to: cached ? cached.nameId.length : into.size,
    shapes,
  };
}

const PAYLOAD_KEY = Buffer.from('"tensor_payload"');
const SHAPES_KEY = Buffer.from('"shape_payload"');
const BACKSLASH = 0x5c;
const isJsonSpace = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

/**
 * An index file read as two JSON texts: its tensor_payload array, and the rest with `[]` in the
 * array's place (meta, shape_payload). Consecutive index files of a trial mostly hold the very same
 * payload bytes (the same tensors at the same offsets of their step's event file): a payload equal
 * to a recent one (one native compare) is not parsed again, and the rest is a few hundred bytes.
 * Exactly the result of parsing the whole file, or null when the file is not plainly laid out
 * (the caller then parses it whole): the rest has no escapes and names tensor_payload once, so the
 * `[]` is the top-level tensor_payload; and either payload text is a complete JSON array.
 */
function parseSplit(bytes: Buffer, names: EntryNames, into: EntryColumns, from: number): ParsedIndexFile | null {
  const key = bytes.indexOf(PAYLOAD_KEY);
  if (key < 0) return null;
  let a = key + PAYLOAD_KEY.length;
  while (isJsonSpace(bytes[a])) a++;
  if (bytes[a++] !== 0x3a) return null; // ':'
  while (isJsonSpace(bytes[a])) a++;
  if (bytes[a] !== 0x5b) return null; // '['
  if (a > 0 && bytes.lastIndexOf(BACKSLASH, a - 1) >= 0) return null;
  const recent = names.recent;
  let hit: RecentPayload | undefined;
  let end = -1;
  for (const r of recent) {
    const n = r.bytes.length;
    if (a + n <= bytes.length && bytes[a + n - 1] === 0x5d && bytes.compare(r.bytes, 0, n, a, a + n) === 0) {
      hit = r;
      end = a + n;
      break;
    }
  }
  let payload: any = null;
  if (!hit) {
    // The array ends at the last ']' before shape_payload (or the file's end); the parse proves it.
    const shapes = bytes.indexOf(SHAPES_KEY, a);
    end = (shapes >= 0 ? bytes.lastIndexOf(0x5d, shapes) : bytes.lastIndexOf(0x5d)) + 1;
    if (end <= a) return null;
    try {
      payload = JSON.parse(bytes.toString("utf8", a, end));
    } catch {
      return null;
    }
    if (!Array.isArray(payload)) return null;
  }
  if (bytes.indexOf(BACKSLASH, end) >= 0 || bytes.indexOf(PAYLOAD_KEY, end) >= 0) return null;
  let rest: any;
  try {
    rest = JSON.parse(`${bytes.toString("utf8", 0, a)}[]${bytes.toString("utf8", end)}`);
  } catch {
    return null;
  }
  if (!Array.isArray(rest?.tensor_payload) || rest.tensor_payload.length !== 0) return null;
  if (hit) {
    recent.splice(recent.indexOf(hit), 1);
    recent.unshift(hit);
    return document(rest, null, names, into, from, hit);
  }
  const parsed = document(rest, payload, names, into, from);
  names.remember(bytes.subarray(a, end), into, parsed.from, parsed.to);
  return parsed;
}

export function serializeIndexFile(f: IndexFile): string {
  const meta: Record<string, unknown> = { mode: f.mode, mode_step: f.modeStep };
  if (f.eventFile) meta.event_file_name = f.eventFile;
  return JSON.stringify({
    meta,
    tensor_payload: f.tensors.map((t) => ({ tensorname: t.name, start_idx: t.start, length: t.length })),
    shape_payload: f.shapes.map((s) => ({ tensorname: s.name, originalname: s.originalName, shape: s.shape })),
  });
}
