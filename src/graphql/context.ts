/** The one typed context, built fresh per HTTP request and per subscription event. */
import DataLoader from "dataloader";
import type { Logger } from "pino";
import type { Config } from "../config.js";
import type { EventBus } from "../events/event-bus.js";
import type { JobService } from "../jobs/job-service.js";
import type { TrialRegistry } from "../trials/trial-registry.js";
import type { RuleService } from "../jobs/rule-service.js";
import { createSeriesLoader, createStepValuesLoader, createValueLoader, type SeriesKey, type StepValuesKey, type ValueKey } from "./loaders.js";
import type { TensorData } from "../format/tensor.js";
import type { ScalarSeries, Trial } from "../trials/trial.js";
import { ReadBudget, type MemoryPool } from "../trials/budget.js";

/** Long-lived services, made once at start. */
export interface Services {
  config: Config;
  trials: TrialRegistry;
  jobs: JobService;
  rules: RuleService;
  events: EventBus;
  log: Logger;
  /** Memory all requests in flight may hold together (TRIALGRAPH_MAX_INFLIGHT_MB). */
  memory: MemoryPool;
  /** Follows a growing trial while subscribed; returns the release function. */
  followTrial: (trial: Trial) => () => void;
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
  stepValues: DataLoader<StepValuesKey, (TensorData | Error)[], StepValuesKey>;
  /** Batches whole scalar series of this request. */
  series: DataLoader<SeriesKey, ScalarSeries, string>;
  /**
   * What this request may still read and return: tensor elements (TRIALGRAPH_MAX_VALUES) and the
   * estimated memory of the answer (TRIALGRAPH_MAX_REQUEST_MB, within TRIALGRAPH_MAX_INFLIGHT_MB).
   * Released when the answer is sent.
   */
  budget: ReadBudget;
  caller: Caller;
  requestId: string;
  /** Aborted when nobody waits for the answer any more (the client went away). */
  signal: AbortSignal;
  /** Called once execution has produced the answer (HTTP: the budget is released once it is also sent). */
  answered?: () => void;
}

export function createContext(services: Services, caller: Caller, requestId: string, signal: AbortSignal = new AbortController().signal): Context {
  const { limits } = services.config;
  const budget = new ReadBudget({ maxElements: limits.maxValues, maxBytes: limits.maxRequestBytes }, services.memory);
  return {
    services,
    values: createValueLoader(budget),
    series: createSeriesLoader(budget),
    stepValues: createStepValuesLoader(budget),
    budget,
    caller,
    requestId,
    signal,
  };
}
