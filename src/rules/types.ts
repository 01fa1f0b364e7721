/**
 * The rule contract shared by the built-in rules and custom rules (TRIALGRAPH_RULES_DIR).
 *
 * It mirrors smdebug's Rule base class (spec §8.1): a rule names the tensors it needs for a step
 * (`requiredTensors`, smdebug's set_required_tensors), the engine fetches all of them in one batch
 * (smdebug's req_tensors.fetch), then calls the synchronous step handler (`invokeAtStep`).
 */
import type { Mode, TensorData } from "../format/tensor.js";
import type { ReductionName } from "../format/reductions.js";
import type { SavedReduction } from "../trials/trial.js";

/** numberList: "0, 3" → [0, 3]; range: "(-9.5, 9.5)" (a Python tuple as SageMaker passes it) → [-9.5, 9.5]. */
export type ParamType = "number" | "integer" | "boolean" | "string" | "list" | "regexList" | "mode" | "json" | "numberList" | "range";
/** A parsed parameter: null is Python's None. */
export type ParamValue = number | boolean | string | string[] | number[] | null;
export type ParsedParameters = Record<string, ParamValue>;

export interface ParameterSpec {
  name: string;
  /** How the string SageMaker passes is parsed. Custom rules may omit it ("string"). */
  type?: ParamType;
  /** The documented default (already parsed); null = None. */
  default: ParamValue;
  description: string;
  required?: boolean;
  min?: number;
  max?: number;
  minExclusive?: boolean;
  maxExclusive?: boolean;
  /** Shown as the default when it differs from the parsed default (e.g. mode: "GLOBAL" in the docs' table). */
  shownDefault?: string | null;
}

/** One (tensor, step) value a rule needs; `step` is a mode step when `mode` is a non-GLOBAL mode. */
export interface TensorRequest {
  name: string;
  step: number;
  mode?: Mode | null;
  /** 0 = the base trial (default), i = other trial i-1. */
  trial?: number;
  /**
   * A reduction of the tensor instead of its value (read it with StepValues.reduction): the one the
   * hook saved when there is one, else computed from the raw value — smdebug's reduction_value.
   */
  reduction?: ReductionName;
  abs?: boolean;
}

export interface TensorNamesQuery {
  regex?: string | string[] | null;
  collection?: string | null;
  mode?: Mode | null;
  step?: number | null;
}

export interface TensorSelector {
  collections?: readonly string[] | null;
  regex?: readonly string[] | null;
  names?: readonly string[] | null;
}

/**
 * A read-only, synchronous view of a trial as of the step being evaluated: steps after it are
 * hidden, so a rule sees the same thing whether the trial is growing or complete.
 */
export interface TrialView {
  readonly path: string;
  readonly trainingEnded: boolean;
  /** Complete steps up to the evaluated step (mode steps for a non-GLOBAL mode). */
  steps(mode?: Mode | null): number[];
  modes(): Mode[];
  modeOfStep(step: number): { mode: Mode; modeStep: number } | null;
  globalStep(mode: Mode, modeStep: number): number | null;
  collectionNames(): string[];
  hasTensor(name: string): boolean;
  tensorNames(q?: TensorNamesQuery): string[];
  /** Steps at which the tensor was saved, up to the evaluated step. */
  tensorSteps(name: string, mode?: Mode | null): number[];
  /** The last `n` steps of the tensor at or before `step` (smdebug's prev_steps plus the step itself). */
  lastSteps(name: string, step: number, n: number, mode?: Mode | null): number[];
  /** Union of collection members, regex matches and plain names, saved at `step` (any step if omitted). */
  select(sel: TensorSelector, step?: number | null, mode?: Mode | null): string[];
  /** Whether the tensor's raw value was saved at the step (not only its reductions or shape). */
  hasValue(name: string, step: number, mode?: Mode | null): boolean;
  /** Reductions the hook saved for the tensor at the step. */
  savedReductions(name: string, step: number, mode?: Mode | null): SavedReduction[];
}

