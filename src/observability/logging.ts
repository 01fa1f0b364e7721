/**
 * Structured request logging: every HTTP request gets a request id (the caller's X-Request-Id when it
 * is a sane token, otherwise a fresh UUID), echoed in the response and carried by a child logger.
 */
import { randomUUID } from "node:crypto";
import type { NextFunction, Request, Response } from "express";
import type { Logger } from "pino";
import type { Metrics } from "./metrics.js";

const REQUEST_ID = /^[A-Za-z0-9._:\-]{1,128}$/;

/** A caller-supplied id when it is safe to log and echo; a new one otherwise. */
export function requestIdFrom(header: string | string[] | undefined): string {
  const v = Array.isArray(header) ? header[0] : header;
  return v && REQUEST_ID.test(v) ? v : randomUUID();
}

declare module "express-serve-static-core" {
  interface Request {
    id: string;
    log: Logger;
  }
}

/** Express middleware: request id, child logger, one access-log line and an HTTP metric per request. */
export function requestLogging(log: Logger, metrics: Metrics) {
  return (req: Request, res: Response, next: NextFunction) => {
    const started = process.hrtime.bigint();
    // req.path is relative to a router's mount point by the time the response finishes.
    const fullPath = req.originalUrl.split("?")[0];
    req.id = requestIdFrom(req.headers["x-request-id"]);
    req.log = log.child({ reqId: req.id });
    res.setHeader("X-Request-Id", req.id);
    res.on("finish", () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const route = routeOf(fullPath);
      metrics.httpRequests.inc({ route, status: String(res.statusCode) });
      // Probes and scrapes are frequent and a 503 from /readyz is a state, not a failure.
      const level = route === "/healthz" || route === "/readyz" || route === "/metrics" ? "debug" : res.statusCode >= 500 ? "error" : "info";
      req.log[level]({ method: req.method, path: fullPath, status: res.statusCode, ms: Math.round(ms * 10) / 10 }, "request");
    });
    next();
  };
}

function routeOf(p: string): string {
  if (p === "/graphql" || p === "/healthz" || p === "/readyz" || p === "/metrics") return p;
  return "static";
}
