/**
 * The service's own rule evaluation for jobs: rules of local jobs, rules with evaluator SERVICE on
 * SageMaker jobs, and rules attached later. Rules, their summaries and their evaluation history live
 * in the database, so they outlive any process and every instance answers from the same place.
 *
 * Exactly one instance evaluates a job's rules at a time: the holder of the job's lease
 * (`rules:<job>` in the database). Every instance runs a supervisor that, each third of a lease
 * period, renews the leases it holds and takes the lease of any job with rules still to evaluate
 * that nobody holds (its evaluator stopped or died), then resumes there: it re-reads the trial from
 * the start (history and events pick up where the previous evaluator left off) and goes on to the
 * final status. Writes of summaries and history check the lease in the same transaction, so an
 * evaluator that lost its lease writes nothing more. A local job is evaluated by the instance that
 * trains it (it gets every step as it is written), until it ends.
 */
import type { Logger } from "pino";
import { TrialgraphError } from "../errors.js";
import { urlHostAllowed } from "../host-allow-list.js";
import { ConcurrencyLimiter } from "../storage/concurrency.js";
import type { EventBus } from "../events/event-bus.js";
import type { TrialRegistry } from "../trials/trial-registry.js";
import type { TrialPaths } from "../trials/trial-paths.js";
import type { Trial } from "../trials/trial.js";
import {
  RuleSession, builtinRules, evaluateRules, validateRuleSpecs, type ConfiguredRule, type RuleEvaluationEvent, type RuleRegistry,
} from "../rules/index.js";
import type { DatabaseLeases, JobStore, NewEvaluation, NewRule, OpenRule, RuleChange, RuleStore } from "../store/index.js";
import type { RuleDefinitionInfo, RuleEvaluationResult, RuleService } from "./rule-service.js";
import type { JobService } from "./job-service.js";
import {
  TERMINAL_JOB_STATUSES, TERMINAL_RULE_STATUSES, type RecordPage, type RuleEvaluationRecord, type RuleEvaluationStatus,
  type RuleSpec, type RuleSummaryRecord, type TrainingJobRecord,
} from "./types.js";

/** Rules evaluated together (a job's rules when its evaluation opened, or one attachRules call): one RuleSession. */
interface RuleGroup {
  specs: RuleSpec[];
  session: RuleSession | null;
  /** Summaries known before the session could open (the trial did not exist yet). */
  pending: RuleSummaryRecord[];
}

/** What the database holds for a rule (the base of the next write and of status events). */
interface PersistedRule {
  summary: RuleSummaryRecord;
  finished: boolean;
}

interface RuleHistory {
  /** The largest step already in the history (steps up to it are not written again after a resume). */
  lastStep: number | null;
  lastStatus: RuleEvaluationStatus | null;
  sinceCompaction: number;
}

interface JobSession {
  jobName: string;
  backend: "LOCAL" | "SAGEMAKER";
  trialPath: string;
  lease: string;
  groups: RuleGroup[];
  persisted: Map<string, PersistedRule>;
  history: Map<string, RuleHistory>;
  /** History entries evaluated but not written yet. */
  entries: NewEvaluation[];
  timer: NodeJS.Timeout | null;
  ended: boolean;
  busy: Promise<void>;
  releaseWatch: (() => void) | null;
  closed: boolean;
  /** A write failed (database away): the supervisor retries it. */
  dirty: boolean;
  /** When history entries were last written (they are written together, at most every HISTORY_FLUSH_MS). */
  lastWrite: number;
  flushTimer: NodeJS.Timeout | null;
}

