// The panels of a deep-learning trial: losses by mode on one chart, and per layer (one chart per
// tensor of the weights, gradients, biases and *activations collections) its statistics over steps as
// a min/max band with the mean, a distribution heat map, one line per worker, or — for tensors saved
// only as reductions — the saved reductions. Each panel group is one request of list fields, so its
// size does not grow with the model; statistics and histograms are computed and cached by the server,
// and no raw tensor value is ever fetched for these panels.
import { gql } from "../api.js";
import { LineChart, StepRangeForm, type ChartLayers, type ChartMeta, type LineSeriesInput, type RuleMarker, type StepRange } from "../chart.js";
import {
  BAND_FILL, BAND_STYLES, HEAT_STOPS, heatColor, layerAxisLabel, reductionLabel, runSeriesStyle, seriesStyle, stepAxisLabel,
} from "../../../src/report/plot-style.js";
import { h, clear, errorBox, testidPart } from "../dom.js";
import { hasTensors, layerCollections, trainingModes, type TrainingMode, type TrialShape } from "../../../src/report/trial-shape.js";
import { byNaturalName, OVERVIEW_POINTS, ZOOM_POINTS, type NonFinite } from "../queries.js";

/** Bins of the distribution heat map. */
const HEAT_BINS = 32;
/** Layer charts a card draws before "Show N more". */
const LAYERS_SHOWN = 12;
const WORKER_STATS = ["MEAN", "MIN", "MAX", "STD", "L2"] as const;

interface SeriesData {
  steps: number[];
  globalSteps: number[];
  values: (number | null)[];
  nonFinite: NonFinite[];
  sampled: boolean;
  worker?: string | null;
}

interface StatsData {
  steps: number[];
  globalSteps: number[];
  min?: (number | null)[];
  max?: (number | null)[];
  mean: (number | null)[];
  nan: number[];
  posInf: number[];
  negInf: number[];
}

interface LayerTensor {
  name: string;
  reductionsOnly: boolean;
  reductions: { name: string; abs: boolean }[];
  statsSeries?: StatsData;
  histogramSeries?: { steps: number[]; edges: number[]; counts: number[][] };
  workerSeries?: SeriesData[];
}

const SERIES_FIELDS = "steps globalSteps values nonFinite { index value } sampled";

/**
 * Runs a panel's load. A change the user made starts at once and drops the answer still in flight;
 * new steps wait for the load in flight, then load once more.
 */
class LoadGate {
  private seq = 0;
  private running = false;
  private again = false;

  constructor(private readonly load: (current: () => boolean) => Promise<void>) {}

  now(): void {
    this.again = false;
    void this.run();
  }

  soon(): void {
    if (this.running) this.again = true;
    else void this.run();
  }

  private async run(): Promise<void> {
    const id = ++this.seq;
    this.running = true;
    try {
      await this.load(() => id === this.seq);
    } finally {
      if (id === this.seq) {
        this.running = false;
        if (this.again) {
          this.again = false;
          void this.run();
        }
      }
    }
  }
}

/** A segmented radio group (the chart's vocabulary for exclusive choices). */
function segmented<T extends string>(label: string, testid: string, options: readonly { value: T; text: string }[], selected: T, onPick: (v: T) => void): HTMLElement {
  return h(
    "span",
    { class: "segmented compact", role: "radiogroup", "aria-label": label, "data-testid": testid },
    options.map((o) =>
      h(
        "button",
        {
          type: "button",
          role: "radio",
          class: o.value === selected ? "active" : "",
          "aria-checked": String(o.value === selected),
          "data-value": o.value,
          "data-testid": `${testid}-${testidPart(o.value.toLowerCase())}`,
          onclick: () => onPick(o.value),
        },
        o.text,
      ),
    ),
  );
}

/** Where a rule marker goes on a chart over the steps of `mode` (null: global steps). */
function markerStepFor(mode: () => TrainingMode | null): (m: RuleMarker) => number | null {
  return (m) => {
    const current = mode();
    if (!current) return m.step;
    return m.mode === current && m.modeStep != null ? m.modeStep : null;
  };
}

/** The server's longest pattern is 2,000 characters; more names are asked for in several. */
const MAX_PATTERN = 1900;

