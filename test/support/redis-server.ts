/**
 * Redis for tests: a private redis-server process on a free port (to kill and restart it), and key
 * clean-up for per-run prefixes on the shared Redis at 127.0.0.1:6379.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { freePort } from "./net.js";
import { Redis } from "ioredis";

export const SHARED_REDIS_URL = process.env.TRIALGRAPH_TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

export interface PrivateRedis {
  port: number;
  url: string;
  readonly running: boolean;
  start(): Promise<void>;
  /** SIGKILL: connections drop at once, nothing is saved. */
  kill(): Promise<void>;
}

/** A redis-server without persistence; `start()` it (again) on the same port after `kill()`. */
export async function privateRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  let child: ChildProcess | null = null;
  const handle: PrivateRedis = {
    port,
    url: `redis://127.0.0.1:${port}`,
    get running() {
      return child !== null;
    },
    async start() {
      if (child) return;
      const proc = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"], { stdio: ["ignore", "pipe", "pipe"] });
      child = proc;
      let out = "";
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`redis-server did not start: ${out}`)), 10_000);
        proc.stdout!.setEncoding("utf8").on("data", (s: string) => {
          out += s;
          if (/Ready to accept connections/.test(out)) {
            clearTimeout(timer);
            resolve();
          }
        });
        proc.once("exit", (code) => {
          clearTimeout(timer);
          reject(new Error(`redis-server exited (${code}): ${out}`));
        });
      });
    },
    async kill() {
      const proc = child;
      if (!proc) return;
      child = null;
      if (proc.exitCode === null && proc.signalCode === null) {
        const gone = new Promise((resolve) => proc.once("exit", resolve));
        proc.kill("SIGKILL");
        await gone;
      }
    },
  };
  return handle;
}

/** Deletes every key under `prefix:` (a test run's namespace on the shared Redis). */
export async function deleteKeys(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 500);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
}
