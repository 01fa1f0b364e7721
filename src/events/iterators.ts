/** Async-iterator helpers whose return() reaches the source at once (async generators would wait for the next value). */

export function filterMap<T, R>(source: AsyncIterator<T>, fn: (v: T) => R | undefined): AsyncIterableIterator<R> {
  const it: AsyncIterableIterator<R> = {
    async next() {
      for (;;) {
        const r = await source.next();
        if (r.done) return { value: undefined, done: true };
        const mapped = fn(r.value);
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
