/**
 * Rule parameters as SageMaker passes them: every value a string (RuleParameters is a
 * string→string map), lists as comma-separated strings, booleans as "True"/"False",
 * "None" for Python's None (spec §8.1, §8.2). Numbers and booleans given directly are accepted too.
 */
import { TrialgraphError } from "../errors.js";
import { cachedPythonRegex } from "../format/python-regex.js";
import type { Mode } from "../format/tensor.js";
import type { ParameterSpec, ParamValue, ParsedParameters } from "./types.js";

export type RawParameterValue = string | number | boolean | null | undefined;

/** Parameters the engine itself reads; accepted on every rule. */
export const ENGINE_PARAMETERS: ParameterSpec[] = [
  {
    name: "rule_to_invoke", type: "string", default: null,
    description: "SageMaker's name of the rule class; when given it must name this rule.",
  },
  {
    name: "action_json", type: "json", default: null,
    description: 'Actions when the rule fires, as smdebug\'s action_json: {"name": "stoptraining", "training_job_prefix": P}, '
      + '{"name": "email"|"sms"|"webhook", "endpoint": E, "url": U}, or a list of them. Email and SMS are delivered as a webhook POST.',
  },
  {
    name: "webhook_url", type: "string", default: null,
    description: "Where the rule summary is POSTed when the rule fires (default TRIALGRAPH_WEBHOOK_URL).",
  },
];