/** Anchored regexes matching exactly these tensor names (metacharacters escaped, as Python's re.escape would). */
function exactNames(names: readonly string[]): string[] {
  const out: string[] = [];
  let part: string[] = [];
  for (const quoted of names.map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))) {
    if (part.length && part.join("|").length + quoted.length + 8 > MAX_PATTERN) {
      out.push(`^(?:${part.join("|")})$`);
      part = [];
    }
    part.push(quoted);
  }
  if (part.length) out.push(`^(?:${part.join("|")})$`);
  return out;
}

export class DeepLearningPanels {
  readonly element: HTMLElement;
  private shape: TrialShape = { modes: [], workers: [], collections: [] };
  private mode: TrainingMode | null = null;
  private modeChosen = false;
  private readonly modeHost = h("div", { class: "dl-controls" });
  private readonly losses: LossPanel;
  private readonly groups = new Map<string, LayerGroup>();
  private readonly groupHost = h("div", { class: "layer-groups" });
  private markers: RuleMarker[] = [];
  /** What the panels last loaded for: a refresh that brings nothing new loads nothing. */
  private loadedFor = "";

  constructor(private readonly path: string) {
    this.losses = new LossPanel(path);
    this.element = h("section", { class: "deep-learning", "data-testid": "deep-learning", "aria-label": "Deep-learning panels" }, this.losses.element, this.modeHost, this.groupHost);
  }

  /**
   * Called on every refresh of the trial page (new steps, reconnects); `version` changes when the
   * trial does (its steps), and only then are the panels loaded again.
   */
  update(shape: TrialShape, version: string): void {
    const key = JSON.stringify([version, shape]);
    if (key === this.loadedFor) return;
    this.loadedFor = key;
    this.shape = shape;
    const modes = trainingModes(shape);
    if (!this.modeChosen || (this.mode && !modes.includes(this.mode))) this.mode = modes.includes("TRAIN") ? "TRAIN" : modes[0] ?? null;
    this.renderModePicker(modes);
    this.losses.update(shape);

    const wanted = layerCollections(shape);
    for (const [name, group] of this.groups) {
      if (!wanted.includes(name)) {
        group.destroy();
        group.element.remove();
        this.groups.delete(name);
      }
    }
    for (const name of wanted) {
      let group = this.groups.get(name);
      if (!group) {
        group = new LayerGroup(this.path, name, () => this.mode);
        group.setMarkers(this.markers);
        this.groups.set(name, group);
      }
      group.setTensorNames(shape.collections.find((c) => c.name === name)?.tensorNames ?? []);
      group.setWorkers(shape.workers);
      group.reload(false);
    }
    // Keep the display order (weights, gradients, biases, activations) as groups come and go.
    this.groupHost.replaceChildren(...wanted.map((n) => this.groups.get(n)!.element));
  }

  private renderModePicker(modes: TrainingMode[]): void {
    if (modes.length === 0) {
      this.modeHost.replaceChildren();
      return;
    }
    const options = [...modes.map((m) => ({ value: m as string, text: m })), { value: "GLOBAL", text: "all steps" }];
    clear(
      this.modeHost,
      h("span", { class: "muted" }, "Per-layer panels over the steps of "),
      segmented("Mode of the per-layer panels", "dl-mode", options, this.mode ?? "GLOBAL", (v) => {
        this.modeChosen = true;
        this.mode = v === "GLOBAL" ? null : (v as TrainingMode);
        this.renderModePicker(trainingModes(this.shape));
        for (const g of this.groups.values()) g.reload(true);
      }),
    );
  }

  setMarkers(markers: RuleMarker[]): void {
    this.markers = markers;
    this.losses.setMarkers(markers);
    for (const g of this.groups.values()) g.setMarkers(markers);
  }

  destroy(): void {
    this.losses.destroy();
    for (const g of this.groups.values()) g.destroy();
  }
}

type LossAxis = "mode" | "global";

/** Every loss tensor, each mode a series (and each worker, when there are several), on one chart. */
class LossPanel {
  readonly element: HTMLElement;
  private readonly chart: LineChart;
  private readonly axisHost = h("span");
  private readonly errors = h("div", { class: "panel-errors" });
  private shape: TrialShape = { modes: [], workers: [], collections: [] };
  private axis: LossAxis = "mode";
  private range: StepRange | null = null;
  private readonly gate: LoadGate;
  private markers: RuleMarker[] = [];
  private destroyed = false;

