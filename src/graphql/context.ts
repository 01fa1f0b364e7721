/** The one typed context, built fresh per HTTP request and per subscription event. */
import DataLoader from "dataloader";
import type { Logger } from "pino";
import type { Config } from "../config.js";
import type { EventBus } from "../events/event-bus.js";
import type { JobService } from "../jobs/job-service.js";
import type { TrialRegistry } from "../trials/trial-registry.js";
import type { TrialPaths } from "../trials/trial-paths.js";
import type { RuleService } from "../jobs/rule-service.js";
import { createSeriesLoader, createStepValuesLoader, createValueLoader, type SeriesKey, type StepValuesKey, type ValueKey } from "./loaders.js";
import type { TensorData } from "../format/tensor.js";
import type { ScalarSeries, Trial } from "../trials/trial.js";

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
  /** Tensor elements this request may still return (TRIALGRAPH_MAX_VALUES). */
  valueBudget: { remaining: number };
  caller: Caller;
  requestId: string;
}

export function createContext(services: Services, caller: Caller, requestId: string): Context {
  return {
    services,
    values: createValueLoader(),
    series: createSeriesLoader(),
    stepValues: createStepValuesLoader(),
    valueBudget: { remaining: services.config.limits.maxValues },
    caller,
    requestId,
  };
}
