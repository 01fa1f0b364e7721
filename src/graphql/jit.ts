/**
 * Query execution through graphql-jit: each operation is compiled once into a JavaScript function
 * (kept as long as Apollo keeps the parsed document, so the cache is bounded by Apollo's own
 * document store), which completes large lists several times faster than graphql-js's generic
 * walk. Parsing, validation, limits, plugins and error formatting stay Apollo's. An operation jit
 * cannot compile runs on graphql-js's execute, as before.
 */
import { execute, GraphQLError, type DocumentNode, type ExecutionResult, type GraphQLSchema } from "graphql";
import { compileQuery, isCompiledQuery, type CompiledQuery } from "graphql-jit";
import { jitRuntime } from "graphql-jit/dist/runtime.js";
import { isCheckedList } from "./checked-lists.js";
import { isPackedValues } from "./packed-values.js";

type Compiled = Pick<CompiledQuery, "query">;

export interface JitExecutor {
  execute(args: { document: DocumentNode; operationName: string | null | undefined; contextValue: unknown; variableValues?: Record<string, unknown> | null }): Promise<ExecutionResult>;
  /** Operations compiled, and operations run on graphql-js because jit could not compile them. */
  readonly stats: { compiled: number; fallbacks: number };
}

let answersCheckedListsAsIs = false;

/**
 * Compiled queries complete every list through jit's runtime `safeMap`, which maps each element
 * into a new array; a checked number list (checked-lists.ts) and packed tensor values
 * (packed-values.ts: the serializer writes their JSON) are returned as they are instead. The
 * runtime object is shared by every compiled query, so this is done once per process.
 */
function answerCheckedListsAsIs(): void {
  if (answersCheckedListsAsIs) return;
  answersCheckedListsAsIs = true;
  const safeMap = jitRuntime.safeMap;
  jitRuntime.safeMap = function (ctx, iterable, cb, ...idx) {
    return isCheckedList(iterable) || isPackedValues(iterable) ? (iterable as unknown[]) : safeMap.call(this, ctx, iterable, cb, ...idx);
  };
}

export function createJitExecutor(schema: GraphQLSchema): JitExecutor {
  answerCheckedListsAsIs();
  // Keyed by the parsed document (Apollo reuses one object per query text), then by operation name.
  const cache = new WeakMap<DocumentNode, Map<string, Compiled | null>>();
  const stats = { compiled: 0, fallbacks: 0 };
  const compile = (document: DocumentNode, operationName: string | null | undefined): Compiled | null => {
    let byOperation = cache.get(document);
    if (!byOperation) cache.set(document, (byOperation = new Map()));
    const key = operationName ?? "";
    let compiled = byOperation.get(key);
    if (compiled !== undefined) return compiled;
    try {
      const c = compileQuery(schema, document, operationName ?? undefined, {
        // Errors from resolvers carry their own (or no) stack; jit need not capture one per error.
        disablingCapturingStackErrors: true,
      });
      compiled = isCompiledQuery(c) ? c : null;
    } catch {
      compiled = null;
    }
    if (compiled) stats.compiled++;
    else stats.fallbacks++;
    byOperation.set(key, compiled);
    return compiled;
  };
  return {
    stats,
    async execute({ document, operationName, contextValue, variableValues }) {
      const compiled = compile(document, operationName);
      if (!compiled) return execute({ schema, document, operationName, contextValue, variableValues: variableValues ?? undefined });
      return asGraphqlJsErrors(await compiled.query(undefined, contextValue, variableValues ?? {}));
    },
  };
}

/**
 * jit's errors lack graphql-js's always-present `extensions` object, which Apollo's formatting
 * reads: they are rebuilt as graphql-js errors with the same message, path, locations and cause.
 */
function asGraphqlJsErrors(result: ExecutionResult): ExecutionResult {
  if (!result.errors?.length) return result;
  // jit reports every field an error reached; graphql-js stops at the first of a list that is nulled.
  // One cause (a spent request budget refusing every tensor) is reported once.
  const seen = new Set<unknown>();
  const unique = result.errors.filter((e) => {
    const cause = e.originalError ?? e;
    if (seen.has(cause)) return false;
    seen.add(cause);
    return true;
  });
  const errors = unique.map((e) => {
    if (e.extensions) return e;
    const original = e.originalError ?? undefined;
    const rebuilt = new GraphQLError(e.message, { path: e.path, originalError: original });
    (rebuilt as { locations?: unknown }).locations = e.locations;
    return rebuilt;
  });
  return { ...result, errors };
}
