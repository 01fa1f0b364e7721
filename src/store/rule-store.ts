/**
 * Rules the service evaluates on jobs (evaluator SERVICE): their attachments (spec, since when),
 * their summaries, and each rule's evaluation history. Every instance answers summaries and history
 * from here; only the instance holding a job's rule lease writes them, and each of its writes checks
 * the lease in the same transaction (a writer that lost its lease writes nothing).
 */
import type { Kysely, Selectable } from "kysely";
import { badInput } from "../errors.js";
import { isUniqueViolation, type Database } from "./database.js";
import { insertRules, type NewRule } from "./job-store.js";
import type {
  Backend, RecordPage, RuleEvaluationRecord, RuleEvaluationStatus, RuleEvaluator, RuleSpec, RuleSummaryRecord, TrainingJobStatus,
} from "./records.js";
import type { JobRulesTable, Schema } from "./schema.js";

export const MAX_EVALUATION_PAGE_SIZE = 100;

export interface StoredRule {
  summary: RuleSummaryRecord;
  spec: RuleSpec | null;
  attachedAt: Date;
  finished: boolean;
}

/** A rule still to be evaluated, with what the supervisor needs to know about its job. */
export interface OpenRule extends StoredRule {
  jobName: string;
  backend: Backend;
  jobStatus: TrainingJobStatus;
  trialPath: string | null;
  /** LOCAL: the instance running the job. */
  jobInstanceId: string | null;
}

/** A summary to write: the rule's current state. */
export interface RuleChange {
  summary: RuleSummaryRecord;
  finished: boolean;
}

export interface NewEvaluation {
  ruleName: string;
  step: number | null;
  status: RuleEvaluationStatus;
  message: string;
  time: Date;
  statusChange: boolean;
}

/** The newest history entry of a rule (where a resumed evaluation picks up). */
export interface LastEvaluation {
  /** The largest step evaluated so far (null when none). */
  step: number | null;
  status: RuleEvaluationStatus | null;
}

/**
 * Summary fields with their own column; anything else a summary carries (findings, and whatever a
 * later version adds) goes to the JSON details column whole, so it needs no migration.
 */
const SUMMARY_COLUMNS = new Set(["ruleConfigurationName", "ruleEvaluationJobArn", "status", "statusDetails", "lastModifiedTime", "evaluator"]);

function extraFields(summary: RuleSummaryRecord): string | null {
  const extra = Object.fromEntries(Object.entries(summary).filter(([k, v]) => !SUMMARY_COLUMNS.has(k) && v !== undefined));
  return Object.keys(extra).length ? JSON.stringify(extra) : null;
}

function summaryFromRow(row: Selectable<JobRulesTable>): RuleSummaryRecord {
  const extra = row.details ? (JSON.parse(row.details) as Record<string, unknown>) : {};
  return {
    findings: [],
    ...extra,
    ruleConfigurationName: row.rule_name,
    ruleEvaluationJobArn: row.evaluation_job_arn,
    status: row.status as RuleEvaluationStatus,
    statusDetails: row.status_details,
    lastModifiedTime: row.last_modified_at == null ? null : new Date(Number(row.last_modified_at)),
    evaluator: row.evaluator as RuleEvaluator,
  };
}

function storedFromRow(row: Selectable<JobRulesTable>): StoredRule {
  return {
    summary: summaryFromRow(row),
    spec: row.spec ? (JSON.parse(row.spec) as RuleSpec) : null,
    attachedAt: new Date(Number(row.attached_at)),
    finished: row.finished === 1,
  };
}

const encodeCursor = (id: number) => Buffer.from(`ev:${id}`, "utf8").toString("base64url");
function decodeCursor(cursor: string): number {
  const m = /^ev:(\d{1,15})$/.exec(Buffer.from(cursor, "base64url").toString("utf8"));
  if (!m) throw badInput("after is not a cursor from a previous evaluations page", "after");
  return Number(m[1]);
}

