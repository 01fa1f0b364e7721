// The trial panels (metrics, feature importance by type, average SHAP, importance ranking,
// tensor explorer), used by the trial page and the job page.
import { gql, onConnected, subscribe } from "../api.js";
import { LineChart, barList, type LineSeriesInput, type RuleMarker, type StepRange } from "../chart.js";
import { axisLabel, reductionLabel } from "../../../src/report/plot-style.js";
import { h, clear, badge, errorBox, formatNumber, showGlobalError, testidPart } from "../dom.js";
import { OVERVIEW_POINTS, ZOOM_POINTS, byNaturalName, seriesFields, stepsAddedSubscription, cursors, type CollectionSeries, type RuleSummary, type StepsAddedEvent, type TensorSeries, type NonFinite } from "../queries.js";
import type { View } from "../router.js";
import type { DeepLearningPanels } from "./deep-learning.js";
import { isDeepLearningTrial, type TrialShape } from "../../../src/report/trial-shape.js";


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
    modes: string[];
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
    id path steps lastCompleteStep trainingEnded workers modes
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


/** Every finding of every rule, as markers for the charts of the tensors it names. */
export function ruleMarkers(rules: readonly RuleSummary[]): RuleMarker[] {
  return rules.flatMap((r) => (r.findings ?? []).map((f) => ({ rule: r.ruleConfigurationName, step: f.step, tensors: f.tensorNames, message: f.message, mode: f.mode, modeStep: f.modeStep })));
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
  private readonly explorerCard: HTMLElement;
  /** The XGBoost panels; a deep-learning trial shows only those it has data for. */
  private readonly metricsCard: HTMLElement;
  private readonly importanceRow: HTMLElement;
  private readonly shapCard: HTMLElement;
  /** Losses, per-layer statistics, reductions and workers: created once the trial looks like deep learning. */
  private deepLearning: DeepLearningPanels | undefined;
  /** The deep-learning panels' code is a chunk of its own, loaded the first time a trial needs it. */
  private deepLearningLoad: Promise<void> | undefined;
  private deepLearningShape: [TrialShape, string] | undefined;
  private markers: RuleMarker[] = [];
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
    this.metricsCard = h("div", { class: "card" }, this.metricsChart.element);
    this.importanceRow = h(
      "div",
      { class: "grid-2" },
      h("div", { class: "card" }, this.typePicker, this.importanceChart.element),
      h("div", { class: "card" }, h("div", { class: "card-head" }, h("h3", {}, "Latest feature-importance ranking"), this.rankingCaption), this.ranking),
    );
    this.shapCard = h("div", { class: "card" }, this.shapChart.element);
    this.explorerCard = h("div", { class: "card" }, this.explorer.element);
    clear(this.body, this.metricsCard, this.importanceRow, this.shapCard, this.explorerCard);
    this.renderTypePicker([]);
  }

  async start(): Promise<void> {
    // A trial that cannot be read (bad or forbidden path) is not worth a subscription.
    if (!(await this.refresh()) || this.destroyed) return;
    this.unsubscribe = subscribe<StepsAddedEvent>(
      stepsAddedSubscription,
      { path: this.path },
      (ev) => {
        // The first event lists the steps the trial has: nothing to fetch again if the page shows them.
        const shown = this.data;
        const e = ev.trialStepsAdded;
        const lastShown = shown?.steps.length ? shown.steps[shown.steps.length - 1] : -1;
        if (shown && e.trainingEnded === shown.trainingEnded && e.steps.every((step) => step <= lastShown)) return;
        this.scheduleRefresh();
        this.opts.onStepsAdded?.(e);
      },
      (err) => showGlobalError(err),
      { cursor: cursors.stepsAdded },
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
        h("div", {}, h("dt", {}, "Workers"), h("dd", { "data-testid": "trial-workers" }, t.workers.join(", ") || "—")),
        t.modes.length ? h("div", {}, h("dt", {}, "Modes"), h("dd", { "data-testid": "trial-modes" }, t.modes.join(", "))) : null,
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
    this.renderDeepLearning(t);
  }

  /** A deep-learning trial gets its own panels; the XGBoost ones stay only where they have data. */
  private renderDeepLearning(t: NonNullable<TrialPageData["trial"]>): void {
    const shape: TrialShape = { modes: t.modes, workers: t.workers, collections: t.collections };
    if (!this.deepLearningShape && !isDeepLearningTrial(shape)) return;
    this.metricsCard.hidden = !(t.metrics?.tensors.length);
    this.importanceRow.hidden = !(t.importance?.tensors.length);
    this.shapCard.hidden = !(t.shap?.tensors.length);
    this.deepLearningShape = [shape, `${t.steps.length}:${t.steps.at(-1)}:${t.lastCompleteStep}:${t.trainingEnded}`];
    if (this.deepLearning) {
      this.deepLearning.update(...this.deepLearningShape);
      return;
    }
    this.deepLearningLoad ??= import("./deep-learning.js").then(
      ({ DeepLearningPanels }) => {
        if (this.destroyed) return;
        this.deepLearning = new DeepLearningPanels(this.path);
        this.deepLearning.setMarkers(this.markers);
        this.body.insertBefore(this.deepLearning.element, this.metricsCard);
        this.deepLearning.update(...this.deepLearningShape!);
      },
      (err) => {
        this.deepLearningLoad = undefined;
        clear(this.errors, errorBox(err, "trial-error"));
      },
    );
  }

  /** Marks where the job's rules fired on the charts of the tensors they name. */
  setRuleFindings(rules: readonly RuleSummary[]): void {
    const markers = ruleMarkers(rules);
    this.markers = markers;
    for (const c of [this.metricsChart, this.importanceChart, this.shapChart]) c.setMarkers(markers);
    this.deepLearning?.setMarkers(markers);
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
    this.deepLearning?.destroy();
    this.explorer.destroy();
  }
}

