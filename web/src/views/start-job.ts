// The "start a training job" form, prefilled with the lab's defaults.
import { h, clear, errorBox } from "../dom.js";
import { gqlWithJobFields, startJobMutation, type TrainingJob } from "../queries.js";

interface Column {
  key: string;
  label: string;
  placeholder?: string;
}

/** Editable rows of text fields (hyperparameters, channels, collection configs, rules). */
class RowsEditor {
  readonly element: HTMLElement;
  private readonly body = h("tbody", {});

  constructor(private readonly name: string, private readonly columns: Column[], rows: Record<string, string>[]) {
    this.element = h(
      "fieldset",
      { class: "rows-editor", "data-testid": `form-${name}` },
      h("legend", {}, name),
      h("table", {}, h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c.label)), h("th", {}, h("span", { class: "sr-only" }, "Remove")))), this.body),
      h("button", { type: "button", class: "small", onclick: () => this.addRow({}) }, `+ Add ${name.replace(/s$/, "")}`),
    );
    for (const r of rows) this.addRow(r);
  }

  private addRow(values: Record<string, string>): void {
    const index = this.body.children.length;
    const tr = h(
      "tr",
      {},
      this.columns.map((c) =>
        h("td", {}, h("input", { type: "text", name: `${this.name}.${index}.${c.key}`, "data-key": c.key, value: values[c.key] ?? "", placeholder: c.placeholder ?? "", "aria-label": `${this.name} ${index + 1} ${c.label}` })),
      ),
      h("td", {}, h("button", { type: "button", class: "link-button", "aria-label": `Remove ${this.name} row ${index + 1}`, onclick: () => tr.remove() }, "×")),
    );
    this.body.appendChild(tr);
  }

  rows(): Record<string, string>[] {
    return [...this.body.children].map((tr) => {
      const row: Record<string, string> = {};
      for (const input of tr.querySelectorAll<HTMLInputElement>("input[data-key]")) row[input.dataset.key!] = input.value.trim();
      return row;
    });
  }
}

export const LAB_DEFAULTS = {
  backend: "LOCAL",
  baseJobName: "xgboost-lab",
  algorithm: { builtin: "xgboost", version: "1.7-1" },
  hyperparameters: { max_depth: "5", eta: "0.2", gamma: "4", min_child_weight: "6", subsample: "0.7", objective: "reg:squarederror", num_round: "51" },
  inputs: [
    { name: "train", uri: "lab/abalone.train.libsvm", contentType: "libsvm" },
    { name: "validation", uri: "lab/abalone.validation.libsvm", contentType: "libsvm" },
  ],
  collections: [
    { name: "metrics", save_interval: "5" },
    { name: "feature_importance", save_interval: "5" },
    { name: "average_shap", save_interval: "5" },
  ],
  rules: [{ builtin: "LossNotDecreasing", parameters: JSON.stringify({ collection_names: "metrics", num_steps: "10" }) }],
};

function field(label: string, input: HTMLElement): HTMLElement {
  return h("label", { class: "field" }, h("span", {}, label), input);
}

