// Line charts over steps (uPlot): a legend whose swatches show each line's colour and dash, labelled
// axes with a linear/log switch, rule firings as vertical markers, and a zoom that asks the owner to
// refetch the selected step range at full resolution; under the lines, optional min/max bands and a
// heat map of per-step histograms (a layer's distribution). Plus a bar list for rankings.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { heatColor, seriesStyle, stepAxisLabel } from "../../src/report/plot-style.js";
import { h, clear, formatNumber, testidPart } from "./dom.js";

export { seriesStyle };

export interface StepRange {
  from: number;
  to: number;
}

export interface LineSeriesInput {
  /** Legend text. */
  label: string;
  /** Hover text of the legend entry (e.g. the job behind a short run label). */
  title?: string;
  /** The tensor the series shows: rule markers go on charts of the tensors a rule names. */
  tensor?: string;
  steps: number[];
  /** null = a non-finite value: drawn as a gap */
  values: (number | null)[];
  color?: string;
  dash?: readonly number[];
  /** Line width in px (band edges are thin). */
  width?: number;
}

/** A filled area between two series of the chart (indices into its series): a min/max band. */
export interface BandInput {
  upper: number;
  lower: number;
  fill: string;
}

/** Histograms of one tensor per step over common bins, drawn under the lines as a heat map. */
export interface HeatmapInput {
  steps: number[];
  /** bins + 1 edges */
  edges: number[];
  /** per step, the count of each bin */
  counts: number[][];
}

/** What a chart draws besides lines. */
export interface ChartLayers {
  bands?: BandInput[];
  heatmap?: HeatmapInput | null;
}

export interface ChartMeta {
  sampled: boolean;
  nonFiniteCount: number;
  /** Said under the chart (e.g. steps whose tensor held NaN). */
  warnings?: string[];
}

/** A rule firing to mark: a vertical line at the step, the rule's name, the finding on hover. */
export interface RuleMarker {
  rule: string;
  step: number;
  /** Tensors the rule named at this step; empty = about the run (shown on charts that take run markers). */
  tensors: string[];
  message: string;
  /** The step's mode and mode step, for charts over mode steps. */
  mode?: string;
  modeStep?: number;
}

/** Steps are integers: tick only at 1, 2, 5, 10, 20, 50, … */
const STEP_INCREMENTS = Array.from({ length: 10 }, (_, e) => [1, 2, 5].map((m) => m * 10 ** e)).flat();

/**
 * Series may be saved at different steps (metrics every step, importances every 5): align
 * them on the union of steps. Alignment holes are `undefined` (uPlot joins across them);
 * non-finite values stay `null` (uPlot draws a gap).
 */
export function alignSeries(series: LineSeriesInput[]): uPlot.AlignedData {
  const stepSet = new Set<number>();
  for (const s of series) for (const st of s.steps) stepSet.add(st);
  const xs = [...stepSet].sort((a, b) => a - b);
  const index = new Map(xs.map((x, i) => [x, i]));
  const ys = series.map((s) => {
    const col: (number | null | undefined)[] = new Array(xs.length).fill(undefined);
    s.steps.forEach((st, i) => {
      col[index.get(st)!] = s.values[i];
    });
    return col;
  });
  return [xs, ...ys];
}

/** A small SVG of a line in the series' colour and dash: what the legend and tables show as the key. */
export function lineSwatch(color: string, dash: readonly number[]): SVGSVGElement {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "swatch");
  svg.setAttribute("width", "28");
  svg.setAttribute("height", "10");
  svg.setAttribute("viewBox", "0 0 28 10");
  svg.setAttribute("aria-hidden", "true");
  const line = document.createElementNS(ns, "line");
  for (const [k, v] of Object.entries({ x1: "1", y1: "5", x2: "27", y2: "5", stroke: color, "stroke-width": "2.5" })) line.setAttribute(k, v);
  if (dash.length) line.setAttribute("stroke-dasharray", dash.join(" "));
  svg.appendChild(line);
  return svg;
}

export interface LineChartOptions {
  title: string;
  testid: string;
  height?: number;
  /** Called with the step range the user selected, or null to reset to the whole run. */
  onZoom?: (range: StepRange | null) => void;
  emptyText?: string;
  /** y-axis label (tensor or collection, with its unit). */
  yLabel?: string;
  /** Whether markers of rules about the run (no tensor) belong on this chart. */
  runMarkers?: boolean;
  /** x-axis label; default "step". */
  xLabel?: string;
  /** Whether the chart has its own step-range form (small multiples share one per group). Default true. */
  zoomForm?: boolean;
  /** Where a marker goes on the x axis (charts over mode steps); default its global step. */
  markerStep?: (m: RuleMarker) => number | null;
}

