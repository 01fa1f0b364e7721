/**
 * Instances sharing the database watch one another. Each registers at start and heartbeats every
 * third of a lease period; an instance silent for a whole lease period is dead, and a survivor ends
 * its work: its local jobs become FAILED with the reason (they cannot resume elsewhere), their rules
 * STOPPED, its leases free. The change is announced like any other status change.
 *
 * Two guards against declaring a live instance dead: an instance only judges others once it has
 * itself reached the database for a whole lease period (after an outage every instance is silent,
 * and the others need time to heartbeat again); and an instance that finds its own registration gone
 * (the others judged it dead during a pause) stops its jobs and registers again.
 *
 * A restart on the same machine needs no wait: a registration whose process no longer exists (same
 * host and process namespace, no such pid, or our own pid) belongs to a predecessor, and is ended at
 * once.
 */
import { readlinkSync } from "node:fs";
import os from "node:os";
import type { EventBus } from "../events/event-bus.js";
import type { InstanceInfo, InstanceStore } from "../store/index.js";

export interface InstanceMonitorLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface InstanceMonitorOptions {
  instances: InstanceStore;
  events: EventBus;
  /** This instance's id (also the owner of its leases). */
  instanceId: string;
  /** The lease period: heartbeats every third of it; silent this long means dead. */
  leaseMs: number;
  log: InstanceMonitorLog;
  /** The others took this instance for dead (its jobs are already failed): stop its work. */
  onDeclaredDead?: () => void;
}

/** This machine and process namespace: pids compare only within it. */
export function machineIdentity(): string {
  let namespace = "";
  try {
    namespace = readlinkSync("/proc/self/ns/pid");
  } catch {
    // not Linux: host name alone
  }
  return `${os.hostname()}${namespace ? `|${namespace}` : ""}`;
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

export class InstanceMonitor {
  private readonly host = machineIdentity();
  private timer: NodeJS.Timeout | null = null;
  private healthySince: number | null = null;
  private closed = false;
  private unreachableLogged = false;
  private ticking: Promise<void> | null = null;

  constructor(private readonly options: InstanceMonitorOptions) {}

  get tickMs(): number {
    return Math.max(50, Math.floor(this.options.leaseMs / 3));
  }

  /** Registers this instance and ends the registrations of predecessors on this machine. */
  async start(): Promise<void> {
    await this.options.instances.register(this.options.instanceId, this.host, process.pid);
    this.healthySince = Date.now();
    await this.sweep(await this.options.instances.list());
    this.schedule();
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      this.ticking = this.tick().finally(() => {
        this.ticking = null;
        this.schedule();
      });
    }, this.tickMs);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    try {
      if (!(await this.options.instances.heartbeat(this.options.instanceId))) {
        this.options.log.error({ instance: this.options.instanceId }, "the other instances took this one for dead (it was silent for a lease period); stopping its local jobs and registering again");
        this.options.onDeclaredDead?.();
        await this.options.instances.register(this.options.instanceId, this.host, process.pid);
      }
      this.healthySince ??= Date.now();
      if (this.unreachableLogged) {
        this.options.log.info({ instance: this.options.instanceId }, "instance heartbeats reach the database again");
        this.unreachableLogged = false;
      }
      await this.sweep(await this.options.instances.list());
    } catch (e) {
      this.healthySince = null;
      if (!this.unreachableLogged) {
        this.options.log.warn({ err: e }, "instance heartbeat failed: the database is unreachable");
        this.unreachableLogged = true;
      }
    }
  }

  /** Ends every other instance that is dead. */
  private async sweep(instances: InstanceInfo[]): Promise<void> {
    const judging = this.healthySince !== null && Date.now() - this.healthySince >= this.options.leaseMs;
    for (const other of instances) {
      if (other.id === this.options.instanceId || this.closed) continue;
      const predecessor = other.host === this.host && (other.pid === process.pid || !processExists(other.pid));
      const silent = judging && other.silentMs > this.options.leaseMs;
      if (!predecessor && !silent) continue;
      const why = predecessor ? "restarted" : `stopped (no heartbeat for ${Math.round(other.silentMs / 1000)} s)`;
      const ended = await this.options.instances.endInstance(other.id, {
        failureReason: `The trialgraph instance running this job ${why} while it was running; local jobs cannot resume.`,
        ruleDetails: `the training job's instance ${why}; the rule evaluation stopped with the job`,
      }, new Date());
      if (ended.jobs.length || ended.rules.length) {
        this.options.log.warn({ instance: other.id, jobs: ended.jobs.map((j) => j.record.name) }, `ended the local jobs of an instance that ${why}`);
      }
      for (const j of ended.jobs) this.options.events.publish("jobStatus", { job: j.record, previousStatus: j.previousStatus });
      for (const r of ended.rules) this.options.events.publish("ruleStatus", { jobName: r.jobName, rule: r.summary, previousStatus: r.previousStatus });
    }
  }

  /** Leaves the registry (a clean stop: nothing of ours is left to end; our leases are freed). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    await this.ticking;
    await this.options.instances.deregister(this.options.instanceId).catch(() => undefined);
  }
}
