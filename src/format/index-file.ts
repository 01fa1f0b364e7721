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

/** tensor_payload entries of many index files as columns (name id, start, length); grows by doubling. */
export class EntryColumns {
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

/** An index file parsed into EntryColumns: its tensor_payload entries are columns[from, to). */
export interface ParsedIndexFile {
  mode: Mode;
  modeStep: number;
  /** Event file path relative to the trial root; absent when only shapes were saved. */
  eventFile: string | null;
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
    return parseJson(typeof bytes === "string" ? bytes : bytes.toString("utf8"), names, into, from);
  } catch (e) {
    into.size = from;
    throw e;
  }
}

function parseJson(text: string, names: EntryNames, into: EntryColumns, from: number): ParsedIndexFile {
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    throw new IndexFileError("Empty/Corrupt Index File");
  }
  const meta = json?.meta;
  if (!meta || typeof meta !== "object" || Object.keys(meta).length === 0) throw new IndexFileError("index file has no meta");
  if (!Array.isArray(json.tensor_payload) && !Array.isArray(json.shape_payload)) {
    throw new IndexFileError("index file has neither tensor_payload nor shape_payload");
  }
  const mode = String(meta.mode ?? "GLOBAL").trim().toUpperCase();
  if (!MODES.has(mode)) throw new IndexFileError(`unknown mode ${meta.mode}`);
  const tensors: any[] = json.tensor_payload ?? [];
  for (let k = 0; k < tensors.length; k++) {
    const t = tensors[k];
    // Offsets and lengths are untrusted: a record is at least 16 bytes (header and footer).
    if (typeof t?.tensorname !== "string" || !Number.isSafeInteger(t.start_idx) || !Number.isSafeInteger(t.length) || t.start_idx < 0 || t.length < 16) {
      throw new IndexFileError("malformed tensor_payload entry");
    }
    into.push(names.idAt(k, t.tensorname), t.start_idx, t.length);
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
    from,
    to: into.size,
    shapes,
  };
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