/**
 * The "from – to, Zoom, Reset" form of a chart or of a group of charts: calls onRange with the
 * range entered (or null on Reset).
 */
export class StepRangeForm {
  readonly element: HTMLFormElement;
  readonly fromInput: HTMLInputElement;
  readonly toInput: HTMLInputElement;

  constructor(title: string, testid: string, onRange: (range: StepRange | null) => void) {
    this.fromInput = h("input", { type: "number", class: "step-input", "aria-label": `${title}: zoom from step`, placeholder: "from" });
    this.toInput = h("input", { type: "number", class: "step-input", "aria-label": `${title}: zoom to step`, placeholder: "to" });
    this.element = h(
      "form",
      {
        class: "zoom-form",
        onsubmit: (e: Event) => {
          e.preventDefault();
          const from = Number(this.fromInput.value);
          const to = Number(this.toInput.value);
          if (this.fromInput.value !== "" && this.toInput.value !== "" && from <= to) onRange({ from, to });
        },
      },
      this.fromInput,
      "–",
      this.toInput,
      h("button", { type: "submit", class: "small" }, "Zoom"),
      h("button", { type: "button", class: "small", "data-testid": `${testid}-reset-zoom`, onclick: () => onRange(null) }, "Reset"),
    );
  }

  /** Shows a range chosen elsewhere (a drag on a plot); empty for none. */
  show(range: StepRange | null): void {
    this.fromInput.value = range ? String(range.from) : "";
    this.toInput.value = range ? String(range.to) : "";
  }
}

type Scale = "linear" | "log";

export class LineChart {
  readonly element: HTMLElement;
  private plot: uPlot | undefined;
  private readonly plotHost: HTMLElement;
  private readonly legend: HTMLElement;
  private readonly footer: HTMLElement;
  private readonly zoomInfo: HTMLElement;
  private readonly heading: HTMLElement;
  private readonly scaleButtons: Record<Scale, HTMLButtonElement>;
  private readonly markerLayer = h("div", { class: "rule-markers" });
  private seriesKey = "";
  private resizeObserver: ResizeObserver;
  private range: StepRange | null = null;
  private readonly rangeForm: StepRangeForm | null;
  private scale: Scale = "linear";
  private yLabel: string;
  private xLabel: string;
  private series: LineSeriesInput[] = [];
  private layers: ChartLayers = {};
  private markers: RuleMarker[] = [];
  private hidden = new Set<string>();
  private legendValues: HTMLElement[] = [];

  constructor(private readonly opts: LineChartOptions) {
    const id = `chart-${testidPart(opts.testid)}`;
    this.yLabel = opts.yLabel ?? "";
    this.xLabel = opts.xLabel ?? stepAxisLabel(null);
    this.plotHost = h("div", { class: "plot-host" });
    this.legend = h("ul", { class: "legend", "data-testid": `${opts.testid}-legend`, "aria-label": `${opts.title}: series` });
    this.footer = h("div", { class: "chart-footer muted" });
    this.zoomInfo = h("span", { class: "zoom-info", "data-testid": `${opts.testid}-zoom` });
    this.heading = h("h3", { id }, opts.title);
    this.scaleButtons = {
      linear: h("button", { type: "button", class: "active", role: "radio", "aria-checked": "true", "data-testid": `${opts.testid}-scale-linear`, onclick: () => this.setScale("linear") }, "Linear"),
      log: h("button", { type: "button", role: "radio", "aria-checked": "false", "data-testid": `${opts.testid}-scale-log`, onclick: () => this.setScale("log") }, "Log"),
    };
    this.rangeForm = opts.onZoom && opts.zoomForm !== false ? new StepRangeForm(opts.title, opts.testid, (r) => this.zoom(r)) : null;
    this.element = h(
      "figure",
      { class: "chart", "data-testid": opts.testid, "aria-labelledby": id, "data-y-scale": "linear", "data-y-label": this.yLabel, "data-x-label": this.xLabel },
      h(
        "figcaption",
        { class: "chart-head" },
        this.heading,
        this.zoomInfo,
        h("span", { class: "segmented compact", role: "radiogroup", "aria-label": `${opts.title}: y scale` }, this.scaleButtons.linear, this.scaleButtons.log),
        this.rangeForm?.element,
      ),
      this.plotHost,
      this.legend,
      this.footer,
    );
    this.resizeObserver = new ResizeObserver(() => {
      if (this.plot) this.plot.setSize({ width: this.width(), height: this.opts.height ?? 260 });
    });
    this.resizeObserver.observe(this.plotHost);
  }

