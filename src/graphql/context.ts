/** The one typed context, built fresh per HTTP request and per subscription event. */
import DataLoader from "dataloader";
import type { Logger } from "pino";
import type { Config } from "../config.js";
import type { EventBus } from "../events/event-bus.js";
import type { JobService } from "../jobs/job-service.js";
import type { TrialRegistry } from "../trials/trial-registry.js";
import type { TrialPaths } from "../trials/trial-paths.js";
import type { RuleService } from "../jobs/rule-service.js";
import {
  createHistogramLoader, createReductionLoader, createReductionSeriesLoader, createSeriesLoader, createStatsSeriesLoader,
  createStepValuesLoader, createValueLoader, type SeriesKey, type StepValuesKey, type ValueKey,
} from "./loaders.js";
import type { TensorData } from "../format/tensor.js";
import type { ValueColumn } from "../trials/trial.js";
import type { ScalarSeries, Trial } from "../trials/trial.js";
import type { RuleSummaryRecord } from "../jobs/types.js";
import { ReadBudget, type MemoryPool } from "../trials/budget.js";
import { TrialgraphError } from "../errors.js";

/** Long-lived services, made once at start. */
export interface Services {
  config: Config;
  trials: TrialRegistry;
  /** Known trial paths, the nearest to a mistyped one, and NOT_FOUND errors that name them. */
  trialPaths: TrialPaths;
  jobs: JobService;
  rules: RuleService;
  events: EventBus;
  log: Logger;
  /** Memory all requests in flight may hold together (TRIALGRAPH_MAX_INFLIGHT_MB). */
  memory: MemoryPool;
  /** Follows a growing trial while subscribed; returns the release function. */
  followTrial: (trial: Trial) => () => void;
  /** The job whose trial is at this (normalized) path, if any: its trial may be subscribed to before it exists. */
  jobForTrial?: (path: string) => Promise<import("../jobs/types.js").TrainingJobRecord | null>;
  /** Keeps a job watched while subscribed (SageMaker polling); returns the release function. */
  watchJob?: (jobName: string) => () => void;
}

export interface Caller {
  name: string;
  role: "reader" | "operator";
}

export interface Context {
  services: Services;
  /** Batches every tensor read of this request: one read per event file. */
  values: DataLoader<ValueKey, TensorData, string>;
  /** Batches Tensor.values: one key per tensor. */
  stepValues: DataLoader<StepValuesKey, ValueColumn, StepValuesKey>;
  /** Batches whole scalar series of this request. */
  series: DataLoader<SeriesKey, ScalarSeries, string>;
  /** The service's rule summaries by job name: one database query per request. */
  ruleSummaries: DataLoader<string, RuleSummaryRecord[]>;
  /** Statistics over steps, reductions and histograms, computed on the server (charged to readBudget). */
  statsSeries: ReturnType<typeof createStatsSeriesLoader>;
  reductions: ReturnType<typeof createReductionLoader>;
  reductionSeries: ReturnType<typeof createReductionSeriesLoader>;
  histograms: ReturnType<typeof createHistogramLoader>;
  /**
   * What this request may still return: tensor elements (TRIALGRAPH_MAX_VALUES) and the estimated
   * memory of the answer (TRIALGRAPH_MAX_REQUEST_MB, within TRIALGRAPH_MAX_INFLIGHT_MB). Released
   * when the answer is sent.
   */
  budget: ReadBudget;
  /**
   * Tensor elements this request may still read to compute statistics, histograms and reductions
   * (TRIALGRAPH_MAX_ELEMENTS_READ), counted whether cached or not, so the answer does not depend on
   * the cache; a computation over budget stops reading.
   */
  readBudget: { remaining: number };
  caller: Caller;
  requestId: string;
  /** Aborted when nobody waits for the answer any more (the client went away). */
  signal: AbortSignal;
  /** Called once execution has produced the answer (HTTP: the budget is released once it is also sent). */
  answered?: () => void;
  /**
   * The slot of a heavy operation (AdmissionQueue): `release` gives it back, null while the
   * operation holds none. Given back when the answer is made, or with `untilWritten` (the HTTP
   * handler's requests) once it is handed to the connection or its client left. An object, so
   * Apollo's per-operation copy of the context shares it.
   */
  heavySlot: { release: (() => void) | null; untilWritten: boolean };
}

export function createContext(services: Services, caller: Caller, requestId: string, signal: AbortSignal = new AbortController().signal): Context {
  const { limits } = services.config;
  const budget = new ReadBudget({ maxElements: limits.maxValues, maxBytes: limits.maxRequestBytes }, services.memory);
  const max = limits.maxElementsRead;
  const readBudget = { remaining: max };
  const compute = {
    charge: (elements: number) => {
      readBudget.remaining -= elements;
      if (readBudget.remaining < 0) {
        throw new TrialgraphError("LIMIT_EXCEEDED", `this request reads more than ${max} tensor elements to compute statistics, histograms or reductions; narrow the steps (fromStep/toStep) or the tensors`, { limit: "elementsRead", max });
      }
    },
  };
  return {
    services,
    values: createValueLoader(budget),
    series: createSeriesLoader(budget),
    stepValues: createStepValuesLoader(budget),
    ruleSummaries: new DataLoader<string, RuleSummaryRecord[]>(async (names) => {
      const found = await services.rules.summaries(names);
      return names.map((n) => found.get(n) ?? []);
    }),
    statsSeries: createStatsSeriesLoader(compute),
    reductions: createReductionLoader(compute),
    reductionSeries: createReductionSeriesLoader(compute),
    histograms: createHistogramLoader(compute),
    budget,
    readBudget,
    caller,
    requestId,
    signal,
    heavySlot: { release: null, untilWritten: false },
  };
}