export interface JobRulesOptions {
  trials: TrialRegistry;
  /** Names the closest known paths when a trial is not found. */
  trialPaths?: TrialPaths;
  events: EventBus;
  registry: RuleRegistry;
  log: Logger;
  webhookUrl: string | null;
  /** Hosts a rule's own webhook URL may target (TRIALGRAPH_WEBHOOK_ALLOWED_HOSTS); webhookUrl's host always may. */
  webhookAllowedHosts?: readonly string[];
  /** evaluateRules queries with custom rules running at once (each custom rule is a worker thread); others wait. */
  customRuleQueries?: number;
  /** How often trials of jobs not trained here (SageMaker's on S3) are re-read for new steps (ms). */
  pollIntervalMs: number;
  rules: RuleStore;
  jobs: JobStore;
  /** This instance's leases (owner: the instance id). */
  leases: DatabaseLeases;
  /** Evaluations kept per rule besides its status changes (older ones are compacted); 0 keeps no history. */
  historyLimit: number;
  /**
   * Keeps a SageMaker job's status watched while its rules run (so the engine learns when it ends,
   * also for jobs started elsewhere); returns the release function.
   */
  watchJob?: (jobName: string) => () => void;
  /** Whether this instance trains the (local) job: its steps then arrive as events. */
  trainsHere?: (jobName: string) => boolean;
}

const LEASE_PREFIX = "rules:";
/**
 * History entries alone (no summary changed) are written at most this often, or once this many wait:
 * one transaction per second instead of one per step. Entries not yet written when an evaluator dies
 * are not lost: its successor evaluates those steps again.
 */
const HISTORY_FLUSH_MS = 1_000;
const HISTORY_FLUSH_ENTRIES = 512;
/** History entries held while the database is away, per job, before the oldest are dropped. */
const MAX_UNWRITTEN_ENTRIES = 50_000;

const sameSummary = (a: RuleSummaryRecord, b: RuleSummaryRecord) =>
  a.status === b.status && a.statusDetails === b.statusDetails && a.ruleEvaluationJobArn === b.ruleEvaluationJobArn &&
  (a.lastModifiedTime?.getTime() ?? null) === (b.lastModifiedTime?.getTime() ?? null) &&
  JSON.stringify({ ...a, lastModifiedTime: null }) === JSON.stringify({ ...b, lastModifiedTime: null });

export class JobRules implements RuleService {
  private readonly sessions = new Map<string, JobSession>();
  private jobs!: JobService;
  private statusWatch: AsyncIterableIterator<unknown> | null = null;
  private tickTimer: NodeJS.Timeout | null = null;
  private ticking: Promise<void> | null = null;
  private closed = false;
  private lastRenewal = Date.now();
  private unavailableLogged = false;
  private readonly tickMs: number;
  private readonly customRuleQueries: ConcurrencyLimiter;

  constructor(private readonly options: JobRulesOptions) {
    this.tickMs = Math.max(50, Math.floor(options.leases.ttlMs / 3));
    this.customRuleQueries = new ConcurrencyLimiter(options.customRuleQueries ?? 1);
  }

  /** Wires the job service (they need each other: jobs start evaluations, rules stop jobs) and starts supervising. */
  attachJobService(jobs: JobService): void {
    this.jobs = jobs;
    // Terminal job statuses end evaluations; this covers local jobs and watched SageMaker jobs alike.
    const it = this.options.events.subscribe("jobStatus");
    this.statusWatch = it;
    void (async () => {
      for await (const e of it) {
        const s = this.sessions.get(e.job.name);
        if (!s) continue;
        if (s.backend === "SAGEMAKER") {
          // The evaluator keeps the record of a SageMaker job current (for a later takeover).
          void this.options.jobs.update(e.job.name, {
            status: e.job.status, secondaryStatus: e.job.secondaryStatus, failureReason: e.job.failureReason,
            startedAt: e.job.startedAt, endedAt: e.job.endedAt,
          }).catch(() => undefined);
        }
        if (TERMINAL_JOB_STATUSES.has(e.job.status)) void this.finish(s);
      }
    })();
    this.scheduleTick(0);
  }

  builtinRules(): RuleDefinitionInfo[] {
    return builtinRules(this.options.registry).map((r) => ({
      name: r.name,
      appliesToXgboost: r.appliesToXgboost,
      description: r.description ?? null,
      parameters: r.parameters.map((p) => ({
        name: p.name, default: p.default ?? null, description: p.description ?? null, required: Boolean(p.required), requiredOneOf: p.requiredOneOf,
      })),
    }));
  }