  get zoomRange(): StepRange | null {
    return this.range;
  }

  setTitle(title: string): void {
    this.heading.textContent = title;
  }

  setYLabel(label: string): void {
    if (label === this.yLabel) return;
    this.yLabel = label;
    this.element.dataset.yLabel = label;
    this.rebuild();
  }

  setXLabel(label: string): void {
    if (label === this.xLabel) return;
    this.xLabel = label;
    this.element.dataset.xLabel = label;
    this.rebuild();
  }

  /** Shows a zoom chosen elsewhere (the chart's group) without asking for data. */
  showZoom(range: StepRange | null): void {
    this.range = range;
    this.rangeForm?.show(range);
    this.renderZoomInfo();
  }

  /** Rule firings; the chart keeps those about its own tensors (and run-wide ones if it takes them). */
  setMarkers(markers: RuleMarker[]): void {
    this.markers = markers;
    this.placeMarkers();
  }

  private zoom(range: StepRange | null): void {
    this.showZoom(range);
    this.opts.onZoom?.(range);
  }

  private renderZoomInfo(): void {
    this.zoomInfo.textContent = this.range ? `steps ${this.range.from}–${this.range.to} (full resolution)` : "";
    this.element.dataset.zoomed = this.range ? `${this.range.from}-${this.range.to}` : "";
  }

  private setScale(scale: Scale): void {
    if (scale === this.scale || this.scaleButtons[scale].disabled) return;
    this.scale = scale;
    this.renderScaleButtons();
    this.rebuild();
  }

  private renderScaleButtons(): void {
    for (const s of ["linear", "log"] as Scale[]) {
      const on = s === this.scale;
      this.scaleButtons[s].classList.toggle("active", on);
      this.scaleButtons[s].setAttribute("aria-checked", String(on));
    }
    this.element.dataset.yScale = this.scale;
  }

  private width(): number {
    return Math.max(240, this.plotHost.clientWidth || this.element.clientWidth || 600);
  }

  private styleOf(s: LineSeriesInput, i: number): { color: string; dash: readonly number[] } {
    const fallback = seriesStyle(i);
    return { color: s.color ?? fallback.color, dash: s.dash ?? fallback.dash };
  }

  setData(series: LineSeriesInput[], meta: ChartMeta, layers: ChartLayers = {}): void {
    this.series = series;
    this.layers = layers;
    const heat = layers.heatmap ?? null;
    this.element.dataset.bands = (layers.bands ?? []).map((b) => `${series[b.upper]?.label}>${series[b.lower]?.label}`).join("|");
    this.element.dataset.heatmap = heat ? `${heat.edges.length - 1}x${heat.steps.length}` : "";
    const labels = series.map((s) => s.label);
    this.element.dataset.series = labels.join("|");
    const points = series.reduce((n, s) => n + s.steps.length, 0);
    this.element.dataset.points = String(points);
    this.element.dataset.sampled = String(meta.sampled);
    // Log needs values above zero: SHAP values and zero importances cannot be drawn on it.
    const positive = series.every((s) => s.values.every((v) => v == null || v > 0)) && (!heat || heat.edges[0] > 0);
    this.scaleButtons.log.disabled = !positive;
    this.scaleButtons.log.title = positive ? "Logarithmic y axis" : "Log scale needs every value above zero";
    if (!positive && this.scale === "log") {
      this.scale = "linear";
      this.renderScaleButtons();
    }
    if (series.length === 0 || points === 0) {
      this.destroyPlot();
      delete this.element.dataset.firstStep;
      delete this.element.dataset.lastStep;
      clear(this.plotHost, h("p", { class: "empty", "data-testid": `${this.opts.testid}-empty` }, this.opts.emptyText ?? "No data yet."));
      this.legend.replaceChildren();
      this.footer.textContent = "";
      return;
    }
    const data = alignSeries(series);
    const key = [this.scale, this.yLabel, this.xLabel, JSON.stringify(layers.bands ?? []), heat ? "heat" : "", ...series.map((s, i) => `${s.label}\u0000${s.title ?? ""}\u0000${this.styleOf(s, i).color}\u0000${this.styleOf(s, i).dash.join(",")}`)].join("\u0001");
    if (this.plot && key === this.seriesKey) {
      this.plot.setData(data, true);
    } else {
      this.build(data, key);
    }
    const steps = data[0] as number[];
    this.element.dataset.firstStep = String(steps[0]);
    this.element.dataset.lastStep = String(steps[steps.length - 1]);
    this.element.setAttribute("aria-description", `${series.length} series over steps ${steps[0]}–${steps[steps.length - 1]}${this.yLabel ? `; y axis: ${this.yLabel}` : ""}`);
    this.showValues(null);
    const notes: (string | Node)[] = [];
    if (meta.sampled) notes.push(h("span", { class: "tag", "data-testid": `${this.opts.testid}-sampled`, title: "The server downsampled long series; zoom in for full resolution" }, "downsampled"));
    if (meta.nonFiniteCount > 0) notes.push(h("span", { class: "tag tag-warn" }, `${meta.nonFiniteCount} non-finite value(s) shown as gaps`));
    for (const w of meta.warnings ?? []) notes.push(h("span", { class: "tag tag-warn", "data-testid": `${this.opts.testid}-warning` }, w));
    const hint = this.opts.zoomForm === false ? "" : " Drag across the plot to zoom; click a legend entry to hide its line.";
    notes.push(h("span", {}, `${steps.length} step(s), ${formatNumber(steps[0])}–${formatNumber(steps[steps.length - 1])}.${hint}`));
    clear(this.footer, notes);
  }

