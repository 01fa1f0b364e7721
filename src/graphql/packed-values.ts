/**
 * Tensor.values answered as a packed list: one object per list, not one per value.
 *
 * A whole-trial `values { step data }` read is 281,275 values on the perf trial. Completed item by
 * item, graphql-jit makes a TensorValue, a result object, path arrays and closures for each one
 * (~250 MB allocated per read) and JSON.stringify then walks them again. When the selection on the
 * list is only leaf fields of TensorValue (with aliases, fragments on TensorValue, @include and
 * @skip), the resolver returns a TensorValues that knows which keys to write; completion returns it
 * as it is (jit.ts) and the response serializer takes its JSON text, written straight from the
 * column (json.ts). Anything else (object fields such as stats, histogram or nonFinite, other
 * directives, graphql-js execution) completes it item by item, as an iterable of TensorValue.
 *
 * Each field's text comes from the TensorValue getter itself (one TensorValue moved along the
 * column), so both ways answer the same: only a packed scalar's data and scalar are written
 * without one, as the getters compute them.
 */
import {
  getDirectiveValues, GraphQLIncludeDirective, GraphQLSkipDirective, Kind, type GraphQLResolveInfo, type SelectionSetNode,
} from "graphql";
import type { Mode as ModeName } from "../format/tensor.js";
import type { Trial as DomainTrial, ValueColumn } from "../trials/trial.js";
import { globalStepsOf, TensorValue } from "./types/trial.types.js";
import { OWN_JSON, type WritesOwnJson } from "./json.js";

/**
 * JSON text written as bytes into one growing buffer: no string per piece. Built with `+=`, the
 * text of a whole-trial read (12 MB) allocated ~75 MB of strings (cons and flat) on its first pass,
 * and then copied again into a Buffer.
 */
class ByteWriter {
  private buf = Buffer.allocUnsafe(SCRATCH_BYTES);
  private pos = 0;

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(2 * this.buf.length, this.pos + n));
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }

  /** Text known to be ASCII: keys, punctuation, numbers as JavaScript writes them. */
  ascii(s: string): void {
    this.room(s.length);
    const b = this.buf;
    let p = this.pos;
    for (let i = 0; i < s.length; i++) b[p++] = s.charCodeAt(i);
    this.pos = p;
  }

  /** Any JSON text, as UTF-8. */
  text(s: string): void {
    this.room(3 * s.length);
    this.pos += this.buf.write(s, this.pos, "utf8");
  }

  /** A finite number as JSON.stringify writes it (-0 as 0). */
  number(x: number): void {
    if (x >= 0 && x < 1e9 && (x | 0) === x) {
      // Small non-negative integers (steps, sizes) digit by digit, without a string.
      this.room(10);
      let digits = 1;
      for (let y = x; y >= 10; y = (y / 10) | 0) digits++;
      let p = this.pos + digits;
      this.pos = p;
      let y = x;
      do {
        this.buf[--p] = 48 + (y % 10);
        y = (y / 10) | 0;
      } while (y > 0);
    } else this.ascii(`${x}`);
  }

  /** Starts a text (whatever a failed one left is dropped). */
  begin(): void {
    this.pos = 0;
  }

  /** The bytes written (a copy), and the writer emptied for the next text. */
  take(): Buffer {
    const out = Buffer.allocUnsafe(this.pos);
    this.buf.copy(out, 0, 0, this.pos);
    this.pos = 0;
    if (this.buf.length > 16 * SCRATCH_BYTES) this.buf = Buffer.allocUnsafe(SCRATCH_BYTES);
    return out;
  }
}

const SCRATCH_BYTES = 64 * 1024;
/** The answer's text is written synchronously, one list at a time: one writer serves them all. */
const writer = new ByteWriter();

/** Writes the JSON text of one field of the value `v` (at position `i` of `column`). */
type FieldWriter = (out: ByteWriter, v: TensorValue, column: ValueColumn, i: number) => void;

/** A value as JSON.stringify writes it, through the writer. */
const json = (out: ByteWriter, x: unknown): void => out.text(JSON.stringify(x));

/** Leaf fields of TensorValue, as completion serializes them (Int, Float, String, the Mode enum and lists of them). */
const WRITERS: Record<string, FieldWriter> = {
  step: (out, v) => out.number(v.step),
  mode: (out, v) => json(out, v.mode),
  modeStep: (out, v) => out.number(v.modeStep),
  worker: (out, v) => json(out, v.worker),
  dtype: (out, v) => json(out, v.dtype),
  shape: (out, v) => json(out, v.shape),
  // A packed scalar as the getters compute it, without their one-element array.
  data: (out, v, column, i) => {
    if (!column.isScalar(i)) return json(out, v.data);
    const x = column.scalars[i];
    if (!Number.isFinite(x)) return out.ascii("[null]");
    out.ascii("[");
    out.number(x);
    out.ascii("]");
  },
  scalar: (out, v, column, i) => {
    if (!column.isScalar(i)) return json(out, v.scalar);
    const x = column.scalars[i];
    if (Number.isFinite(x)) out.number(x);
    else out.ascii("null");
  },
  size: (out, v) => out.number(v.size),
  strings: (out, v) => json(out, v.strings),
  __typename: (out) => out.ascii('"TensorValue"'),
};

/** The keys of the answer's objects, in order, with the field each one is. */
interface Selection {
  fields: { key: string; write: FieldWriter }[];
  /** The keys and fields, as text: the same signature writes the same text from the same column. */
  signature: string;
  /** Whether `worker` is selected (each step's first worker, when no worker is requested, can change as a trial grows). */
  hasWorker: boolean;
}