  /** Throws BAD_USER_INPUT naming the rule parameter at fault, or a webhook URL not on the allow-list. */
  validate(specs: RuleSpec[]): ConfiguredRule[] {
    const configured = validateRuleSpecs(specs, this.options.registry);
    for (const c of configured) {
      const urls = [c.webhookUrl, ...c.actions.map((a) => (a.kind === "notify" ? a.url : null))].filter((u): u is string => !!u);
      for (const url of urls) {
        if (!this.webhookAllowed(url)) {
          throw new TrialgraphError(
            "BAD_USER_INPUT",
            `rule ${c.configurationName}: webhook ${new URL(url).host} is not an allowed target (TRIALGRAPH_WEBHOOK_ALLOWED_HOSTS lists the hosts rules may call)`,
            { field: "rules", rule: c.configurationName },
          );
        }
      }
    }
    return configured;
  }

  /** The global webhook (trusted configuration) and the listed hosts may be called. */
  private webhookAllowed = (url: string): boolean => {
    const global = this.options.webhookUrl;
    if (global && url === global) return true;
    const allowed = [...(this.options.webhookAllowedHosts ?? [])];
    if (global) {
      const g = new URL(global);
      allowed.push(`${g.hostname}:${g.port || (g.protocol === "https:" ? "443" : "80")}`);
    }
    return urlHostAllowed(url, allowed);
  };

  /** The attachments to record with a new job (validated): every rule IN_PROGRESS, waiting for the first step. */
  newRules(specs: RuleSpec[]): NewRule[] {
    const now = new Date();
    return this.validate(specs).map((c, i) => ({
      name: c.configurationName,
      spec: { ...specs[i], evaluator: "SERVICE" },
      evaluator: "SERVICE",
      attachedAt: now,
      status: "IN_PROGRESS",
      statusDetails: "waiting for the job's first saved step",
    }));
  }

  async evaluate(path: string, rules: RuleSpec[], opts: { signal?: AbortSignal } = {}): Promise<RuleEvaluationResult[]> {
    // Actions never run here (a query has no side effects), so webhook targets need not be allowed.
    const configured = validateRuleSpecs(rules, this.options.registry);
    const trial = await this.options.trials.resolve(path);
    if (!trial) throw this.options.trialPaths ? await this.options.trialPaths.notFound(path) : new TrialgraphError("NOT_FOUND", `no trial at ${path}`, { field: "path" });
    const run = () => evaluateRules(trial, rules, {
      registry: this.options.registry,
      otherTrialOpener: (p) => this.options.trials.resolve(p),
      webhookUrl: null,
      signal: opts.signal,
    });
    // Custom rules run in worker threads: only so many queries may run them at once.
    const results = configured.some((c) => c.definition.source === "custom") ? await this.customRuleQueries.run(run) : await run();
    return results.map(({ ruleConfigurationName, status, triggeredSteps, evaluatedSteps, statusDetails, findings }) => ({
      ruleConfigurationName, status, triggeredSteps, evaluatedSteps, statusDetails, findings,
    }));
  }

