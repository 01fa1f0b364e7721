/** Classification rules: ClassImbalance, Confusion (spec §8.3). */
import type { TensorData } from "../../format/tensor.js";
import type {
  ParsedParameters, RequiredTensors, RuleDefinition, RuleInstance, StepContext, StepResult, StepValues,
} from "../types.js";
import { classIds, fmt } from "./common.js";

/** Concatenated class ids of several tensors (sorted by name). */
function idsOf(names: readonly string[], values: StepValues, argmax: boolean): number[] | null {
  const out: number[] = [];
  let any = false;
  for (const n of names) {
    const t: TensorData | undefined = values.get(n);
    if (!t || !t.values) continue;
    any = true;
    for (const id of classIds(t, argmax)) out.push(id);
  }
  return any ? out : null;
}

// ---------------------------------------------------------------------------------------------
// ClassImbalance
// ---------------------------------------------------------------------------------------------

/**
 * Documented outline; INFERRED details: class counts and per-class mispredictions accumulate over
 * every evaluated step; nothing is checked before `samples` labels were counted. Labels are rounded
 * to integers; predictions too (binary probabilities → 0/1), or argmax over the last axis when
 * `argmax` is True or the predictions are [N, K].
 */
class ClassImbalance implements RuleInstance {
  private counts = new Map<number, number>();
  private wrong = new Map<number, number>();
  private total = 0;
  private labels: string[] = [];
  private predictions: string[] = [];

  constructor(private readonly p: ParsedParameters) {}

  requiredTensors(ctx: StepContext): RequiredTensors {
    this.labels = ctx.trial.select({ regex: [this.p.labels_regex as string] }, ctx.step);
    this.predictions = ctx.trial.select({ regex: [this.p.predictions_regex as string] }, ctx.step)
      .filter((n) => !this.labels.includes(n));
    return [...this.labels, ...this.predictions].map((name) => ({ name, step: ctx.step }));
  }

  invokeAtStep(_ctx: StepContext, values: StepValues): StepResult {
    const labels = idsOf(this.labels, values, false);
    if (!labels) return { fired: false, checked: 0 };
    const preds = idsOf(this.predictions, values, this.p.argmax as boolean);
    for (let i = 0; i < labels.length; i++) {
      const c = labels[i];
      this.counts.set(c, (this.counts.get(c) ?? 0) + 1);
      if (preds && i < preds.length && preds[i] !== c) this.wrong.set(c, (this.wrong.get(c) ?? 0) + 1);
    }
    this.total += labels.length;
    const checked = this.labels.length + (preds ? this.predictions.length : 0);
    if (this.total < (this.p.samples as number)) return { fired: false, checked };
    let maxC = -1;
    let minC = -1;
    for (const [c, n] of this.counts) {
      if (maxC < 0 || n > this.counts.get(maxC)!) maxC = c;
      if (minC < 0 || n < this.counts.get(minC)!) minC = c;
    }
    const ratio = this.counts.get(maxC)! / this.counts.get(minC)!;
    const ti = this.p.threshold_imbalance as number;
    if (ratio > ti) {
      return {
        fired: true, tensor: this.labels[0], checked,
        details: `class ${maxC} has ${this.counts.get(maxC)} samples and class ${minC} has ${this.counts.get(minC)}: `
          + `ratio ${fmt(ratio)} > threshold_imbalance ${fmt(ti)} (${this.total} labels seen)`,
      };
    }
    if (preds) {
      const tm = this.p.threshold_misprediction as number;
      for (const [c, n] of [...this.counts].sort((a, b) => a[0] - b[0])) {
        const frac = (this.wrong.get(c) ?? 0) / n;
        if (frac > tm) {
          return {
            fired: true, tensor: this.predictions[0] ?? this.labels[0], checked,
            details: `${fmt(frac * 100)}% of the samples of class ${c} are mispredicted (threshold_misprediction ${fmt(tm)})`,
          };
        }
      }
    }
    return { fired: false, checked };
  }

  missingRequirement(): string {
    return `no labels tensor matched labels_regex ${this.p.labels_regex}`;
  }
}

export const classImbalance: RuleDefinition = {
  name: "ClassImbalance",
  source: "builtin",
  appliesToXgboost: true,
  description: "Fires on class imbalance in the labels, or when a class is mostly mispredicted.",
  parameters: [
    { name: "threshold_imbalance", type: "number", default: 10, min: 0, description: "Maximum ratio of the largest to the smallest class count." },
    {
      name: "threshold_misprediction", type: "number", default: 0.7, min: 0, max: 1,
      description: "Maximum fraction of mispredicted samples of a class.",
    },
    { name: "samples", type: "integer", default: 500, min: 1, description: "Labels to accumulate before the rule is evaluated." },
    { name: "argmax", type: "boolean", default: false, description: "Apply argmax over the last axis of the predictions." },
    { name: "labels_regex", type: "regexList", default: [".*labels"], description: "Regular expression selecting the labels tensors." },
    {
      name: "predictions_regex", type: "regexList", default: [".*predictions"],
      description: "Regular expression selecting the predictions tensors.",
    },
  ],
  create: (p) => new ClassImbalance({
    ...p,
    // regexList parses "a,b" into a list; these two are single patterns: rejoin what was split.
    labels_regex: (p.labels_regex as string[] | null)?.join(",") ?? ".*labels",
    predictions_regex: (p.predictions_regex as string[] | null)?.join(",") ?? ".*predictions",
  }),
};