/** What the `values` field selects, when it is only leaf fields TensorValue packs; else null (item-by-item completion). */
export function packedSelection(info: GraphQLResolveInfo): Selection | null {
  // A field selected in several places is merged by execution; graphql-jit passes every place,
  // also those its @include/@skip (or an enclosing fragment's) leave out: completed item by item.
  if (info.fieldNodes.length !== 1) return null;
  const node = info.fieldNodes[0];
  const fields = new Map<string, string>();
  if (!node.selectionSet || !collect(info, node.selectionSet, fields, new Set())) return null;
  return {
    fields: [...fields].map(([key, name]) => ({ key, write: WRITERS[name] })),
    signature: [...fields].map(([key, name]) => `${key}:${name}`).join(","),
    hasWorker: [...fields.values()].includes("worker"),
  };
}

/** Adds the response keys of `set` in the order execution collects them; false for anything not packable. */
function collect(info: GraphQLResolveInfo, set: SelectionSetNode, fields: Map<string, string>, spread: Set<string>): boolean {
  for (const s of set.selections) {
    const included = isIncluded(info, s);
    if (included === null) return false;
    if (!included) continue;
    if (s.kind === Kind.FIELD) {
      const name = s.name.value;
      if (s.selectionSet || s.arguments?.length || !Object.hasOwn(WRITERS, name)) return false;
      const key = s.alias?.value ?? name;
      if (!fields.has(key)) fields.set(key, name);
    } else if (s.kind === Kind.INLINE_FRAGMENT) {
      if (s.typeCondition && s.typeCondition.name.value !== "TensorValue") return false;
      if (!collect(info, s.selectionSet, fields, spread)) return false;
    } else {
      const name = s.name.value;
      if (spread.has(name)) continue;
      spread.add(name);
      const fragment = info.fragments[name];
      if (!fragment || fragment.typeCondition.name.value !== "TensorValue") return false;
      if (!collect(info, fragment.selectionSet, fields, spread)) return false;
    }
  }
  return true;
}

/** @skip and @include as execution reads them; null when the node has any other directive. */
function isIncluded(info: GraphQLResolveInfo, node: Parameters<typeof getDirectiveValues>[1]): boolean | null {
  if (!node.directives?.length) return true;
  for (const d of node.directives) if (d.name.value !== "skip" && d.name.value !== "include") return null;
  const variables = info.variableValues as Record<string, unknown>;
  if (getDirectiveValues(GraphQLSkipDirective, node, variables)?.if === true) return false;
  return getDirectiveValues(GraphQLIncludeDirective, node, variables)?.if !== false;
}

const isInt32 = (n: number) => (n | 0) === n;

/**
 * The values of one tensor at its steps. Iterated, it makes each TensorValue as completion asks for
 * it (a whole-trial read never holds one per value); with a packed selection it writes its own JSON.
 */
export class TensorValues implements Iterable<TensorValue>, WritesOwnJson {
  /** Global steps of the values (the same array as the steps for GLOBAL). */
  private readonly globalSteps: number[];
  /** Set when completion can take the list as it is (see isPackedValues). */
  readonly selection: Selection | null;

  constructor(
    private readonly trial: DomainTrial,
    private readonly name: string,
    steps: number[],
    mode: ModeName | null,
    private readonly worker: string | null,
    private readonly column: ValueColumn,
    selection: Selection | null,
  ) {
    this.globalSteps = globalStepsOf(trial, mode, steps);
    // An Int out of range is a field error item by item: such a list is completed that way.
    this.selection = selection && this.globalSteps.every(isInt32) ? selection : null;
  }

  *[Symbol.iterator](): Iterator<TensorValue> {
    const { trial, name, globalSteps, worker, column } = this;
    for (let i = 0; i < globalSteps.length; i++) yield new TensorValue(trial, name, globalSteps[i], worker, column, i);
  }

  /**
   * Columns of scalars are the value cache's, the same object from one request to the next, and
   * their text is a function of the selection alone, except for each step's first worker.
   */
  get jsonIdentity(): { owner: object; ownerBytes: number; variant: string } | null {
    const { selection, column } = this;
    if (!selection || !column.allScalar || (selection.hasWorker && this.worker === null)) return null;
    return { owner: column, ownerBytes: column.length * 10, variant: selection.signature };
  }

  /** The UTF-8 of the answer's JSON text: what completing each value and JSON.stringify would write. */
  [OWN_JSON](): Buffer {
    const { globalSteps, column } = this;
    const fields = this.selection?.fields ?? [];
    const prefixes = fields.map((f, k) => `${k === 0 ? "{" : ","}"${f.key}":`);
    const v = new TensorValue(this.trial, this.name, 0, this.worker, column, 0);
    const out = writer;
    out.begin();
    out.ascii("[");
    for (let i = 0; i < globalSteps.length; i++) {
      if (i > 0) out.ascii(",");
      v.moveTo(i, globalSteps[i]);
      if (fields.length === 0) out.ascii("{");
      for (let k = 0; k < fields.length; k++) {
        out.ascii(prefixes[k]);
        fields[k].write(out, v, column, i);
      }
      out.ascii("}");
    }
    out.ascii("]");
    return out.take();
  }

  /** For any other consumer of a result that holds it (JSON.stringify): the completed list. */
  toJSON(): unknown {
    return JSON.parse(this[OWN_JSON]().toString("utf8"));
  }
}

/** Whether completion takes `value` as it is: a TensorValues with a packed selection. */
export function isPackedValues(value: unknown): value is TensorValues {
  return value instanceof TensorValues && value.selection !== null;
}
