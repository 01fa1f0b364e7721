/** smdebug's trial layout (spec §1): where each file of a step lives, and what a file name says. */

export const INDEX_PREFIX = "index/";
export const EVENTS_PREFIX = "events/";
export const COLLECTIONS_PREFIX = "collections/000000000/";
export const END_OF_TRAINING = "training_job_end.ts";
export const DEFAULT_WORKER = "worker_0";

const pad = (n: number, width: number) => String(n).padStart(width, "0");

export function eventFileKey(step: number, worker: string): string {
  return `events/${pad(step, 12)}/${pad(step, 12)}_${worker}.tfevents`;
}

export function indexFileKey(step: number, worker: string): string {
  return `index/${pad(Math.floor(step / 1000), 9)}/${pad(step, 12)}_${worker}.json`;
}

export function collectionsFileKey(worker: string): string {
  return `${COLLECTIONS_PREFIX}${worker}_collections.json`;
}

const INDEX_FILE = /(?:^|\/)(\d+)_(.+)\.(json|csv)$/;
const COLLECTIONS_FILE = /(?:^|\/)([^/]+)_collections\.(json|ts)$/;

/** TF MirroredStrategy device names are stored with '/'→'_' and ':'→'-' ("_replica-0_task-0_device-GPU-0"). */
export function deserializeWorker(raw: string): string {
  if (!raw.startsWith("_")) return raw;
  return raw.replace(/_/g, "/").replace(/-/g, ":");
}

/** Step and worker of an index file key, or null when the key is not an index file. */
export function parseIndexKey(key: string): { step: number; worker: string } | null {
  const base = key.slice(key.lastIndexOf("/") + 1);
  if (base.endsWith(".tmp")) return null;
  const m = INDEX_FILE.exec(base);
  if (!m || !m[3].startsWith("json")) return null;
  const rawWorker = m[2];
  return { step: Number(m[1]), worker: rawWorker.includes("__") || rawWorker.startsWith("_") ? deserializeWorker(rawWorker) : rawWorker };
}

/** Worker of a collections file key, or null when the key is not one. */
export function parseCollectionsKey(key: string): string | null {
  const m = COLLECTIONS_FILE.exec(key);
  return m ? deserializeWorker(m[1]) : null;
}
