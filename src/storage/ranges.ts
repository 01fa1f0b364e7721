/** Merging byte ranges of one object into few reads. Shared by the local and S3 sources. */
import { TrialgraphError } from "../errors.js";
import type { ByteRange } from "./byte-source.js";

export interface CoalescedRange {
  start: number;
  length: number;
  /** Indexes (into the input array) of the ranges this read covers, ordered by start (ties: input order). */
  members: number[];
}

export interface CoalesceOptions {
  /**
   * Do not grow a span past this many bytes by merging (a single range longer than this stays one span).
   * Default: unbounded.
   */
  maxSpan?: number;
}

/**
 * Ranges come from index files, which are untrusted input: a negative, fractional or absurd offset is a
 * corrupt index, not a programming error.
 */
export function validateRange(r: ByteRange, index: number): void {
  const ok =
    Number.isSafeInteger(r.start) && Number.isSafeInteger(r.length) && r.start >= 0 && r.length >= 0 &&
    Number.isSafeInteger(r.start + r.length);
  if (!ok) {
    throw new TrialgraphError("CORRUPT_RECORD", `invalid byte range (start ${r.start}, length ${r.length})`, {
      rangeIndex: index,
      start: r.start,
      length: r.length,
    });
  }
}

/**
 * Groups ranges whose gaps are at most `maxGap` bytes into single reads; overlapping, duplicate and adjacent
 * ranges always merge (`maxGap` 0). Input order does not matter; the output is ordered by start, and each
 * group lists its members' input indexes so callers can slice results back. Zero-length ranges belong to the
 * group they fall in (or form their own zero-length group), so every input index appears exactly once.
 */
export function coalesceRanges(ranges: readonly ByteRange[], maxGap: number, opts: CoalesceOptions = {}): CoalescedRange[] {
  ranges.forEach(validateRange);
  if (!(maxGap >= 0)) throw new RangeError(`maxGap must be >= 0, got ${maxGap}`);
  const maxSpan = opts.maxSpan ?? Infinity;
  // Array.prototype.sort is stable, so equal starts keep input order.
  const order = ranges.map((_, i) => i).sort((a, b) => ranges[a].start - ranges[b].start);
  const out: CoalescedRange[] = [];
  let current: CoalescedRange | null = null;
  for (const i of order) {
    const r = ranges[i];
    const end = r.start + r.length;
    if (current) {
      const currentEnd = current.start + current.length;
      const mergedLength = Math.max(currentEnd, end) - current.start;
      const overlaps = r.start < currentEnd || (r.length === 0 && r.start <= currentEnd);
      if (overlaps || (r.start - currentEnd <= maxGap && mergedLength <= maxSpan)) {
        current.length = mergedLength;
        current.members.push(i);
        continue;
      }
    }
    current = { start: r.start, length: r.length, members: [i] };
    out.push(current);
  }
  return out;
}

/**
 * Slices each member range out of the buffer read for its group. `reads[g]` holds the bytes from
 * `groups[g].start`; it may be shorter than the group (object shorter than asked), and then the member
 * buffers are short or empty too. Slices share memory with the group's buffer.
 */
export function sliceMembers(
  ranges: readonly ByteRange[],
  groups: readonly CoalescedRange[],
  reads: readonly Buffer[],
  into: Buffer[],
): void {
  groups.forEach((g, gi) => {
    const data = reads[gi];
    for (const m of g.members) {
      const off = ranges[m].start - g.start;
      into[m] = data.subarray(Math.min(off, data.length), Math.min(off + ranges[m].length, data.length));
    }
  });
}

/**
 * The whole pipeline for a source: coalesce, read every group (in parallel; the reader applies its own
 * concurrency bound), and slice the members back in input order. `readGroup` returns the bytes starting at
 * `start` (possibly fewer than `length`), or null when the object does not exist, which makes the result null.
 */
export async function readCoalesced(
  ranges: readonly ByteRange[],
  maxGap: number,
  readGroup: (start: number, length: number) => Promise<Buffer | null>,
  opts: CoalesceOptions = {},
): Promise<Buffer[] | null> {
  const groups = coalesceRanges(ranges, maxGap, opts).filter((g) => g.length > 0);
  const out: Buffer[] = new Array(ranges.length).fill(EMPTY);
  const reads = await Promise.all(groups.map((g) => readGroup(g.start, g.length)));
  if (reads.some((r) => r === null)) return null;
  sliceMembers(ranges, groups, reads as Buffer[], out);
  return out;
}

const EMPTY = Buffer.alloc(0);

/** LIMIT_EXCEEDED when a read of `total` bytes is more than the reader may hold. */
export function checkReadSize(total: number, maxBytes: number | undefined, where: string): void {
  if (maxBytes !== undefined && total > maxBytes) {
    throw new TrialgraphError("LIMIT_EXCEEDED", `reading ${total} bytes of ${where} is more than this request may hold (${Math.max(0, Math.floor(maxBytes))} bytes left)`, { limit: "memory" });
  }
}
