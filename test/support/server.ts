/**
 * Starts the real service in-process on a free port with a fresh data directory, on the embedded
 * database, or on a fresh PostgreSQL database with TRIALGRAPH_TEST_DATABASE=postgres (dropped at close).
 */
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { loadConfig } from "../../src/config.js";
import { startServer, type RunningServer } from "../../src/server.js";
import { serviceDatabase } from "./database.js";

export interface TestServer extends RunningServer {
  dataDir: string;
  gql<T = any>(query: string, variables?: Record<string, unknown>, headers?: Record<string, string>): Promise<{ status: number; body: { data?: T; errors?: any[] } }>;
  wsUrl: string;
}

export async function startTestServer(env: Record<string, string> = {}): Promise<TestServer> {
  const dataDir = env.TRIALGRAPH_DATA_DIR ?? (await fs.mkdtemp(path.join(os.tmpdir(), "trialgraph-test-")));
  const database = env.TRIALGRAPH_DATABASE_URL ? null : await serviceDatabase();
  const config = loadConfig({ PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "silent", ...database?.env, ...env, TRIALGRAPH_DATA_DIR: dataDir });
  let server: RunningServer;
  try {
    server = await startServer(config, pino({ level: config.logLevel }));
  } catch (e) {
    await database?.release();
    throw e;
  }
  return {
    ...server,
    async close() {
      await server.close();
      await database?.release();
    },
    dataDir,
    wsUrl: server.url.replace(/^http/, "ws"),
    async gql(query, variables, headers = {}) {
      const res = await fetch(server.url, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: JSON.stringify({ query, variables }),
      });
      return { status: res.status, body: (await res.json()) as any };
    },
  };
}
