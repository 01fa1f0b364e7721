/**
 * Job records in the database. The job's name is its primary key, so reserving a name is one
 * INSERT: of two starts with one name exactly one wins (JOB_NAME_IN_USE for the other), on every
 * instance sharing the database. Status changes can be conditional (on the current status, on the
 * instance that runs the job), so a late or stale writer never overwrites a newer state.
 */
import { sql, type Insertable, type Kysely, type Selectable } from "kysely";
import { badInput, TrialgraphError } from "../errors.js";
import { isUniqueViolation, type Database } from "./database.js";
import type {
  Backend, RecordPage, RuleEvaluationStatus, RuleFinding, RuleSpec, RuleSummaryRecord, TrainingJobRecord, TrainingJobStatus,
} from "./records.js";
import type { JobsTable, Schema } from "./schema.js";

export const MAX_JOB_PAGE_SIZE = 100;

export interface StoredJob {
  record: TrainingJobRecord;
  /** The start request as the client sent it (JSON), when the service started the job. */
  spec: unknown;
  /** LOCAL: the instance that runs (or queues) it. */
  instanceId: string | null;
}

/** A rule attached when its job is created (written in the same transaction as the job). */
export interface NewRule {
  name: string;
  spec: RuleSpec | null;
  evaluator: "SERVICE";
  attachedAt: Date;
  status: RuleEvaluationStatus;
  statusDetails: string | null;
  /** Firings already known (an imported summary's). */
  findings?: readonly RuleFinding[];
}

export interface JobListQuery {
  backend: Backend;
  first: number;
  after?: string | null;
  status?: TrainingJobStatus | null;
  nameContains?: string | null;
}

/** Fields a writer may change; absent ones are left alone. */
export type JobPatch = Partial<Pick<TrainingJobRecord,
  "status" | "secondaryStatus" | "failureReason" | "arn" | "startedAt" | "endedAt" | "progress" | "debugOutputPath">>;

export interface JobCondition {
  /** Only while the job is in one of these statuses. */
  statusIn?: readonly TrainingJobStatus[];
  /** Only while this instance runs it. */
  instanceId?: string;
}

const ms = (d: Date | null | undefined) => (d ? d.getTime() : null);
const date = (v: number | null) => (v == null ? null : new Date(Number(v)));

export function recordFromRow(row: Selectable<JobsTable>): TrainingJobRecord {
  return {
    name: row.name,
    arn: row.arn,
    backend: row.backend as Backend,
    status: row.status as TrainingJobStatus,
    secondaryStatus: row.secondary_status,
    failureReason: row.failure_reason,
    createdAt: new Date(Number(row.created_at)),
    startedAt: date(row.started_at),
    endedAt: date(row.ended_at),
    hyperparameters: JSON.parse(row.hyperparameters) as Record<string, string>,
    debugOutputPath: row.debug_output_path,
    // Summaries of the service's rules live in job_rules (RuleStore.summaries).
    ruleSummaries: [],
    progress: row.progress_total == null ? null : { current: Number(row.progress_current ?? 0), total: Number(row.progress_total) },
  };
}

function encodeCursor(r: TrainingJobRecord): string {
  return Buffer.from(JSON.stringify({ t: r.createdAt.getTime(), n: r.name }), "utf8").toString("base64url");
}

function decodeCursor(cursor: string): { t: number; n: string } {
  try {
    const v = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
    if (typeof v?.t === "number" && typeof v?.n === "string") return v;
  } catch {
    // fall through
  }
  throw badInput("after is not a cursor from a previous trainingJobs page", "after");
}

/** Inserts rules of one job from `position` on (shared by job creation and later attachments). */
export async function insertRules(db: Kysely<Schema>, jobName: string, rules: readonly NewRule[], position: number): Promise<void> {
  if (!rules.length) return;
  await db.insertInto("job_rules").values(rules.map((r, i) => ({
    job_name: jobName,
    rule_name: r.name,
    position: position + i,
    spec: r.spec ? JSON.stringify(r.spec) : null,
    evaluator: r.evaluator,
    attached_at: r.attachedAt.getTime(),
    status: r.status,
    status_details: r.statusDetails,
    last_modified_at: r.attachedAt.getTime(),
    evaluation_job_arn: null,
    details: r.findings?.length ? JSON.stringify({ findings: r.findings }) : null,
    finished: 0,
  }))).execute();
}

