/**
 * Custom rules: JavaScript modules dropped in TRIALGRAPH_RULES_DIR, with the same contract as the
 * built-ins (./types.ts).
 *
 * The rules folder is trusted code, like the service itself: a rule can do anything the process
 * can (node:vm is not a security boundary, and a rule can reach the file system). What the service
 * does guarantee is availability: each rule instance runs in its own worker thread, with
 *   - a heap limit (TRIALGRAPH_RULE_MEMORY_MB): a rule that allocates too much ends in ERROR,
 *   - a time limit per call (TRIALGRAPH_RULE_STEP_TIMEOUT_MS) and per evaluation, all its calls
 *     together (TRIALGRAPH_RULE_EVALUATION_TIMEOUT_MS): a rule that loops ends in ERROR,
 *   - no share of the service's environment (API tokens and credentials are not in its process.env),
 * and it is terminated as soon as nobody waits for it (the evaluateRules client left, the job's rules
 * ended). The event loop of the service never runs rule code.
 *
 * A rule calls its step context synchronously (ctx.trial.tensorNames(…), values.scalar(…)): the worker
 * blocks on Atomics.wait while the service answers over a MessagePort.
 *
 * Module shape (CommonJS):
 *   module.exports = {
 *     name: "MyRule", description: "…", appliesToXgboost: true,
 *     parameters: [{ name: "threshold", type: "number", default: "0.5", description: "…" }],
 *     requiredOneOf: [["a", "b"]],   // optional: groups of parameters of which one at least is needed
 *     // either a factory returning { requiredTensors, invokeAtStep, checkIdle? } …
 *     create(params) { return { requiredTensors(ctx) { … }, invokeAtStep(ctx, values) { … } }; },
 *     // … or the two handlers directly (module state is per rule instance).
 *     requiredTensors(ctx) { return [{ name: "train-rmse", step: ctx.step }]; },
 *     invokeAtStep(ctx, values) { return { fired: values.scalar("train-rmse") > ctx.params.threshold }; },
 *   };
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import vm from "node:vm";
import { MessageChannel, Worker, type MessagePort } from "node:worker_threads";
import { confinement, openConfined } from "../storage/confine.js";
import { parseOne, type RawParameterValue } from "./params.js";
import type {
  IdleContext, ParameterSpec, ParamType, ParsedParameters, RequiredTensors, RuleDefinition, RuleInstance, StepContext,
  StepResult, StepValues, TrialView,
} from "./types.js";

export const DEFAULT_STEP_TIMEOUT_MS = 1000;
export const DEFAULT_RULE_MEMORY_MB = 64;
export const DEFAULT_EVALUATION_TIMEOUT_MS = 60_000;

export class CustomRuleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CustomRuleError";
  }
}

export interface CustomRuleLimits {
  /** One call (create, requiredTensors, invokeAtStep, checkIdle). */
  timeoutMs: number;
  /** All calls of one instance together. */
  evaluationTimeoutMs: number;
  /** The worker's heap. */
  memoryMb: number;
}

const PARAM_TYPES: ReadonlySet<string> = new Set(["number", "integer", "boolean", "string", "list", "regexList", "mode", "json", "numberList", "range"]);
const VIEW_METHODS: ReadonlySet<string> = new Set([
  "steps", "modes", "modeOfStep", "globalStep", "collectionNames", "hasTensor", "tensorNames", "tensorSteps", "lastSteps", "select",
  "hasValue", "savedReductions",
]);
const VALUE_METHODS: ReadonlySet<string> = new Set(["get", "scalar", "reduction"]);
/** Time a worker may take to start and run the module's top level, beyond the per-call budget. */
const STARTUP_ALLOWANCE_MS = 5_000;

/**
 * The worker, as plain CommonJS run with `eval` (so it needs no build step and no loader). Calls into
 * the module go through small scripts that normalize results to JSON inside the rule's context, so
 * no rule code (getters, toJSON, thenables) runs outside it.
 */