  /** Recreates the plot with the current series (scale or label changed). */
  private rebuild(): void {
    if (this.plot) this.build(alignSeries(this.series), "");
  }

  /** The x extent of the heat map's cells: each step's column reaches halfway to its neighbours. */
  private heatCells(): { bounds: number[] } | null {
    const heat = this.layers.heatmap;
    if (!heat || heat.steps.length === 0) return null;
    const st = heat.steps;
    const bounds = new Array<number>(st.length + 1);
    for (let i = 1; i < st.length; i++) bounds[i] = (st[i - 1] + st[i]) / 2;
    const first = st.length > 1 ? (st[1] - st[0]) / 2 : 0.5;
    const last = st.length > 1 ? (st[st.length - 1] - st[st.length - 2]) / 2 : 0.5;
    bounds[0] = st[0] - first;
    bounds[st.length] = st[st.length - 1] + last;
    return { bounds };
  }

  /** Heat-map cells under the lines: darker = a larger share of the step's elements in the bin. */
  private drawHeatmap(u: uPlot): void {
    const heat = this.layers.heatmap;
    const cells = this.heatCells();
    if (!heat || !cells) return;
    const shares = heat.counts.map((row) => {
      const total = row.reduce((a, b) => a + b, 0);
      return row.map((c) => (total > 0 ? c / total : 0));
    });
    const top = Math.max(0, ...shares.flat());
    if (!(top > 0)) return;
    const ctx = u.ctx;
    ctx.save();
    ctx.beginPath();
    ctx.rect(u.bbox.left, u.bbox.top, u.bbox.width, u.bbox.height);
    ctx.clip();
    const ys = heat.edges.map((e) => u.valToPos(e, "y", true));
    shares.forEach((row, i) => {
      const x0 = u.valToPos(cells.bounds[i], "x", true);
      const x1 = u.valToPos(cells.bounds[i + 1], "x", true);
      row.forEach((share, b) => {
        if (share <= 0) return;
        // Square root: the tails of a distribution stay visible next to its peak.
        ctx.fillStyle = heatColor(0.08 + 0.92 * Math.sqrt(share / top));
        ctx.fillRect(Math.floor(x0), Math.floor(ys[b + 1]), Math.ceil(x1 - x0) + 1, Math.ceil(ys[b] - ys[b + 1]) + 1);
      });
    });
    ctx.restore();
  }

  private build(data: uPlot.AlignedData, key: string): void {
    this.destroyPlot();
    this.plotHost.replaceChildren();
    this.seriesKey = key;
    this.plot = new uPlot(this.plotOptions(), data, this.plotHost);
    this.plot.over.appendChild(this.markerLayer);
    this.renderLegend();
    this.placeMarkers();
  }

