/**
 * The service's own rule evaluation for jobs: rules of local jobs, rules with evaluator SERVICE
 * on SageMaker jobs, and rules attached later. One RuleSession per job follows the job's trial;
 * status changes are published and kept on the job's record (persisted for local jobs).
 */
import type { Logger } from "pino";
import { TrialgraphError } from "../errors.js";
import { urlHostAllowed } from "../host-allow-list.js";
import { ConcurrencyLimiter } from "../storage/concurrency.js";
import type { EventBus } from "../events/event-bus.js";
import type { TrialRegistry } from "../trials/trial-registry.js";
import type { TrialPaths } from "../trials/trial-paths.js";
import type { Trial } from "../trials/trial.js";
import { RuleSession, builtinRules, evaluateRules, validateRuleSpecs, type RuleRegistry } from "../rules/index.js";
import type { RuleDefinitionInfo, RuleEvaluationResult, RuleService } from "./rule-service.js";
import type { JobService } from "./job-service.js";
import {
  TERMINAL_JOB_STATUSES, type RuleSpec, type RuleSummaryRecord, type TrainingJobRecord,
} from "./types.js";

/** Rules started together (at job start, or by one attachRules call): one RuleSession. */
interface RuleGroup {
  specs: RuleSpec[];
  session: RuleSession | null;
  /** Summaries known before the session could open (the trial did not exist yet). */
  pending: RuleSummaryRecord[];
}

interface JobSession {
  jobName: string;
  backend: "LOCAL" | "SAGEMAKER";
  trialPath: string;
  groups: RuleGroup[];
  timer: NodeJS.Timeout | null;
  ended: boolean;
  busy: Promise<void>;
  releaseWatch: (() => void) | null;
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
  /** How often SageMaker jobs' S3 trials are re-read for new steps (ms). */
  pollIntervalMs: number;
  /** Persists a local job's SERVICE rule summaries on its record. */
  saveLocalSummaries: (jobName: string, summaries: RuleSummaryRecord[]) => Promise<void>;
  /**
   * Keeps a SageMaker job's status watched while its rules run (so the engine learns when it
   * ends, also for jobs started elsewhere); returns the release function.
   */
  watchJob?: (jobName: string) => () => void;
}

export class JobRules implements RuleService {
  private sessions = new Map<string, JobSession>();
  private readonly customRuleQueries: ConcurrencyLimiter;
  private jobs!: JobService;
  private statusWatch: AsyncIterableIterator<unknown> | null = null;

  constructor(private readonly options: JobRulesOptions) {
    this.customRuleQueries = new ConcurrencyLimiter(options.customRuleQueries ?? 2);
  }

