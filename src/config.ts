/**
 * Service configuration, from the environment only, validated at start: every bad value is
 * reported at once with the variable's name and what it should look like.
 */
import { createHash } from "node:crypto";
import os from "node:os";
import path from "node:path";
import { StartupError } from "./startup.js";
import type { LogFormat } from "./observability/logger.js";

export interface Limits {
  maxDepth: number;
  maxCost: number;
  maxTokens: number;
  maxAliases: number;
  maxBodyBytes: number;
  /** Tensor elements one request may return. */
  maxValues: number;
  /** Tensor elements one request may read to compute on the server (statistics, histograms, reductions). */
  maxElementsRead: number;
  /** Requests per minute per token (or per client address without tokens); 0 = unlimited. */
  rateLimitPerMinute: number;
  wsMaxPayloadBytes: number;
  connectionInitWaitTimeoutMs: number;
  /** Estimated bytes one request's answer may hold (values, their objects, the response). */
  maxRequestBytes: number;
  /** Estimated bytes all requests in flight may hold together. */
  maxInflightBytes: number;
  /** Estimated cost (the static cost of the limits) from which an operation is heavy: such operations run a few at a time. */
  heavyCost: number;
  /** Heavy operations executing at once; the others wait their turn. */
  maxHeavyRunning: number;
  /** Heavy operations that may wait; beyond it, LIMIT_EXCEEDED (limit "queue", retryable). */
  maxHeavyQueued: number;
  /** Operations (subscriptions included) open at once on one WebSocket. */
  maxSubscriptionsPerSocket: number;
  /** Operations open at once per caller (token, or client address without tokens) across sockets. */
  maxSubscriptionsPerCaller: number;
}

/** What browsers may reach, and where the service may send requests. */
export interface Exposure {
  /** Origins (scheme://host[:port]) allowed besides the request's own host; "*" allows any. */
  allowedOrigins: string[];
  /** Host header names (host or host:port, lower case) that answer; null = any (non-loopback bind). */
  allowedHosts: string[] | null;
  /** Hosts (host or host:port) a rule's own webhook URL may target; TRIALGRAPH_WEBHOOK_URL's host is always allowed. */
  webhookAllowedHosts: string[];
  /** When set, s3:// trials and job inputs must be in these buckets. */
  s3AllowedBuckets: string[] | null;
}

/** Custom rules run in worker threads with these bounds. */
export interface RuleLimits {
  /** Heap of one custom rule's worker (MB). */
  memoryMb: number;
  /** Time one custom rule may spend over one evaluation (all its calls), ms. */
  evaluationTimeoutMs: number;
  /**
   * evaluateRules queries running custom rules at once (default 1): each holds a worker per custom
   * rule, every one up to its heap limit, so side by side their peaks add up.
   */
  queryWorkers: number;
}

export interface Operations {
  /** Whether /readyz checks S3: an endpoint is set or AWS credentials are in the environment. */
  checkS3: boolean;
  /** Per-dependency timeout of a /readyz check. */
  readinessTimeoutMs: number;
  /** SIGTERM: time allowed for in-flight requests and running local jobs before the process exits anyway. */
  shutdownTimeoutMs: number;
  /** Per-attempt timeout of SageMaker API calls. */
  sagemakerTimeoutMs: number;
  /** Per-attempt timeout of S3 calls. */
  s3TimeoutMs: number;
}

export interface ApiToken {
  name: string;
  role: "reader" | "operator";
  /** sha256 of the token, hex: tokens are never kept in clear. */
  sha256: string;
}

export interface Config {
  port: number;
  host: string;
  dataDir: string;
  region: string;
  s3Endpoint: string | null;
  s3MaxConcurrency: number;
  sagemakerEndpoint: string | null;
  sagemakerEnabled: boolean;
  sagemakerRoleArn: string | null;
  sagemakerOutputPath: string | null;
  redisUrl: string | null;
  redisPrefix: string;
  /** PostgreSQL for the service's state; null: SQLite in the data directory. */
  databaseUrl: string | null;
  /** Lease period (ms): rule evaluation moves to another instance, and a silent instance is dead, after about this long. */
  leaseMs: number;
  /** Local jobs trained at once per instance; more wait in a queue. */
  maxLocalJobs: number;
  /** Evaluations kept per rule besides its status changes; 0 keeps no history. */
  ruleHistoryLimit: number;
  /** Events kept for subscriptions to resume after a cursor: for this long (ms), and at most this many. */
  eventRetentionMs: number;
  eventRetentionCount: number;
  pollIntervalMs: number;
  valueCacheBytes: number;
  xgboostLib: string | null;
  rulesDir: string | null;
  webhookUrl: string | null;
  apiTokens: ApiToken[];
  allowUnauthenticated: boolean;
  introspection: boolean;
  /** Execute queries compiled by graphql-jit (false: graphql-js's execute). */
  graphqlJit: boolean;
  logLevel: string;
  /** pretty: one readable line per entry (a terminal); json: one JSON object per line (log collectors). */
  logFormat: LogFormat;
  limits: Limits;
  exposure: Exposure;
  rules: RuleLimits;
  ops: Operations;
}

