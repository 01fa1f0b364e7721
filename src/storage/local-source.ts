/**
 * A trial directory on local disk as a ByteSource. Every file and folder is confined (see
 * confine.ts): links that lead out of the confinement root (the data directory) and special files
 * (FIFOs, sockets, devices) are refused with FORBIDDEN_PATH, and reads never go past the end of a
 * file, whatever an index says.
 */
import { closeSync, promises as fs, read as fsRead, readSync } from "node:fs";
import { promisify } from "node:util";
import path from "node:path";
import { TrialgraphError } from "../errors.js";
import type { ByteRange, ByteSource, ReadOptions } from "./byte-source.js";
import { confinedDir, confinement, isInside, openConfinedSync, type Confinement, type FileLabel } from "./confine.js";
import { checkReadSize, coalesceRanges, sliceMembers, type CoalescedRange } from "./ranges.js";

/** Ranges closer than this are read as one span: a disk read of 64 KiB costs about what a seek does. */
const MAX_GAP = 64 * 1024;
/** Reads up to this size are done synchronously (see readRanges). */
const SYNC_READ_MAX = 1024 * 1024;
/** Whole-file reads (index and collections files) larger than this are refused as corrupt. */
export const MAX_WHOLE_READ = 64 * 1024 * 1024;
/** fs.read takes at most int32 bytes at once: longer reads are done in chunks. */
const READ_CHUNK = 1 << 30;

export interface LocalSourceOptions {
  /** Folder every file must resolve inside (default: the source's own folder). */
  confineTo?: string | Confinement;
  /** How messages name this source ("trials/x"); default its absolute folder. */
  label?: string;
}

export class LocalSource implements ByteSource {
  readonly location: string;
  readonly rootDir: string;
  private readonly confine: Confinement;

  constructor(rootDir: string, opts: LocalSourceOptions = {}) {
    this.rootDir = path.resolve(rootDir);
    this.location = opts.label ?? this.rootDir;
    this.confine = typeof opts.confineTo === "object" ? opts.confineTo : confinement(opts.confineTo ?? this.rootDir);
  }

  private resolve(key: string): string {
    const full = path.resolve(this.rootDir, key);
    if (full !== this.rootDir && !full.startsWith(this.rootDir + path.sep)) {
      throw new TrialgraphError("FORBIDDEN_PATH", `${this.location}: key ${key} escapes the trial directory`, { field: "path" });
    }
    return full;
  }

  private label(key: string): FileLabel {
    return { baseDir: this.rootDir, key, where: this.location };
  }

  async list(prefix: string, startAfter?: string): Promise<string[]> {
    const keys: string[] = [];
    // A prefix names a folder ("index/") or a file name start ("training_job_end.ts").
    const slash = prefix.lastIndexOf("/");
    const dirKey = prefix.slice(0, slash + 1);
    await this.walk(dirKey, keys, prefix);
    const filtered = keys.filter((k) => k.startsWith(prefix) && (startAfter === undefined || k > startAfter));
    return filtered.sort();
  }

  /** Keys of files under dirKey; only folders that can hold keys starting with `prefix` are walked. */
  private async walk(dirKey: string, into: string[], prefix: string): Promise<void> {
    const real = await confinedDir(this.resolve(dirKey || "."), this.confine, this.label(dirKey.replace(/\/$/, "")));
    if (!real) return;
    let entries: import("node:fs").Dirent[];
    try {
      entries = await fs.readdir(real, { withFileTypes: true });
    } catch (e: any) {
      if (e.code === "ENOENT" || e.code === "ENOTDIR") return;
      throw e;
    }
    for (const e of entries) {
      const key = dirKey + e.name;
      let isDir = e.isDirectory();
      let isFile = e.isFile();
      if (e.isSymbolicLink()) {
        // Listed like what they point to; reading or walking them checks where that is.
        const st = await fs.stat(path.join(real, e.name)).catch(() => null);
        isDir = !!st?.isDirectory();
        isFile = !!st && !isDir;
      }
      // Listing "training_job_end.ts" at the root must not walk every step's folder of events/.
      if (isDir) {
        if (key.startsWith(prefix) || prefix.startsWith(key + "/")) await this.walk(key + "/", into, prefix);
      } else if (isFile) into.push(key);
    }
  }