const WORKER_SOURCE = String.raw`
const { parentPort, workerData, receiveMessageOnPort } = require("node:worker_threads");
const vm = require("node:vm");
const { file, code, rpcPort, rpcFlag } = workerData;
const base = file.split(/[\\/]/).pop();
const flag = new Int32Array(rpcFlag);

function rpc(view, method, args) {
  Atomics.store(flag, 0, 0);
  rpcPort.postMessage({ view, method, args });
  Atomics.wait(flag, 0, 0);
  const m = receiveMessageOnPort(rpcPort);
  if (!m) throw new Error("the service did not answer");
  if (!m.message.ok) throw new Error(m.message.error);
  return m.message.value;
}

const tag = "[rule " + base + "]";
const out = (...a) => process.stderr.write(tag + " " + a.map(String).join(" ") + "\n");
const sandbox = { module: { exports: {} }, console: { log: out, warn: out, error: out } };
sandbox.exports = sandbox.module.exports;
const context = vm.createContext(sandbox, {
  name: "rule:" + base,
  microtaskMode: "afterEvaluate",
  // No eval / new Function inside the context: what runs is the module text that was checked.
  codeGeneration: { strings: false, wasm: false },
});
vm.runInContext("delete globalThis.Promise;", context);

const scripts = {
  meta: new vm.Script("JSON.stringify((() => {" +
    "const m = module.exports || {};" +
    "return { name: m.name, description: m.description, appliesToXgboost: m.appliesToXgboost," +
    "  parameters: Array.isArray(m.parameters) ? m.parameters.map((p) => ({ name: p && p.name, type: p && p.type," +
    "    default: p && p.default === undefined ? null : p && p.default, description: p && p.description," +
    "    required: !!(p && p.required) })) : m.parameters === undefined ? [] : 'invalid'," +
    "  requiredOneOf: m.requiredOneOf === undefined ? [] : Array.isArray(m.requiredOneOf) && m.requiredOneOf.every((g) => Array.isArray(g))" +
    "    ? m.requiredOneOf.map((g) => g.map(String)) : 'invalid' };" +
    "})())"),
  create: new vm.Script("(() => {" +
    "const m = module.exports;" +
    "if (!m || typeof m !== 'object' && typeof m !== 'function') throw new Error('the module exports nothing');" +
    "const inst = typeof m.create === 'function' ? m.create(__params) : m;" +
    "if (!inst || typeof inst.requiredTensors !== 'function' || typeof inst.invokeAtStep !== 'function') {" +
    "  throw new Error('a rule needs requiredTensors(ctx) and invokeAtStep(ctx, values) (or create(params) returning them)'); }" +
    "if (typeof inst.then === 'function') throw new Error('create(params) must not be async');" +
    "globalThis.__instance = inst;" +
    "return typeof inst.checkIdle === 'function';" +
    "})()"),
  required: new vm.Script("(() => {" +
    "const r = __instance.requiredTensors(__ctx);" +
    "if (r && typeof r.then === 'function') throw new Error('requiredTensors must be synchronous');" +
    "if (r == null) return '[]';" +
    "if (!Array.isArray(r)) {" +
    "  if (r.defer) return JSON.stringify({ defer: true, reason: r.reason == null ? null : String(r.reason) });" +
    "  throw new Error('requiredTensors must return a list of {name, step, mode?, trial?}'); }" +
    "return JSON.stringify(r.map((q) => ({ name: String(q.name), step: Number(q.step), mode: q.mode == null ? null : String(q.mode)," +
    "  trial: q.trial == null ? 0 : Number(q.trial) })));" +
    "})()"),
};
const NORMALIZE =
  "if (r && typeof r.then === 'function') throw new Error('step handlers must be synchronous');" +
  "if (r == null) return null;" +
  "if (typeof r !== 'object') return JSON.stringify({ fired: !!r });" +
  "return JSON.stringify({ fired: !!r.fired, tensor: r.tensor == null ? null : String(r.tensor)," +
  "  tensors: Array.isArray(r.tensors) ? r.tensors.slice(0, 16).map(String) : null," +
  "  details: r.details == null ? null : String(r.details), checked: r.checked == null ? null : Number(r.checked) });";
scripts.invoke = new vm.Script("(() => { const r = __instance.invokeAtStep(__ctx, __values); " + NORMALIZE + " })()");
scripts.idle = new vm.Script("(() => { const r = __instance.checkIdle(__ctx); " + NORMALIZE + " })()");

const VIEW_METHODS = ${JSON.stringify([...VIEW_METHODS])};
function view(i, snapshot) {
  const o = { path: snapshot.path, trainingEnded: snapshot.trainingEnded };
  for (const m of VIEW_METHODS) o[m] = (...args) => rpc(i, m, args);
  return o;
}
const values = { get: (...a) => rpc("values", "get", a), scalar: (...a) => rpc("values", "scalar", a), reduction: (...a) => rpc("values", "reduction", a) };

let loaded = false;
parentPort.on("message", ({ id, op, arg }) => {
  try {
    if (!loaded) {
      new vm.Script(code, { filename: file }).runInContext(context);
      loaded = true;
    }
    let value;
    if (op === "meta") value = scripts.meta.runInContext(context);
    else if (op === "create") {
      context.__params = arg;
      value = scripts.create.runInContext(context);
    } else {
      if (op === "idle") context.__ctx = arg;
      else {
        context.__ctx = { step: arg.step, mode: arg.mode, modeStep: arg.modeStep, params: arg.params, live: arg.live,
          trial: view(0, arg.views[0]), otherTrials: arg.views.slice(1).map((s, i) => view(i + 1, s)) };
        context.__values = values;
      }
      value = scripts[op === "idle" ? "idle" : op === "required" ? "required" : "invoke"].runInContext(context);
    }
    parentPort.postMessage({ id, ok: true, value });
  } catch (e) {
    const message = e && typeof e === "object" && "message" in e ? String(e.message) : String(e);
    parentPort.postMessage({ id, ok: false, error: message, syntax: e instanceof SyntaxError });
  }
});
`;

