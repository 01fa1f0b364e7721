/**
 * GraphQL over HTTP for Express: Apollo's HTTP entry point, with the answer written as bytes made
 * by the response serializer (src/graphql/json.ts).
 *
 * It does what @as-integrations/express5 did (the request's headers, query string and parsed body
 * to Apollo; Apollo's status, headers and body back) except for the body: that package hands the
 * JSON text to res.send, which encodes it to UTF-8 (~30-50 ms for the 7 MB answer of a whole trial
 * as series) and copies it. Here the serializer writes the bytes itself, number lists from
 * their cached bytes, and they are sent as they are.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { NextFunction, Request, Response } from "express";
import { HeaderMap, type ApolloServer, type BaseContext } from "@apollo/server";
import { afterPendingIO } from "./limits.js";

/** The answer being made for one request: its bytes, once serialized, and whether its client left. */
interface AnswerSlot {
  chunks: Buffer[] | null;
  gone: AbortSignal;
  /** performance.now() when the request reached the handler. */
  startedAt: number;
}

/**
 * A request answered within this time had no long stretch that could hide a closed connection: its
 * answer is serialized without waiting for the event loop to poll first.
 */
const POLL_BEFORE_SERIALIZING_AFTER_MS = 10;

/**
 * Aborts when the client of `req` is gone: the connection closed before the answer was complete,
 * or the client ended its side (Node's server then gives up the request too). Listeners go when
 * the response is closed.
 */
function clientLeft(req: Request, res: Response): AbortSignal {
  const left = new AbortController();
  const socket = req.socket;
  const leave = () => left.abort();
  if (res.destroyed || socket.destroyed || socket.readableEnded) {
    left.abort();
    return left.signal;
  }
  socket.once("end", leave);
  res.once("close", () => {
    socket.off("end", leave);
    if (!res.writableFinished) left.abort();
  });
  return left.signal;
}

/** Where Apollo's stringifyResult leaves the bytes of the answer being made for this request. */
const answerBytes = new AsyncLocalStorage<AnswerSlot>();

/**
 * Apollo's stringifyResult: inside a request of `graphqlHttpHandler`, the answer's bytes go to the
 * handler (Apollo gets an empty string it passes on unread); anywhere else, the JSON text.
 * A client that left is not answered: execution may have run without a pause, so after a long
 * request the event loop polls once first to learn of a closed connection, and nothing is
 * serialized for it.
 */
export function stringifyResultAsBytes(toChunks: (value: unknown) => Buffer[], toText: (value: unknown) => string): (value: unknown) => Promise<string> {
  return async (value) => {
    const slot = answerBytes.getStore();
    if (!slot) return toText(value);
    if (performance.now() - slot.startedAt > POLL_BEFORE_SERIALIZING_AFTER_MS) await afterPendingIO();
    if (!slot.gone.aborted) slot.chunks = toChunks(value);
    return "";
  };
}

export interface HttpHandlerOptions<C> {
  /** `left` aborts when the client is gone (see clientLeft). */
  context: (args: { req: Request; res: Response; left: AbortSignal }) => Promise<C>;
  /** The whole answer was handed to the connection (or its client had left): what it held may be given back. */
  written?: (context: C) => void;
}

export function graphqlHttpHandler<C extends BaseContext>(apollo: ApolloServer<C>, options: HttpHandlerOptions<C>) {
  apollo.assertStarted("graphqlHttpHandler()");
  const handle = async (req: Request, res: Response) => {
    if (!("body" in req)) {
      res.status(500).send("`req.body` is not set: the json middleware must come before the GraphQL handler.");
      return;
    }
    const headers = new HeaderMap();
    for (const key in req.headers) {
      const value = req.headers[key];
      if (value !== undefined) headers.set(key, Array.isArray(value) ? value.join(", ") : value);
    }
    const url = req.url;
    const q = url.indexOf("?");
    const slot: AnswerSlot = { chunks: null, gone: clientLeft(req, res), startedAt: performance.now() };
    let context: C | null = null;
    try {
      await answer(req, res, slot, headers, q < 0 ? "" : url.slice(q), async () => (context = await options.context({ req, res, left: slot.gone })));
    } finally {
      if (context) options.written?.(context);
    }
  };
  const answer = async (req: Request, res: Response, slot: AnswerSlot, headers: HeaderMap, search: string, context: () => Promise<C>) => {
    const response = await answerBytes.run(slot, () =>
      apollo.executeHTTPGraphQLRequest({
        httpGraphQLRequest: { method: req.method.toUpperCase(), headers, search, body: req.body },
        context,
      }),
    );
    if (slot.gone.aborted) return;
    for (const [key, value] of response.headers) res.setHeader(key, value);
    res.statusCode = response.status || 200;
    if (response.body.kind === "complete") {
      const chunks = slot.chunks ?? [Buffer.from(response.body.string)];
      let length = 0;
      for (const c of chunks) length += c.length;
      res.setHeader("Content-Length", length);
      if (req.method === "HEAD" || length === 0) res.end();
      else if (chunks.length === 1) res.end(chunks[0]);
      else {
        // Corked: the chunks leave in one writev, the headers with them.
        res.cork();
        for (const c of chunks) res.write(c);
        res.end();
        res.uncork();
      }
      return;
    }
    // Incremental delivery (@defer, multipart): chunk by chunk, as Apollo makes them.
    for await (const chunk of response.body.asyncIterator) res.write(chunk);
    res.end();
  };
  return (req: Request, res: Response, next: NextFunction) => {
    handle(req, res).catch(next);
  };
}
