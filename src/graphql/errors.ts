/**
 * How errors leave the service: domain errors keep their code and safe details; anything
 * unexpected becomes INTERNAL_SERVER_ERROR with a generic message (the log has the rest).
 * Never a stack trace.
 */
import { GraphQLError, type GraphQLFormattedError } from "graphql";
import type { Logger } from "pino";
import { TrialgraphError } from "../errors.js";

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

export function formatError(log: Logger) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const original = findOriginal(error);
    const { stacktrace: _drop, ...extensions } = (formatted.extensions ?? {}) as Record<string, unknown>;
    if (original instanceof TrialgraphError) {
      const { http: _http, ...rest } = { ...extensions, code: original.code, ...original.details } as Record<string, unknown>;
      return { message: original.message, locations: formatted.locations, path: formatted.path, extensions: rest };
    }
    if (original instanceof GraphQLError || extensions.code) {
      // Parse, validation and variable errors: already client-facing.
      return { ...formatted, extensions: { ...extensions, code: extensions.code ?? "BAD_USER_INPUT" } };
    }
    log.error({ err: original }, "unexpected error while resolving %s", formatted.path?.join(".") ?? "a request");
    return { message: "internal error", locations: formatted.locations, path: formatted.path, extensions: { code: "INTERNAL_SERVER_ERROR" } };
  };
}
