/** The byte-bounded LRU of decoded tensor values (and whole series), shared by every trial of the process. */
import type { TensorData } from "../format/tensor.js";
import { SizeBoundedLru } from "../storage/lru.js";

const OVERHEAD = 160; // object headers, key string, map entry

export function approxBytes(v: TensorData): number {
  return OVERHEAD + (v.values ? v.values.length * 8 : 0) + (v.strings ? v.strings.reduce((a, s) => a + 2 * s.length + 32, 0) : 0);
}

export type ValueCache = SizeBoundedLru<string, TensorData>;

export function createValueCache(maxBytes: number): ValueCache {
  return new SizeBoundedLru<string, TensorData>(maxBytes, approxBytes);
}
