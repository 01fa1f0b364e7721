/**
 * The LOCAL training backend: XGBoost jobs trained on this machine (libxgboost in a worker thread),
 * with SageMaker's statuses, a debugger hook writing the job's smdebug trial, and job records
 * persisted under <dataDir>/jobs/<name>/job.json (atomic writes) so they survive restarts.
 */
import { randomUUID } from "node:crypto";
import { promises as fs } from "node:fs";
import path from "node:path";
import { Worker } from "node:worker_threads";
import { badInput, TrialgraphError } from "../../errors.js";
import type {
  JobPage, ListJobsQuery, RuleSummaryRecord, StartTrainingJobSpec, TrainingJobBackend, TrainingJobRecord,
  TrainingJobStatus,
} from "../types.js";
import { TERMINAL_JOB_STATUSES } from "../types.js";
import { isValidJobName, nameFromBase } from "../sagemaker/names.js";
import { contentTypeToFormat, type DataFormat } from "../xgboost/data.js";
import { planHook } from "../xgboost/hook.js";
import { hyperparametersAsStrings, validateHyperparameters } from "../xgboost/hyperparameters.js";
import { loadXGBoost } from "../xgboost/libxgboost.js";
import { LAB_DIR, LAB_FILES } from "../lab-data.js";
import { confinedDir, confinement, openConfined, type Confinement } from "../../storage/confine.js";
import type { ChannelFile, TrainResult, TrainSpec, WorkerInput, WorkerMessage } from "../xgboost/train-worker.js";

export type LocalJobEvent =
  /** Any change of status or secondary status (previousStatus null for a new job). */
  | { type: "status"; job: TrainingJobRecord; previousStatus: TrainingJobStatus | null }
  /** A boosting round finished (job.progress updated). */
  | { type: "progress"; job: TrainingJobRecord }
  /** New complete steps in the job's trial (absolute trial path). */
  | { type: "steps"; jobName: string; trialPath: string; steps: number[] }
  /** The job reached a terminal status; its trial has training_job_end.ts unless it failed early. */
  | { type: "ended"; job: TrainingJobRecord; trialPath: string };

export interface LocalBackendOptions {
  /** Data directory: inputs are resolved against it, jobs live in <dataDir>/jobs. */
  dataDir: string;
  onEvent?: (e: LocalJobEvent) => void;
  /** Explicit libxgboost path (env TRIALGRAPH_XGBOOST_LIB still wins). */
  xgboostLibPath?: string | null;
  /** Downloads an s3:// input; without it s3:// inputs are refused. */
  fetchS3Object?: (uri: string) => Promise<Buffer>;
  /** Refuses s3:// inputs this service may not read (TRIALGRAPH_S3_ALLOWED_BUCKETS); throws FORBIDDEN_PATH. */
  checkS3Input?: (uri: string, field: string) => void;
  /** Test hook: the clock. */
  now?: () => Date;
}

export const MAX_PAGE_SIZE = 100;
const CHANNELS = new Set(["train", "validation"]);
const RESTART_REASON = "The trialgraph service restarted while this job was running; local jobs cannot resume.";
/** Progress is persisted at most this often (every round is still published as an event). */
const PERSIST_PROGRESS_MS = 500;

interface Running {
  worker: Worker | null;
  stopFlag: Int32Array;
  stopRequested: boolean;
  lastPersist: number;
  done: Promise<void>;
}

interface StoredJob {
  version: 1;
  record: Omit<TrainingJobRecord, "createdAt" | "startedAt" | "endedAt" | "ruleSummaries"> & {
    createdAt: string; startedAt: string | null; endedAt: string | null;
    ruleSummaries: (Omit<RuleSummaryRecord, "lastModifiedTime"> & { lastModifiedTime: string | null })[];
  };
}

function toStored(r: TrainingJobRecord): StoredJob {
  return {
    version: 1,
    record: {
      ...r,
      createdAt: r.createdAt.toISOString(),
      startedAt: r.startedAt?.toISOString() ?? null,
      endedAt: r.endedAt?.toISOString() ?? null,
      ruleSummaries: r.ruleSummaries.map((s) => ({ ...s, lastModifiedTime: s.lastModifiedTime?.toISOString() ?? null })),
    },
  };
}