function describe(e: unknown): string {
  if (e && typeof e === "object" && "message" in e) return String((e as { message: unknown }).message);
  return String(e);
}

/** What the service answers a rule's synchronous calls with while one of its calls runs. */
interface CallScope {
  views: TrialView[];
  values: StepValues | null;
}

let liveWorkers = 0;

/** Rule worker threads running now (metrics, tests). */
export function customRuleWorkers(): number {
  return liveWorkers;
}

/**
 * One worker thread running one rule module. Calls are serialized (one at a time); each has a
 * deadline, after which the worker is terminated and every later call fails.
 */
class RuleWorker {
  private readonly worker: Worker;
  private readonly rpc: MessagePort;
  private readonly flag = new Int32Array(new SharedArrayBuffer(4));
  private nextId = 0;
  private pending: { id: number; resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout } | null = null;
  private scope: CallScope = { views: [], values: null };
  private dead: string | null = null;
  private spentMs = 0;
  /** Settles when the thread has exited and its heap is freed. */
  readonly exited: Promise<void>;
  readonly base: string;

  constructor(readonly file: string, code: string, private readonly limits: CustomRuleLimits) {
    this.base = path.basename(file);
    const { port1, port2 } = new MessageChannel();
    this.rpc = port1;
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      // Nothing of the service's environment (tokens, credentials) is handed to rule code.
      env: {},
      argv: [],
      execArgv: [],
      workerData: { file, code, rpcPort: port2, rpcFlag: this.flag.buffer },
      transferList: [port2],
      resourceLimits: {
        maxOldGenerationSizeMb: limits.memoryMb,
        maxYoungGenerationSizeMb: Math.max(1, Math.min(16, Math.floor(limits.memoryMb / 4))),
        codeRangeSizeMb: 16,
        stackSizeMb: 4,
      },
    });
    this.worker.unref();
    port1.unref();
    liveWorkers++;
    this.exited = new Promise((resolve) => this.worker.once("exit", () => {
      liveWorkers--;
      resolve();
    }));
    port1.on("message", (m: { view: number | "values"; method: string; args: unknown[] }) => this.answer(m));
    this.worker.on("message", (m: { id: number; ok: boolean; value?: unknown; error?: string }) => {
      const p = this.pending;
      if (!p || p.id !== m.id) return;
      this.settle();
      if (m.ok) p.resolve(m.value);
      else p.reject(new CustomRuleError(m.error ?? "failed"));
    });
    this.worker.on("error", (e: Error & { code?: string }) => {
      this.kill(e.code === "ERR_WORKER_OUT_OF_MEMORY"
        ? `exceeded its memory limit of ${this.limits.memoryMb} MB`
        : `stopped: ${describe(e)}`);
    });
    this.worker.on("exit", () => this.kill("stopped"));
  }

  /** A synchronous call from the rule into its step context (TrialView or StepValues), answered at once. */
  private answer(m: { view: number | "values"; method: string; args: unknown[] }): void {
    let reply: { ok: boolean; value?: unknown; error?: string };
    try {
      const target = m.view === "values" ? this.scope.values : this.scope.views[m.view as number];
      const allowed = m.view === "values" ? VALUE_METHODS : VIEW_METHODS;
      if (!target || !allowed.has(m.method) || !Array.isArray(m.args)) throw new Error(`no ${String(m.method)} here`);
      const value = (target as unknown as Record<string, (...a: unknown[]) => unknown>)[m.method](...m.args);
      reply = { ok: true, value };
    } catch (e) {
      reply = { ok: false, error: describe(e) };
    }
    try {
      this.rpc.postMessage(reply);
    } catch (e) {
      this.rpc.postMessage({ ok: false, error: `the answer cannot be sent to the rule: ${describe(e)}` });
    }
    Atomics.store(this.flag, 0, 1);
    Atomics.notify(this.flag, 0);
  }

  private settle(): void {
    if (this.pending) clearTimeout(this.pending.timer);
    this.pending = null;
  }

  private kill(reason: string): void {
    if (!this.dead) this.dead = reason;
    const p = this.pending;
    this.settle();
    p?.reject(new CustomRuleError(`custom rule ${this.base}: ${this.dead}`));
    void this.worker.terminate();
    this.rpc.close();
  }

  /** Calls `op` in the worker within the budgets; `what` names the call in errors. */
  call(op: string, arg: unknown, what: string, scope: CallScope = { views: [], values: null }, startup = false): Promise<unknown> {
    if (this.dead) return Promise.reject(new CustomRuleError(`custom rule ${this.base}: ${this.dead}`));
    if (this.pending) return Promise.reject(new CustomRuleError(`custom rule ${this.base}: ${what} while another call runs`));
    const left = this.limits.evaluationTimeoutMs - this.spentMs;
    if (left <= 0) {
      this.kill(`exceeded its time budget of ${this.limits.evaluationTimeoutMs} ms for the whole evaluation`);
      return Promise.reject(new CustomRuleError(`custom rule ${this.base}: ${this.dead}`));
    }
    const perCall = this.limits.timeoutMs + (startup ? STARTUP_ALLOWANCE_MS : 0);
    const budget = Math.min(perCall, left + (startup ? STARTUP_ALLOWANCE_MS : 0));
    const started = performance.now();
    this.scope = scope;
    return new Promise<unknown>((resolve, reject) => {
      const id = ++this.nextId;
      const timer = setTimeout(() => {
        this.kill(budget < perCall
          ? `exceeded its time budget of ${this.limits.evaluationTimeoutMs} ms for the whole evaluation`
          : `${what} exceeded its time budget of ${this.limits.timeoutMs} ms`);
      }, budget);
      this.pending = { id, resolve, reject, timer };
      this.worker.postMessage({ id, op, arg });
    }).finally(() => {
      if (!startup) this.spentMs += performance.now() - started;
      this.scope = { views: [], values: null };
    });
  }

  /** Stops the worker (if it still runs); settles once its thread has exited. */
  terminate(reason = "stopped: nobody waits for it any more"): Promise<void> {
    if (!this.dead) this.kill(reason);
    return this.exited;
  }
}