  async attach(jobName: string, rules: RuleSpec[]): Promise<TrainingJobRecord> {
    const added = this.newRules(rules);
    const job = await this.jobs.describe(jobName);
    if (!job) throw new TrialgraphError("NOT_FOUND", `no training job named ${jobName}`, { field: "jobName" });
    if (!job.debugOutputPath) {
      throw new TrialgraphError("BAD_USER_INPUT", `job ${jobName} saves no debugger data (no debug hook config), so rules have nothing to read`, { field: "jobName" });
    }
    const names = new Set([
      ...job.ruleSummaries.map((r) => r.ruleConfigurationName),
      ...(await this.options.rules.forJob(jobName)).map((r) => r.summary.ruleConfigurationName),
    ]);
    for (const r of added) {
      if (names.has(r.name)) throw new TrialgraphError("BAD_USER_INPUT", `job ${jobName} already has a rule named ${r.name}`, { field: "name" });
    }
    // A SageMaker job started elsewhere becomes known here: its rules need a record to hang on.
    await this.options.jobs.adopt(job);
    await this.options.rules.attach(jobName, added);
    for (const r of added) this.options.events.publish("ruleStatus", { jobName, rule: summaryOf(r), previousStatus: null });
    const s = this.sessions.get(jobName);
    if (s) this.addRules(s, added.map((r) => ({ spec: r.spec!, summary: summaryOf(r) })));
    else await this.claim(jobName);
    return job;
  }

  /** A job with service rules was just started here: evaluate its rules from its first step. */
  async follow(job: TrainingJobRecord, rules: readonly NewRule[]): Promise<void> {
    for (const r of rules) this.options.events.publish("ruleStatus", { jobName: job.name, rule: summaryOf(r), previousStatus: null });
    await this.claim(job.name).catch((e) => this.options.log.warn({ err: e, job: job.name }, "could not start evaluating a job's rules; the supervisor retries"));
  }

  /** New steps were written (local jobs call this directly; other trials are polled). */
  step(jobName: string): Promise<void> {
    const s = this.sessions.get(jobName);
    if (!s) return Promise.resolve();
    return this.enqueue(s, () => this.advance(s, false), "rule evaluation failed");
  }

  /** Summaries of the service's rules per job (every instance answers from the database). */
  summaries(jobNames: readonly string[]): Promise<Map<string, RuleSummaryRecord[]>> {
    return this.options.rules.summaries(jobNames);
  }

  /** A rule's evaluation history, oldest first. */
  evaluations(jobName: string, ruleName: string, page: { first: number; after?: string | null }): Promise<RecordPage<RuleEvaluationRecord>> {
    return this.options.rules.evaluations(jobName, ruleName, page);
  }

  /** Jobs this instance evaluates now (health, tests). */
  evaluating(): string[] {
    return [...this.sessions.keys()];
  }

  // ---- supervision ----------------------------------------------------------------------------

  private scheduleTick(delay: number): void {
    if (this.closed) return;
    if (this.tickTimer) clearTimeout(this.tickTimer);
    this.tickTimer = setTimeout(() => {
      this.tickTimer = null;
      this.ticking = this.supervise().finally(() => {
        this.ticking = null;
        this.scheduleTick(Math.round(this.tickMs * (0.85 + 0.3 * Math.random())));
      });
    }, delay);
    this.tickTimer.unref();
  }

