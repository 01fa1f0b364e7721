/**
 * Prometheus metrics, one registry per server (tests run several servers in one process): GraphQL
 * requests and latencies by operation, S3 requests and bytes, value-cache hits, subscriptions,
 * running jobs, rule evaluations, limit breaches, and the process's own metrics.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { S3Client } from "@aws-sdk/client-s3";

/** Operation names are client-chosen: keep the label set bounded. */
const MAX_OPERATION_NAMES = 200;

export interface Metrics {
  registry: Registry;
  graphqlRequests: Counter<"operation" | "type" | "outcome">;
  graphqlDuration: Histogram<"operation" | "type">;
  httpRequests: Counter<"route" | "status">;
  s3Requests: Counter<"operation" | "outcome">;
  s3GetBytes: Counter<string>;
  activeSubscriptions: Gauge<string>;
  wsConnections: Gauge<string>;
  limitRejections: Counter<"code" | "limit">;
  ruleEvaluations: Counter<"outcome">;
  /** A label value for an operation name: the name itself for the first few hundred, then "other". */
  operationLabel(name: string | null | undefined): string;
}

export interface MetricsSources {
  /** The trial value cache's counters. */
  valueCache?: () => { hits: number; misses: number };
  /** Jobs currently running, by backend. */
  runningJobs?: () => Promise<Record<string, number>>;
  /** Heavy GraphQL operations executing and waiting for a slot (graphql/limits.ts AdmissionQueue). */
  heavyOperations?: () => { running: number; waiting: number };
}

export function createMetrics(sources: MetricsSources = {}): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "trialgraph_" });
  const known = new Set<string>();

  const metrics: Metrics = {
    registry,
    graphqlRequests: new Counter({
      name: "trialgraph_graphql_requests_total",
      help: "GraphQL operations by name, type (query, mutation, subscription) and outcome (ok or the first error code)",
      labelNames: ["operation", "type", "outcome"],
      registers: [registry],
    }),
    graphqlDuration: new Histogram({
      name: "trialgraph_graphql_request_duration_seconds",
      help: "Time from receiving a GraphQL operation to its response",
      labelNames: ["operation", "type"],
      buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    httpRequests: new Counter({
      name: "trialgraph_http_requests_total",
      help: "HTTP requests by route and status",
      labelNames: ["route", "status"],
      registers: [registry],
    }),
    s3Requests: new Counter({
      name: "trialgraph_s3_requests_total",
      help: "S3 operations sent (after retries), by operation and outcome",
      labelNames: ["operation", "outcome"],
      registers: [registry],
    }),
    s3GetBytes: new Counter({
      name: "trialgraph_s3_get_bytes_total",
      help: "Bytes received in GetObject responses",
      registers: [registry],
    }),
    activeSubscriptions: new Gauge({
      name: "trialgraph_active_subscriptions",
      help: "graphql-ws operations currently running (subscriptions and queries over WebSocket)",
      registers: [registry],
    }),
    wsConnections: new Gauge({
      name: "trialgraph_ws_connections",
      help: "Open graphql-ws connections",
      registers: [registry],
    }),
    limitRejections: new Counter({
      name: "trialgraph_limit_rejections_total",
      help: "Requests refused by a limit, by error code and limit",
      labelNames: ["code", "limit"],
      registers: [registry],
    }),
    ruleEvaluations: new Counter({
      name: "trialgraph_rule_evaluations_total",
      help: "Rule evaluations run by the service's rule engine, by outcome",
      labelNames: ["outcome"],
      registers: [registry],
    }),
    operationLabel(name) {
      if (!name) return "anonymous";
      if (!/^[_A-Za-z][_0-9A-Za-z]{0,63}$/.test(name)) return "other";
      if (known.has(name)) return name;
      if (known.size >= MAX_OPERATION_NAMES) return "other";
      known.add(name);
      return name;
    },
  };

  if (sources.valueCache) {
    const read = sources.valueCache;
    new Gauge({
      name: "trialgraph_value_cache_hits",
      help: "Tensor value cache hits since start",
      registers: [registry],
      collect() {
        this.set(read().hits);
      },
    });
    new Gauge({
      name: "trialgraph_value_cache_misses",
      help: "Tensor value cache misses since start",
      registers: [registry],
      collect() {
        this.set(read().misses);
      },
    });
    new Gauge({
      name: "trialgraph_value_cache_hit_ratio",
      help: "Tensor value cache hits / lookups since start (0 before the first lookup)",
      registers: [registry],
      collect() {
        const { hits, misses } = read();
        this.set(hits + misses > 0 ? hits / (hits + misses) : 0);
      },
    });
  }
  if (sources.runningJobs) {
    const read = sources.runningJobs;
    new Gauge({
      name: "trialgraph_running_jobs",
      help: "Training jobs in progress, by backend",
      labelNames: ["backend"],
      registers: [registry],
      async collect() {
        this.reset();
        try {
          for (const [backend, n] of Object.entries(await read())) this.set({ backend }, n);
        } catch {
          // A backend that cannot be listed right now reports nothing rather than failing the scrape.
        }
      },
    });
  }
  if (sources.heavyOperations) {
    const read = sources.heavyOperations;
    new Gauge({
      name: "trialgraph_heavy_operations",
      help: "Heavy GraphQL operations (estimated cost at least TRIALGRAPH_HEAVY_COST) executing, and waiting for a slot",
      labelNames: ["state"],
      registers: [registry],
      collect() {
        const { running, waiting } = read();
        this.set({ state: "running" }, running);
        this.set({ state: "waiting" }, waiting);
      },
    });
  }
  return metrics;
}

/**
 * Counts every S3 operation the client sends and the bytes of GetObject bodies, through an SDK
 * middleware (so every source sharing the client is covered).
 */
export function instrumentS3Client(client: S3Client, metrics: Metrics): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const operation = String((context as { commandName?: string }).commandName ?? "unknown").replace(/Command$/, "");
      try {
        const out = await next(args);
        metrics.s3Requests.inc({ operation, outcome: "ok" });
        if (operation === "GetObject") {
          const length = Number((out.output as { ContentLength?: number }).ContentLength ?? 0);
          if (Number.isFinite(length) && length > 0) metrics.s3GetBytes.inc(length);
        }
        return out;
      } catch (e) {
        metrics.s3Requests.inc({ operation, outcome: (e as { name?: string }).name ?? "error" });
        throw e;
      }
    },
    { step: "initialize", name: "trialgraphMetrics", override: true },
  );
}
