/**
 * Request limits shared by HTTP (an Apollo plugin) and graphql-ws (onSubscribe): operation depth,
 * aliases, estimated cost, the caller's role for mutations, and a per-caller rate limit. Each
 * breach is a GraphQLError with a stable code (LIMIT_EXCEEDED, RATE_LIMITED, FORBIDDEN) and the
 * HTTP status Apollo should answer with.
 */
import {
  getDirectiveValues, getNamedType, getOperationAST, getVariableValues, GraphQLError, GraphQLIncludeDirective, GraphQLSkipDirective,
  Kind, valueFromASTUntyped,
  type DocumentNode, type FieldNode, type FragmentDefinitionNode, type GraphQLSchema, type OperationDefinitionNode,
  type SelectionNode, type SelectionSetNode,
} from "graphql";
import { getComplexity, simpleEstimator, type ComplexityEstimator } from "graphql-query-complexity";
import type { Limits } from "../config.js";
import { COLUMN_VALUE_BYTES, requestMemoryMessage } from "../trials/budget.js";
import type { TrialSize } from "../trials/trial.js";
import type { Caller } from "./context.js";

/**
 * Selections an operation may make execution visit, fragments expanded: graphql-query-complexity's own
 * default cap, which the cost walk already held every operation to.
 */
export const MAX_SELECTIONS = 10_000;

/**
 * What the static cost assumes where a query does not say how much it asks for: the server only
 * learns a trial's real size while executing (the value budget then caps what is actually returned).
 */
export const ASSUMED = {
  /** Steps of a tensor when values/series give no range. */
  steps: 1_000,
  /** Upper bound for a stated step range (fromStep..toStep), so "everything up to 10^9" stays finite. */
  maxRangeSteps: 1_000_000,
  /** Tensors returned by a tensors list field. */
  tensors: 50,
  /** Trials returned by Query.trials, collections of a trial. */
  listItems: 50,
  /** trainingJobs without first. */
  pageSize: 20,
  /**
   * Cost of one rule evaluation over a trial: the engine reads every step of its tensors, as a
   * whole-trial read does, so it is heavy at the default TRIALGRAPH_HEAVY_COST and takes turns with them.
   */
  ruleEvaluation: 10_000,
  /** Workers of a trial, for the view across workers. */
  workers: 8,
} as const;

export class LimitError extends GraphQLError {
  constructor(code: "LIMIT_EXCEEDED" | "RATE_LIMITED" | "FORBIDDEN", message: string, status: number, details: Record<string, unknown> = {}) {
    super(message, { extensions: { code, ...details, http: { status } } });
  }
}

const int = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? Math.trunc(v) : null);

/** Steps a fromStep/toStep pair asks for; the assumed trial length when it is open-ended. */
function stepsOf(assumed: Assumed, args: Record<string, unknown>): number {
  const from = int(args.fromStep);
  const to = int(args.toStep);
  if (from !== null && to !== null) return Math.min(Math.max(to - from + 1, 0), assumed.maxRangeSteps);
  return assumed.steps;
}

/** Points a series returns: its steps, or maxPoints when fewer. */
function pointsOf(assumed: Assumed, args: Record<string, unknown>): number {
  const max = int(args.maxPoints);
  return max !== null && max > 0 ? Math.min(max, stepsOf(assumed, args)) : stepsOf(assumed, args);
}

/** Bins of a histogram (default 50; the resolver rejects more than 1000). */
function binsRequested(args: Record<string, unknown>): number {
  const bins = int(args.bins);
  return bins !== null && bins > 0 ? Math.min(bins, 1_000) : 50;
}

type Assumed = { -readonly [K in keyof typeof ASSUMED]: number };

/** Lists cost their expected length times what each item selects; the rest falls back to 1 + children. */
export const sizeEstimator: ComplexityEstimator = (options) => estimateWith(ASSUMED, options);

