// Line charts over steps (uPlot) with a zoom that asks the owner to refetch the selected
// step range at full resolution, and a horizontal bar list for rankings.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { h, clear, formatNumber, testidPart } from "./dom.js";

export interface StepRange {
  from: number;
  to: number;
}

export interface LineSeriesInput {
  label: string;
  steps: number[];
  /** null = a non-finite value: drawn as a gap */
  values: (number | null)[];
  color?: string;
  dash?: number[];
}

export interface ChartMeta {
  sampled: boolean;
  nonFiniteCount: number;
}

const PALETTE = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#db2777", "#0891b2", "#65a30d", "#9333ea", "#ea580c", "#475569", "#0d9488"];
export const DASHES: number[][] = [[], [8, 4], [2, 3], [10, 3, 2, 3]];

/** Steps are integers: tick only at 1, 2, 5, 10, 20, 50, … */
const STEP_INCREMENTS = Array.from({ length: 10 }, (_, e) => [1, 2, 5].map((m) => m * 10 ** e)).flat();

export function paletteColor(i: number): string {
  return PALETTE[i % PALETTE.length];
}

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

export interface LineChartOptions {
  title: string;
  testid: string;
  height?: number;
  /** Called with the step range the user selected, or null to reset to the whole run. */
  onZoom?: (range: StepRange | null) => void;
  emptyText?: string;
}

export class LineChart {
  readonly element: HTMLElement;
  private plot: uPlot | undefined;
  private plotHost: HTMLElement;
  private footer: HTMLElement;
  private zoomInfo: HTMLElement;
  private seriesKey = "";
  private resizeObserver: ResizeObserver;
  private range: StepRange | null = null;
  private fromInput: HTMLInputElement;
  private toInput: HTMLInputElement;

