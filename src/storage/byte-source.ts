/**
 * Where a trial's bytes live. Keys are '/'-separated and relative to the source's root
 * (a trial directory on disk, or an S3 prefix).
 */
export interface ByteRange {
  start: number;
  /** Length in bytes. */
  length: number;
}

export interface ReadOptions {
  /**
   * Refuse (LIMIT_EXCEEDED) a read that would hold more than this many bytes, before allocating:
   * ranges come from index files, which may claim anything.
   */
  maxBytes?: number;
  /**
   * A buffer the source may read a single range into when it fits, returning a view of it: valid
   * only until the caller reuses scratch (who decodes the bytes at once and keeps none of them).
   */
  scratch?: Buffer;
}

export interface ByteSource {
  /** Human-readable location, for error messages ("/data/trials/x", "s3://b/p"). */
  readonly location: string;
  /**
   * Keys under `prefix` (recursive), sorted lexicographically, strictly after `startAfter` when given.
   * Partially written objects (e.g. `*.tmp`) are the caller's to filter.
   */
  list(prefix: string, startAfter?: string): Promise<string[]>;
  /**
   * A whole object, or null when it does not exist. With `scratch`, a source may read into it when the
   * object fits and return a view of it: valid only until the caller reuses scratch (index files are
   * read by the thousand, and a fresh buffer for each costs page faults and garbage collection).
   */
  read(key: string, opts?: { scratch?: Buffer }): Promise<Buffer | null>;
  /**
   * Several ranges of one object, read as few requests as possible (close ranges are merged).
   * Returns one buffer per range, in order. Returns null when the object does not exist.
   * A range past the end of the object yields a buffer shorter than asked (not yet written).
   */
  readRanges(key: string, ranges: ByteRange[], opts?: ReadOptions): Promise<Buffer[] | null>;
  /** Whether the object exists. */
  exists(key: string): Promise<boolean>;
}
