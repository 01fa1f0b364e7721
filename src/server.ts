/**
 * The HTTP + WebSocket server: GraphQL over POST /graphql and graphql-ws on the same path, the
 * offline playground at GET /graphql, the dashboard at /, a job's report at GET /jobs/<name>/report.html,
 * liveness at /healthz, readiness at
 * /readyz, Prometheus metrics at /metrics. SIGTERM drains: readiness turns 503, new connections
 * are refused, in-flight requests finish, sockets close with 1001, local jobs stop and are recorded.
 */
// First: the modules below load through the compile cache.
import "./compile-cache.js";
import "reflect-metadata";
import http from "node:http";
import path from "node:path";
import express, { type NextFunction, type Request, type Response } from "express";
import { ApolloServer, type ApolloServerPlugin } from "@apollo/server";
import { ApolloServerPluginDrainHttpServer } from "@apollo/server/plugin/drainHttpServer";
import { ApolloServerPluginCacheControlDisabled, ApolloServerPluginLandingPageDisabled } from "@apollo/server/plugin/disabled";
import { GraphQLError, type GraphQLSchema } from "graphql";
import pino, { type Logger } from "pino";
import { loadConfig, type Config } from "./config.js";
import { checkPortFree, listen, StartupError } from "./startup.js";
import { createLogger } from "./observability/logger.js";
import { createApp, type App } from "./app.js";
import { createSchema } from "./graphql/schema.js";
import { createContext, type Context, type Services } from "./graphql/context.js";
import { formatError, isExpectedError, logUnexpected, toGraphQLError, withRequestId } from "./graphql/errors.js";
import { attachWebSocketServer } from "./graphql/ws.js";
import { createJitExecutor, type JitExecutor } from "./graphql/jit.js";
import { JsonStringifier } from "./graphql/json.js";
import { DocumentStore } from "./graphql/document-store.js";
import { serviceValidationRules } from "./graphql/validation.js";
import { graphqlHttpHandler, stringifyResultAsBytes } from "./graphql/http.js";
import type { GatewayInterface } from "@apollo/server-gateway-interface";
import { authenticate } from "./graphql/http-auth.js";
import { AdmissionQueue, checkAgainstTrials, CheckedOperations, rateLimitKey, RateLimiter, relabelTokenLimit } from "./graphql/limits.js";
import { TrialgraphError } from "./errors.js";
import { createMetrics, instrumentS3Client, type Metrics } from "./observability/metrics.js";
import { requestLogging } from "./observability/logging.js";
import { ReadinessChecker } from "./observability/health.js";
import { webAssets } from "./web-assets.js";
import { browserGuard, securityHeaders } from "./graphql/browser-guard.js";
import { jobReportHandler } from "./report/route.js";
import { warmUp } from "./warm-up.js";

export interface RunningServer {
  url: string;
  port: number;
  config: Config;
  log: Logger;
  metrics: Metrics;
  /** The long-lived services (benchmarks publish events through them). */
  services: App["services"];
  /** Graceful stop: refuse new work, finish what runs, close subscriptions (1001), stop local jobs. */
  close(): Promise<void>;
}

const WEB_ROOT = path.resolve(__dirname, __dirname.includes(`${path.sep}dist${path.sep}`) ? "../web" : "../dist/web");