  constructor(private readonly path: string) {
    this.chart = new LineChart({
      title: "Loss by mode",
      testid: "loss-chart",
      yLabel: layerAxisLabel("losses"),
      xLabel: "mode step",
      emptyText: "No losses saved yet.",
      runMarkers: true,
      onZoom: (r) => {
        this.range = r;
        this.gate.now();
      },
      markerStep: (m) => (this.axis === "mode" && m.mode && m.mode !== "GLOBAL" && m.modeStep != null ? m.modeStep : m.step),
    });
    this.gate = new LoadGate((current) => this.load(current));
    this.element = h(
      "div",
      { class: "card", "data-testid": "loss-panel", hidden: true },
      h("div", { class: "card-head" }, h("h2", {}, "Losses"), this.axisHost),
      this.errors,
      this.chart.element,
    );
  }

  update(shape: TrialShape): void {
    this.shape = shape;
    const has = hasTensors(shape, "losses");
    this.element.hidden = !has;
    if (!has) return;
    this.renderAxisPicker();
    this.gate.soon();
  }

  private modes(): (TrainingMode | null)[] {
    const modes = trainingModes(this.shape);
    return modes.length ? modes : [null];
  }

  private renderAxisPicker(): void {
    if (this.modes()[0] === null) {
      this.axisHost.replaceChildren();
      return;
    }
    clear(
      this.axisHost,
      h("span", { class: "muted" }, "x axis: "),
      segmented("x axis of the losses", "loss-axis", [{ value: "mode" as LossAxis, text: "mode step" }, { value: "global" as LossAxis, text: "global step" }], this.axis, (v) => {
        if (v === this.axis) return;
        this.axis = v;
        this.range = null;
        this.chart.showZoom(null);
        this.renderAxisPicker();
        this.gate.now();
      }),
    );
  }

  private async load(current: () => boolean): Promise<void> {
    const modes = this.modes();
    const perWorker = this.shape.workers.length > 1;
    const field = perWorker ? "workerSeries" : "series";
    const select = perWorker ? `worker ${SERIES_FIELDS}` : SERIES_FIELDS;
    const parts = modes.map((m) => `${m ? m.toLowerCase() : "all"}: ${field}(${m ? `mode: ${m}, ` : ""}fromStep: $from, toStep: $to, maxPoints: $max) { ${select} }`);
    const query = `query Losses($path: String!, $from: Int, $to: Int, $max: Int) { trial(path: $path) { id tensors(collection: "losses") { name ${parts.join(" ")} } } }`;
    // Mode-step ranges are what the server filters by; a global-step range is cut here from full-resolution series.
    const byMode = this.axis === "mode" || modes[0] === null;
    const range = this.range;
    try {
      const r = await gql<{ trial: { tensors: ({ name: string } & Record<string, SeriesData | SeriesData[]>)[] } | null }>(query, {
        path: this.path,
        from: byMode ? range?.from ?? null : null,
        to: byMode ? range?.to ?? null : null,
        max: range ? ZOOM_POINTS : OVERVIEW_POINTS,
      });
      if (this.destroyed || !current()) return;
      this.errors.replaceChildren();
      const tensors = byNaturalName(r.trial?.tensors ?? []);
      const workers = this.shape.workers;
      const lines: LineSeriesInput[] = [];
      let sampled = false;
      let nonFinite = 0;
      tensors.forEach((t, ti) => {
        modes.forEach((m, mi) => {
          const got = t[m ? m.toLowerCase() : "all"];
          const list = (Array.isArray(got) ? got : got ? [got] : []).filter((s) => s.steps.length > 0);
          for (const s of list) {
            const wi = Math.max(0, workers.indexOf(s.worker ?? ""));
            const parts = [tensors.length > 1 ? t.name : null, m ?? (tensors.length > 1 ? null : "loss"), perWorker ? s.worker ?? null : null].filter(Boolean);
            let xs = byMode ? s.steps : s.globalSteps;
            let values = s.values;
            if (!byMode && range) {
              const keep = xs.map((x) => x >= range.from && x <= range.to);
              xs = xs.filter((_, i) => keep[i]);
              values = values.filter((_, i) => keep[i]);
            }
            sampled ||= s.sampled;
            nonFinite += s.nonFinite.length;
            const style = perWorker ? runSeriesStyle(wi, ti * modes.length + mi) : seriesStyle(lines.length);
            lines.push({ label: parts.join(" · "), title: `${t.name}${m ? `, ${m} steps` : ""}${perWorker ? `, ${s.worker}` : ""}`, tensor: t.name, steps: xs, values, ...style });
          }
        });
      });
      const single = tensors.length === 1 ? tensors[0].name : null;
      this.chart.setTitle(single ? `${single} by mode` : "Every loss by mode");
      this.chart.setXLabel(byMode ? (modes[0] === null ? stepAxisLabel(null) : "mode step (each mode counts its own)") : "global step");
      this.chart.setData(lines, { sampled, nonFiniteCount: nonFinite });
      this.chart.setMarkers(this.markers);
    } catch (err) {
      if (!this.destroyed && current()) clear(this.errors, errorBox(err, "loss-error"));
    }
  }