interface TensorStatsData {
  min: number | null;
  max: number | null;
  mean: number | null;
  std: number | null;
  zeros: number;
  nan: number;
  posInf: number;
  negInf: number;
}

interface TensorValueData {
  step: number;
  mode: string;
  modeStep: number;
  worker: string;
  dtype: string;
  shape: number[];
  size: number;
  scalar: number | null;
  stats: TensorStatsData | null;
  /** Asked for only when the value is small enough to list. */
  data?: (number | null)[] | null;
  nonFinite?: NonFinite[];
  strings?: string[] | null;
}

interface SavedReductionInfo {
  name: string;
  abs: boolean;
}

const tensorStepsQuery = `query TensorSteps($path: String!, $name: String!) {
  trial(path: $path) { id tensor(name: $name) { id name steps workers reductionsOnly reductions { name abs } } }
}`;
// What a value is first (shape, statistics computed on the server); its elements only when few.
const tensorValueQuery = `query TensorValue($path: String!, $name: String!, $step: Int!) {
  trial(path: $path) { id tensor(name: $name) { id name value(step: $step) { step mode modeStep worker dtype shape size scalar stats { min max mean std zeros nan posInf negInf } } } }
}`;
const tensorElementsQuery = `query TensorElements($path: String!, $name: String!, $step: Int!) {
  trial(path: $path) { id tensor(name: $name) { id value(step: $step) { data nonFinite { index value } strings } } }
}`;

