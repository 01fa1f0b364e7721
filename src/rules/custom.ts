/**
 * Custom rules: JavaScript modules dropped in TRIALGRAPH_RULES_DIR, with the same contract as the
 * built-ins (./types.ts). Each module runs in its own node:vm context, one per rule instance, and
 * every call into it has a time budget: a rule that throws or loops ends in ERROR instead of taking
 * the service down. The vm is fault isolation for trusted operator code, not a security sandbox.
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
import { parseOne, type RawParameterValue } from "./params.js";
import type {
  IdleContext, ParameterSpec, ParamType, ParsedParameters, RequiredTensors, RuleDefinition, RuleInstance, StepContext,
  StepResult, StepValues,
} from "./types.js";

export const DEFAULT_STEP_TIMEOUT_MS = 1000;

export class CustomRuleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CustomRuleError";
  }
}

const PARAM_TYPES: ReadonlySet<string> = new Set(["number", "integer", "boolean", "string", "list", "regexList", "mode", "json"]);

/**
 * Calls into the context go through small precompiled scripts that normalize the result to JSON
 * inside the context, so no rule code (getters, toJSON, thenables) runs outside the time budget.
 */
const CALL_CREATE = new vm.Script(`(() => {
  const m = module.exports;
  if (!m || typeof m !== "object" && typeof m !== "function") throw new Error("the module exports nothing");
  const inst = typeof m.create === "function" ? m.create(__params) : m;
  if (!inst || typeof inst.requiredTensors !== "function" || typeof inst.invokeAtStep !== "function") {
    throw new Error("a rule needs requiredTensors(ctx) and invokeAtStep(ctx, values) (or create(params) returning them)");
  }
  if (typeof inst.then === "function") throw new Error("create(params) must not be async");
  globalThis.__instance = inst;
  return typeof inst.checkIdle === "function";
})()`);

const CALL_REQUIRED = new vm.Script(`(() => {
  const r = __instance.requiredTensors(__ctx);
  if (r && typeof r.then === "function") throw new Error("requiredTensors must be synchronous");
  if (r == null) return "[]";
  if (!Array.isArray(r)) {
    if (r.defer) return JSON.stringify({ defer: true, reason: r.reason == null ? null : String(r.reason) });
    throw new Error("requiredTensors must return a list of {name, step, mode?, trial?}");
  }
  return JSON.stringify(r.map((q) => ({ name: String(q.name), step: Number(q.step), mode: q.mode == null ? null : String(q.mode),
    trial: q.trial == null ? 0 : Number(q.trial) })));
})()`);

const NORMALIZE = `
  if (r && typeof r.then === "function") throw new Error("step handlers must be synchronous");
  if (r == null) return null;
  if (typeof r !== "object") return JSON.stringify({ fired: !!r });
  return JSON.stringify({ fired: !!r.fired, tensor: r.tensor == null ? null : String(r.tensor),
    tensors: Array.isArray(r.tensors) ? r.tensors.slice(0, 16).map(String) : null,
    details: r.details == null ? null : String(r.details), checked: r.checked == null ? null : Number(r.checked) });`;
const CALL_INVOKE = new vm.Script(`(() => { const r = __instance.invokeAtStep(__ctx, __values); ${NORMALIZE} })()`);
const CALL_IDLE = new vm.Script(`(() => { const r = __instance.checkIdle(__ctx); ${NORMALIZE} })()`);

function describe(e: unknown): string {
  if (e && typeof e === "object" && "message" in e) return String((e as { message: unknown }).message);
  return String(e);
}

class VmRule {
  readonly context: vm.Context;

  constructor(readonly file: string, script: vm.Script, readonly timeoutMs: number) {
    const sandbox: Record<string, unknown> = { module: { exports: {} }, console: quietConsole(file) };
    sandbox.exports = (sandbox.module as { exports: unknown }).exports;
    this.context = vm.createContext(sandbox, {
      name: `rule:${path.basename(file)}`,
      microtaskMode: "afterEvaluate",
      // No eval / new Function inside the context: what runs is the module text that was checked.
      codeGeneration: { strings: false, wasm: false },
    });
    vm.runInContext("delete globalThis.Promise;", this.context);
    this.run(script, "loading the module");
  }

  run(script: vm.Script, what: string): unknown {
    try {
      return script.runInContext(this.context, { timeout: this.timeoutMs, breakOnSigint: false });
    } catch (e) {
      const msg = describe(e);
      if (/timed out/i.test(msg)) {
        throw new CustomRuleError(`custom rule ${path.basename(this.file)}: ${what} exceeded its time budget of ${this.timeoutMs} ms`);
      }
      throw new CustomRuleError(`custom rule ${path.basename(this.file)}: ${what} threw: ${msg}`);
    }
  }

  set(name: string, value: unknown): void {
    this.context[name] = value;
  }
}

