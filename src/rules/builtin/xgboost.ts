/** XGBoost rules: TreeDepth, FeatureImportanceOverweight; and StalledTrainingRule (spec §8.3). */
import type {
  IdleContext, ParsedParameters, RequiredTensors, RuleDefinition, RuleInstance, StepContext, StepResult, StepValues,
} from "../types.js";
import { fmt } from "./common.js";

// ---------------------------------------------------------------------------------------------
// TreeDepth
// ---------------------------------------------------------------------------------------------

const NODE_TENSOR = /(^|\/)trees?\/Node$/;
const ID_TENSOR = /(^|\/)trees?\/ID$/;

/**
 * Documented: depth = log2 of the largest node id. INFERRED: floored (a full depth-4 tree has max
 * id 30), a largest id of 0 gives depth 0, fire when depth > `depth`. Node ids come from
 * `trees/Node` (int64), or are parsed from the `trees/ID` strings "<tree>-<node>".
 */
class TreeDepth implements RuleInstance {
  private names: string[] = [];
  constructor(private readonly p: ParsedParameters) {}

  requiredTensors(ctx: StepContext): RequiredTensors {
    const at = ctx.trial.tensorNames({ step: ctx.step });
    const nodes = at.filter((n) => NODE_TENSOR.test(n));
    this.names = nodes.length ? nodes : at.filter((n) => ID_TENSOR.test(n));
    return this.names.map((name) => ({ name, step: ctx.step }));
  }

  invokeAtStep(ctx: StepContext, values: StepValues): StepResult {
    let checked = 0;
    for (const name of this.names) {
      const t = values.get(name);
      if (!t) continue;
      let max = -1;
      if (t.values) for (let i = 0; i < t.values.length; i++) max = Math.max(max, t.values[i]);
      else if (t.strings) {
        for (const s of t.strings) {
          const id = Number(s.slice(s.lastIndexOf("-") + 1));
          if (Number.isFinite(id)) max = Math.max(max, id);
        }
      }
      if (max < 0) continue;
      checked++;
      const depth = max < 1 ? 0 : Math.floor(Math.log2(max));
      const limit = this.p.depth as number;
      if (depth > limit) {
        return {
          fired: true, tensor: name, checked,
          details: `the tree saved at step ${ctx.step} has depth ${depth} (largest node id ${max}), above depth ${fmt(limit)}`,
        };
      }
    }
    return { fired: false, checked };
  }

  missingRequirement(): string {
    return "no trees/Node or trees/ID tensor was saved (include the trees collection in the hook configuration)";
  }
}

export const treeDepth: RuleDefinition = {
  name: "TreeDepth",
  source: "builtin",
  appliesToXgboost: true,
  description: "Fires when a tree's depth (log2 of its largest node id) exceeds depth.",
  parameters: [{ name: "depth", type: "number", default: 4, min: 0, description: "Maximum tree depth." }],
  create: (p) => new TreeDepth(p),
};

// ---------------------------------------------------------------------------------------------
// FeatureImportanceOverweight
// ---------------------------------------------------------------------------------------------

/**
 * Documented: sum of the nfeatures largest importances > threshold. INFERRED: every element of
 * every tensor matching tensor_regex at the step, used as saved (the hook already normalizes each
 * importance type to sum to 1).
 */
class FeatureImportanceOverweight implements RuleInstance {
  private names: string[] = [];
  constructor(private readonly p: ParsedParameters) {}

  requiredTensors(ctx: StepContext): RequiredTensors {
    this.names = ctx.trial.select({ regex: this.p.tensor_regex as string[] }, ctx.step);
    return this.names.map((name) => ({ name, step: ctx.step }));
  }