/** Turns worker failures into the messages rules report ("custom rule x.js: invokeAtStep … threw: …"). */
function rethrow(base: string, what: string) {
  return (e: unknown): never => {
    const msg = describe(e);
    if (msg.startsWith(`custom rule ${base}:`)) throw new CustomRuleError(msg);
    throw new CustomRuleError(`custom rule ${base}: ${what} threw: ${msg.replace(/^CustomRuleError: /, "")}`);
  };
}

function snapshotOf(v: TrialView): { path: string; trainingEnded: boolean } {
  return { path: v.path, trainingEnded: v.trainingEnded };
}

class CustomRuleInstance implements RuleInstance {
  checkIdle?: (ctx: IdleContext) => Promise<StepResult | null>;

  private constructor(private readonly worker: RuleWorker) {}

  static async create(file: string, code: string, params: ParsedParameters, limits: CustomRuleLimits): Promise<CustomRuleInstance> {
    const worker = new RuleWorker(file, code, limits);
    const instance = new CustomRuleInstance(worker);
    let hasIdle: unknown;
    try {
      hasIdle = await worker.call("create", params, "create(params)", undefined, true).catch(rethrow(worker.base, "create(params)"));
    } catch (e) {
      void worker.terminate();
      throw e;
    }
    if (hasIdle === true) {
      instance.checkIdle = async (ctx) => {
        const out = (await worker.call("idle", ctx, "checkIdle").catch(rethrow(worker.base, "checkIdle"))) as string | null;
        return out === null ? null : (JSON.parse(out) as StepResult);
      };
    }
    return instance;
  }

