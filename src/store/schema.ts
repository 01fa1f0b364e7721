/**
 * The tables as Kysely sees them (one schema for SQLite and PostgreSQL; migrations.ts creates it).
 * Times are milliseconds since the epoch (BIGINT), booleans 0/1, structured values JSON text: the
 * same columns mean the same thing on both engines.
 */
import type { Generated } from "kysely";

export interface SchemaMigrationsTable {
  version: number;
  name: string;
  applied_at: number;
}

/** Small facts about the database itself (e.g. which data folders were imported). */
export interface MetaTable {
  key: string;
  value: string;
}

/** Every job the service owns: local jobs, and SageMaker jobs it started or attached rules to. */
export interface JobsTable {
  name: string;
  backend: string;
  status: string;
  secondary_status: string | null;
  failure_reason: string | null;
  arn: string | null;
  created_at: number;
  started_at: number | null;
  ended_at: number | null;
  /** JSON object of strings. */
  hyperparameters: string;
  debug_output_path: string | null;
  progress_current: number | null;
  progress_total: number | null;
  /** JSON StartTrainingJobSpec as the client sent it (null for jobs started elsewhere or imported). */
  spec: string | null;
  /** LOCAL: the instance that runs (or queues) the job. */
  instance_id: string | null;
  updated_at: number;
}

/** A rule attached to a job and evaluated by the service (evaluator SERVICE), with its summary. */
export interface JobRulesTable {
  job_name: string;
  /** RuleConfigurationName, unique per job. */
  rule_name: string;
  /** Order of attachment (summaries are listed in it). */
  position: number;
  /** JSON RuleSpec; null for summaries imported without their spec. */
  spec: string | null;
  evaluator: string;
  attached_at: number;
  status: string;
  status_details: string | null;
  last_modified_at: number | null;
  evaluation_job_arn: string | null;
  /** JSON object: any further summary fields (kept whole, so new summary fields need no migration). */
  details: string | null;
  /** 1 once the rule has its final status: nothing more will be evaluated. */
  finished: number;
}

/** A rule's evaluation history: one row per evaluated step (compacted), plus its conclusions. */
export interface RuleEvaluationsTable {
  id: Generated<number>;
  job_name: string;
  rule_name: string;
  step: number | null;
  status: string;
  message: string;
  evaluated_at: number;
  /** 1 when the status differs from the previous entry's: kept by compaction. */
  status_change: number;
}

/** Live service instances: each heartbeats; one silent for a lease period is dead. */
export interface InstancesTable {
  id: string;
  host: string;
  pid: number;
  started_at: number;
  heartbeat_at: number;
}

/** Leases: at most one owner per name until expires_at (database clock). */
export interface LeasesTable {
  name: string;
  owner: string;
  expires_at: number;
}

/** The last id handed out per sequence (one row, "events": the event log's). */
export interface EventSequenceTable {
  name: string;
  last_id: number;
}

/** Events published to subscribers, kept for a bounded time so a client can resume after a cursor. */
export interface EventLogTable {
  id: number;
  topic: string;
  /** The job the event is about (replays of one job's subscriptions read only its rows). */
  job_name: string | null;
  /** JSON of the event. */
  payload: string;
  created_at: number;
}

export interface Schema {
  schema_migrations: SchemaMigrationsTable;
  meta: MetaTable;
  jobs: JobsTable;
  job_rules: JobRulesTable;
  rule_evaluations: RuleEvaluationsTable;
  instances: InstancesTable;
  leases: LeasesTable;
  event_sequence: EventSequenceTable;
  event_log: EventLogTable;
}