  /** Renews the leases held, drops evaluations whose lease was lost, takes over the ones nobody holds. */
  private async supervise(): Promise<void> {
    try {
      // Only sessions open before each query are judged by its answer (a claim may open one meanwhile).
      let known = [...this.sessions.values()];
      const held = await this.options.leases.renewAll(LEASE_PREFIX);
      this.lastRenewal = Date.now();
      for (const s of known) {
        if (!held.has(s.lease)) this.drop(s, "its lease was taken over (this instance was too slow to renew it)");
      }
      known = [...this.sessions.values()];
      const open = await this.options.rules.open();
      if (this.unavailableLogged) {
        this.options.log.info("rule supervisor: database reachable again");
        this.unavailableLogged = false;
      }
      const byJob = new Map<string, OpenRule[]>();
      for (const r of open) {
        let list = byJob.get(r.jobName);
        if (!list) byJob.set(r.jobName, (list = []));
        list.push(r);
      }
      for (const [jobName, rules] of byJob) {
        if (this.closed) return;
        const s = this.sessions.get(jobName);
        if (s) {
          const known = new Set(s.persisted.keys());
          const fresh = rules.filter((r) => !known.has(r.summary.ruleConfigurationName) && r.spec);
          if (fresh.length) this.addRules(s, fresh.map((r) => ({ spec: r.spec!, summary: r.summary })));
          if (s.dirty) void this.enqueue(s, () => this.persist(s, true), "writing rule results failed");
          continue;
        }
        if (!this.mayEvaluate(rules[0])) continue;
        // Rules attached moments ago are the attaching instance's to claim (it does so at once); they
        // are up for takeover only if it has not within a lease period.
        const trainsHere = rules[0].jobInstanceId === this.options.leases.owner;
        if (!trainsHere && rules.every((r) => Date.now() - r.attachedAt.getTime() < this.options.leases.ttlMs)) continue;
        if (await this.options.leases.acquire(LEASE_PREFIX + jobName)) await this.open(jobName, rules);
      }
      for (const lease of held) {
        // A lease still ours with nothing left to evaluate under it (an evaluation dropped after an outage).
        const jobName = lease.slice(LEASE_PREFIX.length);
        if (!byJob.has(jobName) && !this.sessions.has(jobName)) await this.options.leases.release(lease);
      }
      for (const s of known) {
        // Every rule finished (the database says so): nothing left to evaluate here.
        if (!byJob.has(s.jobName) && !s.dirty && !s.closed && [...s.persisted.values()].every((p) => p.finished)) await this.closeSession(s);
      }
    } catch (e) {
      if (!this.unavailableLogged) {
        this.options.log.warn({ err: e }, "rule supervisor: cannot reach the database; evaluations resume when it returns");
        this.unavailableLogged = true;
      }
      // Unable to renew for a lease period, our leases may be taken: stop rather than evaluate twice.
      if (Date.now() - this.lastRenewal > this.options.leases.ttlMs) {
        for (const s of [...this.sessions.values()]) this.drop(s, "the database was unreachable for a lease period");
      }
    }
  }

  /** A local job in training is evaluated by the instance that trains it (its trial is in that instance's folder). */
  private mayEvaluate(rule: OpenRule): boolean {
    return !(rule.backend === "LOCAL" && !TERMINAL_JOB_STATUSES.has(rule.jobStatus) && rule.jobInstanceId !== this.options.leases.owner);
  }

  /** Takes a job's lease now if it is free (and this instance may evaluate the job) and starts evaluating here. */
  private async claim(jobName: string): Promise<void> {
    if (this.sessions.has(jobName) || this.closed) return;
    const rules = (await this.options.rules.open()).filter((r) => r.jobName === jobName);
    if (!rules.length || !this.mayEvaluate(rules[0])) return;
    if (!(await this.options.leases.acquire(LEASE_PREFIX + jobName))) return;
    await this.open(jobName, rules);
  }