export class JobStore {
  constructor(private readonly database: Database, private readonly now: () => Date = () => new Date()) {}

  /** The row of a job record (its spec as JSON, and the instance that runs it, when there is one). */
  private rowOf(record: TrainingJobRecord, spec: unknown, instanceId: string | null): Insertable<JobsTable> {
    return {
      name: record.name,
      backend: record.backend,
      status: record.status,
      secondary_status: record.secondaryStatus,
      failure_reason: record.failureReason,
      arn: record.arn,
      created_at: record.createdAt.getTime(),
      started_at: ms(record.startedAt),
      ended_at: ms(record.endedAt),
      hyperparameters: JSON.stringify(record.hyperparameters),
      debug_output_path: record.debugOutputPath,
      progress_current: record.progress?.current ?? null,
      progress_total: record.progress?.total ?? null,
      spec: spec === null ? null : JSON.stringify(spec),
      instance_id: instanceId,
      updated_at: this.now().getTime(),
    };
  }

  /**
   * Records a new job (and the rules the service evaluates on it) in one transaction. The name is the
   * key: a name already taken is JOB_NAME_IN_USE, whichever instance took it.
   */
  async create(record: TrainingJobRecord, options: { spec?: unknown; instanceId?: string | null; rules?: readonly NewRule[] } = {}): Promise<void> {
    try {
      await this.database.tx(async (db) => {
        await db.insertInto("jobs").values(this.rowOf(record, options.spec ?? null, options.instanceId ?? null)).execute();
        await insertRules(db, record.name, options.rules ?? [], 0);
      });
    } catch (e) {
      if (isUniqueViolation(e)) {
        throw new TrialgraphError("JOB_NAME_IN_USE", `a training job named ${record.name} already exists`, { field: "name" });
      }
      throw e;
    }
  }

  /** Records a job the service did not start (rules attached to a SageMaker job started elsewhere); a no-op when known. */
  async adopt(record: TrainingJobRecord): Promise<void> {
    await this.database.query((db) => db.insertInto("jobs").values(this.rowOf(record, null, null)).onConflict((oc) => oc.column("name").doNothing()).execute());
  }

  /** Forgets a job whose start failed before it began (its name becomes free again). */
  async remove(name: string): Promise<void> {
    await this.database.tx(async (db) => {
      await db.deleteFrom("rule_evaluations").where("job_name", "=", name).execute();
      await db.deleteFrom("job_rules").where("job_name", "=", name).execute();
      await db.deleteFrom("jobs").where("name", "=", name).execute();
    });
  }

  async get(name: string): Promise<StoredJob | null> {
    const row = await this.database.query((db) => db.selectFrom("jobs").selectAll().where("name", "=", name).executeTakeFirst());
    return row ? { record: recordFromRow(row), spec: row.spec ? JSON.parse(row.spec) : null, instanceId: row.instance_id } : null;
  }

  /**
   * The job whose trial is at `trialPath` (its debugOutputPath, with or without a trailing slash), or
   * null: a subscription may wait for such a trial before its first step is written.
   */
  async byTrialPath(trialPath: string): Promise<TrainingJobRecord | null> {
    const bare = trialPath.replace(/\/+$/, "");
    const row = await this.database.query((db) => db.selectFrom("jobs").selectAll()
      .where("debug_output_path", "in", [bare, `${bare}/`]).orderBy("created_at", "desc").limit(1).executeTakeFirst());
    return row ? recordFromRow(row) : null;
  }