  private renderLegend(): void {
    this.legendValues = [];
    clear(
      this.legend,
      this.series.map((s, i) => {
        const style = this.styleOf(s, i);
        const value = h("span", { class: "legend-value" });
        this.legendValues.push(value);
        const shown = !this.hidden.has(s.label);
        const item = h(
          "button",
          {
            type: "button",
            class: `legend-item${shown ? "" : " off"}`,
            "aria-pressed": String(shown),
            title: s.title ?? s.label,
            "data-series": s.label,
            "data-color": style.color,
            "data-dash": style.dash.join(" "),
            onclick: () => {
              const on = this.hidden.has(s.label);
              if (on) this.hidden.delete(s.label);
              else this.hidden.add(s.label);
              item.classList.toggle("off", !on);
              item.setAttribute("aria-pressed", String(on));
              this.plot?.setSeries(i + 1, { show: on });
            },
          },
          lineSwatch(style.color, style.dash),
          h("span", { class: "legend-label" }, s.label),
          value,
        );
        return h("li", {}, item);
      }),
    );
  }

  /** Legend values at the cursor's step, or each series' last value when the cursor is away. */
  private showValues(idx: number | null): void {
    const u = this.plot;
    if (!u) return;
    const step = idx != null ? (u.data[0] as number[])[idx] : undefined;
    this.element.dataset.cursorStep = step != null ? String(step) : "";
    this.legendValues.forEach((el, i) => {
      const col = u.data[i + 1] as (number | null | undefined)[];
      let v: number | null | undefined;
      if (idx != null) v = col[idx];
      else for (let k = col.length - 1; k >= 0 && v == null; k--) v = col[k];
      el.textContent = v == null ? "—" : formatNumber(v);
      el.classList.toggle("muted", idx == null);
    });
  }

  private relevantMarkers(): (RuleMarker & { x: number })[] {
    const tensors = new Set(this.series.map((s) => s.tensor).filter((t): t is string => Boolean(t)));
    const at = this.opts.markerStep ?? ((m: RuleMarker) => m.step);
    return this.markers
      .filter((m) => (m.tensors.length === 0 ? Boolean(this.opts.runMarkers) : m.tensors.some((t) => tensors.has(t))))
      .map((m) => ({ ...m, x: at(m) ?? NaN }))
      .filter((m) => Number.isFinite(m.x));
  }

  /** Markers are buttons over the plot (hover or focus shows the finding), placed at their step. */
  private placeMarkers(): void {
    const u = this.plot;
    const markers = this.relevantMarkers();
    this.element.dataset.markers = String(markers.length);
    if (!u) return;
    const labelled = new Set<string>();
    const width = u.over.clientWidth || u.bbox.width / uPlot.pxRatio;
    clear(
      this.markerLayer,
      markers
        .slice()
        .sort((a, b) => a.x - b.x)
        .map((m) => {
          const x = u.valToPos(m.x, "x");
          if (!Number.isFinite(x) || x < -1 || x > width + 1) return null;
          // The rule's name is written once per chart; every marker names it on hover.
          const first = !labelled.has(m.rule);
          labelled.add(m.rule);
          const onTensors = m.tensors.length ? ` on ${m.tensors.join(", ")}` : "";
          const marker = h(
            "button",
            {
              type: "button",
              class: `rule-marker${x > width / 2 ? " tip-left" : ""}`,
              "data-testid": "rule-marker",
              "data-rule": m.rule,
              "data-step": String(m.step),
              "data-tensors": m.tensors.join("|"),
              "aria-label": `${m.rule} at step ${m.step}${onTensors}: ${m.message}`,
            },
            first ? h("span", { class: "rule-marker-label" }, m.rule) : null,
            h(
              "span",
              { class: "rule-tip", role: "tooltip", "data-testid": "rule-tip" },
              h("strong", {}, m.rule),
              ` · step ${m.step}${onTensors}`,
              h("span", { class: "rule-tip-text" }, m.message),
            ),
          );
          marker.style.left = `${x}px`;
          return marker;
        }),
    );
  }