  /** Opens the evaluation of a job's unfinished rules (we hold its lease). */
  private async open(jobName: string, rules: OpenRule[]): Promise<void> {
    if (this.sessions.has(jobName)) return;
    const first = rules[0];
    if (!first.trialPath) {
      await this.options.leases.release(LEASE_PREFIX + jobName);
      return;
    }
    const s: JobSession = {
      jobName,
      backend: first.backend,
      trialPath: first.trialPath,
      lease: LEASE_PREFIX + jobName,
      groups: [],
      persisted: new Map(),
      history: new Map(),
      entries: [],
      timer: null,
      ended: TERMINAL_JOB_STATUSES.has(first.jobStatus),
      busy: Promise.resolve(),
      releaseWatch: null,
      closed: false,
      dirty: false,
      lastWrite: Date.now(),
      flushTimer: null,
    };
    // Registered before the first await: the supervisor must see that this lease is in use.
    this.sessions.set(jobName, s);
    let history;
    try {
      history = await this.options.rules.lastEvaluations(jobName);
    } catch (e) {
      this.stopSession(s);
      throw e;
    }
    for (const [name, h] of history) s.history.set(name, { lastStep: h.step, lastStatus: h.status, sinceCompaction: 0 });
    const resumed = rules.some((r) => r.summary.statusDetails !== "waiting for the job's first saved step") || history.size > 0;
    this.options.log.info({ job: jobName, rules: rules.map((r) => r.summary.ruleConfigurationName), resumed }, resumed ? "rule evaluation resumed on this instance" : "evaluating a job's rules");
    this.addRules(s, rules.filter((r) => r.spec).map((r) => ({ spec: r.spec!, summary: r.summary })), false);
    // Rules imported without their parameters cannot be evaluated again: they end in ERROR.
    for (const r of rules.filter((x) => !x.spec)) {
      s.persisted.set(r.summary.ruleConfigurationName, { summary: r.summary, finished: false });
      s.groups.push({ specs: [], session: null, pending: [{ ...r.summary, status: "ERROR", statusDetails: "the rule's parameters were not kept; attach it again", lastModifiedTime: new Date() }] });
    }
    if (s.backend === "SAGEMAKER" && !s.ended) {
      s.releaseWatch = this.options.watchJob?.(jobName) ?? null;
      // The record may be stale (the job ended while no one evaluated it): ask SageMaker.
      const now = await this.jobs.describe(jobName).catch(() => null);
      if (now && TERMINAL_JOB_STATUSES.has(now.status)) s.ended = true;
    }
    if (s.ended) void this.finish(s);
    else {
      if (!this.options.trainsHere?.(jobName)) this.schedule(s);
      void this.step(jobName);
    }
  }

  private addRules(s: JobSession, rules: { spec: RuleSpec; summary: RuleSummaryRecord }[], kick = true): void {
    if (!rules.length) return;
    for (const r of rules) s.persisted.set(r.summary.ruleConfigurationName, { summary: r.summary, finished: false });
    s.groups.push({ specs: rules.map((r) => ({ ...r.spec, evaluator: "SERVICE" as const })), session: null, pending: rules.map((r) => r.summary) });
    if (kick) void (s.ended ? this.finish(s) : this.step(s.jobName));
  }

  private enqueue(s: JobSession, task: () => Promise<void>, failure: string): Promise<void> {
    s.busy = s.busy.then(() => (s.closed ? undefined : task())).catch((e) => {
      s.dirty = true;
      const code = e instanceof TrialgraphError ? e.code : null;
      if (code === "DATABASE_UNAVAILABLE") this.options.log.debug({ job: s.jobName }, "rule results wait for the database");
      else this.options.log.warn({ err: e, jobName: s.jobName }, failure);
    });
    return s.busy;
  }

  /** The job ended: evaluate what is there and give every rule its final status. */
  private finish(s: JobSession): Promise<void> {
    s.ended = true;
    if (s.timer) clearTimeout(s.timer);
    s.timer = null;
    s.releaseWatch?.();
    s.releaseWatch = null;
    return this.enqueue(s, () => this.advance(s, true), "final rule evaluation failed");
  }

  private schedule(s: JobSession): void {
    if (s.ended || s.closed) return;
    s.timer = setTimeout(() => {
      void this.step(s.jobName).then(() => this.schedule(s));
    }, this.options.pollIntervalMs);
    s.timer.unref();
  }

  private async openGroup(s: JobSession, group: RuleGroup, trial: Trial): Promise<void> {
    group.session = await RuleSession.create(trial, group.specs, {
      trainingJobName: s.jobName,
      registry: this.options.registry,
      otherTrialOpener: (p) => this.options.trials.resolve(p),
      webhookUrl: this.options.webhookUrl,
      webhookAllowed: this.webhookAllowed,
      initial: new Map(group.pending.map((p) => [p.ruleConfigurationName, { status: p.status, statusDetails: p.statusDetails, lastModified: p.lastModifiedTime, findings: p.findings }])),
      onEvaluation: (e) => this.remember(s, e),
      stopTrainingJob: (name) =>
        this.jobs.stop(name).catch((e) => this.options.log.warn({ err: e, job: name }, "a rule's stop-training action failed")),
    });
  }

