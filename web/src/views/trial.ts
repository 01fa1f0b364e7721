// The trial panels (metrics, feature importance by type, average SHAP, importance ranking,
// tensor explorer), used by the trial page and the job page.
import { gql, onConnected, subscribe } from "../api.js";
import { LineChart, barList, type LineSeriesInput, type RuleMarker, type StepRange } from "../chart.js";
import { axisLabel } from "../../../src/report/plot-style.js";
import { h, clear, badge, errorBox, formatNumber, showGlobalError, testidPart } from "../dom.js";
import { seriesFields, stepsAddedSubscription, type CollectionSeries, type RuleSummary, type StepsAddedEvent, type TensorSeries, type NonFinite } from "../queries.js";
import type { View } from "../router.js";

/** Points per series when showing a whole run; the server downsamples, keeping first and last. */
export const OVERVIEW_POINTS = 600;
/** Points per series inside a zoomed range: enough to be full resolution for any range a person zooms to. */
export const ZOOM_POINTS = 5000;

export const IMPORTANCE_TYPES = ["weight", "gain", "cover", "total_gain", "total_cover"] as const;

interface CollectionInfo {
  name: string;
  tensorNames: string[];
}

interface TrialPageData {
  trial: {
    id: string;
    path: string;
    steps: number[];
    lastCompleteStep: number | null;
    trainingEnded: boolean;
    workers: string[];
    collections: CollectionInfo[];
    metrics: CollectionSeries | null;
    importance: CollectionSeries | null;
    importanceLatest: { tensors: { name: string; series: { steps: number[]; values: (number | null)[] } }[] } | null;
    shap: CollectionSeries | null;
  } | null;
}

type ChartKey = "m" | "f" | "s";

const trialPageQuery = `query TrialPage($path: String!, $mFrom: Int, $mTo: Int, $mMax: Int, $fFrom: Int, $fTo: Int, $fMax: Int, $sFrom: Int, $sTo: Int, $sMax: Int) {
  trial(path: $path) {
    id path steps lastCompleteStep trainingEnded workers
    collections { name tensorNames }
    metrics: collection(name: "metrics") { name tensors { name series(fromStep: $mFrom, toStep: $mTo, maxPoints: $mMax) { ${seriesFields} } } }
    importance: collection(name: "feature_importance") { name tensors { name series(fromStep: $fFrom, toStep: $fTo, maxPoints: $fMax) { ${seriesFields} } } }
    importanceLatest: collection(name: "feature_importance") { tensors { name series(maxPoints: 2) { steps values } } }
    shap: collection(name: "average_shap") { name tensors { name series(fromStep: $sFrom, toStep: $sTo, maxPoints: $sMax) { ${seriesFields} } } }
  }
}`;

const collectionSeriesQuery = `query CollectionSeries($path: String!, $collection: String!, $from: Int, $to: Int, $max: Int) {
  trial(path: $path) { id collection(name: $collection) { name tensors { name series(fromStep: $from, toStep: $to, maxPoints: $max) { ${seriesFields} } } } }
}`;

/** "feature_importance/gain/Length" -> { type: "gain", feature: "Length" } */
export function parseImportanceName(name: string): { type: string; feature: string } | null {
  const m = /^feature_importance\/([^/]+)\/(.+)$/.exec(name);
  return m ? { type: m[1], feature: m[2] } : null;
}

function stripPrefix(name: string, prefix: string): string {
  return name.startsWith(prefix) ? name.slice(prefix.length) : name;
}

/** One line per tensor; colours and dashes come from the chart's palette by position. */
function toLines(tensors: TensorSeries[], label: (t: TensorSeries) => string): LineSeriesInput[] {
  // f2 before f10: features in their natural order, so colours follow it too.
  return byNaturalName(tensors).map((t) => ({ label: label(t), title: t.name, tensor: t.name, steps: t.series.steps, values: t.series.values }));
}

/** Sorted by name with numbers compared as numbers ("f2" < "f10"). */
export function byNaturalName<T extends { name: string }>(items: readonly T[]): T[] {
  return items.slice().sort((a, b) => a.name.localeCompare(b.name, "en", { numeric: true }));
}

/** Every finding of every rule, as markers for the charts of the tensors it names. */
export function ruleMarkers(rules: readonly RuleSummary[]): RuleMarker[] {
  return rules.flatMap((r) => (r.findings ?? []).map((f) => ({ rule: r.ruleConfigurationName, step: f.step, tensors: f.tensorNames, message: f.message })));
}

