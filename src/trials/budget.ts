/**
 * Memory budgets for reads: what one request may hold, and what all requests in flight may hold
 * together. Charges are estimates of what the answer will really hold in memory: each value
 * returned costs its objects (the decoded tensor, the GraphQL value object, its result object and
 * paths), each element its number in every list it passes through (decoded, completed, serialized).
 * Readers charge before they allocate (the number of values is known before reading) and while they
 * decode (elements become known per value), and stop as soon as the budget is spent.
 */
import { TrialgraphError } from "../errors.js";

/**
 * Heap bytes one returned value costs beyond its elements, measured on the perf trial: ~1 KB per
 * scalar value of `values { step data }` at peak, of which ~100 bytes are its one element.
 */
export const VALUE_BYTES = 900;
/**
 * Heap bytes one value of Tensor.values costs beyond its elements on the packed path (a scalar in a
 * column, its TensorValue, its completed result and JSON): ~350 bytes at peak on the perf trial
 * (service VmHWM +94 MB for the first whole-trial values read of 281,275 values), with headroom.
 */
export const COLUMN_VALUE_BYTES = 400;
/** Heap bytes one returned element costs across decoding, GraphQL completion and serialization. */
export const ELEMENT_BYTES = 100;

/** Why a request over TRIALGRAPH_MAX_REQUEST_MB is refused, whether before it runs or while it reads. */
export function requestMemoryMessage(maxBytes: number): string {
  return `this request would hold more than ${Math.round(maxBytes / 2 ** 20)} MB of values (TRIALGRAPH_MAX_REQUEST_MB); ask for fewer tensors or steps, or use series(maxPoints)`;
}

/** Bytes shared by every request in flight (TRIALGRAPH_MAX_INFLIGHT_MB). */
export class MemoryPool {
  used = 0;
  constructor(readonly capacity: number) {}

  take(bytes: number): boolean {
    if (this.used + bytes > this.capacity) return false;
    this.used += bytes;
    return true;
  }

  give(bytes: number): void {
    this.used = Math.max(0, this.used - bytes);
  }
}

export interface BudgetLimits {
  /** Tensor elements one request may return (TRIALGRAPH_MAX_VALUES). */
  maxElements: number;
  /** Estimated bytes one request may hold (TRIALGRAPH_MAX_REQUEST_MB). */
  maxBytes: number;
}

type Exceeded = "elements" | "bytes" | "pool" | "cancelled";

/** One request's budget. `take` is cheap: it runs once per value on the read path. */
export class ReadBudget {
  private elementsLeft: number;
  private bytesLeft: number;
  private reserved = 0;
  private exceeded: Exceeded | null = null;

  constructor(private readonly limits: BudgetLimits, private readonly pool: MemoryPool | null = null) {
    this.elementsLeft = limits.maxElements;
    this.bytesLeft = limits.maxBytes;
  }

  /** A budget that never runs out (in-process readers, rules). */
  static unlimited(): ReadBudget {
    return new ReadBudget({ maxElements: Infinity, maxBytes: Infinity });
  }

  /** Whether take() will say no from now on (spent, or cancelled). */
  get exhausted(): boolean {
    return this.exceeded !== null;
  }

  /** Bytes this request may still read or hold. */
  get remainingBytes(): number {
    return this.bytesLeft;
  }

  /**
   * Charges `values` returned values, `elements` returned elements and `bytes` of other memory;
   * false (and nothing charged to the pool) when that goes over a limit.
   */
  take(values: number, elements: number, bytes = 0): boolean {
    if (this.exceeded) return false;
    const cost = values * VALUE_BYTES + elements * ELEMENT_BYTES + bytes;
    this.elementsLeft -= elements;
    this.bytesLeft -= cost;
    if (this.elementsLeft < 0) this.exceeded = "elements";
    else if (this.bytesLeft < 0) this.exceeded = "bytes";
    else if (this.pool && !this.pool.take(cost)) this.exceeded = "pool";
    else {
      this.reserved += cost;
      return true;
    }
    return false;
  }

  /** take(), or the LIMIT_EXCEEDED error. */
  charge(values: number, elements: number, bytes = 0): void {
    if (!this.take(values, elements, bytes)) throw this.error();
  }

  private refusal: { why: Exceeded | null; error: TrialgraphError } | null = null;

  /** Why take() said no, as the error the request answers with (one object per reason: one cause, one error). */
  error(): TrialgraphError {
    if (this.refusal?.why !== this.exceeded) this.refusal = { why: this.exceeded, error: this.makeError() };
    return this.refusal.error;
  }

  private makeError(): TrialgraphError {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0; // answered once per value that did not fit: no stack to capture
    try {
      switch (this.exceeded) {
        case "elements":
          return new TrialgraphError("LIMIT_EXCEEDED", `this request returns more than ${this.limits.maxElements} tensor elements; ask for fewer steps or use series(maxPoints)`, { limit: "values" });
        case "cancelled":
          return new TrialgraphError("LIMIT_EXCEEDED", "the client went away", { limit: "cancelled" });
        case "pool":
          return new TrialgraphError("LIMIT_EXCEEDED", "the service is answering other large requests and has no memory left for this one; retry shortly or ask for less", { limit: "memory", retryable: true });
        default:
          return new TrialgraphError("LIMIT_EXCEEDED", requestMemoryMessage(this.limits.maxBytes), { limit: "memory" });
      }
    } finally {
      Error.stackTraceLimit = limit;
    }
  }

  /** Nobody waits for the answer any more: every later read is refused at once (and so never made). */
  cancel(): void {
    this.exceeded = "cancelled";
  }

  /** Gives what was reserved back to the pool (the answer was sent or abandoned). */
  release(): void {
    this.pool?.give(this.reserved);
    this.reserved = 0;
  }
}
