// The playground's transport: queries and mutations as HTTP POST, subscriptions over graphql-ws, both
// at /graphql on this origin, with the dashboard's API token. Whatever goes wrong comes back as a
// GraphQL result with `errors` (never a thrown Error): GraphiQL would print a thrown error with its
// JavaScript stack in the response pane.
import type { ComponentProps } from "react";
import type { GraphiQL } from "graphiql";
import { Kind, parse, type DocumentNode } from "graphql";
import { createClient, type Client } from "graphql-ws/client";
import { apiToken, GRAPHQL_PATH } from "../api";

type Fetcher = ComponentProps<typeof GraphiQL>["fetcher"];

interface ErrorShape {
  message: string;
  extensions?: Record<string, unknown>;
}
interface Params {
  query: string;
  operationName?: string | null;
  variables?: unknown;
}
interface Result {
  data?: unknown;
  errors?: ErrorShape[];
}

const failure = (message: string, code: string): Result => ({ errors: [{ message, extensions: { code } }] });

function authorization(): Record<string, string> {
  const token = apiToken();
  return token ? { authorization: `Bearer ${token}` } : {};
}

/**
 * Which operation runs, and whether it is a subscription, read from the text being sent. GraphiQL
 * re-parses the editor 100 ms after an edit, so a run right after typing may carry the previous
 * text's operation name; with one operation in the text, that operation is meant.
 */
function plan(params: Params): { operationName: string | null; subscription: boolean } {
  let document: DocumentNode;
  try {
    document = parse(params.query);
  } catch {
    return { operationName: params.operationName ?? null, subscription: false }; // the service reports the syntax error
  }
  const operations = document.definitions.filter((d) => d.kind === Kind.OPERATION_DEFINITION);
  let chosen = params.operationName ? operations.find((op) => op.name?.value === params.operationName) : undefined;
  let operationName = params.operationName ?? null;
  if (!chosen && operations.length === 1) {
    chosen = operations[0];
    operationName = chosen.name?.value ?? null;
  }
  return { operationName, subscription: chosen?.operation === "subscription" };
}

async function overHttp(params: Params, headers: Record<string, unknown>): Promise<Result> {
  let response: Response;
  try {
    response = await fetch(GRAPHQL_PATH, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/graphql-response+json, application/json",
        ...authorization(),
        ...Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, String(v)])),
      },
      body: JSON.stringify(params),
    });
  } catch (err) {
    return failure(`network error: ${(err as Error).message}`, "NETWORK_ERROR");
  }
  const text = await response.text();
  try {
    return JSON.parse(text) as Result;
  } catch {
    return failure(`HTTP ${response.status} ${response.statusText}: the response is not JSON`, `HTTP_${response.status}`);
  }
}

let wsClient: Client | undefined;
function client(): Client {
  wsClient ??= createClient({
    url: `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${GRAPHQL_PATH}`,
    lazy: true,
    connectionParams: () => authorization(),
    retryAttempts: 3,
  });
  return wsClient;
}

async function* overWebSocket(params: Params): AsyncGenerator<Result> {
  try {
    for await (const result of client().iterate({ query: params.query, operationName: params.operationName ?? undefined, variables: params.variables as Record<string, unknown> | undefined })) {
      yield result as Result;
    }
  } catch (err) {
    // graphql-ws ends a subscription with the server's GraphQL errors, or with the socket's close event.
    if (Array.isArray(err)) yield { errors: err as ErrorShape[] };
    else if (err instanceof Error) yield failure(err.message, "SUBSCRIPTION_ERROR");
    else {
      const close = err as { code?: number; reason?: string };
      yield failure(`the WebSocket closed (${close.code ?? "?"}${close.reason ? `: ${close.reason}` : ""})`, "WS_CLOSED");
    }
  }
}

// GraphiQL's types ask for GraphQLError instances; what arrives (and what it prints) is their JSON form.
export const fetcher: Fetcher = (params, opts) => {
  const { operationName, subscription } = plan(params);
  const request = { ...params, operationName };
  return (subscription ? overWebSocket(request) : overHttp(request, opts?.headers ?? {})) as ReturnType<Fetcher>;
};