export function startJobForm(onStarted: (job: TrainingJob) => void): HTMLElement {
  const backend = h("select", { name: "backend", "data-testid": "form-backend" }, h("option", { value: "LOCAL" }, "LOCAL"), h("option", { value: "SAGEMAKER" }, "SAGEMAKER"));
  backend.value = LAB_DEFAULTS.backend;
  const name = h("input", { type: "text", name: "name", placeholder: "(optional exact name)", "data-testid": "form-name" });
  const baseJobName = h("input", { type: "text", name: "baseJobName", value: LAB_DEFAULTS.baseJobName, "data-testid": "form-base-job-name" });
  const builtin = h("input", { type: "text", name: "algorithm.builtin", value: LAB_DEFAULTS.algorithm.builtin });
  const version = h("input", { type: "text", name: "algorithm.version", value: LAB_DEFAULTS.algorithm.version });
  const outputPath = h("input", { type: "text", name: "outputPath", placeholder: "s3://bucket/prefix (SageMaker)" });
  const instanceType = h("input", { type: "text", name: "instanceType", placeholder: "ml.m5.xlarge (SageMaker)" });
  const roleArn = h("input", { type: "text", name: "roleArn", placeholder: "arn:aws:iam::… (SageMaker)" });
  const hyper = new RowsEditor("hyperparameters", [{ key: "key", label: "Name" }, { key: "value", label: "Value" }], Object.entries(LAB_DEFAULTS.hyperparameters).map(([key, value]) => ({ key, value })));
  const inputs = new RowsEditor(
    "inputs",
    [
      { key: "name", label: "Channel", placeholder: "train" },
      { key: "uri", label: "URI", placeholder: "s3://… or a path in the data directory" },
      { key: "contentType", label: "Content type", placeholder: "libsvm" },
    ],
    LAB_DEFAULTS.inputs,
  );
  const collections = new RowsEditor("collections", [{ key: "name", label: "Collection" }, { key: "save_interval", label: "save_interval" }], LAB_DEFAULTS.collections);
  const rules = new RowsEditor("rules", [{ key: "builtin", label: "Built-in rule" }, { key: "parameters", label: "Parameters (JSON object)" }], LAB_DEFAULTS.rules);
  const status = h("div", { class: "form-status", "aria-live": "polite", "data-testid": "start-job-status" });
  const submit = h("button", { type: "submit", class: "primary", "data-testid": "start-job-submit" }, "Start job");

  const buildInput = (): Record<string, unknown> => {
    const hyperparameters: Record<string, string> = {};
    for (const r of hyper.rows()) if (r.key) hyperparameters[r.key] = r.value;
    const ruleInputs = rules.rows()
      .filter((r) => r.builtin)
      .map((r) => {
        let parameters: unknown = undefined;
        if (r.parameters) {
          try {
            parameters = JSON.parse(r.parameters);
          } catch {
            throw new Error(`Rule ${r.builtin}: parameters are not valid JSON`);
          }
        }
        return { builtin: r.builtin, ...(parameters !== undefined ? { parameters } : {}) };
      });
    const input: Record<string, unknown> = {
      backend: backend.value,
      algorithm: { builtin: builtin.value.trim() || null, version: version.value.trim() || null },
      hyperparameters,
      inputs: inputs.rows().filter((r) => r.name && r.uri).map((r) => ({ name: r.name, uri: r.uri, ...(r.contentType ? { contentType: r.contentType } : {}) })),
      debugHookConfig: {
        collectionConfigs: collections.rows().filter((r) => r.name).map((r) => ({ name: r.name, ...(r.save_interval ? { parameters: { save_interval: r.save_interval } } : {}) })),
      },
      rules: ruleInputs,
    };
    if (name.value.trim()) input.name = name.value.trim();
    else input.baseJobName = baseJobName.value.trim();
    if (outputPath.value.trim()) input.outputPath = outputPath.value.trim();
    if (instanceType.value.trim()) input.instanceType = instanceType.value.trim();
    if (roleArn.value.trim()) input.roleArn = roleArn.value.trim();
    return input;
  };

  const form = h(
    "form",
    {
      class: "start-job",
      "data-testid": "start-job-form",
      "aria-label": "Start a training job",
      onsubmit: async (e: Event) => {
        e.preventDefault();
        submit.disabled = true;
        clear(status, h("span", { class: "muted" }, "Starting…"));
        try {
          const input = buildInput();
          const r = await gqlWithJobFields<{ startTrainingJob: TrainingJob }>(startJobMutation, { input });
          const job = r.startTrainingJob;
          clear(status, h("span", { class: "ok", "data-testid": "start-job-ok", "data-job-name": job.name }, "Started ", h("a", { href: `#/job?name=${encodeURIComponent(job.name)}` }, job.name)));
          onStarted(job);
        } catch (err) {
          clear(status, errorBox(err, "start-job-error"));
        } finally {
          submit.disabled = false;
        }
      },
    },
    h(
      "div",
      { class: "form-grid" },
      field("Backend", backend),
      field("Base job name", baseJobName),
      field("Exact job name", name),
      field("Algorithm", builtin),
      field("Version", version),
    ),
    h("div", { class: "grid-2" }, hyper.element, h("div", {}, inputs.element, collections.element, rules.element)),
    h("details", { class: "advanced" }, h("summary", {}, "SageMaker options"), h("div", { class: "form-grid" }, field("Output path", outputPath), field("Instance type", instanceType), field("Role ARN", roleArn))),
    h("div", { class: "form-actions" }, submit, status),
  );
  return form;
}
