/** A trial under an S3 prefix as a ByteSource: listings with StartAfter, ranged GETs merged per object. */
import type { Readable } from "node:stream";
import type { S3Client } from "@aws-sdk/client-s3";
import type { ByteRange, ByteSource, ReadOptions } from "./byte-source.js";
import type { ConcurrencyLimiter } from "./concurrency.js";
import { createObjectCache, type SizeBoundedLru } from "./lru.js";
import { checkReadSize, readCoalesced, validateRange } from "./ranges.js";
import { classifyS3Error, clientLimiter, formatS3Uri, parseS3Uri, s3Sdk, toTrialgraphError, type S3Location } from "./s3-client.js";

/**
 * Ranges of one object closer than this are fetched in one GET. S3's time to first byte (~20-50 ms) buys
 * about 1-4 MiB of transfer on one connection, and each request is billed, so reading a gap this size is
 * cheaper than a second request. Event files of one step are far smaller, so a GraphQL request's ranges of
 * one event file become a single GET.
 */
export const DEFAULT_S3_MAX_GAP = 4 * 1024 * 1024;

/** Index and collections files never change once visible (S3 writes are atomic), so whole reads are cached. */
export const DEFAULT_IMMUTABLE_KEY = (key: string): boolean =>
  (key.startsWith("index/") || key.startsWith("collections/")) && !key.endsWith(".tmp");

export interface S3SourceOptions {
  client: S3Client;
  bucket: string;
  /** Key prefix of the trial ("job/debug-output/"); a trailing slash is added when missing. */
  prefix: string;
  /** ListObjectsV2 MaxKeys (S3 caps it at 1000); small values force pagination in tests. */
  pageSize?: number;
  /** Merge ranges of one object whose gap is at most this many bytes. */
  maxGap?: number;
  /** In-flight operations; default: the limiter shared by everything on this client. */
  limiter?: ConcurrencyLimiter;
  /** Cache for whole reads of immutable keys, keyed by bucket/key; share one across sources. */
  objectCache?: SizeBoundedLru<string, Buffer>;
  /** Budget of the per-source cache made when `objectCache` is not given (0 disables it). */
  objectCacheBytes?: number;
  /** Which keys (relative to the prefix) are safe to cache once read. */
  isImmutable?: (key: string) => boolean;
}

export class S3Source implements ByteSource {
  readonly location: string;
  readonly bucket: string;
  readonly prefix: string;
  private readonly client: S3Client;
  private readonly pageSize: number;
  private readonly maxGap: number;
  private readonly limiter: ConcurrencyLimiter;
  private readonly cache: SizeBoundedLru<string, Buffer> | null;
  private readonly isImmutable: (key: string) => boolean;
  /** Concurrent whole reads of the same cacheable key share one GET. */
  private readonly pendingReads = new Map<string, Promise<Buffer | null>>();

  constructor(opts: S3SourceOptions) {
    this.client = opts.client;
    const loc = parseS3Uri(`s3://${opts.bucket}/${opts.prefix}`);
    this.bucket = loc.bucket;
    this.prefix = loc.prefix;
    this.location = formatS3Uri(loc);
    this.pageSize = Math.min(1000, Math.max(1, opts.pageSize ?? 1000));
    this.maxGap = opts.maxGap ?? DEFAULT_S3_MAX_GAP;
    this.limiter = opts.limiter ?? clientLimiter(opts.client);
    const cacheBytes = opts.objectCacheBytes ?? 16 * 1024 * 1024;
    this.cache = opts.objectCache ?? (cacheBytes > 0 ? createObjectCache(cacheBytes) : null);
    this.isImmutable = opts.isImmutable ?? DEFAULT_IMMUTABLE_KEY;
  }

  /** A source for `s3://bucket/prefix`. */
  static fromUri(client: S3Client, uri: string, opts: Omit<S3SourceOptions, "client" | "bucket" | "prefix"> = {}): S3Source {
    const loc: S3Location = parseS3Uri(uri);
    return new S3Source({ ...opts, client, bucket: loc.bucket, prefix: loc.prefix });
  }

  private where(key?: string): string {
    return key === undefined ? this.location : `s3://${this.bucket}/${this.prefix}${key}`;
  }

