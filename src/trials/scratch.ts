/**
 * Buffers that reads of index files and event-file spans go into, reused: the bytes are parsed or
 * decoded (copied out) at once, and a fresh buffer per read costs page faults and garbage collection,
 * more than the read itself in a fresh process (reading the perf trial's 63 MB of event files into
 * fresh buffers faulted ~15,000 pages).
 */

/** Reads larger than this get a buffer of their own (the sources read larger ones asynchronously anyway). */
export const MAX_SCRATCH_BYTES = 1 << 20;
/** Buffers kept for reuse, at most this many bytes in all. */
const MAX_POOLED_BYTES = 4 << 20;
const MIN_SCRATCH = 64 * 1024;

const pool: Buffer[] = [];
let pooledBytes = 0;

/** A buffer of at least `bytes` (up to MAX_SCRATCH_BYTES), owned by the caller until give(). */
export function takeScratch(bytes = MIN_SCRATCH): Buffer {
  const want = Math.min(MAX_SCRATCH_BYTES, Math.max(MIN_SCRATCH, bytes));
  for (let i = pool.length - 1; i >= 0; i--) {
    if (pool[i].length >= want) {
      const buf = pool[i];
      pool.splice(i, 1);
      pooledBytes -= buf.length;
      return buf;
    }
  }
  return Buffer.allocUnsafeSlow(2 ** Math.ceil(Math.log2(want)));
}

/** Returns a buffer from takeScratch (nothing read into it may be used after this). */
export function giveScratch(buf: Buffer): void {
  if (pooledBytes + buf.length > MAX_POOLED_BYTES) return;
  pool.push(buf);
  pooledBytes += buf.length;
}