  setMarkers(markers: RuleMarker[]): void {
    this.markers = markers;
    this.chart.setMarkers(markers);
  }

  destroy(): void {
    this.destroyed = true;
    this.chart.destroy();
  }
}

type LayerView = "band" | "distribution" | "workers";

const GROUP_TITLES: Record<string, string> = { weights: "Weights", gradients: "Gradients", biases: "Biases" };

/** One collection's tensors, a chart each, all fetched in one request. */
class LayerGroup {
  readonly element: HTMLElement;
  private view: LayerView = "band";
  private viewChosen = false;
  private stat: (typeof WORKER_STATS)[number] = "MEAN";
  private range: StepRange | null = null;
  private workers: readonly string[] = [];
  private tensorNames: readonly string[] = [];
  private tensors: LayerTensor[] = [];
  private reductions = new Map<string, { reduction: { name: string; abs: boolean }; series: SeriesData }[]>();
  private readonly charts = new Map<string, LineChart>();
  private showAll = false;
  private markers: RuleMarker[] = [];
  private readonly grid = h("div", { class: "layer-grid" });
  private readonly errors = h("div", { class: "panel-errors" });
  private readonly controls = h("div", { class: "group-controls" });
  private readonly caption = h("span", { class: "muted", "data-testid": "layer-group-caption" });
  private readonly heatKey: HTMLElement;
  private readonly more = h("button", { type: "button", class: "small", hidden: true });
  private readonly rangeForm: StepRangeForm;
  private readonly gate: LoadGate;
  private loadedOnce = false;
  private destroyed = false;

  constructor(private readonly path: string, readonly collection: string, private readonly mode: () => TrainingMode | null) {
    const title = GROUP_TITLES[collection] ?? collection;
    this.rangeForm = new StepRangeForm(title, `layers-${testidPart(collection)}`, (r) => this.zoom(r));
    this.gate = new LoadGate((current) => this.load(current));
    this.heatKey = heatKey();
    this.more.addEventListener("click", () => {
      this.showAll = true;
      this.render();
    });
    this.element = h(
      "div",
      { class: "card layer-group", "data-testid": `layers-${testidPart(collection)}`, "data-collection": collection },
      h("div", { class: "card-head" }, h("h2", {}, title), this.caption, h("span", { class: "spacer" }), this.rangeForm.element),
      this.controls,
      this.errors,
      this.grid,
      this.more,
    );
    this.renderControls();
  }

  setTensorNames(names: readonly string[]): void {
    this.tensorNames = names;
  }

  setWorkers(workers: readonly string[]): void {
    const changed = workers.join("|") !== this.workers.join("|");
    this.workers = workers;
    // Several workers: a line per worker unless the user asked for another view (band and distribution show the first worker's values).
    if (!this.viewChosen) this.view = workers.length > 1 ? "workers" : "band";
    if (this.view === "workers" && workers.length < 2) this.view = "band";
    if (changed) this.renderControls();
  }