function fromStored(s: StoredJob): TrainingJobRecord {
  const r = s.record;
  return {
    ...r,
    createdAt: new Date(r.createdAt),
    startedAt: r.startedAt ? new Date(r.startedAt) : null,
    endedAt: r.endedAt ? new Date(r.endedAt) : null,
    // Records written before findings existed have none.
    ruleSummaries: (r.ruleSummaries ?? []).map((x) => ({ ...x, lastModifiedTime: x.lastModifiedTime ? new Date(x.lastModifiedTime) : null, findings: x.findings ?? [] })),
  };
}

const copy = (r: TrainingJobRecord): TrainingJobRecord => ({
  ...r,
  hyperparameters: { ...r.hyperparameters },
  ruleSummaries: r.ruleSummaries.map((s) => ({ ...s })),
  progress: r.progress ? { ...r.progress } : null,
});

function encodeCursor(r: TrainingJobRecord): string {
  return Buffer.from(JSON.stringify({ t: r.createdAt.getTime(), n: r.name }), "utf8").toString("base64url");
}

function decodeCursor(cursor: string): { t: number; n: string } {
  try {
    const v = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
    if (typeof v?.t === "number" && typeof v?.n === "string") return v;
  } catch {
    // fall through
  }
  throw badInput("after is not a cursor from a previous trainingJobs page", "after");
}

/** Newest first, then by name (descending) so the order is total. */
const byCreationDesc = (a: TrainingJobRecord, b: TrainingJobRecord) =>
  b.createdAt.getTime() - a.createdAt.getTime() || (a.name < b.name ? 1 : a.name > b.name ? -1 : 0);

/**
 * Starts the training worker: the compiled .js next to this file, or under tsx (dev, tests) the .ts
 * source loaded through tsx's CommonJS hook (a worker does not inherit the parent's `--import tsx`).
 */
function startWorker(workerData: WorkerInput): Worker {
  if (path.extname(__filename) === ".ts") {
    const file = path.join(__dirname, "..", "xgboost", "train-worker.ts");
    const bootstrap = `require(${JSON.stringify(require.resolve("tsx/cjs"))}); require(${JSON.stringify(file)});`;
    return new Worker(bootstrap, { eval: true, workerData });
  }
  return new Worker(path.join(__dirname, "..", "xgboost", "train-worker.js"), { workerData });
}

export class LocalBackend implements TrainingJobBackend {
  readonly backend = "LOCAL" as const;
  private readonly dataDir: string;
  private readonly confinement: Confinement;
  private readonly jobsDir: string;
  private readonly jobs = new Map<string, TrainingJobRecord>();
  private readonly running = new Map<string, Running>();
  private readonly persistQueue = new Map<string, Promise<void>>();
  private readonly ready: Promise<void>;
  private readonly now: () => Date;

  constructor(private readonly options: LocalBackendOptions) {
    this.dataDir = path.resolve(options.dataDir);
    this.confinement = confinement(this.dataDir);
    this.jobsDir = path.join(this.dataDir, "jobs");
    this.now = options.now ?? (() => new Date());
    this.ready = this.recover();
  }

  /** Resolves once persisted jobs are loaded (jobs that were running are marked FAILED). */
  whenReady(): Promise<void> {
    return this.ready;
  }

  /** Why local jobs cannot train (libxgboost missing or unusable), or null when they can. */
  libraryProblem(): string | null {
    try {
      loadXGBoost(this.options.xgboostLibPath);
      return null;
    } catch (e) {
      return (e as Error).message;
    }
  }