  /** One backend's jobs, newest first (then by name, descending, so the order is total). */
  async list(query: JobListQuery): Promise<RecordPage<TrainingJobRecord>> {
    const first = query.first;
    if (!Number.isInteger(first) || first < 1 || first > MAX_JOB_PAGE_SIZE) {
      throw badInput(`first must be an integer from 1 to ${MAX_JOB_PAGE_SIZE}`, "first");
    }
    const cursor = query.after != null ? decodeCursor(query.after) : null;
    const rows = await this.database.query((db) => {
      let q = db.selectFrom("jobs").selectAll().where("backend", "=", query.backend);
      if (query.status) q = q.where("status", "=", query.status);
      if (query.nameContains) {
        const needle = query.nameContains.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`);
        q = q.where(sql<boolean>`lower(name) like ${`%${needle}%`} escape '\\'`);
      }
      if (cursor) {
        q = q.where((eb) => eb.or([
          eb("created_at", "<", cursor.t),
          eb.and([eb("created_at", "=", cursor.t), eb("name", "<", cursor.n)]),
        ]));
      }
      return q.orderBy("created_at", "desc").orderBy("name", "desc").limit(first + 1).execute();
    });
    const nodes = rows.slice(0, first).map(recordFromRow);
    return {
      nodes,
      endCursor: nodes.length > 0 ? encodeCursor(nodes[nodes.length - 1]) : null,
      hasNextPage: rows.length > first,
    };
  }

  /**
   * Applies `patch` when `condition` holds; returns the job as it is now, or null when the job does
   * not exist or the condition failed (someone else changed it first).
   */
  async update(name: string, patch: JobPatch, condition: JobCondition = {}): Promise<TrainingJobRecord | null> {
    const set: Partial<Record<keyof JobsTable, unknown>> = { updated_at: this.now().getTime() };
    if (patch.status !== undefined) set.status = patch.status;
    if (patch.secondaryStatus !== undefined) set.secondary_status = patch.secondaryStatus;
    if (patch.failureReason !== undefined) set.failure_reason = patch.failureReason;
    if (patch.arn !== undefined) set.arn = patch.arn;
    if (patch.startedAt !== undefined) set.started_at = ms(patch.startedAt);
    if (patch.endedAt !== undefined) set.ended_at = ms(patch.endedAt);
    if (patch.debugOutputPath !== undefined) set.debug_output_path = patch.debugOutputPath;
    if (patch.progress !== undefined) {
      set.progress_current = patch.progress?.current ?? null;
      set.progress_total = patch.progress?.total ?? null;
    }
    const row = await this.database.query((db) => {
      let q = db.updateTable("jobs").set(set as never).where("name", "=", name);
      if (condition.statusIn) q = q.where("status", "in", [...condition.statusIn]);
      if (condition.instanceId !== undefined) q = q.where("instance_id", "=", condition.instanceId);
      return q.returningAll().executeTakeFirst();
    });
    return row ? recordFromRow(row) : null;
  }

  /**
   * Imports job records kept elsewhere before (the data folder's job.json files) once: in one
   * transaction, unless `marker` says it was done; jobs already known are left as they are. Returns
   * how many jobs were added.
   */
  async importOnce(marker: string, jobs: readonly { record: TrainingJobRecord; rules: readonly RuleSummaryRecord[] }[]): Promise<number | null> {
    return this.database.tx(async (db) => {
      if (await db.selectFrom("meta").select("key").where("key", "=", marker).executeTakeFirst()) return null;
      let added = 0;
      for (const { record, rules } of jobs) {
        const inserted = await db.insertInto("jobs").values(this.rowOf(record, null, null)).onConflict((oc) => oc.column("name").doNothing()).returning("name").executeTakeFirst();
        if (!inserted) continue;
        added++;
        await insertRules(db, record.name, rules.map((r) => ({
          name: r.ruleConfigurationName,
          spec: null,
          evaluator: "SERVICE" as const,
          attachedAt: r.lastModifiedTime ?? record.createdAt,
          status: r.status,
          statusDetails: r.statusDetails,
          findings: r.findings,
        })), 0);
        // Imported rules carry their last summary; none of them is evaluated again.
        await db.updateTable("job_rules").set({ finished: 1 }).where("job_name", "=", record.name).execute();
      }
      await db.insertInto("meta").values({ key: marker, value: JSON.stringify({ at: this.now().toISOString(), jobs: added }) }).execute();
      return added;
    });
  }

  /** Whether an import marked `marker` was done (importOnce checks again, in its transaction). */
  async imported(marker: string): Promise<boolean> {
    return (await this.database.query((db) => db.selectFrom("meta").select("key").where("key", "=", marker).executeTakeFirst())) !== undefined;
  }

  /** LOCAL jobs an instance runs or queues that have not ended. */
  async unfinishedOf(instanceId: string): Promise<TrainingJobRecord[]> {
    const rows = await this.database.query((db) => db.selectFrom("jobs").selectAll()
      .where("instance_id", "=", instanceId).where("status", "in", ["IN_PROGRESS", "STOPPING"]).execute());
    return rows.map(recordFromRow);
  }
}