  /** Wires the job service (they need each other: jobs start sessions, rules stop jobs). */
  attachJobService(jobs: JobService): void {
    this.jobs = jobs;
    // Terminal job statuses end sessions; this covers local jobs and watched SageMaker jobs alike.
    const it = this.options.events.subscribe("jobStatus");
    this.statusWatch = it;
    void (async () => {
      for await (const e of it) {
        const s = this.sessions.get(e.job.name);
        if (s && TERMINAL_JOB_STATUSES.has(e.job.status)) void this.finish(s);
      }
    })();
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
  validate(specs: RuleSpec[]): void {
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
    this.validate(rules);
    const job = await this.jobs.describe(jobName);
    if (!job) throw new TrialgraphError("NOT_FOUND", `no training job named ${jobName}`, { field: "jobName" });
    if (!job.debugOutputPath) {
      throw new TrialgraphError("BAD_USER_INPUT", `job ${jobName} saves no debugger data (no debug hook config), so rules have nothing to read`, { field: "jobName" });
    }
    const names = new Set(job.ruleSummaries.map((r) => r.ruleConfigurationName));
    for (const spec of rules) {
      const name = spec.name ?? spec.builtin ?? "";
      if (names.has(name)) throw new TrialgraphError("BAD_USER_INPUT", `job ${jobName} already has a rule named ${name}`, { field: "name" });
    }
    await this.start(job, rules);
    return this.decorate((await this.jobs.describeRaw(jobName)) ?? job);
  }

  /** Starts following a job with rules the service evaluates (at its start, or attached later). */
  async start(job: TrainingJobRecord, rules: RuleSpec[]): Promise<void> {
    if (!rules.length || !job.debugOutputPath) return;
    let s = this.sessions.get(job.name);
    const fresh = !s;
    if (!s) {
      s = {
        jobName: job.name,
        backend: job.backend,
        trialPath: job.debugOutputPath,
        groups: [],
        timer: null,
        ended: TERMINAL_JOB_STATUSES.has(job.status),
        busy: Promise.resolve(),
        releaseWatch: null,
      };
      this.sessions.set(job.name, s);
      if (job.backend === "SAGEMAKER" && !s.ended) s.releaseWatch = this.options.watchJob?.(job.name) ?? null;
    }
    const now = new Date();
    const specs = rules.map((r) => ({ ...r, evaluator: "SERVICE" as const }));
    const group: RuleGroup = {
      specs,
      session: null,
      pending: specs.map((r) => ({
        ruleConfigurationName: r.name ?? r.builtin ?? "rule",
        ruleEvaluationJobArn: null,
        status: "IN_PROGRESS",
        statusDetails: "waiting for the job's first saved step",
        lastModifiedTime: now,
        evaluator: "SERVICE",
        findings: [],
      })),
    };
    s.groups.push(group);
    for (const r of group.pending) this.options.events.publish("ruleStatus", { jobName: job.name, rule: r, previousStatus: null });
    await this.persist(s);
    if (s.ended) void this.finish(s);
    else if (fresh && s.backend === "SAGEMAKER") this.schedule(s);
    else void this.step(job.name);
  }

  /** New steps were written (local jobs call this directly; SageMaker trials are polled). */
  step(jobName: string): Promise<void> {
    const s = this.sessions.get(jobName);
    if (!s) return Promise.resolve();
    s.busy = s.busy.then(() => this.advance(s, false)).catch((e) => this.options.log.warn({ err: e, jobName }, "rule evaluation failed"));
    return s.busy;
  }

  /** The job ended: evaluate what is there and give every rule its final status. */
  private finish(s: JobSession): Promise<void> {
    s.ended = true;
    if (s.timer) clearTimeout(s.timer);
    s.releaseWatch?.();
    s.releaseWatch = null;
    s.busy = s.busy.then(() => this.advance(s, true)).catch((e) => this.options.log.warn({ err: e, jobName: s.jobName }, "final rule evaluation failed"));
    return s.busy;
  }

  private schedule(s: JobSession): void {
    if (s.ended) return;
    s.timer = setTimeout(() => {
      void this.step(s.jobName).then(() => this.schedule(s));
    }, this.options.pollIntervalMs);
    s.timer.unref();
  }

  private async open(s: JobSession, group: RuleGroup, trial: Trial): Promise<void> {
    group.session = await RuleSession.create(trial, group.specs, {
      trainingJobName: s.jobName,
      registry: this.options.registry,
      otherTrialOpener: (p) => this.options.trials.resolve(p),
      webhookUrl: this.options.webhookUrl,
      webhookAllowed: this.webhookAllowed,
      onStatusChange: (summary, previousStatus) => {
        this.options.events.publish("ruleStatus", { jobName: s.jobName, rule: summary, previousStatus });
        void this.persist(s);
      },
      stopTrainingJob: (name) =>
        this.jobs.stop(name).catch((e) => this.options.log.warn({ err: e, job: name }, "a rule's stop-training action failed")),
    });
  }

  private async advance(s: JobSession, final: boolean): Promise<void> {
    const trial = await this.options.trials.resolve(s.trialPath).catch(() => null);
    if (trial) await trial.refresh({ force: true });
    for (const group of s.groups) {
      if (!group.session && trial) await this.open(s, group, trial);
      if (group.session) {
        await group.session.advance({ final });
        if (final) await group.session.whenActionsSettled();
      } else if (final) {
        // The job ended without saving a single step: every rule is an error, as on SageMaker.
        const now = new Date();
        const prev = group.pending;
        group.pending = prev.map((r) => ({ ...r, status: "ERROR", statusDetails: "No debugging data was saved by the training job", lastModifiedTime: now }));
        group.pending.forEach((r, i) => this.options.events.publish("ruleStatus", { jobName: s.jobName, rule: r, previousStatus: prev[i].status }));
      }
    }
    await this.persist(s);
  }

  private summariesOf(s: JobSession): RuleSummaryRecord[] {
    return s.groups.flatMap((g) => (g.session ? g.session.summaries : g.pending));
  }

  private async persist(s: JobSession): Promise<void> {
    if (s.backend !== "LOCAL") return;
    // A local job's record keeps its rule summaries across restarts.
    await this.options.saveLocalSummaries(s.jobName, this.summariesOf(s)).catch((e) => this.options.log.warn({ err: e, job: s.jobName }, "saving rule summaries failed"));
  }

  /** A job's record with the SERVICE rule summaries this process evaluates (SageMaker jobs). */
  decorate(job: TrainingJobRecord): TrainingJobRecord {
    const s = this.sessions.get(job.name);
    if (!s || job.backend === "LOCAL") return job;
    const mine = this.summariesOf(s);
    const names = new Set(mine.map((r) => r.ruleConfigurationName));
    return { ...job, ruleSummaries: [...job.ruleSummaries.filter((r) => !names.has(r.ruleConfigurationName)), ...mine] };
  }

  async close(): Promise<void> {
    for (const s of this.sessions.values()) {
      if (s.timer) clearTimeout(s.timer);
      s.releaseWatch?.();
      for (const g of s.groups) g.session?.close();
    }
    await this.statusWatch?.return?.();
  }
}
