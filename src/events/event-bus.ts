/**
 * Typed topics for live events. Jobs and rules publish; subscriptions listen.
 *
 * Job, progress and rule events ("logged" topics) are appended to the event log in the service's
 * database first (store/event-log.ts), which gives each an id, ordered across every instance: the
 * cursor (eventId) a client resumes from. Each instance delivers them to its subscribers strictly in
 * id order, without a gap: its own appends at once, other instances' as they arrive through Redis,
 * and whatever it did not hear of (Redis away, a message overtaken by a later one) from the log
 * itself, read when an id is skipped and every `pollMs`. So a Redis outage delays other instances'
 * events by at most `pollMs` instead of losing them.
 *
 * Trial steps (stepsAdded) are not logged: the trial's own files are their durable record, and a
 * subscription resumes by re-reading them (trial-steps.ts). They travel as before: to this
 * instance's subscribers directly and, with Redis, to the others.
 */
import { randomUUID } from "node:crypto";
import { setMaxListeners } from "node:events";
import { createPubSub, type PubSub } from "@graphql-yoga/subscription";
import type { Redis } from "ioredis";
import { filterMap, mergeIterators } from "./iterators.js";
import type { RuleEvaluationStatus, RuleSummaryRecord, TrainingJobRecord, TrainingJobStatus } from "../store/records.js";
import type { EventLog, LogEvent, RetentionPolicy } from "../store/event-log.js";
import { TrialgraphError } from "../errors.js";

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
/** Topics kept in the event log (with ids a subscription can resume after). */
export type LoggedTopic = "jobStatus" | "jobProgress" | "ruleStatus";
const LOGGED = new Set<Topic>(["jobStatus", "jobProgress", "ruleStatus"]);


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
  /**
   * The event log (the service's database). Without it (tests of single components) ids come from
   * this process alone and nothing can be replayed.
   */
  log?: EventLog | null;
  /** How often the log is read for events this instance did not hear of (ms). */
  pollMs?: number;
  /** How long, and how many, events the log keeps (pruned by every instance, now and then). */
  retention?: RetentionPolicy;
  /** Events arrived through Redis from instances on another database (they are ignored). */
  onForeignEvents?: () => void;
  /** Appending failed (the database is away); the events wait and are retried. */
  onAppendError?: (error: unknown, waiting: number) => void;
}

export interface FeedFilter {
  topics: readonly LoggedTopic[];
  /** Only this job's events; null: every job's. */
  jobName: string | null;
}

/** An item a subscription yields: a logged event, or (snapshot) a current state tagged with the log position it reflects. */
export interface FeedItem {
  id: number;
  topic: LoggedTopic;
  data: Topics[LoggedTopic];
  snapshot?: boolean;
}

/** Events a subscriber has not taken yet, past which it is ended (a client that stopped reading). */
const MAX_FEED_BACKLOG = 100_000;
/** Events held while the database is away, before the oldest are dropped. */
const MAX_UNAPPENDED = 50_000;
/** Appends of progress alone are this far apart at least (ms). */
const PROGRESS_APPEND_MS = 50;

/**
 * One subscriber's queue of logged events. It is registered with the dispatcher at once, and holds
 * what arrives while the subscription catches up (replay or snapshot); `release(floor)` then lets
 * through what is newer than the catch-up, so nothing is missed and nothing is seen twice.
 */
export class Feed implements AsyncIterableIterator<FeedItem> {
  private readonly out: FeedItem[] = [];
  private held: FeedItem[] | null = [];
  private floor = 0;
  private waiting: ((r: IteratorResult<FeedItem>) => void) | null = null;
  private failWaiting: ((e: unknown) => void) | null = null;
  private done = false;
  private error: unknown = null;

  constructor(readonly filter: FeedFilter, private readonly detach: (f: Feed) => void) {}

  /** From the dispatcher (in id order). */
  push(item: FeedItem): void {
    if (this.done) return;
    if (this.held) {
      this.held.push(item);
      return;
    }
    if (item.id <= this.floor) return;
    this.emit(item);
  }