/** Counts, times and limit-checks every HTTP GraphQL operation; heavy ones wait for a slot of `heavy`. */
function limitsAndMetricsPlugin(config: Config, metrics: Metrics, log: Logger, heavy: AdmissionQueue): ApolloServerPlugin<Context> {
  const checked = new CheckedOperations();
  return {
    async requestDidStart({ contextValue }) {
      const started = process.hrtime.bigint();
      let operation = "anonymous";
      let type = "unknown";
      return {
        async didResolveOperation({ request, document, schema, contextValue, operation: op }) {
          operation = metrics.operationLabel(request.operationName ?? op?.name?.value);
          type = op?.operation ?? "unknown";
          if (type === "subscription") {
            throw new GraphQLError("subscriptions run over graphql-ws: open a WebSocket to this same /graphql URL", { extensions: { code: "BAD_USER_INPUT", http: { status: 400 } } });
          }
          try {
            const check = { schema, document, operationName: request.operationName, variables: request.variables, limits: config.limits, caller: contextValue.caller };
            const report = checked.check(check);
            // Judged again on every request: the trials it names may have grown since.
            const { heavy: isHeavy } = checkAgainstTrials(check, report, (path, filter) => contextValue.services.trials.opened(path)?.size(filter) ?? null);
            if (isHeavy) contextValue.heavySlot.release = await heavy.enter(contextValue.signal);
          } catch (e) {
            if (e instanceof GraphQLError && e.extensions.code === "LIMIT_EXCEEDED") {
              metrics.limitRejections.inc({ code: "LIMIT_EXCEEDED", limit: String(e.extensions.limit ?? "unknown") });
            }
            throw e;
          }
        },
        async didEncounterErrors({ errors }) {
          for (const e of errors) if (!isExpectedError(e)) logUnexpected(log, contextValue?.requestId ?? "unknown", e);
        },
        async willSendResponse({ response, errors }) {
          contextValue?.answered?.();
          // Answers made outside the HTTP handler (in-process callers) give the slot back here.
          if (contextValue && !contextValue.heavySlot.untilWritten) giveBackHeavySlot(contextValue);
          // Generic internal errors name the request id, so a report can be matched with the log.
          if (response.body.kind === "single" && response.body.singleResult.errors) {
            response.body.singleResult.errors = withRequestId(response.body.singleResult.errors, contextValue?.requestId ?? "unknown");
          }
          const first = errors?.[0];
          const code = first ? String((first.extensions?.code as string | undefined) ?? (first.originalError as { code?: string } | undefined)?.code ?? "ERROR") : "ok";
          metrics.graphqlRequests.inc({ operation, type, outcome: code });
          metrics.graphqlDuration.observe({ operation, type }, Number(process.hrtime.bigint() - started) / 1e9);
          // A refused mutation has no data at all: say so with the status too.
          if (response.body.kind === "single" && response.body.singleResult.data == null && errors?.length && errors.every((e) => codeOf(e) === "FORBIDDEN")) {
            response.http.status = 403;
          }
        },
      };
    },
  };
}

/** Serves the schema as it is and executes operations through the compiled-query executor. */
function jitGateway(schema: GraphQLSchema, jit: JitExecutor): GatewayInterface {
  return {
    onSchemaLoadOrUpdate(callback) {
      callback({ apiSchema: schema, coreSupergraphSdl: "" });
      return () => {};
    },
    async load() {
      return {
        executor: (rc) => jit.execute({ document: rc.document, operationName: rc.operationName, contextValue: rc.context, variableValues: rc.request.variables }),
      };
    },
    async stop() {},
  };
}

function giveBackHeavySlot(context: Context): void {
  const { release } = context.heavySlot;
  context.heavySlot.release = null;
  release?.();
}

function codeOf(e: GraphQLError): string | undefined {
  const original = e.originalError;
  if (original instanceof TrialgraphError) return original.code;
  return e.extensions?.code as string | undefined;
}

