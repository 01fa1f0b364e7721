/**
 * The rule engine: evaluates rules over a trial incrementally, like smdebug's rule invoker
 * (spec §8.1). Each rule sees each complete step once, in order; the values every rule needs for a
 * step are fetched in one batched read; statuses go IN_PROGRESS → ISSUES_FOUND / NO_ISSUES_FOUND /
 * ERROR. A growing trial evaluated step by step gives the same result as the whole trial at once,
 * because rules only see steps up to the one being evaluated.
 */
import { internalError, TrialgraphError } from "../errors.js";
import type { Mode, TensorData } from "../format/tensor.js";
import {
  MAX_RULE_FINDINGS, type ParameterValue, type RuleEvaluationStatus, type RuleFinding, type RuleSpec, type RuleSummaryRecord,
} from "../store/records.js";
import type { SavedReduction, Trial } from "../trials/trial.js";
import type { ReductionName } from "../format/reductions.js";
import { computeReduction, hasNumericElements } from "../trials/tensor-stats.js";
import { parseActionJson, postWebhook, type WebhookOptions, type WebhookOutcome } from "./actions.js";
import { DEFAULT_REGISTRY, type RuleRegistry } from "./catalogue.js";
import { missingAlternatives, parseParameters } from "./params.js";
import { countAtOrBefore } from "./steps.js";
import {
  normalizeResult, type ParsedParameters, type RuleAction, type RuleDefinition, type RuleInstance, type StepContext,
  type StepResult, type StepValues, type TensorNamesQuery, type TensorRequest, type TensorSelector, type TrialView,
} from "./types.js";

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

export interface ConfiguredRule {
  configurationName: string;
  definition: RuleDefinition;
  params: ParsedParameters;
  actions: RuleAction[];
  webhookUrl: string | null;
  otherTrials: string[];
}

function ruleNameOf(spec: RuleSpec): string | null {
  const fromParams = spec.parameters?.rule_to_invoke;
  const name = spec.builtin ?? (typeof fromParams === "string" ? fromParams : null) ?? spec.name ?? null;
  return name && name.trim() ? name.trim() : null;
}

/** Resolves a rule spec against the registry and parses its parameters; throws BAD_USER_INPUT. */
export function configureRule(spec: RuleSpec, registry: RuleRegistry = DEFAULT_REGISTRY): ConfiguredRule {
  const name = ruleNameOf(spec);
  if (!name) throw new TrialgraphError("BAD_USER_INPUT", "a rule needs builtin (the rule name)", { field: "builtin" });
  const definition = registry.get(name);
  if (!definition) {
    throw new TrialgraphError(
      "BAD_USER_INPUT",
      `unknown rule ${name}; known rules: ${registry.list().map((d) => d.name).join(", ")}`,
      { field: "builtin" },
    );
  }
  const raw = (spec.parameters ?? {}) as Record<string, ParameterValue>;
  const { params, engine } = parseParameters(definition.name, definition.parameters, raw);
  const problem = missingAlternatives(definition.requiredOneOf, params) ?? definition.validate?.(params);
  if (problem) throw new TrialgraphError("BAD_USER_INPUT", `rule ${definition.name}: ${problem}`, { rule: definition.name });
  const actions = [
    ...(engine.actionJson ? parseActionJson(definition.name, engine.actionJson) : []),
    ...(definition.actions?.(params) ?? []),
  ];
  return {
    configurationName: spec.name?.trim() || definition.name,
    definition,
    params,
    actions,
    webhookUrl: engine.webhookUrl,
    otherTrials: engine.otherTrials,
  };
}

/** Validates rule specs up front (e.g. when a job starts); throws on the first problem. */
export function validateRuleSpecs(specs: readonly RuleSpec[], registry: RuleRegistry = DEFAULT_REGISTRY): ConfiguredRule[] {
  const seen = new Set<string>();
  return specs.map((spec) => {
    const c = configureRule(spec, registry);
    if (seen.has(c.configurationName)) {
      throw new TrialgraphError("BAD_USER_INPUT", `two rules are named ${c.configurationName}; give each a distinct name`, { field: "name" });
    }
    seen.add(c.configurationName);
    return c;
  });
}

// ---------------------------------------------------------------------------------------------
// Trial views
// ---------------------------------------------------------------------------------------------

const MAX_STEP_NAME_LISTS = 64;

/** Whether `name` is in `sorted` (sorted as Array.prototype.sort sorts strings: by UTF-16 code units). */
function sortedHas(sorted: readonly string[], name: string): boolean {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] < name) lo = mid + 1;
    else hi = mid;
  }
  return lo < sorted.length && sorted[lo] === name;
}

/** Per-advance caches over a Trial (names per step, regex and collection matches, steps). */
class TrialCache {
  /**
   * Names saved at a step, as the trial lists them (sorted), looked up by binary search: a Set of
   * every name per evaluated step was most of a one-shot evaluation's garbage (the sets outlived
   * young-generation collections and were promoted to the old generation).
   */
  private namesAt = new Map<number, readonly string[]>();
  private regex = new Map<string, string[]>();
  private members = new Map<string, string[]>();
  private tensorStepLists = new Map<string, number[]>();
  private stepLists = new Map<string, number[]>();

  constructor(readonly trial: Trial) {}

  reset(): void {
    this.namesAt.clear();
    this.regex.clear();
    this.members.clear();
    this.tensorStepLists.clear();
    this.stepLists.clear();
  }