export function paramError(rule: string, name: string, message: string): TrialgraphError {
  return new TrialgraphError("BAD_USER_INPUT", `rule ${rule}: parameter ${name} ${message}`, { field: name, rule });
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function isNone(v: RawParameterValue): boolean {
  return v === null || v === undefined || (typeof v === "string" && (v.trim() === "" || v.trim() === "None"));
}

export function parseNumberParam(rule: string, name: string, v: RawParameterValue): number {
  if (typeof v === "number") {
    if (!Number.isFinite(v)) throw paramError(rule, name, `must be a finite number, got ${v}`);
    return v;
  }
  const s = String(v).trim();
  if (!NUMBER.test(s)) throw paramError(rule, name, `must be a number, got ${JSON.stringify(v)}`);
  return Number(s);
}

export function parseBooleanParam(rule: string, name: string, v: RawParameterValue): boolean {
  if (typeof v === "boolean") return v;
  const s = String(v).trim().toLowerCase();
  if (s === "true") return true;
  if (s === "false") return false;
  throw paramError(rule, name, `must be "True" or "False", got ${JSON.stringify(v)}`);
}

/** "a, b,,c" → ["a", "b", "c"] (smdebug splits on commas and strips). */
export function parseListParam(v: RawParameterValue): string[] {
  return String(v).split(",").map((s) => s.trim()).filter((s) => s.length > 0);
}

export function parseModeParam(rule: string, name: string, v: RawParameterValue): Mode {
  const s = String(v).trim().toUpperCase().replace(/^MODEKEYS\./, "").replace(/^MODES\./, "");
  if (s === "TRAIN" || s === "EVAL" || s === "PREDICT" || s === "GLOBAL") return s;
  throw paramError(rule, name, `must be one of TRAIN, EVAL, PREDICT, GLOBAL, got ${JSON.stringify(v)}`);
}

function checkRange(rule: string, spec: ParameterSpec, n: number): void {
  if (spec.min !== undefined && (spec.minExclusive ? n <= spec.min : n < spec.min)) {
    throw paramError(rule, spec.name, `must be ${spec.minExclusive ? ">" : ">="} ${spec.min}, got ${n}`);
  }
  if (spec.max !== undefined && (spec.maxExclusive ? n >= spec.max : n > spec.max)) {
    throw paramError(rule, spec.name, `must be ${spec.maxExclusive ? "<" : "<="} ${spec.max}, got ${n}`);
  }
}

export function parseOne(rule: string, spec: ParameterSpec, v: RawParameterValue): ParamValue {
  const type = spec.type ?? "string";
  if (isNone(v) && type !== "string") return null;
  if (v === null || v === undefined || (typeof v === "string" && v.trim() === "None")) return null;
  switch (type) {
    case "number": {
      const n = parseNumberParam(rule, spec.name, v);
      checkRange(rule, spec, n);
      return n;
    }
    case "integer": {
      const n = parseNumberParam(rule, spec.name, v);
      if (!Number.isInteger(n)) throw paramError(rule, spec.name, `must be an integer, got ${JSON.stringify(v)}`);
      checkRange(rule, spec, n);
      return n;
    }
    case "boolean":
      return parseBooleanParam(rule, spec.name, v);
    case "list": {
      const list = parseListParam(v);
      return list.length ? list : null;
    }
    case "regexList": {
      const list = parseListParam(v);
      for (const p of list) {
        try {
          cachedPythonRegex(p);
        } catch (e) {
          throw paramError(rule, spec.name, `has an invalid regular expression ${JSON.stringify(p)}: ${(e as Error).message}`);
        }
      }
      return list.length ? list : null;
    }
    case "mode":
      return parseModeParam(rule, spec.name, v);
    case "numberList": {
      const list = parseListParam(typeof v === "number" ? String(v) : v).map((x) => parseNumberParam(rule, spec.name, x));
      for (const n of list) checkRange(rule, spec, n);
      return list.length ? list : null;
    }
    case "range": {
      // A Python tuple or list as SageMaker passes it: "(-9.4999, 9.4999)", "[-23, 17]" or "-23, 17".
      const body = String(v).trim().replace(/^[([]\s*/, "").replace(/\s*[)\]]$/, "");
      const pair = parseListParam(body).map((x) => parseNumberParam(rule, spec.name, x));
      if (pair.length !== 2 || !(pair[0] < pair[1])) {
        throw paramError(rule, spec.name, `must be two numbers (min, max) with min < max, got ${JSON.stringify(v)}`);
      }
      return pair;
    }
    case "json":
    case "string":
    default:
      return String(v);
  }
}

/** "a or b (or both)", "a, b or c (one at least)": how a group of alternatives is named in messages. */
export function describeAlternatives(group: readonly string[]): string {
  if (group.length === 2) return `${group[0]} or ${group[1]} (or both)`;
  return `${group.slice(0, -1).join(", ")} or ${group[group.length - 1]} (one at least)`;
}

/** The first group of alternatives none of which is given, as a message; null when each group has one. */
export function missingAlternatives(groups: readonly (readonly string[])[] | undefined, params: ParsedParameters): string | null {
  for (const group of groups ?? []) {
    if (group.every((name) => params[name] === null || params[name] === undefined)) return `give ${describeAlternatives(group)}`;
  }
  return null;
}

/** How a parsed default is shown (builtinRules): the string SageMaker would pass, null for None. */
export function formatDefault(spec: ParameterSpec): string | null {
  if (spec.shownDefault !== undefined) return spec.shownDefault;
  const d = spec.default;
  if (d === null || d === undefined) return null;
  if (typeof d === "boolean") return d ? "True" : "False";
  if (Array.isArray(d)) return spec.type === "range" ? `(${d.join(", ")})` : d.join(",");
  return String(d);
}

export interface EngineParameters {
  ruleToInvoke: string | null;
  actionJson: string | null;
  webhookUrl: string | null;
  /** other_trials (comma list) and other_trial_0, other_trial_1, … in index order. */
  otherTrials: string[];
}

const OTHER_TRIAL = /^other_trial_(\d+)$/;

/**
 * Parses raw RuleParameters against a rule's specs. Unknown names are an error (as a Python
 * constructor rejects unknown keyword arguments); names match case-insensitively, as in the old
 * open-source rule invoker. Defaults fill what is not given; required parameters must be given.
 */
export function parseParameters(
  rule: string,
  specs: readonly ParameterSpec[],
  raw: Record<string, RawParameterValue> | null | undefined,
): { params: ParsedParameters; engine: EngineParameters } {
  const byLower = new Map(specs.map((s) => [s.name.toLowerCase(), s]));
  const engineByLower = new Map(ENGINE_PARAMETERS.map((s) => [s.name.toLowerCase(), s]));
  const params: ParsedParameters = {};
  const given = new Set<string>();
  const engine: EngineParameters = { ruleToInvoke: null, actionJson: null, webhookUrl: null, otherTrials: [] };
  const indexedOthers: [number, string][] = [];
  for (const [key, value] of Object.entries(raw ?? {})) {
    const lower = key.trim().toLowerCase();
    const spec = byLower.get(lower);
    if (spec) {
      params[spec.name] = parseOne(rule, spec, value);
      given.add(spec.name);
      continue;
    }
    const other = OTHER_TRIAL.exec(lower);
    if (other) {
      if (!isNone(value)) indexedOthers.push([Number(other[1]), String(value).trim()]);
      continue;
    }
    const eng = engineByLower.get(lower);
    if (eng) {
      if (isNone(value)) continue;
      const s = String(value).trim();
      if (eng.name === "rule_to_invoke") engine.ruleToInvoke = s;
      else if (eng.name === "action_json") engine.actionJson = s;
      else if (eng.name === "webhook_url") {
        if (!/^https?:\/\//i.test(s)) throw paramError(rule, "webhook_url", `must be an http(s) URL, got ${JSON.stringify(s)}`);
        engine.webhookUrl = s;
      }
      continue;
    }
    const known = [...specs.map((s) => s.name), ...ENGINE_PARAMETERS.map((s) => s.name)].join(", ");
    throw paramError(rule, key, `is not a parameter of this rule (known: ${known})`);
  }
  indexedOthers.sort((a, b) => a[0] - b[0]);
  const listedOthers = Array.isArray(params.other_trials) ? params.other_trials.map(String) : [];
  engine.otherTrials = [...listedOthers, ...indexedOthers.map(([, p]) => p)];
  if (specs.some((s) => s.name === "other_trials") && engine.otherTrials.length) {
    params.other_trials = engine.otherTrials;
    given.add("other_trials");
  }
  for (const spec of specs) {
    if (given.has(spec.name) && params[spec.name] !== null) continue;
    if (spec.required) throw paramError(rule, spec.name, "is required");
    if (!given.has(spec.name)) params[spec.name] = spec.default;
  }
  if (engine.ruleToInvoke !== null && engine.ruleToInvoke.toLowerCase() !== rule.toLowerCase()) {
    throw paramError(rule, "rule_to_invoke", `names rule ${engine.ruleToInvoke}, not ${rule}`);
  }
  return { params, engine };
}
