/**
 * What a web page in the user's browser may do with the service: nothing, unless it is the
 * service's own page or a listed origin.
 *   - Origin: a request (HTTP or a WebSocket upgrade) whose Origin is not the host it came to, nor
 *     in TRIALGRAPH_ALLOWED_ORIGINS, is refused. No Origin (curl, SDKs, servers) is allowed:
 *     browsers always send one on cross-origin requests and WebSocket upgrades.
 *   - Host: on a loopback bind only loopback names answer (localhost, 127.x, [::1]), so a page that
 *     rebinds its own DNS name to 127.0.0.1 gets nothing (DNS rebinding). TRIALGRAPH_ALLOWED_HOSTS
 *     lists others.
 *   - Security headers: no framing, no MIME sniffing, no referrer; a CSP allowing same-origin
 *     scripts only, on every page (the dashboard, the playground, the job report).
 */
import type { IncomingMessage } from "node:http";
import type { NextFunction, Request, Response } from "express";
import type { Exposure } from "../config.js";
import { hostAllowed } from "../host-allow-list.js";

export interface Refusal {
  status: number;
  message: string;
}

/** Why a browser-facing request must be refused, or null when it may go on. */
export function checkBrowserRequest(headers: IncomingMessage["headers"], exposure: Exposure): Refusal | null {
  const host = headers.host;
  if (host !== undefined && exposure.allowedHosts && !hostAllowed(host, exposure.allowedHosts)) {
    return {
      status: 403,
      message: `host name ${JSON.stringify(host.slice(0, 100))} is not served here (loopback names only; TRIALGRAPH_ALLOWED_HOSTS lists others)`,
    };
  }
  const origin = headers.origin;
  if (origin === undefined) return null;
  if (exposure.allowedOrigins.includes("*")) return null;
  let originHost: string | null = null;
  let normalized = origin.toLowerCase();
  try {
    const u = new URL(origin);
    originHost = u.host.toLowerCase();
    normalized = u.origin.toLowerCase();
  } catch {
    // "null" (sandboxed frames, file: pages) and garbage are foreign
  }
  if (originHost !== null && host !== undefined && originHost === host.trim().toLowerCase()) return null;
  if (exposure.allowedOrigins.includes(normalized)) return null;
  return {
    status: 403,
    message: `requests from the web origin ${JSON.stringify(origin.slice(0, 100))} are refused (TRIALGRAPH_ALLOWED_ORIGINS lists the origins allowed)`,
  };
}

/** Express middleware: refuses foreign origins and unknown host names with a JSON 403. */
export function browserGuard(exposure: Exposure) {
  return (req: Request, res: Response, next: NextFunction) => {
    const refusal = checkBrowserRequest(req.headers, exposure);
    if (!refusal) return next();
    // The body is not read, only drained, so the client sees the 403 rather than a reset connection.
    req.resume();
    res.status(refusal.status).json({ errors: [{ message: refusal.message, extensions: { code: "FORBIDDEN" } }] });
  };
}

/** Same-origin scripts and styles only; no framing, no plugins, no base or form tricks. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  // The dashboard's charts set element styles; styles cannot run code.
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  // 'self' covers ws:/wss: to the same host in current browsers.
  "connect-src 'self'",
  "worker-src 'self' blob:",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

/** Express middleware: security headers on every response. */
export function securityHeaders() {
  return (_req: Request, res: Response, next: NextFunction) => {
    res.setHeader("Content-Security-Policy", CONTENT_SECURITY_POLICY);
    res.setHeader("X-Content-Type-Options", "nosniff");
    res.setHeader("Referrer-Policy", "no-referrer");
    res.setHeader("X-Frame-Options", "DENY");
    res.setHeader("Cross-Origin-Opener-Policy", "same-origin");
    next();
  };
}