  namesAtStep(global: number): readonly string[] {
    let s = this.namesAt.get(global);
    if (!s) {
      s = this.trial.tensorNames({ step: global });
      if (this.namesAt.size >= MAX_STEP_NAME_LISTS) this.namesAt.delete(this.namesAt.keys().next().value!);
      this.namesAt.set(global, s);
    }
    return s;
  }

  regexMatches(r: string): string[] {
    let m = this.regex.get(r);
    if (!m) this.regex.set(r, (m = this.trial.tensorNames({ regex: r })));
    return m;
  }

  collectionMembers(c: string): string[] {
    let m = this.members.get(c);
    if (!m) this.members.set(c, (m = this.trial.tensorNames({ collection: c })));
    return m;
  }

  tensorSteps(name: string, mode: Mode | null): number[] {
    const key = `${mode ?? "GLOBAL"}\u0000${name}`;
    let s = this.tensorStepLists.get(key);
    if (!s) this.tensorStepLists.set(key, (s = this.trial.tensorSteps(name, mode)));
    return s;
  }

  steps(mode: Mode | null): number[] {
    const key = mode ?? "GLOBAL";
    let s = this.stepLists.get(key);
    if (!s) this.stepLists.set(key, (s = this.trial.steps(mode)));
    return s;
  }

  /** The global step of a (mode, step) request, or null. */
  globalOf(step: number, mode: Mode | null | undefined): number | null {
    if (!mode || mode === "GLOBAL") return step;
    return this.trial.globalStep(mode, step);
  }

  has(name: string, step: number, mode: Mode | null | undefined): boolean {
    const g = this.globalOf(step, mode);
    return g !== null && sortedHas(this.namesAtStep(g), name);
  }

  /** Whether the raw value exists at the step (present, and not only as reductions or a shape). */
  hasValue(name: string, step: number, mode: Mode | null | undefined): boolean {
    return this.has(name, step, mode) && this.trial.hasValue(name, step, mode);
  }
}

/** A TrialView bounded at the step being evaluated (global step `bound`). */
class BoundView implements TrialView {
  bound = Infinity;

  constructor(private readonly c: TrialCache) {}

  get path(): string {
    return this.c.trial.path;
  }

  get trainingEnded(): boolean {
    return this.c.trial.trainingEnded;
  }

  private upTo(list: readonly number[], mode: Mode | null | undefined): number[] {
    if (!mode || mode === "GLOBAL") return list.slice(0, countAtOrBefore(list, this.bound));
    return list.filter((s) => {
      const g = this.c.trial.globalStep(mode, s);
      return g !== null && g <= this.bound;
    });
  }

  steps(mode?: Mode | null): number[] {
    return this.upTo(this.c.steps(mode ?? null), mode);
  }

  modes(): Mode[] {
    return this.c.trial.modes();
  }

  modeOfStep(step: number): { mode: Mode; modeStep: number } | null {
    return step <= this.bound ? this.c.trial.modeOfStep(step) : null;
  }

  globalStep(mode: Mode, modeStep: number): number | null {
    const g = this.c.trial.globalStep(mode, modeStep);
    return g !== null && g <= this.bound ? g : null;
  }

  collectionNames(): string[] {
    return this.c.trial.collectionNames();
  }

  hasTensor(name: string): boolean {
    return this.c.trial.hasTensor(name);
  }

  tensorNames(q: TensorNamesQuery = {}): string[] {
    if (q.step !== undefined && q.step !== null) {
      const g = this.c.globalOf(q.step, q.mode);
      if (g === null || g > this.bound) return [];
    }
    return this.c.trial.tensorNames(q);
  }

  tensorSteps(name: string, mode?: Mode | null): number[] {
    return this.upTo(this.c.tensorSteps(name, mode ?? null), mode);
  }

  lastSteps(name: string, step: number, n: number, mode?: Mode | null): number[] {
    const all = this.c.tensorSteps(name, mode ?? null);
    let end = countAtOrBefore(all, step);
    if (!mode || mode === "GLOBAL") end = Math.min(end, countAtOrBefore(all, this.bound));
    return all.slice(Math.max(0, end - n), end);
  }

  hasValue(name: string, step: number, mode?: Mode | null): boolean {
    const g = this.c.globalOf(step, mode);
    return g !== null && g <= this.bound && this.c.hasValue(name, step, mode);
  }

  savedReductions(name: string, step: number, mode?: Mode | null): SavedReduction[] {
    const g = this.c.globalOf(step, mode);
    return g !== null && g <= this.bound ? this.c.trial.savedReductions(name, step, mode) : [];
  }

  select(sel: TensorSelector, step?: number | null, mode?: Mode | null): string[] {
    let at: readonly string[] | null = null;
    if (step !== undefined && step !== null) {
      const g = this.c.globalOf(step, mode);
      if (g === null || g > this.bound) return [];
      at = this.c.namesAtStep(g);
    }
    const sources: (readonly string[])[] = [
      ...(sel.collections ?? []).map((c) => this.c.collectionMembers(c)),
      ...(sel.regex ?? []).map((r) => this.c.regexMatches(r)),
    ];
    if (sources.length === 1 && !sel.names?.length) {
      // One sorted source: filtering keeps it sorted and unique.
      return at ? sources[0].filter((n) => sortedHas(at!, n)) : [...sources[0]];
    }
    const out = new Set<string>();
    const add = (n: string) => {
      if (at ? sortedHas(at, n) : this.c.trial.hasTensor(n)) out.add(n);
    };
    for (const c of sel.collections ?? []) for (const n of this.c.collectionMembers(c)) add(n);
    for (const r of sel.regex ?? []) for (const n of this.c.regexMatches(r)) add(n);
    for (const n of sel.names ?? []) add(n);
    return [...out].sort();
  }
}

