/**
 * Typed topics for live events. Jobs and rules publish; subscriptions listen.
 *
 * Events always reach this instance's own subscribers directly; with Redis they also travel to
 * every other instance (and come back tagged with our origin, which we skip). So a Redis outage
 * degrades to single-instance delivery instead of silence, and delivery resumes when it returns.
 */
import { randomUUID } from "node:crypto";
import { setMaxListeners } from "node:events";
import { createPubSub, type PubSub } from "@graphql-yoga/subscription";
import { createRedisEventTarget } from "@graphql-yoga/redis-event-target";
import { Redis } from "ioredis";
import { filterMap, mergeIterators } from "./iterators.js";
import type { RuleEvaluationStatus, RuleSummaryRecord, TrainingJobRecord, TrainingJobStatus } from "../store/records.js";

export interface JobStatusEvent {
  job: TrainingJobRecord;
  previousStatus: TrainingJobStatus | null;
}

export interface RuleStatusEvent {
  jobName: string;
  rule: RuleSummaryRecord;
  previousStatus: RuleEvaluationStatus | null;
}

export interface StepsAddedEvent {
  path: string;
  steps: number[];
  lastCompleteStep: number | null;
  trainingEnded: boolean;
}

/** A running job's progress moved (no status change). */
export interface JobProgressEvent {
  job: TrainingJobRecord;
}

export interface Topics {
  jobStatus: JobStatusEvent;
  jobProgress: JobProgressEvent;
  ruleStatus: RuleStatusEvent;
  stepsAdded: StepsAddedEvent;
}
export type Topic = keyof Topics;

type Wire = { origin: string; data: unknown };
type PubSubArgs = Record<string, [Wire]>;

const DATE_FIELDS = ["createdAt", "startedAt", "endedAt", "lastModifiedTime"];

/** Redis carries JSON: Dates come back as strings, so they are revived here, in one place. */
function revive<T>(value: T): T {
  if (Array.isArray(value)) return value.map(revive) as T;
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = DATE_FIELDS.includes(k) && typeof v === "string" ? new Date(v) : revive(v);
    }
    return out as T;
  }
  return value;
}

/**
 * Every subscriber of a topic receives the same wire object; it is revived once and the result
 * shared (resolvers only read event payloads), instead of once per subscriber.
 */
const revivedWires = new WeakMap<Wire, unknown>();
function revived<T>(wire: Wire): T {
  let value = revivedWires.get(wire);
  if (value === undefined) {
    value = revive(wire.data);
    revivedWires.set(wire, value);
  }
  return value as T;
}

export interface EventBusHealth {
  redis: "disabled" | "up" | "down";
}

export interface EventBusOptions {
  redisUrl?: string | null;
  /** Prefix of the Redis channels, so several deployments (or test runs) can share one Redis. */
  prefix?: string;
  onRedisStateChange?: (up: boolean, error?: string) => void;
}

export class EventBus {
  readonly origin = randomUUID();
  private readonly local: PubSub<PubSubArgs>;
  private readonly remote: PubSub<PubSubArgs> | null = null;
  private readonly clients: Redis[] = [];
  private redisUp = false;
  private readonly prefix: string;

  constructor(options: EventBusOptions = {}) {
    this.prefix = options.prefix ?? "trialgraph";
    // One listener per subscription: thousands are normal here, not a leak.
    const localTarget = new EventTarget();
    setMaxListeners(0, localTarget);
    this.local = createPubSub<PubSubArgs>({ eventTarget: localTarget });
    if (options.redisUrl) {
      const make = (subscriber: boolean) =>
        new Redis(options.redisUrl!, {
          // Never queue publishes while Redis is away: local subscribers already got them. Subscriptions
          // made while disconnected must wait for the connection instead (no retry limit), or their
          // channel would stay unsubscribed after Redis returns.
          enableOfflineQueue: subscriber,
          maxRetriesPerRequest: subscriber ? null : 1,
          retryStrategy: (times) => Math.min(times * 200, 2000),
          lazyConnect: false,
        });
      const publishClient = make(false);
      const subscribeClient = make(true);
      this.clients.push(publishClient, subscribeClient);
      // Reported on transitions only (the first report says "down" when Redis is away at start),
      // not on every reconnection attempt.
      let reported: boolean | null = null;
      const report = (error?: string) => {
        const up = publishClient.status === "ready" && subscribeClient.status === "ready";
        this.redisUp = up;
        if (up !== reported) {
          reported = up;
          options.onRedisStateChange?.(up, up ? undefined : error);
        }
      };
      for (const c of this.clients) {
        c.on("ready", () => report());
        c.on("end", () => report());
        c.on("close", () => report());
        c.on("error", (e) => report(e.message));
      }
      // The event target fires publish/subscribe/unsubscribe without awaiting them; one failing on a
      // dropped connection would be an unhandled rejection (a crash). Publishes that fail
      // are dropped (local subscribers already had the event); subscribe commands wait for the
      // connection and only fail when the bus closes.
      const guardedPublisher = { publish: (channel: string, message: string) => publishClient.publish(channel, message).catch(() => 0) };
      const guardedSubscriber = {
        on: (event: string, listener: (...args: any[]) => void) => subscribeClient.on(event, listener),
        subscribe: (channel: string) => subscribeClient.subscribe(channel).catch(() => 0),
        unsubscribe: (channel: string) => subscribeClient.unsubscribe(channel).catch(() => 0),
      };
      this.remote = createPubSub<PubSubArgs>({
        eventTarget: createRedisEventTarget<any>({
          publishClient: guardedPublisher as unknown as Redis,
          subscribeClient: guardedSubscriber as unknown as Redis,
        }),
      });
    }
  }

  health(): EventBusHealth {
    if (!this.remote) return { redis: "disabled" };
    return { redis: this.redisUp ? "up" : "down" };
  }

  /**
   * A Redis connection for plain commands (leases, shared watcher state), or null without Redis.
   * It never queues while Redis is away, so commands fail fast instead of piling up.
   */
  commandClient(): Redis | null {
    return this.remote ? this.clients[0] : null;
  }

  get redisPrefix(): string {
    return this.prefix;
  }

  private channel(topic: Topic): string {
    return `${this.prefix}:${topic}`;
  }

  publish<T extends Topic>(topic: T, event: Topics[T]): void {
    const wire: Wire = { origin: this.origin, data: JSON.parse(JSON.stringify(event)) };
    this.local.publish(this.channel(topic), wire);
    if (this.remote && this.redisUp) {
      try {
        this.remote.publish(this.channel(topic), wire);
      } catch {
        // Redis went away between the check and the publish; local delivery already happened.
      }
    }
  }

  /** Every event of a topic, from this instance and (with Redis) every other one, until `return()`. */
  subscribe<T extends Topic>(topic: T): AsyncIterableIterator<Topics[T]> {
    const channel = this.channel(topic);
    const sources = [filterMap(this.local.subscribe(channel), (w) => revived<Topics[T]>(w))];
    if (this.remote) {
      // Our own events come back from Redis too; local subscribers already had them.
      sources.push(filterMap(this.remote.subscribe(channel), (w) => (w.origin === this.origin ? undefined : revived<Topics[T]>(w))));
    }
    return mergeIterators(sources);
  }

  async close(): Promise<void> {
    // QUIT would wait in the offline queue for a Redis that is away; only a connected client says goodbye.
    await Promise.all(this.clients.map(async (c) => {
      if (c.status !== "ready") {
        c.disconnect();
        return;
      }
      await c.quit().catch(() => c.disconnect());
    }));
  }
}
