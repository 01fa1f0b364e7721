/**
 * Versioned migrations, applied in order at start inside one transaction that holds the database's
 * migration lock (PostgreSQL: an advisory transaction lock; SQLite: BEGIN IMMEDIATE, with the busy
 * timeout), so several instances starting at once apply each migration exactly once.
 *
 * To change the schema, append a migration; never edit one that has shipped.
 */
import { sql, type Kysely } from "kysely";
import type { Engine } from "./database.js";

export interface Migration {
  version: number;
  name: string;
  up(db: Kysely<any>, engine: Engine): Promise<void>;
}

/** BIGINT on both engines (SQLite's INTEGER is 64-bit). */
const big = (engine: Engine) => (engine === "postgres" ? "bigint" : "integer");

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "jobs, rule attachments and summaries, evaluation history, instances, leases",
    async up(db, engine) {
      const ms = big(engine);
      await db.schema.createTable("meta")
        .addColumn("key", "text", (c) => c.primaryKey())
        .addColumn("value", "text", (c) => c.notNull())
        .execute();
      await db.schema.createTable("jobs")
        .addColumn("name", "text", (c) => c.primaryKey())
        .addColumn("backend", "text", (c) => c.notNull())
        .addColumn("status", "text", (c) => c.notNull())
        .addColumn("secondary_status", "text")
        .addColumn("failure_reason", "text")
        .addColumn("arn", "text")
        .addColumn("created_at", ms, (c) => c.notNull())
        .addColumn("started_at", ms)
        .addColumn("ended_at", ms)
        .addColumn("hyperparameters", "text", (c) => c.notNull())
        .addColumn("debug_output_path", "text")
        .addColumn("progress_current", "integer")
        .addColumn("progress_total", "integer")
        .addColumn("spec", "text")
        .addColumn("instance_id", "text")
        .addColumn("updated_at", ms, (c) => c.notNull())
        .execute();
      // trainingJobs pages newest first; the dead-instance sweep finds an instance's jobs.
      await db.schema.createIndex("jobs_by_backend_created").on("jobs").columns(["backend", "created_at", "name"]).execute();
      await db.schema.createIndex("jobs_by_instance").on("jobs").columns(["instance_id", "status"]).execute();

      await db.schema.createTable("job_rules")
        .addColumn("job_name", "text", (c) => c.notNull().references("jobs.name").onDelete("cascade"))
        .addColumn("rule_name", "text", (c) => c.notNull())
        .addColumn("position", "integer", (c) => c.notNull())
        .addColumn("spec", "text")
        .addColumn("evaluator", "text", (c) => c.notNull())
        .addColumn("attached_at", ms, (c) => c.notNull())
        .addColumn("status", "text", (c) => c.notNull())
        .addColumn("status_details", "text")
        .addColumn("last_modified_at", ms)
        .addColumn("evaluation_job_arn", "text")
        .addColumn("details", "text")
        .addColumn("finished", "integer", (c) => c.notNull().defaultTo(0))
        .addPrimaryKeyConstraint("job_rules_pk", ["job_name", "rule_name"])
        .execute();
      // The rule supervisor asks every lease tick for the rules still to evaluate.
      await db.schema.createIndex("job_rules_open").on("job_rules").columns(["finished", "job_name"]).execute();

      let history = db.schema.createTable("rule_evaluations");
      history = engine === "postgres"
        ? history.addColumn("id", "bigserial", (c) => c.primaryKey())
        : history.addColumn("id", "integer", (c) => c.primaryKey().autoIncrement());
      await history
        .addColumn("job_name", "text", (c) => c.notNull())
        .addColumn("rule_name", "text", (c) => c.notNull())
        .addColumn("step", ms)
        .addColumn("status", "text", (c) => c.notNull())
        .addColumn("message", "text", (c) => c.notNull())
        .addColumn("evaluated_at", ms, (c) => c.notNull())
        .addColumn("status_change", "integer", (c) => c.notNull())
        .addForeignKeyConstraint("rule_evaluations_rule", ["job_name", "rule_name"], "job_rules", ["job_name", "rule_name"], (c) => c.onDelete("cascade"))
        .execute();
      await db.schema.createIndex("rule_evaluations_by_rule").on("rule_evaluations").columns(["job_name", "rule_name", "id"]).execute();

      await db.schema.createTable("instances")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("host", "text", (c) => c.notNull())
        .addColumn("pid", "integer", (c) => c.notNull())
        .addColumn("started_at", ms, (c) => c.notNull())
        .addColumn("heartbeat_at", ms, (c) => c.notNull())
        .execute();
      await db.schema.createTable("leases")
        .addColumn("name", "text", (c) => c.primaryKey())
        .addColumn("owner", "text", (c) => c.notNull())
        .addColumn("expires_at", ms, (c) => c.notNull())
        .execute();
      await db.schema.createIndex("leases_by_owner").on("leases").column("owner").execute();
    },
  },
  {
    version: 2,
    name: "event log for subscription resume (eventId / after)",
    async up(db, engine) {
      const ms = big(engine);
      // Ids are handed out by event_sequence, not by a serial column: the row's lock orders appends,
      // so ids commit in order and without holes (see EventLog).
      await db.schema.createTable("event_sequence")
        .addColumn("name", "text", (c) => c.primaryKey())
        .addColumn("last_id", ms, (c) => c.notNull())
        .execute();
      await db.insertInto("event_sequence").values({ name: "events", last_id: 0 }).execute();
      await db.schema.createTable("event_log")
        .addColumn("id", ms, (c) => c.primaryKey())
        .addColumn("topic", "text", (c) => c.notNull())
        .addColumn("job_name", "text")
        .addColumn("payload", "text", (c) => c.notNull())
        .addColumn("created_at", ms, (c) => c.notNull())
        .execute();
      // Replays of one job's events; pruning by age.
      await db.schema.createIndex("event_log_by_job").on("event_log").columns(["job_name", "id"]).execute();
      await db.schema.createIndex("event_log_by_time").on("event_log").column("created_at").execute();
    },
  },
];