function meta(tensors: TensorSeries[]): { sampled: boolean; nonFiniteCount: number } {
  return {
    sampled: tensors.some((t) => t.series.sampled),
    nonFiniteCount: tensors.reduce((n, t) => n + t.series.nonFinite.length, 0),
  };
}

export interface TrialPanelsOptions {
  /** Extra work after each live refresh (the job page refreshes the job's progress). */
  onStepsAdded?: (event: StepsAddedEvent["trialStepsAdded"]) => void;
}

export class TrialPanels {
  readonly element: HTMLElement;
  private readonly summary = h("div", { class: "trial-summary", "data-testid": "trial-summary" });
  private readonly errors = h("div", { class: "panel-errors" });
  /** The charts and explorer: hidden until the trial has loaded once. */
  private readonly body = h("div", { hidden: true });
  private readonly metricsChart: LineChart;
  private readonly importanceChart: LineChart;
  private readonly shapChart: LineChart;
  private readonly typePicker = h("div", { class: "segmented", role: "radiogroup", "aria-label": "Feature importance type", "data-testid": "importance-types" });
  private readonly ranking = h("div", { class: "ranking" });
  private readonly rankingCaption = h("span", { class: "muted" });
  private readonly explorer: TensorExplorer;
  private importanceType = "gain";
  private data: TrialPageData["trial"] = null;
  private ranges: Record<ChartKey, StepRange | null> = { m: null, f: null, s: null };
  private zoomSeq: Record<ChartKey, number> = { m: 0, f: 0, s: 0 };
  private unsubscribe: (() => void) | undefined;
  private refreshing = false;
  private refreshAgain = false;
  private destroyed = false;
  private lastRefresh = 0;
  private timer: number | undefined;

  constructor(readonly path: string, private readonly opts: TrialPanelsOptions = {}) {
    this.metricsChart = new LineChart({ title: "Metrics", testid: "metrics-chart", onZoom: (r) => this.zoom("m", r), emptyText: "No metrics saved yet.", yLabel: "metric value", runMarkers: true });
    this.importanceChart = new LineChart({ title: "Feature importance", testid: "importance-chart", onZoom: (r) => this.zoom("f", r), emptyText: "No feature importance saved yet." });
    this.shapChart = new LineChart({ title: "Average SHAP", testid: "shap-chart", onZoom: (r) => this.zoom("s", r), emptyText: "No average SHAP values saved yet.", yLabel: axisLabel("average_shap", []) });
    this.explorer = new TensorExplorer(path);
    this.element = h(
      "section",
      { class: "trial-panels", "aria-label": `Trial ${path}` },
      this.summary,
      this.errors,
      this.body,
    );
    clear(
      this.body,
      h("div", { class: "card" }, this.metricsChart.element),
      h(
        "div",
        { class: "grid-2" },
        h("div", { class: "card" }, this.typePicker, this.importanceChart.element),
        h("div", { class: "card" }, h("div", { class: "card-head" }, h("h3", {}, "Latest feature-importance ranking"), this.rankingCaption), this.ranking),
      ),
      h("div", { class: "card" }, this.shapChart.element),
      h("div", { class: "card" }, this.explorer.element),
    );
    this.renderTypePicker([]);
  }

  async start(): Promise<void> {
    // A trial that cannot be read (bad or forbidden path) is not worth a subscription.
    if (!(await this.refresh()) || this.destroyed) return;
    this.unsubscribe = subscribe<StepsAddedEvent>(
      stepsAddedSubscription,
      { path: this.path },
      (ev) => {
        this.scheduleRefresh();
        this.opts.onStepsAdded?.(ev.trialStepsAdded);
      },
      (err) => showGlobalError(err),
    );
    // Steps written while the socket was down produce no event: refetch on every (re)connect.
    const offConnection = onConnected(() => this.scheduleRefresh());
    const offSteps = this.unsubscribe;
    this.unsubscribe = () => {
      offSteps();
      offConnection();
    };
  }

