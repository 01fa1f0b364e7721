/** graphql-ws on the HTTP server's /graphql path: same schema, auth, limits and error format as HTTP. */
import type { Server } from "node:http";
import { WebSocketServer } from "ws";
import { useServer } from "graphql-ws/use/ws";
import {
  createSourceEventStream, execute, GraphQLError, specifiedRules, validate,
  type ExecutionArgs, type ExecutionResult, type GraphQLSchema, type ValidationRule,
} from "graphql";
import type { Context, Services } from "./context.js";
import { createContext } from "./context.js";
import { authenticate } from "./http-auth.js";
import { formatError } from "./errors.js";

/**
 * graphql-js reuses one contextValue for every event of a subscription, which would keep a
 * DataLoader cache alive across events; this re-executes each event with a fresh context.
 */
export function subscribeWithFreshContext(makeContext: (args: ExecutionArgs) => Context) {
  return async (args: ExecutionArgs) => {
    const source = await createSourceEventStream(args);
    if (!(Symbol.asyncIterator in source)) return source as ExecutionResult;
    const it = (source as AsyncIterable<unknown>)[Symbol.asyncIterator]();
    const out: AsyncIterableIterator<ExecutionResult> = {
      async next() {
        const r = await it.next();
        if (r.done) return { done: true, value: undefined };
        return { done: false, value: (await execute({ ...args, rootValue: r.value, contextValue: makeContext(args) })) as ExecutionResult };
      },
      async return() {
        await it.return?.();
        return { done: true, value: undefined };
      },
      async throw(e) {
        await it.return?.();
        throw e;
      },
      [Symbol.asyncIterator]() {
        return out;
      },
    };
    return out;
  };
}

export interface WsServerHandle {
  dispose(): Promise<void>;
  readonly clients: number;
}

export function attachWebSocketServer(httpServer: Server, schema: GraphQLSchema, services: Services, rules: ValidationRule[]): WsServerHandle {
  const { limits } = services.config;
  const wss = new WebSocketServer({ server: httpServer, path: "/graphql", maxPayload: limits.wsMaxPayloadBytes });
  const format = formatError(services.log);
  let nextId = 0;
  const handle = useServer<Record<string, unknown>, { caller?: Context["caller"] }>(
    {
      schema,
      connectionInitWaitTimeout: limits.connectionInitWaitTimeoutMs,
      onConnect: (ctx) => {
        try {
          const header = (ctx.connectionParams?.authorization ?? ctx.connectionParams?.Authorization) as string | undefined;
          ctx.extra.caller = authenticate(services.config, header);
          return true;
        } catch {
          return false; // graphql-ws closes with 4403 Forbidden
        }
      },
      context: (ctx) => createContext(services, (ctx.extra as any).caller, `ws-${++nextId}`),
      subscribe: subscribeWithFreshContext((args) => createContext(services, (args.contextValue as Context).caller, (args.contextValue as Context).requestId)),
      execute: (args) => execute(args),
      validate: (schema, document) => validate(schema, document, [...specifiedRules, ...rules]),
      onNext: (_ctx, _id, _payload, _args, result) => formatResult(result as ExecutionResult, format),
      onError: (_ctx, _id, _payload, errors) => errors.map((e) => format(e.toJSON(), e)),
    },
    wss,
  );
  return {
    async dispose() {
      await handle.dispose();
      wss.close();
    },
    get clients() {
      return wss.clients.size;
    },
  };
}

function formatResult(result: ExecutionResult, format: ReturnType<typeof formatError>): ExecutionResult {
  if (!result.errors?.length) return result;
  return { ...result, errors: result.errors.map((e) => format(e.toJSON(), e)) as any };
}

