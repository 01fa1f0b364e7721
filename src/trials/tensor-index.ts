/**
 * Where one tensor's records are, by step and worker. Columns of typed arrays in one buffer rather
 * than an object per record, or JS arrays: a trial of 500 steps × 600 tensors is 300,000 records;
 * objects that many, or arrays growing in the young generation, cost memory and garbage-collection
 * time (a fresh process opening such a trial spent more in the collector than in parsing).
 */

/** A record's location in its event file (what a read needs). */
export interface RecordRef {
  /** Index into the trial's event file table; -1 when only the shape was saved. */
  file: number;
  start: number;
  length: number;
}

const EMPTY = new ArrayBuffer(0);

export class TensorIndex {
  private stepCount = 0;
  private slotCount = 0;
  /** Room for this many steps and slots in the columns below. */
  private capacity = 0;
  /** Distinct global steps, ascending (the first stepCount). */
  private stepCol = new Float64Array(EMPTY);
  // One slot per (step, worker):
  private file = new Int32Array(EMPTY);
  private start = new Float64Array(EMPTY);
  private length = new Float64Array(EMPTY);
  /**
   * While true (one worker wrote every step, in step order: most tensors), slot i is step i's only
   * slot and the three link columns below are not allocated: 28 bytes a record instead of 40.
   */
  private plain = true;
  /** The worker of every slot while plain. */
  private soleWorker = -1;
  /** First slot of each step. */
  private firstSlot = new Int32Array(EMPTY);
  private worker = new Int32Array(EMPTY);
  /** The next worker's slot of the same step, or -1. */
  private nextSlot = new Int32Array(EMPTY);
  /** Saved shapes (shape_payload), by slot; rare. */
  private shapes: Map<number, number[]> | null = null;

  /** Distinct global steps, ascending (a view: valid until the next add). */
  get steps(): Float64Array {
    return this.stepCol.subarray(0, this.stepCount);
  }

  /** Makes room for `more` records, so adding them allocates nothing (a refresh knows how many it brings). */
  reserve(more: number): void {
    const need = this.slotCount + more;
    if (need <= this.capacity) return;
    const capacity = Math.max(need, this.capacity === 0 ? 0 : Math.ceil(this.capacity * 1.5));
    // One buffer for the columns every index has: one allocation per growth, 8-byte columns first.
    const buf = new ArrayBuffer(capacity * 28);
    const stepCol = new Float64Array(buf, 0, capacity);
    const start = new Float64Array(buf, 8 * capacity, capacity);
    const length = new Float64Array(buf, 16 * capacity, capacity);
    const file = new Int32Array(buf, 24 * capacity, capacity);
    stepCol.set(this.stepCol.subarray(0, this.stepCount));
    start.set(this.start.subarray(0, this.slotCount));
    length.set(this.length.subarray(0, this.slotCount));
    file.set(this.file.subarray(0, this.slotCount));
    this.stepCol = stepCol;
    this.start = start;
    this.length = length;
    this.file = file;
    this.capacity = capacity;
    if (!this.plain) this.growLinks();
  }

  /** (Re)allocates the link columns at the current capacity, keeping their contents. */
  private growLinks(): void {
    const capacity = this.capacity;
    const buf = new ArrayBuffer(capacity * 12);
    const firstSlot = new Int32Array(buf, 0, capacity);
    const worker = new Int32Array(buf, 4 * capacity, capacity);
    const nextSlot = new Int32Array(buf, 8 * capacity, capacity);
    firstSlot.set(this.firstSlot.subarray(0, this.stepCount));
    worker.set(this.worker.subarray(0, this.slotCount));
    nextSlot.set(this.nextSlot.subarray(0, this.slotCount));
    this.firstSlot = firstSlot;
    this.worker = worker;
    this.nextSlot = nextSlot;
  }

  /** Leaves the plain layout: the link columns get what it implied. */
  private unplain(): void {
    if (!this.plain) return;
    this.plain = false;
    this.growLinks();
    for (let i = 0; i < this.slotCount; i++) {
      this.firstSlot[i] = i;
      this.worker[i] = this.soleWorker;
      this.nextSlot[i] = -1;
    }
  }

  private first(at: number): number {
    return this.plain ? at : this.firstSlot[at];
  }

  private next(slot: number): number {
    return this.plain ? -1 : this.nextSlot[slot];
  }

