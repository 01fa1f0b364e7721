/**
 * Service instances sharing the database. Each registers at start and heartbeats; the survivors
 * end the work of one that went silent (ended by `endInstance`, in one transaction, so two survivors
 * never both report it).
 */
import type { Database } from "./database.js";
import { recordFromRow } from "./job-store.js";
import type { RuleEvaluationStatus, RuleSummaryRecord, TrainingJobRecord, TrainingJobStatus } from "./records.js";

export interface InstanceInfo {
  id: string;
  host: string;
  pid: number;
  startedAt: Date;
  /** Time since its last heartbeat, by the database's clock. */
  silentMs: number;
}

export interface EndedInstance {
  /** Its LOCAL jobs that were still running or queued, now ended, with the status they had. */
  jobs: { record: TrainingJobRecord; previousStatus: TrainingJobStatus }[];
  /** Rules of those jobs that had no final status, now STOPPED. */
  rules: { jobName: string; summary: RuleSummaryRecord; previousStatus: RuleEvaluationStatus }[];
}

export interface EndInstanceTexts {
  /** failureReason of a job that was running (it becomes FAILED). */
  failureReason: string;
  /** statusDetails of its rules that had no final status (they become STOPPED). */
  ruleDetails: string;
}

export class InstanceStore {
  constructor(private readonly database: Database) {}

  async register(id: string, host: string, pid: number): Promise<void> {
    await this.database.query((db) => db.insertInto("instances")
      .values({ id, host, pid, started_at: this.database.now(), heartbeat_at: this.database.now() })
      .onConflict((oc) => oc.column("id").doUpdateSet({ heartbeat_at: this.database.now() }))
      .execute());
  }

  /** False when the instance is no longer registered (the others took it for dead). */
  async heartbeat(id: string): Promise<boolean> {
    const row = await this.database.query((db) => db.updateTable("instances").set({ heartbeat_at: this.database.now() })
      .where("id", "=", id).returning("id").executeTakeFirst());
    return row !== undefined;
  }

  async list(): Promise<InstanceInfo[]> {
    const rows = await this.database.query((db) => db.selectFrom("instances")
      .select(["id", "host", "pid", "started_at", (eb) => eb(this.database.now(), "-", eb.ref("heartbeat_at")).as("silent")])
      .orderBy("started_at").execute());
    return rows.map((r) => ({ id: r.id, host: r.host, pid: Number(r.pid), startedAt: new Date(Number(r.started_at)), silentMs: Number(r.silent) }));
  }

  /**
   * Ends a dead instance's work: its running LOCAL jobs become FAILED (stopping ones STOPPED), their
   * unfinished rules STOPPED, its leases are freed and its registration removed. Returns what changed
   * (nothing when another survivor already did it).
   */
  async endInstance(id: string, texts: EndInstanceTexts, now: Date): Promise<EndedInstance> {
    return this.database.tx(async (db) => {
      const ended: EndedInstance = { jobs: [], rules: [] };
      const running = await db.selectFrom("jobs").selectAll()
        .where("instance_id", "=", id).where("status", "in", ["IN_PROGRESS", "STOPPING"]).execute();
      const at = now.getTime();
      for (const job of running) {
        const stopping = job.status === "STOPPING";
        const row = await db.updateTable("jobs").set({
          status: stopping ? "STOPPED" : "FAILED",
          secondary_status: stopping ? "Stopped" : "Failed",
          failure_reason: stopping ? job.failure_reason : texts.failureReason.slice(0, 1024),
          ended_at: at,
          updated_at: at,
        }).where("name", "=", job.name).where("status", "=", job.status).returningAll().executeTakeFirst();
        if (row) ended.jobs.push({ record: recordFromRow(row), previousStatus: job.status as TrainingJobStatus });
      }
      const names = ended.jobs.map((j) => j.record.name);
      if (names.length) {
        const open = await db.selectFrom("job_rules").selectAll().where("job_name", "in", names).where("finished", "=", 0).execute();
        for (const rule of open) {
          const stop = rule.status === "IN_PROGRESS" || rule.status === "STOPPING";
          await db.updateTable("job_rules").set({
            finished: 1,
            ...(stop ? { status: "STOPPED", status_details: texts.ruleDetails, last_modified_at: at } : {}),
          }).where("job_name", "=", rule.job_name).where("rule_name", "=", rule.rule_name).execute();
          if (!stop) continue;
          ended.rules.push({
            jobName: rule.job_name,
            previousStatus: rule.status as RuleEvaluationStatus,
            summary: {
              ruleConfigurationName: rule.rule_name,
              ruleEvaluationJobArn: rule.evaluation_job_arn,
              status: "STOPPED",
              statusDetails: texts.ruleDetails,
              lastModifiedTime: now,
              evaluator: "SERVICE",
              findings: rule.details ? (JSON.parse(rule.details).findings ?? []) : [],
            },
          });
        }
      }
      await db.deleteFrom("leases").where("owner", "=", id).execute();
      await db.deleteFrom("instances").where("id", "=", id).execute();
      return ended;
    });
  }

  /** A clean shutdown: the instance's leases are freed and it leaves the registry. */
  async deregister(id: string): Promise<void> {
    await this.database.tx(async (db) => {
      await db.deleteFrom("leases").where("owner", "=", id).execute();
      await db.deleteFrom("instances").where("id", "=", id).execute();
    });
  }
}