// ---------------------------------------------------------------------------------------------
// Session
// ---------------------------------------------------------------------------------------------

export interface RuleEvaluationResult {
  ruleConfigurationName: string;
  /** The rule evaluated (null when the spec named no known rule). */
  ruleName: string | null;
  status: RuleEvaluationStatus;
  triggeredSteps: number[];
  evaluatedSteps: number;
  statusDetails: string | null;
  findings: RuleFinding[];
}

export interface StopTrainingRequest {
  ruleConfigurationName: string;
  step: number | null;
  /** The prefix from the action (training_job_prefix / training_job_name_prefix), if any. */
  prefix: string | null;
  /** True when no job name is known and `name` is only a prefix: stop the single InProgress job matching it. */
  byPrefix: boolean;
}

export type ActionOutcome =
  | ({ kind: "webhook"; ruleConfigurationName: string } & WebhookOutcome)
  | { kind: "stoptraining"; ruleConfigurationName: string; ok: boolean; jobName: string | null; error: string | null };

export interface RuleSessionOptions {
  /** The watched training job (stop action target, webhook payload). */
  trainingJobName?: string | null;
  registry?: RuleRegistry;
  /** Opens SimilarAcrossRuns' other trials (paths as given in the rule parameters). */
  otherTrialOpener?: (path: string) => Promise<Trial | null>;
  onStatusChange?: (summary: RuleSummaryRecord, previousStatus: RuleEvaluationStatus | null) => void;
  stopTrainingJob?: (name: string, request: StopTrainingRequest) => unknown;
  /** Webhook for firing rules without their own URL; default TRIALGRAPH_WEBHOOK_URL. */
  webhookUrl?: string | null;
  webhook?: WebhookOptions;
  onActionOutcome?: (outcome: ActionOutcome) => void;
  /** Following a running job (default true): missing data may still come. */
  live?: boolean;
  /**
   * Whether firing rules run their actions (stop training, webhooks). Default true for job rules;
   * a one-shot evaluation (the evaluateRules query) never acts: queries have no side effects.
   */
  actions?: boolean;
  /** Whether a rule's own webhook URL may be called (TRIALGRAPH_WEBHOOK_ALLOWED_HOSTS); the session's webhookUrl always may. */
  webhookAllowed?: (url: string) => boolean;
  /** Clock (ms) for StalledTrainingRule. */
  now?: () => number;
  /** Evaluated steps whose values are kept for earlier-step reads (UnchangedTensor, LossNotDecreasing); default 8. */
  recentSteps?: number;
  /** How many advances a rule waits for an event file whose index is already visible (S3 uploads). */
  missingEventFileRetries?: number;
  /**
   * Where rules stood before (a job's evaluation resumed by another process): a rule that had already
   * found issues starts ISSUES_FOUND, so it is not reported again and its actions do not run twice.
   */
  initial?: ReadonlyMap<string, { status: RuleEvaluationStatus; statusDetails: string | null; lastModified: Date | null; findings?: readonly RuleFinding[] }>;
  /** Every evaluation of every rule, for its history (a step evaluated, skipped, or the rule's conclusion). */
  onEvaluation?: (e: RuleEvaluationEvent) => void;
}

/** One evaluation, as a rule's history keeps it. */
export interface RuleEvaluationEvent {
  ruleConfigurationName: string;
  /** "step": a step evaluated (or skipped); "idle": a check between steps; "final": the rule's conclusion; "error": it failed. */
  kind: "step" | "idle" | "final" | "error";
  step: number | null;
  status: RuleEvaluationStatus;
  message: string;
  time: Date;
}

interface RuleState {
  configurationName: string;
  ruleName: string | null;
  config: ConfiguredRule | null;
  instance: RuleInstance | null;
  /** Session-level trial index of each of the rule's other trials. */
  otherIdx: number[];
  status: RuleEvaluationStatus;
  statusDetails: string | null;
  lastModified: Date;
  cursor: number;
  blocked: boolean;
  retries: number;
  evaluatedSteps: number;
  triggeredSteps: number[];
  /** The first MAX_RULE_FINDINGS firings, with the tensors that fired. */
  findings: RuleFinding[];
  everChecked: boolean;
  lastSkipReason: string | null;
  finalized: boolean;
  idleFired: boolean;
}

/**
 * Fetched values by trial and mode, then step, then name: lookups build no string keys. Values stay
 * for a window of recent steps, so earlier-step reads (UnchangedTensor, LossNotDecreasing) hit it.
 */
class ValueStore {
  private byTrialMode = new Map<string, Map<number, Map<string, TensorData>>>();
  /** Read errors of the current step only. */
  errors = new Map<string, TrialgraphError>();

  private steps(t: number, mode: Mode | null | undefined, create: boolean): Map<number, Map<string, TensorData>> | undefined {
    const k = mode && mode !== "GLOBAL" ? `${t}:${mode}` : t === 0 ? "0" : String(t);
    let m = this.byTrialMode.get(k);
    if (!m && create) this.byTrialMode.set(k, (m = new Map()));
    return m;
  }

  get(t: number, name: string, step: number, mode: Mode | null | undefined): TensorData | undefined {
    return this.steps(t, mode, false)?.get(step)?.get(name);
  }