  private workerOf(slot: number): number {
    return this.plain ? this.soleWorker : this.worker[slot];
  }

  /** Position of `step` in `steps`, or -1. */
  indexOf(step: number): number {
    const s = this.stepCol;
    const n = this.stepCount;
    // Steps mostly arrive in order: check the end first.
    if (n && s[n - 1] === step) return n - 1;
    let lo = 0;
    let hi = n - 1;
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
    const n = this.stepCount;
    if (n === 0 || this.stepCol[n - 1] < step) {
      // The usual case: a step after every known one.
      if (this.plain && n === 0) this.soleWorker = worker;
      else if (this.plain && worker !== this.soleWorker) this.unplain();
      const slot = this.pushSlot(worker, file, start, length);
      this.stepCol[n] = step;
      if (!this.plain) this.firstSlot[n] = slot;
      this.stepCount = n + 1;
      if (shape) (this.shapes ??= new Map()).set(slot, shape);
      return;
    }
    const at = this.indexOf(step);
    if (at < 0) {
      // Out of order (a late worker or a retried file): keep the steps sorted.
      this.unplain();
      const slot = this.pushSlot(worker, file, start, length);
      let to = 0;
      while (this.stepCol[to] < step) to++;
      this.stepCol.copyWithin(to + 1, to, n);
      this.firstSlot.copyWithin(to + 1, to, n);
      this.stepCol[to] = step;
      this.firstSlot[to] = slot;
      this.stepCount = n + 1;
      if (shape) (this.shapes ??= new Map()).set(slot, shape);
      return;
    }
    let slot = this.first(at);
    for (;;) {
      if (this.workerOf(slot) === worker) {
        if (file >= 0) {
          this.file[slot] = file;
          this.start[slot] = start;
          this.length[slot] = length;
        }
        if (shape) (this.shapes ??= new Map()).set(slot, shape);
        return;
      }
      if (this.next(slot) < 0) break;
      slot = this.next(slot);
    }
    this.unplain();
    const added = this.pushSlot(worker, file, start, length);
    this.nextSlot[slot] = added;
    if (shape) (this.shapes ??= new Map()).set(added, shape);
  }

  /** A new slot; there is room for a step with it too (never more steps than slots). */
  private pushSlot(worker: number, file: number, start: number, length: number): number {
    if (this.slotCount === this.capacity) this.reserve(Math.max(4, this.capacity >>> 1));
    const slot = this.slotCount++;
    this.file[slot] = file;
    this.start[slot] = start;
    this.length[slot] = length;
    if (!this.plain) {
      this.worker[slot] = worker;
      this.nextSlot[slot] = -1;
    }
    return slot;
  }

  /** Workers (ids) that wrote the step. */
  workersAt(step: number): number[] {
    const at = this.indexOf(step);
    const out: number[] = [];
    for (let slot = at < 0 ? -1 : this.first(at); slot >= 0; slot = this.next(slot)) out.push(this.workerOf(slot));
    return out;
  }

  /** Whether `worker` (an id) wrote the step. */
  hasWorker(step: number, worker: number): boolean {
    const at = this.indexOf(step);
    for (let slot = at < 0 ? -1 : this.first(at); slot >= 0; slot = this.next(slot)) if (this.workerOf(slot) === worker) return true;
    return false;
  }

  /**
   * The slot to read for a step: the given worker's, or else the one whose name sorts first
   * (smdebug's choice). -1 when the step is unknown, -2 when that worker did not write it.
   */
  slotAt(step: number, worker: number | null, workerName: (id: number) => string): number {
    const at = this.indexOf(step);
    if (at < 0) return -1;
    let best = this.first(at);
    if (worker === null && this.next(best) < 0) return best;
    if (worker !== null) {
      for (let slot = best; slot >= 0; slot = this.next(slot)) if (this.workerOf(slot) === worker) return slot;
      return -2;
    }
    for (let slot = this.next(best); slot >= 0; slot = this.next(slot)) {
      if (workerName(this.workerOf(slot)) < workerName(this.workerOf(best))) best = slot;
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
    for (let slot = at < 0 ? -1 : this.first(at); slot >= 0; slot = this.next(slot)) {
      const shape = this.shapes.get(slot);
      if (shape) return shape;
    }
    return null;
  }
}
