/**
 * How errors leave the service: domain errors keep their code and safe details; anything
 * unexpected (and a domain error coded INTERNAL_SERVER_ERROR) is logged with the request id and
 * answers a generic "internal error, request id …" — never a raw message, a path or a stack trace.
 */
import { GraphQLError, type GraphQLFormattedError } from "graphql";
import type { Logger } from "pino";
import { TrialgraphError } from "../errors.js";
import { withoutSchemaHint } from "./validation.js";

const HTTP_STATUS: Partial<Record<string, number>> = {
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  LIMIT_EXCEEDED: 400,
};

export function toGraphQLError(e: TrialgraphError): GraphQLError {
  const status = HTTP_STATUS[e.code];
  return new GraphQLError(e.message, { extensions: { code: e.code, ...e.details, ...(status ? { http: { status } } : {}) } });
}

function findOriginal(error: unknown): unknown {
  let e = error;
  for (let i = 0; i < 5 && e instanceof GraphQLError && e.originalError; i++) e = e.originalError;
  return e;
}

/** Apollo answers a persisted query whose hash does not match its text with a code-less error. */
const APQ_MISMATCH = "provided sha does not match query";

/**
 * The client-facing code of an error, or null when it is unexpected (a bug or an outage: logged,
 * answered generically). Domain errors and GraphQL errors that carry a code (parse, validation,
 * variables, limits) are the client's to see.
 */
function clientCode(error: unknown): string | null {
  const original = findOriginal(error);
  if (original instanceof TrialgraphError) return original.code === "INTERNAL_SERVER_ERROR" ? null : original.code;
  // The nearest GraphQL error with a code of its own (Apollo wraps graphql-js's validation and variable errors).
  let e = error;
  for (let i = 0; i < 6 && e instanceof GraphQLError; i++) {
    const code = e.extensions?.code;
    if (typeof code === "string" && code !== "INTERNAL_SERVER_ERROR") return code;
    if (e.message === APQ_MISMATCH) return "PERSISTED_QUERY_HASH_MISMATCH";
    if (!e.originalError) {
      // graphql-js's own request errors (variables that do not coerce) have no field path; a code-less
      // error on a field (a non-null field resolved to null) is the service's fault.
      return e.path ? null : "BAD_USER_INPUT";
    }
    e = e.originalError;
  }
  return null;
}

/** Whether an error is one the client caused or may see as it is (false: log it). */
export function isExpectedError(error: unknown): boolean {
  return clientCode(error) !== null;
}

export const INTERNAL_MESSAGE = "internal error";

export interface FormatOptions {
  /** Drop graphql-js's hints at the schema ("Did you mean …?"): set when introspection is off. */
  hideSchemaHints?: boolean;
}

export function formatError(options: FormatOptions = {}) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const original = findOriginal(error);
    const { stacktrace: _drop, ...extensions } = (formatted.extensions ?? {}) as Record<string, unknown>;
    const code = clientCode(error);
    if (code !== null && original instanceof TrialgraphError) {
      const { http: _http, ...rest } = { ...extensions, code, ...original.details } as Record<string, unknown>;
      return { message: original.message, locations: formatted.locations, path: formatted.path, extensions: rest };
    }
    if (code !== null) {
      const message = options.hideSchemaHints ? withoutSchemaHint(formatted.message) : formatted.message;
      return { ...formatted, message, extensions: { ...extensions, code } };
    }
    // The request id is added where it is known (withRequestId); the log has the rest.
    return { message: INTERNAL_MESSAGE, locations: formatted.locations, path: formatted.path, extensions: { code: "INTERNAL_SERVER_ERROR" } };
  };
}

/** Logs an unexpected error with its request id (its cause included; the client never sees it). */
export function logUnexpected(log: Logger, requestId: string, error: unknown): void {
  const original = findOriginal(error);
  const path = error instanceof GraphQLError ? error.path?.join(".") : undefined;
  log.error({ reqId: requestId, err: original, cause: (original as { cause?: unknown })?.cause, path }, "unexpected error while resolving %s", path ?? "a request");
}

/** Names the request id in generic internal errors, so a report can be matched with the log. */
export function withRequestId<T extends GraphQLFormattedError>(errors: readonly T[], requestId: string): T[] {
  return errors.map((e) =>
    (e.extensions as Record<string, unknown> | undefined)?.code === "INTERNAL_SERVER_ERROR"
      ? { ...e, message: `${INTERNAL_MESSAGE}, request id ${requestId}`, extensions: { ...e.extensions, requestId } }
      : e);
}
