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
import { formatError } from "./errors.js";
import { checkOperation, isTokenLimitMessage, rateLimitKey, type RateLimiter } from "./limits.js";
import { TrialgraphError } from "../errors.js";
import type { Metrics } from "../observability/metrics.js";

/**
 * graphql-js reuses one contextValue for every event of a subscription, which would keep a
 * DataLoader cache alive across events; this re-executes each event with a fresh context.
 */
export function subscribeWithFreshContext(makeContext: (args: ExecutionArgs) => Context) {
  return async (args: ExecutionArgs) => {
    const source = await createSourceEventStream(args);
    if (!(Symbol.asyncIterator in source)) return source as ExecutionResult;
    return filterMap((source as AsyncIterable<unknown>)[Symbol.asyncIterator](), async (event) =>
      (await execute({ ...args, rootValue: event, contextValue: makeContext(args) })) as ExecutionResult);
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
}

/** WebSocket close codes graphql-ws clients understand (and do not retry blindly). */
export const WS_CLOSE = { unauthorized: 4401, forbidden: 4403 } as const;

interface Extra {
  caller?: Context["caller"];
  remoteAddress?: string;
  requestId?: string;
}

export function attachWebSocketServer(httpServer: Server, schema: GraphQLSchema, services: Services, options: WsOptions = {}): WsServerHandle {
  const { limits } = services.config;
  // Upgrades are handed over explicitly: attached with `server`, ws would also re-emit the HTTP
  // server's own errors (a taken port) as "Internal error emitted on the WebSocket server".
  const wss = new WebSocketServer({ noServer: true, path: "/graphql", maxPayload: limits.wsMaxPayloadBytes });
  httpServer.on("upgrade", (request, socket, head) => {
    wss.handleUpgrade(request, socket, head, (ws) => wss.emit("connection", ws, request));
  });
  const format = formatError(services.log);
  const rules = [...specifiedRules, ...(options.rules ?? [])];
  const { metrics, rateLimiter } = options;
  const started = new Map<string, { at: bigint; operation: string; type: string }>();
  let nextId = 0;

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
        try {
          rateLimiter?.check(rateLimitKey(caller, services.config.apiTokens.length > 0, extra.remoteAddress));
          if (typeof payload.query !== "string") throw new GraphQLError("the subscribe payload needs a query string", { extensions: { code: "BAD_USER_INPUT" } });
          try {
            document = parse(payload.query, { maxTokens: limits.maxTokens });
          } catch (e) {
            if (!(e instanceof GraphQLError)) throw e;
            throw new GraphQLError(e.message, { extensions: isTokenLimitMessage(e.message) ? { code: "LIMIT_EXCEEDED", limit: "tokens" } : { code: "GRAPHQL_PARSE_FAILED" } });
          }
          const errors = validate(schema, document, rules);
          if (errors.length) return errors.map((e) => new GraphQLError(e.message, { nodes: e.nodes, extensions: { code: "GRAPHQL_VALIDATION_FAILED" } }));
          const report = checkOperation({ schema, document, operationName: payload.operationName, variables: payload.variables, limits, caller });
          const operation = metrics?.operationLabel(payload.operationName ?? report.operation.name?.value) ?? "";
          started.set(`${extra.requestId}/${id}`, { at: process.hrtime.bigint(), operation, type: report.operation.operation });
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
          contextValue: createContext(services, caller, extra.requestId!),
        };
      },
      subscribe: subscribeWithFreshContext((args) => createContext(services, (args.contextValue as Context).caller, (args.contextValue as Context).requestId)),
      execute: (args) => execute(args),
      onNext: (_ctx, _id, _payload, _args, result) => formatResult(result as ExecutionResult, format),
      onError: (_ctx, _id, _payload, errors) => errors.map((e) => clean(format(e.toJSON(), e))),
      onComplete: (ctx, id) => {
        const key = `${(ctx.extra as unknown as Extra).requestId}/${id}`;
        const s = started.get(key);
        if (!s) return;
        started.delete(key);
        metrics?.activeSubscriptions.dec();
        metrics?.graphqlRequests.inc({ operation: s.operation, type: s.type, outcome: "ok" });
        metrics?.graphqlDuration.observe({ operation: s.operation, type: s.type }, Number(process.hrtime.bigint() - s.at) / 1e9);
      },
      onClose: (ctx) => {
        // Operations still running when the socket closes never see onComplete.
        const prefix = `${(ctx.extra as unknown as Extra).requestId}/`;
        for (const key of [...started.keys()]) {
          if (!key.startsWith(prefix)) continue;
          started.delete(key);
          metrics?.activeSubscriptions.dec();
        }
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

function formatResult(result: ExecutionResult, format: ReturnType<typeof formatError>): ExecutionResult {
  if (!result.errors?.length) return result;
  return { ...result, errors: result.errors.map((e) => clean(format(e.toJSON(), e))) as any };
}
