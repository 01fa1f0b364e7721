/**
 * The LOCAL training backend: XGBoost jobs trained on this machine (libxgboost in a worker thread),
 * with SageMaker's statuses and a debugger hook writing the job's smdebug trial (in the data folder,
 * or uploaded to S3 when the job names an S3 output path, so every instance can read it).
 *
 * Job records live in the database, so every instance lists every local job. The instance that
 * accepted a job runs it: at most `maxConcurrentJobs` at once, the rest queued in order (IN_PROGRESS,
 * "Queued (n ahead)"). A stop request may come from any instance: it is written to the record
 * (STOPPING) and the running instance acts on it. Every status change is written before it is
 * announced; writes that the database refuses for a while are retried until it returns.
 */
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Worker } from "node:worker_threads";
import { badInput, TrialgraphError } from "../../errors.js";
import type { JobPatch, JobStore, NewRule } from "../../store/index.js";
import { parseS3Uri } from "../../storage/s3-client.js";
import type {
  JobPage, ListJobsQuery, StartTrainingJobSpec, TrainingJobBackend, TrainingJobRecord, TrainingJobStatus,
} from "../types.js";
import { TERMINAL_JOB_STATUSES } from "../types.js";
import { isValidJobName, nameFromBase } from "../sagemaker/names.js";
import { debugOutputPathFor } from "../sagemaker/request.js";
import { contentTypeToFormat, type DataFormat } from "../xgboost/data.js";
import { planHook } from "../xgboost/hook.js";
import { hyperparametersAsStrings, validateHyperparameters } from "../xgboost/hyperparameters.js";
import { loadXGBoost } from "../xgboost/libxgboost.js";
import { LAB_DIR, LAB_FILES } from "../lab-data.js";
import { confinedDir, confinement, openConfined, type Confinement } from "../../storage/confine.js";
import type { ChannelFile, TrainResult, TrainSpec, WorkerInput, WorkerMessage } from "../xgboost/train-worker.js";
import { TrialUploader, type PutS3Object } from "./trial-upload.js";

export type LocalJobEvent =
  /** Any change of status or secondary status (previousStatus null for a new job). */
  | { type: "status"; job: TrainingJobRecord; previousStatus: TrainingJobStatus | null }
  /** A boosting round finished (job.progress updated). */
  | { type: "progress"; job: TrainingJobRecord }
  /** New complete steps in the job's trial (its debugOutputPath: data-dir relative, or s3://). */
  | { type: "steps"; jobName: string; trialPath: string; steps: number[] }
  /** The job reached a terminal status; its trial has training_job_end.ts unless it failed early. */
  | { type: "ended"; job: TrainingJobRecord; trialPath: string };

export interface LocalBackendLog {
  warn(obj: object, msg: string): void;
  info?(obj: object, msg: string): void;
}

export interface LocalBackendOptions {
  /** Data directory: inputs are resolved against it, job folders live in <dataDir>/jobs. */
  dataDir: string;
  /** Where job records live (shared by every instance using the database). */
  store: JobStore;
  /** This instance: it runs the jobs it accepts. */
  instanceId: string;
  /** Jobs trained at once on this instance; later ones wait in a queue. Default: the CPU count. */
  maxConcurrentJobs?: number;
  onEvent?: (e: LocalJobEvent) => void;
  /** Explicit libxgboost path (env TRIALGRAPH_XGBOOST_LIB still wins). */
  xgboostLibPath?: string | null;
  /** Downloads an s3:// input; without it s3:// inputs are refused. */
  fetchS3Object?: (uri: string) => Promise<Buffer>;
  /** Refuses s3:// inputs and outputs this service may not use (TRIALGRAPH_S3_ALLOWED_BUCKETS); throws FORBIDDEN_PATH. */
  checkS3Input?: (uri: string, field: string) => void;
  /** Uploads a file of a job's trial; without it S3 output paths are refused. */
  putS3Object?: PutS3Object;
  log?: LocalBackendLog;
  /** Test hook: the clock. */
  now?: () => Date;
}

export const MAX_PAGE_SIZE = 100;
const CHANNELS = new Set(["train", "validation"]);
/** Progress is written at most this often (every round is still published as an event). */
const PERSIST_PROGRESS_MS = 500;
/** How often a running instance checks the records of its jobs for stop requests made elsewhere. */
const STOP_CHECK_MS = 1_000;