/** Every bad variable at once; the service does not start (exit code 2). */
export class ConfigError extends StartupError {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join("\n  - ")}`, 2);
    this.name = "ConfigError";
  }
}

/** `stdoutIsTTY` picks the default LOG_FORMAT: pretty on a terminal, JSON otherwise. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, { stdoutIsTTY = Boolean(process.stdout.isTTY) } = {}): Config {
  const problems: string[] = [];
  const str = (name: string, fallback: string | null = null): string | null => {
    const v = env[name];
    return v === undefined || v.trim() === "" ? fallback : v.trim();
  };
  const int = (name: string, fallback: number, min: number, max: number): number => {
    const raw = str(name);
    if (raw === null) return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) {
      problems.push(`${name}=${JSON.stringify(raw)}: expected an integer from ${min} to ${max}`);
      return fallback;
    }
    return n;
  };
  const bool = (name: string, fallback: boolean): boolean => {
    const raw = str(name);
    if (raw === null) return fallback;
    if (/^(1|true|yes|on)$/i.test(raw)) return true;
    if (/^(0|false|no|off)$/i.test(raw)) return false;
    problems.push(`${name}=${JSON.stringify(raw)}: expected true or false`);
    return fallback;
  };
  const url = (name: string, schemes: string[]): string | null => {
    const raw = str(name);
    if (raw === null) return null;
    try {
      const u = new URL(raw);
      if (!schemes.includes(u.protocol)) throw new Error();
      return raw;
    } catch {
      problems.push(`${name}=${JSON.stringify(withoutPassword(raw))}: expected a URL (${schemes.map((s) => s + "//…").join(" or ")})`);
      return null;
    }
  };

  const list = (name: string, item: RegExp, what: string, lower = true): string[] | null => {
    const raw = str(name);
    if (raw === null) return null;
    const items = raw.split(",").map((x) => (lower ? x.trim().toLowerCase() : x.trim())).filter(Boolean);
    for (const x of items) if (!item.test(x)) problems.push(`${name}: ${JSON.stringify(x)} is not ${what}`);
    return items;
  };
  const HOST_ITEM = /^(\*|\*\.[a-z0-9.-]+|[a-z0-9.-]+|\[[0-9a-f:.]+\])(:\d{1,5})?$/;

  const host = str("HOST", "127.0.0.1")!;
  if (!/^[A-Za-z0-9.:\-\[\]]+$/.test(host)) problems.push(`HOST=${JSON.stringify(host)}: expected a host name or IP address`);

  const s3OutputPath = str("TRIALGRAPH_SAGEMAKER_OUTPUT_PATH");
  if (s3OutputPath && !/^s3:\/\/[a-z0-9.\-]{3,63}(\/.*)?$/.test(s3OutputPath)) {
    problems.push(`TRIALGRAPH_SAGEMAKER_OUTPUT_PATH=${JSON.stringify(s3OutputPath)}: expected s3://bucket/prefix`);
  }
  const roleArn = str("TRIALGRAPH_SAGEMAKER_ROLE_ARN");
  if (roleArn && !/^arn:aws[a-z-]*:iam::\d{12}:role\/.+$/.test(roleArn)) {
    problems.push(`TRIALGRAPH_SAGEMAKER_ROLE_ARN=${JSON.stringify(roleArn)}: expected arn:aws:iam::<12 digits>:role/<name>`);
  }

  const apiTokens: ApiToken[] = [];
  const tokensRaw = str("TRIALGRAPH_API_TOKENS");
  if (tokensRaw) {
    for (const entry of tokensRaw.split(",").map((s) => s.trim()).filter(Boolean)) {
      const [name, role, ...rest] = entry.split(":");
      const token = rest.join(":");
      if (!name || (role !== "reader" && role !== "operator") || token.length < 16) {
        problems.push(`TRIALGRAPH_API_TOKENS: entry "${name ?? ""}:…" must be name:reader|operator:<token of 16+ characters> (or name:role:sha256=<hex>)`);
        continue;
      }
      const hashed = /^sha256=([0-9a-f]{64})$/i.exec(token);
      apiTokens.push({ name, role, sha256: hashed ? hashed[1].toLowerCase() : sha256Hex(token) });
    }
  }

  const sagemakerEndpoint = url("TRIALGRAPH_SAGEMAKER_ENDPOINT", ["http:", "https:"]);
  const config: Config = {
    port: int("PORT", 4000, 0, 65535),
    host,
    dataDir: path.resolve(str("TRIALGRAPH_DATA_DIR", "./data")!),
    region: str("AWS_REGION", str("AWS_DEFAULT_REGION", "us-east-1"))!,
    s3Endpoint: url("TRIALGRAPH_S3_ENDPOINT", ["http:", "https:"]),
    s3MaxConcurrency: int("TRIALGRAPH_S3_MAX_CONCURRENCY", 32, 1, 512),
    sagemakerEndpoint,
    // SageMaker is on when pointed at an endpoint or given AWS credentials; otherwise jobs run locally.
    sagemakerEnabled: bool("TRIALGRAPH_SAGEMAKER_ENABLED", Boolean(sagemakerEndpoint || env.AWS_ACCESS_KEY_ID || env.AWS_PROFILE)),
    sagemakerRoleArn: roleArn,
    sagemakerOutputPath: s3OutputPath,
    redisUrl: url("TRIALGRAPH_REDIS_URL", ["redis:", "rediss:"]),
    redisPrefix: str("TRIALGRAPH_REDIS_PREFIX", "trialgraph")!,
    databaseUrl: url("TRIALGRAPH_DATABASE_URL", ["postgres:", "postgresql:"]),
    leaseMs: int("TRIALGRAPH_LEASE_MS", 15_000, 300, 600_000),
    maxLocalJobs: int("TRIALGRAPH_MAX_LOCAL_JOBS", Math.max(1, os.availableParallelism()), 1, 1024),
    ruleHistoryLimit: int("TRIALGRAPH_RULE_HISTORY", 1_000, 0, 1_000_000),
    eventRetentionMs: int("TRIALGRAPH_EVENT_RETENTION_MS", 24 * 3600 * 1000, 1000, 90 * 24 * 3600 * 1000),
    eventRetentionCount: int("TRIALGRAPH_EVENT_RETENTION_COUNT", 1_000_000, 100, 1_000_000_000),
    pollIntervalMs: int("TRIALGRAPH_POLL_INTERVAL_MS", 10_000, 100, 3_600_000),
    valueCacheBytes: int("TRIALGRAPH_VALUE_CACHE_MB", 64, 0, 65_536) * 1024 * 1024,
    xgboostLib: str("TRIALGRAPH_XGBOOST_LIB"),
    rulesDir: str("TRIALGRAPH_RULES_DIR") ? path.resolve(str("TRIALGRAPH_RULES_DIR")!) : null,
    webhookUrl: url("TRIALGRAPH_WEBHOOK_URL", ["http:", "https:"]),
    apiTokens,
    allowUnauthenticated: bool("TRIALGRAPH_ALLOW_UNAUTHENTICATED", false),
    introspection: bool("TRIALGRAPH_INTROSPECTION", true),
    graphqlJit: bool("TRIALGRAPH_GRAPHQL_JIT", true),
    logLevel: str("LOG_LEVEL", "info")!,
    logFormat: (str("LOG_FORMAT") ?? (stdoutIsTTY ? "pretty" : "json")) as LogFormat,
    limits: {
      maxDepth: int("TRIALGRAPH_MAX_DEPTH", 12, 2, 100),
      maxCost: int("TRIALGRAPH_MAX_COST", 5_000_000, 100, 1_000_000_000),
      maxTokens: int("TRIALGRAPH_MAX_TOKENS", 5_000, 50, 1_000_000),
      maxAliases: int("TRIALGRAPH_MAX_ALIASES", 50, 1, 10_000),
      maxBodyBytes: int("TRIALGRAPH_MAX_BODY_BYTES", 1_000_000, 1_000, 100_000_000),
      maxValues: int("TRIALGRAPH_MAX_VALUES", 10_000_000, 1_000, 1_000_000_000),
      maxElementsRead: int("TRIALGRAPH_MAX_ELEMENTS_READ", 250_000_000, 1_000, 100_000_000_000),
      rateLimitPerMinute: int("TRIALGRAPH_RATE_LIMIT_PER_MINUTE", 0, 0, 1_000_000),
      wsMaxPayloadBytes: int("TRIALGRAPH_WS_MAX_PAYLOAD_BYTES", 1_000_000, 1_000, 100_000_000),
      connectionInitWaitTimeoutMs: int("TRIALGRAPH_WS_INIT_TIMEOUT_MS", 10_000, 100, 600_000),
      maxRequestBytes: int("TRIALGRAPH_MAX_REQUEST_MB", 256, 1, 65_536) * 1024 * 1024,
      maxInflightBytes: int("TRIALGRAPH_MAX_INFLIGHT_MB", 256, 1, 262_144) * 1024 * 1024,
      heavyCost: int("TRIALGRAPH_HEAVY_COST", 10_000, 1, 1_000_000_000),
      maxHeavyRunning: int("TRIALGRAPH_MAX_HEAVY_RUNNING", 1, 1, 1_024),
      maxHeavyQueued: int("TRIALGRAPH_MAX_HEAVY_QUEUED", 1_000, 0, 100_000),
      maxSubscriptionsPerSocket: int("TRIALGRAPH_MAX_SUBSCRIPTIONS_PER_SOCKET", 100, 1, 100_000),
      maxSubscriptionsPerCaller: int("TRIALGRAPH_MAX_SUBSCRIPTIONS_PER_CALLER", 1_000, 1, 1_000_000),
    },
    exposure: {
      allowedOrigins: list("TRIALGRAPH_ALLOWED_ORIGINS", /^(\*|https?:\/\/[a-z0-9.\-\[\]:]+)$/, "an origin (http[s]://host[:port]) or *") ?? [],
      allowedHosts: null, // set below: it depends on the bind address
      webhookAllowedHosts: list("TRIALGRAPH_WEBHOOK_ALLOWED_HOSTS", HOST_ITEM, "a host name, host:port, *.domain or *") ?? [],
      s3AllowedBuckets: list("TRIALGRAPH_S3_ALLOWED_BUCKETS", /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, "an S3 bucket name"),
    },
    rules: {
      memoryMb: int("TRIALGRAPH_RULE_MEMORY_MB", 64, 8, 16_384),
      evaluationTimeoutMs: int("TRIALGRAPH_RULE_EVALUATION_TIMEOUT_MS", 60_000, 100, 86_400_000),
      queryWorkers: int("TRIALGRAPH_RULE_QUERY_WORKERS", 1, 1, 64),
    },
    ops: {
      checkS3: bool("TRIALGRAPH_READY_CHECK_S3", Boolean(str("TRIALGRAPH_S3_ENDPOINT") || env.AWS_ACCESS_KEY_ID || env.AWS_PROFILE)),
      readinessTimeoutMs: int("TRIALGRAPH_READY_TIMEOUT_MS", 2_000, 50, 60_000),
      shutdownTimeoutMs: int("TRIALGRAPH_SHUTDOWN_TIMEOUT_MS", 30_000, 100, 600_000),
      sagemakerTimeoutMs: int("TRIALGRAPH_SAGEMAKER_TIMEOUT_MS", 30_000, 100, 600_000),
      s3TimeoutMs: int("TRIALGRAPH_S3_TIMEOUT_MS", 30_000, 100, 600_000),
    },
  };
  if (config.logFormat !== "json" && config.logFormat !== "pretty") {
    problems.push(`LOG_FORMAT=${JSON.stringify(config.logFormat)}: expected json or pretty`);
  }
  if (!["fatal", "error", "warn", "info", "debug", "trace", "silent"].includes(config.logLevel)) {
    problems.push(`LOG_LEVEL=${JSON.stringify(config.logLevel)}: expected fatal, error, warn, info, debug, trace or silent`);
  }
  const loopback = isLoopbackHost(config.host);
  // DNS rebinding: on a loopback bind only loopback names answer, unless others are configured.
  config.exposure.allowedHosts = list("TRIALGRAPH_ALLOWED_HOSTS", HOST_ITEM, "a host name, host:port, *.domain or *")
    ?? (loopback ? ["localhost", "127.*", "[::1]"] : null);
  if (config.exposure.allowedHosts?.includes("*")) config.exposure.allowedHosts = null;
  if (!loopback && config.apiTokens.length === 0 && !config.allowUnauthenticated) {
    problems.push(
      `HOST=${config.host} with no TRIALGRAPH_API_TOKENS: refusing to serve unauthenticated beyond this machine ` +
        `(set TRIALGRAPH_API_TOKENS, or TRIALGRAPH_ALLOW_UNAUTHENTICATED=true to allow it explicitly)`,
    );
  }
  if (problems.length) throw new ConfigError(problems);
  return config;
}

/** A URL as configuration messages may show it: a password in it is masked. */
function withoutPassword(raw: string): string {
  return raw.replace(/\/\/([^:/@]*):[^@/]*@/, "//$1:***@");
}

export function isLoopbackHost(host: string): boolean {
  return /^(127\.\d+\.\d+\.\d+|localhost|::1|\[::1\])$/i.test(host);
}

export function sha256Hex(s: string): string {
  return createHash("sha256").update(s).digest("hex");
}
