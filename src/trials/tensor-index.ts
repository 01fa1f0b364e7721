/**
 * Where one tensor's records are, by step and worker. Columns of plain number arrays rather than
 * an object per record: a trial of 500 steps × 600 tensors is 300,000 records, and objects that
 * many cost memory and garbage-collection time on every request.
 */

/** A record's location in its event file (what a read needs). */
export interface RecordRef {
  /** Index into the trial's event file table; -1 when only the shape was saved. */
  file: number;
  start: number;
  length: number;
}

export class TensorIndex {
  /** Distinct global steps, ascending. */
  readonly steps: number[] = [];
  /** First slot of each step in `steps`. */
  private readonly firstSlot: number[] = [];
  // One slot per (step, worker):
  private readonly worker: number[] = [];
  private readonly file: number[] = [];
  private readonly start: number[] = [];
  private readonly length: number[] = [];
  /** The next worker's slot of the same step, or -1. */
  private readonly nextSlot: number[] = [];
  /** Saved shapes (shape_payload), by slot; rare. */
  private shapes: Map<number, number[]> | null = null;

  /** Position of `step` in `steps`, or -1. */
  indexOf(step: number): number {
    const s = this.steps;
    // Steps mostly arrive in order: check the end first.
    if (s.length && s[s.length - 1] === step) return s.length - 1;
    let lo = 0;
    let hi = s.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (s[mid] === step) return mid;
      if (s[mid] < step) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  has(step: number): boolean {
    return this.indexOf(step) >= 0;
  }

  /**
   * Records a location (file >= 0) or a saved shape (file -1) of (step, worker). A later record of
   * the same (step, worker) replaces the location but keeps a known shape, and vice versa.
   */
  add(step: number, worker: number, file: number, start: number, length: number, shape: number[] | null): void {
    let at = this.indexOf(step);
    if (at < 0) {
      const slot = this.pushSlot(worker, file, start, length);
      const s = this.steps;
      if (!s.length || s[s.length - 1] < step) {
        s.push(step);
        this.firstSlot.push(slot);
      } else {
        // Out of order (a late worker or a retried file): keep `steps` sorted.
        at = s.findIndex((x) => x > step);
        s.splice(at, 0, step);
        this.firstSlot.splice(at, 0, slot);
      }
      if (shape) (this.shapes ??= new Map()).set(slot, shape);
      return;
    }
    let slot = this.firstSlot[at];
    for (;;) {
      if (this.worker[slot] === worker) {
        if (file >= 0) {
          this.file[slot] = file;
          this.start[slot] = start;
          this.length[slot] = length;
        }
        if (shape) (this.shapes ??= new Map()).set(slot, shape);
        return;
      }
      if (this.nextSlot[slot] < 0) break;
      slot = this.nextSlot[slot];
    }
    const added = this.pushSlot(worker, file, start, length);
    this.nextSlot[slot] = added;
    if (shape) (this.shapes ??= new Map()).set(added, shape);
  }

  private pushSlot(worker: number, file: number, start: number, length: number): number {
    this.worker.push(worker);
    this.file.push(file);
    this.start.push(start);
    this.length.push(length);
    this.nextSlot.push(-1);
    return this.worker.length - 1;
  }

  /** Workers (ids) that wrote the step. */
  workersAt(step: number): number[] {
    const at = this.indexOf(step);
    const out: number[] = [];
    for (let slot = at < 0 ? -1 : this.firstSlot[at]; slot >= 0; slot = this.nextSlot[slot]) out.push(this.worker[slot]);
    return out;
  }

  /** Whether `worker` (an id) wrote the step. */
  hasWorker(step: number, worker: number): boolean {
    const at = this.indexOf(step);
    for (let slot = at < 0 ? -1 : this.firstSlot[at]; slot >= 0; slot = this.nextSlot[slot]) if (this.worker[slot] === worker) return true;
    return false;
  }

  /**
   * The slot to read for a step: the given worker's, or else the one whose name sorts first
   * (smdebug's choice). -1 when the step is unknown, -2 when that worker did not write it.
   */
  slotAt(step: number, worker: number | null, workerName: (id: number) => string): number {
    const at = this.indexOf(step);
    if (at < 0) return -1;
    let best = this.firstSlot[at];
    if (worker === null && this.nextSlot[best] < 0) return best;
    if (worker !== null) {
      for (let slot = best; slot >= 0; slot = this.nextSlot[slot]) if (this.worker[slot] === worker) return slot;
      return -2;
    }
    for (let slot = this.nextSlot[best]; slot >= 0; slot = this.nextSlot[slot]) {
      if (workerName(this.worker[slot]) < workerName(this.worker[best])) best = slot;
    }
    return best;
  }

  ref(slot: number): RecordRef {
    return { file: this.file[slot], start: this.start[slot], length: this.length[slot] };
  }

  fileOf(slot: number): number {
    return this.file[slot];
  }

  startOf(slot: number): number {
    return this.start[slot];
  }

  lengthOf(slot: number): number {
    return this.length[slot];
  }

  shapeAt(step: number): number[] | null {
    if (!this.shapes) return null;
    const at = this.indexOf(step);
    for (let slot = at < 0 ? -1 : this.firstSlot[at]; slot >= 0; slot = this.nextSlot[slot]) {
      const shape = this.shapes.get(slot);
      if (shape) return shape;
    }
    return null;
  }
}