  /** Yields an item now (catch-up: replayed events and snapshots). */
  emit(item: FeedItem): void {
    if (this.done) return;
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = this.failWaiting = null;
      w({ value: item, done: false });
      return;
    }
    this.out.push(item);
    if (this.out.length > MAX_FEED_BACKLOG) {
      this.fail(new TrialgraphError("LIMIT_EXCEEDED", `this subscription fell more than ${MAX_FEED_BACKLOG} events behind; resubscribe with after: the last eventId received`, { limit: "backlog" }));
    }
  }

  /** The catch-up is done up to log id `floor`: held events above it follow. */
  release(floor: number): void {
    const held = this.held ?? [];
    this.held = null;
    this.floor = floor;
    for (const item of held) if (item.id > floor) this.emit(item);
  }

  fail(error: unknown): void {
    if (this.done) return;
    this.error = error;
    this.out.length = 0;
    this.close();
    if (this.failWaiting) {
      const f = this.failWaiting;
      this.waiting = this.failWaiting = null;
      f(error);
    }
  }

  private close(): void {
    if (!this.done) {
      this.done = true;
      this.detach(this);
    }
  }

  next(): Promise<IteratorResult<FeedItem>> {
    if (this.out.length) return Promise.resolve({ value: this.out.shift()!, done: false });
    if (this.error) {
      const e = this.error;
      this.error = null;
      return Promise.reject(e);
    }
    if (this.done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.waiting = resolve;
      this.failWaiting = reject;
    });
  }

  async return(): Promise<IteratorResult<FeedItem>> {
    this.close();
    this.out.length = 0;
    if (this.waiting) this.waiting({ value: undefined, done: true });
    this.waiting = this.failWaiting = null;
    return { value: undefined, done: true };
  }

  async throw(e: unknown): Promise<IteratorResult<FeedItem>> {
    await this.return();
    throw e;
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<FeedItem> {
    return this;
  }
}

type LogWire = { origin: string; log: string; data: LogEvent[] };

export class EventBus {
  readonly origin = randomUUID();
  private readonly local: PubSub<PubSubArgs>;
  private readonly remote: PubSub<PubSubArgs> | null = null;
  private readonly clients: Redis[] = [];
  private redisUp = false;
  private readonly prefix: string;
  private readonly log: EventLog | null;
  private readonly pollMs: number;

  /** Logged events delivered to this instance's subscribers: every id up to here. */
  private delivered = 0;
  private started = false;
  /** Events above `delivered` that arrived ahead of an id not seen yet. */
  private readonly ahead = new Map<number, LogEvent>();
  private filling: Promise<void> | null = null;
  private fillAgain = false;
  private pollTimer: NodeJS.Timeout | null = null;
  private remoteFeed: AsyncIterator<Wire> | null = null;
  /** Subscribers by "topic" (every job) and "topic\0job". */
  private readonly feeds = new Map<string, Set<Feed>>();

  /** Events published here, not yet in the log. */
  private unappended: { topic: LoggedTopic; jobName: string | null; payload: string }[] = [];
  private appending: Promise<void> | null = null;
  private appendTimer: NodeJS.Timeout | null = null;
  private appendFailures = 0;
  private closed = false;