export interface StepContext {
  /** The global step being evaluated. */
  step: number;
  mode: Mode;
  modeStep: number;
  trial: TrialView;
  /** Other trials (SimilarAcrossRuns), same step bound. */
  otherTrials: TrialView[];
  params: ParsedParameters;
  /** True while following a running job (a missing step of another trial may still come). */
  live: boolean;
}

export interface StepValues {
  get(name: string, step?: number, opts?: { mode?: Mode | null; trial?: number }): TensorData | undefined;
  /** The single element of a numeric tensor, or undefined when absent or not a scalar. */
  scalar(name: string, step?: number, opts?: { mode?: Mode | null; trial?: number }): number | undefined;
  /**
   * A reduction requested with TensorRequest.reduction: the saved one, else computed from the raw
   * value; undefined when neither was read.
   */
  reduction(name: string, reduction: ReductionName, abs: boolean, step?: number, opts?: { mode?: Mode | null; trial?: number }): number | undefined;
}

export interface StepResult {
  fired: boolean;
  /** The tensor that met the condition (named in statusDetails). */
  tensor?: string | null;
  /** Every tensor that met the condition at this step, when several did (`tensor` is the first). */
  tensors?: string[] | null;
  details?: string | null;
  /**
   * How many tensors the handler actually looked at. A rule that never looks at anything over the
   * whole trial ends in ERROR (its required tensors are absent). Defaults to the values fetched.
   */
  checked?: number;
}

export type RequiredTensors = TensorRequest[] | { defer: true; reason?: string };

export interface IdleContext {
  /** ms since the epoch. */
  now: number;
  /** Seconds since the engine last saw a new step (or started watching). */
  idleSeconds: number;
  lastStep: number | null;
  trainingEnded: boolean;
  params: ParsedParameters;
}

/** Built-in rules answer synchronously; custom rules (run in a worker thread) answer with promises. */
export type MaybePromise<T> = T | Promise<T>;

export interface RuleInstance {
  requiredTensors(ctx: StepContext): MaybePromise<RequiredTensors>;
  invokeAtStep(ctx: StepContext, values: StepValues): MaybePromise<StepResult | boolean>;
  /** Wall-clock checks between steps (StalledTrainingRule), called on every advance of a live watch. */
  checkIdle?(ctx: IdleContext): MaybePromise<StepResult | boolean | null>;
  /** What was required, for the ERROR raised when nothing was ever checked. */
  missingRequirement?(): string;
  /** Frees what the instance holds (a custom rule's worker) once nobody needs it; settles when it is freed. */
  dispose?(): MaybePromise<void>;
}

/** What happens when a rule fires (smdebug's action_json, spec §8.1). */
export type RuleAction =
  | { kind: "stoptraining"; prefix: string | null }
  | { kind: "notify"; channel: "email" | "sms" | "webhook"; endpoint: string | null; url: string | null };

export interface RuleDefinition {
  name: string;
  description: string;
  appliesToXgboost: boolean;
  parameters: ParameterSpec[];
  /**
   * Alternatives: groups of parameters of which at least one must be given (AllZero needs
   * collection_names or tensor_regex). Checked before `validate`, and shown by builtinRules.
   */
  requiredOneOf?: readonly (readonly string[])[];
  /** Checks across parameters; returns an error message or null. */
  validate?(params: ParsedParameters): string | null;
  create(params: ParsedParameters): MaybePromise<RuleInstance>;
  /** Actions implied by the rule's own parameters (StalledTrainingRule's stop_training_on_fire). */
  actions?(params: ParsedParameters): RuleAction[];
  source: "builtin" | "custom";
  /** Custom rules: the file they came from. */
  file?: string;
}

export function normalizeResult(r: StepResult | boolean | null | undefined): StepResult {
  if (typeof r === "boolean") return { fired: r };
  if (!r || typeof r !== "object") return { fired: false };
  return r;
}
