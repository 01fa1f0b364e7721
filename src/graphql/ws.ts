/**
 * graphql-ws on the HTTP server's /graphql path: same schema, auth, limits and error format as HTTP.
 * Authentication happens once, at connection_init (connectionParams.authorization = "Bearer <token>");
 * a missing or unknown token closes the socket with 4401 and the reason. Every subscribe message is
 * parsed with the token limit, validated, checked against the limits and the rate limit, and counted.
 */
import { filterMap } from "../events/iterators.js";
import type { Server } from "node:http";
import { WebSocketServer } from "ws";
import { useServer } from "graphql-ws/use/ws";
import {
  createSourceEventStream, execute, GraphQLError, parse, specifiedRules, validate,
  type DocumentNode, type ExecutionArgs, type ExecutionResult, type GraphQLFormattedError, type GraphQLSchema, type ValidationRule,
} from "graphql";
import type { Context, Services } from "./context.js";
import { createContext } from "./context.js";
import { authenticate } from "./http-auth.js";
import { formatError, isExpectedError, logUnexpected, withRequestId } from "./errors.js";
import { checkAgainstTrials, CheckedOperations, isTokenLimitMessage, rateLimitKey, type AdmissionQueue, type RateLimiter } from "./limits.js";
import { TrialgraphError } from "../errors.js";
import type { Metrics } from "../observability/metrics.js";
import { checkBrowserRequest } from "./browser-guard.js";
import { boundedDocuments } from "./document-store.js";
import { serviceValidationRules } from "./validation.js";

/**
 * graphql-js reuses one contextValue for every event of a subscription, which would keep a
 * DataLoader cache alive across events; this re-executes each event with a fresh context.
 */
export function subscribeWithFreshContext(makeContext: (args: ExecutionArgs) => Context) {
  return async (args: ExecutionArgs) => {
    const source = await createSourceEventStream(args);
    if (!(Symbol.asyncIterator in source)) return source as ExecutionResult;
    return filterMap((source as AsyncIterable<unknown>)[Symbol.asyncIterator](), async (event) => {
      const contextValue = makeContext(args);
      try {
        return (await execute({ ...args, rootValue: event, contextValue })) as ExecutionResult;
      } finally {
        contextValue.budget.release();
      }
    });
  };
}

export interface WsServerHandle {
  /** Closes every connection with 1001 Going Away and stops accepting new ones. */
  dispose(): Promise<void>;
  readonly clients: number;
}

export interface WsOptions {
  rules?: ValidationRule[];
  metrics?: Metrics;
  rateLimiter?: RateLimiter;
  /** Heavy queries and mutations wait for one of its slots, as over HTTP. */
  heavy?: AdmissionQueue;
}

/** WebSocket close codes graphql-ws clients understand (and do not retry blindly). */
export const WS_CLOSE = { unauthorized: 4401, forbidden: 4403 } as const;

interface Extra {
  caller?: Context["caller"];
  remoteAddress?: string;
  requestId?: string;
  /** Operations running on this socket. */
  operations?: number;
}

