// The dashboard's only way to talk to the service: GraphQL over HTTP POST for queries and
// mutations, graphql-ws for subscriptions, both at /graphql on the same origin.
import { createClient, type Client } from "graphql-ws/client";

export interface GraphQLErrorShape {
  message: string;
  path?: ReadonlyArray<string | number>;
  extensions?: { code?: string; [key: string]: unknown };
}

/** A request that came back with GraphQL errors (or failed at the transport). */
export class GraphQLRequestError extends Error {
  readonly errors: GraphQLErrorShape[];
  constructor(errors: GraphQLErrorShape[]) {
    super(errors.map((e) => `${e.message}${e.extensions?.code ? ` [${e.extensions.code}]` : ""}`).join("; "));
    this.name = "GraphQLRequestError";
    this.errors = errors;
  }
  get codes(): string[] {
    return this.errors.map((e) => String(e.extensions?.code ?? "")).filter(Boolean);
  }
}

export const GRAPHQL_PATH = "/graphql";

// A service with TRIALGRAPH_API_TOKENS wants a bearer token; the dashboard keeps one in localStorage.
const TOKEN_KEY = "trialgraph.apiToken";
export function apiToken(): string | null {
  try {
    return localStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}
export function setApiToken(token: string | null): void {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

/**
 * The service refused our token (or we sent none): one place hears about it, however many
 * queries and subscriptions were refused, and asks for a token once.
 */
const authListeners = new Set<(message: string) => void>();
export function onAuthRequired(listener: (message: string) => void): () => void {
  authListeners.add(listener);
  return () => authListeners.delete(listener);
}
function authRequired(message: string): void {
  for (const l of authListeners) l(message);
}

export function isAuthError(err: unknown): boolean {
  return err instanceof GraphQLRequestError && err.errors.length > 0 && err.codes.length === err.errors.length && err.codes.every((c) => c === "UNAUTHENTICATED");
}

/** The job report the server renders (src/report/route.ts). */
export function reportPath(jobName: string, download = false): string {
  return `/jobs/${encodeURIComponent(jobName)}/report.html${download ? "?download=1" : ""}`;
}

/** A GET of this service with the token, for what a plain link cannot authenticate (the report). */
export async function fetchAuthorized(path: string): Promise<Response> {
  const token = apiToken();
  const response = await fetch(path, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  if (response.status === 401) authRequired("the report needs an API token");
  return response;
}

export async function gql<T>(query: string, variables: Record<string, unknown> = {}, signal?: AbortSignal): Promise<T> {
  let response: Response;
  try {
    response = await fetch(GRAPHQL_PATH, {
      method: "POST",
      // application/json is what Apollo's CSRF prevention expects from a browser client.
      headers: {
        "content-type": "application/json",
        accept: "application/graphql-response+json, application/json",
        ...(apiToken() ? { authorization: `Bearer ${apiToken()}` } : {}),
      },
      body: JSON.stringify({ query, variables }),
      signal,
    });
  } catch (err) {
    if ((err as Error).name === "AbortError") throw err;
    throw new GraphQLRequestError([{ message: `Network error: ${(err as Error).message}`, extensions: { code: "NETWORK_ERROR" } }]);
  }
  let body: { data?: T | null; errors?: GraphQLErrorShape[] } | undefined;
  try {
    body = (await response.json()) as typeof body;
  } catch {
    throw new GraphQLRequestError([
      { message: `HTTP ${response.status} ${response.statusText}: response is not JSON`, extensions: { code: `HTTP_${response.status}` } },
    ]);
  }
  if (body?.errors?.length) {
    const err = new GraphQLRequestError(body.errors);
    if (isAuthError(err)) authRequired(err.errors[0].message);
    throw err;
  }
  if (!response.ok || body?.data == null) {
    throw new GraphQLRequestError([{ message: `HTTP ${response.status}: no data`, extensions: { code: `HTTP_${response.status}` } }]);
  }
  return body.data;
}

export type ConnectionState = "idle" | "connecting" | "connected" | "reconnecting" | "closed";
const connectionListeners = new Set<(s: ConnectionState) => void>();
let connectionState: ConnectionState = "idle";
function setConnectionState(s: ConnectionState): void {
  connectionState = s;
  for (const l of connectionListeners) l(s);
}
export function onConnectionState(listener: (s: ConnectionState) => void): () => void {
  connectionListeners.add(listener);
  listener(connectionState);
  return () => connectionListeners.delete(listener);
}

/** Called each time the socket becomes connected after this call (first connect and reconnects). */
export function onConnected(listener: () => void): () => void {
  let previous = connectionState;
  return onConnectionState((state) => {
    if (state === "connected" && previous !== "connected") listener();
    previous = state;
  });
}

/** The service closes a socket without a valid token with 4401 (src/graphql/ws.ts). */
const WS_UNAUTHORIZED = 4401;

let wsClient: Client | undefined;

/**
 * Drops the WebSocket so the next subscription connects again, sending the current token. The
 * caller re-subscribes (the router re-renders the view).
 */
export function resetConnection(): void {
  const old = wsClient;
  wsClient = undefined;
  void old?.dispose();
  setConnectionState("idle");
}
function client(): Client {
  if (!wsClient) {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    wsClient = createClient({
      url: `${scheme}://${location.host}${GRAPHQL_PATH}`,
      lazy: true,
      connectionParams: () => {
        const token = apiToken();
        return token ? { authorization: `Bearer ${token}` } : {};
      },
      lazyCloseTimeout: 3000,
      keepAlive: 15000,
      // A dashboard should outlive server restarts: keep retrying (with graphql-ws's backoff).
      retryAttempts: Number.MAX_SAFE_INTEGER,
      shouldRetry: () => true,
      on: {
        connecting: (isRetry) => setConnectionState(isRetry ? "reconnecting" : "connecting"),
        connected: () => setConnectionState("connected"),
        closed: (event) => {
          setConnectionState("closed");
          const close = event as { code?: number; reason?: string };
          if (close?.code === WS_UNAUTHORIZED) authRequired(close.reason || "the live connection needs an API token");
        },
      },
    });
  }
  return wsClient;
}

/**
 * Subscribe; returns the unsubscribe function. onError receives GraphQL errors of the
 * subscription itself (they end it); transport drops are retried by the client.
 */
export function subscribe<T>(
  query: string,
  variables: Record<string, unknown>,
  onData: (data: T) => void,
  onError: (err: GraphQLRequestError) => void,
  options: { cursor?: (data: T) => string | null | undefined } = {},
): () => void {
  // graphql-ws sends this payload again on every reconnect: keeping the newest eventId in its
  // variables (as `after`) makes the resubscription resume where the stream stopped, so what
  // happened while the socket was down arrives, once, instead of being lost.
  const payload = { query, variables: { ...variables } };
  return client().subscribe<T>(
    payload,
    {
      next: (result) => {
        if (result.errors?.length) onError(new GraphQLRequestError(result.errors as GraphQLErrorShape[]));
        if (result.data) {
          const cursor = options.cursor?.(result.data as T);
          if (cursor) payload.variables.after = cursor;
          onData(result.data as T);
        }
      },
      error: (err) => {
        if (Array.isArray(err)) onError(new GraphQLRequestError(err as GraphQLErrorShape[]));
        else if (err instanceof Error) onError(new GraphQLRequestError([{ message: err.message, extensions: { code: "SUBSCRIPTION_ERROR" } }]));
        else {
          const ev = err as { code?: number; reason?: string };
          // Refused for want of a token: the one token prompt says so, not every subscription.
          if (ev.code === WS_UNAUTHORIZED) return;
          onError(new GraphQLRequestError([{ message: `Live connection closed (${ev.code ?? "?"}${ev.reason ? `: ${ev.reason}` : ""})`, extensions: { code: "WS_CLOSED" } }]));
        }
      },
      complete: () => undefined,
    },
  );
}
