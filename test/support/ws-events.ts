/** graphql-ws helpers for tests: collect a subscription's results and wait for the ones a test expects. */
import { createClient, type Client } from "graphql-ws";
import WebSocket from "ws";

export interface CollectedSubscription {
  /** Every `next` payload so far, in arrival order. */
  results: any[];
  /** The stream's error (an array of GraphQL errors, or a close event), once it failed. */
  readonly error: unknown;
  /** Whether the server completed the stream. */
  readonly completed: boolean;
  /** Resolves with the first result (already received or coming) that matches; rejects after `timeoutMs` (a hang guard). */
  waitFor(match: (result: any) => boolean, what: string, timeoutMs?: number): Promise<any>;
  /**
   * Resolves with the stream's errors: an `error` message, or a result with errors and no data (how
   * graphql-ws reports a subscribe resolver that threw). Rejects after `timeoutMs`.
   */
  waitForError(timeoutMs?: number): Promise<any>;
  stop(): void;
}

export function wsClient(url: string): Client {
  return createClient({ url, webSocketImpl: WebSocket, retryAttempts: 0, lazy: true });
}

/** A client whose socket a test can cut (no close handshake), as a dropped network would. */
export function killableClient(url: string): { client: Client; kill(): void } {
  const sockets: WebSocket[] = [];
  class Tracked extends WebSocket {
    constructor(address: string, protocols?: string | string[]) {
      super(address, protocols);
      sockets.push(this);
    }
  }
  const client = createClient({ url, webSocketImpl: Tracked, retryAttempts: 0, lazy: true });
  return { client, kill: () => { for (const s of sockets) s.terminate(); } };
}

export function collect(client: Client, query: string, variables?: Record<string, unknown>): CollectedSubscription {
  const results: any[] = [];
  let error: unknown = undefined;
  let failed = false;
  let completed = false;
  const listeners = new Set<() => void>();
  const notify = () => {
    for (const l of [...listeners]) l();
  };
  const stop = client.subscribe({ query, variables }, {
    next: (value) => {
      results.push(value);
      notify();
    },
    error: (e) => {
      error = e;
      failed = true;
      notify();
    },
    complete: () => {
      completed = true;
      notify();
    },
  });
  const wait = <T>(check: () => T | undefined, what: string, timeoutMs: number): Promise<T> =>
    new Promise((resolve, reject) => {
      const listener = () => {
        const hit = check();
        if (hit !== undefined) {
          cleanup();
          resolve(hit);
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; received: ${JSON.stringify(results).slice(0, 2000)}; error: ${JSON.stringify(error)}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        listeners.delete(listener);
      };
      listeners.add(listener);
      listener();
    });
  return {
    results,
    get error() {
      return error;
    },
    get completed() {
      return completed;
    },
    waitFor: (match, what, timeoutMs = 20_000) => wait(() => results.find(match), what, timeoutMs),
    waitForError: (timeoutMs = 20_000) => wait(() => {
      if (failed) return error ?? null;
      return results.find((r) => r?.errors?.length && r.data == null)?.errors;
    }, "an error", timeoutMs),
    stop,
  };
}

/** The GraphQL errors of a subscription's error (graphql-ws passes them as an array). */
export function errorsOf(error: unknown): any[] {
  if (Array.isArray(error)) return error;
  if (error && typeof error === "object" && Array.isArray((error as any).errors)) return (error as any).errors;
  return [];
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it returns something other than undefined/false; rejects after `timeoutMs` (a hang guard). */
export async function eventually<T>(check: () => Promise<T | undefined | false> | T | undefined | false, what: string, timeoutMs = 20_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v as T;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
    await sleep(everyMs);
  }
}
