/**
 * The service's own state, in a database: job records, rules attached to jobs with their summaries
 * and evaluation history, live instances and leases. One Store per process.
 */
import path from "node:path";
import { sql } from "kysely";
import { Database, type DatabaseLog } from "./database.js";
import { InstanceStore } from "./instance-store.js";
import { JobStore } from "./job-store.js";
import { DatabaseLeases } from "./leases.js";
import { EventLog } from "./event-log.js";
import { RuleStore } from "./rule-store.js";

export { Database, isUnavailable, isUniqueViolation, type Engine } from "./database.js";
export { JobStore, MAX_JOB_PAGE_SIZE, type JobCondition, type JobListQuery, type JobPatch, type NewRule, type StoredJob } from "./job-store.js";
export { RuleStore, MAX_EVALUATION_PAGE_SIZE, type LastEvaluation, type NewEvaluation, type OpenRule, type RuleChange, type StoredRule } from "./rule-store.js";
export { InstanceStore, type EndedInstance, type InstanceInfo } from "./instance-store.js";
export { DatabaseLeases, type LeaseStore } from "./leases.js";
export { EventLog, type LogEvent, type NewLogEvent, type LogReadQuery, type RetentionPolicy } from "./event-log.js";

/** The embedded database's file name in the data directory. */
export const SQLITE_FILE = "trialgraph.db";

export interface StoreOptions {
  /** TRIALGRAPH_DATABASE_URL; null: SQLite in the data directory. */
  databaseUrl: string | null;
  dataDir: string;
  log?: DatabaseLog;
}

export class Store {
  readonly jobs: JobStore;
  readonly rules: RuleStore;
  readonly instances: InstanceStore;
  readonly events: EventLog;

  private constructor(readonly database: Database) {
    this.jobs = new JobStore(database);
    this.rules = new RuleStore(database);
    this.instances = new InstanceStore(database);
    this.events = new EventLog(database);
  }

  /** Opens (and migrates) the database; a StartupError when it cannot. */
  static async open(options: StoreOptions): Promise<Store> {
    const database = await Database.open({
      url: options.databaseUrl,
      sqliteFile: path.join(options.dataDir, SQLITE_FILE),
      log: options.log,
    });
    return new Store(database);
  }

  /** Leases held by `owner`, expiring `ttlMs` after each renewal. */
  leases(owner: string, ttlMs: number): DatabaseLeases {
    return new DatabaseLeases(this.database, owner, ttlMs);
  }

  /** Reaches the database once (readiness); DATABASE_UNAVAILABLE when it cannot. */
  async ping(): Promise<void> {
    await this.database.query((db) => sql`select 1`.execute(db));
  }

  close(): Promise<void> {
    return this.database.close();
  }
}