export function attachWebSocketServer(httpServer: Server, schema: GraphQLSchema, services: Services, options: WsOptions = {}): WsServerHandle {
  const { limits } = services.config;
  // Upgrades are handed over explicitly: attached with `server`, ws would also re-emit the HTTP
  // server's own errors (a taken port) as "Internal error emitted on the WebSocket server".
  const wss = new WebSocketServer({
    noServer: true,
    path: "/graphql",
    maxPayload: limits.wsMaxPayloadBytes,
    // A web page on another origin (or a rebound host name) gets no socket: it could start jobs.
    verifyClient: ({ req }, done) => {
      const refusal = checkBrowserRequest(req.headers, services.config.exposure);
      if (refusal) done(false, refusal.status, refusal.message);
      else done(true);
    },
  });
  httpServer.on("upgrade", (request, socket, head) => {
    wss.handleUpgrade(request, socket, head, (ws) => wss.emit("connection", ws, request));
  });
  const formatOne = formatError({ hideSchemaHints: !services.config.introspection });
  /** Formats a result's errors; unexpected ones are logged with the operation's request id. */
  const format = (errors: readonly GraphQLError[], requestId: string): GraphQLFormattedError[] => {
    for (const e of errors) if (!isExpectedError(e)) logUnexpected(services.log, requestId, e);
    return withRequestId(errors.map((e) => clean(formatOne(e.toJSON(), e))), requestId);
  };
  const rules = [...specifiedRules, ...serviceValidationRules(services.config.introspection), ...(options.rules ?? [])];
  /**
   * Documents that parsed and validated, by their text: clients subscribe with the same few queries,
   * and validating one was half of a subscribe's CPU (Apollo keeps HTTP's the same way).
   */
  const validated = boundedDocuments();
  const checked = new CheckedOperations();
  const { metrics, rateLimiter, heavy } = options;
  /** Operations running, by socket request id and operation id. */
  const started = new Map<string, { at: bigint; operation: string; type: string; callerKey: string; controller: AbortController; context: Context }>();
  /** Operations running per caller (token name, or address without tokens), across sockets. */
  const perCaller = new Map<string, number>();
  /** Queries and mutations that take a slot of `heavy` to execute. */
  const heavyOperations = new WeakSet<Context>();
  let nextId = 0;
  const finish = (key: string, extra: Extra) => {
    const s = started.get(key);
    if (!s) return null;
    started.delete(key);
    extra.operations = Math.max(0, (extra.operations ?? 1) - 1);
    const n = (perCaller.get(s.callerKey) ?? 1) - 1;
    if (n > 0) perCaller.set(s.callerKey, n);
    else perCaller.delete(s.callerKey);
    s.controller.abort();
    // A query still executing stops reading; its execute() releases the budget when it returns.
    s.context.budget.cancel();
    if (s.type === "subscription") s.context.budget.release();
    metrics?.activeSubscriptions.dec();
    return s;
  };

  wss.on("connection", (socket) => {
    metrics?.wsConnections.inc();
    socket.once("close", () => metrics?.wsConnections.dec());
  });

  const handle = useServer<Record<string, unknown>, Record<PropertyKey, unknown>>(
    {
      schema,
      connectionInitWaitTimeout: limits.connectionInitWaitTimeoutMs,
      onConnect: (ctx) => {
        const extra = ctx.extra as unknown as Extra & { socket: import("ws").WebSocket; request: import("node:http").IncomingMessage };
        extra.remoteAddress = extra.request.socket.remoteAddress;
        extra.requestId = `ws-${++nextId}`;
        try {
          const header = (ctx.connectionParams?.authorization ?? ctx.connectionParams?.Authorization) as unknown;
          extra.caller = authenticate(services.config, typeof header === "string" ? header : undefined);
          return true;
        } catch (e) {
          const code = e instanceof TrialgraphError && e.code === "FORBIDDEN" ? WS_CLOSE.forbidden : WS_CLOSE.unauthorized;
          const reason = `${code === WS_CLOSE.forbidden ? "Forbidden" : "Unauthorized"}: ${(e as Error).message}`;
          // A close reason may be at most 123 bytes.
          extra.socket.close(code, Buffer.from(reason).subarray(0, 123).toString());
          return false; // graphql-ws then tries 4403, which the already-closing socket ignores
        }
      },
      onSubscribe: (ctx, id, payload) => {
        const extra = ctx.extra as unknown as Extra;
        const caller = extra.caller!;
        let document: DocumentNode;
        const callerKey = rateLimitKey(caller, services.config.apiTokens.length > 0, extra.remoteAddress);
        try {
          rateLimiter?.check(callerKey);
          // Every open subscription holds memory until it ends: a socket, and a caller across sockets, may hold only so many.
          if ((extra.operations ?? 0) >= limits.maxSubscriptionsPerSocket) {
            throw new GraphQLError(`this socket already runs ${limits.maxSubscriptionsPerSocket} operations (TRIALGRAPH_MAX_SUBSCRIPTIONS_PER_SOCKET); complete some first`, { extensions: { code: "LIMIT_EXCEEDED", limit: "subscriptions" } });
          }
          if ((perCaller.get(callerKey) ?? 0) >= limits.maxSubscriptionsPerCaller) {
            throw new GraphQLError(`${caller.name} already runs ${limits.maxSubscriptionsPerCaller} operations across its sockets (TRIALGRAPH_MAX_SUBSCRIPTIONS_PER_CALLER); complete some first`, { extensions: { code: "LIMIT_EXCEEDED", limit: "subscriptions" } });
          }
          if (typeof payload.query !== "string") throw new GraphQLError("the subscribe payload needs a query string", { extensions: { code: "BAD_USER_INPUT" } });
          const known = validated.get(payload.query);
          if (known) document = known;
          else {
            try {
              document = parse(payload.query, { maxTokens: limits.maxTokens });
            } catch (e) {
              if (!(e instanceof GraphQLError)) throw e;
              throw new GraphQLError(e.message, { extensions: isTokenLimitMessage(e.message) ? { code: "LIMIT_EXCEEDED", limit: "tokens" } : { code: "GRAPHQL_PARSE_FAILED" } });
            }
            const errors = validate(schema, document, rules);
            if (errors.length) return errors.map((e) => new GraphQLError(e.message, { nodes: e.nodes, extensions: { code: "GRAPHQL_VALIDATION_FAILED" } }));
            validated.set(payload.query, document);
          }
          const check = { schema, document, operationName: payload.operationName, variables: payload.variables, limits, caller };
          const report = checked.check(check);
          const { heavy: isHeavy } = checkAgainstTrials(check, report, (path, filter) => services.trials.opened(path)?.size(filter) ?? null);
          const operation = metrics?.operationLabel(payload.operationName ?? report.operation.name?.value) ?? "";
          const controller = new AbortController();
          const context = createContext(services, caller, `${extra.requestId}/${id}`, controller.signal);
          if (isHeavy) heavyOperations.add(context);
          started.set(`${extra.requestId}/${id}`, { at: process.hrtime.bigint(), operation, type: report.operation.operation, callerKey, controller, context });
          extra.operations = (extra.operations ?? 0) + 1;
          perCaller.set(callerKey, (perCaller.get(callerKey) ?? 0) + 1);
          metrics?.activeSubscriptions.inc();
        } catch (e) {
          if (e instanceof GraphQLError) {
            const code = String(e.extensions?.code ?? "BAD_USER_INPUT");
            if (code === "LIMIT_EXCEEDED" || code === "RATE_LIMITED") metrics?.limitRejections.inc({ code, limit: String(e.extensions?.limit ?? code.toLowerCase()) });
            metrics?.graphqlRequests.inc({ operation: metrics.operationLabel(payload.operationName), type: "ws", outcome: code });
            return [e];
          }
          throw e;
        }
        return {
          schema,
          document,
          operationName: payload.operationName,
          variableValues: payload.variables,
          contextValue: started.get(`${extra.requestId}/${id}`)!.context,
        };
      },
      subscribe: subscribeWithFreshContext((args) => {
        const c = args.contextValue as Context;
        return createContext(services, c.caller, c.requestId, c.signal);
      }),
      execute: async (args) => {
        const context = args.contextValue as Context;
        let release: (() => void) | null = null;
        try {
          if (heavy && heavyOperations.has(context)) release = await heavy.enter(context.signal);
          return await execute(args);
        } catch (e) {
          if (e instanceof GraphQLError) return { errors: [e] };
          throw e;
        } finally {
          release?.();
          context.budget.release();
        }
      },
      onNext: (ctx, id, _payload, _args, result) => {
        const r = result as ExecutionResult;
        return r.errors?.length ? { ...r, errors: format(r.errors, `${(ctx.extra as unknown as Extra).requestId}/${id}`) as any } : r;
      },
      onError: (ctx, id, _payload, errors) => format(errors, `${(ctx.extra as unknown as Extra).requestId}/${id}`),
      onComplete: (ctx, id) => {
        const extra = ctx.extra as unknown as Extra;
        const s = finish(`${extra.requestId}/${id}`, extra);
        if (!s) return;
        metrics?.graphqlRequests.inc({ operation: s.operation, type: s.type, outcome: "ok" });
        metrics?.graphqlDuration.observe({ operation: s.operation, type: s.type }, Number(process.hrtime.bigint() - s.at) / 1e9);
      },
      onClose: (ctx) => {
        // Operations still running when the socket closes never see onComplete.
        const extra = ctx.extra as unknown as Extra;
        const prefix = `${extra.requestId}/`;
        for (const key of [...started.keys()]) if (key.startsWith(prefix)) finish(key, extra);
      },
    },
    wss,
  );
  return {
    async dispose() {
      await handle.dispose();
    },
    get clients() {
      return wss.clients.size;
    },
  };
}

/** The http extension steers Apollo's status code; it means nothing on a socket. */
function clean(e: GraphQLFormattedError): GraphQLFormattedError {
  const ext = e.extensions as Record<string, unknown> | undefined;
  if (!ext || !("http" in ext)) return e;
  const { http: _http, ...rest } = ext;
  return { ...e, extensions: rest };
}
