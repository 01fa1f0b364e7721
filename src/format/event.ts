/**
 * smdebug Event records <-> tensors (spec §3.2–§3.4).
 * Event{1 wall_time, 2 step, 5 summary{1 value{1 tag, 8 tensor, 9 metadata{1 plugin_data{1 name, 2 content}}}}}.
 */
import { ProtoReader, ProtoWriter, utf8, WIRE_I64, WIRE_LEN, WIRE_VARINT } from "./protobuf.js";
import type { DType, Mode, TensorData, TensorInput, TensorRecord } from "./tensor.js";
import { MODE_NUMBER } from "./tensor.js";

/** TensorFlow DataType numbers (the _REF variants are +100). */
const DTYPE_BY_ENUM: Record<number, DType> = {
  1: "float32", 2: "float64", 3: "int32", 4: "uint8", 5: "int16", 6: "int8", 7: "string", 8: "complex64",
  9: "int64", 10: "bool", 14: "bfloat16", 17: "uint16", 18: "complex128", 19: "float16", 22: "uint32", 23: "uint64",
};
const ENUM_BY_DTYPE: Record<DType, number> = {
  float32: 1, float64: 2, int32: 3, uint8: 4, int16: 5, int8: 6, string: 7, complex64: 8,
  int64: 9, bool: 10, bfloat16: 14, uint16: 17, complex128: 18, float16: 19, uint32: 22, uint64: 23,
};
const ITEM_SIZE: Record<DType, number> = {
  float16: 2, bfloat16: 2, float32: 4, float64: 8, int8: 1, int16: 2, int32: 4, int64: 8,
  uint8: 1, uint16: 2, uint32: 4, uint64: 8, bool: 1, string: 0, complex64: 8, complex128: 16,
};
const MODE_BY_NUMBER: Record<string, Mode> = { "1": "TRAIN", "2": "EVAL", "3": "PREDICT", "4": "GLOBAL" };

export class EventDecodeError extends Error {}

/** A tensor that declares more elements than the caller may allocate (checked before allocating). */
export class TensorTooLargeError extends EventDecodeError {
  constructor(readonly elements: number, readonly shape: number[]) {
    super(`the tensor declares ${elements} elements (shape [${shape}])`);
  }
}