  constructor(private readonly options: EventBusOptions = {}) {
    this.prefix = options.prefix ?? "trialgraph";
    this.log = options.log ?? null;
    this.pollMs = options.pollMs ?? 1000;
    // Without a log there is nothing to read first: delivery starts at once (start() adds Redis).
    if (!this.log) this.started = true;
    // One listener per subscription: thousands are normal here, not a leak.
    const localTarget = new EventTarget();
    setMaxListeners(0, localTarget);
    this.local = createPubSub<PubSubArgs>({ eventTarget: localTarget });
    if (options.redisUrl) {
      // Loaded only when Redis is configured: an embedded service is spared ioredis (~7 MB RSS).
      const { Redis } = require("ioredis") as typeof import("ioredis");
      const { createRedisEventTarget } = require("@graphql-yoga/redis-event-target") as typeof import("@graphql-yoga/redis-event-target");
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
          // Back on Redis: read what was missed meanwhile now rather than at the next poll.
          if (up && this.started) this.fill();
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
      // are dropped (local subscribers already had the event; others read it from the log); subscribe
      // commands wait for the connection and only fail when the bus closes.
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

  /**
   * Starts delivering logged events: from the log's current end (what came before is history, read
   * only by replays), with other instances' events from Redis and the periodic log read.
   */
  async start(): Promise<void> {
    if (this.remoteFeed || (this.started && this.log)) return;
    if (this.log) this.delivered = await this.log.last();
    if (this.log) this.logIdentity = await this.log.identity();
    this.started = true;
    if (this.remote) {
      const it = this.remote.subscribe(this.channel("log"));
      this.remoteFeed = it;
      void (async () => {
        try {
          for (;;) {
            const r = await it.next();
            if (r.done) return;
            const wire = r.value as unknown as LogWire;
            if (wire.origin === this.origin) continue;
            if (wire.log !== this.logIdentity) {
              // Another deployment on the same Redis prefix, with its own database: its ids mean nothing here.
              if (!this.foreignWarned) this.options.onForeignEvents?.();
              this.foreignWarned = true;
              continue;
            }
            this.offer(wire.data);
          }
        } catch {
          // The bus closed.
        }
      })();
    }
    if (this.log) this.schedulePoll();
    if (this.log && this.options.retention) this.schedulePrune(0);
    this.drain();
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

  /** Whether cursors can be replayed (an event log is attached). */
  get replayable(): boolean {
    return this.log !== null;
  }

  private channel(topic: Topic | "log"): string {
    return `${this.prefix}:${topic}`;
  }

  publish<T extends Topic>(topic: T, event: Topics[T]): void {
    if (LOGGED.has(topic)) {
      this.appendLater(topic as LoggedTopic, event as Topics[LoggedTopic]);
      return;
    }
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

  /**
   * Every event of a topic from now on, from this instance and every other one, until `return()`.
   * Logged topics come in id order, once each.
   */
  subscribe<T extends Topic>(topic: T): AsyncIterableIterator<Topics[T]> {
    if (LOGGED.has(topic)) {
      const feed = this.watch({ topics: [topic as LoggedTopic], jobName: null });
      feed.release(0);
      return filterMap(feed, (item) => item.data as Topics[T]);
    }
    const channel = this.channel(topic);
    const sources = [filterMap(this.local.subscribe(channel), (w) => revived<Topics[T]>(w))];
    if (this.remote) {
      // Our own events come back from Redis too; local subscribers already had them.
      sources.push(filterMap(this.remote.subscribe(channel), (w) => (w.origin === this.origin ? undefined : revived<Topics[T]>(w))));
    }
    return mergeIterators(sources);
  }

  /**
   * A subscriber's feed of logged events, registered now and holding them until `release`: the
   * caller first replays or snapshots, then releases above what that covered.
   */
  watch(filter: FeedFilter): Feed {
    const feed = new Feed(filter, (f) => this.unwatch(f));
    for (const key of this.keys(filter)) {
      let set = this.feeds.get(key);
      if (!set) this.feeds.set(key, (set = new Set()));
      set.add(feed);
    }
    return feed;
  }

  private keys(filter: FeedFilter): string[] {
    return filter.topics.map((t) => (filter.jobName === null ? t : `${t}\0${filter.jobName}`));
  }

  private unwatch(feed: Feed): void {
    for (const key of this.keys(feed.filter)) {
      const set = this.feeds.get(key);
      set?.delete(feed);
      if (set?.size === 0) this.feeds.delete(key);
    }
  }

  /** Subscribers registered on this instance (metrics, benchmarks). */
  get feedCount(): number {
    let n = 0;
    for (const set of this.feeds.values()) n += set.size;
    return n;
  }

  /** The newest id in the log (every event up to it is committed). */
  async lastId(): Promise<number> {
    return this.log ? this.log.last() : this.delivered;
  }

  /** Throws CURSOR_EXPIRED when events after `id` are no longer all in the log. */
  async checkCursor(id: number): Promise<void> {
    if (!this.log) throw cursorExpired("this service keeps no event log, so it cannot replay");
    const [pruned, last] = await Promise.all([this.log.prunedThrough(), this.log.last()]);
    if (id < pruned) throw cursorExpired(`events after this cursor were pruned (the log keeps events after ${encodeCursor(pruned)})`);
    if (id > last) throw cursorExpired("this cursor is newer than the event log (was the service's database replaced?)");
  }

  /** Logged events after `after` matching the filter, oldest first. */
  async replay(after: number, filter: FeedFilter, limit: number): Promise<FeedItem[]> {
    if (!this.log) return [];
    const rows = await this.log.read({ after, topics: filter.topics, jobName: filter.jobName, limit });
    return rows.map((r) => ({ id: r.id, topic: r.topic as LoggedTopic, data: parsed(r) }));
  }

  // ---- appending ----------------------------------------------------------------------------------

  private appendLater(topic: LoggedTopic, event: Topics[LoggedTopic]): void {
    if (this.closed) return;
    const jobName = "jobName" in event ? event.jobName : event.job.name;
    const payload = JSON.stringify(event);
    // While an append is in flight, a job's progress that arrives right after its previous progress
    // (nothing else between them) replaces it: a job reporting thousands of rounds a second writes
    // one row per append instead of one per round. Progress still moves with every append, and
    // every subscriber and every replay sees the same sequence. Status and rule events are never merged.
    if (topic === "jobProgress" && (this.inFlight > 0 || this.appendTimer)) {
      // Among the progress events queued since the last other event (a status or rule event is a
      // barrier: order around it is kept), this job's replaces its previous one.
      for (let i = this.unappended.length - 1; i >= this.inFlight && this.unappended[i].topic === "jobProgress"; i--) {
        if (this.unappended[i].jobName === jobName) {
          this.unappended.splice(i, 1);
          break;
        }
      }
    }
    this.unappended.push({ topic, jobName, payload });
    if (this.unappended.length > MAX_UNAPPENDED) this.unappended.splice(0, this.unappended.length - MAX_UNAPPENDED);
    if (this.appendTimer && topic !== "jobProgress" && this.appendFailures === 0) {
      // Only progress was waiting for its pace: this event goes now, with it.
      clearTimeout(this.appendTimer);
      this.appendTimer = null;
    }
    // Events published in one tick go in one transaction.
    if (!this.appending && !this.appendTimer) this.startAppend(true);
  }

  /** Runs the appender unless it runs (`appending` is cleared when it returns, however it returns). */
  private startAppend(nextTick = false): void {
    if (this.appending) return;
    const run = nextTick ? new Promise<void>((r) => setImmediate(r)).then(() => this.appendNow()) : this.appendNow();
    const p: Promise<void> = run.finally(() => {
      if (this.appending === p) this.appending = null;
    });
    this.appending = p;
  }

  private async appendNow(): Promise<void> {
    while (this.unappended.length && !this.closed) {
      // Progress alone is written at most every PROGRESS_APPEND_MS (merged meanwhile): a fast job
      // must not turn into hundreds of commits a second. Any other event goes at once.
      const wait = this.lastAppendAt + PROGRESS_APPEND_MS - Date.now();
      if (wait > 0 && this.unappended.every((e) => e.topic === "jobProgress")) {
        this.appendTimer = setTimeout(() => {
          this.appendTimer = null;
          this.startAppend();
        }, wait);
        this.appendTimer.unref();
        return;
      }
      this.lastAppendAt = Date.now();
      const batch = this.unappended.slice(0, 1000);
      let rows: LogEvent[];
      if (this.log) {
        this.inFlight = batch.length;
        try {
          rows = await this.log.append(batch);
        } catch (e) {
          this.inFlight = 0;
          this.appendFailures++;
          this.options.onAppendError?.(e, this.unappended.length);
          // Retried with backoff: the database returns, and the events keep their order.
          this.appendTimer = setTimeout(() => {
            this.appendTimer = null;
            this.startAppend();
          }, Math.min(100 * 2 ** Math.min(this.appendFailures, 6), 5000));
          this.appendTimer.unref();
          return;
        }
      } else {
        const now = Date.now();
        rows = batch.map((e) => ({ ...e, id: ++this.localSeq, createdAt: now }));
      }
      this.inFlight = 0;
      this.appendFailures = 0;
      this.unappended.splice(0, batch.length);
      this.offer(rows);
      if (this.remote && this.redisUp) {
        try {
          this.remote.publish(this.channel("log"), { origin: this.origin, log: this.logIdentity, data: rows as unknown } as Wire);
        } catch {
          // Others read it from the log.
        }
      }
    }
  }

  private localSeq = 0;
  /** Events of the append in flight (at the head of `unappended`). */
  private inFlight = 0;
  private lastAppendAt = 0;
  /** The identity of the log this instance appends to (other instances' messages must name the same). */
  private logIdentity: string = randomUUID();
  private foreignWarned = false;

  /** Waits until every event published so far is in the log and delivered here (tests, shutdown). */
  async flush(): Promise<void> {
    // A pending timer is either the progress pace (short: wait for it) or a retry while the database
    // is away (do not wait).
    while (this.appending || (this.unappended.length && (!this.appendTimer || this.appendFailures === 0))) {
      await (this.appending ?? new Promise((r) => setTimeout(r, 5)));
    }
  }

  // ---- delivery in id order -------------------------------------------------------------------------

  private offer(events: readonly LogEvent[]): void {
    for (const e of events) if (e.id > this.delivered) this.ahead.set(e.id, e);
    this.drain();
  }

  private drain(): void {
    if (!this.started) return;
    this.deliverConsecutive();
    // An id was skipped (its event is on its way, or Redis lost it): the log has it.
    if (this.ahead.size) this.fill();
  }

  /** Delivers the events held ahead for as long as their ids follow the last delivered one. */
  private deliverConsecutive(): void {
    for (;;) {
      const next = this.ahead.get(this.delivered + 1);
      if (!next) return;
      this.ahead.delete(next.id);
      this.delivered = next.id;
      this.deliver(next);
    }
  }

  private deliver(e: LogEvent): void {
    const all = this.feeds.get(e.topic);
    const one = e.jobName === null ? undefined : this.feeds.get(`${e.topic}\0${e.jobName}`);
    if (!all?.size && !one?.size) return;
    const item: FeedItem = { id: e.id, topic: e.topic as LoggedTopic, data: parsed(e) };
    if (all) for (const f of all) f.push(item);
    if (one) for (const f of one) f.push(item);
  }

  /** Reads the log past what was delivered (one read at a time). */
  private fill(): void {
    if (!this.log || this.closed) return;
    if (this.filling) {
      this.fillAgain = true;
      return;
    }
    this.filling = (async () => {
      try {
        for (;;) {
          this.fillAgain = false;
          // An event that arrived before this read began is committed, so the read must see it.
          const arrived = this.ahead.size ? Math.min(...this.ahead.keys()) : null;
          const rows = await this.log!.read({ after: this.delivered, limit: 1000 });
          for (const e of rows) if (e.id > this.delivered) this.ahead.set(e.id, e);
          // Ids commit in order: every id below one the read returned was committed, so ids between
          // `delivered` and the first row are gone from the log (pruned while this instance was
          // behind). Likewise when the read returned nothing although an event had arrived before it.
          const first = rows.length ? rows[0].id : arrived;
          if (first !== null && first > this.delivered + 1 && (rows.length || arrived !== null)) this.delivered = first - 1;
          const before = this.delivered;
          this.deliverConsecutive();
          if (rows.length < 1000 && !this.fillAgain) break;
          if (this.delivered === before && !this.fillAgain) break;
        }
      } catch {
        // The database is away: the next poll tries again.
      } finally {
        this.filling = null;
      }
    })();
  }

  private schedulePoll(): void {
    if (this.closed) return;
    this.pollTimer = setTimeout(() => {
      this.fill();
      this.schedulePoll();
    }, this.pollMs);
    this.pollTimer.unref();
  }

  private pruneTimer: NodeJS.Timeout | null = null;

  /** Prunes the log past the retention; every instance does, each about once a minute (deletes are idempotent). */
  private schedulePrune(delay: number): void {
    if (this.closed) return;
    const retention = this.options.retention!;
    this.pruneTimer = setTimeout(() => {
      void this.log!.prune(retention).catch(() => 0).finally(() => {
        this.schedulePrune(Math.min(60_000, Math.max(1000, Math.floor(retention.maxAgeMs / 10))));
      });
    }, delay);
    this.pruneTimer.unref();
  }

  async close(): Promise<void> {
    // What was published is appended first (bounded: a database that is away fails fast).
    await this.flush().catch(() => undefined);
    this.closed = true;
    if (this.pollTimer) clearTimeout(this.pollTimer);
    if (this.appendTimer) clearTimeout(this.appendTimer);
    if (this.pruneTimer) clearTimeout(this.pruneTimer);
    await this.filling;
    for (const set of [...this.feeds.values()]) for (const f of [...set]) await f.return();
    await this.remoteFeed?.return?.();
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

/** A log row's event, parsed once (every subscriber shares it; resolvers only read payloads). */
function parsed(e: LogEvent): Topics[LoggedTopic] {
  return revive(JSON.parse(e.payload));
}

/** Cursors are opaque to clients; today a log id in decimal. */
export function encodeCursor(id: number): string {
  return String(id);
}

/** The log id of a cursor; BAD_USER_INPUT when it is not one. */
export function decodeCursor(cursor: string, field = "after"): number {
  if (!/^\d{1,15}$/.test(cursor)) throw new TrialgraphError("BAD_USER_INPUT", "after is not an eventId from this subscription", { field });
  return Number(cursor);
}

function cursorExpired(message: string): TrialgraphError {
  return new TrialgraphError("CURSOR_EXPIRED", `${message}; subscribe without after to start from the current state`, { field: "after" });
}
