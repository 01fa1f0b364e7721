/**
 * One local XGBoost training run: load the data, boost round by round, let the debugger hook write
 * the trial, honour stop requests between rounds, save the model. `runTraining` is the whole run in the
 * current thread (used by the worker below and by benchmarks through `trainInProcess`); loaded as a
 * worker thread (workerData.kind === "trialgraph-xgboost") this file runs it and posts messages.
 */
import fs from "node:fs/promises";
import path from "node:path";
import { isMainThread, parentPort, workerData } from "node:worker_threads";
import { TrialWriter } from "../../trials/trial-writer.js";
import type { CollectionInfo } from "../../format/collections-file.js";
import type { TensorInput } from "../../format/tensor.js";
import type { DebugHookConfigSpec, ParameterValue } from "../types.js";
import { readDataPath, type DataFormat, type ParsedData } from "./data.js";
import { planHook, parseEvalLine, XGBoostHook, type TrialSink } from "./hook.js";
import { metricMaximizes, validateHyperparameters } from "./hyperparameters.js";
import { loadXGBoost, type DMatrix, type XGBoostLib } from "./libxgboost.js";
import { ShapContributions } from "./shap.js";

export interface ChannelFile {
  /** Absolute local path (file or folder). */
  path: string;
  format: DataFormat;
  /** How messages name it ("train.libsvm", "s3://b/k"). */
  displayName: string;
  /** The folder it must resolve inside (the data directory): links out of it are refused. */
  confineTo: string;
}

/** Everything a run needs; plain data so it can cross to a worker thread. */
export interface TrainSpec {
  jobName: string;
  train: ChannelFile;
  validation: ChannelFile | null;
  hyperparameters: Record<string, ParameterValue>;
  debugHookConfig: DebugHookConfigSpec | null;
  /** Trial folder; null (or hook: false) runs without the debugger hook. */
  trialDir: string | null;
  /** Model file to write (e.g. <job>/output/xgboost-model); null to skip. */
  modelPath: string | null;
  /** Scratch folder for data copies XGBoost's own parser reads. */
  workDir: string;
  xgboostLibPath?: string | null;
}

export interface TrainTimings {
  loadMs: number;
  /** Boosting + evaluation only. */
  boostMs: number;
  /** Time spent in the debugger hook (tensor computation + writes). */
  hookMs: number;
  totalMs: number;
}

export interface TrainResult {
  status: "COMPLETED" | "STOPPED";
  roundsDone: number;
  numRound: number;
  savedSteps: number[];
  xgboostVersion: string;
  timings: TrainTimings;
}

export interface TrainControl {
  /** Checked before every round. */
  shouldStop(): boolean;
  onStarted?(info: { numRound: number; xgboostVersion: string }): void;
  onRound?(roundsDone: number, numRound: number): void;
  onStep?(step: number): void;
}

/** A failure whose message is fit for failureReason (bad data, libxgboost errors). */
export class TrainingFailure extends Error {}

function sinkFor(writer: TrialWriter): TrialSink {
  return {
    writeStep: (step: number, tensors: TensorInput[]) => writer.writeStep(step, tensors),
    // TrialWriter takes one save config for all modes; XGBoost only ever uses GLOBAL.
    writeCollections: (collections: CollectionInfo[], numWorkers: number) =>
      writer.writeCollections(
        collections.map((c) => ({
          name: c.name,
          includeRegex: c.includeRegex,
          tensorNames: c.tensorNames,
          saveConfig: c.saveConfig?.GLOBAL ?? null,
          saveHistogram: c.saveHistogram,
        })),
        numWorkers,
      ),
    end: () => writer.end(),
  };
}

