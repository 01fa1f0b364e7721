/** The S3 client factory, s3:// URI parsing, and how S3 failures map to trialgraph error codes. */
import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import type { S3Client } from "@aws-sdk/client-s3";
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from "@smithy/types";
import { TrialgraphError, badInput } from "../errors.js";
import { ConcurrencyLimiter } from "./concurrency.js";

export interface S3ClientOptions {
  /** An S3-compatible server (MinIO, s3rver); switches to path-style addressing. Unset: AWS. */
  endpoint?: string;
  region: string;
  /** Attempts per operation, first try included; the SDK retries throttling (SlowDown), 5xx and network errors. */
  maxAttempts?: number;
  /** Time allowed until the response headers arrive, and the longest silence while a body streams. */
  requestTimeoutMs?: number;
  /** Time allowed to open a TCP connection. */
  connectionTimeoutMs?: number;
  /** Sockets per client (keep-alive pool). */
  maxSockets?: number;
  /** Operations in flight per client, across every source that shares it. Default: maxSockets. */
  maxConcurrency?: number;
  /** Explicit credentials (tests); by default the SDK's standard chain (env, profile, container, instance). */
  credentials?: AwsCredentialIdentity | AwsCredentialIdentityProvider;
  /** Defaults to true when `endpoint` is set. */
  forcePathStyle?: boolean;
}

export const S3_DEFAULTS = {
  maxAttempts: 4,
  requestTimeoutMs: 30_000,
  connectionTimeoutMs: 5_000,
  maxSockets: 32,
} as const;

type S3Sdk = typeof import("@aws-sdk/client-s3");
let sdk: S3Sdk | null = null;

/**
 * The S3 SDK, loaded by the first S3 operation: a service that never reads S3 does not hold it
 * (~5 MB of heap and code, ~5 MB of RSS at rest).
 */
export function s3Sdk(): S3Sdk {
  return (sdk ??= require("@aws-sdk/client-s3") as S3Sdk);
}

/** The service's S3 client, made (and the SDK loaded) by its first use; `onMade` hooks run on it then. */
export class LazyS3Client {
  private client: S3Client | null = null;
  private readonly hooks: ((client: S3Client) => void)[] = [];

  constructor(private readonly make: () => S3Client) {}

  get(): S3Client {
    if (!this.client) {
      this.client = this.make();
      for (const hook of this.hooks) hook(this.client);
    }
    return this.client;
  }

  /** Runs `hook` on the client when it is made (at once if it already is). */
  onMade(hook: (client: S3Client) => void): void {
    this.hooks.push(hook);
    if (this.client) hook(this.client);
  }

  destroy(): void {
    this.client?.destroy();
  }
}

const limiters = new WeakMap<S3Client, ConcurrencyLimiter>();
const agents = new WeakMap<S3Client, { http: HttpAgent; https: HttpsAgent }>();

