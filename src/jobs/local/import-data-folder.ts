/**
 * Before the database, each local job was a record in its data folder (`<data>/jobs/<name>/job.json`,
 * version 1). On first start with a database those records are imported, once, in one transaction:
 * no job a user had disappears. A job the old service was still running when it stopped is FAILED
 * (local jobs cannot resume), as the old service would have recorded at its next start. The files
 * are left where they are.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import type { JobStore } from "../../store/index.js";
import type { RuleSummaryRecord, TrainingJobRecord } from "../types.js";
import { TERMINAL_JOB_STATUSES } from "../types.js";

export const RESTART_REASON = "The trialgraph service restarted while this job was running; local jobs cannot resume.";

interface StoredJobV1 {
  version: 1;
  record: Omit<TrainingJobRecord, "createdAt" | "startedAt" | "endedAt" | "ruleSummaries"> & {
    createdAt: string; startedAt: string | null; endedAt: string | null;
    ruleSummaries?: (Omit<RuleSummaryRecord, "lastModifiedTime" | "findings"> & { lastModifiedTime: string | null; findings?: RuleSummaryRecord["findings"] })[];
  };
}

const dateOrNull = (s: string | null | undefined) => (s ? new Date(s) : null);

function fromStored(s: StoredJobV1, now: Date): { record: TrainingJobRecord; rules: RuleSummaryRecord[] } | null {
  const r = s?.record;
  if (s?.version !== 1 || !r || typeof r.name !== "string" || typeof r.createdAt !== "string") return null;
  const record: TrainingJobRecord = {
    name: r.name,
    arn: r.arn ?? null,
    backend: "LOCAL",
    status: r.status,
    secondaryStatus: r.secondaryStatus ?? null,
    failureReason: r.failureReason ?? null,
    createdAt: new Date(r.createdAt),
    startedAt: dateOrNull(r.startedAt),
    endedAt: dateOrNull(r.endedAt),
    hyperparameters: r.hyperparameters ?? {},
    debugOutputPath: r.debugOutputPath ?? null,
    ruleSummaries: [],
    progress: r.progress ?? null,
  };
  // Records written before findings existed have none.
  const rules: RuleSummaryRecord[] = (r.ruleSummaries ?? []).map((x) => ({ ...x, lastModifiedTime: dateOrNull(x.lastModifiedTime), evaluator: "SERVICE", findings: x.findings ?? [] }));
  if (!TERMINAL_JOB_STATUSES.has(record.status)) {
    record.status = "FAILED";
    record.secondaryStatus = "Failed";
    record.failureReason = RESTART_REASON;
    record.endedAt = now;
    for (const rule of rules) {
      if (rule.status === "IN_PROGRESS" || rule.status === "STOPPING") {
        rule.status = "STOPPED";
        rule.lastModifiedTime = now;
      }
    }
  }
  return { record, rules };
}

/**
 * Imports `<dataDir>/jobs/<name>/job.json` records once per data folder; returns how many jobs were
 * added (null when this folder was imported before). Unreadable records are skipped, as the old
 * service skipped them.
 */
export async function importDataFolderJobs(store: JobStore, dataDir: string, now = new Date()): Promise<number | null> {
  const marker = `import:data-folder-jobs:${path.resolve(dataDir)}`;
  if (await store.imported(marker)) return null;
  const jobsDir = path.join(path.resolve(dataDir), "jobs");
  let names: string[];
  try {
    names = await fs.readdir(jobsDir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    names = [];
  }
  const jobs: { record: TrainingJobRecord; rules: RuleSummaryRecord[] }[] = [];
  for (const name of names.sort()) {
    let parsed: StoredJobV1;
    try {
      parsed = JSON.parse(await fs.readFile(path.join(jobsDir, name, "job.json"), "utf8"));
    } catch {
      continue; // not a job folder, or a record that was never completely written
    }
    const job = fromStored(parsed, now);
    if (job && job.record.name === name) jobs.push(job);
  }
  return store.importOnce(marker, jobs);
}
