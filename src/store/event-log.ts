/**
 * The event log behind subscription cursors: every job, progress and rule event, with an id that
 * orders all of them across every instance sharing the database. Kept in the service's database
 * (not Redis) because that database is already shared by all instances and durable: a subscriber
 * resuming on any instance, even after every instance restarted, reads the same sequence. Redis
 * only carries the live copy (a wake-up), so it stays optional.
 *
 * Ids come from one row of event_sequence, incremented in the appending transaction. Its row lock
 * (PostgreSQL) or the database write lock (SQLite, BEGIN IMMEDIATE) serializes appends, so ids
 * commit in the order they are handed out and without holes (a rolled-back append rolls its ids
 * back too). A reader that sees id N therefore sees every id below N: delivering "up to the largest
 * id read" never skips an event that commits later, the trap of serial columns (12 visible before 11).
 *
 * Retention: rows older than `maxAgeMs`, or beyond the newest `maxEvents`, are pruned; a cursor
 * below the oldest kept id is expired (the caller answers CURSOR_EXPIRED).
 */
import { randomUUID } from "node:crypto";
import type { Database } from "./database.js";

export interface NewLogEvent {
  topic: string;
  jobName: string | null;
  /** JSON of the event. */
  payload: string;
}

export interface LogEvent extends NewLogEvent {
  id: number;
  /** Milliseconds since the epoch (database clock). */
  createdAt: number;
}

export interface LogReadQuery {
  /** Events with an id above this one. */
  after: number;
  /** Only these topics (all when absent). */
  topics?: readonly string[];
  /** Only this job's events. */
  jobName?: string | null;
  limit: number;
}

export interface RetentionPolicy {
  maxAgeMs: number;
  maxEvents: number;
}

const SEQUENCE = "events";

export class EventLog {
  constructor(private readonly database: Database) {}

  /** Appends events in one transaction; returns their ids, consecutive and in order. */
  async append(events: readonly NewLogEvent[]): Promise<LogEvent[]> {
    if (!events.length) return [];
    return this.database.tx(async (db) => {
      const row = await db.updateTable("event_sequence")
        .set((eb) => ({ last_id: eb("last_id", "+", events.length) }))
        .where("name", "=", SEQUENCE)
        .returning(["last_id", (eb) => this.database.now().as("now")])
        .executeTakeFirstOrThrow();
      const first = Number(row.last_id) - events.length + 1;
      const now = Number(row.now);
      const out = events.map((e, i) => ({ ...e, id: first + i, createdAt: now }));
      for (let i = 0; i < out.length; i += 200) {
        await db.insertInto("event_log").values(out.slice(i, i + 200).map((e) => ({
          id: e.id, topic: e.topic, job_name: e.jobName, payload: e.payload, created_at: e.createdAt,
        }))).execute();
      }
      return out;
    });
  }

  /**
   * This log's identity (made once, kept in meta): instances sharing Redis but not the database
   * (a misconfiguration) must not mix each other's ids.
   */
  async identity(): Promise<string> {
    await this.database.query((db) => db.insertInto("meta").values({ key: "event_log_id", value: randomUUID() })
      .onConflict((oc) => oc.column("key").doNothing()).execute());
    const row = await this.database.query((db) => db.selectFrom("meta").select("value").where("key", "=", "event_log_id").executeTakeFirstOrThrow());
    return row.value;
  }

  /** The newest id handed out (0 before the first event). */
  async last(): Promise<number> {
    const row = await this.database.query((db) => db.selectFrom("event_sequence").select("last_id").where("name", "=", SEQUENCE).executeTakeFirst());
    return Number(row?.last_id ?? 0);
  }

  /**
   * Ids up to this one were pruned: a cursor below it cannot be resumed. Ids have no holes, so it is
   * the oldest kept id minus one (or the newest id when every event was pruned).
   */
  async prunedThrough(): Promise<number> {
    const oldest = await this.database.query((db) => db.selectFrom("event_log").select((eb) => eb.fn.min("id").as("id")).executeTakeFirst());
    if (oldest?.id != null) return Number(oldest.id) - 1;
    return this.last();
  }

  /** Events after `query.after`, oldest first. */
  async read(query: LogReadQuery): Promise<LogEvent[]> {
    const rows = await this.database.query((db) => {
      let q = db.selectFrom("event_log").selectAll().where("id", ">", query.after);
      if (query.topics) q = q.where("topic", "in", [...query.topics]);
      if (query.jobName != null) q = q.where("job_name", "=", query.jobName);
      return q.orderBy("id", "asc").limit(query.limit).execute();
    });
    return rows.map((r) => ({ id: Number(r.id), topic: r.topic, jobName: r.job_name, payload: r.payload, createdAt: Number(r.created_at) }));
  }

  /** Deletes events past the retention; returns how many. Any instance may run it (deletes are idempotent). */
  async prune(policy: RetentionPolicy): Promise<number> {
    const last = await this.last();
    const byCount = last - policy.maxEvents;
    const res = await this.database.query((db) => db.deleteFrom("event_log")
      .where((eb) => eb.or([
        eb("created_at", "<", eb(this.database.now(), "-", policy.maxAgeMs)),
        eb("id", "<=", byCount),
      ]))
      .executeTakeFirst());
    return Number(res.numDeletedRows ?? 0);
  }
}
