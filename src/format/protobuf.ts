/**
 * The little of the protobuf wire format that smdebug's Event/Summary/TensorProto need.
 * Hand-written: it is small, allocation-light and faster than a generic library here.
 */

export const WIRE_VARINT = 0;
export const WIRE_I64 = 1;
export const WIRE_LEN = 2;
export const WIRE_I32 = 5;

export class ProtoError extends Error {}

// Little-endian reads through one scratch buffer: no DataView per message. (x86 and ARM are little-endian.)
const scratchBytes = new Uint8Array(8);
const scratchF64 = new Float64Array(scratchBytes.buffer);
const scratchF32 = new Float32Array(scratchBytes.buffer, 0, 1);

export class ProtoReader {
  pos: number;
  /** Start of the last length-delimited field read (its end is `pos`). */
  fieldStart = 0;
  constructor(public buf: Uint8Array, start = 0, public end = buf.length) {
    this.pos = start;
  }

  /** Points this reader at another message (hot paths reuse one reader instead of allocating). */
  reset(buf: Uint8Array, start: number, end: number): this {
    this.buf = buf;
    this.pos = start;
    this.end = end;
    this.fieldStart = 0;
    return this;
  }

  done(): boolean {
    return this.pos >= this.end;
  }

  /** Varints up to 64 bits, as a JS number (exact below 2^53). Negative int64 comes back as its two's complement. */
  varint(): number {
    // Fast path: one byte (field tags, small lengths).
    if (this.pos < this.end && this.buf[this.pos] < 0x80) return this.buf[this.pos++];
    let result = 0;
    let shift = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new ProtoError("truncated varint");
      const b = this.buf[this.pos++];
      result += (b & 0x7f) * shift;
      if (b < 0x80) return result;
      shift *= 128;
    }
    throw new ProtoError("varint too long");
  }

  /** A signed int64 varint (two's complement). */
  int64(): number {
    const start = this.pos;
    const v = this.varint();
    if (v < 2 ** 63) return v;
    // Re-read as BigInt for the negative range.
    this.pos = start;
    let big = 0n;
    let shift = 0n;
    for (;;) {
      const b = this.buf[this.pos++];
      big |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) break;
      shift += 7n;
    }
    return Number(BigInt.asIntN(64, big));
  }

  /** A field key: `key >>> 3` is the field number, `key & 7` the wire type. */
  key(): number {
    return this.varint();
  }

  double(): number {
    if (this.pos + 8 > this.end) throw new ProtoError("truncated double");
    for (let k = 0; k < 8; k++) scratchBytes[k] = this.buf[this.pos + k];
    this.pos += 8;
    return scratchF64[0];
  }

  float(): number {
    if (this.pos + 4 > this.end) throw new ProtoError("truncated float");
    for (let k = 0; k < 4; k++) scratchBytes[k] = this.buf[this.pos + k];
    this.pos += 4;
    return scratchF32[0];
  }

  /** Skips a length-delimited field and returns its end; its start is left in `fieldStart`. */
  lengthDelimited(): number {
    const len = this.varint();
    const start = this.pos;
    const end = start + len;
    if (end > this.end) throw new ProtoError("truncated length-delimited field");
    this.fieldStart = start;
    this.pos = end;
    return end;
  }

  string(): string {
    const end = this.lengthDelimited();
    return utf8(this.buf, this.fieldStart, end);
  }

  skip(wire: number): void {
    switch (wire) {
      case WIRE_VARINT: this.varint(); return;
      case WIRE_I64: this.pos += 8; break;
      case WIRE_LEN: this.lengthDelimited(); return;
      case WIRE_I32: this.pos += 4; break;
      default: throw new ProtoError(`unsupported wire type ${wire}`);
    }
    if (this.pos > this.end) throw new ProtoError("truncated field");
  }
}

/** Decodes UTF-8; short ASCII (tensor names, plugin data) without allocating a Buffer. */
export function utf8(buf: Uint8Array, start: number, end: number): string {
  if (end - start <= 64) {
    let ascii = true;
    for (let i = start; i < end; i++) if (buf[i] >= 0x80) { ascii = false; break; }
    if (ascii) return String.fromCharCode.apply(null, buf.subarray(start, end) as unknown as number[]);
  }
  return Buffer.from(buf.buffer, buf.byteOffset + start, end - start).toString("utf8");
}

/** Appends protobuf fields to a growing byte list. */
export class ProtoWriter {
  private chunks: Uint8Array[] = [];
  private scratch: number[] = [];
  length = 0;

  private flushScratch(): void {
    if (this.scratch.length) {
      const b = Uint8Array.from(this.scratch);
      this.chunks.push(b);
      this.length += b.length;
      this.scratch = [];
    }
  }

  private rawVarint(v: number): void {
    if (v < 0) {
      // int64 two's complement, 10 bytes.
      let big = BigInt.asUintN(64, BigInt(v));
      while (big >= 0x80n) { this.scratch.push(Number(big & 0x7fn) | 0x80); big >>= 7n; }
      this.scratch.push(Number(big));
      return;
    }
    while (v >= 0x80) { this.scratch.push((v % 128) | 0x80); v = Math.floor(v / 128); }
    this.scratch.push(v);
  }

  tag(field: number, wire: number): this { this.rawVarint(field * 8 + wire); return this; }
  varint(field: number, v: number): this { this.tag(field, WIRE_VARINT); this.rawVarint(v); return this; }
  double(field: number, v: number): this {
    this.tag(field, WIRE_I64);
    const b = Buffer.alloc(8); b.writeDoubleLE(v, 0);
    this.scratch.push(...b);
    return this;
  }
  float(field: number, v: number): this {
    this.tag(field, WIRE_I32);
    const b = Buffer.alloc(4); b.writeFloatLE(v, 0);
    this.scratch.push(...b);
    return this;
  }
  bytes(field: number, data: Uint8Array): this {
    this.tag(field, WIRE_LEN); this.rawVarint(data.length);
    this.flushScratch();
    this.chunks.push(data); this.length += data.length;
    return this;
  }
  string(field: number, s: string): this { return this.bytes(field, Buffer.from(s, "utf8")); }
  message(field: number, m: ProtoWriter): this { return this.bytes(field, m.finish()); }

  finish(): Uint8Array {
    this.flushScratch();
    return Buffer.concat(this.chunks, this.length);
  }
}