function estimateWith(assumed: Assumed, { type, field, args, childComplexity }: Parameters<ComplexityEstimator>[0]): number | void {
  const child = Math.max(1, childComplexity);
  switch (`${type.name}.${field.name}`) {
    case "Tensor.values":
      return 1 + stepsOf(assumed, args) * child;
    case "Tensor.series":
    case "Tensor.statSeries":
    case "Tensor.reductionSeries":
      return 1 + pointsOf(assumed, args) * child;
    case "Tensor.workerSeries":
      return 1 + assumed.workers * pointsOf(assumed, args) * child;
    case "Tensor.statsSeries":
      return 1 + stepsOf(assumed, args) * child;
    case "Tensor.histogramSeries":
      return 1 + stepsOf(assumed, args) * (binsRequested(args) + child);
    case "TensorValue.histogram":
      return 1 + binsRequested(args) + child;
    case "Tensor.value":
      return 1 + child;
    case "Trial.tensors":
    case "Collection.tensors":
      return 1 + assumed.tensors * child;
    case "Query.trials":
    case "Trial.collections":
      return 1 + assumed.listItems * child;
    case "Query.trainingJobs": {
      const first = int(args.first);
      return 1 + (first !== null && first > 0 ? first : assumed.pageSize) * child;
    }
    case "RuleSummary.evaluations": {
      const first = int(args.first);
      return 1 + (first !== null && first > 0 ? first : 20) * child;
    }
    case "Query.evaluateRules":
      return 1 + (Array.isArray(args.rules) ? args.rules.length : 1) * (assumed.ruleEvaluation + child);
    default:
      return undefined;
  }
}

/**
 * Selections an operation makes execution visit, its fragments expanded where they are spread (the
 * measure graphql-query-complexity caps at its maxQueryNodes). Each fragment is counted once and
 * remembered, so a fragment bomb (every fragment spreading the one before twice) costs its text to
 * count, where walking its expansion would block the event loop for seconds.
 */
export function operationSelections(operation: OperationDefinitionNode, fragments: Map<string, FragmentDefinitionNode>): number {
  const counted = new Map<string, number>();
  const count = (set: SelectionSetNode, open: Set<string>): number => {
    let n = 0;
    for (const s of set.selections) {
      n++;
      if (s.kind === Kind.FIELD) {
        if (s.selectionSet) n += count(s.selectionSet, open);
      } else if (s.kind === Kind.INLINE_FRAGMENT) {
        n += count(s.selectionSet, open);
      } else {
        const name = s.name.value;
        const f = fragments.get(name);
        if (!f || open.has(name)) continue; // cycles are a validation error already
        let inFragment = counted.get(name);
        if (inFragment === undefined) {
          open.add(name);
          inFragment = count(f.selectionSet, open);
          open.delete(name);
          counted.set(name, inFragment);
        }
        n += inFragment;
      }
    }
    return n;
  };
  return count(operation.selectionSet, new Set());
}

/** Depth of the deepest field path of an operation, fragments followed; introspection fields do not count. */
export function operationDepth(operation: OperationDefinitionNode, fragments: Map<string, FragmentDefinitionNode>): number {
  const walk = (set: SelectionSetNode | undefined, depth: number, seen: Set<string>): number => {
    if (!set) return depth;
    let max = depth;
    for (const s of set.selections) {
      if (s.kind === Kind.FIELD) {
        if (s.name.value.startsWith("__")) continue;
        max = Math.max(max, s.selectionSet ? walk(s.selectionSet, depth + 1, seen) : depth + 1);
      } else if (s.kind === Kind.INLINE_FRAGMENT) {
        max = Math.max(max, walk(s.selectionSet, depth, seen));
      } else {
        const name = s.name.value;
        const f = fragments.get(name);
        if (!f || seen.has(name)) continue; // cycles are a validation error already
        max = Math.max(max, walk(f.selectionSet, depth, new Set(seen).add(name)));
      }
    }
    return max;
  };
  return walk(operation.selectionSet, 0, new Set());
}

/** Aliased fields the operation executes (a fragment spread twice counts twice). */
export function operationAliases(operation: OperationDefinitionNode, fragments: Map<string, FragmentDefinitionNode>): number {
  const count = (set: SelectionSetNode | undefined, seen: Set<string>): number => {
    if (!set) return 0;
    let n = 0;
    for (const s of set.selections) {
      if (s.kind === Kind.FIELD) n += (s.alias ? 1 : 0) + count(s.selectionSet, seen);
      else if (s.kind === Kind.INLINE_FRAGMENT) n += count(s.selectionSet, seen);
      else {
        const f = fragments.get(s.name.value);
        if (f && !seen.has(f.name.value)) n += count(f.selectionSet, new Set(seen).add(f.name.value));
      }
    }
    return n;
  };
  return count(operation.selectionSet, new Set());
}

export interface LimitCheck {
  schema: GraphQLSchema;
  document: DocumentNode;
  operationName?: string | null;
  variables?: Record<string, unknown> | null;
  limits: Limits;
  caller: Caller;
}

