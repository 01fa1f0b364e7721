/**
 * Maps what the AWS SDK throws to TrialgraphError codes. Matching is on `error.name` (the wire
 * `__type`), never `instanceof`, because most SageMaker errors are unmodeled (spec §2, "Errors").
 */
import { TrialgraphError } from "../../errors.js";

export type SageMakerOperation = "CreateTrainingJob" | "DescribeTrainingJob" | "StopTrainingJob" | "ListTrainingJobs";

interface AwsErrorShape {
  name?: string;
  message?: string;
  code?: string;
  $fault?: "client" | "server";
  $metadata?: { httpStatusCode?: number; requestId?: string; attempts?: number; totalRetryDelay?: number };
}

/** Error names the SDK's retry strategy treats as throttling (@smithy/core retry constants). */
const THROTTLING_NAMES = new Set([
  "ThrottlingException", "Throttling", "ThrottledException", "RequestThrottledException", "TooManyRequestsException",
  "ProvisionedThroughputExceededException", "TransactionInProgressException", "RequestLimitExceeded",
  "BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled", "SlowDown", "PriorRequestNotComplete",
  "EC2ThrottledException",
]);
const ACCESS_DENIED_NAMES = new Set([
  "AccessDeniedException", "AccessDenied", "UnrecognizedClientException", "InvalidSignatureException",
  "ExpiredTokenException", "IncompleteSignature", "MissingAuthenticationToken", "InvalidClientTokenId",
  "NotAuthorized", "CredentialsProviderError",
]);
/** Node socket codes and SDK names for "the endpoint could not be reached or did not answer". */
const UNREACHABLE_CODES = new Set([
  "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN", "EPIPE",
  "ECONNABORTED", "TimeoutError", "RequestTimeout", "RequestTimeoutException",
]);

export const isNotFound = (e: AwsErrorShape) =>
  e.name === "ResourceNotFound" ||
  (e.name === "ValidationException" && /Requested resource not found/i.test(e.message ?? ""));

/**
 * "Debugger is not available to this account." AWS closed Debugger to new customers on 2026-07-30 and
 * has not published the error such an account gets, so the matcher is deliberately narrow: an
 * AccessDeniedException or ValidationException (the two errors CreateTrainingJob uses for
 * "not allowed" and "bad request") whose message mentions Debugger (or its rule images/configs) together
 * with an availability/permission phrase. A plain ValidationException about, say, a malformed
 * DebugHookConfig path names Debugger config but no availability phrase, so it stays BAD_USER_INPUT.
 */
const DEBUGGER_MENTION = /debugger|DebugRuleConfiguration|DebugHookConfig|rule evaluat/i;
const UNAVAILABLE_PHRASE =
  /not available|unavailable|no longer|new customers|not supported|not enabled|not (?:authorized|allowed|permitted)|not subscribed|opt(?:ed)?[- ]in|access denied|denied/i;

export function isDebuggerUnavailable(e: AwsErrorShape): boolean {
  if (e.name !== "AccessDeniedException" && e.name !== "ValidationException") return false;
  const message = e.message ?? "";
  return DEBUGGER_MENTION.test(message) && (e.name === "AccessDeniedException" || UNAVAILABLE_PHRASE.test(message));
}

function awsDetails(e: AwsErrorShape, operation: SageMakerOperation): Record<string, unknown> {
  return {
    operation,
    awsError: e.name ?? null,
    requestId: e.$metadata?.requestId ?? null,
    httpStatus: e.$metadata?.httpStatusCode ?? null,
    attempts: e.$metadata?.attempts ?? null,
  };
}

/** One TrialgraphError for anything the SDK threw. NOT_FOUND is left for callers to turn into null. */
export function toTrialgraphError(error: unknown, operation: SageMakerOperation): TrialgraphError {
  if (error instanceof TrialgraphError) return error;
  const e = (error ?? {}) as AwsErrorShape;
  const name = e.name ?? "";
  const message = e.message ?? String(error);
  const details = awsDetails(e, operation);

  if (isNotFound(e)) return new TrialgraphError("NOT_FOUND", "no such SageMaker training job", details);
  if (isDebuggerUnavailable(e)) {
    return new TrialgraphError("DEBUGGER_UNAVAILABLE",
      `SageMaker Debugger rules are not available to this AWS account (${message}). ` +
      "Run the rules with evaluator SERVICE instead: the service evaluates them itself from the saved tensors.",
      details);
  }
  if (name === "ResourceInUse") {
    return new TrialgraphError("JOB_NAME_IN_USE",
      `a training job with this name already exists (names are unique per account and region, forever): ${message}`,
      { ...details, field: "name" });
  }
  if (name === "ResourceLimitExceeded") return new TrialgraphError("LIMIT_EXCEEDED", message, details);
  if (THROTTLING_NAMES.has(name) || e.$metadata?.httpStatusCode === 429) {
    return new TrialgraphError("THROTTLED",
      `SageMaker throttled ${operation} and retries did not get through; try again later`, details);
  }
  if (ACCESS_DENIED_NAMES.has(name)) {
    return new TrialgraphError("ACCESS_DENIED", `SageMaker denied ${operation}: ${message}`, details);
  }
  if (UNREACHABLE_CODES.has(name) || (e.code != null && UNREACHABLE_CODES.has(e.code)) ||
      e.$fault === "server" || (e.$metadata?.httpStatusCode ?? 0) >= 500) {
    return new TrialgraphError("SAGEMAKER_UNAVAILABLE", `SageMaker could not be reached for ${operation}: ${message}`, details);
  }
  if (name === "ValidationException") return new TrialgraphError("BAD_USER_INPUT", `SageMaker rejected ${operation}: ${message}`, details);
  if (e.$metadata == null) {
    // No HTTP response at all (socket or DNS failure the SDK surfaced without a code we know).
    return new TrialgraphError("SAGEMAKER_UNAVAILABLE", `SageMaker could not be reached for ${operation}: ${message}`, details);
  }
  return new TrialgraphError("INTERNAL_SERVER_ERROR", `SageMaker ${operation} failed: ${name || message}`, details);
}