  private async recover(): Promise<void> {
    let names: string[] = [];
    try {
      names = await fs.readdir(this.jobsDir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
      return;
    }
    for (const name of names) {
      let stored: StoredJob;
      try {
        stored = JSON.parse(await fs.readFile(path.join(this.jobsDir, name, "job.json"), "utf8"));
      } catch {
        continue; // not a job folder, or a record that was never completely written
      }
      const record = fromStored(stored);
      if (!TERMINAL_JOB_STATUSES.has(record.status)) {
        record.status = "FAILED";
        record.secondaryStatus = "Failed";
        record.failureReason = RESTART_REASON;
        record.endedAt = this.now();
        for (const s of record.ruleSummaries) {
          if (s.status === "IN_PROGRESS" || s.status === "STOPPING") {
            s.status = "STOPPED";
            s.lastModifiedTime = record.endedAt;
          }
        }
        await this.persist(record);
      }
      this.jobs.set(record.name, record);
    }
  }

  private jobDir(name: string): string {
    return path.join(this.jobsDir, name);
  }

  /** The job's trial folder (absolute). */
  trialPath(name: string): string {
    return path.join(this.jobDir(name), "debug-output");
  }

  /** Atomic write of job.json; writes of one job are queued so an older state never lands last. */
  private persist(record: TrainingJobRecord): Promise<void> {
    const snapshot = JSON.stringify(toStored(record));
    const dir = this.jobDir(record.name);
    const write = async () => {
      await fs.mkdir(dir, { recursive: true });
      const file = path.join(dir, "job.json");
      const tmp = `${file}.${randomUUID()}.tmp`;
      await fs.writeFile(tmp, snapshot);
      await fs.rename(tmp, file);
    };
    const next = (this.persistQueue.get(record.name) ?? Promise.resolve()).catch(() => undefined).then(write);
    this.persistQueue.set(record.name, next);
    return next;
  }

  private emit(e: LocalJobEvent): void {
    try {
      this.options.onEvent?.(e);
    } catch {
      // A listener's failure must not break the job.
    }
  }

  private async setStatus(record: TrainingJobRecord, status: TrainingJobStatus, secondary: string, patch: Partial<TrainingJobRecord> = {}): Promise<void> {
    const previousStatus = record.status;
    Object.assign(record, patch, { status, secondaryStatus: secondary });
    await this.persist(record);
    this.emit({ type: "status", job: copy(record), previousStatus });
  }

  /** Resolves a local input against the data dir, refusing paths that leave it. */
  private resolveInput(uri: string, field: string): string {
    const rel = uri.startsWith("file://") ? uri.slice("file://".length) : uri;
    const full = path.resolve(this.dataDir, rel);
    if (full !== this.dataDir && !full.startsWith(this.dataDir + path.sep)) {
      throw new TrialgraphError("FORBIDDEN_PATH", `input ${uri} is outside the data directory`, { field });
    }
    return full;
  }

  async start(spec: StartTrainingJobSpec): Promise<TrainingJobRecord> {
    await this.ready;
    // Validate everything that can be known now, so bad input is an error rather than a failed job.
    const builtin = spec.algorithm?.builtin;
    if (spec.algorithm?.image || (builtin != null && builtin.toLowerCase() !== "xgboost")) {
      throw badInput("local jobs run the built-in XGBoost algorithm only", "algorithm");
    }
    const name = spec.name ?? nameFromBase(spec.baseJobName ?? "xgboost", this.now());
    if (!isValidJobName(name)) {
      throw badInput("job names are 1-63 letters, digits and hyphens, starting and ending with a letter or digit", "name");
    }
    if (this.jobs.has(name)) {
      throw new TrialgraphError("JOB_NAME_IN_USE", `a training job named ${name} already exists`, { field: "name" });
    }
    const hp = validateHyperparameters(spec.hyperparameters);
    planHook(spec.debugHookConfig);
    const channels = new Map<string, { uri: string; format: DataFormat; local: string | null }>();
    (spec.inputs ?? []).forEach((input, i) => {
      const field = `inputs[${i}]`;
      if (!CHANNELS.has(input.name)) {
        throw badInput(`channel ${input.name} is not used by XGBoost (use train and validation)`, `${field}.name`);
      }
      if (channels.has(input.name)) throw badInput(`channel ${input.name} is given twice`, `${field}.name`);
      const format = contentTypeToFormat(input.contentType);
      if (!format) {
        throw badInput(`content type ${input.contentType} is not accepted: libsvm, text/libsvm, text/x-libsvm, csv, text/csv`, `${field}.contentType`);
      }
      if (input.uri.startsWith("s3://")) {
        if (!this.options.fetchS3Object) throw badInput("s3:// inputs need S3 to be configured for this service", `${field}.uri`);
        this.options.checkS3Input?.(input.uri, `${field}.uri`);
        channels.set(input.name, { uri: input.uri, format, local: null });
      } else {
        channels.set(input.name, { uri: input.uri, format, local: this.resolveInput(input.uri, `${field}.uri`) });
      }
    });
    if (!channels.has("train")) throw badInput("a train channel is required", "inputs");
    for (const [i, input] of (spec.inputs ?? []).entries()) {
      const ch = channels.get(input.name)!;
      if (!ch.local) continue;
      // Resolved and confined now (links out of the data directory, FIFOs and devices are refused),
      // and again when the data is read.
      const field = `inputs[${i}].uri`;
      const key = path.relative(this.dataDir, ch.local).split(path.sep).join("/");
      const label = { baseDir: this.dataDir, key, where: field };
      const exists = await (async () => {
        try {
          const st = await fs.stat(ch.local!);
          if (st.isDirectory()) return (await confinedDir(ch.local!, this.confinement, label)) !== null;
          const opened = await openConfined(ch.local!, this.confinement, label);
          await opened?.handle.close();
          return opened !== null;
        } catch (e) {
          if (e instanceof TrialgraphError) throw new TrialgraphError(e.code, e.message, { ...e.details, field });
          const code = (e as NodeJS.ErrnoException).code;
          if (code === "ENOENT" || code === "ENOTDIR") return false;
          throw badInput(`input ${input.uri} cannot be read (${code})`, field);
        }
      })();
      if (!exists) {
        // The lab's inputs are not shipped: say how to get them.
        const lab = key.split("/")[0] === LAB_DIR
          ? `; ${LAB_DIR}/ holds the lab's data: run \`npm run lab:data\` to download it (${LAB_DIR}/${LAB_FILES.train}, ${LAB_DIR}/${LAB_FILES.validation}), or copy LIBSVM files there`
          : "";
        throw badInput(`input ${input.uri} does not exist in the data directory${lab}`, field);
      }
    }
    // Fails with XGBOOST_UNAVAILABLE (and how to install it) when libxgboost is missing.
    loadXGBoost(this.options.xgboostLibPath);

    const now = this.now();
    const record: TrainingJobRecord = {
      name,
      arn: null,
      backend: "LOCAL",
      status: "IN_PROGRESS",
      secondaryStatus: "Starting",
      failureReason: null,
      createdAt: now,
      startedAt: null,
      endedAt: null,
      hyperparameters: hyperparametersAsStrings(spec.hyperparameters),
      debugOutputPath: path.relative(this.dataDir, this.trialPath(name)).split(path.sep).join("/"),
      ruleSummaries: [],
      progress: { current: 0, total: hp.numRound },
    };
    this.jobs.set(name, record);
    await this.persist(record);
    this.emit({ type: "status", job: copy(record), previousStatus: null });

    const run: Running = { worker: null, stopFlag: new Int32Array(new SharedArrayBuffer(4)), stopRequested: false, lastPersist: 0, done: Promise.resolve() };
    this.running.set(name, run);
    run.done = this.run(record, spec, channels, run).catch(async (e) => {
      await this.finishFailed(record, `Internal error: ${(e as Error).message}`);
    }).finally(() => {
      this.running.delete(name);
    });
    return copy(record);
  }

  private async materialize(record: TrainingJobRecord, channels: Map<string, { uri: string; format: DataFormat; local: string | null }>, name: string): Promise<ChannelFile | null> {
    const ch = channels.get(name);
    if (!ch) return null;
    if (ch.local) return { path: ch.local, format: ch.format, displayName: ch.uri, confineTo: this.dataDir };
    const body = await this.options.fetchS3Object!(ch.uri);
    const dir = path.join(this.jobDir(record.name), "input", name);
    await fs.mkdir(dir, { recursive: true });
    const file = path.join(dir, path.posix.basename(ch.uri.replace(/\/+$/, "")) || `${name}.${ch.format}`);
    await fs.writeFile(file, body);
    return { path: file, format: ch.format, displayName: ch.uri, confineTo: this.dataDir };
  }

  private async run(record: TrainingJobRecord, spec: StartTrainingJobSpec, channels: Map<string, { uri: string; format: DataFormat; local: string | null }>, run: Running): Promise<void> {
    let train: ChannelFile, validation: ChannelFile | null;
    try {
      train = (await this.materialize(record, channels, "train"))!;
      validation = await this.materialize(record, channels, "validation");
    } catch (e) {
      await this.finishFailed(record, `Could not download the input data: ${(e as Error).message}`);
      return;
    }
    if (run.stopRequested) {
      await this.setStatus(record, "STOPPED", "Stopped", { endedAt: this.now() });
      this.emit({ type: "ended", job: copy(record), trialPath: this.trialPath(record.name) });
      return;
    }
    const dir = this.jobDir(record.name);
    const trainSpec: TrainSpec = {
      jobName: record.name,
      train,
      validation,
      hyperparameters: spec.hyperparameters ?? {},
      debugHookConfig: spec.debugHookConfig ?? null,
      trialDir: this.trialPath(record.name),
      modelPath: path.join(dir, "output", "xgboost-model"),
      workDir: path.join(dir, "work"),
      xgboostLibPath: this.options.xgboostLibPath ?? null,
    };
    const input: WorkerInput = { kind: "trialgraph-xgboost", spec: trainSpec, stopFlag: run.stopFlag.buffer as SharedArrayBuffer };
    if (run.stopRequested) Atomics.store(run.stopFlag, 0, 1);
    await new Promise<void>((resolve) => {
      let settled = false;
      // Messages are handled one after another so persisted states never go backwards.
      let chain = Promise.resolve();
      const settle = (fn: () => Promise<void>) => {
        chain = chain.then(fn).catch(() => undefined);
      };
      const worker = startWorker(input);
      run.worker = worker;
      worker.on("message", (m: WorkerMessage) => settle(async () => {
        if (settled) return;
        switch (m.type) {
          case "started":
            if (record.status === "IN_PROGRESS") {
              await this.setStatus(record, "IN_PROGRESS", "Training", { startedAt: this.now(), progress: { current: 0, total: m.numRound } });
            } else if (!record.startedAt) {
              record.startedAt = this.now();
            }
            break;
          case "round":
            record.progress = { current: m.current, total: m.total };
            if (Date.now() - run.lastPersist >= PERSIST_PROGRESS_MS) {
              run.lastPersist = Date.now();
              await this.persist(record);
            }
            this.emit({ type: "progress", job: copy(record) });
            break;
          case "step":
            this.emit({ type: "steps", jobName: record.name, trialPath: this.trialPath(record.name), steps: [m.step] });
            break;
          case "done":
            settled = true;
            await this.finishDone(record, m.result);
            break;
          case "failed":
            settled = true;
            await this.finishFailed(record, m.reason);
            break;
        }
      }));
      worker.on("error", (e) => settle(async () => {
        if (settled) return;
        settled = true;
        await this.finishFailed(record, `The training worker crashed: ${e.message}`);
      }));
      worker.on("exit", (code) => settle(async () => {
        if (!settled) {
          settled = true;
          await this.finishFailed(record, `The training worker exited unexpectedly (exit code ${code})`);
        }
        resolve();
      }));
    });
    await fs.rm(path.join(dir, "work"), { recursive: true, force: true }).catch(() => undefined);
  }

  private async finishDone(record: TrainingJobRecord, result: TrainResult): Promise<void> {
    record.progress = { current: result.roundsDone, total: result.numRound };
    if (result.status === "STOPPED" || record.status === "STOPPING") {
      await this.setStatus(record, "STOPPED", "Stopped", { endedAt: this.now() });
    } else {
      await this.setStatus(record, "COMPLETED", "Completed", { endedAt: this.now() });
    }
    this.emit({ type: "ended", job: copy(record), trialPath: this.trialPath(record.name) });
  }

  private async finishFailed(record: TrainingJobRecord, reason: string): Promise<void> {
    if (TERMINAL_JOB_STATUSES.has(record.status)) return;
    await this.setStatus(record, "FAILED", "Failed", { endedAt: this.now(), failureReason: reason.slice(0, 1024) });
    this.emit({ type: "ended", job: copy(record), trialPath: this.trialPath(record.name) });
  }

  async stop(name: string): Promise<TrainingJobRecord> {
    await this.ready;
    const record = this.jobs.get(name);
    if (!record) throw new TrialgraphError("NOT_FOUND", `no local training job named ${name}`, { field: "name" });
    if (record.status === "STOPPING") return copy(record);
    if (record.status !== "IN_PROGRESS") {
      throw new TrialgraphError("JOB_NOT_STOPPABLE", `training job ${name} is ${record.status}, not IN_PROGRESS`, { status: record.status });
    }
    // STOPPING is recorded (and answered) before the worker is told: a worker that stops at once
    // must not overtake the answer with STOPPED.
    const stopping = this.setStatus(record, "STOPPING", "Stopping");
    const answer = copy(record);
    const run = this.running.get(name);
    if (run) {
      run.stopRequested = true;
      Atomics.store(run.stopFlag, 0, 1);
    }
    await stopping;
    return answer;
  }

  async describe(name: string): Promise<TrainingJobRecord | null> {
    await this.ready;
    const r = this.jobs.get(name);
    return r ? copy(r) : null;
  }

  async list(query: ListJobsQuery): Promise<JobPage> {
    await this.ready;
    const first = query.first;
    if (!Number.isInteger(first) || first < 1 || first > MAX_PAGE_SIZE) {
      throw badInput(`first must be an integer from 1 to ${MAX_PAGE_SIZE}`, "first");
    }
    const needle = query.nameContains?.toLowerCase() ?? null;
    let all = [...this.jobs.values()]
      .filter((r) => (query.status ? r.status === query.status : true))
      .filter((r) => (needle ? r.name.toLowerCase().includes(needle) : true))
      .sort(byCreationDesc);
    if (query.after != null) {
      const c = decodeCursor(query.after);
      const pivot = { createdAt: new Date(c.t), name: c.n } as TrainingJobRecord;
      all = all.filter((r) => byCreationDesc(pivot, r) < 0);
    }
    const nodes = all.slice(0, first);
    const hasNextPage = all.length > first;
    return {
      nodes: nodes.map(copy),
      endCursor: nodes.length > 0 ? encodeCursor(nodes[nodes.length - 1]) : null,
      hasNextPage,
    };
  }

  /** The rule engine's results for a job, persisted with it. */
  async setRuleSummaries(name: string, summaries: RuleSummaryRecord[]): Promise<TrainingJobRecord> {
    await this.ready;
    const record = this.jobs.get(name);
    if (!record) throw new TrialgraphError("NOT_FOUND", `no local training job named ${name}`, { field: "name" });
    record.ruleSummaries = summaries.map((s) => ({ ...s }));
    await this.persist(record);
    return copy(record);
  }

  /** Resolves when the job has no running worker any more (terminal), with its record. */
  async waitUntilDone(name: string): Promise<TrainingJobRecord | null> {
    await this.ready;
    await this.running.get(name)?.done;
    return this.describe(name);
  }

  /** Service shutdown: asks every running job to stop after its current round and waits (they end STOPPED). */
  async close(): Promise<void> {
    const runs = [...this.running.values()];
    for (const run of runs) {
      Atomics.store(run.stopFlag, 0, 1);
    }
    await Promise.all(runs.map((r) => r.done));
  }
}