  /** Coalesce bursts of step events into at most one refresh in flight plus one queued. */
  scheduleRefresh(): void {
    if (this.destroyed) return;
    if (this.refreshing) {
      this.refreshAgain = true;
      return;
    }
    if (this.timer !== undefined) return;
    const wait = Math.max(0, 400 - (Date.now() - this.lastRefresh));
    this.timer = window.setTimeout(() => {
      this.timer = undefined;
      void this.refresh();
    }, wait);
  }

  private vars(): Record<string, unknown> {
    const v: Record<string, unknown> = { path: this.path };
    for (const key of ["m", "f", "s"] as ChartKey[]) {
      const r = this.ranges[key];
      v[`${key}From`] = r?.from ?? null;
      v[`${key}To`] = r?.to ?? null;
      v[`${key}Max`] = r ? ZOOM_POINTS : OVERVIEW_POINTS;
    }
    return v;
  }

  /** Fetches everything the panels show in one request; false when it failed. */
  async refresh(): Promise<boolean> {
    if (this.destroyed) return false;
    this.refreshing = true;
    try {
      const seqAtStart = { ...this.zoomSeq };
      const result = await gql<TrialPageData>(trialPageQuery, this.vars());
      if (this.destroyed) return false;
      // A chart zoomed while this request was out keeps what its own zoom request fetched.
      const previous = this.data;
      if (result.trial && previous) {
        if (seqAtStart.m !== this.zoomSeq.m) result.trial.metrics = previous.metrics;
        if (seqAtStart.f !== this.zoomSeq.f) result.trial.importance = previous.importance;
        if (seqAtStart.s !== this.zoomSeq.s) result.trial.shap = previous.shap;
      }
      this.data = result.trial;
      this.errors.replaceChildren();
      this.render();
      this.explorer.update(result.trial?.collections ?? []);
      return true;
    } catch (err) {
      if (!this.destroyed) clear(this.errors, errorBox(err, "trial-error"));
      return false;
    } finally {
      this.refreshing = false;
      this.lastRefresh = Date.now();
      if (this.refreshAgain) {
        this.refreshAgain = false;
        this.scheduleRefresh();
      }
    }
  }

  private async zoom(key: ChartKey, range: StepRange | null): Promise<void> {
    this.ranges[key] = range;
    // Only the latest zoom of a chart may land (an older, slower answer must not overwrite it).
    const seq = ++this.zoomSeq[key];
    const collection = key === "m" ? "metrics" : key === "f" ? "feature_importance" : "average_shap";
    try {
      const result = await gql<{ trial: { collection: CollectionSeries | null } | null }>(collectionSeriesQuery, {
        path: this.path,
        collection,
        from: range?.from ?? null,
        to: range?.to ?? null,
        max: range ? ZOOM_POINTS : OVERVIEW_POINTS,
      });
      if (this.destroyed || !this.data || seq !== this.zoomSeq[key]) return;
      const col = result.trial?.collection ?? null;
      if (key === "m") this.data.metrics = col;
      else if (key === "f") this.data.importance = col;
      else this.data.shap = col;
      this.render();
    } catch (err) {
      clear(this.errors, errorBox(err, "trial-error"));
    }
  }

