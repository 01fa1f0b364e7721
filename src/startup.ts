/**
 * Start-up problems the operator must fix before the service can run: each is a StartupError, one
 * clear line (what, where, what to do) and an exit code, printed by main() without a stack trace.
 * The checks here run before anything is written, so a refused start leaves nothing behind.
 */
import { promises as fs } from "node:fs";
import net from "node:net";
import path from "node:path";

export class StartupError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
    this.name = "StartupError";
  }
}

/** A URL as it may appear in logs and messages: its password hidden. */
export function redactUrl(raw: string): string {
  try {
    const u = new URL(raw);
    if (u.password) u.password = "***";
    // libpq-style URLs may carry secrets as parameters too (sslpassword=…).
    for (const key of [...u.searchParams.keys()]) if (/pass|secret/i.test(key)) u.searchParams.set(key, "***");
    return u.toString();
  } catch {
    return "(an unparsable URL)";
  }
}

/**
 * Listens on host:port, or fails with a StartupError naming the port and host and saying how to
 * choose another. Used for the early probe and for the service's own listen.
 */
export function listen(server: net.Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException) => {
      server.off("listening", onListening);
      reject(listenError(e, port, host));
    };
    const onListening = () => {
      server.off("error", onError);
      resolve();
    };
    server.once("error", onError);
    server.once("listening", onListening);
    server.listen(port, host);
  });
}

function listenError(e: NodeJS.ErrnoException, port: number, host: string): Error {
  switch (e.code) {
    case "EADDRINUSE":
      return new StartupError(`port ${port} on ${host} is already in use: stop what listens there, or choose another port with PORT=<port> (PORT=0 picks a free one)`);
    case "EACCES":
      return new StartupError(`no permission to listen on port ${port} on ${host} (ports below 1024 need privileges): choose another port with PORT=<port>`);
    case "EADDRNOTAVAIL":
      return new StartupError(`HOST=${host} is not an address of this machine: use one of its addresses, 127.0.0.1 or 0.0.0.0`);
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return new StartupError(`HOST=${host} does not resolve to an address: use one of this machine's addresses, 127.0.0.1 or 0.0.0.0`);
    default:
      return new StartupError(`cannot listen on ${host}:${port} (${e.code ?? e.message})`);
  }
}

/** Fails with a StartupError when host:port cannot be listened on now (port 0 always can). */
export async function checkPortFree(port: number, host: string): Promise<void> {
  if (port === 0) return;
  const probe = net.createServer();
  await listen(probe, port, host);
  await new Promise<void>((resolve) => probe.close(() => resolve()));
}

const REASONS: Record<string, string> = {
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EROFS: "read-only file system",
  ENOTDIR: "a part of the path is a file",
  EEXIST: "it is a file",
  ENOSPC: "no space left on the device",
  EDQUOT: "disk quota exceeded",
};

/** Creates the data folder if needed and proves it writable, or fails with a StartupError naming it. */
export async function checkDataDirWritable(dataDir: string): Promise<void> {
  const probe = path.join(dataDir, `.trialgraph-write-check-${process.pid}`);
  try {
    await fs.mkdir(dataDir, { recursive: true });
    await fs.writeFile(probe, "");
    await fs.rm(probe, { force: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? "error";
    const reason = REASONS[code] ?? (e as Error).message;
    throw new StartupError(`data folder ${dataDir} is not writable (${code}: ${reason}): set TRIALGRAPH_DATA_DIR to a folder this user can write`);
  }
}
