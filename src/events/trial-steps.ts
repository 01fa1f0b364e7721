/**
 * A trialStepsAdded subscription: the steps a trial has first (all of them, or those after the
 * client's cursor), then each new step once, then the end of training, after which it completes.
 * The trial's own files are the durable record of its steps, so the cursor is a step number and a
 * resumed subscription re-reads the trial rather than a log: nothing to prune, on any instance.
 *
 * The trial of a job that has not written its first step yet is waited for (checked every
 * `waitMs`); if the job ends without one, the single event says trainingEnded with no steps.
 */
import { TrialgraphError } from "../errors.js";
import type { Trial } from "../trials/trial.js";
import type { EventBus, StepsAddedEvent } from "./event-bus.js";

export interface StepsItem extends StepsAddedEvent {
  eventId: string;
}

export interface TrialStepsOptions {
  bus: EventBus;
  /** The trial's canonical path (what the follower publishes under). */
  path: string;
  /** The trial, or null while nothing is written yet. */
  resolve: () => Promise<Trial | null>;
  /** While waiting for the trial: whether its job has ended (nothing will be written). */
  jobEnded: () => Promise<boolean>;
  /** Follows the growing trial; returns the release. */
  follow: (trial: Trial) => () => void;
  /** The client's cursor: steps up to it were delivered. */
  after?: string | null;
  waitMs: number;
}

export const encodeStepCursor = (step: number) => `step:${step}`;

export function decodeStepCursor(cursor: string): number {
  const m = /^step:(-?\d{1,15})$/.exec(cursor);
  if (!m) throw new TrialgraphError("BAD_USER_INPUT", "after is not an eventId from a trialStepsAdded subscription", { field: "after" });
  return Number(m[1]);
}

export function trialSteps(options: TrialStepsOptions): AsyncIterableIterator<StepsItem> {
  let last = options.after != null ? decodeStepCursor(options.after) : -1;
  const queue: StepsItem[] = [];
  let waiting: ((r: IteratorResult<StepsItem>) => void) | null = null;
  let failWaiting: ((e: unknown) => void) | null = null;
  let finished = false;
  let error: unknown = null;
  let release: (() => void) | null = null;
  let waitTimer: NodeJS.Timeout | null = null;
  // Registered first: a step published while the trial is read below is not missed (it is deduped by `last`).
  const live = options.bus.subscribe("stepsAdded");
  let trial: Trial | null = null;

  const stop = () => {
    if (finished) return;
    finished = true;
    release?.();
    release = null;
    if (waitTimer) clearTimeout(waitTimer);
    void live.return?.();
  };
  const push = (item: StepsItem) => {
    if (waiting) {
      const w = waiting;
      waiting = failWaiting = null;
      w({ value: item, done: false });
    } else queue.push(item);
  };
  const wake = () => {
    if (waiting && finished && !queue.length) {
      const w = waiting;
      waiting = failWaiting = null;
      w({ value: undefined, done: true });
    }
  };
  const fail = (e: unknown) => {
    error = e;
    stop();
    if (failWaiting) {
      const f = failWaiting;
      waiting = failWaiting = null;
      error = null;
      f(e);
    }
  };
  /** Sends the steps above `last` (and the end); completes after the end. */
  const send = (steps: number[], lastCompleteStep: number | null, ended: boolean) => {
    if (finished) return;
    const fresh = steps.filter((s) => s > last).sort((a, b) => a - b);
    if (!fresh.length && !ended) return;
    if (fresh.length) last = fresh[fresh.length - 1];
    push({ path: options.path, steps: fresh, lastCompleteStep, trainingEnded: ended, eventId: encodeStepCursor(last) });
    if (ended) {
      stop();
      wake();
    }
  };

  const begin = (t: Trial) => {
    trial = t;
    send(t.steps(), t.lastCompleteStep, t.trainingEnded);
    if (!finished) release = options.follow(t);
  };
  const waitForTrial = async () => {
    try {
      if (finished) return;
      const t = await options.resolve();
      if (finished) return;
      if (t) return begin(t);
      if (await options.jobEnded()) {
        // The job may have written its end just now: one last look.
        const late = await options.resolve();
        if (late) return begin(late);
        return send([], null, true);
      }
      waitTimer = setTimeout(() => void waitForTrial(), options.waitMs);
      waitTimer.unref();
    } catch (e) {
      fail(e);
    }
  };
  void (async () => {
    try {
      for (;;) {
        const r = await live.next();
        if (r.done || finished) return;
        const e = r.value;
        if (e.path !== options.path) continue;
        // Steps found by the follower before the trial was first read here arrive in `begin`.
        if (!trial) continue;
        send(e.steps, e.lastCompleteStep, e.trainingEnded);
      }
    } catch (e) {
      fail(e);
    }
  })();
  void waitForTrial();

  const it: AsyncIterableIterator<StepsItem> = {
    next() {
      if (queue.length) return Promise.resolve({ value: queue.shift()!, done: false });
      if (error) {
        const e = error;
        error = null;
        return Promise.reject(e);
      }
      if (finished) return Promise.resolve({ value: undefined, done: true });
      return new Promise((resolve, reject) => {
        waiting = resolve;
        failWaiting = reject;
      });
    },
    async return() {
      stop();
      queue.length = 0;
      wake();
      return { value: undefined, done: true };
    },
    async throw(e) {
      stop();
      throw e;
    },
    [Symbol.asyncIterator]() {
      return it;
    },
  };
  return it;
}