export interface LimitReport {
  operation: OperationDefinitionNode;
  depth: number;
  aliases: number;
  /** Estimated cost with the assumed trial size (ASSUMED). */
  cost: number;
  /**
   * Paths the operation names in Query.trial(path:), each with the `tensors { values }` reads of every
   * value it asks of it: one filter per read (regex or collection as `tensors` gives them; both null
   * for the whole trial).
   */
  trials: Map<string, TensorsFilter[]>;
  /** Whether it reaches trials some other way too (Query.trials, a job's trial): their sizes are not known beforehand. */
  reachesOtherTrials: boolean;
}

/** Cost of the operation under `estimators`; LIMIT_EXCEEDED or BAD_USER_INPUT where it cannot be estimated. */
function complexity(c: LimitCheck, ...estimators: ComplexityEstimator[]): number {
  try {
    return getComplexity({
      schema: c.schema,
      query: c.document,
      operationName: c.operationName ?? undefined,
      variables: (c.variables ?? {}) as Record<string, any>,
      estimators: [...estimators, simpleEstimator({ defaultComplexity: 1 })],
      maxQueryNodes: MAX_SELECTIONS,
    });
  } catch (e) {
    // Bad variables are reported by execution with their own code; an oversized query is ours.
    if (/number of nodes/i.test((e as Error).message)) {
      throw new LimitError("LIMIT_EXCEEDED", "the operation has too many fields", 400, { limit: "cost" });
    }
    if (e instanceof GraphQLError) throw new GraphQLError(e.message, { extensions: { code: "BAD_USER_INPUT", http: { status: 400 } } });
    throw e;
  }
}

/** Whether execution runs a selection, as its @skip and @include say (graphql-js's own rule). */
function included(node: SelectionNode, variables: Record<string, unknown>): boolean {
  return getDirectiveValues(GraphQLSkipDirective, node, variables)?.if !== true
    && getDirectiveValues(GraphQLIncludeDirective, node, variables)?.if !== false;
}

/** An argument's value, variables substituted; undefined when it is not given. */
function argument(field: FieldNode, name: string, variables: Record<string, unknown>): unknown {
  const v = field.arguments?.find((a) => a.name.value === name)?.value;
  return v && valueFromASTUntyped(v, variables);
}

/** A field given no argument but nulls: the whole of what it lists. */
const unfiltered = (field: FieldNode, variables: Record<string, unknown>) =>
  (field.arguments ?? []).every((a) => argument(field, a.name.value, variables) == null);

/**
 * The fields a selection set executes on `type`, by response key, as execution merges them
 * (fragments followed, fields that @include/@skip drop left out).
 */
function fieldsByKey(sets: readonly SelectionSetNode[], type: string, fragments: Map<string, FragmentDefinitionNode>, variables: Record<string, unknown>): Map<string, FieldNode[]> {
  const out = new Map<string, FieldNode[]>();
  const visit = (set: SelectionSetNode, seen: Set<string>) => {
    for (const s of set.selections) {
      if (!included(s, variables)) continue;
      if (s.kind === Kind.FIELD) {
        const key = s.alias?.value ?? s.name.value;
        const list = out.get(key);
        if (list) list.push(s);
        else out.set(key, [s]);
      } else if (s.kind === Kind.INLINE_FRAGMENT) {
        if (!s.typeCondition || s.typeCondition.name.value === type) visit(s.selectionSet, seen);
      } else {
        const f = fragments.get(s.name.value);
        if (f && !seen.has(f.name.value) && f.typeCondition.name.value === type) visit(f.selectionSet, new Set(seen).add(f.name.value));
      }
    }
  };
  for (const set of sets) visit(set, new Set());
  return out;
}

const subselections = (fields: FieldNode[]) => fields.flatMap((f) => (f.selectionSet ? [f.selectionSet] : []));

/** Which tensors a `tensors` field lists: its regex or collection (null: every tensor). */
export interface TensorsFilter {
  regex: string | null;
  collection: string | null;
}

/**
 * The filter of a `tensors` field that lists by regex or collection only (fields that merge share their
 * arguments); null when another argument narrows what it lists in a way not judged here (mode).
 */