  private plotOptions(): uPlot.Options {
    const log = this.scale === "log";
    const x: uPlot.Scale = { time: false };
    let y: uPlot.Scale = log ? { distr: 3, log: 10 } : {};
    if (this.layers.heatmap) {
      // The cells set the extent: every bin and every step's column in view (read at each redraw: new steps move them).
      x.range = (_u, min, max) => {
        const b = this.heatCells()?.bounds;
        return b ? [Math.min(min ?? b[0], b[0]), Math.max(max ?? b[b.length - 1], b[b.length - 1])] : [min ?? 0, max ?? 1];
      };
      y = {
        range: (_u, min, max) => {
          const e = this.layers.heatmap?.edges ?? [];
          const [lo, hi] = [e[0] ?? min ?? 0, e[e.length - 1] ?? max ?? 1];
          return hi > lo ? [Math.min(min ?? lo, lo), Math.max(max ?? hi, hi)] : [lo - 1, hi + 1];
        },
      };
    }
    return {
      width: this.width(),
      height: this.opts.height ?? 260,
      scales: { x, y },
      bands: (this.layers.bands ?? []).map((b) => ({ series: [b.upper + 1, b.lower + 1] as [number, number], fill: b.fill })),
      axes: [
        { label: this.xLabel, stroke: "#475569", grid: { stroke: "#e2e8f0" }, ticks: { stroke: "#cbd5e1" }, incrs: STEP_INCREMENTS, space: 50, labelSize: 24 },
        {
          label: this.yLabel || undefined,
          labelSize: this.yLabel ? 22 : 0,
          stroke: "#475569",
          grid: { stroke: "#e2e8f0" },
          ticks: { stroke: "#cbd5e1" },
          size: 58,
          // A log axis passes null for the minor ticks it leaves unlabelled.
          values: (_u, vals) => vals.map((v) => (v == null ? "" : formatNumber(v))),
        },
      ],
      cursor: { drag: { x: true, y: false, setScale: false }, focus: { prox: 16 } },
      focus: { alpha: 0.35 },
      legend: { show: false },
      series: [
        { label: "step" },
        ...this.series.map((s, i) => {
          const style = this.styleOf(s, i);
          return {
            label: s.label,
            stroke: style.color,
            dash: style.dash.length ? [...style.dash] : undefined,
            width: s.width ?? 1.75,
            show: !this.hidden.has(s.label),
            points: { show: false },
          };
        }),
      ],
      hooks: {
        drawAxes: [(u: uPlot) => this.drawHeatmap(u)],
        setCursor: [(u: uPlot) => this.showValues(u.cursor.idx ?? null)],
        // Markers follow the x scale (resize, new data); tests read the y range the plot settled on.
        draw: [
          (u: uPlot) => {
            this.element.dataset.yMin = String(u.scales.y.min);
            this.element.dataset.yMax = String(u.scales.y.max);
            this.element.dataset.xMin = String(u.scales.x.min);
            this.element.dataset.xMax = String(u.scales.x.max);
            this.placeMarkers();
          },
        ],
        setSelect: [
          (u: uPlot) => {
            if (!this.opts.onZoom || u.select.width < 3) return;
            const from = Math.ceil(u.posToVal(u.select.left, "x"));
            const to = Math.floor(u.posToVal(u.select.left + u.select.width, "x"));
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
            if (from <= to) this.zoom({ from, to });
          },
        ],
      },
    };
  }

  private destroyPlot(): void {
    this.markerLayer.remove();
    this.plot?.destroy();
    this.plot = undefined;
    this.seriesKey = "";
  }

  destroy(): void {
    this.resizeObserver.disconnect();
    this.destroyPlot();
  }
}

export interface BarItem {
  label: string;
  value: number | null;
}

/** Horizontal bars, largest first; plain HTML so it is readable by screen readers. */
export function barList(items: BarItem[], testid: string, caption: string): HTMLElement {
  const sorted = items.slice().sort((a, b) => (b.value ?? -Infinity) - (a.value ?? -Infinity));
  const max = Math.max(0, ...sorted.map((i) => Math.abs(i.value ?? 0)));
  if (sorted.length === 0) return h("p", { class: "empty", "data-testid": testid }, "No data yet.");
  return h(
    "ol",
    { class: "bars", "data-testid": testid, "aria-label": caption },
    sorted.map((item, rank) => {
      const fill = h("span", { class: "bar-fill" });
      // CSSOM, not a style attribute: a strict Content-Security-Policy allows it.
      fill.style.width = `${max > 0 && item.value != null ? (Math.abs(item.value) / max) * 100 : 0}%`;
      return h(
        "li",
        { class: "bar-row", "data-feature": item.label },
        h("span", { class: "bar-label", title: item.label }, `${rank + 1}. ${item.label}`),
        h("span", { class: "bar-track" }, fill),
        h("span", { class: "bar-value" }, formatNumber(item.value)),
      );
    }),
  );
}
