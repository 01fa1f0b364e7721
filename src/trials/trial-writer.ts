/**
 * Writes trials in smdebug's format (spec §1–§4): one event file and one index file per
 * (step, worker), the collections file, and the end-of-training marker. Files appear atomically
 * (written as *.tmp, then renamed), so a reader never sees half a file.
 */
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Mode, TensorInput } from "../format/tensor.js";
import { encodeEvent } from "../format/event.js";
import { frameRecord } from "../format/tfrecord.js";
import { serializeIndexFile, type IndexEntry } from "../format/index-file.js";
import { serializeCollectionsFile, type SaveConfigMode } from "../format/collections-file.js";
import { collectionsFileKey, DEFAULT_WORKER, END_OF_TRAINING, eventFileKey, indexFileKey } from "../format/locations.js";
import { reductionTensorName, type ReductionName } from "../format/reductions.js";
import { computeReduction } from "./tensor-stats.js";

export type SaveConfigSpec = SaveConfigMode;

export interface CollectionSpec {
  name: string;
  includeRegex: string[];
  tensorNames?: string[];
  saveConfig?: SaveConfigSpec | null;
  saveHistogram?: boolean;
  /** As the hook's reduction_config: reductions "min,max,l2_norm,abs_mean,…" and whether raw tensors are saved too. */
  reductionConfig?: { reductions: string; saveRawTensor: boolean };
}

/**
 * A tensor as a hook with a reduction config saves it: its reductions as float32 scalars named
 * smdebug/reductions/…, then (with saveRaw) the raw tensor itself.
 */
export function withReductions(
  t: TensorInput,
  reductions: readonly { reduction: ReductionName; abs: boolean }[],
  opts: { saveRaw?: boolean } = {},
): TensorInput[] {
  const values = Float64Array.from(t.values ?? []);
  const out: TensorInput[] = reductions.map((r) => ({
    name: reductionTensorName(t.name, r.reduction, r.abs),
    dtype: "float32",
    shape: [],
    values: [computeReduction(values, r.reduction, r.abs)],
  }));
  if (opts.saveRaw ?? true) out.push(t);
  return out;
}

/**
 * Synchronous on purpose: a step's files are small and land in the page cache in microseconds,
 * while async calls would cost thread-pool round trips between boosting rounds (the hook runs in
 * the training worker, so nothing else waits on this thread).
 */
function writeAtomically(file: string, data: Uint8Array | string): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, file);
}

export class TrialWriter {
  readonly worker: string;

  constructor(readonly dir: string, opts: { worker?: string } = {}) {
    this.worker = opts.worker ?? DEFAULT_WORKER;
  }

  async writeStep(step: number, tensors: TensorInput[], opts: { mode?: Mode; modeStep?: number; wallTime?: number } = {}): Promise<void> {
    const mode = opts.mode ?? "GLOBAL";
    const modeStep = opts.modeStep ?? step;
    const wallTime = opts.wallTime ?? Date.now() / 1000;
    const records: Buffer[] = [];
    const entries: IndexEntry[] = [];
    let offset = 0;
    for (const t of tensors) {
      const size = t.dtype === "string" ? (t.strings?.length ?? 0) : (t.values?.length ?? 0);
      if (size === 0) continue; // smdebug never writes zero-size tensors
      const record = frameRecord(encodeEvent(t, step, mode, modeStep, wallTime));
      records.push(record);
      entries.push({ name: t.name, start: offset, length: record.length });
      offset += record.length;
    }
    const eventKey = eventFileKey(step, this.worker);
    writeAtomically(path.join(this.dir, eventKey), Buffer.concat(records, offset));
    // The index goes last: once it is visible, its event file is complete.
    writeAtomically(
      path.join(this.dir, indexFileKey(step, this.worker)),
      serializeIndexFile({ mode, modeStep, eventFile: eventKey, tensors: entries, shapes: [] }),
    );
  }

  async writeCollections(collections: CollectionSpec[], numWorkers = 1): Promise<void> {
    const modes = (c: CollectionSpec) =>
      c.saveConfig ? { TRAIN: c.saveConfig, EVAL: c.saveConfig, PREDICT: c.saveConfig, GLOBAL: c.saveConfig } : null;
    const text = serializeCollectionsFile({
      numWorkers,
      collections: collections.map((c) => ({
        name: c.name,
        includeRegex: c.includeRegex,
        tensorNames: c.tensorNames ?? [],
        saveConfig: modes(c),
        reductionConfig: {
          save_raw_tensor: c.reductionConfig?.saveRawTensor ?? true, reductions: c.reductionConfig?.reductions ?? "", save_shape: false,
        },
        saveHistogram: c.saveHistogram ?? true,
      })),
    });
    writeAtomically(path.join(this.dir, collectionsFileKey(this.worker)), text);
  }

  async end(): Promise<void> {
    writeAtomically(path.join(this.dir, END_OF_TRAINING), "");
  }
}