  private render(): void {
    const t = this.data;
    this.body.hidden = !t;
    if (!t) {
      clear(this.summary, h("p", { class: "empty", "data-testid": "trial-missing" }, `No trial at "${this.path}" yet. It appears here as soon as the job writes its first step.`));
      for (const c of [this.metricsChart, this.importanceChart, this.shapChart]) c.setData([], { sampled: false, nonFiniteCount: 0 });
      return;
    }
    const last = t.steps.length ? t.steps[t.steps.length - 1] : null;
    clear(
      this.summary,
      h(
        "dl",
        { class: "facts" },
        h("div", {}, h("dt", {}, "Path"), h("dd", {}, h("code", { "data-testid": "trial-path" }, t.path))),
        h("div", {}, h("dt", {}, "Steps"), h("dd", { "data-testid": "trial-steps" }, `${t.steps.length}${last != null ? ` (last ${last})` : ""}`)),
        h("div", {}, h("dt", {}, "Last complete step"), h("dd", { "data-testid": "trial-last-complete" }, formatNumber(t.lastCompleteStep))),
        h("div", {}, h("dt", {}, "Workers"), h("dd", {}, t.workers.join(", ") || "—")),
        h("div", {}, h("dt", {}, "Training"), h("dd", {}, badge(t.trainingEnded ? "ENDED" : "RUNNING", "trial-training-state"))),
        h("div", {}, h("dt", {}, "Compare"), h("dd", {}, h("a", { href: `#/compare?paths=${encodeURIComponent(t.path)}` }, "Compare with other runs"))),
      ),
    );

    const metrics = t.metrics?.tensors ?? [];
    this.metricsChart.setYLabel(axisLabel("metrics", metrics.map((x) => x.name)));
    this.metricsChart.setData(toLines(metrics, (x) => x.name), meta(metrics));

    const importance = t.importance?.tensors ?? [];
    const byType = new Map<string, TensorSeries[]>();
    for (const tensor of importance) {
      const parsed = parseImportanceName(tensor.name);
      if (!parsed) continue;
      if (!byType.has(parsed.type)) byType.set(parsed.type, []);
      byType.get(parsed.type)!.push(tensor);
    }
    const known = IMPORTANCE_TYPES.filter((x) => byType.has(x));
    const types = [...known, ...[...byType.keys()].filter((x) => !known.includes(x as (typeof IMPORTANCE_TYPES)[number])).sort()];
    if (types.length && !types.includes(this.importanceType)) this.importanceType = types[0];
    this.renderTypePicker(types);
    const selected = byType.get(this.importanceType) ?? [];
    this.importanceChart.setTitle(`Feature importance: ${this.importanceType}`);
    this.importanceChart.setYLabel(axisLabel("feature_importance", [], this.importanceType));
    this.importanceChart.element.dataset.importanceType = this.importanceType;
    this.importanceChart.setData(toLines(selected, (x) => parseImportanceName(x.name)!.feature), meta(selected));

    const latest = (t.importanceLatest?.tensors ?? [])
      .map((x) => ({ parsed: parseImportanceName(x.name), series: x.series }))
      .filter((x) => x.parsed?.type === this.importanceType);
    let atStep: number | null = null;
    const items = latest.map((x) => {
      const n = x.series.steps.length;
      if (n && (atStep == null || x.series.steps[n - 1] > atStep)) atStep = x.series.steps[n - 1];
      return { label: x.parsed!.feature, value: n ? x.series.values[n - 1] : null };
    });
    this.rankingCaption.textContent = atStep != null ? `${this.importanceType}, step ${atStep}` : this.importanceType;
    clear(this.ranking, barList(items, "importance-ranking", `Features ranked by ${this.importanceType}`));

    const shap = t.shap?.tensors ?? [];
    this.shapChart.setData(toLines(shap, (x) => stripPrefix(x.name, "average_shap/")), meta(shap));
  }

  /** Marks where the job's rules fired on the charts of the tensors they name. */
  setRuleFindings(rules: readonly RuleSummary[]): void {
    const markers = ruleMarkers(rules);
    for (const c of [this.metricsChart, this.importanceChart, this.shapChart]) c.setMarkers(markers);
  }

  private renderTypePicker(types: string[]): void {
    const current = [...this.typePicker.querySelectorAll("button")].map((b) => b.dataset.type).join(",");
    if (current === types.join(",")) {
      for (const b of this.typePicker.querySelectorAll("button")) {
        const on = b.dataset.type === this.importanceType;
        b.setAttribute("aria-checked", String(on));
        b.classList.toggle("active", on);
      }
      return;
    }
    clear(
      this.typePicker,
      types.length === 0 ? h("span", { class: "muted" }, "Importance types appear once saved.") : null,
      types.map((type) =>
        h(
          "button",
          {
            type: "button",
            role: "radio",
            class: type === this.importanceType ? "active" : "",
            "aria-checked": String(type === this.importanceType),
            "data-type": type,
            "data-testid": `importance-type-${testidPart(type)}`,
            onclick: () => {
              this.importanceType = type;
              this.render();
            },
          },
          type,
        ),
      ),
    );
  }

  destroy(): void {
    this.destroyed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.unsubscribe?.();
    this.metricsChart.destroy();
    this.importanceChart.destroy();
    this.shapChart.destroy();
    this.explorer.destroy();
  }
}

interface TensorValueData {
  step: number;
  mode: string;
  modeStep: number;
  worker: string;
  dtype: string;
  shape: number[];
  data: (number | null)[] | null;
  nonFinite: NonFinite[];
  strings: string[] | null;
  scalar: number | null;
}