function tensorsFilter(field: FieldNode, variables: Record<string, unknown>): TensorsFilter | null {
  const regex = argument(field, "regex", variables);
  const collection = argument(field, "collection", variables);
  const others = (field.arguments ?? []).filter((a) => a.name.value !== "regex" && a.name.value !== "collection");
  if (others.some((a) => argument(field, a.name.value, variables) != null)) return null;
  if ((regex != null && typeof regex !== "string") || (collection != null && typeof collection !== "string")) return null;
  return { regex: (regex as string | null | undefined) ?? null, collection: (collection as string | null | undefined) ?? null };
}

/**
 * The trials an operation names in Query.trial(path:), each with its reads of every value of the
 * tensors a `tensors` field lists (`tensors { values }`, values given no arguments): each such read
 * returns at least every complete value of those tensors, so their sum bounds what it reads from below.
 */
function namedTrials(operation: OperationDefinitionNode, fragments: Map<string, FragmentDefinitionNode>, variables: Record<string, unknown>): Map<string, TensorsFilter[]> {
  const trials = new Map<string, TensorsFilter[]>();
  if (operation.operation !== "query") return trials;
  for (const fields of fieldsByKey([operation.selectionSet], "Query", fragments, variables).values()) {
    if (fields[0].name.value !== "trial") continue;
    const path = argument(fields[0], "path", variables);
    if (typeof path !== "string") continue;
    const reads = trials.get(path) ?? [];
    for (const tensors of fieldsByKey(subselections(fields), "Trial", fragments, variables).values()) {
      const filter = tensors[0].name.value === "tensors" ? tensorsFilter(tensors[0], variables) : null;
      if (!filter) continue;
      for (const values of fieldsByKey(subselections(tensors), "Tensor", fragments, variables).values()) {
        if (values[0].name.value === "values" && values.every((f) => unfiltered(f, variables))) reads.push(filter);
      }
    }
    trials.set(path, reads);
  }
  return trials;
}

/**
 * Checks a parsed, validated operation against the limits; throws a LimitError on the first breach.
 * Returns the measured values (for logs and metrics).
 */
export function checkOperation(c: LimitCheck): LimitReport {
  const operation = getOperationAST(c.document, c.operationName ?? undefined);
  if (!operation) throw new GraphQLError("could not determine which operation to run", { extensions: { code: "BAD_USER_INPUT", http: { status: 400 } } });
  if (operation.operation === "mutation" && c.caller.role !== "operator") {
    throw new LimitError("FORBIDDEN", `${c.caller.name} may not run mutations: it needs the operator role`, 403);
  }
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const d of c.document.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);

  // First, and counted without expanding: the walks below follow every spread of every fragment.
  const selections = operationSelections(operation, fragments);
  if (selections > MAX_SELECTIONS) {
    throw new LimitError("LIMIT_EXCEEDED", `the operation selects more than ${MAX_SELECTIONS} fields once its fragments are expanded`, 400, { limit: "selections", max: MAX_SELECTIONS });
  }
  const depth = operationDepth(operation, fragments);
  if (depth > c.limits.maxDepth) {
    throw new LimitError("LIMIT_EXCEEDED", `the operation is ${depth} levels deep; the limit is ${c.limits.maxDepth}`, 400, { limit: "depth", value: depth, max: c.limits.maxDepth });
  }
  const aliases = operationAliases(operation, fragments);
  if (aliases > c.limits.maxAliases) {
    throw new LimitError("LIMIT_EXCEEDED", `the operation uses ${aliases} aliases; the limit is ${c.limits.maxAliases}`, 400, { limit: "aliases", value: aliases, max: c.limits.maxAliases });
  }
  let reachesOtherTrials = false;
  const noteTrials: ComplexityEstimator = ({ type, field }) => {
    if (getNamedType(field.type).name === "Trial" && !(type.name === "Query" && field.name === "trial")) reachesOtherTrials = true;
  };
  const cost = complexity(c, noteTrials, sizeEstimator);
  if (cost > c.limits.maxCost) {
    throw new LimitError(
      "LIMIT_EXCEEDED",
      `the operation's estimated cost is ${cost}; the limit is ${c.limits.maxCost} (narrow step ranges with fromStep/toStep, or use series(maxPoints))`,
      400,
      { limit: "cost", value: cost, max: c.limits.maxCost },
    );
  }
  // Variables as execution sees them (defaults filled in); with variables it will refuse, execution
  // answers with that error before reading anything, so nothing is counted here.
  const { coerced } = getVariableValues(c.schema, operation.variableDefinitions ?? [], c.variables ?? {});
  const trials = coerced ? namedTrials(operation, fragments, coerced) : new Map<string, TensorsFilter[]>();
  return { operation, depth, aliases, cost, trials, reachesOtherTrials };
}

