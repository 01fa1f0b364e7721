/**
 * Follows growing trials for their subscribers: one refresh loop per trial, however many
 * subscribers it has, stopping when the last one leaves or training ends.
 */
import type { Trial } from "../trials/trial.js";
import type { EventBus } from "./event-bus.js";

interface Followed {
  trial: Trial;
  shares: number;
  timer: NodeJS.Timeout | null;
  ended: boolean;
  polling: boolean;
  /** The largest step published: steps are published by what the trial has, not by what one refresh found. */
  lastStep: number;
}

export class TrialFollower {
  private followed = new Map<string, Followed>();

  constructor(private readonly events: EventBus, private readonly intervalMs: number, private readonly onError?: (path: string, e: unknown) => void) {}

  /** Starts (or joins) following; returns the function that releases this share. */
  follow(trial: Trial): () => void {
    let f = this.followed.get(trial.path);
    if (!f) {
      f = { trial, shares: 0, timer: null, ended: trial.trainingEnded, polling: false, lastStep: Math.max(-1, ...trial.steps()) };
      this.followed.set(trial.path, f);
      this.schedule(f, 0);
    }
    f.shares++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      f!.shares--;
      if (f!.shares === 0) this.stop(trial.path);
    };
  }

  /** New data was written (a local job saved a step): poll now instead of at the next tick. */
  poke(path: string): void {
    const f = this.followed.get(path);
    if (!f || f.polling) return;
    if (f.timer) clearTimeout(f.timer);
    this.schedule(f, 0);
  }

  private schedule(f: Followed, delay: number): void {
    f.timer = setTimeout(() => void this.poll(f), delay);
    f.timer.unref();
  }

  private async poll(f: Followed): Promise<void> {
    if (this.followed.get(f.trial.path) !== f) return;
    f.polling = true;
    try {
      const r = await f.trial.refresh({ force: true });
      const endedNow = r.trainingEnded && !f.ended;
      // Another reader of the same trial (rule evaluation, a query) may have refreshed it first and
      // taken its new steps; they are still new to subscribers.
      const steps = f.trial.steps().filter((s) => s > f.lastStep);
      if (steps.length) f.lastStep = steps[steps.length - 1];
      if (steps.length || endedNow) {
        this.events.publish("stepsAdded", { path: f.trial.path, steps, lastCompleteStep: f.trial.lastCompleteStep, trainingEnded: r.trainingEnded });
      }
      f.ended = r.trainingEnded;
      // Nothing more will come; subscribers keep their stream open until they leave.
      if (f.ended) return;
    } catch (e) {
      this.onError?.(f.trial.path, e);
    } finally {
      f.polling = false;
    }
    if (this.followed.get(f.trial.path) === f) this.schedule(f, this.intervalMs);
  }

  private stop(path: string): void {
    const f = this.followed.get(path);
    if (f?.timer) clearTimeout(f.timer);
    this.followed.delete(path);
  }

  get size(): number {
    return this.followed.size;
  }

  close(): void {
    for (const p of [...this.followed.keys()]) this.stop(p);
  }
}