export function createS3Client(opts: S3ClientOptions): S3Client {
  const maxSockets = opts.maxSockets ?? S3_DEFAULTS.maxSockets;
  const requestTimeout = opts.requestTimeoutMs ?? S3_DEFAULTS.requestTimeoutMs;
  if (opts.endpoint !== undefined) {
    let url: URL;
    try {
      url = new URL(opts.endpoint);
    } catch {
      throw badInput(`S3 endpoint is not a URL: ${opts.endpoint}`, "endpoint");
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") throw badInput(`S3 endpoint must be http(s): ${opts.endpoint}`, "endpoint");
  }
  if (!opts.region) throw badInput("an AWS region is required for S3", "region");
  const compatible = opts.endpoint !== undefined;
  const { S3Client } = s3Sdk();
  const { NodeHttpHandler } = require("@smithy/node-http-handler") as typeof import("@smithy/node-http-handler");
  const httpAgent = new HttpAgent({ keepAlive: true, maxSockets });
  const httpsAgent = new HttpsAgent({ keepAlive: true, maxSockets });
  const client = new S3Client({
    region: opts.region,
    endpoint: opts.endpoint,
    forcePathStyle: opts.forcePathStyle ?? compatible,
    credentials: opts.credentials,
    maxAttempts: opts.maxAttempts ?? S3_DEFAULTS.maxAttempts,
    retryMode: "standard",
    // Third-party servers mishandle the SDK's default flexible checksums (aws-chunked uploads stored verbatim,
    // checksum headers they do not send); only send checksums when an operation requires them.
    ...(compatible ? { requestChecksumCalculation: "WHEN_REQUIRED" as const } : {}),
    // Responses are not checked against S3's stored checksums either: the SDK would ask for them on every
    // GetObject and compute a CRC over each whole-object body in JavaScript (the index files, 23 MB for a
    // 500-step trial), while ranged reads get none to check. Bodies travel over TCP (TLS on AWS), and
    // every byte read is validated by the parsers (index JSON, TFRecord lengths and CRCs where present).
    responseChecksumValidation: "WHEN_REQUIRED" as const,
    requestHandler: new NodeHttpHandler({
      httpAgent,
      httpsAgent,
      connectionTimeout: opts.connectionTimeoutMs ?? S3_DEFAULTS.connectionTimeoutMs,
      requestTimeout,
      // Without this the SDK only logs a warning when the request timeout passes.
      throwOnRequestTimeout: true,
      socketTimeout: requestTimeout,
    }),
  });
  // Keeping our own in-flight count at or below the socket pool avoids the SDK's silent internal queueing.
  limiters.set(client, new ConcurrencyLimiter(Math.max(1, opts.maxConcurrency ?? maxSockets)));
  agents.set(client, { http: httpAgent, https: httpsAgent });
  return client;
}

/**
 * Socket pool usage of a client made by createS3Client (metrics, and tests proving no body is left unread:
 * an unread body keeps its socket "in use" forever).
 */
export function clientSocketStats(client: S3Client): { inUse: number; idle: number; waiting: number } | null {
  const pair = agents.get(client);
  if (!pair) return null;
  const count = (m: NodeJS.ReadOnlyDict<unknown[]>) => Object.values(m).reduce((n, list) => n + (list?.length ?? 0), 0);
  let inUse = 0;
  let idle = 0;
  let waiting = 0;
  for (const agent of [pair.http, pair.https]) {
    inUse += count(agent.sockets);
    idle += count(agent.freeSockets);
    waiting += count(agent.requests);
  }
  return { inUse, idle, waiting };
}

/** The limiter shared by everything using this client (created on first use for clients made elsewhere). */
export function clientLimiter(client: S3Client): ConcurrencyLimiter {
  let limiter = limiters.get(client);
  if (!limiter) {
    limiter = new ConcurrencyLimiter(S3_DEFAULTS.maxSockets);
    limiters.set(client, limiter);
  }
  return limiter;
}

export interface S3Location {
  bucket: string;
  /** Key prefix without a leading slash, ending in "/" unless empty (bucket root). */
  prefix: string;
}

export function isS3Uri(path: string): boolean {
  return /^s3:\/\//i.test(path);
}

// S3's bucket naming rules: 3-63 chars of lower-case letters, digits, dots and hyphens, starting and ending
// with a letter or digit (s3rver and MinIO enforce the same).
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** Parses `s3://bucket/prefix` (the trailing slash is optional), as smdebug normalizes it. */
export function parseS3Uri(uri: string, field = "path"): S3Location {
  const m = /^s3:\/\/([^/]*)\/?(.*)$/i.exec(uri);
  if (!m) throw badInput(`not an s3:// URI: ${uri}`, field);
  const bucket = m[1];
  if (!BUCKET_NAME.test(bucket) || bucket.includes("..")) throw badInput(`invalid S3 bucket name "${bucket}"`, field);
  let prefix = m[2].replace(/^\/+/, "");
  if (prefix.length > 1024) throw badInput("S3 prefix longer than 1024 bytes", field);
  if (prefix && !prefix.endsWith("/")) prefix += "/";
  return { bucket, prefix };
}

export function formatS3Uri(loc: S3Location): string {
  return `s3://${loc.bucket}/${loc.prefix.replace(/\/$/, "")}`;
}

/** What a failed S3 call means for a reader. */
export type S3FailureKind =
  | "missing-object"
  | "missing-bucket"
  | "invalid-range"
  | "access-denied"
  | "bad-request"
  | "unavailable";

interface SdkErrorShape {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number; requestId?: string; attempts?: number };
  $response?: unknown;
}

const ACCESS_CODES = new Set([
  "AccessDenied",
  "Forbidden",
  "InvalidAccessKeyId",
  "SignatureDoesNotMatch",
  "ExpiredToken",
  "InvalidToken",
  "TokenRefreshRequired",
  "AllAccessDisabled",
  "AccountProblem",
  "CredentialsProviderError",
]);

export function classifyS3Error(err: unknown): S3FailureKind {
  const e = (err ?? {}) as SdkErrorShape;
  const name = e.name ?? "";
  const status = e.$metadata?.httpStatusCode;
  if (name === "NoSuchKey") return "missing-object";
  if (name === "NoSuchBucket") return "missing-bucket";
  // HeadObject errors have no body, so the SDK only knows the status: 404 is "NotFound".
  if (name === "NotFound" && status === 404) return "missing-object";
  if (name === "InvalidRange" || status === 416) return "invalid-range";
  if (ACCESS_CODES.has(name) || status === 401 || status === 403) return "access-denied";
  if (name === "InvalidBucketName" || name === "KeyTooLongError" || name === "InvalidArgument") return "bad-request";
  return "unavailable";
}

/** Turns an SDK failure into a coded error; messages name the location, never credentials. */
export function toTrialgraphError(err: unknown, operation: string, location: string): TrialgraphError {
  if (err instanceof TrialgraphError) return err;
  const e = (err ?? {}) as SdkErrorShape;
  const kind = classifyS3Error(err);
  const details: Record<string, unknown> = { location, operation };
  if (e.name) details.s3Code = e.name;
  if (e.$metadata?.httpStatusCode) details.httpStatus = e.$metadata.httpStatusCode;
  if (e.$metadata?.requestId) details.requestId = e.$metadata.requestId;
  if (e.$metadata?.attempts) details.attempts = e.$metadata.attempts;
  if (e.code && !e.$metadata?.httpStatusCode) details.networkCode = e.code;
  switch (kind) {
    case "access-denied":
      return new TrialgraphError("ACCESS_DENIED", `access denied to ${location} (${e.name ?? "403"})`, details);
    case "bad-request":
      return new TrialgraphError("BAD_USER_INPUT", `S3 rejected ${location}: ${e.name}`, { ...details, field: "path" });
    default: {
      const why = e.$metadata?.httpStatusCode ? `${e.name ?? "error"} (HTTP ${e.$metadata.httpStatusCode})` : (e.code ?? e.name ?? "error");
      return new TrialgraphError("S3_UNAVAILABLE", `S3 is unavailable for ${location}: ${why}`, details);
    }
  }
}