  set(t: number, name: string, step: number, mode: Mode | null | undefined, v: TensorData): void {
    const steps = this.steps(t, mode, true)!;
    let names = steps.get(step);
    if (!names) steps.set(step, (names = new Map()));
    names.set(name, v);
  }

  static errorKey(t: number, name: string, step: number, mode: Mode | null | undefined): string {
    return `${t}\u0001${mode ?? "GLOBAL"}\u0001${step}\u0001${name}`;
  }

  /** Keeps the newest `keep` steps of every (trial, mode). */
  trim(keep: number): void {
    for (const steps of this.byTrialMode.values()) {
      if (steps.size <= keep) continue;
      const sorted = [...steps.keys()].sort((a, b) => a - b);
      for (const s of sorted.slice(0, sorted.length - keep)) steps.delete(s);
    }
  }
}

/** Where a saved reduction is kept in the ValueStore (a control character: never a tensor name). */
function savedReductionKey(name: string, reduction: ReductionName, abs: boolean): string {
  return `\u0002${abs ? "abs_" : ""}${reduction}\u0002${name}`;
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Bounds on what one finding keeps: custom rules may return anything. */
const MAX_FINDING_TENSORS = 16;
const MAX_FINDING_MESSAGE = 500;

function findingOf(step: number, at: { mode: Mode; modeStep: number }, result: StepResult): RuleFinding {
  const names = [...(result.tensor ? [result.tensor] : []), ...(Array.isArray(result.tensors) ? result.tensors : [])]
    .filter((n): n is string => typeof n === "string" && n.length > 0);
  const message = result.details ?? "condition met";
  return {
    step,
    mode: at.mode,
    modeStep: at.modeStep,
    tensorNames: [...new Set(names)].slice(0, MAX_FINDING_TENSORS),
    message: message.length > MAX_FINDING_MESSAGE ? `${message.slice(0, MAX_FINDING_MESSAGE - 1)}…` : message,
  };
}

function copyFinding(f: RuleFinding): RuleFinding {
  return { ...f, tensorNames: [...f.tensorNames] };
}

class ValuesView implements StepValues {
  constructor(
    private readonly store: ValueStore,
    private readonly step: number,
    private readonly otherIdx: number[],
  ) {}

  get(name: string, step = this.step, opts: { mode?: Mode | null; trial?: number } = {}): TensorData | undefined {
    const t = opts.trial ? this.otherIdx[opts.trial - 1] : 0;
    if (t === undefined) return undefined;
    return this.store.get(t, name, step, opts.mode);
  }

  scalar(name: string, step?: number, opts?: { mode?: Mode | null; trial?: number }): number | undefined {
    const v = this.get(name, step, opts)?.values;
    return v && v.length === 1 ? v[0] : undefined;
  }

  reduction(name: string, reduction: ReductionName, abs: boolean, step?: number, opts?: { mode?: Mode | null; trial?: number }): number | undefined {
    const saved = this.scalar(savedReductionKey(name, reduction, abs), step, opts);
    if (saved !== undefined) return saved;
    const raw = this.get(name, step, opts);
    return raw && hasNumericElements(raw) && raw.values!.length > 0 ? computeReduction(raw.values!, reduction, abs) : undefined;
  }
}

const NOT_YET = /not (completely written|available) yet|does not exist \(yet\)/;

/** "<rule> found an issue at step S (tensor T): details" — a firing's statusDetails. */
function firingMessage(ruleName: string | null, step: number | null, result: StepResult): string {
  const where = step === null ? "" : ` at step ${step}`;
  const tensor = result.tensor ? ` (tensor ${result.tensor})` : "";
  return `${ruleName} found an issue${where}${tensor}: ${result.details ?? "condition met"}`;
}

export class RuleSession {
  private readonly rules: RuleState[] = [];
  private readonly caches: TrialCache[];
  private readonly views: BoundView[];
  private readonly store = new ValueStore();
  private chain: Promise<unknown> = Promise.resolve();
  private started = false;
  private lastProgressAt: number;
  private lastSeenStep: number | null = null;
  private pending = new Set<Promise<unknown>>();
  /** Instances being released (custom rules' workers exiting). */
  private readonly freeing = new Set<Promise<void>>();
  private readonly live: boolean;
  private readonly now: () => number;
  private closed = false;

  private constructor(
    readonly trial: Trial,
    private readonly otherTrials: Trial[],
    private readonly opts: RuleSessionOptions,
  ) {
    this.live = opts.live ?? true;
    this.now = opts.now ?? Date.now;
    this.lastProgressAt = this.now();
    this.caches = [trial, ...otherTrials].map((t) => new TrialCache(t));
    this.views = this.caches.map((c) => new BoundView(c));
  }

  /** Configures the rules (bad ones start in ERROR with the reason) and opens other trials. */
  static async create(trial: Trial, specs: readonly RuleSpec[], opts: RuleSessionOptions = {}): Promise<RuleSession> {
    const registry = opts.registry ?? DEFAULT_REGISTRY;
    const others: Trial[] = [];
    const otherByPath = new Map<string, number>();
    const states: RuleState[] = [];
    const names = new Set<string>();
    for (const spec of specs) {
      const state: RuleState = {
        configurationName: spec.name?.trim() || ruleNameOf(spec) || "rule",
        ruleName: null, config: null, instance: null, otherIdx: [],
        status: "IN_PROGRESS", statusDetails: null, lastModified: new Date(opts.now?.() ?? Date.now()),
        cursor: -Infinity, blocked: false, retries: 0, evaluatedSteps: 0, triggeredSteps: [], findings: [], everChecked: false,
        lastSkipReason: null, finalized: false, idleFired: false,
      };
      states.push(state);
      const named = ruleNameOf(spec);
      state.ruleName = named ? registry.get(named)?.name ?? null : null;
      try {
        const config = configureRule(spec, registry);
        state.config = config;
        state.ruleName = config.definition.name;
        state.configurationName = config.configurationName;
        if (names.has(state.configurationName)) throw new Error(`another rule is also named ${state.configurationName}`);
        for (const p of config.otherTrials) {
          let idx = otherByPath.get(p);
          if (idx === undefined) {
            if (!opts.otherTrialOpener) throw new Error(`cannot open other trial ${p}: no trial opener configured`);
            let t: Trial | null;
            try {
              t = await opts.otherTrialOpener(p);
            } catch (e) {
              throw new Error(`cannot open other trial ${p}: ${describe(e)}`);
            }
            if (!t) throw new Error(`other trial ${p} not found`);
            idx = others.push(t);
            otherByPath.set(p, idx);
          }
          state.otherIdx.push(idx);
        }
        state.instance = await config.definition.create(config.params);
        const before = opts.initial?.get(state.configurationName);
        if (before?.status === "ISSUES_FOUND") {
          state.status = "ISSUES_FOUND";
          state.statusDetails = before.statusDetails;
          state.lastModified = before.lastModified ?? state.lastModified;
          state.findings = (before.findings ?? []).map(copyFinding);
          state.triggeredSteps = state.findings.map((f) => f.step);
        }
      } catch (e) {
        state.status = "ERROR";
        state.statusDetails = describe(e);
        state.finalized = true;
      }
      names.add(state.configurationName);
    }
    const session = new RuleSession(trial, others, opts);
    session.rules.push(...states);
    return session;
  }

  /** Current summaries (RuleSummaryRecord, evaluator SERVICE). */
  get summaries(): RuleSummaryRecord[] {
    return this.rules.map((r) => this.summaryOf(r));
  }

  results(): RuleEvaluationResult[] {
    return this.rules.map((r) => ({
      ruleConfigurationName: r.configurationName,
      ruleName: r.ruleName,
      status: r.status,
      triggeredSteps: [...r.triggeredSteps],
      evaluatedSteps: r.evaluatedSteps,
      statusDetails: r.statusDetails,
      findings: r.findings.map(copyFinding),
    }));
  }

  /** Names of the rules that have their final status. */
  finishedRules(): string[] {
    return this.rules.filter((r) => r.finalized).map((r) => r.configurationName);
  }

  /** Every rule has its final status. */
  get done(): boolean {
    return this.rules.every((r) => r.finalized);
  }

  /**
   * Evaluates the steps that became complete since the last call (call it after trial.refresh()).
   * With `final` (or once the trial ended) the remaining rules get their final status: use it for
   * jobs whose trial never gets an end marker (SageMaker) once the job ended.
   */
  advance(opts: { final?: boolean } = {}): Promise<RuleSummaryRecord[]> {
    const run = this.chain.then(() => this.doAdvance(!!opts.final));
    this.chain = run.catch(() => undefined);
    return run.then(() => this.summaries);
  }

  /** The job stopped or failed: rules without a final status become STOPPED. */
  stop(): Promise<RuleSummaryRecord[]> {
    const run = this.chain.then(() => {
      for (const r of this.rules) {
        if (r.finalized) continue;
        r.finalized = true;
        this.release(r);
        if (r.status === "IN_PROGRESS") this.setStatus(r, "STOPPED", `the training job ended before the rule finished (${r.evaluatedSteps} steps evaluated)`);
        this.record(r, "final", this.lastSeenStep, r.statusDetails ?? r.status);
      }
    });
    this.chain = run.catch(() => undefined);
    return run.then(() => this.summaries);
  }

  /** Resolves when every webhook and stop action started so far has finished. */
  async whenActionsSettled(): Promise<void> {
    while (this.pending.size) await Promise.allSettled([...this.pending]);
  }

  /**
   * Follows the trial until every rule is final: refresh, advance, sleep. For jobs whose trial has
   * no end marker, call advance({ final: true }) from outside when the job ends.
   */
  async follow(opts: { intervalMs?: number; signal?: AbortSignal } = {}): Promise<void> {
    const interval = opts.intervalMs ?? 2000;
    while (!this.done && !opts.signal?.aborted) {
      try {
        await this.trial.refresh();
      } catch {
        // a failed refresh (network) is retried on the next round
      }
      await this.advance();
      if (this.done) break;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, interval);
        opts.signal?.addEventListener("abort", () => {
          clearTimeout(t);
          resolve();
        }, { once: true });
      });
    }
  }

  private summaryOf(r: RuleState): RuleSummaryRecord {
    return {
      ruleConfigurationName: r.configurationName,
      ruleEvaluationJobArn: null,
      status: r.status,
      statusDetails: r.statusDetails,
      lastModifiedTime: r.lastModified,
      evaluator: "SERVICE",
      findings: r.findings.map(copyFinding),
    };
  }

  private setStatus(r: RuleState, status: RuleEvaluationStatus, details: string | null): void {
    const previous = r.status;
    r.status = status;
    r.statusDetails = details;
    r.lastModified = new Date(this.now());
    if (previous !== status) this.emit(r, previous);
  }

  private emit(r: RuleState, previous: RuleEvaluationStatus | null): void {
    try {
      this.opts.onStatusChange?.(this.summaryOf(r), previous);
    } catch {
      // a subscriber's failure must not stop evaluation
    }
  }

  private record(r: RuleState, kind: RuleEvaluationEvent["kind"], step: number | null, message: string): void {
    if (!this.opts.onEvaluation) return;
    try {
      this.opts.onEvaluation({ ruleConfigurationName: r.configurationName, kind, step, status: r.status, message, time: new Date(this.now()) });
    } catch {
      // history is best effort: it must not stop evaluation
    }
  }

  private fail(r: RuleState, reason: string, step: number | null = null): void {
    r.finalized = true;
    this.setStatus(r, "ERROR", reason);
    this.record(r, "error", step, reason);
    this.release(r);
  }

  /** A finalized rule's instance is no longer needed (a custom rule's worker ends). */
  private release(r: RuleState): void {
    try {
      const freed = r.instance?.dispose?.();
      if (isPromise(freed)) this.freeing.add(freed.catch(() => undefined));
    } catch {
      // best effort
    }
  }

  /**
   * Nobody waits for this session any more (the client left, the job's rules were closed): every
   * instance is released and advances stop at the next step. Settles once what the instances held
   * is freed (custom rules' threads have exited).
   */
  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      for (const r of this.rules) this.release(r);
    }
    return Promise.all(this.freeing).then(() => undefined);
  }

  private async doAdvance(final: boolean): Promise<void> {
    if (!this.started) {
      this.started = true;
      for (const r of this.rules) this.emit(r, null);
    }
    for (const c of this.caches) c.reset();
    if (this.live) {
      await Promise.all(this.otherTrials.map((t) => (t.trainingEnded ? null : t.refresh().catch(() => null))));
    }
    const now = this.now();
    const steps = this.trial.steps();
    const newest = steps.length ? steps[steps.length - 1] : null;
    if (newest !== this.lastSeenStep) {
      this.lastSeenStep = newest;
      this.lastProgressAt = now;
    }
    const active = this.rules.filter((r) => !r.finalized && r.instance);
    for (const r of active) r.blocked = false;
    if (active.length && steps.length) {
      const minCursor = Math.min(...active.map((r) => r.cursor));
      for (let i = countAtOrBefore(steps, minCursor); i < steps.length; i++) {
        if (this.closed) return;
        const step = steps[i];
        const participants = active.filter((r) => !r.finalized && !r.blocked && r.cursor < step);
        if (participants.length) await this.evaluateStep(step, participants);
      }
    }
    const ended = this.trial.trainingEnded;
    if (this.live && !final && !ended) await this.checkIdle(now);
    if (final || ended) {
      for (const r of this.rules) {
        if (r.finalized || r.blocked) continue;
        r.finalized = true;
        this.release(r);
        if (r.status !== "IN_PROGRESS") {
          this.record(r, "final", this.lastSeenStep, `evaluation finished after ${r.evaluatedSteps} step(s); issues at step(s) ${r.triggeredSteps.slice(0, 20).join(", ")}${r.triggeredSteps.length > 20 ? ", …" : ""}`);
          continue;
        }
        if (!r.everChecked) {
          const why = r.instance?.missingRequirement?.() ?? "its required tensors were never found";
          this.setStatus(r, "ERROR", `required tensors absent: ${why}` + (r.lastSkipReason ? ` (last error: ${r.lastSkipReason})` : ""));
        } else {
          this.setStatus(r, "NO_ISSUES_FOUND", `no issues found in ${r.evaluatedSteps} evaluated step(s)`
            + (this.lastSeenStep !== null ? ` up to step ${this.lastSeenStep}` : ""));
        }
        this.record(r, "final", this.lastSeenStep, r.statusDetails ?? r.status);
      }
    }
  }

  private async evaluateStep(step: number, participants: RuleState[]): Promise<void> {
    for (const v of this.views) v.bound = step;
    const m = this.trial.modeOfStep(step) ?? { mode: "GLOBAL" as Mode, modeStep: step };
    const plans: { r: RuleState; ctx: StepContext; reqs: TensorRequest[] }[] = [];
    for (const r of participants) {
      const ctx: StepContext = {
        step, mode: m.mode, modeStep: m.modeStep,
        trial: this.views[0],
        otherTrials: r.otherIdx.map((i) => this.views[i]),
        params: r.config!.params,
        live: this.live,
      };
      let req;
      try {
        req = r.instance!.requiredTensors(ctx);
        if (isPromise(req)) req = await req;
      } catch (e) {
        this.fail(r, `rule ${r.ruleName} failed at step ${step}: ${describe(e)}`, step);
        continue;
      }
      if (!Array.isArray(req)) {
        if (req && (req as { defer?: boolean }).defer) {
          r.blocked = true;
          continue;
        }
        this.fail(r, `rule ${r.ruleName}: requiredTensors returned neither a list nor a deferral at step ${step}`, step);
        continue;
      }
      plans.push({ r, ctx, reqs: req });
    }
    await this.fetch(plans);
    const errors = this.store.errors;
    for (const { r, ctx, reqs } of plans) {
      let failed: TrialgraphError | undefined;
      if (errors.size) {
        for (const q of reqs) {
          const t = q.trial ? r.otherIdx[q.trial - 1] ?? -1 : 0;
          failed = errors.get(ValueStore.errorKey(t, q.name, q.step, q.mode))
            ?? (q.reduction ? errors.get(ValueStore.errorKey(t, savedReductionKey(q.name, q.reduction, !!q.abs), q.step, q.mode)) : undefined);
          if (failed) break;
        }
      }
      if (failed) {
        // An index can be visible before its event file (S3 uploads): wait for it while the job runs.
        const retries = this.opts.missingEventFileRetries ?? 30;
        if (this.live && !this.trial.trainingEnded && NOT_YET.test(failed.message) && r.retries < retries) {
          r.retries++;
          r.blocked = true;
          continue;
        }
        r.retries = 0;
        r.cursor = step;
        r.lastSkipReason = failed.message; // smdebug logs TensorUnavailableForStep and goes on
        this.record(r, "step", step, `skipped: ${failed.message}`);
        continue;
      }
      r.retries = 0;
      let result: StepResult;
      try {
        const out = r.instance!.invokeAtStep(ctx, new ValuesView(this.store, step, r.otherIdx));
        result = normalizeResult(isPromise(out) ? await out : out);
      } catch (e) {
        this.fail(r, `rule ${r.ruleName} failed at step ${step}: ${describe(e)}`, step);
        continue;
      }
      r.cursor = step;
      r.evaluatedSteps++;
      const checked = typeof result.checked === "number" ? result.checked : reqs.length;
      if (checked > 0) r.everChecked = true;
      if (result.fired) this.fire(r, step, result, ctx);
      this.record(r, "step", step, result.fired
        ? firingMessage(r.ruleName, step, result)
        : result.details ?? `no issue (${checked} tensor value(s) checked)`);
    }
  }

  /** Reads what the plans need into the store, in one batch per trial; absent tensors are skipped. */
  private async fetch(plans: { r: RuleState; reqs: TensorRequest[] }[]): Promise<void> {
    this.store.errors = new Map();
    this.store.trim(this.opts.recentSteps ?? 16);
    // What each request reads: the raw value, or the record of a saved reduction (kept under its own key).
    const pending = new Map<number, { name: string; storeAs: string; step: number; mode?: Mode | null }[]>();
    for (const { r, reqs } of plans) {
      for (const q of reqs) {
        const t = q.trial ? r.otherIdx[q.trial - 1] ?? -1 : 0;
        const cache = this.caches[t];
        if (!cache) continue;
        let name = q.name;
        let storeAs = q.name;
        const record = q.reduction ? cache.trial.savedReductionRecord(q.name, q.step, q.mode, q.reduction, !!q.abs) : null;
        if (record) {
          if (!cache.has(q.name, q.step, q.mode)) continue;
          name = record;
          storeAs = savedReductionKey(q.name, q.reduction!, !!q.abs);
        } else if (!cache.hasValue(q.name, q.step, q.mode)) continue; // absent, or only reductions or a shape
        if (this.store.get(t, storeAs, q.step, q.mode)) continue;
        let list = pending.get(t);
        if (!list) pending.set(t, (list = []));
        list.push({ name, storeAs, step: q.step, mode: q.mode });
      }
    }
    await Promise.all([...pending].map(async ([t, list]) => {
      // Two rules may ask for the same value: read it once (nested sets: no string keys per request).
      const seen = new Map<string, Map<number, Set<string>>>();
      const unique = list.filter((q) => {
        const mode = q.mode ?? "GLOBAL";
        let bySteps = seen.get(mode);
        if (!bySteps) seen.set(mode, (bySteps = new Map()));
        let names = bySteps.get(q.step);
        if (!names) bySteps.set(q.step, (names = new Set()));
        if (names.has(q.storeAs)) return false;
        names.add(q.storeAs);
        return true;
      });
      let values: (TensorData | TrialgraphError)[];
      try {
        values = await this.caches[t].trial.values(unique.map((q) => ({ name: q.name, step: q.step, mode: q.mode ?? null })));
      } catch (e) {
        const err = e instanceof TrialgraphError ? e : internalError("reading a rule's tensors failed", e);
        values = unique.map(() => err);
      }
      for (let i = 0; i < unique.length; i++) {
        const q = unique[i];
        const v = values[i];
        if (v instanceof Error) this.store.errors.set(ValueStore.errorKey(t, q.storeAs, q.step, q.mode), v);
        else this.store.set(t, q.storeAs, q.step, q.mode, v);
      }
    }));
  }

  private async checkIdle(now: number): Promise<void> {
    for (const r of this.rules) {
      if (r.finalized || !r.instance?.checkIdle || r.status !== "IN_PROGRESS" || r.idleFired) continue;
      let res: StepResult | boolean | null;
      try {
        const out = r.instance.checkIdle({
          now,
          idleSeconds: (now - this.lastProgressAt) / 1000,
          lastStep: this.lastSeenStep,
          trainingEnded: this.trial.trainingEnded,
          params: r.config!.params,
        });
        res = isPromise(out) ? await out : out;
      } catch (e) {
        this.fail(r, `rule ${r.ruleName} failed while checking for a stall: ${describe(e)}`, this.lastSeenStep);
        continue;
      }
      const result = normalizeResult(res);
      if (result.fired) {
        r.idleFired = true;
        r.everChecked = true;
        const at = this.lastSeenStep === null ? null : this.trial.modeOfStep(this.lastSeenStep);
        this.fire(r, this.lastSeenStep, result, at ?? { mode: "GLOBAL", modeStep: this.lastSeenStep ?? 0 });
        this.record(r, "idle", this.lastSeenStep, firingMessage(r.ruleName, this.lastSeenStep, result));
      }
    }
  }

  private fire(r: RuleState, step: number | null, result: StepResult, at: { mode: Mode; modeStep: number }): void {
    if (step !== null && !r.triggeredSteps.includes(step)) {
      r.triggeredSteps.push(step);
      if (r.findings.length < MAX_RULE_FINDINGS) r.findings.push(findingOf(step, at, result));
    }
    if (r.status !== "IN_PROGRESS") return; // ISSUES_FOUND is kept; later firings only add steps
    this.setStatus(r, "ISSUES_FOUND", firingMessage(r.ruleName, step, result));
    this.runActions(r, step, result);
  }

  private track(p: Promise<unknown>): void {
    const tracked = p.catch(() => undefined).finally(() => this.pending.delete(tracked));
    this.pending.add(tracked);
  }

  /** Actions run once per rule, on its first firing, in the background. */
  private runActions(r: RuleState, step: number | null, result: StepResult): void {
    if (this.opts.actions === false) return;
    const config = r.config!;
    const jobName = this.opts.trainingJobName ?? null;
    const report = (o: ActionOutcome) => {
      try {
        this.opts.onActionOutcome?.(o);
      } catch {
        // reporting is best effort
      }
    };
    for (const a of config.actions) {
      if (a.kind !== "stoptraining") continue;
      const stop = this.opts.stopTrainingJob;
      let target: string | null = null;
      let byPrefix = false;
      if (jobName && (!a.prefix || jobName.startsWith(a.prefix))) target = jobName;
      else if (!jobName && a.prefix) {
        target = a.prefix;
        byPrefix = true;
      }
      if (!stop || !target) {
        report({
          kind: "stoptraining", ruleConfigurationName: r.configurationName, ok: false, jobName: target,
          error: !stop ? "no way to stop training jobs here" : `no job matches prefix ${a.prefix}`,
        });
        continue;
      }
      this.track((async () => {
        try {
          await stop(target!, { ruleConfigurationName: r.configurationName, step, prefix: a.prefix, byPrefix });
          report({ kind: "stoptraining", ruleConfigurationName: r.configurationName, ok: true, jobName: target, error: null });
        } catch (e) {
          report({ kind: "stoptraining", ruleConfigurationName: r.configurationName, ok: false, jobName: target, error: describe(e) });
        }
      })());
    }
    const fallback = config.webhookUrl
      ?? (this.opts.webhookUrl !== undefined ? this.opts.webhookUrl : process.env.TRIALGRAPH_WEBHOOK_URL || null);
    const urls = new Set<string>();
    const notifications = config.actions.filter((a): a is Extract<RuleAction, { kind: "notify" }> => a.kind === "notify");
    for (const a of notifications) {
      const url = a.url ?? fallback;
      if (url) urls.add(url);
    }
    if (fallback) urls.add(fallback);
    if (!urls.size) return;
    const summary = this.summaryOf(r);
    const body = {
      event: "RuleIssuesFound",
      subject: `SMDebugRule:${r.ruleName} fired`,
      trainingJobName: jobName,
      trialPath: this.trial.path,
      ruleConfigurationName: r.configurationName,
      ruleName: r.ruleName,
      ruleEvaluationStatus: summary.status,
      statusDetails: summary.statusDetails,
      lastModifiedTime: summary.lastModifiedTime?.toISOString() ?? null,
      evaluator: summary.evaluator,
      step,
      tensor: result.tensor ?? null,
      notify: notifications.map((a) => ({ name: a.channel, endpoint: a.endpoint })),
    };
    for (const url of urls) {
      if (url !== fallback && this.opts.webhookAllowed && !this.opts.webhookAllowed(url)) {
        report({ kind: "webhook", ruleConfigurationName: r.configurationName, url, ok: false, attempts: 0, status: null, error: "the URL's host is not in TRIALGRAPH_WEBHOOK_ALLOWED_HOSTS" });
        continue;
      }
      this.track(postWebhook(url, body, this.opts.webhook).then((o) => report({ kind: "webhook", ruleConfigurationName: r.configurationName, ...o })));
    }
  }
}