  private stepArg(ctx: StepContext) {
    return {
      step: ctx.step, mode: ctx.mode, modeStep: ctx.modeStep, params: ctx.params, live: ctx.live,
      views: [ctx.trial, ...ctx.otherTrials].map(snapshotOf),
    };
  }

  async requiredTensors(ctx: StepContext): Promise<RequiredTensors> {
    const what = `requiredTensors at step ${ctx.step}`;
    const out = (await this.worker.call("required", this.stepArg(ctx), what, { views: [ctx.trial, ...ctx.otherTrials], values: null })
      .catch(rethrow(this.worker.base, what))) as string;
    return JSON.parse(out) as RequiredTensors;
  }

  async invokeAtStep(ctx: StepContext, values: StepValues): Promise<StepResult> {
    const what = `invokeAtStep at step ${ctx.step}`;
    const out = (await this.worker.call("invoke", this.stepArg(ctx), what, { views: [ctx.trial, ...ctx.otherTrials], values })
      .catch(rethrow(this.worker.base, what))) as string | null;
    const r = out === null ? { fired: false } : (JSON.parse(out) as StepResult);
    if (r.checked === null) delete r.checked;
    return r;
  }

  dispose(): Promise<void> {
    return this.worker.terminate();
  }
}

export interface CustomRuleLoadError {
  file: string;
  message: string;
}

/**
 * Loads every *.js / *.cjs file of `dir` (not recursive), each read confined to the folder (a link
 * out of it, a FIFO or a device is refused). A module that fails to load is reported in `errors`
 * and left out; the others are usable like built-ins.
 */
export async function loadCustomRules(
  dir: string,
  opts: { timeoutMs?: number; evaluationTimeoutMs?: number; memoryMb?: number; reservedNames?: Iterable<string> } = {},
): Promise<{ definitions: RuleDefinition[]; errors: CustomRuleLoadError[] }> {
  const limits: CustomRuleLimits = {
    timeoutMs: opts.timeoutMs ?? DEFAULT_STEP_TIMEOUT_MS,
    evaluationTimeoutMs: opts.evaluationTimeoutMs ?? DEFAULT_EVALUATION_TIMEOUT_MS,
    memoryMb: opts.memoryMb ?? DEFAULT_RULE_MEMORY_MB,
  };
  const reserved = new Set([...(opts.reservedNames ?? [])].map((n) => n.toLowerCase()));
  const definitions: RuleDefinition[] = [];
  const errors: CustomRuleLoadError[] = [];
  let entries: string[];
  try {
    entries = (await fs.readdir(dir)).filter((f) => /\.(c?js)$/.test(f)).sort();
  } catch (e) {
    return { definitions, errors: [{ file: dir, message: `cannot read the rules directory: ${describe(e)}` }] };
  }
  const confined = confinement(dir, "the rules folder");
  for (const entry of entries) {
    const file = path.join(dir, entry);
    try {
      const opened = await openConfined(file, confined, { baseDir: dir, key: entry, where: "custom rule" });
      if (!opened) continue;
      let code: string;
      try {
        code = await opened.handle.readFile("utf8");
      } finally {
        await opened.handle.close();
      }
      const def = await loadOne(file, code, limits);
      const key = def.name.toLowerCase();
      if (reserved.has(key)) throw new CustomRuleError(`rule name ${def.name} is already taken`);
      reserved.add(key);
      definitions.push(def);
    } catch (e) {
      errors.push({ file, message: describe(e) });
    }
  }
  return { definitions, errors };
}