export function dtypeFromEnum(n: number): DType | undefined {
  return DTYPE_BY_ENUM[n >= 100 ? n - 100 : n];
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function bfloat16ToFloat(b: number): number {
  u32[0] = b << 16;
  return f32[0];
}

// Little-endian hosts only (x86, ARM), as smdebug's own files assume.
const scratchBytes = new Uint8Array(8);
const scratchF64 = new Float64Array(scratchBytes.buffer);
const scratchF32 = new Float32Array(scratchBytes.buffer, 0, 1);
function readF64(b: Uint8Array, i: number): number {
  for (let k = 0; k < 8; k++) scratchBytes[k] = b[i + k];
  return scratchF64[0];
}
function readF32(b: Uint8Array, i: number): number {
  for (let k = 0; k < 4; k++) scratchBytes[k] = b[i + k];
  return scratchF32[0];
}

/** Reinterprets raw little-endian C-order bytes as `dtype`, widened to float64. */
export function decodeContent(dtype: DType, buf: Uint8Array, start: number, end: number): Float64Array {
  const size = ITEM_SIZE[dtype];
  if (!size || (end - start) % size !== 0) {
    throw new EventDecodeError(`tensor_content of ${end - start} bytes does not fit dtype ${dtype}`);
  }
  const n = (end - start) / size;
  const out = new Float64Array(dtype === "complex64" || dtype === "complex128" ? n * 2 : n);
  if (dtype === "float64" && n === 1) { out[0] = readF64(buf, start); return out; }
  if (dtype === "float32" && n === 1) { out[0] = readF32(buf, start); return out; }
  const v = new DataView(buf.buffer, buf.byteOffset + start, end - start);
  switch (dtype) {
    case "float64": for (let i = 0; i < n; i++) out[i] = v.getFloat64(i * 8, true); break;
    case "float32": for (let i = 0; i < n; i++) out[i] = v.getFloat32(i * 4, true); break;
    case "float16": for (let i = 0; i < n; i++) out[i] = halfToFloat(v.getUint16(i * 2, true)); break;
    case "bfloat16": for (let i = 0; i < n; i++) out[i] = bfloat16ToFloat(v.getUint16(i * 2, true)); break;
    case "int8": for (let i = 0; i < n; i++) out[i] = v.getInt8(i); break;
    case "uint8": for (let i = 0; i < n; i++) out[i] = v.getUint8(i); break;
    case "bool": for (let i = 0; i < n; i++) out[i] = v.getUint8(i) ? 1 : 0; break;
    case "int16": for (let i = 0; i < n; i++) out[i] = v.getInt16(i * 2, true); break;
    case "uint16": for (let i = 0; i < n; i++) out[i] = v.getUint16(i * 2, true); break;
    case "int32": for (let i = 0; i < n; i++) out[i] = v.getInt32(i * 4, true); break;
    case "uint32": for (let i = 0; i < n; i++) out[i] = v.getUint32(i * 4, true); break;
    case "int64": for (let i = 0; i < n; i++) out[i] = Number(v.getBigInt64(i * 8, true)); break;
    case "uint64": for (let i = 0; i < n; i++) out[i] = Number(v.getBigUint64(i * 8, true)); break;
    case "complex64": for (let i = 0; i < n * 2; i++) out[i] = v.getFloat32(i * 4, true); break;
    case "complex128": for (let i = 0; i < n * 2; i++) out[i] = v.getFloat64(i * 8, true); break;
    default: throw new EventDecodeError(`unsupported dtype ${dtype}`);
  }
  return out;
}

/** Values of a repeated scalar field, packed or not. */
function readRepeated(r: ProtoReader, wire: number, readOne: () => number, into: number[]): void {
  if (wire !== WIRE_LEN) { into.push(readOne()); return; }
  const e = r.lengthDelimited();
  r.pos = r.fieldStart;
  while (r.pos < e) into.push(readOne());
  r.pos = e;
}

interface RawTensor {
  dtypeEnum: number;
  shape: number[];
  contentStart: number;
  contentEnd: number;
  strings: string[] | null;
  typed: number[] | null;
}

/** Most tensors are scalars saved as [1]: one shared, frozen shape saves an array per value. */
const SHAPE_1: number[] = Object.freeze([1]) as number[];

function readShape(r: ProtoReader, end: number, shape: number[]): void {
  while (r.pos < end) {
    const k = r.key();
    if (k !== ((2 << 3) | WIRE_LEN)) { r.skip(k & 7); continue; }
    const de = r.lengthDelimited();
    r.pos = r.fieldStart;
    let size = 0;
    while (r.pos < de) {
      const dk = r.key();
      if (dk === ((1 << 3) | WIRE_VARINT)) size = r.int64();
      else r.skip(dk & 7);
    }
    shape.push(size);
  }
}

function readTensor(r: ProtoReader, end: number): RawTensor {
  const t: RawTensor = { dtypeEnum: 0, shape: [], contentStart: 0, contentEnd: 0, strings: null, typed: null };
  while (r.pos < end) {
    const k = r.key();
    const w = k & 7;
    switch (k >>> 3) {
      case 1: t.dtypeEnum = r.varint(); break;
      case 2: {
        const e = r.lengthDelimited();
        r.pos = r.fieldStart;
        readShape(r, e, t.shape);
        r.pos = e;
        break;
      }
      case 4: t.contentEnd = r.lengthDelimited(); t.contentStart = r.fieldStart; break;
      case 8: (t.strings ??= []).push(r.string()); break;
      case 5: case 9: readRepeated(r, w, () => r.float(), (t.typed ??= [])); break;
      case 6: case 12: readRepeated(r, w, () => r.double(), (t.typed ??= [])); break;
      case 7: case 10: readRepeated(r, w, () => r.int64(), (t.typed ??= [])); break;
      case 11: readRepeated(r, w, () => (r.varint() ? 1 : 0), (t.typed ??= [])); break;
      case 13: readRepeated(r, w, () => halfToFloat(r.varint() & 0xffff), (t.typed ??= [])); break;
      default: r.skip(w);
    }
  }
  return t;
}

function toData(t: RawTensor, buf: Uint8Array, maxElements: number): TensorData {
  // Declared dims are untrusted: each must be a non-negative integer, and their product is checked
  // against what the caller may allocate before anything is allocated.
  let expected = 1;
  for (const d of t.shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new EventDecodeError(`invalid dimension ${d} in shape [${t.shape}]`);
    expected *= d;
  }
  // smdebug leaves dtype 0 for strings; a DT_STRING with string_val is the same thing.
  if ((t.dtypeEnum === 0 || t.dtypeEnum % 100 === 7) && t.strings) {
    if (t.shape.length > 1) throw new EventDecodeError("string tensors must be one-dimensional");
    return { dtype: "string", shape: t.shape.length ? t.shape : [t.strings.length], values: null, strings: t.strings };
  }
  const dtype = dtypeFromEnum(t.dtypeEnum);
  if (!dtype || dtype === "string") throw new EventDecodeError(`unsupported tensor dtype ${t.dtypeEnum}`);
  let values: Float64Array;
  if (t.contentEnd > t.contentStart) {
    values = decodeContent(dtype, buf, t.contentStart, t.contentEnd);
    if (dtype === "complex64" || dtype === "complex128") expected *= 2;
    if (values.length !== expected) {
      throw new EventDecodeError(`tensor_content holds ${values.length} elements, shape [${t.shape}] needs ${expected}`);
    }
  } else {
    values = Float64Array.from(t.typed ?? []);
    // TensorFlow's typed fields may hold one value meaning "fill the shape": a few bytes can declare
    // gigabytes, so the declared size must fit before the fill is allocated.
    if (values.length === 1 && expected > 1) {
      if (expected > maxElements) throw new TensorTooLargeError(expected, t.shape);
      values = new Float64Array(expected).fill(values[0]);
    }
  }
  const shape = t.shape.length === 1 && t.shape[0] === 1 ? SHAPE_1 : t.shape;
  return { dtype, shape, values, strings: null };
}

/** Moves the reader into the first field with `key` before `end`; returns that field's end, or -1. */
function enterField(r: ProtoReader, end: number, key: number): number {
  while (r.pos < end) {
    const k = r.key();
    if (k === key) {
      const fieldEnd = r.lengthDelimited();
      r.pos = r.fieldStart;
      return fieldEnd;
    }
    r.skip(k & 7);
  }
  return -1;
}

const KEY_WALL_TIME = (1 << 3) | WIRE_I64;
const KEY_STEP = (2 << 3) | WIRE_VARINT;
const KEY_LEN_1 = (1 << 3) | WIRE_LEN;
const KEY_LEN_2 = (2 << 3) | WIRE_LEN;
const KEY_SUMMARY = (5 << 3) | WIRE_LEN;
const KEY_TENSOR = (8 << 3) | WIRE_LEN;
const KEY_METADATA = (9 << 3) | WIRE_LEN;

/** Decodes one Event payload (`buf[start:end]`) into its first tensor, or null when it holds no summary. */
export function decodeEvent(buf: Uint8Array, start: number, end: number): TensorRecord | null {
  const r = new ProtoReader(buf, start, end);
  let wallTime = 0;
  let step = 0;
  let summaryStart = -1;
  let summaryEnd = -1;
  while (r.pos < end) {
    const k = r.key();
    if (k === KEY_WALL_TIME) wallTime = r.double();
    else if (k === KEY_STEP) step = r.int64();
    else if (k === KEY_SUMMARY) { summaryEnd = r.lengthDelimited(); summaryStart = r.fieldStart; }
    else r.skip(k & 7);
  }
  if (summaryStart < 0) return null;
  r.pos = summaryStart;
  while (r.pos < summaryEnd) {
    const k = r.key();
    if (k !== KEY_LEN_1) { r.skip(k & 7); continue; }
    const ve = r.lengthDelimited();
    r.pos = r.fieldStart;
    let name = "";
    let tensor: RawTensor | null = null;
    let mode: Mode = "GLOBAL";
    let modeStep: number | null = null;
    let other = false;
    while (r.pos < ve) {
      const vk = r.key();
      if (vk === KEY_LEN_1) name = r.string();
      else if (vk === KEY_TENSOR) {
        const te = r.lengthDelimited();
        r.pos = r.fieldStart;
        tensor = readTensor(r, te);
        r.pos = te;
      } else if (vk === KEY_METADATA) {
        const me = r.lengthDelimited();
        r.pos = r.fieldStart;
        while (r.pos < me) {
          const mk = r.key();
          if (mk !== KEY_LEN_1) { r.skip(mk & 7); continue; }
          const pe = r.lengthDelimited();
          r.pos = r.fieldStart;
          let pname = "";
          let content = "";
          while (r.pos < pe) {
            const pk = r.key();
            if (pk === KEY_LEN_1) pname = r.string();
            else if (pk === KEY_LEN_2) content = r.string();
            else r.skip(pk & 7);
          }
          if (pname === "mode_step") modeStep = Number(content);
          else if (pname === "mode") mode = MODE_BY_NUMBER[content.trim()] ?? "GLOBAL";
          r.pos = pe;
        }
        r.pos = me;
      } else {
        const f = vk >>> 3;
        if (f >= 2 && f <= 6) other = true; // simple_value, histo, image, audio: TensorBoard-only
        r.skip(vk & 7);
      }
    }
    if (!tensor) {
      if (other) throw new EventDecodeError(`summary value '${name}' is not a tensor`);
      continue;
    }
    const data = toData(tensor, buf, Infinity);
    return { name, step, wallTime, mode, modeStep: modeStep ?? step, dtype: data.dtype, shape: data.shape, values: data.values, strings: data.strings };
  }
  return null;
}

/** Whether bytes [start, end) spell `name` (UTF-8); ASCII compares without decoding. */
function nameEquals(buf: Uint8Array, start: number, end: number, name: string): boolean {
  if (end - start === name.length) {
    let ascii = true;
    for (let i = 0; i < name.length; i++) {
      const c = name.charCodeAt(i);
      if (c >= 0x80) { ascii = false; break; }
      if (buf[start + i] !== c) return false;
    }
    if (ascii) return true;
  }
  return utf8(buf, start, end) === name;
}

/**
 * The tensor of an Event, without what the index already knows (step, mode, wall time): the hot
 * path of value reads. Checks that the record holds `expectedName`; null when it holds no tensor.
 */
export function decodeEventTensor(buf: Uint8Array, start: number, end: number, expectedName: string, maxElements = Infinity): TensorData | null {
  const r = sharedReader.reset(buf, start, end);
  const summaryEnd = enterField(r, end, KEY_SUMMARY);
  if (summaryEnd < 0) return null;
  while (r.pos < summaryEnd) {
    const k = r.key();
    if (k !== KEY_LEN_1) { r.skip(k & 7); continue; }
    const ve = r.lengthDelimited();
    r.pos = r.fieldStart;
    let tensor: RawTensor | null = null;
    let other = false;
    while (r.pos < ve) {
      const vk = r.key();
      if (vk === KEY_LEN_1) {
        const ne = r.lengthDelimited();
        if (!nameEquals(buf, r.fieldStart, ne, expectedName)) {
          throw new EventDecodeError(`record holds tensor ${utf8(buf, r.fieldStart, ne)}, the index says ${expectedName}`);
        }
      } else if (vk === KEY_TENSOR) {
        const te = r.lengthDelimited();
        r.pos = r.fieldStart;
        tensor = readTensor(r, te);
        r.pos = te;
      } else {
        const f = vk >>> 3;
        if (f >= 2 && f <= 6) other = true;
        r.skip(vk & 7);
      }
    }
    if (tensor) return toData(tensor, buf, maxElements);
    if (other) throw new EventDecodeError(`summary value '${expectedName}' is not a tensor`);
  }
  return null;
}

/** Reads element `i` of raw little-endian content as a number. */
function elementAt(dtype: DType, buf: Uint8Array, at: number): number {
  switch (dtype) {
    case "float64": return readF64(buf, at);
    case "float32": return readF32(buf, at);
    case "float16": return halfToFloat(buf[at] | (buf[at + 1] << 8));
    case "bfloat16": return bfloat16ToFloat(buf[at] | (buf[at + 1] << 8));
    case "int8": return (buf[at] << 24) >> 24;
    case "uint8": return buf[at];
    case "bool": return buf[at] ? 1 : 0;
    case "int16": return ((buf[at] | (buf[at + 1] << 8)) << 16) >> 16;
    case "uint16": return buf[at] | (buf[at + 1] << 8);
    case "int32": return buf[at] | (buf[at + 1] << 8) | (buf[at + 2] << 16) | (buf[at + 3] << 24);
    case "uint32": return (buf[at] | (buf[at + 1] << 8) | (buf[at + 2] << 16) | (buf[at + 3] << 24)) >>> 0;
    default: return decodeContent(dtype, buf, at, at + ITEM_SIZE[dtype])[0];
  }
}

/**
 * The single numeric element of an Event's tensor, decoded without building a TensorData: the
 * hot path of series reads. Undefined when the tensor is not one numeric element.
 */
/** Decoding is synchronous, so the hot paths share one reader. */
const sharedReader = new ProtoReader(new Uint8Array(0));

/**
 * The dtype and rank of the last value decodeScalarEvent returned (its shape is `rank` ones): the
 * packed value reads keep them per value without a TensorData object.
 */
export const lastScalar: { dtype: DType; rank: number } = { dtype: "float64", rank: 0 };

export function decodeScalarEvent(buf: Uint8Array, start: number, end: number, expectedName?: string): number | undefined {
  // Walks Event > summary > value > tensor with plain offsets: this runs once per value of a series.
  const r = sharedReader.reset(buf, start, end);
  const summaryEnd = enterField(r, end, KEY_SUMMARY);
  const valueEnd = summaryEnd < 0 ? -1 : enterField(r, summaryEnd, KEY_LEN_1);
  let tensorEnd = -1;
  if (valueEnd >= 0 && expectedName !== undefined) {
    // The tag must be the tensor the index names (else: undefined, and the full decode says why).
    let named = false;
    while (r.pos < valueEnd) {
      const k = r.key();
      if (k === KEY_LEN_1) {
        const ne = r.lengthDelimited();
        if (!nameEquals(buf, r.fieldStart, ne, expectedName)) return undefined;
        named = true;
        r.pos = ne;
      } else if (k === KEY_TENSOR) {
        tensorEnd = r.lengthDelimited();
        r.pos = r.fieldStart;
        break;
      } else r.skip(k & 7);
    }
    if (!named) return undefined;
  } else if (valueEnd >= 0) tensorEnd = enterField(r, valueEnd, KEY_TENSOR);
  if (tensorEnd < 0) return undefined;
  let dtypeEnum = 0;
  let size = 1;
  let contentStart = -1;
  let contentEnd = -1;
  let typed = false;
  let rank = 0;
  while (r.pos < tensorEnd) {
    const k = r.key();
    const field = k >>> 3;
    if (field === 1) dtypeEnum = r.varint();
    else if (field === 2 && (k & 7) === WIRE_LEN) {
      const se = r.lengthDelimited();
      r.pos = r.fieldStart;
      while (r.pos < se) {
        const sk = r.key();
        if (sk !== ((2 << 3) | WIRE_LEN)) { r.skip(sk & 7); continue; }
        const de = r.lengthDelimited();
        r.pos = r.fieldStart;
        let dim = 0;
        while (r.pos < de) {
          const dk = r.key();
          if (dk === ((1 << 3) | WIRE_VARINT)) dim = r.int64();
          else r.skip(dk & 7);
        }
        size *= dim;
        rank++;
      }
      r.pos = se;
    } else if (field === 4 && (k & 7) === WIRE_LEN) {
      contentEnd = r.lengthDelimited();
      contentStart = r.fieldStart;
    } else {
      if (field >= 5 && field <= 13) typed = true;
      r.skip(k & 7);
    }
  }
  const dtype = dtypeFromEnum(dtypeEnum);
  if (size !== 1 || !dtype || dtype === "string" || dtype === "complex64" || dtype === "complex128") return undefined;
  if (contentStart >= 0 && contentEnd - contentStart === ITEM_SIZE[dtype]) {
    lastScalar.dtype = dtype;
    lastScalar.rank = rank;
    return elementAt(dtype, buf, contentStart);
  }
  if (typed) {
    // TensorFlow's typed *_val fields: rare outside TF; the general decoder handles them.
    r.pos = start;
    const rec = decodeEvent(buf, start, end);
    if (!rec?.values || rec.values.length !== 1 || rec.shape.some((d) => d !== 1)) return undefined;
    lastScalar.dtype = rec.dtype;
    lastScalar.rank = rec.shape.length;
    return rec.values[0];
  }
  return undefined;
}

function encodeContent(t: TensorInput): Uint8Array {
  const vals = t.values ?? [];
  const n = vals.length;
  const size = ITEM_SIZE[t.dtype];
  const out = Buffer.alloc(n * size);
  for (let i = 0; i < n; i++) {
    const x = vals[i];
    switch (t.dtype) {
      case "float64": out.writeDoubleLE(x, i * 8); break;
      case "float32": out.writeFloatLE(x, i * 4); break;
      case "int8": out.writeInt8(x, i); break;
      case "uint8": out.writeUInt8(x, i); break;
      case "bool": out.writeUInt8(x ? 1 : 0, i); break;
      case "int16": out.writeInt16LE(x, i * 2); break;
      case "uint16": out.writeUInt16LE(x, i * 2); break;
      case "int32": out.writeInt32LE(x, i * 4); break;
      case "uint32": out.writeUInt32LE(x, i * 4); break;
      case "int64": out.writeBigInt64LE(BigInt(Math.trunc(x)), i * 8); break;
      case "uint64": out.writeBigUInt64LE(BigInt(Math.trunc(x)), i * 8); break;
      default: throw new EventDecodeError(`cannot encode dtype ${t.dtype}`);
    }
  }
  return out;
}

function varintSize(v: number): number {
  let n = 1;
  while (v >= 128) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

function putVarint(buf: Buffer, pos: number, v: number): number {
  while (v >= 128) {
    buf[pos++] = (v % 128) | 0x80;
    v = Math.floor(v / 128);
  }
  buf[pos++] = v;
  return pos;
}

/** Length-delimited field: key byte, length, then the body written by `body`. */
function putField(buf: Buffer, pos: number, key: number, len: number): number {
  buf[pos++] = key;
  return putVarint(buf, pos, len);
}

const fieldSize = (len: number) => 1 + varintSize(len) + len;

/**
 * The same bytes as the general encoder for numeric tensors, written straight into one buffer:
 * the debugger hook encodes every saved tensor of every saved round, so this is its hot path.
 */
function encodeNumericEvent(t: TensorInput, step: number, mode: Mode, modeStep: number, wallTime: number): Uint8Array {
  const content = encodeContent(t);
  const nameLen = Buffer.byteLength(t.name);
  const dimNames = t.shape.map((d) => `${t.name}_${d}`);
  const dimBodies = t.shape.map((d, i) => 1 + varintSize(d) + fieldSize(Buffer.byteLength(dimNames[i])));
  const shapeBody = dimBodies.reduce((a, b) => a + fieldSize(b), 0);
  const dtypeEnum = ENUM_BY_DTYPE[t.dtype];
  const tensorBody = 1 + varintSize(dtypeEnum) + fieldSize(shapeBody) + fieldSize(content.length);
  const modeStepText = String(modeStep);
  const modeText = String(MODE_NUMBER[mode]);
  const plugin1 = fieldSize(9) + fieldSize(modeStepText.length); // "mode_step"
  const plugin2 = fieldSize(4) + fieldSize(modeText.length); // "mode"
  const metaBody = fieldSize(plugin1) + fieldSize(plugin2);
  const valueBody = fieldSize(nameLen) + fieldSize(tensorBody) + fieldSize(metaBody);
  const summaryBody = fieldSize(valueBody);
  const size = 9 + (step !== 0 ? 1 + varintSize(step) : 0) + fieldSize(summaryBody);

  const buf = Buffer.allocUnsafe(size);
  let pos = 0;
  buf[pos++] = KEY_WALL_TIME;
  buf.writeDoubleLE(wallTime, pos);
  pos += 8;
  if (step !== 0) {
    buf[pos++] = KEY_STEP;
    pos = putVarint(buf, pos, step);
  }
  pos = putField(buf, pos, KEY_SUMMARY, summaryBody);
  pos = putField(buf, pos, KEY_LEN_1, valueBody);
  pos = putField(buf, pos, KEY_LEN_1, nameLen);
  pos += buf.write(t.name, pos);
  pos = putField(buf, pos, KEY_TENSOR, tensorBody);
  buf[pos++] = (1 << 3) | WIRE_VARINT;
  pos = putVarint(buf, pos, dtypeEnum);
  pos = putField(buf, pos, KEY_LEN_2, shapeBody);
  t.shape.forEach((d, i) => {
    pos = putField(buf, pos, KEY_LEN_2, dimBodies[i]);
    buf[pos++] = (1 << 3) | WIRE_VARINT;
    pos = putVarint(buf, pos, d);
    pos = putField(buf, pos, KEY_LEN_2, Buffer.byteLength(dimNames[i]));
    pos += buf.write(dimNames[i], pos);
  });
  pos = putField(buf, pos, (4 << 3) | WIRE_LEN, content.length);
  buf.set(content, pos);
  pos += content.length;
  pos = putField(buf, pos, KEY_METADATA, metaBody);
  for (const [name, text, body] of [["mode_step", modeStepText, plugin1], ["mode", modeText, plugin2]] as const) {
    pos = putField(buf, pos, KEY_LEN_1, body);
    pos = putField(buf, pos, KEY_LEN_1, name.length);
    pos += buf.write(name, pos, "latin1");
    pos = putField(buf, pos, KEY_LEN_2, text.length);
    pos += buf.write(text, pos, "latin1");
  }
  if (pos !== size) throw new EventDecodeError(`internal: encoded ${pos} of ${size} bytes`);
  return buf;
}

/**
 * Encodes a tensor as smdebug's writer does: numeric data as raw tensor_content with named dims
 * ("<tag>_<size>"), strings with dtype left at 0 and string_val; plugin data (mode_step, mode).
 */
export function encodeEvent(t: TensorInput, step: number, mode: Mode, modeStep: number, wallTime: number): Uint8Array {
  if (t.dtype !== "string" && step >= 0 && modeStep >= 0) return encodeNumericEvent(t, step, mode, modeStep, wallTime);
  const shape = new ProtoWriter();
  for (const size of t.shape) shape.message(2, new ProtoWriter().varint(1, size).string(2, `${t.name}_${size}`));
  const tensor = new ProtoWriter();
  if (t.dtype === "string") {
    tensor.message(2, shape);
    for (const s of t.strings ?? []) tensor.string(8, s);
  } else {
    tensor.varint(1, ENUM_BY_DTYPE[t.dtype]).message(2, shape).bytes(4, encodeContent(t));
  }
  const metadata = new ProtoWriter()
    .message(1, new ProtoWriter().string(1, "mode_step").string(2, String(modeStep)))
    .message(1, new ProtoWriter().string(1, "mode").string(2, String(MODE_NUMBER[mode])));
  const value = new ProtoWriter().string(1, t.name).message(8, tensor).message(9, metadata);
  const event = new ProtoWriter().double(1, wallTime);
  if (step !== 0) event.varint(2, step);
  event.message(5, new ProtoWriter().message(1, value));
  return event.finish();
}

