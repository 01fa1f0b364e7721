/** TFRecord framing: u64 LE length, masked CRC of the length, payload, u32 footer. */
import { FOOTER_MAGIC, maskedCrc32c } from "./crc32c.js";

export const RECORD_OVERHEAD = 16;

export class RecordError extends Error {
  constructor(message: string, readonly offset: number) {
    super(message);
  }
}

function u32le(b: Uint8Array, i: number): number {
  return (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)) >>> 0;
}

export interface RecordSpan {
  /** Payload start and end inside the buffer. */
  start: number;
  end: number;
  /** Offset of the next record. */
  next: number;
}

/**
 * Locates the payload of the record at `offset`, verifying the length CRC and the footer
 * (smdebug's constant, or the real payload CRC as TensorFlow writes).
 */
export function readRecord(buf: Uint8Array, offset: number): RecordSpan {
  const end = readRecordInto(buf, offset);
  return { start: offset + 12, end, next: end + 4 };
}

/** Like readRecord, without allocating: returns the payload's end (it starts at `offset + 12`). */
export function recordPayloadEnd(buf: Uint8Array, offset: number, limit = buf.length): number {
  return readRecordInto(buf, offset, limit);
}

/**
 * The masked CRC of the last length header computed: the records of an event file mostly have
 * the same few lengths (a scalar's record is one size), and the header is just that length.
 */
let lastLo = -1;
let lastHi = -1;
let lastLengthCrc = 0;

/** Validates the record at `offset`, which must end by `limit`; returns its payload's end. */
function readRecordInto(buf: Uint8Array, offset: number, limit = buf.length): number {
  if (offset + 12 > limit) throw new RecordError("truncated record header", offset);
  const lo = u32le(buf, offset);
  const hi = u32le(buf, offset + 4);
  if (lo !== lastLo || hi !== lastHi) {
    lastLengthCrc = maskedCrc32c(buf, offset, offset + 8);
    lastLo = lo;
    lastHi = hi;
  }
  if (lastLengthCrc !== u32le(buf, offset + 8)) throw new RecordError("length CRC mismatch", offset);
  const end = offset + 12 + hi * 2 ** 32 + lo;
  if (end + 4 > limit) throw new RecordError("truncated record payload", offset);
  const footer = u32le(buf, end);
  if (footer !== FOOTER_MAGIC && footer !== maskedCrc32c(buf, offset + 12, end)) throw new RecordError("payload CRC mismatch", offset);
  return end;
}

/** Frames a payload as smdebug does: the footer is the constant magic CRC unless asked for the real one. */
export function frameRecord(payload: Uint8Array, realPayloadCrc = false): Buffer {
  const out = Buffer.alloc(payload.length + RECORD_OVERHEAD);
  out.writeUInt32LE(payload.length % 2 ** 32, 0);
  out.writeUInt32LE(Math.floor(payload.length / 2 ** 32), 4);
  out.writeUInt32LE(maskedCrc32c(out, 0, 8), 8);
  out.set(payload, 12);
  out.writeUInt32LE(realPayloadCrc ? maskedCrc32c(payload) : FOOTER_MAGIC, 12 + payload.length);
  return out;
}