/**
 * checkOperation, remembered for kept documents (Apollo's store over HTTP, the socket's validated
 * documents): an operation that passed the limits passes again with the same variables and role, so
 * the complexity walk (a TypeInfo visit of the whole document) runs once per such combination.
 */
export class CheckedOperations {
  private readonly passed = new WeakMap<DocumentNode, Map<string, LimitReport>>();

  check(c: LimitCheck): LimitReport {
    const vars = c.variables ? JSON.stringify(c.variables) : "";
    const key = vars.length <= 1024 ? `${c.operationName ?? ""}\u0000${c.caller.role}\u0000${vars}` : null;
    let report = key !== null ? this.passed.get(c.document)?.get(key) : undefined;
    if (report === undefined) {
      report = checkOperation(c);
      if (key !== null) {
        let reports = this.passed.get(c.document);
        if (!reports) this.passed.set(c.document, (reports = new Map()));
        if (reports.size < 64) reports.set(key, report);
      }
    }
    return report;
  }
}

/**
 * Judges an operation that passed checkOperation against the trials it names, as they are open
 * now (`sizeOf` looks without I/O; a trial not open yet is not judged). Refuses at once one that
 * would hold more than TRIALGRAPH_MAX_REQUEST_MB of values: an alias bomb of whole-trial reads,
 * which the read budget would refuse only after listing the steps of a budget's worth of tensors.
 * Says whether it is heavy from those trials' real sizes rather than the assumed ones, so that a
 * dashboard's reads of a small trial do not wait behind whole-trial reads of a large one.
 */
export function checkAgainstTrials(c: LimitCheck, report: LimitReport, sizeOf: (path: string, filter?: TensorsFilter) => TrialSize | null): { heavy: boolean } {
  const heavyAssumed = report.cost >= c.limits.heavyCost;
  const sizes: TrialSize[] = [];
  let values = 0;
  for (const [path, reads] of report.trials) {
    if (!reads.length && !heavyAssumed) continue; // nothing to judge: no trial looked at
    const size = sizeOf(path);
    if (!size) continue;
    sizes.push(size);
    const listed = new Map<string, number>();
    for (const filter of reads) {
      // JSON keeps a pattern or collection named "null" apart from an absent one.
      const key = JSON.stringify([filter.regex, filter.collection]);
      let filtered = listed.get(key);
      if (filtered === undefined) {
        try {
          filtered = filter.regex === null && filter.collection === null ? size.completeValues : (sizeOf(path, filter)?.completeValues ?? 0);
        } catch {
          filtered = 0; // a pattern execution will refuse, with its own error, before reading
        }
        listed.set(key, filtered);
      }
      values += filtered;
    }
  }
  if (values * COLUMN_VALUE_BYTES > c.limits.maxRequestBytes) {
    throw new LimitError("LIMIT_EXCEEDED", requestMemoryMessage(c.limits.maxRequestBytes), 400, { limit: "memory", value: values });
  }
  if (!heavyAssumed) return { heavy: false };
  if (report.reachesOtherTrials || sizes.length === 0 || sizes.length < report.trials.size) return { heavy: true };
  const real: Assumed = {
    ...ASSUMED,
    steps: Math.max(...sizes.map((s) => s.maxSteps)),
    tensors: Math.max(...sizes.map((s) => s.tensors)),
  };
  return { heavy: complexity(c, (options) => estimateWith(real, options)) >= c.limits.heavyCost };
}

/**
 * Token buckets per caller: `perMinute` requests a minute on average, bursts up to `perMinute`.
 * Idle buckets are dropped so the map cannot grow with every address that ever called.
 */
export class RateLimiter {
  private buckets = new Map<string, { tokens: number; at: number }>();
  private lastSweep = 0;

  constructor(private readonly perMinute: number, private readonly now: () => number = () => Date.now()) {}

  get enabled(): boolean {
    return this.perMinute > 0;
  }

