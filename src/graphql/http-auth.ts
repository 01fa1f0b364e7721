/** Bearer tokens from TRIALGRAPH_API_TOKENS (kept as sha256 only), for HTTP and graphql-ws alike. */
import { timingSafeEqual } from "node:crypto";
import { sha256Hex, type Config } from "../config.js";
import { TrialgraphError } from "../errors.js";
import type { Caller } from "./context.js";

/** With no tokens configured the service only listens on loopback, and every caller may operate. */
export function authenticate(config: Config, authorization: string | undefined | null): Caller {
  if (config.apiTokens.length === 0) return { name: "local", role: "operator" };
  const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? "");
  if (!m) throw new TrialgraphError("UNAUTHENTICATED", "send an API token as 'Authorization: Bearer <token>'");
  const digest = Buffer.from(sha256Hex(m[1]), "hex");
  for (const t of config.apiTokens) {
    if (timingSafeEqual(digest, Buffer.from(t.sha256, "hex"))) return { name: t.name, role: t.role };
  }
  throw new TrialgraphError("UNAUTHENTICATED", "unknown API token");
}