const tensorStepsQuery = `query TensorSteps($path: String!, $name: String!) {
  trial(path: $path) { id tensor(name: $name) { id name steps workers } }
}`;
const tensorValueQuery = `query TensorValue($path: String!, $name: String!, $step: Int!) {
  trial(path: $path) { id tensor(name: $name) { id name value(step: $step) { step mode modeStep worker dtype shape data nonFinite { index value } strings scalar } } }
}`;

const MAX_ELEMENTS_SHOWN = 500;

/** collections -> tensors -> value at a step (shape, dtype, elements). */
class TensorExplorer {
  readonly element: HTMLElement;
  private collections: CollectionInfo[] = [];
  private readonly collectionSelect = h("select", { "aria-label": "Collection", "data-testid": "explorer-collection" });
  private readonly tensorSelect = h("select", { "aria-label": "Tensor", "data-testid": "explorer-tensor" });
  private readonly stepSelect = h("select", { "aria-label": "Step", "data-testid": "explorer-step" });
  private readonly followLatest = h("input", { type: "checkbox", checked: true, "data-testid": "explorer-follow" });
  private readonly output = h("div", { class: "explorer-output", "data-testid": "explorer-output", "aria-live": "polite" });
  private destroyed = false;
  private request = 0;

  constructor(private readonly path: string) {
    this.collectionSelect.addEventListener("change", () => this.fillTensors());
    this.tensorSelect.addEventListener("change", () => void this.loadSteps());
    this.stepSelect.addEventListener("change", () => {
      this.followLatest.checked = this.stepSelect.selectedIndex === this.stepSelect.options.length - 1;
      void this.loadValue();
    });
    this.element = h(
      "div",
      { class: "explorer", "data-testid": "tensor-explorer" },
      h("div", { class: "card-head" }, h("h3", {}, "Tensor explorer")),
      h(
        "div",
        { class: "explorer-controls" },
        h("label", {}, "Collection ", this.collectionSelect),
        h("label", {}, "Tensor ", this.tensorSelect),
        h("label", {}, "Step ", this.stepSelect),
        h("label", { class: "inline" }, this.followLatest, " follow latest step"),
      ),
      this.output,
    );
  }

  /** Called on every trial refresh: keep the selection, pick up new collections, tensors and steps. */
  update(all: CollectionInfo[]): void {
    // A collection the hook configured but never saved a tensor of has nothing to explore.
    const collections = all.filter((c) => c.tensorNames.length > 0);
    const prevCollections = JSON.stringify(this.collections);
    this.collections = collections;
    if (JSON.stringify(collections) !== prevCollections) {
      const selected = this.collectionSelect.value;
      clear(this.collectionSelect, collections.map((c) => h("option", { value: c.name }, `${c.name} (${c.tensorNames.length})`)));
      if (collections.some((c) => c.name === selected)) this.collectionSelect.value = selected;
      else if (collections.some((c) => c.name === "metrics")) this.collectionSelect.value = "metrics";
      this.fillTensors(true);
    } else if (this.followLatest.checked && this.tensorSelect.value) {
      void this.loadSteps(true);
    }
  }

  private fillTensors(keep = false): void {
    const col = this.collections.find((c) => c.name === this.collectionSelect.value);
    const selected = this.tensorSelect.value;
    const names = col?.tensorNames ?? [];
    clear(this.tensorSelect, names.map((n) => h("option", { value: n }, n)));
    if (keep && names.includes(selected)) this.tensorSelect.value = selected;
    if (names.length) void this.loadSteps(keep);
    else {
      this.stepSelect.replaceChildren();
      clear(this.output, h("p", { class: "empty" }, "This collection has no tensors yet."));
    }
  }

  private async loadSteps(keepStep = false): Promise<void> {
    const name = this.tensorSelect.value;
    if (!name) return;
    const id = ++this.request;
    try {
      const r = await gql<{ trial: { tensor: { steps: number[]; workers: string[] } | null } | null }>(tensorStepsQuery, { path: this.path, name });
      if (this.destroyed || id !== this.request) return;
      const steps = r.trial?.tensor?.steps ?? [];
      const selected = this.stepSelect.value;
      clear(this.stepSelect, steps.map((s) => h("option", { value: String(s) }, String(s))));
      if (steps.length === 0) {
        clear(this.output, h("p", { class: "empty" }, "No steps saved for this tensor yet."));
        return;
      }
      if (this.followLatest.checked || !keepStep || !steps.includes(Number(selected))) this.stepSelect.value = String(steps[steps.length - 1]);
      else this.stepSelect.value = selected;
      await this.loadValue(id);
    } catch (err) {
      if (!this.destroyed && id === this.request) clear(this.output, errorBox(err, "explorer-error"));
    }
  }

