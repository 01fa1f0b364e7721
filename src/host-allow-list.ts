/**
 * Host allow-lists (TRIALGRAPH_ALLOWED_HOSTS for Host headers, TRIALGRAPH_WEBHOOK_ALLOWED_HOSTS for
 * rule webhooks). Entries: a name ("hooks.example.com", any port), name:port, "*.example.com"
 * (any subdomain), "127.*" (any 127.x address), "[::1]".
 */

/** host and port of "host[:port]", lower case ("[v6]" keeps its brackets). */
export function splitHost(value: string): { host: string; port: string | null } {
  const v = value.trim().toLowerCase();
  if (v.startsWith("[")) {
    const end = v.indexOf("]");
    return { host: v.slice(0, end + 1), port: end >= 0 && v[end + 1] === ":" ? v.slice(end + 2) : null };
  }
  const colon = v.lastIndexOf(":");
  return colon >= 0 ? { host: v.slice(0, colon), port: v.slice(colon + 1) } : { host: v, port: null };
}

/** Whether "host[:port]" matches an entry of the list. */
export function hostAllowed(hostAndPort: string, allowed: readonly string[]): boolean {
  const { host, port } = splitHost(hostAndPort);
  for (const entry of allowed) {
    const e = splitHost(entry);
    if (e.port !== null && e.port !== port) continue;
    if (e.host === "*" || e.host === host) return true;
    if (e.host === "127.*" && /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)) return true;
    if (e.host.startsWith("*.") && host.endsWith(e.host.slice(1))) return true;
  }
  return false;
}

/** Whether an http(s) URL's host (with its port, the scheme's default when absent) is on the list. */
export function urlHostAllowed(url: string, allowed: readonly string[]): boolean {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return false;
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") return false;
  const port = u.port || (u.protocol === "https:" ? "443" : "80");
  return hostAllowed(`${u.hostname}:${port}`, allowed);
}