type Channels = Map<string, { uri: string; format: DataFormat; local: string | null }>;

/** A job this instance accepted and has not finished: training, or waiting for a slot. */
interface LocalRun {
  record: TrainingJobRecord;
  spec: StartTrainingJobSpec;
  channels: Channels;
  uploader: TrialUploader | null;
  worker: Worker | null;
  stopFlag: Int32Array;
  stopRequested: boolean;
  started: boolean;
  lastPersist: number;
  done: Promise<void>;
  finish: () => void;
  /** Status writes of this job, in order. */
  writes: Promise<unknown>;
}

export const copyRecord = (r: TrainingJobRecord): TrainingJobRecord => ({
  ...r,
  hyperparameters: { ...r.hyperparameters },
  ruleSummaries: r.ruleSummaries.map((s) => ({ ...s })),
  progress: r.progress ? { ...r.progress } : null,
});

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

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms).unref());

/** Where a local job's trial goes on S3, when it asks for S3: debugHookConfig.s3OutputPath, or an s3:// outputPath. */
function s3TrialBase(spec: StartTrainingJobSpec): { base: string; field: string } | null {
  const hook = spec.debugHookConfig?.s3OutputPath;
  if (hook) return { base: hook, field: "debugHookConfig.s3OutputPath" };
  if (spec.outputPath && /^s3:\/\//i.test(spec.outputPath)) return { base: spec.outputPath, field: "outputPath" };
  return null;
}

export class LocalBackend implements TrainingJobBackend {
  readonly backend = "LOCAL" as const;
  readonly maxConcurrentJobs: number;
  private readonly dataDir: string;
  private readonly confinement: Confinement;
  private readonly jobsDir: string;
  private readonly store: JobStore;
  /** Jobs this instance accepted and has not finished, training or queued. */
  private readonly runs = new Map<string, LocalRun>();
  /** Names waiting for a slot, oldest first. */
  private readonly queue: string[] = [];
  private readonly now: () => Date;
  private stopCheck: NodeJS.Timeout | null = null;
  private closing = false;

  constructor(private readonly options: LocalBackendOptions) {
    this.dataDir = path.resolve(options.dataDir);
    this.confinement = confinement(this.dataDir);
    this.jobsDir = path.join(this.dataDir, "jobs");
    this.store = options.store;
    this.now = options.now ?? (() => new Date());
    this.maxConcurrentJobs = Math.max(1, options.maxConcurrentJobs ?? os.availableParallelism());
  }

  private jobDir(name: string): string {
    return path.join(this.jobsDir, name);
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

  /** The job's trial folder on this machine (where the hook writes, also for S3 jobs). */
  trialPath(name: string): string {
    return path.join(this.jobDir(name), "debug-output");
  }

  private emit(e: LocalJobEvent): void {
    try {
      this.options.onEvent?.(e);
    } catch {
      // A listener's failure must not break the job.
    }
  }

  /**
   * A write of a running job's record. Writes of one job run in order; one the database refuses
   * while it is away is retried until it returns (the job's outcome must not be lost), unless
   * `bestEffort` (progress: the next write carries it anyway). Resolves with the record written,
   * or null when the condition failed (someone else ended the job first).
   */
  private write(run: LocalRun, patch: JobPatch, statusIn: readonly TrainingJobStatus[], bestEffort = false): Promise<TrainingJobRecord | null> {
    const attempt = async (): Promise<TrainingJobRecord | null> => {
      for (let delay = 250; ; delay = Math.min(delay * 2, 2_000)) {
        try {
          return await this.store.update(run.record.name, patch, { statusIn, instanceId: this.options.instanceId });
        } catch (e) {
          const unavailable = e instanceof TrialgraphError && e.code === "DATABASE_UNAVAILABLE";
          if (bestEffort || !unavailable) {
            if (!bestEffort) this.options.log?.warn({ job: run.record.name, err: e }, "could not record a local job's state");
            return null;
          }
          await sleep(delay);
        }
      }
    };
    const next = run.writes.then(attempt, attempt);
    run.writes = next.catch(() => undefined);
    return next;
  }

  /** Records and announces a status change; false when the job had already ended elsewhere. */
  private async setStatus(run: LocalRun, status: TrainingJobStatus, secondary: string, patch: JobPatch = {}, statusIn: readonly TrainingJobStatus[] = ["IN_PROGRESS", "STOPPING"]): Promise<boolean> {
    const previousStatus = run.record.status;
    const written = await this.write(run, { ...patch, status, secondaryStatus: secondary, progress: run.record.progress }, statusIn);
    if (!written) return false;
    run.record = { ...written, progress: run.record.progress };
    this.emit({ type: "status", job: copyRecord(run.record), previousStatus });
    return true;
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

  /**
   * Validates and records a new job (with the rules the service evaluates on it), then trains it now
   * or queues it. Answers once the record is written.
   */
  async start(spec: StartTrainingJobSpec, options: { rules?: readonly NewRule[] } = {}): Promise<TrainingJobRecord> {
    if (this.closing) throw new TrialgraphError("BACKEND_UNAVAILABLE", "this instance is shutting down", { field: "backend" });
    // Validate everything that can be known now, so bad input is an error rather than a failed job.
    const builtin = spec.algorithm?.builtin;
    if (spec.algorithm?.image || (builtin != null && builtin.toLowerCase() !== "xgboost")) {
      throw badInput("local jobs run the built-in XGBoost algorithm only", "algorithm");
    }
    const name = spec.name ?? nameFromBase(spec.baseJobName ?? "xgboost", this.now());
    if (!isValidJobName(name)) {
      throw badInput("job names are 1-63 letters, digits and hyphens, starting and ending with a letter or digit", "name");
    }
    const hp = validateHyperparameters(spec.hyperparameters);
    planHook(spec.debugHookConfig);
    const s3 = s3TrialBase(spec);
    let debugOutputPath = path.relative(this.dataDir, this.trialPath(name)).split(path.sep).join("/");
    if (s3) {
      if (!this.options.putS3Object) throw badInput("an S3 output path needs S3 to be configured for this service", s3.field);
      parseS3Uri(s3.base, s3.field);
      this.options.checkS3Input?.(s3.base, s3.field);
      debugOutputPath = debugOutputPathFor(s3.base, name);
    }
    const channels: Channels = new Map();
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
    // A folder left by an earlier job of this name (one the database does not know) is never reused:
    // its trial would mix two runs.
    if (await fs.stat(this.jobDir(name)).then(() => true, () => false)) {
      throw new TrialgraphError("JOB_NAME_IN_USE", `a training job named ${name} already exists (its folder is in the data directory)`, { field: "name" });
    }

    const queued = this.runningCount() >= this.maxConcurrentJobs;
    const record: TrainingJobRecord = {
      name,
      arn: null,
      backend: "LOCAL",
      status: "IN_PROGRESS",
      secondaryStatus: queued ? queuedStatus(this.queue.length) : "Starting",
      failureReason: null,
      createdAt: this.now(),
      startedAt: null,
      endedAt: null,
      hyperparameters: hyperparametersAsStrings(spec.hyperparameters),
      debugOutputPath,
      ruleSummaries: [],
      progress: { current: 0, total: hp.numRound },
    };
    // The name is reserved here, atomically, on every instance sharing the database (JOB_NAME_IN_USE).
    await this.store.create(record, { spec, instanceId: this.options.instanceId, rules: options.rules ?? [] });

    let finish!: () => void;
    const done = new Promise<void>((resolve) => (finish = resolve));
    const run: LocalRun = {
      record: copyRecord(record), spec, channels,
      uploader: s3 && this.options.putS3Object ? new TrialUploader(this.trialPath(name), debugOutputPath, this.options.putS3Object) : null,
      worker: null, stopFlag: new Int32Array(new SharedArrayBuffer(4)), stopRequested: false, started: false,
      lastPersist: 0, done, finish, writes: Promise.resolve(),
    };
    this.runs.set(name, run);
    this.emit({ type: "status", job: copyRecord(record), previousStatus: null });
    if (queued) this.queue.push(name);
    else this.launch(run);
    this.watchStopRequests();
    return copyRecord(record);
  }

  private runningCount(): number {
    let n = 0;
    for (const r of this.runs.values()) if (r.started) n++;
    return n;
  }

  private launch(run: LocalRun): void {
    run.started = true;
    void this.run(run).catch(async (e) => {
      await this.finishFailed(run, `Internal error: ${(e as Error).message}`);
    }).finally(() => this.retire(run));
  }

  /** A job ended here: free its slot, start the next queued one, tell the queue where it stands. */
  private retire(run: LocalRun): void {
    this.runs.delete(run.record.name);
    const at = this.queue.indexOf(run.record.name);
    if (at >= 0) this.queue.splice(at, 1);
    run.finish();
    if (!this.closing) {
      while (this.queue.length && this.runningCount() < this.maxConcurrentJobs) {
        const next = this.runs.get(this.queue.shift()!);
        if (next) this.launch(next);
      }
      this.reportQueue();
    }
    if (!this.runs.size && this.stopCheck) {
      clearInterval(this.stopCheck);
      this.stopCheck = null;
    }
  }

  /** Queued jobs' secondary status says how many wait ahead of them. */
  private reportQueue(): void {
    this.queue.forEach((name, i) => {
      const run = this.runs.get(name);
      const secondary = queuedStatus(i);
      if (run && run.record.secondaryStatus !== secondary && run.record.status === "IN_PROGRESS") {
        void this.setStatus(run, "IN_PROGRESS", secondary, {}, ["IN_PROGRESS"]);
      }
    });
  }

  private async materialize(record: TrainingJobRecord, channels: Channels, name: string): Promise<ChannelFile | null> {
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

  private async run(run: LocalRun): Promise<void> {
    const name = run.record.name;
    if (run.stopRequested) {
      await this.finishStopped(run);
      return;
    }
    if (run.record.secondaryStatus !== "Starting") await this.setStatus(run, "IN_PROGRESS", "Starting", {}, ["IN_PROGRESS"]);
    let train: ChannelFile, validation: ChannelFile | null;
    try {
      train = (await this.materialize(run.record, run.channels, "train"))!;
      validation = await this.materialize(run.record, run.channels, "validation");
    } catch (e) {
      await this.finishFailed(run, `Could not download the input data: ${(e as Error).message}`);
      return;
    }
    if (run.stopRequested) {
      await this.finishStopped(run);
      return;
    }
    const dir = this.jobDir(name);
    const trainSpec: TrainSpec = {
      jobName: name,
      train,
      validation,
      hyperparameters: run.spec.hyperparameters ?? {},
      debugHookConfig: run.spec.debugHookConfig ?? null,
      trialDir: this.trialPath(name),
      modelPath: path.join(dir, "output", "xgboost-model"),
      workDir: path.join(dir, "work"),
      xgboostLibPath: this.options.xgboostLibPath ?? null,
    };
    const input: WorkerInput = { kind: "trialgraph-xgboost", spec: trainSpec, stopFlag: run.stopFlag.buffer as SharedArrayBuffer };
    if (run.stopRequested) Atomics.store(run.stopFlag, 0, 1);
    await new Promise<void>((resolve) => {
      let settled = false;
      // Messages are handled one after another so written states never go backwards.
      let chain = Promise.resolve();
      const settle = (fn: () => Promise<void>) => {
        chain = chain.then(fn).catch(() => undefined);
      };
      const worker = startWorker(input);
      run.worker = worker;
      worker.on("message", (m: WorkerMessage) => {
        // Steps are uploaded (S3 jobs) as they come, outside the status chain, in their own order.
        if (m.type === "step") {
          const announce = () => this.emit({ type: "steps", jobName: name, trialPath: run.record.debugOutputPath!, steps: [m.step] });
          if (!run.uploader) announce();
          else {
            run.uploader.step(m.step).then(announce, () => {
              // The trial cannot reach S3: stop training; the job fails with the reason when it ends.
              Atomics.store(run.stopFlag, 0, 1);
            });
          }
          return;
        }
        settle(async () => {
          if (settled) return;
          switch (m.type) {
            case "started":
              run.record.progress = { current: 0, total: m.numRound };
              if (run.record.status === "IN_PROGRESS") {
                await this.setStatus(run, "IN_PROGRESS", "Training", { startedAt: this.now() }, ["IN_PROGRESS"]);
              } else {
                await this.write(run, { startedAt: this.now() }, ["STOPPING"], true);
              }
              break;
            case "round":
              run.record.progress = { current: m.current, total: m.total };
              if (Date.now() - run.lastPersist >= PERSIST_PROGRESS_MS) {
                run.lastPersist = Date.now();
                void this.write(run, { progress: run.record.progress }, ["IN_PROGRESS", "STOPPING"], true);
              }
              this.emit({ type: "progress", job: copyRecord(run.record) });
              break;
            case "done":
              settled = true;
              await this.finishDone(run, m.result);
              break;
            case "failed":
              settled = true;
              await this.finishFailed(run, m.reason);
              break;
          }
        });
      });
      worker.on("error", (e) => settle(async () => {
        if (settled) return;
        settled = true;
        await this.finishFailed(run, `The training worker crashed: ${e.message}`);
      }));
      worker.on("exit", (code) => settle(async () => {
        if (!settled) {
          settled = true;
          await this.finishFailed(run, `The training worker exited unexpectedly (exit code ${code})`);
        }
        resolve();
      }));
    });
    await fs.rm(path.join(dir, "work"), { recursive: true, force: true }).catch(() => undefined);
  }

  /** Uploads what is left of an S3 trial; returns the failure reason when the trial could not be uploaded. */
  private async uploadRest(run: LocalRun): Promise<string | null> {
    if (!run.uploader) return null;
    await run.uploader.finish().catch(() => undefined);
    const failure = run.uploader.failure;
    return failure ? `Could not upload the trial to ${run.uploader.uri}: ${failure.message}` : null;
  }

  private async finishDone(run: LocalRun, result: TrainResult): Promise<void> {
    run.record.progress = { current: result.roundsDone, total: result.numRound };
    const uploadFailure = await this.uploadRest(run);
    if (uploadFailure) {
      await this.finishFailed(run, uploadFailure);
      return;
    }
    if (result.status === "STOPPED" || run.stopRequested) {
      await this.finishStopped(run);
      return;
    }
    // Completed, unless a stop request (possibly from another instance) came first.
    if (!(await this.setStatus(run, "COMPLETED", "Completed", { endedAt: this.now() }, ["IN_PROGRESS"]))) {
      await this.finishStopped(run);
      return;
    }
    this.emit({ type: "ended", job: copyRecord(run.record), trialPath: run.record.debugOutputPath! });
  }

  private async finishStopped(run: LocalRun): Promise<void> {
    if (await this.setStatus(run, "STOPPED", "Stopped", { endedAt: this.now() })) {
      this.emit({ type: "ended", job: copyRecord(run.record), trialPath: run.record.debugOutputPath! });
    }
  }

  private async finishFailed(run: LocalRun, reason: string): Promise<void> {
    if (TERMINAL_JOB_STATUSES.has(run.record.status)) return;
    if (run.started) await this.uploadRest(run);
    if (await this.setStatus(run, "FAILED", "Failed", { endedAt: this.now(), failureReason: reason.slice(0, 1024) })) {
      this.emit({ type: "ended", job: copyRecord(run.record), trialPath: run.record.debugOutputPath! });
    }
  }

  /**
   * Stops a job, whichever instance runs it: a queued job ends STOPPED at once; a training one is
   * recorded STOPPING (answered), then ends STOPPED after its current round.
   */
  async stop(name: string): Promise<TrainingJobRecord> {
    const stored = await this.store.get(name);
    const record = stored?.record.backend === "LOCAL" ? stored.record : null;
    if (!record) throw new TrialgraphError("NOT_FOUND", `no local training job named ${name}`, { field: "name" });
    if (record.status === "STOPPING") return this.withLiveProgress(record);
    if (record.status !== "IN_PROGRESS") {
      throw new TrialgraphError("JOB_NOT_STOPPABLE", `training job ${name} is ${record.status}, not IN_PROGRESS`, { status: record.status });
    }
    const run = this.runs.get(name);
    if (run && !run.started) {
      // Queued here: it never trained.
      run.stopRequested = true;
      await this.finishStopped(run);
      this.retire(run);
      return copyRecord(run.record);
    }
    // STOPPING is recorded (and answered) before the worker is told: a worker that stops at once
    // must not overtake the answer with STOPPED.
    const stopping = await this.store.update(name, { status: "STOPPING", secondaryStatus: "Stopping" }, { statusIn: ["IN_PROGRESS"] });
    if (!stopping) return this.stop(name); // it changed meanwhile: answer from its new state
    if (run) {
      const previousStatus = run.record.status;
      run.record = { ...stopping, progress: run.record.progress };
      this.emit({ type: "status", job: copyRecord(run.record), previousStatus });
      this.requestStop(run);
      return copyRecord(run.record);
    }
    // Another instance runs it: the event (and its own check of the record) tells it.
    this.emit({ type: "status", job: copyRecord(stopping), previousStatus: "IN_PROGRESS" });
    return stopping;
  }

  private requestStop(run: LocalRun): void {
    run.stopRequested = true;
    Atomics.store(run.stopFlag, 0, 1);
  }

  /**
   * A job's record says STOPPING (a stop request made on another instance): if this instance runs or
   * queues it, act on it.
   */
  noticeStopRequest(name: string): void {
    const run = this.runs.get(name);
    if (!run || run.stopRequested) return;
    if (!run.started) {
      run.stopRequested = true;
      run.record.status = "STOPPING";
      void this.finishStopped(run).then(() => this.retire(run));
      return;
    }
    run.record.status = "STOPPING";
    run.record.secondaryStatus = "Stopping";
    this.requestStop(run);
  }

  /** While this instance has jobs, it checks their records for stop requests (events may be lost). */
  private watchStopRequests(): void {
    if (this.stopCheck) return;
    this.stopCheck = setInterval(() => {
      if (!this.runs.size) return;
      void this.store.unfinishedOf(this.options.instanceId).then((jobs) => {
        for (const j of jobs) if (j.status === "STOPPING") this.noticeStopRequest(j.name);
      }, () => undefined);
    }, STOP_CHECK_MS);
    this.stopCheck.unref();
  }

  /** The stored record, with the progress this instance knows when it runs the job (written every 500 ms). */
  private withLiveProgress(record: TrainingJobRecord): TrainingJobRecord {
    const run = this.runs.get(record.name);
    return run?.record.progress ? { ...record, progress: { ...run.record.progress } } : record;
  }

  async describe(name: string): Promise<TrainingJobRecord | null> {
    const stored = await this.store.get(name);
    return stored?.record.backend === "LOCAL" ? this.withLiveProgress(stored.record) : null;
  }

  async list(query: ListJobsQuery): Promise<JobPage> {
    const page = await this.store.list({ ...query, backend: "LOCAL" });
    return { ...page, nodes: page.nodes.map((r) => this.withLiveProgress(r)) };
  }

  /** Resolves when the job has no running worker any more (terminal), with its record. */
  async waitUntilDone(name: string): Promise<TrainingJobRecord | null> {
    const run = this.runs.get(name);
    if (run) {
      await run.done;
      await run.writes;
    }
    return this.describe(name);
  }

  /** Whether this instance trains or queues the job. */
  runsHere(name: string): boolean {
    return this.runs.has(name);
  }

  /**
   * This instance was taken for dead by the others (its jobs are already FAILED in the database):
   * stop training them; their own writes no longer apply.
   */
  abandonAll(): void {
    for (const run of this.runs.values()) this.requestStop(run);
    this.queue.length = 0;
  }

  /**
   * Service shutdown: queued jobs end STOPPED at once, training ones after their current round; resolves
   * when every outcome is written (a database that is away delays it: main() bounds the wait).
   */
  async close(): Promise<void> {
    this.closing = true;
    const queued = this.queue.splice(0).map((n) => this.runs.get(n)).filter((r): r is LocalRun => !!r);
    for (const run of this.runs.values()) this.requestStop(run);
    await Promise.all(queued.map(async (run) => {
      await this.finishStopped(run);
      this.retire(run);
    }));
    await Promise.all([...this.runs.values()].map(async (r) => {
      await r.done;
      await r.writes;
    }));
    if (this.stopCheck) clearInterval(this.stopCheck);
    this.stopCheck = null;
  }
}

/** Where a queued job stands: "Queued (2 ahead)". */
export function queuedStatus(ahead: number): string {
  return `Queued (${ahead} ahead)`;
}
