/**
 * Watches SageMaker jobs by polling DescribeTrainingJob and publishes only what changed: the job's
 * status or secondary status (topic jobStatus) and each rule whose RuleEvaluationStatus changed
 * (topic ruleStatus, diffed by RuleConfigurationName). Every event carries the previous status, null
 * on the first report.
 *
 * A job is watched while it has subscribers or while a job started by this service is not finished,
 * where finished means the job AND every one of its rules are terminal: rule jobs are separate
 * processing jobs and can outlive the training job.
 *
 * Without Redis this instance polls every job it has an interest in. With Redis, instances share:
 *   - `<prefix>:watch:active`  SET of jobs started by any instance and not finished (durable interest),
 *   - `<prefix>:watch:wanted`  ZSET of "<job> <instance>" scored by expiry (subscriber interest),
 *   - `<prefix>:watch:lease:<job>`  the lease: only its holder polls the job,
 *   - `<prefix>:watch:state:<job>`  the last published state, so a new holder diffs where the old one stopped.
 * A holder that dies stops renewing; its lease expires and the next coordination tick of another
 * interested instance takes the job over. While Redis is down each instance polls the jobs it has
 * local interest in (events cannot cross instances then anyway) and contends again when Redis returns.
 */
import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import type { EventBus } from "../events/event-bus.js";
import { RedisLeases, type LeaseStore } from "../events/lease.js";
import { TrialgraphError } from "../errors.js";
import type { JobService } from "./job-service.js";
import type { RuleEvaluationStatus, TrainingJobRecord, TrainingJobStatus } from "./types.js";
import { TERMINAL_JOB_STATUSES, TERMINAL_RULE_STATUSES } from "./types.js";

export interface JobWatcherLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

export interface JobWatcherOptions {
  events: EventBus;
  /** DescribeTrainingJob for one job; null when the job does not exist. */
  describe: (name: string) => Promise<TrainingJobRecord | null>;
  /** Poll interval (TRIALGRAPH_POLL_INTERVAL_MS); each poll is jittered around it. */
  intervalMs: number;
  /** A Redis connection for commands (leases, shared state); absent or null: this instance polls alone. */
  redis?: Redis | null;
  /** Key prefix in Redis (TRIALGRAPH_REDIS_PREFIX). */
  prefix?: string;
  /** This instance's id in leases; default a random UUID. */
  owner?: string;
  log?: JobWatcherLog;
  /** Random source for jitter (tests). */
  random?: () => number;
  /** Longest wait between polls of a job that keeps failing or being throttled. */
  maxBackoffMs?: number;
}

/** What was last published for a job: the base of the next diff. */
interface KnownJobState {
  status: TrainingJobStatus;
  secondaryStatus: string | null;
  rules: Record<string, RuleEvaluationStatus>;
  /** Job and all rules terminal (or the job is gone): nothing more will change. */
  finished: boolean;
  observedAt: number;
}

interface WatchedJob {
  name: string;
  /** Local subscribers. */
  shares: number;
  /** Started by this instance and not yet finished. */
  startedHere: boolean;
  /** This instance holds the job's lease. */
  leased: boolean;
  polling: boolean;
  timer: NodeJS.Timeout | null;
  inFlight: boolean;
  failures: number;
}

export interface JobWatcherStatus {
  mode: "solo" | "shared";
  /** Jobs this instance polls now. */
  polling: string[];
  /** Jobs with subscribers on this instance. */
  subscribed: string[];
}

/** Known states kept for jobs no longer watched, so a later watch diffs instead of re-reporting. */
const MAX_REMEMBERED_STATES = 10_000;
/** Shared state outlives any watch by far; it only has to bridge a takeover. */
const SHARED_STATE_TTL_MS = 7 * 24 * 3600 * 1000;

export class JobWatcher {
  private readonly jobs = new Map<string, WatchedJob>();
  private readonly states = new Map<string, KnownJobState>();
  private readonly leases: LeaseStore | null;
  private readonly redis: Redis | null;
  private readonly prefix: string;
  private readonly owner: string;
  private readonly intervalMs: number;
  private readonly leaseTtlMs: number;
  private readonly tickMs: number;
  private readonly maxBackoffMs: number;
  private readonly random: () => number;
  private tickTimer: NodeJS.Timeout | null = null;
  private ticking = false;
  private tickAgain = false;
  private closed = false;
  /** Whether the last coordination tick reached Redis (false: polling alone until it returns). */
  private shared = false;
  private redisFailureLogged = false;