function quietConsole(file: string) {
  const tag = `[rule ${path.basename(file)}]`;
  // Rule output goes to stderr, prefixed; it never reaches clients.
  return {
    log: (...a: unknown[]) => process.stderr.write(`${tag} ${a.map(String).join(" ")}\n`),
    warn: (...a: unknown[]) => process.stderr.write(`${tag} ${a.map(String).join(" ")}\n`),
    error: (...a: unknown[]) => process.stderr.write(`${tag} ${a.map(String).join(" ")}\n`),
  };
}

class CustomRuleInstance implements RuleInstance {
  checkIdle?: (ctx: IdleContext) => StepResult | null;

  constructor(private readonly vmRule: VmRule, params: ParsedParameters) {
    vmRule.set("__params", params);
    const hasIdle = vmRule.run(CALL_CREATE, "create(params)") === true;
    if (hasIdle) {
      this.checkIdle = (ctx) => {
        this.vmRule.set("__ctx", ctx);
        const out = this.vmRule.run(CALL_IDLE, "checkIdle") as string | null;
        return out === null ? null : (JSON.parse(out) as StepResult);
      };
    }
  }

  requiredTensors(ctx: StepContext): RequiredTensors {
    this.vmRule.set("__ctx", ctx);
    const out = this.vmRule.run(CALL_REQUIRED, `requiredTensors at step ${ctx.step}`) as string;
    return JSON.parse(out) as RequiredTensors;
  }

  invokeAtStep(ctx: StepContext, values: StepValues): StepResult {
    this.vmRule.set("__ctx", ctx);
    this.vmRule.set("__values", values);
    const out = this.vmRule.run(CALL_INVOKE, `invokeAtStep at step ${ctx.step}`) as string | null;
    const r = out === null ? { fired: false } : (JSON.parse(out) as StepResult);
    if (r.checked === null) delete r.checked;
    return r;
  }
}

export interface CustomRuleLoadError {
  file: string;
  message: string;
}

/**
 * Loads every *.js / *.cjs file of `dir` (not recursive). A module that fails to load is reported
 * in `errors` and left out; the others are usable like built-ins.
 */
export async function loadCustomRules(
  dir: string,
  opts: { timeoutMs?: number; reservedNames?: Iterable<string> } = {},
): Promise<{ definitions: RuleDefinition[]; errors: CustomRuleLoadError[] }> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_STEP_TIMEOUT_MS;
  const reserved = new Set([...(opts.reservedNames ?? [])].map((n) => n.toLowerCase()));
  const definitions: RuleDefinition[] = [];
  const errors: CustomRuleLoadError[] = [];
  let entries: string[];
  try {
    entries = (await fs.readdir(dir)).filter((f) => /\.(c?js)$/.test(f)).sort();
  } catch (e) {
    return { definitions, errors: [{ file: dir, message: `cannot read the rules directory: ${describe(e)}` }] };
  }
  for (const entry of entries) {
    const file = path.join(dir, entry);
    try {
      const def = await loadOne(file, timeoutMs);
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

async function loadOne(file: string, timeoutMs: number): Promise<RuleDefinition> {
  const code = await fs.readFile(file, "utf8");
  // Step handlers are synchronous. Beyond that, a microtask loop cut off by the time budget leaves
  // Node's async-hook stack unbalanced and aborts the process when async hooks are on (APMs,
  // AsyncLocalStorage, the test runner), so asynchronous code is refused when the module loads.
  const asyncToken = /\b(async|await|Promise|queueMicrotask|setTimeout|setImmediate)\b|\.then\s*\(/.exec(code);
  if (asyncToken) {
    throw new CustomRuleError(`custom rule ${path.basename(file)}: rules must be synchronous (found "${asyncToken[0]}")`);
  }
  let script: vm.Script;
  try {
    script = new vm.Script(code, { filename: file });
  } catch (e) {
    throw new CustomRuleError(`custom rule ${path.basename(file)}: syntax error: ${describe(e)}`);
  }
  const probe = new VmRule(file, script, timeoutMs);
  const metaJson = probe.run(new vm.Script(`JSON.stringify((() => {
    const m = module.exports || {};
    return { name: m.name, description: m.description, appliesToXgboost: m.appliesToXgboost,
      parameters: Array.isArray(m.parameters) ? m.parameters.map((p) => ({ name: p && p.name, type: p && p.type,
        default: p && p.default === undefined ? null : p && p.default, description: p && p.description,
        required: !!(p && p.required) })) : m.parameters === undefined ? [] : "invalid",
      requiredOneOf: m.requiredOneOf === undefined ? []
        : Array.isArray(m.requiredOneOf) && m.requiredOneOf.every((g) => Array.isArray(g)) ? m.requiredOneOf.map((g) => g.map(String)) : "invalid" };
  })())`), "reading its metadata") as string;
  const meta = JSON.parse(metaJson) as {
    name: unknown; description: unknown; appliesToXgboost: unknown;
    parameters: { name: unknown; type: unknown; default: unknown; description: unknown; required: boolean }[] | "invalid";
    requiredOneOf: string[][] | "invalid";
  };
  const base = path.basename(file);
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
    // A fresh context per instance: module-level state is never shared between rule evaluations.
    create: (params) => new CustomRuleInstance(new VmRule(file, script, timeoutMs), params),
  };
}