export async function startServer(config: Config, log: Logger = pino({ level: config.logLevel })): Promise<RunningServer> {
  // Before anything is written (the example trial, job records): a taken port refuses the start cleanly.
  await checkPortFree(config.port, config.host);
  const app = await createApp(config, log);
  const { services } = app;
  const heavy = new AdmissionQueue(config.limits.maxHeavyRunning, config.limits.maxHeavyQueued);
  const metrics = createMetrics({
    heavyOperations: () => heavy.load,
    valueCache: () => ({ hits: services.trials.cache.hits, misses: services.trials.cache.misses }),
    runningJobs: async () => {
      const page = await services.jobs.list({ first: 100, status: "IN_PROGRESS", backend: "LOCAL" });
      return { LOCAL: page.nodes.length };
    },
  });
  app.clients.s3.onMade((client) => instrumentS3Client(client, metrics));
  countRuleEvaluations(services, metrics);
  const readiness = new ReadinessChecker({
    s3: config.ops.checkS3 ? app.clients.s3 : null,
    sagemaker: app.clients.sagemaker,
    redisUrl: config.redisUrl,
    database: () => app.store.ping(),
    timeoutMs: config.ops.readinessTimeoutMs,
  });
  const rateLimiter = new RateLimiter(config.limits.rateLimitPerMinute);
  const schema = await createSchema();

  const expressApp = express();
  expressApp.disable("x-powered-by");
  // No ETag on res.send bodies: GraphQL answers are POSTs nobody revalidates, and hashing a bulk answer
  // (SHA-1 of 7-12 MB) cost ~5 ms a request. A function keeps ETags on for files (sendFile computes
  // its own from the file's size and time).
  expressApp.set("etag", () => undefined);
  const httpServer = http.createServer(expressApp);
  const ws = attachWebSocketServer(httpServer, schema, services, { metrics, rateLimiter, heavy });
  let draining = false;
  const format = formatError({ hideSchemaHints: !config.introspection });

  const jit = createJitExecutor(schema);
  const json = new JsonStringifier();
  const apollo = new ApolloServer<Context>({
    // Apollo's "gateway" is its one documented hook for another executor: compiled queries (graphql-jit).
    ...(config.graphqlJit ? { gateway: jitGateway(schema, jit) } : { schema }),
    // Introspection is refused by serviceValidationRules, as on the WebSocket (Apollo's own switch would
    // refuse it over HTTP only), and the schema hints go with formatError's hideSchemaHints.
    introspection: true,
    validationRules: serviceValidationRules(config.introspection),
    includeStacktraceInErrorResponses: false,
    maxRecursiveSelections: true,
    // main() owns SIGTERM: Apollo's own handler would stop only itself and then re-send the signal.
    stopOnTerminationSignals: false,
    parseOptions: { maxTokens: config.limits.maxTokens },
    // Parsed documents, and with them their compiled queries, bounded by their text.
    documentStore: new DocumentStore(),
    // Long number lists (series) are serialized once and their bytes reused; the answer's bytes go
    // straight to the HTTP handler (one answer per request: HTTP batching stays off).
    stringifyResult: stringifyResultAsBytes((value) => json.toChunks(value), (value) => json.stringify(value)),
    formatError: (formatted, error) => relabelTokenLimit(format(formatted, error)),
    plugins: [
      ApolloServerPluginDrainHttpServer({ httpServer, stopGracePeriodMillis: config.ops.shutdownTimeoutMs }),
      ApolloServerPluginLandingPageDisabled(),
      // No HTTP cache hints are used; the plugin would otherwise wrap every field resolver.
      ApolloServerPluginCacheControlDisabled(),
      limitsAndMetricsPlugin(config, metrics, log, heavy),
      // Subscriptions go first, so their clients see 1001 Going Away while HTTP requests finish.
      { async serverWillStart() { return { async drainServer() { await ws.dispose(); } }; } },
    ],
  });
  await apollo.start();

  expressApp.use(requestLogging(log, metrics));
  // Before any route: security headers everywhere, and no answer to foreign web pages or rebound host names.
  expressApp.use(securityHeaders(), browserGuard(config.exposure));
  expressApp.get("/healthz", (_req, res) => {
    res.json({
      status: draining ? "draining" : "ok",
      events: services.events.health(),
      database: { engine: app.store.database.engine, reachable: app.store.database.available },
      instance: app.instanceId,
    });
  });
  expressApp.get("/readyz", async (_req, res) => {
    if (draining) {
      res.status(503).json({ ready: false, reason: "shutting down", checks: {} });
      return;
    }
    const r = await readiness.check();
    res.status(r.ready ? 200 : 503).json(r);
  });
  expressApp.get("/metrics", async (req, res, next) => {
    try {
      // With tokens configured, scrapers authenticate like any client (Prometheus: authorization.credentials).
      authenticate(config, req.headers.authorization);
    } catch (e) {
      res.status(401).json({ errors: [{ message: (e as Error).message, extensions: { code: "UNAUTHENTICATED" } }] });
      return;
    }
    try {
      res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
    } catch (e) {
      next(e);
    }
  });
  const web = webAssets(WEB_ROOT);
  // A browser asking for /graphql gets the playground; every other client gets GraphQL.
  expressApp.get("/graphql", (req, res, next) => {
    res.vary("Accept");
    if (req.accepts(["application/json", "application/graphql-response+json", "text/html"]) !== "text/html") return next();
    web.sendPage("playground.html", req, res, (err?: unknown) => {
      if (err) return next(err);
      res.status(404).json({ errors: [{ message: "the playground is not built: run `npm run build`", extensions: { code: "NOT_FOUND" } }] });
    });
  });
  /** The caller's context: token, then rate limit. Throws TrialgraphError or a LimitError. */
  const requestContext = (req: Request, signal?: AbortSignal): Context => {
    try {
      const caller = authenticate(config, req.headers.authorization);
      rateLimiter.check(rateLimitKey(caller, config.apiTokens.length > 0, req.socket.remoteAddress));
      return createContext(services, caller, req.id, signal);
    } catch (e) {
      if (e instanceof GraphQLError && e.extensions.code === "RATE_LIMITED") metrics.limitRejections.inc({ code: "RATE_LIMITED", limit: "rate" });
      throw e;
    }
  };
  expressApp.use(
    "/graphql",
    express.json({ limit: config.limits.maxBodyBytes }),
    graphqlHttpHandler(apollo, {
      context: async ({ req, res, left }) => {
        try {
          const context = requestContext(req, left);
          context.heavySlot.untilWritten = true;
          // The client left: reads stop and work nobody waits for (custom rules) is cancelled. The
          // answer's memory goes back to the pool once execution is over and the response is closed.
          if (left.aborted) context.budget.cancel();
          else left.addEventListener("abort", () => context.budget.cancel(), { once: true });
          let executed = false;
          let closed = false;
          context.answered = () => {
            executed = true;
            if (closed) context.budget.release();
          };
          const onClose = () => {
            closed = true;
            if (executed) context.budget.release();
          };
          if (res.destroyed) onClose();
          else res.once("close", onClose);
          return context;
        } catch (e) {
          throw e instanceof TrialgraphError ? toGraphQLError(e) : e;
        }
      },
      // A heavy operation's slot is held until its answer has been handed over (or dropped).
      written: giveBackHeavySlot,
    }),
  );
  // The job report: the same schema and context as /graphql, executed in process.
  expressApp.get("/jobs/:name/report.html", jobReportHandler({ schema, context: requestContext, log }));
  expressApp.use(web.serve);
  expressApp.use((req: Request, res: Response) => {
    res.status(404).json({ errors: [{ message: `nothing at ${req.method} ${req.path.slice(0, 200)}`, extensions: { code: "NOT_FOUND" } }] });
  });
  // Body-parser and other middleware errors: JSON, never Express's HTML page.
  expressApp.use((err: any, req: Request, res: Response, _next: NextFunction) => {
    const status = typeof err?.status === "number" && err.status >= 400 && err.status < 600 ? err.status : 500;
    const code = status === 413 ? "LIMIT_EXCEEDED" : status < 500 ? "BAD_REQUEST" : "INTERNAL_SERVER_ERROR";
    const message = status === 413 ? `request body larger than ${config.limits.maxBodyBytes} bytes` : status < 500 ? "malformed request" : "internal error";
    if (status >= 500) (req.log ?? log).error({ err }, "request failed");
    if (status === 413) metrics.limitRejections.inc({ code, limit: "body" });
    if (res.headersSent) return void res.end();
    res.status(status).json({ errors: [{ message, extensions: { code } }] });
  });

  await warmUp(apollo, () => createContext(services, { name: "start-up warm-up", role: "reader" }, "warm-up"), log);

  try {
    // The port was free a moment ago; another process may have taken it since.
    await listen(httpServer, config.port, config.host);
  } catch (e) {
    await apollo.stop().catch(() => undefined);
    readiness.close();
    await app.close();
    throw e;
  }
  const address = httpServer.address() as import("node:net").AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const base = `http://${host}:${address.port}`;
  const url = `${base}/graphql`;
  if (config.apiTokens.length === 0) {
    log.warn({ host: config.host }, config.allowUnauthenticated
      ? "no TRIALGRAPH_API_TOKENS: every caller is an operator (TRIALGRAPH_ALLOW_UNAUTHENTICATED=true)"
      : "no TRIALGRAPH_API_TOKENS: listening on loopback only, every local caller is an operator");
  }
  log.info(
    {
      url, dataDir: config.dataDir, backends: services.jobs.configured(), auth: config.apiTokens.length ? `${config.apiTokens.length} tokens` : "none",
      database: app.store.database.location, instance: app.instanceId,
    },
    `trialgraph listening: dashboard ${base}/ · GraphQL and playground ${url}`,
  );

  let closing: Promise<void> | null = null;
  return {
    url,
    port: address.port,
    config,
    log,
    metrics,
    services: app.services,
    close() {
      closing ??= (async () => {
        draining = true;
        await apollo.stop();
        readiness.close();
        await app.close();
      })();
      return closing;
    },
  };
}

