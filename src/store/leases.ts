/**
 * Leases: at most one owner per name, with an expiry, so that among several instances exactly one
 * does a given piece of work. The holder renews before expiry; when it dies its leases expire and
 * another instance takes the work over.
 *
 * LeaseStore is the contract (events/lease.ts keeps leases in Redis; here they are rows in the
 * database). Expiry uses the database's clock, so instances on hosts whose clocks differ still agree.
 */
import { sql } from "kysely";
import type { Database } from "./database.js";

export interface LeaseStore {
  readonly owner: string;
  readonly ttlMs: number;
  /** Takes the lease when free (or renews it when already ours); false when another owner holds it. */
  acquire(key: string): Promise<boolean>;
  /** Extends our lease; false when it is no longer ours (expired, or taken by another owner). */
  renew(key: string): Promise<boolean>;
  /** Gives the lease up at once when it is ours; a no-op otherwise. */
  release(key: string): Promise<void>;
  /** Who holds the lease now (null when free). */
  holder(key: string): Promise<string | null>;
}

export class DatabaseLeases implements LeaseStore {
  constructor(
    private readonly database: Database,
    readonly owner: string,
    readonly ttlMs: number,
  ) {
    if (!Number.isInteger(ttlMs) || ttlMs < 1) throw new RangeError("lease ttlMs must be a positive integer");
  }

  /** Now plus the ttl, by the database's clock. */
  private expiry() {
    return sql<number>`${this.database.now()} + ${sql.lit(this.ttlMs)}`;
  }

  async acquire(key: string): Promise<boolean> {
    const now = this.database.now();
    const row = await this.database.query((db) => db.insertInto("leases")
      .values({ name: key, owner: this.owner, expires_at: this.expiry() })
      .onConflict((oc) => oc.column("name")
        .doUpdateSet((eb) => ({ owner: eb.ref("excluded.owner"), expires_at: eb.ref("excluded.expires_at") }))
        .where((eb) => eb.or([eb("leases.owner", "=", this.owner), eb("leases.expires_at", "<=", now)])))
      .returning("owner")
      .executeTakeFirst());
    return row?.owner === this.owner;
  }

  async renew(key: string): Promise<boolean> {
    const row = await this.database.query((db) => db.updateTable("leases")
      .set({ expires_at: this.expiry() })
      .where("name", "=", key).where("owner", "=", this.owner)
      .returning("name").executeTakeFirst());
    return row !== undefined;
  }

  /** Renews every lease we hold whose name starts with `prefix`; returns the names still ours. */
  async renewAll(prefix: string): Promise<Set<string>> {
    const rows = await this.database.query((db) => db.updateTable("leases")
      .set({ expires_at: this.expiry() })
      .where("owner", "=", this.owner).where(sql<string>`substr(name, 1, ${sql.lit(prefix.length)})`, "=", prefix)
      .returning("name").execute());
    return new Set(rows.map((r) => r.name));
  }

  async release(key: string): Promise<void> {
    await this.database.query((db) => db.deleteFrom("leases").where("name", "=", key).where("owner", "=", this.owner).execute());
  }

  async holder(key: string): Promise<string | null> {
    const row = await this.database.query((db) => db.selectFrom("leases").select("owner")
      .where("name", "=", key).where("expires_at", ">", this.database.now()).executeTakeFirst());
    return row?.owner ?? null;
  }
}