  constructor(private readonly options: JobWatcherOptions) {
    if (!Number.isFinite(options.intervalMs) || options.intervalMs < 1) throw new RangeError("intervalMs must be positive");
    this.intervalMs = options.intervalMs;
    this.redis = options.redis ?? null;
    this.prefix = `${options.prefix ?? "trialgraph"}:watch`;
    this.owner = options.owner ?? randomUUID();
    // At least a second: a lease must survive an event-loop stall (GC, a burst of work) without flapping.
    this.leaseTtlMs = Math.max(3 * this.intervalMs, 1000);
    this.tickMs = Math.min(this.intervalMs, Math.floor(this.leaseTtlMs / 3));
    this.maxBackoffMs = options.maxBackoffMs ?? Math.max(16 * this.intervalMs, 60_000);
    this.random = options.random ?? Math.random;
    this.leases = this.redis ? new RedisLeases(this.redis, this.owner, this.leaseTtlMs) : null;
    this.scheduleTick(this.tickMs);
  }

  /** Keeps a job watched while a subscriber listens; returns the function that releases this share. */
  watch(name: string): () => void {
    const job = this.entry(name);
    job.shares++;
    this.scheduleTick(0);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      job.shares--;
      if (job.shares === 0) {
        void this.forgetRemoteInterest(name);
        this.scheduleTick(0);
      }
    };
  }

  /**
   * A job this service just started: its first report is published now (so events exist before
   * anyone subscribes), and it stays watched until it and its rules are terminal.
   */
  started(job: TrainingJobRecord): void {
    if (this.closed) return;
    const entry = this.entry(job.name);
    entry.startedHere = true;
    this.publishChanges(job.name, job);
    this.scheduleTick(0);
  }

  /** Something changed the job here (e.g. a stop request): poll it now rather than at the next interval. */
  poke(name: string): void {
    const job = this.jobs.get(name);
    if (!job || !job.polling || job.inFlight) return;
    this.schedulePoll(job, 0);
  }

  status(): JobWatcherStatus {
    const all = [...this.jobs.values()];
    return {
      mode: this.redis && this.shared ? "shared" : "solo",
      polling: all.filter((j) => j.polling).map((j) => j.name),
      subscribed: all.filter((j) => j.shares > 0).map((j) => j.name),
    };
  }

  /** Stops polling and hands leases back at once, so another instance takes over without waiting for expiry. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.tickTimer) clearTimeout(this.tickTimer);
    this.tickTimer = null;
    const held = [...this.jobs.values()];
    for (const job of held) this.stopPolling(job);
    if (this.redis && this.leases) {
      await Promise.all(held.map(async (job) => {
        try {
          if (job.leased) await this.leases!.release(this.key("lease", job.name));
          if (job.shares > 0) await this.redis!.zrem(this.key("wanted"), this.wantedMember(job.name));
        } catch {
          // Redis is away: the lease and the interest expire on their own.
        }
      }));
    }
    this.jobs.clear();
  }

  // ---- coordination -------------------------------------------------------------------------

  private key(kind: "active" | "wanted" | "lease" | "state", name?: string): string {
    return name === undefined ? `${this.prefix}:${kind}` : `${this.prefix}:${kind}:${name}`;
  }

  private wantedMember(name: string): string {
    return `${name} ${this.owner}`;
  }

  private entry(name: string): WatchedJob {
    let job = this.jobs.get(name);
    if (!job) {
      job = { name, shares: 0, startedHere: false, leased: false, polling: false, timer: null, inFlight: false, failures: 0 };
      this.jobs.set(name, job);
    }
    return job;
  }

  private finished(name: string): boolean {
    return this.states.get(name)?.finished ?? false;
  }

  private scheduleTick(delay: number): void {
    if (this.closed) return;
    if (this.ticking) {
      if (delay === 0) this.tickAgain = true;
      return;
    }
    if (this.tickTimer) clearTimeout(this.tickTimer);
    this.tickTimer = setTimeout(() => void this.tick(), delay);
    this.tickTimer.unref();
  }

  private async tick(): Promise<void> {
    this.tickTimer = null;
    if (this.closed) return;
    this.ticking = true;
    try {
      if (this.redis) {
        try {
          await this.coordinate();
          if (!this.shared || this.redisFailureLogged) {
            this.options.log?.info({ owner: this.owner }, "job watcher: sharing jobs with other instances through Redis");
          }
          this.shared = true;
          this.redisFailureLogged = false;
        } catch (error) {
          if (!this.redisFailureLogged) {
            this.options.log?.warn({ error: (error as Error).message }, "job watcher: Redis unavailable, polling this instance's jobs alone until it returns");
            this.redisFailureLogged = true;
          }
          this.shared = false;
          this.pollAlone(true);
        }
      } else {
        this.pollAlone(false);
      }
    } finally {
      this.ticking = false;
    }
    if (this.tickAgain) {
      this.tickAgain = false;
      this.scheduleTick(0);
    } else {
      this.scheduleTick(this.jittered(this.tickMs));
    }
  }

  /** No Redis (or Redis away): poll what this instance wants; keep what it already polls. */
  private pollAlone(redisDown: boolean): void {
    for (const job of [...this.jobs.values()]) {
      const wanted = !this.finished(job.name) && (job.shares > 0 || job.startedHere || (redisDown && job.polling));
      if (wanted && !job.polling) this.startPolling(job);
      else if (!wanted) {
        this.stopPolling(job);
        if (job.shares === 0 && !job.startedHere) this.jobs.delete(job.name);
      }
    }
  }

  private async coordinate(): Promise<void> {
    const redis = this.redis!;
    const leases = this.leases!;
    const now = Date.now();
    const local = [...this.jobs.values()].filter((j) => !this.finished(j.name));
    const batch = redis.multi();
    for (const job of local) {
      if (job.shares > 0) batch.zadd(this.key("wanted"), now + this.leaseTtlMs, this.wantedMember(job.name));
      if (job.startedHere) batch.sadd(this.key("active"), job.name);
    }
    batch.zremrangebyscore(this.key("wanted"), "-inf", now);
    batch.smembers(this.key("active"));
    batch.zrangebyscore(this.key("wanted"), now, "+inf");
    const results = await batch.exec();
    if (!results) throw new Error("Redis transaction aborted");
    for (const [error] of results) if (error) throw error;
    const active = results[results.length - 2][1] as string[];
    const wanted = (results[results.length - 1][1] as string[]).map((m) => m.slice(0, m.lastIndexOf(" ")));

    const candidates = new Set<string>([...active, ...wanted, ...local.filter((j) => j.shares > 0 || j.startedHere).map((j) => j.name)]);
    for (const name of candidates) {
      if (this.closed) return;
      if (this.finished(name)) {
        // Finished while this instance was not looking at the shared set (e.g. its holder died right after).
        if (active.includes(name)) await redis.srem(this.key("active"), name);
        continue;
      }
      const job = this.entry(name);
      const key = this.key("lease", name);
      let holds = job.leased && (await leases.renew(key));
      if (job.leased && !holds) {
        job.leased = false;
        this.options.log?.info({ job: name }, "job watcher: lease lost; trying to take it again");
      }
      if (!holds) {
        if (!(await leases.acquire(key))) {
          // Another instance polls it (we may have polled it alone while Redis was away).
          this.stopPolling(job);
          continue;
        }
        holds = job.leased = true;
        await this.adoptSharedState(name);
        if (this.finished(name)) {
          await this.retire(job);
          continue;
        }
        this.stopPolling(job); // restart the schedule under the lease, from the adopted state
        this.options.log?.debug({ job: name }, "job watcher: polling this job");
      }
      if (!job.polling) this.startPolling(job);
    }
    for (const job of [...this.jobs.values()]) {
      if (candidates.has(job.name) && !this.finished(job.name)) continue;
      if (job.leased) await this.retire(job);
      this.stopPolling(job);
      if (job.shares === 0 && !(job.startedHere && !this.finished(job.name))) this.jobs.delete(job.name);
    }
  }

  /** Stops polling a job and gives its lease back (finished, or nobody wants it any more). */
  private async retire(job: WatchedJob): Promise<void> {
    this.stopPolling(job);
    if (!job.leased || !this.leases) return;
    job.leased = false;
    try {
      await this.leases.release(this.key("lease", job.name));
    } catch {
      // Expires on its own.
    }
  }

  private async forgetRemoteInterest(name: string): Promise<void> {
    if (!this.redis) return;
    try {
      await this.redis.zrem(this.key("wanted"), this.wantedMember(name));
    } catch {
      // Expires on its own.
    }
  }

  /** Takes the newer of the shared state (the previous holder's) and our own as the base of the diff. */
  private async adoptSharedState(name: string): Promise<void> {
    const raw = await this.redis!.get(this.key("state", name));
    if (!raw) return;
    try {
      const shared = JSON.parse(raw) as KnownJobState;
      const mine = this.states.get(name);
      if (!mine || shared.observedAt > mine.observedAt) this.remember(name, shared);
    } catch {
      // A damaged entry is ignored: the next poll re-reports from our own state.
    }
  }

  private remember(name: string, state: KnownJobState): void {
    this.states.delete(name);
    this.states.set(name, state);
    if (this.states.size > MAX_REMEMBERED_STATES) {
      for (const old of this.states.keys()) {
        if (this.jobs.has(old)) continue;
        this.states.delete(old);
        if (this.states.size <= MAX_REMEMBERED_STATES) break;
      }
    }
  }

  // ---- polling --------------------------------------------------------------------------------

  private jittered(ms: number): number {
    return Math.round(ms * (0.85 + 0.3 * this.random()));
  }

  private startPolling(job: WatchedJob): void {
    if (job.polling || this.closed) return;
    job.polling = true;
    job.failures = 0;
    // Unknown state: report at once, so a new subscriber sees where the job stands.
    this.schedulePoll(job, this.states.has(job.name) ? this.jittered(this.intervalMs) : 0);
  }

  private stopPolling(job: WatchedJob): void {
    job.polling = false;
    if (job.timer) clearTimeout(job.timer);
    job.timer = null;
  }

  private schedulePoll(job: WatchedJob, delay: number): void {
    if (job.timer) clearTimeout(job.timer);
    job.timer = setTimeout(() => void this.poll(job), delay);
    job.timer.unref();
  }

  private async poll(job: WatchedJob): Promise<void> {
    job.timer = null;
    if (!job.polling || this.closed) return;
    job.inFlight = true;
    let delay = this.jittered(this.intervalMs);
    try {
      const record = await this.options.describe(job.name);
      if (!job.polling || this.closed) return;
      job.failures = 0;
      if (!record) {
        this.options.log?.warn({ job: job.name }, "job watcher: the job no longer exists; stopped watching it");
        this.markFinished(job.name);
      } else {
        this.publishChanges(job.name, record);
      }
      if (this.finished(job.name)) {
        job.startedHere = false;
        await this.retire(job);
        if (this.redis) await this.redis.srem(this.key("active"), job.name).catch(() => 0);
        return;
      }
    } catch (error) {
      job.failures++;
      const code = error instanceof TrialgraphError ? error.code : "INTERNAL_SERVER_ERROR";
      // Throttling (and outages) are met with exponential backoff; the lease is renewed meanwhile by the tick.
      delay = this.jittered(Math.min(this.intervalMs * 2 ** job.failures, this.maxBackoffMs));
      const log = code === "THROTTLED" ? this.options.log?.debug : this.options.log?.warn;
      log?.call(this.options.log, { job: job.name, code, error: (error as Error).message, retryInMs: delay }, "job watcher: DescribeTrainingJob failed");
    } finally {
      job.inFlight = false;
    }
    if (job.polling && !this.closed) this.schedulePoll(job, delay);
  }

  private markFinished(name: string): void {
    const known = this.states.get(name);
    this.remember(name, known ? { ...known, finished: true, observedAt: Date.now() } : {
      status: "STOPPED", secondaryStatus: null, rules: {}, finished: true, observedAt: Date.now(),
    });
    void this.share(name);
  }

  /** Diffs a fresh record against the last published state and publishes what changed. */
  private publishChanges(name: string, job: TrainingJobRecord): void {
    const before = this.states.get(name) ?? null;
    const rules: Record<string, RuleEvaluationStatus> = {};
    let changed = before == null;
    if (!before || before.status !== job.status || before.secondaryStatus !== job.secondaryStatus) {
      this.options.events.publish("jobStatus", { job, previousStatus: before?.status ?? null });
      changed = true;
    }
    // Rules the service evaluates itself publish their own events (the rule engine); only SageMaker's are diffed.
    const polledRules = job.ruleSummaries.filter((r) => r.evaluator !== "SERVICE");
    for (const rule of polledRules) {
      rules[rule.ruleConfigurationName] = rule.status;
      const previous = before?.rules[rule.ruleConfigurationName] ?? null;
      if (previous !== rule.status) {
        this.options.events.publish("ruleStatus", { jobName: name, rule, previousStatus: previous });
        changed = true;
      }
    }
    const finished = TERMINAL_JOB_STATUSES.has(job.status) && polledRules.every((r) => TERMINAL_RULE_STATUSES.has(r.status));
    this.remember(name, { status: job.status, secondaryStatus: job.secondaryStatus, rules, finished, observedAt: Date.now() });
    if (changed || finished !== (before?.finished ?? false)) void this.share(name);
  }

  /** Publishes the known state for whoever polls the job next. */
  private async share(name: string): Promise<void> {
    const state = this.states.get(name);
    if (!this.redis || !state) return;
    try {
      await this.redis.set(this.key("state", name), JSON.stringify(state), "PX", SHARED_STATE_TTL_MS);
    } catch {
      // Redis away: the next holder may re-report a change once; events are idempotent for clients.
    }
  }
}

/**
 * Has the watcher follow every SageMaker job this service starts from its first moment (so its
 * events exist before anyone subscribes), and poll at once after a stop request.
 */
export function watchJobsStartedBy(jobs: JobService, watcher: JobWatcher): void {
  const start = jobs.start.bind(jobs);
  const stop = jobs.stop.bind(jobs);
  jobs.start = async (spec) => {
    const job = await start(spec);
    if (job.backend === "SAGEMAKER") watcher.started(job);
    return job;
  };
  jobs.stop = async (name) => {
    const job = await stop(name);
    if (job.backend === "SAGEMAKER") watcher.poke(name);
    return job;
  };
}