/** Characters XGBoost's URI syntax gives a meaning to ('#' = external-memory cache, '?' = options). */
const URI_SPECIAL = /[#?&]/;

/**
 * A DMatrix read by XGBoost's own text parser (what SageMaker's container does), after our parser has
 * validated the data (line-numbered errors). Folders are concatenated into one file first.
 */
async function loadChannel(lib: XGBoostLib, ch: ChannelFile, workDir: string, name: string, csvWeights: boolean): Promise<DMatrix> {
  let parsed: ParsedData;
  try {
    parsed = await readDataPath(ch.path, ch.format, ch.displayName, ch.confineTo);
  } catch (e) {
    throw new TrainingFailure((e as Error).message);
  }
  let file = ch.path;
  const stat = await fs.stat(ch.path);
  if (stat.isDirectory() || URI_SPECIAL.test(file)) {
    const names = stat.isDirectory()
      ? (await fs.readdir(ch.path)).filter((n) => !n.startsWith(".") && !n.startsWith("_")).sort().map((n) => path.join(ch.path, n))
      : [ch.path];
    const parts: Buffer[] = [];
    for (const n of names) {
      if (!(await fs.stat(n)).isFile()) continue;
      const buf = await fs.readFile(n);
      parts.push(buf);
      if (buf.length > 0 && buf[buf.length - 1] !== 0x0a) parts.push(Buffer.from("\n"));
    }
    await fs.mkdir(workDir, { recursive: true });
    file = path.join(workDir, `${name}.${ch.format}`);
    await fs.writeFile(file, Buffer.concat(parts));
  }
  const uri = ch.format === "libsvm"
    ? `${file}?format=libsvm`
    : `${file}?format=csv&label_column=0${csvWeights ? "&weight_column=1" : ""}`;
  // XGBoost's CSV parser only knows ',' here; other delimiters and CSV weights go through our arrays.
  const firstLine = ch.format === "csv" ? (await fs.readFile(file, "utf8")).split("\n", 1)[0] : "";
  if (ch.format === "csv" && (!firstLine.includes(",") || csvWeights)) {
    return dmatrixFromParsed(lib, parsed, csvWeights);
  }
  const d = lib.dmatrixFromUri(uri);
  if (d.numRow() !== parsed.rows) {
    d.free();
    throw new TrainingFailure(`${ch.displayName}: XGBoost read ${d.numRow()} rows where ${parsed.rows} were expected`);
  }
  return d;
}

function dmatrixFromParsed(lib: XGBoostLib, p: ParsedData, csvWeights: boolean): DMatrix {
  if (!csvWeights) {
    const d = lib.dmatrixFromCsr(p, p.labels);
    if (p.weights) d.setFloatInfo("weight", p.weights);
    return d;
  }
  // CSV with weights: column 2 (first feature column) is the instance weight.
  const indices: number[] = [], values: number[] = [], indptr: number[] = [0];
  const weights = new Float32Array(p.rows);
  for (let r = 0; r < p.rows; r++) {
    weights[r] = 1;
    for (let k = p.indptr[r]; k < p.indptr[r + 1]; k++) {
      if (p.indices[k] === 0) weights[r] = p.values[k];
      else { indices.push(p.indices[k] - 1); values.push(p.values[k]); }
    }
    indptr.push(indices.length);
  }
  const d = lib.dmatrixFromCsr({ indptr, indices: Uint32Array.from(indices), values: Float32Array.from(values), numCol: Math.max(0, p.numCol - 1) }, p.labels);
  d.setFloatInfo("weight", weights);
  return d;
}

/** The whole run in this thread. Throws TrainingFailure (or XGBOOST_UNAVAILABLE) on failure. */
export async function runTraining(spec: TrainSpec, control: TrainControl, opts: { hook?: boolean } = {}): Promise<TrainResult> {
  const t0 = performance.now();
  const { lib, version } = loadXGBoost(spec.xgboostLibPath);
  const hp = validateHyperparameters(spec.hyperparameters);
  const dtrain = await loadChannel(lib, spec.train, spec.workDir, "train", hp.csvWeights);
  const dval = spec.validation ? await loadChannel(lib, spec.validation, spec.workDir, "validation", hp.csvWeights) : null;
  const useHook = opts.hook !== false && spec.trialDir !== null;
  const processType = hp.boosterParams.find(([name]) => name === "process_type")?.[1] ?? null;
  const shap = useHook ? new ShapContributions(lib, dtrain, ShapContributions.isAdditive(hp.booster, processType)) : null;
  const booster = lib.createBooster(dval ? [dtrain, dval] : [dtrain]);
  try {
    for (const [k, v] of hp.boosterParams) booster.setParam(k, v);
    booster.setParam("validate_parameters", "1");
    const evals = [{ dmatrix: dtrain, name: "train" }, ...(dval ? [{ dmatrix: dval, name: "validation" }] : [])];
    const hook = useHook
      ? new XGBoostHook(planHook(spec.debugHookConfig), sinkFor(new TrialWriter(spec.trialDir!)), {
        shap,
        validation: dval,
        validationLabels: dval ? dval.getFloatInfo("label") : null,
        hyperparameters: hp.hookHyperparameters,
        booster: hp.booster,
      })
      : null;
    const loadMs = performance.now() - t0;
    control.onStarted?.({ numRound: hp.numRound, xgboostVersion: version });

    let boostMs = 0, hookMs = 0, done = 0;
    let stopped = false;
    const early = { best: Number.NaN, bestRound: -1 };
    for (let i = 0; i < hp.numRound; i++) {
      if (control.shouldStop()) {
        stopped = true;
        break;
      }
      const tb = performance.now();
      booster.updateOneIter(i, dtrain);
      const results = parseEvalLine(booster.evalOneIter(i, evals));
      boostMs += performance.now() - tb;
      done = i + 1;
      // Early stopping runs before the hook; on the round it fires, smdebug's hook is not called.
      let stopEarly = false;
      if (hp.earlyStoppingRounds !== null) {
        const dataName = dval ? "validation" : "train";
        const metric = hp.evalMetrics.length > 0 ? hp.evalMetrics[hp.evalMetrics.length - 1] : null;
        const forData = results.filter((r) => r.name.startsWith(`${dataName}-`));
        const r = metric ? forData.find((x) => x.name === `${dataName}-${metric}`) : forData[forData.length - 1];
        if (r) {
          const maximize = metricMaximizes(r.name.slice(dataName.length + 1));
          if (early.bestRound < 0 || (maximize ? r.value > early.best : r.value < early.best)) {
            early.best = r.value;
            early.bestRound = i;
          } else if (i - early.bestRound >= hp.earlyStoppingRounds) {
            stopEarly = true;
          }
        }
      }
      if (hook && !stopEarly) {
        const th = performance.now();
        const { tensors, written } = hook.afterIteration(booster, i, results);
        hookMs += performance.now() - th;
        // The step is announced once its files exist; a failed write fails the run at close().
        if (tensors.length > 0) written.then(() => control.onStep?.(i), () => undefined);
        // Boosting blocks this thread: let queued writes (synchronous file writes) finish between rounds.
        if (hook.pendingWrites > 0) await hook.settled();
      }
      control.onRound?.(done, hp.numRound);
      if (stopEarly) break;
    }
    if (hook) {
      const th = performance.now();
      await hook.close();
      hookMs += performance.now() - th;
    }
    const saveModel = !stopped || hp.saveModelOnTermination;
    if (spec.modelPath && saveModel) {
      await fs.mkdir(path.dirname(spec.modelPath), { recursive: true });
      booster.saveModel(spec.modelPath);
    }
    return {
      status: stopped ? "STOPPED" : "COMPLETED",
      roundsDone: done,
      numRound: hp.numRound,
      savedSteps: hook ? hook.savedSteps : [],
      xgboostVersion: version,
      timings: { loadMs, boostMs, hookMs, totalMs: performance.now() - t0 },
    };
  } finally {
    shap?.free();
    booster.free();
    dtrain.free();
    dval?.free();
  }
}

/** For benchmarks: a run in this thread, with or without the debugger hook, returning its timings. */
export async function trainInProcess(spec: TrainSpec, opts: { hook: boolean }): Promise<TrainResult> {
  return runTraining(spec, { shouldStop: () => false }, opts);
}

/** Messages a training worker posts to its parent. */
export type WorkerMessage =
  | { type: "started"; numRound: number; xgboostVersion: string }
  | { type: "round"; current: number; total: number }
  | { type: "step"; step: number }
  | { type: "done"; result: TrainResult }
  | { type: "failed"; reason: string; code: string | null };

export interface WorkerInput {
  kind: "trialgraph-xgboost";
  spec: TrainSpec;
  /** Int32Array over a SharedArrayBuffer; [0] = 1 asks the run to stop before its next round. */
  stopFlag: SharedArrayBuffer;
}

if (!isMainThread && parentPort && (workerData as WorkerInput | undefined)?.kind === "trialgraph-xgboost") {
  const input = workerData as WorkerInput;
  const port = parentPort;
  const flag = new Int32Array(input.stopFlag);
  const post = (m: WorkerMessage) => port.postMessage(m);
  runTraining(input.spec, {
    shouldStop: () => Atomics.load(flag, 0) === 1,
    onStarted: (info) => post({ type: "started", ...info }),
    onRound: (current, total) => post({ type: "round", current, total }),
    onStep: (step) => post({ type: "step", step }),
  }).then(
    (result) => post({ type: "done", result }),
    (e: unknown) => {
      const err = e as Error & { code?: string };
      post({ type: "failed", reason: err.message || String(e), code: typeof err.code === "string" ? err.code : null });
    },
  );
}
