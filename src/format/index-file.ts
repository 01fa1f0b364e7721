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

export interface IndexFile {
  mode: Mode;
  modeStep: number;
  /** Event file path relative to the trial root; absent when only shapes were saved. */
  eventFile: string | null;
  tensors: IndexEntry[];
  shapes: ShapeEntry[];
}

export class IndexFileError extends Error {}

const MODES = new Set(["TRAIN", "EVAL", "PREDICT", "GLOBAL"]);

export function parseIndexFile(text: string): IndexFile {
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
  const tensors: IndexEntry[] = [];
  for (const t of json.tensor_payload ?? []) {
    if (typeof t?.tensorname !== "string" || !Number.isInteger(t.start_idx) || !Number.isInteger(t.length)) {
      throw new IndexFileError("malformed tensor_payload entry");
    }
    tensors.push({ name: t.tensorname, start: t.start_idx, length: t.length });
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