/** A tensor saved only as reductions has no value to show: its saved reductions at the step instead. */
function reductionValuesQuery(reductions: readonly SavedReductionInfo[]): string {
  const fields = reductions
    .filter((r) => /^[A-Z0-9_]+$/.test(r.name))
    .map((r, i) => `r${i}: reductionValue(step: $step, name: ${r.name}, abs: ${r.abs}) { step mode modeStep worker value }`);
  return `query TensorReductions($path: String!, $name: String!, $step: Int!) { trial(path: $path) { id tensor(name: $name) { id ${fields.join(" ")} } } }`;
}

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
  private reductionsOnly: SavedReductionInfo[] | null = null;

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
      const r = await gql<{ trial: { tensor: { steps: number[]; workers: string[]; reductionsOnly: boolean; reductions: SavedReductionInfo[] } | null } | null }>(tensorStepsQuery, { path: this.path, name });
      if (this.destroyed || id !== this.request) return;
      const steps = r.trial?.tensor?.steps ?? [];
      this.reductionsOnly = r.trial?.tensor?.reductionsOnly ? r.trial.tensor.reductions : null;
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
      if (this.reductionsOnly) {
        const saved = this.reductionsOnly;
        const r = await gql<{ trial: { tensor: Record<string, { step: number; mode: string; modeStep: number; worker: string; value: number | null } | null> | null } | null }>(reductionValuesQuery(saved), { path: this.path, name, step });
        if (this.destroyed || id !== this.request) return;
        const t = r.trial?.tensor ?? {};
        this.renderReductions(name, saved.map((red, i) => ({ ...red, value: t[`r${i}`] ?? null })));
        return;
      }
      const r = await gql<{ trial: { tensor: { value: TensorValueData | null } | null } | null }>(tensorValueQuery, { path: this.path, name, step });
      if (this.destroyed || id !== this.request) return;
      const v = r.trial?.tensor?.value;
      if (!v) {
        clear(this.output, h("p", { class: "empty" }, "No value."));
        return;
      }
      // A layer of millions of elements is described by its statistics; only small values are listed.
      if (v.size <= MAX_ELEMENTS_SHOWN) {
        const e = await gql<{ trial: { tensor: { value: Pick<TensorValueData, "data" | "nonFinite" | "strings"> | null } | null } | null }>(tensorElementsQuery, { path: this.path, name, step });
        if (this.destroyed || id !== this.request) return;
        Object.assign(v, e.trial?.tensor?.value ?? {});
      }
      this.renderValue(name, v);
    } catch (err) {
      if (!this.destroyed && id === this.request) clear(this.output, errorBox(err, "explorer-error"));
    }
  }

  private renderReductions(name: string, values: (SavedReductionInfo & { value: { step: number; mode: string; modeStep: number; value: number | null } | null })[]): void {
    const at = values.find((x) => x.value)?.value;
    clear(
      this.output,
      h(
        "dl",
        { class: "facts" },
        h("div", {}, h("dt", {}, "Tensor"), h("dd", {}, h("code", {}, name))),
        at ? h("div", {}, h("dt", {}, "Step"), h("dd", { "data-testid": "explorer-value-step" }, `${at.step} (${at.mode} step ${at.modeStep})`)) : null,
        values.map((x) => h("div", {}, h("dt", {}, reductionLabel(x.name, x.abs)), h("dd", { "data-testid": `explorer-reduction-${testidPart(reductionLabel(x.name, x.abs))}` }, formatNumber(x.value?.value)))),
      ),
      h("p", { class: "muted" }, "Only these reductions of the tensor were saved (save_raw_tensor off), not its value."),
    );
  }

  private renderValue(name: string, v: TensorValueData): void {
    const count = v.size;
    const nonFinite = new Map((v.nonFinite ?? []).map((n) => [n.index, n.value]));
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
      v.stats && count > 1
        ? h(
            "dl",
            { class: "facts compact", "data-testid": "explorer-stats" },
            (["min", "max", "mean", "std"] as const).map((k) => h("div", {}, h("dt", {}, k), h("dd", { "data-stat": k }, formatNumber(v.stats![k])))),
            h("div", {}, h("dt", {}, "zeros"), h("dd", {}, String(v.stats.zeros))),
            v.stats.nan + v.stats.posInf + v.stats.negInf > 0 ? h("div", {}, h("dt", {}, "NaN / +Inf / −Inf"), h("dd", { class: "nonfinite" }, `${v.stats.nan} / ${v.stats.posInf} / ${v.stats.negInf}`)) : null,
          )
        : null,
      elements.length
        ? h(
            "table",
            { class: "values-table", "aria-label": `Elements of ${name} at step ${v.step}` },
            h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "index"), h("th", { scope: "col" }, "value"))),
            h("tbody", {}, elements.map((e) => h("tr", {}, h("td", {}, multiIndex(e.index)), h("td", { class: nonFinite.has(e.index) ? "nonfinite" : "" }, e.value)))),
          )
        : null,
      count > MAX_ELEMENTS_SHOWN ? h("p", { class: "muted", "data-testid": "explorer-too-large" }, `${formatNumber(count)} elements: statistics computed on the server; elements are listed for values of at most ${MAX_ELEMENTS_SHOWN}.`) : null,
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
