/** A trial directory on local disk as a ByteSource. */
import { closeSync, openSync, promises as fs, readSync } from "node:fs";
import path from "node:path";
import type { ByteRange, ByteSource } from "./byte-source.js";
import { coalesceRanges, sliceMembers, type CoalescedRange } from "./ranges.js";

/** Ranges closer than this are read as one span: a disk read of 64 KiB costs about what a seek does. */
const MAX_GAP = 64 * 1024;
/** Reads up to this size are done synchronously (see readRanges). */
const SYNC_READ_MAX = 1024 * 1024;

export class LocalSource implements ByteSource {
  readonly location: string;
  readonly rootDir: string;

  constructor(rootDir: string) {
    this.rootDir = path.resolve(rootDir);
    this.location = this.rootDir;
  }

  private resolve(key: string): string {
    const full = path.resolve(this.rootDir, key);
    if (full !== this.rootDir && !full.startsWith(this.rootDir + path.sep)) {
      throw new Error(`key ${key} escapes the trial directory`);
    }
    return full;
  }

  async list(prefix: string, startAfter?: string): Promise<string[]> {
    const keys: string[] = [];
    // A prefix names a folder ("index/") or a file name start ("training_job_end.ts").
    const slash = prefix.lastIndexOf("/");
    const dirKey = prefix.slice(0, slash + 1);
    await this.walk(dirKey, keys);
    const filtered = keys.filter((k) => k.startsWith(prefix) && (startAfter === undefined || k > startAfter));
    return filtered.sort();
  }

  private async walk(dirKey: string, into: string[]): Promise<void> {
    let entries: import("node:fs").Dirent[];
    try {
      entries = await fs.readdir(this.resolve(dirKey || "."), { withFileTypes: true });
    } catch (e: any) {
      if (e.code === "ENOENT" || e.code === "ENOTDIR") return;
      throw e;
    }
    for (const e of entries) {
      const key = dirKey + e.name;
      if (e.isDirectory()) await this.walk(key + "/", into);
      else if (e.isFile()) into.push(key);
    }
  }

  async read(key: string): Promise<Buffer | null> {
    try {
      return await fs.readFile(this.resolve(key));
    } catch (e: any) {
      if (e.code === "ENOENT" || e.code === "EISDIR") return null;
      throw e;
    }
  }

  async readRanges(key: string, ranges: ByteRange[]): Promise<Buffer[] | null> {
    const groups = coalesceRanges(ranges, MAX_GAP);
    const total = groups.reduce((a, g) => a + g.length, 0);
    // Small reads come from the page cache in microseconds: reading them synchronously skips
    // three thread-pool round trips (open, read, close) that cost more than the read itself.
    if (total <= SYNC_READ_MAX) return this.readRangesSync(key, ranges, groups);
    let handle: import("node:fs/promises").FileHandle;
    try {
      handle = await fs.open(this.resolve(key), "r");
    } catch (e: any) {
      if (e.code === "ENOENT") return null;
      throw e;
    }
    try {
      const reads = await Promise.all(
        groups.map(async (g) => {
          const buf = Buffer.allocUnsafe(g.length);
          const { bytesRead } = await handle.read(buf, 0, g.length, g.start);
          return buf.subarray(0, bytesRead);
        }),
      );
      const out: Buffer[] = new Array(ranges.length);
      sliceMembers(ranges, groups, reads, out);
      return out;
    } finally {
      await handle.close();
    }
  }

  private readRangesSync(key: string, ranges: ByteRange[], groups: CoalescedRange[]): Buffer[] | null {
    let fd: number;
    try {
      fd = openSync(this.resolve(key), "r");
    } catch (e: any) {
      if (e.code === "ENOENT") return null;
      throw e;
    }
    try {
      const reads = groups.map((g) => {
        const buf = Buffer.allocUnsafe(g.length);
        return buf.subarray(0, readSync(fd, buf, 0, g.length, g.start));
      });
      const out: Buffer[] = new Array(ranges.length);
      sliceMembers(ranges, groups, reads, out);
      return out;
    } finally {
      closeSync(fd);
    }
  }

  async exists(key: string): Promise<boolean> {
    try {
      await fs.access(this.resolve(key));
      return true;
    } catch {
      return false;
    }
  }
}