  private async loadValue(requestId?: number): Promise<void> {
    const name = this.tensorSelect.value;
    const step = Number(this.stepSelect.value);
    if (!name || this.stepSelect.value === "") return;
    const id = requestId ?? ++this.request;
    try {
      const r = await gql<{ trial: { tensor: { value: TensorValueData | null } | null } | null }>(tensorValueQuery, { path: this.path, name, step });
      if (this.destroyed || id !== this.request) return;
      const v = r.trial?.tensor?.value;
      if (!v) {
        clear(this.output, h("p", { class: "empty" }, "No value."));
        return;
      }
      this.renderValue(name, v);
    } catch (err) {
      if (!this.destroyed && id === this.request) clear(this.output, errorBox(err, "explorer-error"));
    }
  }

  private renderValue(name: string, v: TensorValueData): void {
    const count = v.shape.reduce((a, b) => a * b, 1);
    const nonFinite = new Map(v.nonFinite.map((n) => [n.index, n.value]));
    const elements: { index: number; value: string }[] = [];
    const source = v.strings ?? v.data ?? [];
    for (let i = 0; i < Math.min(source.length, MAX_ELEMENTS_SHOWN); i++) {
      const raw = source[i];
      elements.push({ index: i, value: nonFinite.get(i) ?? (typeof raw === "string" ? raw : formatNumber(raw)) });
    }
    const multiIndex = (i: number): string => {
      if (v.shape.length <= 1) return String(i);
      const idx: number[] = [];
      let rest = i;
      for (let d = v.shape.length - 1; d >= 0; d--) {
        idx.unshift(rest % v.shape[d]);
        rest = Math.floor(rest / v.shape[d]);
      }
      return `[${idx.join(", ")}]`;
    };
    clear(
      this.output,
      h(
        "dl",
        { class: "facts" },
        h("div", {}, h("dt", {}, "Tensor"), h("dd", {}, h("code", {}, name))),
        h("div", {}, h("dt", {}, "Step"), h("dd", { "data-testid": "explorer-value-step" }, `${v.step} (${v.mode} step ${v.modeStep})`)),
        h("div", {}, h("dt", {}, "Worker"), h("dd", {}, v.worker)),
        h("div", {}, h("dt", {}, "dtype"), h("dd", { "data-testid": "explorer-dtype" }, h("code", {}, v.dtype))),
        h("div", {}, h("dt", {}, "Shape"), h("dd", { "data-testid": "explorer-shape" }, h("code", {}, `[${v.shape.join(", ")}]`))),
        v.scalar != null ? h("div", {}, h("dt", {}, "Scalar"), h("dd", { "data-testid": "explorer-scalar" }, formatNumber(v.scalar))) : null,
      ),
      elements.length
        ? h(
            "table",
            { class: "values-table", "aria-label": `Elements of ${name} at step ${v.step}` },
            h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "index"), h("th", { scope: "col" }, "value"))),
            h("tbody", {}, elements.map((e) => h("tr", {}, h("td", {}, multiIndex(e.index)), h("td", { class: nonFinite.has(e.index) ? "nonfinite" : "" }, e.value)))),
          )
        : null,
      count > MAX_ELEMENTS_SHOWN ? h("p", { class: "muted" }, `Showing ${MAX_ELEMENTS_SHOWN} of ${count} elements.`) : null,
    );
  }

  destroy(): void {
    this.destroyed = true;
  }
}

/** #/trial?path=... */
export function trialView(root: HTMLElement, params: URLSearchParams): View {
  const path = params.get("path") ?? "";
  if (!path) {
    clear(root, errorBox(new Error("Missing ?path= in the address"), "route-error"));
    return { destroy: () => undefined };
  }
  const panels = new TrialPanels(path);
  clear(
    root,
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/jobs" }, "Jobs & trials"), " / ", h("span", {}, "Trial")),
    h("h1", { "data-testid": "page-title" }, "Trial ", h("code", {}, path)),
    panels.element,
  );
  void panels.start();
  return { destroy: () => panels.destroy() };
}