/** Counts on-demand evaluations (evaluateRules) by outcome, and the engine's background status changes. */
function countRuleEvaluations(services: Services, metrics: Metrics): void {
  const rules = services.rules;
  const evaluate = rules.evaluate.bind(rules);
  rules.evaluate = async (p, specs, opts) => {
    try {
      const results = await evaluate(p, specs, opts);
      for (const r of results) metrics.ruleEvaluations.inc({ outcome: String((r as { status?: string }).status ?? "done") });
      return results;
    } catch (e) {
      metrics.ruleEvaluations.inc({ outcome: "error" });
      throw e;
    }
  };
}

async function main(): Promise<void> {
  let config: Config;
  let log: Logger;
  let server: RunningServer;
  try {
    config = loadConfig();
    log = createLogger(config.logLevel, config.logFormat);
    server = await startServer(config, log);
  } catch (e) {
    // What the operator must fix: one line, no stack trace (ConfigError lists each bad variable).
    if (e instanceof StartupError) {
      process.stderr.write(`trialgraph: ${e.message}\n`);
      process.exit(e.exitCode);
    }
    throw e;
  }
  let signalled = false;
  const shutdown = (signal: string) => {
    // A repeat while draining changes nothing; the deadline below bounds the wait.
    if (signalled) return;
    signalled = true;
    log.info({ signal, timeoutMs: config.ops.shutdownTimeoutMs }, "shutting down");
    // Past the deadline, exit anyway: job records then say IN_PROGRESS and the next start marks them FAILED.
    const deadline = setTimeout(() => {
      log.error("shutdown did not finish in time; exiting");
      process.exit(1);
    }, config.ops.shutdownTimeoutMs + 5_000);
    // Deliberately not unref'd: some close steps wait on unref'd timers, and an empty event loop would exit mid-shutdown.
    void deadline;
    void server.close().then(
      () => {
        log.info("shut down cleanly");
        log.flush?.();
        process.exit(0);
      },
      (err) => {
        log.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
