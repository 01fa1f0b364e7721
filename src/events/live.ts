/**
 * Opening a subscription to logged events: where it starts, and what it leaves out.
 *
 * - `after: <eventId>`: every matching event after that cursor, read from the log, then live ones;
 *   the feed is registered before the log is read and releases only ids above what the read
 *   covered, so nothing falls between the two and nothing comes twice.
 * - no cursor, with a snapshot (by-name subscriptions): the current state first (previousStatus
 *   null), tagged with the log position read just before it, then live events after that position.
 * - neither: live events from now on.
 *
 * `dedupe` keys each item by the thing it is about and drops one that says nothing new about it
 * (a live event racing the snapshot that already shows its outcome).
 */
import { filterMap } from "./iterators.js";
import { decodeCursor, type EventBus, type FeedFilter, type FeedItem, type LoggedTopic, type Topics } from "./event-bus.js";

const REPLAY_PAGE = 500;

export interface LiveOptions<T> {
  filter: FeedFilter;
  /** The client's cursor (eventId of the last event it has). */
  after?: string | null;
  /** The current state, as events with previousStatus null (used when there is no cursor). */
  snapshot?: () => Promise<{ topic: LoggedTopic; data: Topics[LoggedTopic] }[]>;
  /** Turns an item into what the subscription yields; undefined drops it (a filter). */
  map: (item: FeedItem) => T | undefined;
}

export async function openLive<T>(bus: EventBus, options: LiveOptions<T>): Promise<AsyncIterableIterator<T>> {
  const after = options.after != null ? decodeCursor(options.after) : null;
  if (after !== null) await bus.checkCursor(after);
  const feed = bus.watch(options.filter);
  try {
    if (after !== null) {
      let from = after;
      for (let page = 0; ; page++) {
        const items = await bus.replay(from, options.filter, REPLAY_PAGE);
        // Pruning may have passed the cursor between the check and the first read.
        if (page === 0) await bus.checkCursor(after);
        for (const item of items) feed.emit(item);
        if (items.length) from = items[items.length - 1].id;
        if (items.length < REPLAY_PAGE) break;
      }
      // Every matching event committed before the last read is in the replay (ids commit in order),
      // so held events above the last one replayed are exactly those it did not cover.
      feed.release(from);
    } else if (options.snapshot) {
      const position = await bus.lastId();
      const state = await options.snapshot();
      for (const s of state) feed.emit({ id: position, topic: s.topic, data: s.data, snapshot: true });
      feed.release(position);
    } else {
      feed.release(0);
    }
  } catch (e) {
    await feed.return();
    throw e;
  }
  return filterMap(feed, options.map);
}

/**
 * Keeps, per key, the last state a subscription yielded, and says whether a new one is news.
 * `newer(previous, next)` decides; the first state of a key always is.
 */
export class LastSeen<S> {
  private readonly seen = new Map<string, S>();
  constructor(private readonly newer: (previous: S, next: S) => boolean) {}

  accept(key: string, state: S): boolean {
    const previous = this.seen.get(key);
    if (previous !== undefined && !this.newer(previous, state)) return false;
    this.seen.set(key, state);
    return true;
  }
}
