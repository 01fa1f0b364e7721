/**
 * A least-recently-used map bounded by the total size of its values (bytes, or any cost the caller
 * measures), not by entry count. A value larger than the whole budget is not stored.
 */
export class SizeBoundedLru<K, V> {
  // A Map iterates in insertion order; re-inserting on access makes the first key the least recently used.
  private readonly entries = new Map<K, { value: V; size: number }>();
  private total = 0;
  hits = 0;
  misses = 0;

  constructor(
    readonly maxSize: number,
    private readonly sizeOf: (value: V) => number,
  ) {
    if (!(maxSize >= 0)) throw new RangeError(`maxSize must be >= 0, got ${maxSize}`);
  }

  /** Sum of the sizes of the values held. */
  get size(): number {
    return this.total;
  }

  get count(): number {
    return this.entries.size;
  }

  get(key: K): V | undefined {
    const e = this.entries.get(key);
    if (!e) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.entries.delete(key);
    this.entries.set(key, e);
    return e.value;
  }

  has(key: K): boolean {
    return this.entries.has(key);
  }

  /** Stores the value (most recently used) and evicts the least recently used until within budget. */
  set(key: K, value: V): boolean {
    const size = this.sizeOf(value);
    this.delete(key);
    if (!(size >= 0) || size > this.maxSize) return false;
    this.entries.set(key, { value, size });
    this.total += size;
    if (this.total <= this.maxSize) return true;
    for (const [k, e] of this.entries) {
      if (this.total <= this.maxSize) break;
      this.entries.delete(k);
      this.total -= e.size;
    }
    return true;
  }

  delete(key: K): boolean {
    const e = this.entries.get(key);
    if (!e) return false;
    this.entries.delete(key);
    this.total -= e.size;
    return true;
  }

  clear(): void {
    this.entries.clear();
    this.total = 0;
  }
}

/** A byte-bounded cache of whole objects (keyed by their full location), shareable between sources. */
export function createObjectCache(maxBytes: number): SizeBoundedLru<string, Buffer> {
  return new SizeBoundedLru<string, Buffer>(maxBytes, (b) => b.length);
}