  invokeAtStep(_ctx: StepContext, values: StepValues): StepResult {
    const scores: { name: string; v: number }[] = [];
    for (const name of this.names) {
      const v = values.get(name)?.values;
      if (!v) continue;
      for (let i = 0; i < v.length; i++) if (!Number.isNaN(v[i])) scores.push({ name, v: v[i] });
    }
    if (!scores.length) return { fired: false, checked: 0 };
    scores.sort((a, b) => b.v - a.v);
    const n = this.p.nfeatures as number;
    const top = scores.slice(0, n);
    const sum = top.reduce((a, s) => a + s.v, 0);
    const threshold = this.p.threshold as number;
    if (sum > threshold) {
      return {
        fired: true, tensor: top[0].name, tensors: [...new Set(top.map((s) => s.name))], checked: this.names.length,
        details: `the top ${top.length} feature importances (${top.map((s) => `${s.name}=${fmt(s.v)}`).join(", ")}) `
          + `sum to ${fmt(sum)}, above threshold ${fmt(threshold)}`,
      };
    }
    return { fired: false, checked: this.names.length };
  }

  missingRequirement(): string {
    return `no tensor matched tensor_regex ${(this.p.tensor_regex as string[]).join(",")} (include the feature_importance collection)`;
  }
}

export const featureImportanceOverweight: RuleDefinition = {
  name: "FeatureImportanceOverweight",
  source: "builtin",
  appliesToXgboost: true,
  description: "Fires when the nfeatures most important features hold more than threshold of the importance.",
  parameters: [
    { name: "threshold", type: "number", default: 0.8, min: 0, description: "Maximum summed importance of the top nfeatures." },
    { name: "nfeatures", type: "integer", default: 3, min: 1, description: "How many of the largest importances are summed." },
    {
      name: "tensor_regex", type: "regexList", default: [".*feature_importance/weight"],
      description: "Regular expressions selecting the feature-importance tensors.",
    },
  ],
  create: (p) => new FeatureImportanceOverweight(p),
};

// ---------------------------------------------------------------------------------------------
// StalledTrainingRule
// ---------------------------------------------------------------------------------------------

/**
 * Documented: fire when no new tensor was emitted for `threshold` seconds. INFERRED: measured as
 * wall-clock time since the engine last saw a new step (or started watching), checked on every
 * advance of a live watch; never after training ended. A one-shot evaluation has no clock: it
 * cannot fire there.
 */
class StalledTraining implements RuleInstance {
  constructor(private readonly p: ParsedParameters) {}

  requiredTensors(): RequiredTensors {
    return [];
  }

  invokeAtStep(): StepResult {
    return { fired: false, checked: 1 };
  }

  checkIdle(ctx: IdleContext): StepResult | null {
    if (ctx.trainingEnded) return null;
    const threshold = this.p.threshold as number;
    if (ctx.idleSeconds < threshold) return null;
    return {
      fired: true, tensor: null,
      details: `no new step for ${fmt(ctx.idleSeconds)} s (threshold ${fmt(threshold)} s)`
        + (ctx.lastStep === null ? ", and no step was saved yet" : ` after step ${ctx.lastStep}`),
    };
  }

  missingRequirement(): string {
    return "no step was saved";
  }
}

export const stalledTrainingRule: RuleDefinition = {
  name: "StalledTrainingRule",
  source: "builtin",
  appliesToXgboost: true,
  description: "Fires when the job emits no new tensor for threshold seconds; can stop the job.",
  parameters: [
    { name: "threshold", type: "number", default: 1800, min: 0, minExclusive: true, description: "Seconds without a new step before firing." },
    { name: "stop_training_on_fire", type: "boolean", default: false, description: "Stop the training job when the rule fires." },
    {
      name: "training_job_name_prefix", type: "string", default: null,
      description: "Prefix of the training job to stop (default: the watched job); skipped when several jobs match.",
    },
  ],
  create: (p) => new StalledTraining(p),
  actions: (p) => (p.stop_training_on_fire ? [{ kind: "stoptraining", prefix: (p.training_job_name_prefix as string | null) ?? null }] : []),
};
