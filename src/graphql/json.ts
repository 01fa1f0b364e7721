/**
 * Response serialization with the JSON text of long number lists kept between requests.
 *
 * Turning doubles into their shortest decimal text is most of what JSON.stringify costs on a bulk
 * answer (281,275 values of a trial as series: ~75 ms of ~90 ms), and a dashboard asks for the same
 * series again and again. Number lists of at least MIN_LENGTH elements are looked up by identity
 * (checked lists, see checked-lists.ts) or by content (a hash, then an exact comparison),
 * serialized once, kept as bytes, and spliced into the response: the output is byte for byte what
 * JSON.stringify writes.
 */
import { randomBytes } from "node:crypto";
import { SizeBoundedLru } from "../storage/lru.js";
import { isCheckedList } from "./checked-lists.js";

/**
 * A value in a result that writes its own JSON (packed-values.ts): `[OWN_JSON]()` is the UTF-8 of
 * what JSON.stringify writes for it (through its toJSON), spliced in like a number list's bytes.
 */
export const OWN_JSON = Symbol("ownJson");
export interface WritesOwnJson {
  [OWN_JSON](): Buffer;
  /**
   * What its text is a function of, to keep the bytes between requests: the same `owner` (an
   * immutable object that lives across requests) with the same `variant` writes the same text, and
   * `ownerBytes` is what keeping `owner` alive costs. null: not to be kept.
   */
  readonly jsonIdentity: { owner: object; ownerBytes: number; variant: string } | null;
  toJSON(): unknown;
}

const writesOwnJson = (value: object): value is WritesOwnJson => OWN_JSON in value;

const MIN_LENGTH = 64;
const NEWLINE = Buffer.from("\n");
/**
 * Text kept for number lists, and as much again for values that write their own JSON (bytes of
 * JSON): the perf trial's bulk answers need ~7 MB as series, ~15 MB as values (their columns counted).
 */
const DEFAULT_CACHE_BYTES = 16 * 1024 * 1024;

interface Entry {
  /** The list's elements, null as NaN (JSON writes both as null). */
  values: Float64Array;
  /** Its JSON text, as bytes (digits, signs, points, commas and "null": ASCII). */
  bytes: Buffer;
}

const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);

/** A hash of a list of numbers (or null) over their bits; null hashes like NaN. */
function hashNumbers(list: readonly (number | null)[]): number {
  let h = list.length | 0;
  for (let i = 0; i < list.length; i++) {
    const v = list[i];
    f64[0] = v === null ? NaN : v;
    h = Math.imul(h ^ u32[0], 0x9e3779b1);
    h = Math.imul(h ^ u32[1], 0x85ebca6b);
  }
  return h >>> 0;
}

function sameNumbers(list: readonly (number | null)[], values: Float64Array): boolean {
  if (list.length !== values.length) return false;
  for (let i = 0; i < list.length; i++) {
    const v = list[i];
    const w = values[i];
    if (v === null || v !== v) {
      if (w === w) return false;
    } else if (v !== w) return false;
  }
  return true;
}

/**
 * The list as doubles, null as NaN. A plain loop: Float64Array.from with a mapping function goes
 * through the iterator protocol and a call per element (15 ms of a fresh service's first answer
 * of a whole trial as series, 281,275 values; this loop: about 1 ms).
 */
function asFloat64(list: readonly (number | null)[]): Float64Array {
  const values = new Float64Array(list.length);
  for (let i = 0; i < list.length; i++) {
    const v = list[i];
    values[i] = v === null ? NaN : v;
  }
  return values;
}

/** Whether `list` is long enough to keep as text, and a list of numbers or nulls (what a [Float] or [Int] list holds). */
function isLongNumberList(list: readonly unknown[]): list is (number | null)[] {
  return list.length >= MIN_LENGTH && (isCheckedList(list) || isNumberList(list));
}

/** Whether every element is a number or null. */
function isNumberList(list: readonly unknown[]): list is (number | null)[] {
  for (let i = 0; i < list.length; i++) {
    const v = list[i];
    if (typeof v !== "number" && v !== null) return false;
  }
  return true;
}

export class JsonStringifier {
  private readonly cache: SizeBoundedLru<number, Entry[]>;
  /**
   * Checked lists (immutable, the same array each request) to their entry in `cache`: found without
   * hashing or comparing. The cache still bounds the bytes kept: an entry it evicted is looked up
   * by content again.
   */
  private readonly byIdentity = new WeakMap<readonly unknown[], { hash: number; entry: Entry }>();
  /** Bytes of values that write their own JSON, by their owner (one variant each, the latest). */
  private readonly ownJson: SizeBoundedLru<object, { variant: string; bytes: Buffer; ownerBytes: number }>;
  /** Marks a spliced list in the skeleton; random, so no string in an answer can look like it. */
  private readonly token = `\u0000tgjson${randomBytes(12).toString("hex")}:`;
  hits = 0;
  misses = 0;