  async read(key: string, opts: { scratch?: Buffer } = {}): Promise<Buffer | null> {
    const opened = openConfinedSync(this.resolve(key), this.confine, this.label(key));
    if (!opened) return null;
    const { fd, size } = opened;
    try {
      // Index and collections files are small and in the page cache: read synchronously, as small ranged
      // reads are (thread-pool round trips per file cost more than the read; a trial has thousands).
      if (size <= SYNC_READ_MAX) return readWholeSync(fd, size, opts.scratch);
      if (size > MAX_WHOLE_READ) {
        throw new TrialgraphError("CORRUPT_RECORD", `${this.location}: ${key} is ${size} bytes, more than an index or collections file can be (${MAX_WHOLE_READ})`, { file: key });
      }
      // Larger files are read off the event loop, from the descriptor already opened and checked.
      return await readFdClamped(fd, 0, size, size);
    } finally {
      closeSync(fd);
    }
  }

  async readRanges(key: string, ranges: ByteRange[], opts: ReadOptions = {}): Promise<Buffer[] | null> {
    const groups = coalesceRanges(ranges, MAX_GAP);
    const total = groups.reduce((a, g) => a + g.length, 0);
    const opened = openConfinedSync(this.resolve(key), this.confine, this.label(key));
    if (!opened) return null;
    const { fd, size } = opened;
    // Never past the end of the file: a range there reads short ("not written yet", or corrupt).
    const readable = (g: CoalescedRange) => Math.max(0, Math.min(g.length, size - g.start));
    try {
      checkReadSize(groups.reduce((a, g) => a + readable(g), 0), opts.maxBytes, `${this.location}/${key}`);
      // Small reads come from the page cache in microseconds: read synchronously, they skip
      // thread-pool round trips that cost more than the read itself. Larger ones go off the event loop.
      const reads = total <= SYNC_READ_MAX
        ? groups.map((g) => {
          const length = readable(g);
          const scratch = opts.scratch;
          const buf = groups.length === 1 && scratch && scratch.length >= length ? scratch.subarray(0, length) : Buffer.allocUnsafe(length);
          return length ? buf.subarray(0, readSync(fd, buf, 0, length, g.start)) : buf;
        })
        : await Promise.all(groups.map((g) => readFdClamped(fd, g.start, g.length, size)));
      const out: Buffer[] = new Array(ranges.length);
      sliceMembers(ranges, groups, reads, out);
      return out;
    } finally {
      closeSync(fd);
    }
  }

  async exists(key: string): Promise<boolean> {
    try {
      return isInside(await fs.realpath(this.resolve(key)), this.confine.rootReal);
    } catch {
      return false;
    }
  }
}

/** The whole file of `size` bytes (in `scratch` when it fits); short when it shrank meanwhile. */
function readWholeSync(fd: number, size: number, scratch?: Buffer): Buffer {
  const buf = scratch && scratch.length >= size ? scratch : Buffer.allocUnsafe(size);
  let got = 0;
  while (got < size) {
    const n = readSync(fd, buf, got, size - got, got);
    if (n === 0) break;
    got += n;
  }
  return got === buf.length ? buf : buf.subarray(0, got);
}

const readFd = promisify(fsRead);

/**
 * Reads [start, start+length) of an open file but never past `size`, in chunks fs.read accepts
 * (off the event loop); short at the end of the file.
 */
async function readFdClamped(fd: number, start: number, length: number, size: number): Promise<Buffer> {
  const want = Math.max(0, Math.min(length, size - start));
  const buf = Buffer.allocUnsafe(want);
  let got = 0;
  while (got < want) {
    const { bytesRead } = await readFd(fd, buf, got, Math.min(READ_CHUNK, want - got), start + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got === want ? buf : buf.subarray(0, got);
}