  setMarkers(markers: RuleMarker[]): void {
    this.markers = markers;
    for (const c of this.charts.values()) c.setMarkers(markers);
  }

  /** user: a change the user made (mode, view, zoom); otherwise new steps. */
  reload(user: boolean): void {
    if (user) this.gate.now();
    else this.gate.soon();
  }

  private zoom(range: StepRange | null): void {
    this.range = range;
    this.rangeForm.show(range);
    for (const c of this.charts.values()) c.showZoom(range);
    this.gate.now();
  }

  private renderControls(): void {
    const views: { value: LayerView; text: string }[] = [
      { value: "band", text: "min/max band" },
      { value: "distribution", text: "distribution" },
    ];
    if (this.workers.length > 1) views.push({ value: "workers", text: "per worker" });
    const stat = h(
      "select",
      { "aria-label": "Statistic per worker", "data-testid": `layers-${testidPart(this.collection)}-stat` },
      WORKER_STATS.map((s) => h("option", { value: s }, s.toLowerCase())),
    );
    stat.value = this.stat;
    stat.addEventListener("change", () => {
      this.stat = stat.value as (typeof WORKER_STATS)[number];
      this.gate.now();
    });
    clear(
      this.controls,
      segmented("Per-layer view", `layers-${testidPart(this.collection)}-view`, views, this.view, (v) => {
        if (v === this.view) return;
        this.view = v;
        this.viewChosen = true;
        this.renderControls();
        this.gate.now();
      }),
      this.view === "workers" ? h("label", { class: "inline" }, "statistic ", stat) : null,
      this.view === "distribution" ? this.heatKey : null,
      this.view === "band" ? h("span", { class: "muted small-text" }, "Band: smallest to largest element at each step; line: the mean.") : null,
    );
  }

  private query(): string {
    const range = "mode: $mode, fromStep: $from, toStep: $to";
    let fields: string;
    let vars = "";
    if (this.view === "band") fields = `statsSeries(${range}) { steps globalSteps min max mean nan posInf negInf }`;
    else if (this.view === "distribution") {
      fields = `statsSeries(${range}) { steps globalSteps mean nan posInf negInf } histogramSeries(bins: ${HEAT_BINS}, ${range}) { steps edges counts }`;
    } else {
      fields = `workerSeries(stat: $stat, ${range}, maxPoints: $max) { worker ${SERIES_FIELDS} }`;
      vars = ", $stat: TensorStat!, $max: Int";
    }
    return `query LayerGroup($path: String!, $collection: String!, $mode: Mode, $from: Int, $to: Int${vars}) {
  trial(path: $path) { id tensors(collection: $collection) { name reductionsOnly reductions(mode: $mode) { name abs } ${fields} } }
}`;
  }

  private async load(current: () => boolean): Promise<void> {
    const mode = this.mode();
    const vars: Record<string, unknown> = { path: this.path, collection: this.collection, mode, from: this.range?.from ?? null, to: this.range?.to ?? null };
    if (this.view === "workers") {
      vars.stat = this.stat;
      vars.max = this.range ? ZOOM_POINTS : OVERVIEW_POINTS;
    }
    try {
      const r = await gql<{ trial: { tensors: LayerTensor[] } | null }>(this.query(), vars);
      if (this.destroyed || !current()) return;
      const tensors = byNaturalName(r.trial?.tensors ?? []);
      // Tensors with no raw value in these steps (saved as reductions only): their saved reductions, in one more request.
      const reduced = tensors.filter((t) => !hasRawData(t) && t.reductions.length > 0);
      const reductions = new Map<string, { reduction: { name: string; abs: boolean }; series: SeriesData }[]>();
      if (reduced.length) {
        const kinds = [...new Map(reduced.flatMap((t) => t.reductions).filter((x) => /^[A-Z0-9_]+$/.test(x.name)).map((x) => [`${x.abs}:${x.name}`, x])).values()];
        const fields = kinds.map((k, i) => `r${i}: reductionSeries(name: ${k.name}, abs: ${k.abs}, mode: $mode, fromStep: $from, toStep: $to, maxPoints: $max) { ${SERIES_FIELDS} }`);
        const q = `query LayerReductions($path: String!, $regex: String!, $mode: Mode, $from: Int, $to: Int, $max: Int) { trial(path: $path) { id tensors(regex: $regex) { name ${fields.join(" ")} } } }`;
        const answers = await Promise.all(exactNames(reduced.map((t) => t.name)).map((regex) =>
          gql<{ trial: { tensors: ({ name: string } & Record<string, SeriesData>)[] } | null }>(q, {
            path: this.path, regex, mode, from: vars.from, to: vars.to, max: this.range ? ZOOM_POINTS : OVERVIEW_POINTS,
          })));
        if (this.destroyed || !current()) return;
        for (const t of answers.flatMap((a) => a.trial?.tensors ?? [])) {
          const saved = reduced.find((x) => x.name === t.name)?.reductions ?? [];
          const list = kinds
            .map((k, i) => ({ reduction: k, series: t[`r${i}`] }))
            .filter((x) => x.series && x.series.steps.length > 0 && saved.some((s) => s.name === x.reduction.name && s.abs === x.reduction.abs));
          reductions.set(t.name, list);
        }
      }
      this.tensors = tensors;
      this.reductions = reductions;
      this.loadedOnce = true;
      this.errors.replaceChildren();
      this.render();
    } catch (err) {
      if (!this.destroyed && current()) clear(this.errors, errorBox(err, "layers-error"));
    }
  }