  constructor(private readonly opts: LineChartOptions) {
    const id = `chart-${testidPart(opts.testid)}`;
    this.plotHost = h("div", { class: "plot-host" });
    this.footer = h("div", { class: "chart-footer muted" });
    this.zoomInfo = h("span", { class: "zoom-info", "data-testid": `${opts.testid}-zoom` });
    this.fromInput = h("input", { type: "number", class: "step-input", "aria-label": `${opts.title}: zoom from step`, placeholder: "from" });
    this.toInput = h("input", { type: "number", class: "step-input", "aria-label": `${opts.title}: zoom to step`, placeholder: "to" });
    const zoomForm = opts.onZoom
      ? h(
          "form",
          {
            class: "zoom-form",
            onsubmit: (e: Event) => {
              e.preventDefault();
              const from = Number(this.fromInput.value);
              const to = Number(this.toInput.value);
              if (this.fromInput.value !== "" && this.toInput.value !== "" && from <= to) this.zoom({ from, to });
            },
          },
          this.fromInput,
          "–",
          this.toInput,
          h("button", { type: "submit", class: "small" }, "Zoom"),
          h("button", { type: "button", class: "small", "data-testid": `${opts.testid}-reset-zoom`, onclick: () => this.zoom(null) }, "Reset"),
        )
      : null;
    this.element = h(
      "figure",
      { class: "chart", "data-testid": opts.testid, "aria-labelledby": id },
      h("figcaption", { class: "chart-head" }, h("h3", { id }, opts.title), this.zoomInfo, zoomForm),
      this.plotHost,
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

  private zoom(range: StepRange | null): void {
    this.range = range;
    this.renderZoomInfo();
    this.opts.onZoom?.(range);
  }

  private renderZoomInfo(): void {
    this.zoomInfo.textContent = this.range ? `steps ${this.range.from}–${this.range.to} (full resolution)` : "";
    this.element.dataset.zoomed = this.range ? `${this.range.from}-${this.range.to}` : "";
  }

  private width(): number {
    return Math.max(240, this.plotHost.clientWidth || this.element.clientWidth || 600);
  }

  setData(series: LineSeriesInput[], meta: ChartMeta): void {
    const labels = series.map((s) => s.label);
    this.element.dataset.series = labels.join("|");
    const points = series.reduce((n, s) => n + s.steps.length, 0);
    this.element.dataset.points = String(points);
    this.element.dataset.sampled = String(meta.sampled);
    if (series.length === 0 || points === 0) {
      this.destroyPlot();
      delete this.element.dataset.firstStep;
      delete this.element.dataset.lastStep;
      clear(this.plotHost, h("p", { class: "empty", "data-testid": `${this.opts.testid}-empty` }, this.opts.emptyText ?? "No data yet."));
      this.footer.textContent = "";
      return;
    }
    const data = alignSeries(series);
    const key = series.map((s) => `${s.label}\u0000${s.color ?? ""}\u0000${(s.dash ?? []).join(",")}`).join("\u0001");
    if (this.plot && key === this.seriesKey) {
      this.plot.setData(data, true);
    } else {
      this.destroyPlot();
      this.plotHost.replaceChildren();
      this.seriesKey = key;
      this.plot = new uPlot(this.plotOptions(series), data, this.plotHost);
    }
    const steps = data[0] as number[];
    this.element.dataset.firstStep = String(steps[0]);
    this.element.dataset.lastStep = String(steps[steps.length - 1]);
    this.element.setAttribute("aria-description", `${series.length} series over steps ${steps[0]}–${steps[steps.length - 1]}`);
    const notes: (string | Node)[] = [];
    if (meta.sampled) notes.push(h("span", { class: "tag", "data-testid": `${this.opts.testid}-sampled`, title: "The server downsampled long series; zoom in for full resolution" }, "downsampled"));
    if (meta.nonFiniteCount > 0) notes.push(h("span", { class: "tag tag-warn" }, `${meta.nonFiniteCount} non-finite value(s) shown as gaps`));
    notes.push(h("span", {}, `${steps.length} step(s), ${formatNumber(steps[0])}–${formatNumber(steps[steps.length - 1])}. Drag across the plot to zoom.`));
    clear(this.footer, notes);
  }

  private plotOptions(series: LineSeriesInput[]): uPlot.Options {
    return {
      width: this.width(),
      height: this.opts.height ?? 260,
      scales: { x: { time: false } },
      axes: [
        { label: "step", stroke: "#475569", grid: { stroke: "#e2e8f0" }, ticks: { stroke: "#cbd5e1" }, incrs: STEP_INCREMENTS, space: 50 },
        { stroke: "#475569", grid: { stroke: "#e2e8f0" }, ticks: { stroke: "#cbd5e1" }, size: 60, values: (_u, vals) => vals.map((v) => formatNumber(v)) },
      ],
      cursor: { drag: { x: true, y: false, setScale: false }, focus: { prox: 16 } },
      focus: { alpha: 0.35 },
      legend: { live: true },
      series: [
        { label: "step", value: (_u, v) => (v == null ? "—" : String(v)) },
        ...series.map((s, i) => ({
          label: s.label,
          stroke: s.color ?? paletteColor(i),
          dash: s.dash && s.dash.length ? s.dash : undefined,
          width: 1.6,
          points: { show: false },
          value: (_u: uPlot, v: number | null) => formatNumber(v),
        })),
      ],
      hooks: {
        setSelect: [
          (u: uPlot) => {
            if (!this.opts.onZoom || u.select.width < 3) return;
            const from = Math.ceil(u.posToVal(u.select.left, "x"));
            const to = Math.floor(u.posToVal(u.select.left + u.select.width, "x"));
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
            if (from <= to) {
              this.fromInput.value = String(from);
              this.toInput.value = String(to);
              this.zoom({ from, to });
            }
          },
        ],
      },
    };
  }

  private destroyPlot(): void {
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
    sorted.map((item, rank) =>
      h(
        "li",
        { class: "bar-row", "data-feature": item.label },
        h("span", { class: "bar-label", title: item.label }, `${rank + 1}. ${item.label}`),
        h("span", { class: "bar-track" }, h("span", { class: "bar-fill", style: `width:${max > 0 && item.value != null ? (Math.abs(item.value) / max) * 100 : 0}%` })),
        h("span", { class: "bar-value" }, formatNumber(item.value)),
      ),
    ),
  );
}