  /** Takes one token for `key`; returns the seconds to wait when there is none (0 = allowed). */
  take(key: string): number {
    if (!this.enabled) return 0;
    const now = this.now();
    const perMs = this.perMinute / 60_000;
    if (now - this.lastSweep > 60_000) this.sweep(now, perMs);
    const b = this.buckets.get(key) ?? { tokens: this.perMinute, at: now };
    b.tokens = Math.min(this.perMinute, b.tokens + (now - b.at) * perMs);
    b.at = now;
    this.buckets.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / perMs / 1000));
  }

  /** Throws RATE_LIMITED (HTTP 429) when `key` has no token left. */
  check(key: string): void {
    const wait = this.take(key);
    if (wait > 0) {
      throw new LimitError("RATE_LIMITED", `rate limit of ${this.perMinute} requests per minute reached; retry in ${wait} s`, 429, { retryAfterSeconds: wait });
    }
  }

  private sweep(now: number, perMs: number): void {
    this.lastSweep = now;
    for (const [k, b] of this.buckets) if (b.tokens + (now - b.at) * perMs >= this.perMinute) this.buckets.delete(k);
  }
}

/** The rate-limit key: the token's name, or the client address when the service runs without tokens. */
export function rateLimitKey(caller: Caller, tokensConfigured: boolean, remoteAddress: string | undefined): string {
  return tokensConfigured ? `token:${caller.name}` : `addr:${remoteAddress ?? "unknown"}`;
}

/** graphql-js reports the token limit as a syntax error; clients should see it as the limit it is. */
export function isTokenLimitMessage(message: string): boolean {
  return /Document contains more th(?:an|at) \d+ tokens/.test(message);
}

/** Relabels a formatted token-limit parse error as LIMIT_EXCEEDED (limit: "tokens"). */
export function relabelTokenLimit<T extends { message: string; extensions?: Record<string, unknown> }>(e: T): T {
  if (!isTokenLimitMessage(e.message)) return e;
  return { ...e, extensions: { ...(e.extensions ?? {}), code: "LIMIT_EXCEEDED", limit: "tokens" } };
}

/**
 * Resolves once the event loop has polled for I/O: a closed connection that arrived while a long
 * synchronous stretch (execution) held the loop is seen by then. One setImmediate may run before the
 * next poll; one scheduled from it runs after.
 */
export const afterPendingIO = () => new Promise<void>((resolve) => setImmediate(() => setImmediate(resolve)));

/**
 * Heavy operations (estimated cost ≥ TRIALGRAPH_HEAVY_COST) run `running` at a time; the others wait
 * in arrival order, at most `queued` of them. A whole-trial read allocates hundreds of MB while it
 * executes and serializes: run side by side, those peaks add up (and a client that left keeps its
 * read going until it is noticed), whereas one after the other they reuse the same memory. A
 * waiting operation whose client left is dropped without running.
 */
export class AdmissionQueue {
  private active = 0;
  private readonly waiting: { admit: () => void }[] = [];

  constructor(readonly running: number, readonly queued: number) {}

  /** Operations executing / waiting now. */
  get load(): { running: number; waiting: number } {
    return { running: this.active, waiting: this.waiting.length };
  }

  /**
   * Resolves with the function that gives the slot back (call it once) when this operation may
   * run. Rejects with LIMIT_EXCEEDED when the queue is full (limit "queue", retryable) or when
   * `signal` aborts while waiting (limit "cancelled": nobody reads that answer).
   */
  enter(signal: AbortSignal): Promise<() => void> {
    if (signal.aborted) return Promise.reject(gone());
    if (this.active < this.running && this.waiting.length === 0) {
      this.active++;
      return Promise.resolve(this.releaser());
    }
    if (this.waiting.length >= this.queued) {
      return Promise.reject(new LimitError("LIMIT_EXCEEDED", `the service is answering ${this.active} large requests and ${this.waiting.length} more wait (TRIALGRAPH_MAX_HEAVY_QUEUED); retry shortly or ask for less`, 429, { limit: "queue", retryable: true }));
    }
    return new Promise((resolve, reject) => {
      const entry = {
        admit: () => {
          signal.removeEventListener("abort", leave);
          this.active++;
          resolve(this.releaser());
        },
      };
      const leave = () => {
        const i = this.waiting.indexOf(entry);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(gone());
      };
      signal.addEventListener("abort", leave, { once: true });
      this.waiting.push(entry);
    });
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.active--;
      // The next one is admitted after the event loop has polled for I/O: clients that left while a
      // heavy operation held the loop are noticed (their signal aborts) before their work starts.
      void afterPendingIO().then(() => this.admitWaiting());
    };
  }

  private admitWaiting(): void {
    while (this.active < this.running && this.waiting.length > 0) this.waiting.shift()!.admit();
  }
}

const gone = () => new LimitError("LIMIT_EXCEEDED", "the client went away", 400, { limit: "cancelled" });
