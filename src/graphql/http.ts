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

/** Where Apollo's stringifyResult leaves the bytes of the answer being made for this request. */
const answerBytes = new AsyncLocalStorage<{ chunks: Buffer[] | null }>();

/**
 * Apollo's stringifyResult: inside a request of `graphqlHttpHandler`, the answer's bytes go to the
 * handler (Apollo gets an empty string it passes on unread); anywhere else, the JSON text.
 */
export function stringifyResultAsBytes(toChunks: (value: unknown) => Buffer[], toText: (value: unknown) => string): (value: unknown) => Promise<string> {
  return async (value) => {
    const slot = answerBytes.getStore();
    if (!slot) return toText(value);
    slot.chunks = toChunks(value);
    return "";
  };
}

export function graphqlHttpHandler<C extends BaseContext>(apollo: ApolloServer<C>, options: { context: (args: { req: Request; res: Response }) => Promise<C> }) {
  apollo.assertStarted("graphqlHttpHandler()");
  const answer = async (req: Request, res: Response) => {
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
    const slot = { chunks: null as Buffer[] | null };
    const response = await answerBytes.run(slot, () =>
      apollo.executeHTTPGraphQLRequest({
        httpGraphQLRequest: { method: req.method.toUpperCase(), headers, search: q < 0 ? "" : url.slice(q), body: req.body },
        context: () => options.context({ req, res }),
      }),
    );
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
    answer(req, res).catch(next);
  };
}
