/** Async-iterator helpers whose return() reaches the source at once (async generators would wait for the next value). */

/** Maps each value (sync or async); values mapped to undefined are dropped. */
export function filterMap<T, R>(source: AsyncIterator<T>, fn: (v: T) => R | undefined | Promise<R | undefined>): AsyncIterableIterator<R> {
  const it: AsyncIterableIterator<R> = {
    async next() {
      for (;;) {
        const r = await source.next();
        if (r.done) return { value: undefined, done: true };
        const mapped = await fn(r.value);
        if (mapped !== undefined) return { value: mapped, done: false };
      }
    },
    async return() {
      await source.return?.();
      return { value: undefined, done: true };
    },
    async throw(e) {
      await source.return?.();
      throw e;
    },
    [Symbol.asyncIterator]() {
      return it;
    },
  };
  return it;
}

/** Runs `onClose` once when the consumer stops (return/throw), e.g. to release a watcher share. */
export function onClose<T>(source: AsyncIterableIterator<T>, onCloseFn: () => void): AsyncIterableIterator<T> {
  let closed = false;
  const close = () => {
    if (!closed) {
      closed = true;
      onCloseFn();
    }
  };
  const it: AsyncIterableIterator<T> = {
    async next() {
      const r = await source.next();
      if (r.done) close();
      return r;
    },
    async return() {
      close();
      await source.return?.();
      return { value: undefined, done: true };
    },
    async throw(e) {
      close();
      await source.return?.();
      throw e;
    },
    [Symbol.asyncIterator]() {
      return it;
    },
  };
  return it;
}

/** Interleaves several iterators; `return()` ends every source, so a leaving client frees all its listeners. */
export function mergeIterators<T>(sources: AsyncIterator<T>[]): AsyncIterableIterator<T> {
  const queue: T[] = [];
  let waiting: ((r: IteratorResult<T>) => void) | null = null;
  let done = false;
  const pump = async (src: AsyncIterator<T>) => {
    try {
      for (;;) {
        const r = await src.next();
        if (r.done || done) return;
        if (waiting) {
          const w = waiting;
          waiting = null;
          w({ value: r.value, done: false });
        } else queue.push(r.value);
      }
    } catch {
      // A failing source (Redis gone) just stops contributing.
    }
  };
  for (const s of sources) void pump(s);
  const it: AsyncIterableIterator<T> = {
    next() {
      if (queue.length) return Promise.resolve({ value: queue.shift()!, done: false });
      if (done) return Promise.resolve({ value: undefined, done: true });
      return new Promise((resolve) => (waiting = resolve));
    },
    async return() {
      done = true;
      await Promise.all(sources.map((s) => s.return?.()));
      if (waiting) waiting({ value: undefined, done: true });
      waiting = null;
      return { value: undefined, done: true };
    },
    async throw(e) {
      await it.return!();
      throw e;
    },
    [Symbol.asyncIterator]() {
      return it;
    },
  };
  return it;
}