  async list(prefix: string, startAfter?: string): Promise<string[]> {
    const keys: string[] = [];
    let continuationToken: string | undefined;
    do {
      let page;
      try {
        page = await this.limiter.run(() =>
          this.client.send(
            new (s3Sdk().ListObjectsV2Command)({
              Bucket: this.bucket,
              Prefix: this.prefix + prefix,
              // S3 ignores StartAfter once a continuation token is given.
              StartAfter: continuationToken === undefined && startAfter !== undefined ? this.prefix + startAfter : undefined,
              ContinuationToken: continuationToken,
              MaxKeys: this.pageSize,
            }),
          ),
        );
      } catch (err) {
        if (classifyS3Error(err) === "missing-bucket") return [];
        throw toTrialgraphError(err, "ListObjectsV2", this.where(prefix));
      }
      for (const obj of page.Contents ?? []) {
        if (obj.Key !== undefined && obj.Key.startsWith(this.prefix)) keys.push(obj.Key.slice(this.prefix.length));
      }
      continuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (continuationToken !== undefined);
    return keys;
  }

  async read(key: string): Promise<Buffer | null> {
    if (!this.cache || !this.isImmutable(key)) return this.getObject(key);
    const cacheKey = `${this.bucket}/${this.prefix}${key}`;
    const cached = this.cache.get(cacheKey);
    if (cached) return cached;
    let pending = this.pendingReads.get(cacheKey);
    if (!pending) {
      pending = this.getObject(key).then((data) => {
        // Absence is not cached: the object may appear at the next refresh.
        if (data) this.cache!.set(cacheKey, data);
        return data;
      });
      pending.finally(() => this.pendingReads.delete(cacheKey)).catch(() => {});
      this.pendingReads.set(cacheKey, pending);
    }
    return pending;
  }

  async readRanges(key: string, ranges: ByteRange[], opts: ReadOptions = {}): Promise<Buffer[] | null> {
    ranges.forEach(validateRange);
    checkReadSize(ranges.reduce((a, r) => a + r.length, 0), opts.maxBytes, this.where(key));
    if (ranges.every((r) => r.length === 0)) {
      // Nothing to fetch, but the caller still learns whether the object exists.
      return (await this.exists(key)) ? ranges.map(() => Buffer.alloc(0)) : null;
    }
    if (ranges.length === 1) {
      // The reader's usual call (one span of an event file): its body may go into the caller's scratch.
      const bytes = await this.getObject(key, ranges[0], opts.scratch);
      return bytes && [bytes];
    }
    return readCoalesced(ranges, this.maxGap, (start, length) => this.getObject(key, { start, length }));
  }

  async exists(key: string): Promise<boolean> {
    try {
      await this.limiter.run(() => this.client.send(new (s3Sdk().HeadObjectCommand)({ Bucket: this.bucket, Key: this.prefix + key })));
      return true;
    } catch (err) {
      const kind = classifyS3Error(err);
      if (kind === "missing-object" || kind === "missing-bucket") return false;
      throw toTrialgraphError(err, "HeadObject", this.where(key));
    }
  }

  /**
   * One GET (whole object, or one byte range). Returns the bytes from `range.start` (fewer when the object is
   * shorter; empty when it starts past the end), or null when the object or bucket does not exist. Every
   * response body is read to the end or destroyed, so no socket stays checked out. A body that fits
   * `scratch` (by its Content-Length) is read into it, and the result is a view of it.
   */
  private async getObject(key: string, range?: ByteRange, scratch?: Buffer): Promise<Buffer | null> {
    const fullKey = this.prefix + key;
    // A body that breaks mid-stream (connection reset) is not retried by the SDK, which has already returned.
    const bodyAttempts = 2;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.limiter.run(async () => {
          const res = await this.client.send(
            new (s3Sdk().GetObjectCommand)({
              Bucket: this.bucket,
              Key: fullKey,
              Range: range ? `bytes=${range.start}-${range.start + range.length - 1}` : undefined,
            }),
          );
          const body = res.Body as Readable | undefined;
          if (!body) return Buffer.alloc(0);
          let bytes: Buffer;
          try {
            const length = res.ContentLength;
            bytes = await readBody(body, scratch && length !== undefined && length <= scratch.length ? scratch : undefined);
          } catch (err) {
            body.destroy?.();
            throw Object.assign(err as Error, { bodyError: true });
          }
          if (!range) return bytes;
          // A 206 says where its bytes start; a 200 means the server ignored Range and sent the whole object.
          const bodyStart = res.ContentRange ? parseContentRangeStart(res.ContentRange) : 0;
          const from = range.start - bodyStart;
          if (from < 0) throw Object.assign(new Error(`unexpected Content-Range ${res.ContentRange} for ${range.start}`), { name: "BadContentRange" });
          return bytes.subarray(Math.min(from, bytes.length), Math.min(from + range.length, bytes.length));
        });
      } catch (err) {
        const kind = classifyS3Error(err);
        if (kind === "missing-object" || kind === "missing-bucket") return null;
        // Starting past the end: the record is not written yet, which the reader sees as an empty read.
        if (kind === "invalid-range" && range) return Buffer.alloc(0);
        if ((err as { bodyError?: boolean }).bodyError && attempt < bodyAttempts) continue;
        throw toTrialgraphError(err, "GetObject", this.where(key));
      }
    }
  }
}

/**
 * A response body as one buffer, copied once (the SDK's transformToByteArray pipes into a collector
 * and copies into a zero-filled array). With `into` (as large as the body's Content-Length), chunks are
 * copied there as they come and the result is a view of it: a ranged read of an event file then
 * allocates nothing per GET. Otherwise a chunk that is a whole buffer of its own is kept as it is, and
 * slices of the socket's read buffer are copied, so a cached body holds only its own bytes.
 */
function readBody(body: Readable, into?: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let chunks: Buffer[] | null = into ? null : [];
    let length = 0;
    body.on("data", (data: Uint8Array) => {
      const chunk = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      if (!chunks && length + chunk.length > into!.length) {
        // More than the Content-Length said (the HTTP parser frames bodies by it, so not expected): collect instead.
        chunks = [Buffer.from(into!.subarray(0, length))];
      }
      if (chunks) chunks.push(chunk);
      else chunk.copy(into!, length);
      length += chunk.length;
    });
    body.once("end", () => {
      if (!chunks) return resolve(into!.subarray(0, length));
      const only = chunks.length === 1 ? chunks[0] : null;
      resolve(only && only.byteOffset === 0 && only.byteLength === only.buffer.byteLength ? only : Buffer.concat(chunks, length));
    });
    body.once("error", reject);
  });
}

function parseContentRangeStart(contentRange: string): number {
  const m = /^bytes (\d+)-\d+\/(?:\d+|\*)$/.exec(contentRange.trim());
  if (!m) throw Object.assign(new Error(`unparsable Content-Range "${contentRange}"`), { name: "BadContentRange" });
  return Number(m[1]);
}
