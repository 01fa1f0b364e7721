/** A byte-bounded LRU of decoded tensor values, shared by every trial of the process. */
import type { TensorData } from "../format/tensor.js";

const OVERHEAD = 160; // object headers, key string, map entry

export function approxBytes(v: TensorData): number {
  return OVERHEAD + (v.values ? v.values.length * 8 : 0) + (v.strings ? v.strings.reduce((a, s) => a + 2 * s.length + 32, 0) : 0);
}

export class ValueCache {
  private map = new Map<string, { value: TensorData; bytes: number }>();
  private bytes = 0;
  hits = 0;
  misses = 0;

  constructor(readonly maxBytes: number) {}

  get(key: string): TensorData | undefined {
    const e = this.map.get(key);
    if (!e) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    // Refresh recency: Map iteration order is insertion order.
    this.map.delete(key);
    this.map.set(key, e);
    return e.value;
  }

  set(key: string, value: TensorData): void {
    const bytes = approxBytes(value);
    if (bytes > this.maxBytes) return;
    const old = this.map.get(key);
    if (old) {
      this.bytes -= old.bytes;
      this.map.delete(key);
    }
    this.map.set(key, { value, bytes });
    this.bytes += bytes;
    if (this.bytes <= this.maxBytes) return;
    for (const [k, e] of this.map) {
      if (this.bytes <= this.maxBytes) break;
      this.map.delete(k);
      this.bytes -= e.bytes;
    }
  }

  get sizeBytes(): number {
    return this.bytes;
  }
}