// ---------------------------------------------------------------------------------------------
// Confusion
// ---------------------------------------------------------------------------------------------

/**
 * INFERRED (the documented diagonal formula contradicts the old tests): a confusion matrix per
 * step, confusion[label][prediction]; both checks normalized per column (predicted class):
 * confusion[i][i]/colsum ≥ min_diag and confusion[j][i]/colsum ≤ max_off_diag; empty columns skipped.
 */
class Confusion implements RuleInstance {
  private labels: string[] = [];
  private predictions: string[] = [];

  constructor(private readonly p: ParsedParameters) {}

  private pick(ctx: StepContext, name: string, collection: string): string[] {
    const at = ctx.trial.tensorNames({ step: ctx.step });
    if (at.includes(name)) return [name];
    return ctx.trial.select({ collections: [collection] }, ctx.step);
  }

  requiredTensors(ctx: StepContext): RequiredTensors {
    this.labels = this.pick(ctx, this.p.labels as string, this.p.labels_collection as string);
    this.predictions = this.pick(ctx, this.p.predictions as string, this.p.predictions_collection as string)
      .filter((n) => !this.labels.includes(n));
    if (!this.labels.length || !this.predictions.length) return [];
    return [...this.labels, ...this.predictions].map((name) => ({ name, step: ctx.step }));
  }

  invokeAtStep(_ctx: StepContext, values: StepValues): StepResult {
    const y = idsOf(this.labels, values, false);
    const yHat = idsOf(this.predictions, values, false);
    if (!y || !yHat) return { fired: false, checked: 0 };
    const n = Math.min(y.length, yHat.length);
    let largest = -1;
    for (let i = 0; i < n; i++) largest = Math.max(largest, y[i], yHat[i]);
    const k = (this.p.category_no as number | null) ?? largest + 1;
    if (k <= 0) return { fired: false, checked: 2 };
    const m = Array.from({ length: k }, () => new Array<number>(k).fill(0));
    for (let i = 0; i < n; i++) {
      if (y[i] >= 0 && y[i] < k && yHat[i] >= 0 && yHat[i] < k) m[y[i]][yHat[i]]++;
    }
    const minDiag = this.p.min_diag as number;
    const maxOff = this.p.max_off_diag as number;
    const tensor = this.predictions[0];
    for (let i = 0; i < k; i++) {
      let col = 0;
      for (let j = 0; j < k; j++) col += m[j][i];
      if (col === 0) continue;
      if (m[i][i] / col < minDiag) {
        return {
          fired: true, tensor, checked: 2,
          details: `predicted class ${i}: ${fmt(m[i][i] / col)} of its predictions are correct, below min_diag ${fmt(minDiag)}`,
        };
      }
      for (let j = 0; j < k; j++) {
        if (j !== i && m[j][i] / col > maxOff) {
          return {
            fired: true, tensor, checked: 2,
            details: `predicted class ${i}: ${fmt(m[j][i] / col)} of its predictions have label ${j}, above max_off_diag ${fmt(maxOff)}`,
          };
        }
      }
    }
    return { fired: false, checked: 2 };
  }

  missingRequirement(): string {
    return `labels (${this.p.labels} or collection ${this.p.labels_collection}) and predictions `
      + `(${this.p.predictions} or collection ${this.p.predictions_collection}) were never saved at the same step`;
  }
}

export const confusion: RuleDefinition = {
  name: "Confusion",
  source: "builtin",
  appliesToXgboost: true,
  description: "Builds the confusion matrix of labels and predictions and fires when it is not diagonal enough.",
  parameters: [
    {
      name: "category_no", type: "integer", default: null, min: 1,
      description: "Number of categories (default: the largest class id in labels and predictions + 1).",
    },
    { name: "labels", type: "string", default: "labels", description: "Name of the labels tensor." },
    { name: "predictions", type: "string", default: "predictions", description: "Name of the predictions tensor." },
    { name: "labels_collection", type: "string", default: "labels", description: "Collection of labels tensors, used when the labels tensor is absent." },
    {
      name: "predictions_collection", type: "string", default: "predictions",
      description: "Collection of predictions tensors, used when the predictions tensor is absent.",
    },
    { name: "min_diag", type: "number", default: 0.9, min: 0, max: 1, description: "Minimum share of correct predictions per predicted class." },
    { name: "max_off_diag", type: "number", default: 0.1, min: 0, max: 1, description: "Maximum share of one wrong label per predicted class." },
  ],
  create: (p) => new Confusion(p),
};
