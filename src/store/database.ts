/**
 * The service's database: PostgreSQL when TRIALGRAPH_DATABASE_URL names one (shared by every
 * instance), otherwise SQLite embedded in the data directory (node:sqlite, nothing to install).
 * One schema and one query builder (Kysely) for both; migrations run when it opens.
 *
 * Failures to reach the database become DATABASE_UNAVAILABLE (the caller's request fails, the
 * service keeps serving trials); the pool reconnects by itself, so service resumes when it returns.
 */
import { Kysely, PostgresDialect, SqliteDialect, sql, type RawBuilder } from "kysely";
import pg from "pg";
import { TrialgraphError } from "../errors.js";
import { redactUrl, StartupError } from "../startup.js";
import { migrate, MIGRATIONS, type Migration } from "./migrations.js";
import { openNodeSqlite } from "./node-sqlite.js";
import type { Schema } from "./schema.js";

export type Engine = "sqlite" | "postgres";

export interface DatabaseLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface DatabaseOptions {
  /** postgres://… (or postgresql://…); null: the embedded SQLite database at `sqliteFile`. */
  url: string | null;
  sqliteFile: string;
  /** Time allowed to open a connection (PostgreSQL) or to wait for another process's lock (SQLite). */
  connectTimeoutMs?: number;
  /** Longest a PostgreSQL query may take before it fails (a hung connection must not hang requests). */
  queryTimeoutMs?: number;
  /** PostgreSQL connections per instance. */
  poolSize?: number;
  log?: DatabaseLog;
  /** Test hook: the migrations to apply. */
  migrations?: readonly Migration[];
}

const SOCKET_ERRORS = /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|ECONNABORTED)$/;
const PG_DOWN_MESSAGES = /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|Query read timeout|Connection ended unexpectedly|the database system is (starting up|shutting down)|terminating connection/i;
/** SQLite primary result codes that mean "cannot get at the database now": BUSY, LOCKED, READONLY, IOERR, FULL, CANTOPEN. */
const SQLITE_UNAVAILABLE = new Set([5, 6, 8, 10, 13, 14]);

/** Whether an error means the database cannot be reached (rather than a bad statement or a constraint). */
export function isUnavailable(e: unknown): boolean {
  const err = e as { code?: unknown; errcode?: unknown; message?: unknown };
  const code = typeof err?.code === "string" ? err.code : "";
  if (SOCKET_ERRORS.test(code)) return true;
  // PostgreSQL: connection exceptions (class 08), shutdowns (57P01-57P03), too many connections.
  if (/^08/.test(code) || /^57P0[123]$/.test(code) || code === "53300") return true;
  if (code === "ERR_SQLITE_ERROR" && typeof err.errcode === "number") return SQLITE_UNAVAILABLE.has(err.errcode & 0xff);
  return typeof err?.message === "string" && PG_DOWN_MESSAGES.test(err.message);
}

/** A unique or primary-key violation (PostgreSQL 23505; SQLite SQLITE_CONSTRAINT_UNIQUE / _PRIMARYKEY). */
export function isUniqueViolation(e: unknown): boolean {
  const err = e as { code?: unknown; errcode?: unknown };
  return err?.code === "23505" || (err?.code === "ERR_SQLITE_ERROR" && (err.errcode === 2067 || err.errcode === 1555));
}

function reasonOf(e: unknown): string {
  const err = e as { code?: unknown; message?: unknown };
  const message = typeof err?.message === "string" && err.message ? err.message : String(e);
  return typeof err?.code === "string" && !message.includes(err.code) && err.code !== "ERR_SQLITE_ERROR" ? `${err.code}: ${message}` : message;
}

export class Database {
  /** The SQL builder. Prefer `query` / `tx`, which turn outages into DATABASE_UNAVAILABLE. */
  readonly db: Kysely<Schema>;
  /** Where the database is, for logs and messages: the URL without its password, or the SQLite file. */
  readonly location: string;
  /** Migration versions this open applied (empty when the schema was current). */
  appliedMigrations: number[] = [];
  private up = true;

  private constructor(readonly engine: Engine, db: Kysely<Schema>, location: string, private readonly log?: DatabaseLog) {
    this.db = db;
    this.location = location;
  }

