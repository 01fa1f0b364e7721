/** Small trials written with the project's TrialWriter, for what the shared fixtures do not cover. */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { TrialWriter, withReductions, type CollectionSpec } from "../../src/trials/trial-writer.js";
import type { Mode, TensorInput } from "../../src/format/tensor.js";
import type { ReductionName } from "../../src/format/reductions.js";

/** A tensor by name: a scalar, a 1-D list, or a full TensorInput (float32 unless given). */
export type TensorSpec = number | number[] | Omit<TensorInput, "name">;

export interface StepSpec {
  step: number;
  tensors: Record<string, TensorSpec>;
  mode?: Mode;
  modeStep?: number;
  worker?: string;
}

export interface WriteOptions {
  collections?: CollectionSpec[];
  /** Workers writing collections files (each step is written by its own `worker`). */
  workers?: string[];
  end?: boolean;
  /** Tensors saved as these reductions (float32 scalars), matched by name. */
  reductions?: { match: RegExp; reductions: { reduction: ReductionName; abs: boolean }[]; saveRaw: boolean }[];
}

export function tensorInput(name: string, v: TensorSpec): TensorInput {
  if (typeof v === "number") return { name, dtype: "float32", shape: [1], values: [v] };
  if (Array.isArray(v)) return { name, dtype: "float32", shape: [v.length], values: v };
  return { ...v, name };
}

/** A [rows, cols] float32 tensor whose element (r, c) is f(r, c). */
export function matrix(rows: number, cols: number, f: (r: number, c: number) => number): Omit<TensorInput, "name"> {
  const values = new Array<number>(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) values[r * cols + c] = f(r, c);
  return { dtype: "float32", shape: [rows, cols], values };
}

export class TempTrials {
  private dirs: string[] = [];

  async write(steps: StepSpec[], opts: WriteOptions = {}): Promise<string> {
    const dir = await mkdtemp(path.join(os.tmpdir(), "trialgraph-dl-"));
    this.dirs.push(dir);
    await writeTrialTo(dir, steps, opts);
    return dir;
  }

  async cleanup(): Promise<void> {
    for (const d of this.dirs.splice(0)) await rm(d, { recursive: true, force: true });
  }
}

export async function writeTrialTo(dir: string, steps: StepSpec[], opts: WriteOptions = {}): Promise<void> {
  const workers = opts.workers ?? ["worker_0"];
  const writers = new Map(workers.map((w) => [w, new TrialWriter(dir, { worker: w })]));
  for (const w of writers.values()) await w.writeCollections(opts.collections ?? [], workers.length);
  for (const s of steps) {
    const writer = writers.get(s.worker ?? workers[0]);
    if (!writer) throw new Error(`no writer for ${s.worker}`);
    const inputs = Object.entries(s.tensors).flatMap(([name, v]) => {
      const t = tensorInput(name, v);
      const red = opts.reductions?.find((r) => r.match.test(name));
      return red ? withReductions(t, red.reductions, { saveRaw: red.saveRaw }) : [t];
    });
    await writer.writeStep(s.step, inputs, { mode: s.mode, modeStep: s.modeStep });
  }
  if (opts.end ?? true) await writers.get(workers[0])!.end();
}