const CHUNK = 400;

export class RuleStore {
  constructor(private readonly database: Database) {}

  /** Attaches rules to a known job; a name the job already has is BAD_USER_INPUT. */
  async attach(jobName: string, rules: readonly NewRule[]): Promise<void> {
    try {
      await this.database.tx(async (db) => {
        const last = await db.selectFrom("job_rules").select((eb) => eb.fn.max("position").as("p")).where("job_name", "=", jobName).executeTakeFirst();
        await insertRules(db, jobName, rules, last?.p == null ? 0 : Number(last.p) + 1);
      });
    } catch (e) {
      if (isUniqueViolation(e)) throw badInput(`job ${jobName} already has a rule with one of these names: ${rules.map((r) => r.name).join(", ")}`, "name");
      throw e;
    }
  }

  /** Summaries of the service's rules, per job, in attachment order (jobs without any are absent). */
  async summaries(jobNames: readonly string[]): Promise<Map<string, RuleSummaryRecord[]>> {
    const out = new Map<string, RuleSummaryRecord[]>();
    if (!jobNames.length) return out;
    const unique = [...new Set(jobNames)];
    for (let i = 0; i < unique.length; i += CHUNK) {
      const rows = await this.database.query((db) => db.selectFrom("job_rules").selectAll()
        .where("job_name", "in", unique.slice(i, i + CHUNK)).orderBy("job_name").orderBy("position").execute());
      for (const row of rows) {
        let list = out.get(row.job_name);
        if (!list) out.set(row.job_name, (list = []));
        list.push(summaryFromRow(row));
      }
    }
    return out;
  }

  /** Every rule of one job, in attachment order. */
  async forJob(jobName: string): Promise<StoredRule[]> {
    const rows = await this.database.query((db) => db.selectFrom("job_rules").selectAll().where("job_name", "=", jobName).orderBy("position").execute());
    return rows.map(storedFromRow);
  }

  /** Every rule still to evaluate (not finished), with its job's backend, status and trial. */
  async open(): Promise<OpenRule[]> {
    const rows = await this.database.query((db) => db.selectFrom("job_rules as r").innerJoin("jobs as j", "j.name", "r.job_name")
      .selectAll("r")
      .select(["j.backend as job_backend", "j.status as job_status", "j.debug_output_path as job_trial", "j.instance_id as job_instance"])
      .where("r.finished", "=", 0).orderBy("r.job_name").orderBy("r.position").execute());
    return rows.map((row) => ({
      ...storedFromRow(row),
      jobName: row.job_name,
      backend: row.job_backend as Backend,
      jobStatus: row.job_status as TrainingJobStatus,
      trialPath: row.job_trial,
      jobInstanceId: row.job_instance,
    }));
  }

  /** Where each rule's history stands: its largest evaluated step and latest status. */
  async lastEvaluations(jobName: string): Promise<Map<string, LastEvaluation>> {
    const out = new Map<string, LastEvaluation>();
    const steps = await this.database.query((db) => db.selectFrom("rule_evaluations")
      .select(["rule_name", (eb) => eb.fn.max("step").as("step"), (eb) => eb.fn.max("id").as("last")])
      .where("job_name", "=", jobName).groupBy("rule_name").execute());
    if (!steps.length) return out;
    const latest = await this.database.query((db) => db.selectFrom("rule_evaluations").select(["id", "status"])
      .where("id", "in", steps.map((s) => Number(s.last))).execute());
    const statusOf = new Map(latest.map((r) => [Number(r.id), r.status as RuleEvaluationStatus]));
    for (const s of steps) out.set(s.rule_name, { step: s.step == null ? null : Number(s.step), status: statusOf.get(Number(s.last)) ?? null });
    return out;
  }

