/**
 * Domain errors. Every failure a client can see carries a stable code; the GraphQL layer
 * turns these into `extensions.code` (and never shows a stack trace).
 */
export type ErrorCode =
  | "BAD_USER_INPUT"
  | "FORBIDDEN_PATH"
  | "TENSOR_UNAVAILABLE_FOR_STEP"
  | "CORRUPT_RECORD"
  | "ACCESS_DENIED"
  | "S3_UNAVAILABLE"
  | "NOT_FOUND"
  | "JOB_NAME_IN_USE"
  | "JOB_NOT_STOPPABLE"
  | "THROTTLED"
  | "DEBUGGER_UNAVAILABLE"
  | "SAGEMAKER_UNAVAILABLE"
  | "BACKEND_UNAVAILABLE"
  | "XGBOOST_UNAVAILABLE"
  | "UNAUTHENTICATED"
  | "FORBIDDEN"
  | "LIMIT_EXCEEDED"
  | "RATE_LIMITED"
  | "DATABASE_UNAVAILABLE"
  | "CURSOR_EXPIRED"
  | "INTERNAL_SERVER_ERROR";

export class TrialgraphError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Extra, client-safe details (field at fault, file and offset, request id, ...). */
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = "TrialgraphError";
  }
}

/** An unexpected failure: answered generically, logged with its cause. */
export function internalError(message: string, cause: unknown): TrialgraphError {
  const e = new TrialgraphError("INTERNAL_SERVER_ERROR", message);
  (e as { cause?: unknown }).cause = cause;
  return e;
}

export const badInput = (message: string, field?: string) =>
  new TrialgraphError("BAD_USER_INPUT", message, field ? { field } : {});

export function isTrialgraphError(e: unknown): e is TrialgraphError {
  return e instanceof TrialgraphError;
}