/** The live watch the job layer uses; the same class as RuleSession. */
export { RuleSession as RuleWatch };

/**
 * One-shot evaluation of rules over a trial as it stands: every complete step, in order, then the
 * final status (the trial is taken as finished even without an end marker). It only reports: a
 * firing rule's actions (stop training, webhooks) never run.
 */
export async function evaluateRules(
  trial: Trial,
  specs: readonly RuleSpec[],
  opts: Omit<RuleSessionOptions, "live" | "onStatusChange" | "actions"> & { signal?: AbortSignal } = {},
): Promise<RuleEvaluationResult[]> {
  const session = await RuleSession.create(trial, specs, { ...opts, live: false, actions: false });
  // The client left: custom rules' workers end now, and no further step is evaluated.
  const stop = () => void session.close();
  opts.signal?.addEventListener("abort", stop, { once: true });
  try {
    if (!opts.signal?.aborted) await session.advance({ final: true });
    return session.results();
  } finally {
    opts.signal?.removeEventListener("abort", stop);
    // Returns once the custom rules' threads have exited: a queue of evaluations (one at a time) then
    // never has the next one's workers starting beside the last one's, whose heaps are not yet freed.
    await session.close();
  }
}

function isPromise<T>(v: T | Promise<T>): v is Promise<T> {
  return typeof (v as { then?: unknown } | null)?.then === "function";
}