  private chartFor(name: string): LineChart {
    let chart = this.charts.get(name);
    if (!chart) {
      chart = new LineChart({
        title: name,
        testid: `layer-${testidPart(this.collection)}-${testidPart(name)}`,
        height: 210,
        zoomForm: false,
        onZoom: (r) => this.zoom(r),
        emptyText: "Nothing saved in these steps.",
        markerStep: markerStepFor(this.mode),
      });
      chart.element.dataset.tensor = name;
      chart.showZoom(this.range);
      chart.setMarkers(this.markers);
      this.charts.set(name, chart);
    }
    return chart;
  }

  private render(): void {
    const all = this.tensors.length ? this.tensors.map((t) => t.name) : this.tensorNames;
    const shown = this.showAll ? this.tensors : this.tensors.slice(0, LAYERS_SHOWN);
    const mode = this.mode();
    const firstWorker = this.workers.length > 1 && this.view !== "workers" ? `, values of each step's first worker` : "";
    this.caption.textContent = `${all.length} tensor${all.length === 1 ? "" : "s"}${mode ? `, ${mode} steps` : ", all steps"}${firstWorker}`;
    for (const [name, chart] of this.charts) {
      if (!shown.some((t) => t.name === name)) {
        chart.destroy();
        chart.element.remove();
        this.charts.delete(name);
      }
    }
    this.grid.replaceChildren(...shown.map((t) => this.chartFor(t.name).element));
    for (const t of shown) {
      const chart = this.chartFor(t.name);
      const plot = this.plotOf(t);
      chart.setTitle(plot.title);
      chart.setXLabel(stepAxisLabel(mode));
      chart.setYLabel(plot.yLabel);
      chart.element.dataset.kind = plot.kind;
      chart.setData(plot.series, plot.meta, plot.layers);
    }
    const hidden = this.tensors.length - shown.length;
    this.more.hidden = hidden <= 0;
    this.more.textContent = `Show ${hidden} more`;
    if (!this.loadedOnce) this.caption.textContent = "Loading…";
  }

