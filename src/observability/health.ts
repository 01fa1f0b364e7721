/**
 * Readiness: can the service reach what it is configured to use? Its database (SELECT 1), S3
 * (ListBuckets), SageMaker (ListTrainingJobs MaxResults 1) and Redis (PING), each with a short timeout,
 * checked in parallel.
 * A dependency that answers with an authorization or throttling error is reachable; one that does
 * not answer, refuses the connection or fails with a server error is not.
 */
import type { S3Client } from "@aws-sdk/client-s3";
import type { SageMakerClient } from "@aws-sdk/client-sagemaker";
import type { Redis } from "ioredis";
import { s3Sdk } from "../storage/s3-client.js";

export interface DependencyStatus {
  ok: boolean;
  ms: number;
  detail?: string;
}

export interface Readiness {
  ready: boolean;
  checks: Record<string, DependencyStatus>;
}

export interface ReadinessOptions {
  /** The S3 client to check, made (and its SDK loaded) by the first check. */
  s3?: { get(): S3Client } | null;
  sagemaker?: SageMakerClient | null;
  redisUrl?: string | null;
  /** Reaches the service's database (throws when it cannot). */
  database?: (() => Promise<void>) | null;
  timeoutMs?: number;
}

/** AWS answers that prove the endpoint is up, even though the call itself was refused. */
const REACHABLE_ERRORS = /^(AccessDenied|AccessDeniedException|ThrottlingException|Throttling|SlowDown|TooManyRequestsException)$/;

export class ReadinessChecker {
  private redis: Redis | null = null;
  private readonly timeoutMs: number;

  constructor(private readonly options: ReadinessOptions) {
    this.timeoutMs = options.timeoutMs ?? 2_000;
    if (options.redisUrl) {
      // Its own connection: the event bus's clients queue or drop commands by design while reconnecting.
      // (ioredis is loaded only when Redis is configured.)
      const { Redis } = require("ioredis") as typeof import("ioredis");
      this.redis = new Redis(options.redisUrl, {
        lazyConnect: true,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        connectTimeout: this.timeoutMs,
        retryStrategy: () => null,
      });
      this.redis.on("error", () => {
        // Reported by check(); an unhandled 'error' event would crash the process.
      });
    }
  }

  async check(): Promise<Readiness> {
    const checks: Record<string, DependencyStatus> = {};
    const jobs: Promise<void>[] = [];
    const run = (name: string, fn: (signal: AbortSignal) => Promise<string | undefined>) => {
      jobs.push(
        (async () => {
          const started = Date.now();
          const ac = new AbortController();
          const timer = setTimeout(() => ac.abort(), this.timeoutMs);
          try {
            const detail = await Promise.race([
              fn(ac.signal),
              new Promise<never>((_, reject) => ac.signal.addEventListener("abort", () => reject(new Error(`no answer within ${this.timeoutMs} ms`)))),
            ]);
            checks[name] = { ok: true, ms: Date.now() - started, ...(detail ? { detail } : {}) };
          } catch (e) {
            checks[name] = { ok: false, ms: Date.now() - started, detail: describe(e) };
          } finally {
            clearTimeout(timer);
          }
        })(),
      );
    };
    const { s3, sagemaker } = this.options;
    if (s3) run("s3", (signal) => awsReachable(() => s3.get().send(new (s3Sdk().ListBucketsCommand)({}), { abortSignal: signal })));
    // Loaded here, not at start: a service without SageMaker never loads its SDK.
    if (sagemaker) run("sagemaker", (signal) => awsReachable(async () => sagemaker.send(new (await import("@aws-sdk/client-sagemaker")).ListTrainingJobsCommand({ MaxResults: 1 }), { abortSignal: signal })));
    if (this.redis) run("redis", () => this.pingRedis());
    const database = this.options.database;
    if (database) run("database", async () => { await database(); return undefined; });
    await Promise.all(jobs);
    return { ready: Object.values(checks).every((c) => c.ok), checks };
  }

  private async pingRedis(): Promise<undefined> {
    const r = this.redis!;
    if (r.status !== "ready") {
      // Start over: a half-open attempt from an earlier check must not make connect() refuse.
      r.disconnect();
      await r.connect();
    }
    const pong = await r.ping();
    if (pong !== "PONG") throw new Error(`PING answered ${pong}`);
    return undefined;
  }

  close(): void {
    this.redis?.disconnect();
  }
}

async function awsReachable(call: () => Promise<unknown>): Promise<string | undefined> {
  try {
    await call();
    return undefined;
  } catch (e) {
    const name = (e as { name?: string }).name ?? "";
    if (REACHABLE_ERRORS.test(name)) return `reachable (${name})`;
    throw e;
  }
}

function describe(e: unknown): string {
  const err = e as { name?: string; message?: string; code?: string; $metadata?: { httpStatusCode?: number } };
  const status = err.$metadata?.httpStatusCode ? ` (HTTP ${err.$metadata.httpStatusCode})` : "";
  const text = `${err.name && err.name !== "Error" ? err.name + ": " : ""}${err.message || err.code || String(e)}`;
  return (text + status).slice(0, 300);
}
