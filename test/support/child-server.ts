/**
 * The real service as a separate process (`node --import tsx src/server.ts`), for tests that need
 * several instances or must kill one. Its pino log lines are kept for assertions. Always stop the
 * children in a `finally` (they would outlive a killed test otherwise).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { serviceDatabase } from "./database.js";

const ROOT = path.resolve(__dirname, "../..");

export interface ChildServer {
  name: string;
  url: string;
  wsUrl: string;
  base: string;
  dataDir: string;
  process: ChildProcess;
  /** Parsed JSON log lines so far. */
  logs: any[];
  gql(query: string, variables?: Record<string, unknown>): Promise<{ status: number; body: any }>;
  health(): Promise<any>;
  /** SIGKILL: no shutdown hooks, leases are left to expire. Resolves with the exit code (null when killed). */
  kill(): Promise<number | null>;
  /** SIGTERM (a graceful drain) and wait for the exit; resolves with the exit code. */
  stop(): Promise<number | null>;
}

export interface ChildServerOptions {
  /** Environment on top of this process's (PORT 0, HOST 127.0.0.1 and LOG_LEVEL info by default). */
  env?: Record<string, string>;
  /** A label for messages and the temp data dir. */
  name?: string;
  timeoutMs?: number;
  /**
   * Run it in its own PID namespace (`unshare --pid`), as if on another machine: instances on one
   * machine tell a dead neighbour by its pid at once, instances elsewhere only by its silence.
   */
  isolatedPids?: boolean;
}

/** Rejects with "instance <name> exited (<code>) before listening: <stderr>" when the service refuses to start. */
export async function startChildServer(options: ChildServerOptions = {}): Promise<ChildServer> {
  const name = options.name ?? "child";
  const env = options.env ?? {};
  const timeoutMs = options.timeoutMs ?? 60_000;
  const dataDir = env.TRIALGRAPH_DATA_DIR ?? (await fs.mkdtemp(path.join(os.tmpdir(), `tg-child-${name}-`)));
  // Instances that share state get TRIALGRAPH_DATABASE_URL from the test; alone, each gets the engine under test.
  const database = env.TRIALGRAPH_DATABASE_URL ? null : await serviceDatabase();
  const command = [process.execPath, "--import", "tsx", "src/server.ts"];
  // --kill-child: when unshare dies (SIGKILL included) the kernel kills the service with it.
  if (options.isolatedPids) command.unshift("unshare", "--pid", "--fork", "--mount-proc", "--kill-child=SIGKILL");
  const child = spawn(command[0], command.slice(1), {
    cwd: ROOT,
    env: { ...process.env, HOST: "127.0.0.1", PORT: "0", LOG_LEVEL: "info", ...database?.env, ...env, TRIALGRAPH_DATA_DIR: dataDir },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: any[] = [];
  let stderr = "";
  let buffer = "";
  let resolveUrl: (url: string) => void;
  const urlKnown = new Promise<string>((resolve) => (resolveUrl = resolve));
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    buffer += chunk;
    let nl: number;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      try {
        const entry = JSON.parse(line);
        logs.push(entry);
        if (String(entry.msg).startsWith("trialgraph listening") && entry.url) resolveUrl(entry.url);
      } catch {
        logs.push({ raw: line });
      }
    }
  });
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  void exited.then(() => database?.release()).catch(() => undefined);
  const url = await Promise.race([
    urlKnown,
    exited.then((code) => { throw new Error(`instance ${name} exited (${code}) before listening: ${stderr.slice(-2000)}`); }),
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`instance ${name} did not start in ${timeoutMs} ms: ${stderr.slice(-2000)}`)), timeoutMs).unref()),
  ]).catch((e) => {
    child.kill("SIGKILL");
    throw e;
  });
  const base = url.replace(/\/graphql$/, "");
  const stopWith = async (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    return exited;
  };
  return {
    name,
    url,
    wsUrl: url.replace(/^http/, "ws"),
    base,
    dataDir,
    process: child,
    logs,
    async gql(query, variables) {
      const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query, variables }) });
      return { status: res.status, body: await res.json() };
    },
    async health() {
      return (await fetch(`${base}/healthz`)).json();
    },
    kill: () => stopWith("SIGKILL"),
    stop: () => stopWith("SIGTERM"),
  };
}