  /**
   * Writes summaries and history of one job in one transaction, if `fence` still holds the lease;
   * returns false (writing nothing) when it does not. Then trims each rule in `compact` to its status
   * changes plus the newest `keep` entries.
   */
  async record(
    jobName: string,
    fence: { lease: string; owner: string },
    changes: readonly RuleChange[],
    entries: readonly NewEvaluation[],
    compact: readonly { ruleName: string; keep: number }[] = [],
  ): Promise<boolean> {
    return this.database.tx(async (db) => {
      if (!(await this.holds(db, fence))) return false;
      for (const c of changes) {
        await db.updateTable("job_rules").set({
          status: c.summary.status,
          status_details: c.summary.statusDetails,
          last_modified_at: c.summary.lastModifiedTime?.getTime() ?? null,
          evaluation_job_arn: c.summary.ruleEvaluationJobArn,
          details: extraFields(c.summary),
          finished: c.finished ? 1 : 0,
        }).where("job_name", "=", jobName).where("rule_name", "=", c.summary.ruleConfigurationName).where("finished", "=", 0).execute();
      }
      for (let i = 0; i < entries.length; i += CHUNK) {
        await db.insertInto("rule_evaluations").values(entries.slice(i, i + CHUNK).map((e) => ({
          job_name: jobName,
          rule_name: e.ruleName,
          step: e.step,
          status: e.status,
          message: e.message,
          evaluated_at: e.time.getTime(),
          status_change: e.statusChange ? 1 : 0,
        }))).execute();
      }
      for (const { ruleName, keep } of compact) await this.compact(db, jobName, ruleName, keep);
      return true;
    });
  }

  private async holds(db: Kysely<Schema>, fence: { lease: string; owner: string }): Promise<boolean> {
    let q = db.selectFrom("leases").select("owner")
      .where("name", "=", fence.lease).where("owner", "=", fence.owner).where("expires_at", ">", this.database.now());
    // PostgreSQL: the lease row stays locked until commit, so no one can take it over mid-write.
    if (this.database.engine === "postgres") q = q.forUpdate();
    return (await q.executeTakeFirst()) !== undefined;
  }

  /** Deletes a rule's entries older than its newest `keep`, except status changes. */
  private async compact(db: Kysely<Schema>, jobName: string, ruleName: string, keep: number): Promise<void> {
    const boundary = await db.selectFrom("rule_evaluations").select("id")
      .where("job_name", "=", jobName).where("rule_name", "=", ruleName)
      .orderBy("id", "desc").limit(1).offset(keep).executeTakeFirst();
    if (!boundary) return;
    await db.deleteFrom("rule_evaluations")
      .where("job_name", "=", jobName).where("rule_name", "=", ruleName)
      .where("status_change", "=", 0).where("id", "<=", Number(boundary.id)).execute();
  }

  /** A rule's history, oldest first, `first` entries after the cursor. */
  async evaluations(jobName: string, ruleName: string, page: { first: number; after?: string | null }): Promise<RecordPage<RuleEvaluationRecord>> {
    if (!Number.isInteger(page.first) || page.first < 1 || page.first > MAX_EVALUATION_PAGE_SIZE) {
      throw badInput(`first must be an integer from 1 to ${MAX_EVALUATION_PAGE_SIZE}`, "first");
    }
    const after = page.after != null ? decodeCursor(page.after) : null;
    const rows = await this.database.query((db) => {
      let q = db.selectFrom("rule_evaluations").select(["id", "step", "status", "message", "evaluated_at"])
        .where("job_name", "=", jobName).where("rule_name", "=", ruleName);
      if (after !== null) q = q.where("id", ">", after);
      return q.orderBy("id", "asc").limit(page.first + 1).execute();
    });
    const nodes = rows.slice(0, page.first).map((r) => ({
      id: Number(r.id),
      step: r.step == null ? null : Number(r.step),
      status: r.status as RuleEvaluationStatus,
      message: r.message,
      time: new Date(Number(r.evaluated_at)),
    }));
    return { nodes, endCursor: nodes.length ? encodeCursor(nodes[nodes.length - 1].id) : null, hasNextPage: rows.length > page.first };
  }
}