/** PostgreSQL advisory lock key for migrations ("trialgph" as 8 ASCII bytes). */
const MIGRATION_LOCK_KEY = sql.raw("8390884922896117864");

/**
 * Applies the migrations `db` has not seen, in one transaction under the migration lock. `inTransaction`
 * runs the callback in the engine's write transaction (see Database.tx). Returns the versions applied.
 */
export async function migrate(
  engine: Engine,
  inTransaction: <T>(fn: (db: Kysely<any>) => Promise<T>) => Promise<T>,
  migrations: readonly Migration[] = MIGRATIONS,
  now: () => number = Date.now,
): Promise<number[]> {
  return inTransaction(async (db) => {
    if (engine === "postgres") await sql`select pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`.execute(db);
    await db.schema.createTable("schema_migrations").ifNotExists()
      .addColumn("version", "integer", (c) => c.primaryKey())
      .addColumn("name", "text", (c) => c.notNull())
      .addColumn("applied_at", big(engine), (c) => c.notNull())
      .execute();
    const done = new Set((await db.selectFrom("schema_migrations").select("version").execute()).map((r) => Number(r.version)));
    const newest = Math.max(0, ...done);
    const known = Math.max(0, ...migrations.map((m) => m.version));
    if (newest > known) {
      throw new Error(`the database schema is at version ${newest}, newer than this build knows (${known}): upgrade trialgraph`);
    }
    const applied: number[] = [];
    for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
      if (done.has(m.version)) continue;
      await m.up(db, engine);
      await db.insertInto("schema_migrations").values({ version: m.version, name: m.name, applied_at: now() }).execute();
      applied.push(m.version);
    }
    return applied;
  });
}
