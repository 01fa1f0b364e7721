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

/** A tensor_payload entry as smdebug writes it. */
export interface RawIndexEntry {
  tensorname: string;
  start_idx: number;
  length: number;
}

export interface IndexFile {
  mode: Mode;
  modeStep: number;
  /** Event file path relative to the trial root; absent when only shapes were saved. */
  eventFile: string | null;
  tensors: IndexEntry[];
  shapes: ShapeEntry[];
}

/** What the reader gets: the entries as parsed. */
export interface ParsedIndexFile extends Omit<IndexFile, "tensors"> {
  tensors: RawIndexEntry[];
}

export class IndexFileError extends Error {}

const MODES = new Set(["TRAIN", "EVAL", "PREDICT", "GLOBAL"]);

export function parseIndexFile(text: string): ParsedIndexFile {
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
  // The parsed JSON objects are used as they are (validated, not copied): a big trial has
  // hundreds of thousands of entries, and a copy of each is garbage the reader need not make.
  const tensors: RawIndexEntry[] = json.tensor_payload ?? [];
  for (const t of tensors) {
    // Offsets and lengths are untrusted: a record is at least 16 bytes (header and footer).
    if (typeof t?.tensorname !== "string" || !Number.isSafeInteger(t.start_idx) || !Number.isSafeInteger(t.length) || t.start_idx < 0 || t.length < 16) {
      throw new IndexFileError("malformed tensor_payload entry");
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
    tensors,
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