  constructor(maxBytes = DEFAULT_CACHE_BYTES) {
    this.cache = new SizeBoundedLru<number, Entry[]>(maxBytes, (entries) => entries.reduce((n, e) => n + e.bytes.length + e.values.length * 8 + 64, 0));
    this.ownJson = new SizeBoundedLru(maxBytes, (e) => e.bytes.length + e.ownerBytes + 64);
  }

  /** JSON.stringify(value) + "\n", as Apollo writes a response. */
  stringify(value: unknown): string {
    return Buffer.concat(this.toChunks(value)).toString("utf8");
  }

  /**
   * The UTF-8 bytes of JSON.stringify(value) + "\n", in order, as chunks to write one after the
   * other: each long number list is its cached bytes, and only the rest (names, structure) is
   * encoded. Nothing is copied into one buffer: a fresh buffer the size of a bulk answer (7 MB)
   * costs more in page faults than the copy itself (~12 ms a request on this project's machine).
   */
  toChunks(value: unknown): Buffer[] {
    const lists: Buffer[] = [];
    const restore: (() => void)[] = [];
    this.collect(value, lists, restore, 0);
    if (lists.length === 0) return [Buffer.from(JSON.stringify(value) + "\n", "utf8")];
    let skeleton: string;
    try {
      skeleton = JSON.stringify(value);
    } finally {
      for (const undo of restore) undo();
    }
    // The skeleton holds "<token><n>" strings where the lists were; each becomes the list's bytes.
    const parts = skeleton.split(`"${JSON.stringify(this.token).slice(1, -1)}`);
    const chunks: Buffer[] = [Buffer.from(parts[0], "utf8")];
    for (let i = 1; i < parts.length; i++) {
      const p = parts[i];
      const end = p.indexOf('"');
      chunks.push(lists[Number(p.slice(0, end))]);
      const rest = p.slice(end + 1);
      if (rest.length > 0) chunks.push(Buffer.from(rest, "utf8"));
    }
    chunks.push(NEWLINE);
    return chunks;
  }

  /** Replaces long number lists and values that write their own JSON in place by tokens (undone by `restore`), their bytes in `texts`. */
  private collect(node: unknown, texts: Buffer[], restore: (() => void)[], depth: number): void {
    if (depth > 64 || node === null || typeof node !== "object") return;
    if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++) {
        const child = node[i];
        if (child !== null && typeof child === "object") {
          if (writesOwnJson(child)) {
            node[i] = this.splice(this.ownBytesOf(child), texts, restore, () => (node[i] = child));
          } else if (Array.isArray(child) && isLongNumberList(child)) {
            node[i] = this.mark(child, texts, restore, () => (node[i] = child));
          } else this.collect(child, texts, restore, depth + 1);
        }
      }
      return;
    }
    const obj = node as Record<string, unknown>;
    for (const key in obj) {
      const child = obj[key];
      if (child !== null && typeof child === "object") {
        if (writesOwnJson(child)) {
          obj[key] = this.splice(this.ownBytesOf(child), texts, restore, () => (obj[key] = child));
        } else if (Array.isArray(child) && isLongNumberList(child)) {
          obj[key] = this.mark(child, texts, restore, () => (obj[key] = child));
        } else this.collect(child, texts, restore, depth + 1);
      }
    }
  }

  private mark(list: (number | null)[], texts: Buffer[], restore: (() => void)[], undo: () => void): string {
    return this.splice(this.bytesOf(list), texts, restore, undo);
  }

  /** The token that stands for `bytes` in the skeleton. */
  private splice(bytes: Buffer, texts: Buffer[], restore: (() => void)[], undo: () => void): string {
    texts.push(bytes);
    restore.push(undo);
    return `${this.token}${texts.length - 1}`;
  }

  private ownBytesOf(value: WritesOwnJson): Buffer {
    const identity = value.jsonIdentity;
    if (!identity) return value[OWN_JSON]();
    const known = this.ownJson.get(identity.owner);
    if (known?.variant === identity.variant) {
      this.hits++;
      return known.bytes;
    }
    this.misses++;
    const bytes = value[OWN_JSON]();
    this.ownJson.set(identity.owner, { variant: identity.variant, bytes, ownerBytes: identity.ownerBytes });
    return bytes;
  }

  private bytesOf(list: (number | null)[]): Buffer {
    const checked = isCheckedList(list);
    if (checked) {
      const known = this.byIdentity.get(list);
      if (known && this.cache.get(known.hash)?.includes(known.entry)) {
        this.hits++;
        return known.entry.bytes;
      }
    }
    const h = hashNumbers(list);
    const entries = this.cache.get(h);
    let entry = entries?.find((e) => sameNumbers(list, e.values));
    if (entry) this.hits++;
    else {
      this.misses++;
      entry = { values: asFloat64(list), bytes: Buffer.from(JSON.stringify(list), "latin1") };
      this.cache.set(h, [...(entries ?? []).slice(-3), entry]);
    }
    if (checked) this.byIdentity.set(list, { hash: h, entry });
    return entry.bytes;
  }
}