async function loadOne(file: string, code: string, limits: CustomRuleLimits): Promise<RuleDefinition> {
  const base = path.basename(file);
  // Step handlers are synchronous: asynchronous code is refused when the module loads.
  const asyncToken = /\b(async|await|Promise|queueMicrotask|setTimeout|setImmediate)\b|\.then\s*\(/.exec(code);
  if (asyncToken) {
    throw new CustomRuleError(`custom rule ${base}: rules must be synchronous (found "${asyncToken[0]}")`);
  }
  try {
    // Parsed only (nothing runs here): syntax errors are reported before a worker starts.
    new vm.Script(code, { filename: file });
  } catch (e) {
    throw new CustomRuleError(`custom rule ${base}: syntax error: ${describe(e)}`);
  }
  // The module's top level and metadata run in a worker of their own, within the same limits.
  const probe = new RuleWorker(file, code, limits);
  let metaJson: string;
  try {
    metaJson = (await probe.call("meta", null, "reading its metadata", undefined, true)
      .catch(rethrow(base, "loading the module"))) as string;
  } finally {
    void probe.terminate("done");
  }
  const meta = JSON.parse(metaJson) as {
    name: unknown; description: unknown; appliesToXgboost: unknown;
    parameters: { name: unknown; type: unknown; default: unknown; description: unknown; required: boolean }[] | "invalid";
    requiredOneOf: string[][] | "invalid";
  };
  if (typeof meta.name !== "string" || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(meta.name)) {
    throw new CustomRuleError(`custom rule ${base}: exports no valid name (letters, digits and _)`);
  }
  if (meta.parameters === "invalid") throw new CustomRuleError(`custom rule ${base}: parameters must be a list`);
  const ruleName = meta.name;
  const parameters: ParameterSpec[] = meta.parameters.map((p) => {
    if (typeof p.name !== "string" || !p.name) throw new CustomRuleError(`custom rule ${base}: a parameter has no name`);
    const type = (p.type ?? "string") as ParamType;
    if (!PARAM_TYPES.has(type)) throw new CustomRuleError(`custom rule ${base}: parameter ${p.name} has unknown type ${String(p.type)}`);
    const spec: ParameterSpec = {
      name: p.name, type, default: null, required: p.required,
      description: typeof p.description === "string" ? p.description : "",
    };
    try {
      spec.default = p.default === null ? null : parseOne(ruleName, spec, p.default as RawParameterValue);
    } catch (e) {
      throw new CustomRuleError(`custom rule ${base}: default of ${p.name}: ${describe(e)}`);
    }
    return spec;
  });
  if (meta.requiredOneOf === "invalid") throw new CustomRuleError(`custom rule ${base}: requiredOneOf must be a list of lists of parameter names`);
  for (const group of meta.requiredOneOf) {
    const unknown = group.find((n) => !parameters.some((p) => p.name === n));
    if (group.length < 2 || unknown !== undefined) {
      throw new CustomRuleError(`custom rule ${base}: requiredOneOf group [${group.join(", ")}] must name two or more of its parameters`);
    }
  }
  return {
    name: ruleName,
    description: typeof meta.description === "string" ? meta.description : `custom rule from ${base}`,
    appliesToXgboost: meta.appliesToXgboost !== false,
    parameters,
    requiredOneOf: meta.requiredOneOf,
    source: "custom",
    file,
    // A fresh worker per instance: module-level state is never shared between rule evaluations.
    create: (params) => CustomRuleInstance.create(file, code, params, limits),
  };
}