  private plotOf(t: LayerTensor): { title: string; kind: string; yLabel: string; series: LineSeriesInput[]; meta: ChartMeta; layers: ChartLayers } {
    const yLabel = layerAxisLabel(this.collection);
    const stats = t.statsSeries;
    const warnings: string[] = [];
    if (stats) {
      const bad = stats.steps.filter((_, i) => stats.nan[i] + stats.posInf[i] + stats.negInf[i] > 0).length;
      if (bad) warnings.push(`${bad} step(s) with NaN or ±Infinity elements (left out of min, max and mean)`);
    }
    const meta = (series: SeriesData[] = []): ChartMeta => ({
      sampled: series.some((s) => s.sampled),
      nonFiniteCount: series.reduce((n, s) => n + s.nonFinite.length, 0),
      warnings,
    });

    const workers = (t.workerSeries ?? []).filter((s) => s.steps.length > 0);
    if (this.view === "workers" && workers.length) {
      return {
        title: t.name,
        kind: "workers",
        yLabel: `${this.stat.toLowerCase()} ${yLabel}`,
        series: workers.map((s, i) => ({ label: s.worker ?? `worker ${i}`, tensor: t.name, steps: s.steps, values: s.values, ...seriesStyle(i) })),
        meta: meta(workers),
        layers: {},
      };
    }
    if (stats && stats.steps.length) {
      const mean: LineSeriesInput = { label: "mean", tensor: t.name, steps: stats.steps, values: stats.mean, ...BAND_STYLES.mean, width: 2.25 };
      if (this.view === "distribution" && t.histogramSeries && t.histogramSeries.steps.length) {
        return { title: t.name, kind: "distribution", yLabel, series: [mean], meta: meta(), layers: { heatmap: t.histogramSeries } };
      }
      return {
        title: t.name,
        kind: "band",
        yLabel,
        series: [
          { label: "max", tensor: t.name, steps: stats.steps, values: stats.max ?? [], ...BAND_STYLES.max, width: 1 },
          mean,
          { label: "min", tensor: t.name, steps: stats.steps, values: stats.min ?? [], ...BAND_STYLES.min, width: 1 },
        ],
        meta: meta(),
        layers: { bands: [{ upper: 0, lower: 2, fill: BAND_FILL }] },
      };
    }
    const saved = this.reductions.get(t.name) ?? [];
    if (saved.length) {
      // Saved reductions: min and max as the band when both were saved, the rest as lines.
      const rank = (r: { name: string; abs: boolean }) => {
        const i = ["MAX", "MEAN", "MIN"].indexOf(r.name);
        return i < 0 ? 99 : i + (r.abs ? 10 : 0);
      };
      const sorted = saved.slice().sort((a, b) => rank(a.reduction) - rank(b.reduction) || a.reduction.name.localeCompare(b.reduction.name));
      let other = 2;
      const series: LineSeriesInput[] = sorted.map(({ reduction, series: s }) => {
        const key = `${reduction.abs ? "abs " : ""}${reduction.name}`;
        const style = key === "MAX" ? { ...BAND_STYLES.max, width: 1 } : key === "MIN" ? { ...BAND_STYLES.min, width: 1 } : key === "MEAN" ? { ...BAND_STYLES.mean, width: 2.25 } : seriesStyle(other++);
        return { label: reductionLabel(reduction.name, reduction.abs), tensor: t.name, steps: s.steps, values: s.values, ...style };
      });
      const max = series.findIndex((s) => s.label === "max");
      const min = series.findIndex((s) => s.label === "min");
      return {
        title: `${t.name} (saved reductions)`,
        kind: "reductions",
        yLabel,
        series,
        meta: meta(saved.map((x) => x.series)),
        layers: max >= 0 && min >= 0 ? { bands: [{ upper: max, lower: min, fill: BAND_FILL }] } : {},
      };
    }
    return { title: t.name, kind: "empty", yLabel, series: [], meta: meta(), layers: {} };
  }

  destroy(): void {
    this.destroyed = true;
    for (const c of this.charts.values()) c.destroy();
  }
}

function hasRawData(t: LayerTensor): boolean {
  return Boolean(t.statsSeries?.steps.length || t.workerSeries?.some((s) => s.steps.length) || t.histogramSeries?.steps.length);
}

/** The heat map's colour key, drawn on a canvas with the ramp the charts use. */
function heatKey(): HTMLElement {
  const canvas = h("canvas", { class: "heat-ramp", width: 120, height: 10, "aria-hidden": "true" });
  const ctx = canvas.getContext("2d");
  if (ctx) for (let x = 0; x < 120; x++) {
    ctx.fillStyle = heatColor(x / 119);
    ctx.fillRect(x, 0, 1, 10);
  }
  return h(
    "span",
    { class: "heat-key muted small-text", "data-testid": "heat-key", "data-stops": String(HEAT_STOPS.length) },
    "Each column: one step's elements in ",
    String(HEAT_BINS),
    " bins; few ",
    canvas,
    " many. Line: the mean.",
  );
}
