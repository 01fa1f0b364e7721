/**
 * Databases for tests. The embedded default (SQLite) needs nothing; PostgreSQL runs on this machine
 * (127.0.0.1:5432, trust auth): each test run makes its own database and drops it afterwards.
 *
 * TRIALGRAPH_TEST_DATABASE=postgres makes the service helpers (startTestServer, startChildServer,
 * startServiceProcess) put the service on PostgreSQL instead of the embedded database, so the same
 * job and rule tests run against both engines (.ci/run runs those files a second time this way).
 */
import { randomBytes } from "node:crypto";
import net from "node:net";
import pg from "pg";
import { freePort } from "./net.js";

export const POSTGRES_ADMIN_URL = process.env.TRIALGRAPH_TEST_POSTGRES_URL ?? "postgres://root@127.0.0.1:5432/postgres";

export type TestEngine = "sqlite" | "postgres";

/** The engine the service helpers use (TRIALGRAPH_TEST_DATABASE; default sqlite). */
export function testEngine(): TestEngine {
  const v = (process.env.TRIALGRAPH_TEST_DATABASE ?? "sqlite").toLowerCase();
  if (v === "postgres" || v === "postgresql" || v === "pg") return "postgres";
  if (v === "sqlite" || v === "") return "sqlite";
  throw new Error(`TRIALGRAPH_TEST_DATABASE=${v}: expected sqlite or postgres`);
}

export interface TestDatabase {
  name: string;
  /** postgres://… for TRIALGRAPH_DATABASE_URL. */
  url: string;
  /** Drops the database (closing whatever connections are left). */
  drop(): Promise<void>;
}

function urlFor(database: string, base = POSTGRES_ADMIN_URL): string {
  const u = new URL(base);
  u.pathname = `/${database}`;
  return u.toString();
}

/** A fresh, empty PostgreSQL database for this run. */
export async function createTestDatabase(label = "t"): Promise<TestDatabase> {
  const name = `tg_${label.replace(/[^a-z0-9]/gi, "").slice(0, 12).toLowerCase()}_${process.pid}_${randomBytes(4).toString("hex")}`;
  const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  let dropped = false;
  return {
    name,
    url: urlFor(name),
    async drop() {
      if (dropped) return;
      dropped = true;
      const c = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
      await c.connect();
      try {
        await c.query(`drop database if exists ${name} with (force)`);
      } finally {
        await c.end();
      }
    },
  };
}

/**
 * The database environment for one service (or several sharing it): {} on SQLite (the service uses
 * its data directory), or TRIALGRAPH_DATABASE_URL of a fresh PostgreSQL database. `release()` drops it.
 */
export async function serviceDatabase(engine: TestEngine = testEngine()): Promise<{ env: Record<string, string>; release(): Promise<void> }> {
  if (engine === "sqlite") return { env: {}, release: async () => {} };
  const db = await createTestDatabase("svc");
  return { env: { TRIALGRAPH_DATABASE_URL: db.url }, release: () => db.drop() };
}

export interface TcpProxy {
  port: number;
  /** The target URL with its port replaced by the proxy's. */
  url(target: string): string;
  /** Breaks every connection and refuses new ones (an outage). */
  cut(): void;
  /** Accepts connections again. */
  restore(): void;
  close(): Promise<void>;
}

/** A TCP proxy to 127.0.0.1:<targetPort> that a test can cut, to take a dependency away without stopping it. */
export async function tcpProxy(targetPort: number): Promise<TcpProxy> {
  const port = await freePort();
  const sockets = new Set<net.Socket>();
  let open = true;
  const server = net.createServer((client) => {
    if (!open) {
      client.destroy();
      return;
    }
    const upstream = net.connect(targetPort, "127.0.0.1");
    sockets.add(client);
    sockets.add(upstream);
    const close = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("error", close).on("close", close);
    upstream.on("error", close).on("close", close);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return {
    port,
    url(target) {
      const u = new URL(target);
      u.hostname = "127.0.0.1";
      u.port = String(port);
      return u.toString();
    },
    cut() {
      open = false;
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    restore() {
      open = true;
    },
    async close() {
      open = false;
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
