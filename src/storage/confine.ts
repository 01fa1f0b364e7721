/**
 * Confinement of local files to a root folder (the data directory, the rules directory): every
 * file is checked after it is opened, on what was actually opened, so a link swapped in between
 * a check and the open cannot lead outside (no time-of-check/time-of-use gap):
 *   - opened with O_NONBLOCK, so a FIFO opens at once instead of waiting for a writer;
 *   - fstat: anything but a regular file (FIFO, socket, device, folder) is refused;
 *   - the real path of the open descriptor (/proc/self/fd on Linux, realpath elsewhere) must lie
 *     inside the root. Files seen before (same device, inode and birth time) skip this step.
 * Folders are resolved with realpath before they are listed.
 * Messages name files relative to the root the caller shows (a trial path), never absolute paths.
 */
import { closeSync, constants as C, fstatSync, lstatSync, openSync, promises as fs, readlinkSync, realpathSync, type Stats } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import path from "node:path";
import { TrialgraphError } from "../errors.js";

// libuv adds O_CLOEXEC itself.
const OPEN_FLAGS = C.O_RDONLY | (C.O_NONBLOCK ?? 0);
const PROC_FD = process.platform === "linux";

export function isInside(real: string, rootReal: string): boolean {
  return real === rootReal || real.startsWith(rootReal.endsWith(path.sep) ? rootReal : rootReal + path.sep);
}

/** realpath of a folder that may not exist yet (its own path then). */
export function realpathOrSelf(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return path.resolve(p);
  }
}

function kindOf(st: Stats): string {
  if (st.isFIFO()) return "a FIFO";
  if (st.isSocket()) return "a socket";
  if (st.isCharacterDevice() || st.isBlockDevice()) return "a device";
  if (st.isDirectory()) return "a folder";
  return "not a regular file";
}

export interface Confinement {
  /** Real path of the root everything must stay inside. */
  readonly rootReal: string;
  /** How messages name the root ("the data directory"). */
  readonly rootName: string;
  /** Files already checked, by device, inode and birth time. */
  readonly verified: Set<string>;
}

export function confinement(root: string, rootName = "the data directory"): Confinement {
  return { rootReal: realpathOrSelf(root), rootName, verified: new Set() };
}

const identity = (st: Stats) => `${st.dev}:${st.ino}:${st.birthtimeMs}`;

/** What the caller needs to word a refusal: the file as the user knows it. */
export interface FileLabel {
  /** Base folder of `key` on disk (a trial folder). */
  baseDir: string;
  /** The file relative to baseDir ("events/…/x.tfevents"). */
  key: string;
  /** How the user names baseDir ("trials/x", "rules folder"). */
  where: string;
}

/** Opens a file for reading, synchronously (small reads); null when it does not exist. */
export function openConfinedSync(full: string, c: Confinement, label: FileLabel): { fd: number; size: number } | null {
  let fd: number;
  try {
    fd = openSync(full, OPEN_FLAGS);
  } catch (e: any) {
    if (MISSING.has(e.code)) return null;
    throw openError(e, label);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw special(label, kindOf(st));
    const id = identity(st);
    if (!c.verified.has(id)) {
      const real = PROC_FD ? readlinkSync(`/proc/self/fd/${fd}`) : realpathSync(full);
      if (!isInside(real, c.rootReal)) throw outside(label, c);
      c.verified.add(id);
    }
    return { fd, size: st.size };
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/** Opens a file for reading; null when it does not exist. */
export async function openConfined(full: string, c: Confinement, label: FileLabel): Promise<{ handle: FileHandle; size: number } | null> {
  let handle: FileHandle;
  try {
    handle = await fs.open(full, OPEN_FLAGS);
  } catch (e: any) {
    if (MISSING.has(e.code)) return null;
    throw openError(e, label);
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw special(label, kindOf(st));
    const id = identity(st);
    if (!c.verified.has(id)) {
      const real = PROC_FD ? await fs.readlink(`/proc/self/fd/${handle.fd}`) : await fs.realpath(full);
      if (!isInside(real, c.rootReal)) throw outside(label, c);
      c.verified.add(id);
    }
    return { handle, size: st.size };
  } catch (e) {
    await handle.close();
    throw e;
  }
}

/** The real path of a folder to list; null when it does not exist. */
export async function confinedDir(full: string, c: Confinement, label: FileLabel): Promise<string | null> {
  let real: string;
  try {
    real = await fs.realpath(full);
  } catch (e: any) {
    if (MISSING.has(e.code)) return null;
    throw openError(e, label);
  }
  if (!isInside(real, c.rootReal)) throw outside(label, c);
  return real;
}

/** What "nothing there" looks like to open and realpath. */
const MISSING = new Set(["ENOENT", "ENOTDIR", "ENAMETOOLONG"]);

/** Errors a path itself causes are the caller's; anything else (EIO, EMFILE) is unexpected and goes on as is. */
function openError(e: NodeJS.ErrnoException, label: FileLabel): Error {
  switch (e.code) {
    case "ENXIO": return special(label, "a socket"); // sockets cannot be opened
    case "ELOOP": return new TrialgraphError("FORBIDDEN_PATH", `${label.where}: ${label.key || "."} is a loop of symbolic links; refused`, { field: "path", file: label.key });
    case "EACCES": case "EPERM": return new TrialgraphError("ACCESS_DENIED", `${label.where}: ${label.key || "."} cannot be read (permission denied)`, { field: "path", file: label.key });
    default: return e;
  }
}

function special(label: FileLabel, kind: string): TrialgraphError {
  return new TrialgraphError("FORBIDDEN_PATH", `${label.where}: ${label.key || "."} is ${kind}, not a regular file; refused`, {
    field: "path", file: label.key,
  });
}

/**
 * The refusal names the link that leads out (the first component of the key that is a symbolic
 * link resolving outside the root), relative to what the user gave.
 */
function outside(label: FileLabel, c: Confinement): TrialgraphError {
  const parts = label.key.split("/").filter(Boolean);
  let link: string | null = null;
  for (let i = 1; i <= parts.length && !link; i++) {
    const rel = parts.slice(0, i).join("/");
    const full = path.join(label.baseDir, rel);
    try {
      const st = lstatSync(full);
      if (st.isSymbolicLink() && !isInside(realpathOrSelf(full), c.rootReal)) link = rel;
    } catch {
      break;
    }
  }
  const what = link
    ? `${link} is a symbolic link whose target is outside ${c.rootName}`
    : `${label.key || "."} resolves to a place outside ${c.rootName}`;
  return new TrialgraphError("FORBIDDEN_PATH", `${label.where}: ${what}; refused`, { field: "path", file: link ?? label.key });
}
