/**
 * Kysely's SQLite dialect over Node's built-in `node:sqlite` (DatabaseSync), so the embedded database
 * needs nothing installed. Kysely's dialect expects better-sqlite3's statement shape (`reader`, and
 * parameters as one array); this adapter gives DatabaseSync that shape, converts the values SQLite
 * cannot bind (booleans, undefined), and reuses prepared statements.
 *
 * Kysely serializes queries on the one connection (its SQLite adapter declares a single connection),
 * so the synchronous driver is never re-entered.
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import type { SqliteDatabase, SqliteStatement } from "kysely";

export interface NodeSqliteOptions {
  /** How long a statement waits for another process's write lock before SQLITE_BUSY (ms). */
  busyTimeoutMs?: number;
  /** Prepared statements kept for reuse. */
  statementCacheSize?: number;
}

type Bindable = null | number | bigint | string | NodeJS.ArrayBufferView;

function bindable(v: unknown): Bindable {
  if (v === undefined || v === null) return null;
  if (typeof v === "boolean") return v ? 1 : 0;
  if (v instanceof Date) return v.getTime();
  return v as Bindable;
}

/** DatabaseSync as Kysely's SqliteDatabase. The file is opened (and created) now. */
export function openNodeSqlite(file: string, options: NodeSqliteOptions = {}): SqliteDatabase & { raw: DatabaseSync } {
  const raw = new DatabaseSync(file, { timeout: options.busyTimeoutMs ?? 5_000 });
  const cacheSize = options.statementCacheSize ?? 256;
  // Insertion-ordered: the oldest entry is evicted first.
  const statements = new Map<string, { stmt: StatementSync; reader: boolean }>();
  const prepared = (sql: string) => {
    let hit = statements.get(sql);
    if (hit) {
      statements.delete(sql);
      statements.set(sql, hit);
      return hit;
    }
    const stmt = raw.prepare(sql);
    // A statement that yields columns (SELECT, or a write with RETURNING) is read with all().
    hit = { stmt, reader: stmt.columns().length > 0 };
    statements.set(sql, hit);
    if (statements.size > cacheSize) statements.delete(statements.keys().next().value!);
    return hit;
  };
  return {
    raw,
    close: () => {
      statements.clear();
      if (raw.isOpen) raw.close();
    },
    prepare(sql: string): SqliteStatement {
      const { stmt, reader } = prepared(sql);
      const args = (parameters: ReadonlyArray<unknown>) => parameters.map(bindable);
      return {
        reader,
        all: (parameters) => stmt.all(...args(parameters)),
        run: (parameters) => stmt.run(...args(parameters)),
        iterate: (parameters) => stmt.iterate(...args(parameters)) as IterableIterator<unknown>,
      };
    },
  };
}