  /** Keeps an evaluation for the history, unless a previous evaluator already wrote that step. */
  private remember(s: JobSession, e: RuleEvaluationEvent): void {
    if (this.options.historyLimit <= 0) return;
    let h = s.history.get(e.ruleConfigurationName);
    if (!h) s.history.set(e.ruleConfigurationName, (h = { lastStep: null, lastStatus: null, sinceCompaction: 0 }));
    if (e.kind === "step" && e.step !== null && h.lastStep !== null && e.step <= h.lastStep) return;
    s.entries.push({ ruleName: e.ruleConfigurationName, step: e.step, status: e.status, message: e.message, time: e.time, statusChange: e.status !== h.lastStatus });
    h.lastStatus = e.status;
    if (e.step !== null && (h.lastStep === null || e.step > h.lastStep)) h.lastStep = e.step;
    h.sinceCompaction++;
  }

  private async advance(s: JobSession, final: boolean): Promise<void> {
    const trial = await this.options.trials.resolve(s.trialPath).catch(() => null);
    if (trial) await trial.refresh({ force: true });
    for (const group of s.groups) {
      if (!group.session && trial && group.specs.length) await this.openGroup(s, group, trial);
      if (group.session) {
        await group.session.advance({ final });
        if (final) await group.session.whenActionsSettled();
      } else if (final) {
        // The job ended without saving a single step: every rule is an error, as on SageMaker.
        const now = new Date();
        group.pending = group.pending.map((r) => (r.status === "ERROR" ? r : { ...r, status: "ERROR", statusDetails: "No debugging data was saved by the training job", lastModifiedTime: now }));
        for (const r of group.pending) {
          this.remember(s, { ruleConfigurationName: r.ruleConfigurationName, kind: "final", step: null, status: r.status, message: r.statusDetails ?? r.status, time: now });
        }
      }
    }
    await this.persist(s, final);
  }

  /** Each rule's summary now, and whether it has its final status. */
  private current(s: JobSession): { summary: RuleSummaryRecord; finished: boolean }[] {
    return s.groups.flatMap((g) => {
      // Without a session a rule ends only in ERROR (no data was ever saved, or its parameters are lost).
      if (!g.session) return g.pending.map((summary) => ({ summary, finished: summary.status === "ERROR" }));
      const finished = new Set(g.session.finishedRules());
      return g.session.summaries.map((summary) => ({ summary, finished: finished.has(summary.ruleConfigurationName) }));
    });
  }

