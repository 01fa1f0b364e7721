// The "start a training job" form, prefilled with the lab's defaults.
import { GraphQLRequestError } from "../api.js";
import { h, clear, errorBox } from "../dom.js";
import { gqlWithJobFields, startJobMutation, type TrainingJob } from "../queries.js";

interface Column {
  key: string;
  label: string;
  placeholder?: string;
  /** Share of the row's width, e.g. "50%" (long values: URIs, JSON). */
  width?: string;
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
      h(
        "table",
        {},
        h("colgroup", {}, columns.map((c) => h("col", { style: c.width ? `width:${c.width}` : null })), h("col", { class: "remove-col" })),
        h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c.label)), h("th", {}, h("span", { class: "sr-only" }, "Remove")))),
        this.body,
      ),
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
    return this.rowElements().map((tr) => {
      const row: Record<string, string> = {};
      for (const input of tr.querySelectorAll<HTMLInputElement>("input[data-key]")) row[input.dataset.key!] = input.value.trim();
      return row;
    });
  }

  rowElements(): HTMLElement[] {
    return [...this.body.children] as HTMLElement[];
  }

  /** The input of column `key` in the row the filter keeps (the API names rows after empty ones are dropped). */
  input(index: number, key: string, kept: (row: Record<string, string>) => boolean = () => true): HTMLInputElement | null {
    const rows = this.rows();
    const tr = this.rowElements().filter((_, i) => kept(rows[i]))[index];
    return tr?.querySelector<HTMLInputElement>(`input[data-key="${key}"]`) ?? null;
  }

  /** The input of column `key` in the first row whose `match` column equals `value`. */
  inputWhere(match: string, value: string, key: string): HTMLInputElement | null {
    const rows = this.rows();
    const i = rows.findIndex((r) => r[match]?.toLowerCase() === value.toLowerCase());
    return i < 0 ? null : this.rowElements()[i].querySelector<HTMLInputElement>(`input[data-key="${key}"]`);
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
      { key: "name", label: "Channel", placeholder: "train", width: "20%" },
      { key: "uri", label: "URI", placeholder: "s3://… or a path in the data directory", width: "58%" },
      { key: "contentType", label: "Content type", placeholder: "libsvm", width: "22%" },
    ],
    LAB_DEFAULTS.inputs,
  );
  const collections = new RowsEditor("collections", [{ key: "name", label: "Collection" }, { key: "save_interval", label: "save_interval" }], LAB_DEFAULTS.collections);
  const rules = new RowsEditor("rules", [{ key: "builtin", label: "Built-in rule", width: "30%" }, { key: "parameters", label: "Parameters (JSON object)", width: "70%" }], LAB_DEFAULTS.rules);
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

  const fixed: Record<string, HTMLInputElement | HTMLSelectElement> = {
    backend, name, baseJobName, outputPath, instanceType, roleArn, "algorithm.builtin": builtin, "algorithm.version": version,
  };
  /**
   * The input an API error is about, from extensions.field ("inputs[1].uri", "hyperparameters.eta",
   * "rules[0].builtin") and extensions.rule (a rule parameter's error names the rule).
   */
  const inputFor = (ext: Record<string, unknown>): HTMLInputElement | HTMLSelectElement | null => {
    const field = typeof ext.field === "string" ? ext.field.replace(/\[(\d+)\]/g, ".$1") : "";
    if (typeof ext.rule === "string") return rules.inputWhere("builtin", ext.rule, "parameters");
    if (fixed[field]) return fixed[field];
    let m = /^hyperparameters\.(.+)$/.exec(field);
    if (m) return hyper.inputWhere("key", m[1], "value");
    m = /^inputs\.(\d+)\.(name|uri|contentType)$/.exec(field);
    if (m) return inputs.input(Number(m[1]), m[2], (r) => Boolean(r.name && r.uri));
    m = /^(?:debugHookConfig\.)?collectionConfigs\.(\d+)/.exec(field);
    if (m) return collections.input(Number(m[1]), "name", (r) => Boolean(r.name));
    m = /^rules\.(\d+)\.(\w+)/.exec(field);
    if (m) return rules.input(Number(m[1]), m[2] === "parameters" ? "parameters" : "builtin", (r) => Boolean(r.builtin));
    if (field === "builtin" || field === "rules") return rules.input(0, "builtin");
    return null;
  };
  const clearInvalid = () => {
    for (const el of form.querySelectorAll("[aria-invalid=true]")) {
      el.removeAttribute("aria-invalid");
      el.removeAttribute("aria-describedby");
    }
  };
  const markInvalid = (err: unknown) => {
    const ext = err instanceof GraphQLRequestError ? err.errors[0]?.extensions ?? {} : {};
    const target = inputFor(ext);
    if (!target) return;
    target.setAttribute("aria-invalid", "true");
    target.setAttribute("aria-describedby", "start-job-error");
    // A collapsed section would hide the field at fault.
    const details = target.closest("details");
    if (details) details.open = true;
    target.focus();
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
        clearInvalid();
        clear(status, h("span", { class: "muted" }, "Starting…"));
        try {
          const input = buildInput();
          const r = await gqlWithJobFields<{ startTrainingJob: TrainingJob }>(startJobMutation, { input });
          const job = r.startTrainingJob;
          clear(status, h("span", { class: "ok", "data-testid": "start-job-ok", "data-job-name": job.name }, "Started ", h("a", { href: `#/job?name=${encodeURIComponent(job.name)}` }, job.name)));
          onStarted(job);
        } catch (err) {
          const box = errorBox(err, "start-job-error");
          box.id = "start-job-error";
          clear(status, box);
          markInvalid(err);
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
    h("div", { class: "grid-2" }, hyper.element, collections.element),
    inputs.element,
    rules.element,
    h("details", { class: "advanced" }, h("summary", {}, "SageMaker options"), h("div", { class: "form-grid" }, field("Output path", outputPath), field("Instance type", instanceType), field("Role ARN", roleArn))),
    h("div", { class: "form-actions" }, submit, status),
  );
  form.addEventListener("input", (e) => {
    const el = e.target as HTMLElement;
    if (el.getAttribute("aria-invalid") === "true") el.removeAttribute("aria-invalid");
  });
  return form;
}