  /**
   * Connects and applies pending migrations. A database that cannot be reached or migrated is a
   * StartupError whose message is one line naming where the database is (never its password).
   */
  static async open(options: DatabaseOptions): Promise<Database> {
    const engine: Engine = options.url ? "postgres" : "sqlite";
    const location = options.url ? redactUrl(options.url) : options.sqliteFile;
    let database: Database;
    try {
      database = new Database(engine, engine === "postgres" ? postgres(options) : sqlite(options), location, options.log);
    } catch (e) {
      throw new StartupError(`cannot open the database at ${location}: ${reasonOf(e)}`);
    }
    try {
      if (engine === "sqlite") {
        // WAL: readers never wait for the writer; FULL: a committed write survives a crash of the machine too.
        await sql`pragma journal_mode = wal`.execute(database.db);
        await sql`pragma synchronous = full`.execute(database.db);
        await sql`pragma foreign_keys = on`.execute(database.db);
      }
      const applied = await migrate(engine, (fn) => database.tx(fn), options.migrations ?? MIGRATIONS);
      database.appliedMigrations = applied;
      if (applied.length) options.log?.info({ database: location, versions: applied }, "database schema migrated");
    } catch (e) {
      await database.db.destroy().catch(() => undefined);
      const cause = e instanceof TrialgraphError && e.cause ? e.cause : e;
      const what = isUnavailable(cause) ? "cannot reach the database" : "cannot prepare the database";
      throw new StartupError(`${what} at ${location}: ${reasonOf(cause)}`);
    }
    return database;
  }

  /** Whether the last statement reached the database. */
  get available(): boolean {
    return this.up;
  }

  /** Now, in milliseconds since the epoch, by the database's clock (leases and heartbeats agree across hosts). */
  now(): RawBuilder<number> {
    return this.engine === "postgres"
      ? sql<number>`(floor(extract(epoch from clock_timestamp()) * 1000))::bigint`
      : sql<number>`cast(unixepoch('subsec') * 1000 as integer)`;
  }

  /** Runs statements outside a transaction; outages become DATABASE_UNAVAILABLE. */
  async query<T>(fn: (db: Kysely<Schema>) => Promise<T>): Promise<T> {
    return this.track(() => fn(this.db));
  }

  /**
   * Runs `fn` in a write transaction: committed when it resolves, rolled back when it throws. On
   * SQLite the transaction takes the write lock at once (BEGIN IMMEDIATE), so two processes sharing the
   * file queue on the busy timeout instead of failing on a lock upgrade.
   */
  async tx<T>(fn: (db: Kysely<Schema>) => Promise<T>): Promise<T> {
    return this.track(() => {
      if (this.engine === "postgres") return this.db.transaction().execute(fn);
      return this.db.connection().execute(async (conn) => {
        await sql`begin immediate`.execute(conn);
        try {
          const result = await fn(conn);
          await sql`commit`.execute(conn);
          return result;
        } catch (e) {
          await sql`rollback`.execute(conn).catch(() => undefined);
          throw e;
        }
      });
    });
  }

  private async track<T>(run: () => Promise<T>): Promise<T> {
    try {
      const result = await run();
      this.setUp(true);
      return result;
    } catch (e) {
      if (!isUnavailable(e)) throw e;
      this.setUp(false, reasonOf(e));
      const unavailable = new TrialgraphError("DATABASE_UNAVAILABLE", "the service's database is unavailable; try again shortly");
      unavailable.cause = e;
      throw unavailable;
    }
  }

  private setUp(up: boolean, reason?: string): void {
    if (up === this.up) return;
    this.up = up;
    if (up) this.log?.info({ database: this.location }, "database reachable again");
    else this.log?.warn({ database: this.location, error: reason }, "database unavailable: requests that need it fail with DATABASE_UNAVAILABLE until it returns");
  }

  async close(): Promise<void> {
    await this.db.destroy();
  }
}

function postgres(options: DatabaseOptions): Kysely<Schema> {
  const pool = new pg.Pool({
    connectionString: options.url!,
    max: options.poolSize ?? 10,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5_000,
    query_timeout: options.queryTimeoutMs ?? 15_000,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    application_name: "trialgraph",
    // BIGINT (times in ms, counts) as numbers: every value the schema keeps fits in 2^53.
    types: { getTypeParser: ((oid: number, format?: string) => (oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as "text"))) as typeof pg.types.getTypeParser },
  });
  // A connection that breaks (the server restarts, the network drops) emits 'error'; unheard, that
  // would crash the process. Idle connections report through the pool; checked-out ones through their
  // own listener (their query fails with the same error, and the pool then discards them).
  pool.on("error", (e) => options.log?.warn({ error: e.message }, "database connection lost; the pool reconnects on demand"));
  pool.on("connect", (client) => client.on("error", () => undefined));
  return new Kysely<Schema>({ dialect: new PostgresDialect({ pool }) });
}

function sqlite(options: DatabaseOptions): Kysely<Schema> {
  const database = openNodeSqlite(options.sqliteFile, { busyTimeoutMs: options.connectTimeoutMs ?? 5_000 });
  return new Kysely<Schema>({ dialect: new SqliteDialect({ database }) });
}