  /**
   * Writes what changed since the last write (summaries, new history entries) in one transaction that
   * checks the lease, then announces status changes. Losing the lease drops the evaluation unannounced.
   */
  private async persist(s: JobSession, force = false): Promise<void> {
    const changes: RuleChange[] = [];
    const announce: { rule: RuleSummaryRecord; previousStatus: RuleEvaluationStatus | null }[] = [];
    for (const { summary, finished } of this.current(s)) {
      const before = s.persisted.get(summary.ruleConfigurationName);
      if (before?.finished) continue;
      // A status the database already has from a previous evaluator is kept until this one gets there again.
      if (before && TERMINAL_RULE_STATUSES.has(before.summary.status) && summary.status === "IN_PROGRESS") continue;
      if (before && before.finished === finished && sameSummary(before.summary, summary)) continue;
      changes.push({ summary, finished });
      if (before?.summary.status !== summary.status) announce.push({ rule: summary, previousStatus: before?.summary.status ?? null });
    }
    if (s.entries.length > MAX_UNWRITTEN_ENTRIES) {
      this.options.log.warn({ job: s.jobName, dropped: s.entries.length - MAX_UNWRITTEN_ENTRIES }, "rule history entries dropped while the database was away");
      s.entries.splice(0, s.entries.length - MAX_UNWRITTEN_ENTRIES);
    }
    const entries = s.entries;
    const limit = this.options.historyLimit;
    const compact: { ruleName: string; keep: number }[] = [];
    if (limit > 0) {
      for (const [ruleName, h] of s.history) {
        const finishing = changes.some((c) => c.finished && c.summary.ruleConfigurationName === ruleName);
        if (h.sinceCompaction >= Math.max(1, Math.ceil(limit / 2)) || (finishing && h.sinceCompaction > 0)) compact.push({ ruleName, keep: limit });
      }
    }
    if (!changes.length && !entries.length) {
      s.dirty = false;
      return;
    }
    if (!changes.length && !force && entries.length < HISTORY_FLUSH_ENTRIES && Date.now() - s.lastWrite < HISTORY_FLUSH_MS) {
      // Only history to write: wait a little, to write more of it in one transaction.
      s.flushTimer ??= setTimeout(() => {
        s.flushTimer = null;
        void this.enqueue(s, () => this.persist(s, true), "writing rule history failed");
      }, HISTORY_FLUSH_MS - (Date.now() - s.lastWrite));
      s.flushTimer.unref();
      return;
    }
    if (s.flushTimer) clearTimeout(s.flushTimer);
    s.flushTimer = null;
    s.entries = [];
    s.lastWrite = Date.now();
    let written: boolean;
    try {
      written = await this.options.rules.record(s.jobName, { lease: s.lease, owner: this.options.leases.owner }, changes, entries, compact);
    } catch (e) {
      s.entries = entries.concat(s.entries);
      s.dirty = true;
      throw e;
    }
    s.dirty = false;
    if (!written) {
      this.drop(s, "its lease is held by another instance");
      return;
    }
    for (const c of compact) s.history.get(c.ruleName)!.sinceCompaction = 0;
    for (const c of changes) s.persisted.set(c.summary.ruleConfigurationName, { summary: c.summary, finished: c.finished });
    for (const a of announce) this.options.events.publish("ruleStatus", { jobName: s.jobName, rule: a.rule, previousStatus: a.previousStatus });
    if ([...s.persisted.values()].every((p) => p.finished)) await this.closeSession(s);
  }

  /** Stops evaluating a job here without writing (another instance has or will have its lease). */
  private drop(s: JobSession, why: string): void {
    if (s.closed) return;
    this.options.log.warn({ job: s.jobName, why }, "stopped evaluating a job's rules on this instance");
    this.stopSession(s);
  }

  private stopSession(s: JobSession): void {
    s.closed = true;
    // Custom rules' workers end with the evaluation.
    for (const g of s.groups) g.session?.close();
    if (s.timer) clearTimeout(s.timer);
    s.timer = null;
    if (s.flushTimer) clearTimeout(s.flushTimer);
    s.flushTimer = null;
    s.releaseWatch?.();
    s.releaseWatch = null;
    if (this.sessions.get(s.jobName) === s) this.sessions.delete(s.jobName);
  }

  /** Every rule is final: release the lease. */
  private async closeSession(s: JobSession): Promise<void> {
    if (s.closed) return;
    this.stopSession(s);
    await this.options.leases.release(s.lease).catch(() => undefined);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.tickTimer) clearTimeout(this.tickTimer);
    await this.ticking;
    const sessions = [...this.sessions.values()];
    for (const s of sessions) {
      if (s.timer) clearTimeout(s.timer);
      s.timer = null;
    }
    // Let the evaluations in flight write what they have, then hand the leases back at once, so
    // another instance takes over without waiting for them to expire.
    await Promise.all(sessions.map((s) => this.enqueue(s, () => this.persist(s, true), "writing rule results failed")));
    for (const s of sessions) {
      this.stopSession(s);
      await this.options.leases.release(s.lease).catch(() => undefined);
    }
    await this.statusWatch?.return?.();
  }
}

function summaryOf(r: NewRule): RuleSummaryRecord {
  return {
    ruleConfigurationName: r.name,
    ruleEvaluationJobArn: null,
    status: r.status,
    statusDetails: r.statusDetails,
    lastModifiedTime: r.attachedAt,
    evaluator: "SERVICE",
    findings: [],
  };
}
