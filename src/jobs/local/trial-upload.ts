/**
 * Puts a local job's trial on S3 as the SageMaker container's hook does (`<path>/<job>/debug-output`),
 * so every instance can read it. The hook writes each step into the job's folder; once a step is
 * complete its event file is uploaded, then its index file (readers find steps through the index, so
 * a visible index always has its event file), then the collections file and, last, the end marker.
 *
 * Uploads run one after another, in the order steps were saved; the first failure is kept and every
 * later upload refused, so the job can fail with the reason.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import { collectionsFileKey, DEFAULT_WORKER, END_OF_TRAINING, eventFileKey, indexFileKey } from "../../format/locations.js";

/** PutObject of `body` at an s3:// URI. */
export type PutS3Object = (uri: string, body: Buffer) => Promise<void>;

export class TrialUploader {
  private chain: Promise<void> = Promise.resolve();
  private collectionsSent = false;
  /** The first upload failure (later uploads are not attempted). */
  failure: Error | null = null;

  constructor(
    private readonly localDir: string,
    /** s3://bucket/prefix of the trial (no trailing slash). */
    readonly uri: string,
    private readonly put: PutS3Object,
    private readonly worker = DEFAULT_WORKER,
  ) {}

  private enqueue(task: () => Promise<void>): Promise<void> {
    const next = this.chain.then(async () => {
      if (this.failure) throw this.failure;
      try {
        await task();
      } catch (e) {
        this.failure ??= e instanceof Error ? e : new Error(String(e));
        throw this.failure;
      }
    });
    this.chain = next.catch(() => undefined);
    return next;
  }

  private async upload(key: string): Promise<boolean> {
    let body: Buffer;
    try {
      body = await fs.readFile(path.join(this.localDir, key));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return false;
      throw e;
    }
    await this.put(`${this.uri}/${key}`, body);
    return true;
  }

  /** Uploads one complete step (event file, then index file); resolves once it is readable on S3. */
  step(step: number): Promise<void> {
    return this.enqueue(async () => {
      await this.upload(eventFileKey(step, this.worker));
      await this.upload(indexFileKey(step, this.worker));
      // smdebug writes the collections file with the first saved step; readers want it early.
      if (!this.collectionsSent) this.collectionsSent = await this.upload(collectionsFileKey(this.worker));
    });
  }

  /** After training: the final collections file, then the end-of-training marker. */
  finish(): Promise<void> {
    return this.enqueue(async () => {
      await this.upload(collectionsFileKey(this.worker));
      await this.upload(END_OF_TRAINING);
    });
  }

  /** Resolves when every upload asked for so far has run (or failed). */
  settled(): Promise<void> {
    return this.chain;
  }
}
