/**
 * How series look and what the y axis says, shared by the job report (./svg.ts) and the dashboard
 * (web/src/chart.ts imports this file), so a run looks the same in both. No I/O, no DOM.
 */
import { higherIsBetter } from "../rules/metric-direction.js";

/**
 * 20 colours told apart at a glance: pairwise CIEDE2000 distance ≥ 14 (checked by
 * test/plot-style.test.ts), each at least 2.4:1 against white. The first ten are the common hues.
 */
export const SERIES_COLORS: readonly string[] = [
  "#1f5fd0", "#e8590c", "#2b9348", "#d62828", "#7b2cbf", "#0096c7", "#c2185b", "#8d5524", "#6a7d00", "#37474f",
  "#aa97b8", "#0a4519", "#cd9411", "#513148", "#f340f3", "#117773", "#f57687", "#9da17c", "#711b1a", "#bc9681",
];

/** Line styles as canvas/SVG dash arrays (px): the second channel once colours run out. */
export const DASH_PATTERNS: readonly (readonly number[])[] = [[], [8, 4], [2, 3], [10, 3, 2, 3], [5, 2, 1, 2, 1, 2], [1, 5]];

export interface SeriesStyle {
  color: string;
  dash: readonly number[];
}

/** Series i of a chart: a new colour for each of the first 20, then the colours again with the next dash. */
export function seriesStyle(i: number): SeriesStyle {
  const n = SERIES_COLORS.length;
  return { color: SERIES_COLORS[i % n], dash: DASH_PATTERNS[Math.floor(i / n) % DASH_PATTERNS.length] };
}

/** Distinct (colour, dash) pairs seriesStyle gives before it repeats. */
export const DISTINCT_SERIES_STYLES = SERIES_COLORS.length * DASH_PATTERNS.length;

/** One hue per run for comparisons: its clearest shade first, then darker, then lighter. */
export const RUN_FAMILIES: readonly (readonly string[])[] = [
  ["#1f5fd0", "#1e3a8a", "#6a9bf0"],
  ["#e8590c", "#9a3412", "#f59e62"],
  ["#2b9348", "#14532d", "#74c476"],
  ["#7b2cbf", "#4c1d95", "#b48ae8"],
  ["#d62828", "#7f1d1d", "#f08080"],
  ["#0f8b8d", "#134e4a", "#5cc8c8"],
  ["#8d5524", "#4a2c12", "#c69a6d"],
  ["#c2185b", "#701a45", "#f06aa6"],
];

/**
 * Tensor t of run r in a comparison: the run is the colour family, the tensor the line style
 * (then the shade), so "which run" and "which tensor" read separately. Unique within a chart for
 * up to 8 runs of up to 18 tensors; beyond that, runs share families with a shifted dash.
 */
export function runSeriesStyle(run: number, tensor: number): SeriesStyle {
  const family = RUN_FAMILIES[run % RUN_FAMILIES.length];
  const d = DASH_PATTERNS.length;
  const lap = Math.floor(run / RUN_FAMILIES.length);
  return {
    color: family[(Math.floor(tensor / d) + lap) % family.length],
    dash: DASH_PATTERNS[(tensor + lap) % d],
  };
}

/**
 * A min/max band with the mean (a layer's weights or gradients over steps): the band and its edges
 * in one colour (max solid, min dotted), the mean bold in a contrasting one.
 */
export const BAND_STYLES = {
  max: { color: SERIES_COLORS[0], dash: DASH_PATTERNS[0] },
  mean: { color: SERIES_COLORS[1], dash: DASH_PATTERNS[0] },
  min: { color: SERIES_COLORS[0], dash: DASH_PATTERNS[2] },
} as const satisfies Record<string, SeriesStyle>;

/** A colour as rgba with the given opacity (band fills). */
export function withAlpha(hex: string, alpha: number): string {
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  return `rgba(${r}, ${g}, ${b}, ${alpha})`;
}

/** The fill between a band's edges. */
export const BAND_FILL = withAlpha(SERIES_COLORS[0], 0.16);

/** Heat-map ramp (share of a step's elements in a bin): near-white to dark blue, away from the mean's orange. */
export const HEAT_STOPS: readonly (readonly [number, number, number])[] = [
  [239, 246, 255], [147, 197, 253], [59, 130, 246], [29, 78, 216], [23, 37, 84],
];

/** The ramp's colour at t in [0, 1]. */
export function heatColor(t: number): string {
  const x = Math.min(1, Math.max(0, t)) * (HEAT_STOPS.length - 1);
  const i = Math.min(HEAT_STOPS.length - 2, Math.floor(x));
  const f = x - i;
  const [a, b] = [HEAT_STOPS[i], HEAT_STOPS[i + 1]];
  return `rgb(${a.map((v, k) => Math.round(v + (b[k] - v) * f)).join(", ")})`;
}

/** smdebug's reduction names as people read them: "abs max", "l2". */
export function reductionLabel(name: string, abs: boolean): string {
  return `${abs ? "abs " : ""}${name.toLowerCase()}`;
}

/** The x axis of a chart over the steps of one mode (mode steps), or over global steps. */
export function stepAxisLabel(mode: string | null | undefined): string {
  return !mode || mode === "GLOBAL" ? "step" : `${mode} step`;
}

/** What the values of a deep-learning collection are, for its y axis. */
export function layerAxisLabel(collection: string): string {
  if (collection === "weights") return "weight value";
  if (collection === "biases") return "bias value";
  if (collection === "gradients") return "gradient value";
  if (/activations$/.test(collection)) return "activation value";
  if (collection === "losses") return "loss";
  return "value";
}

/** XGBoost eval tensors are `<set>-<metric>`: "validation-rmse" → "rmse". */
export function metricOf(tensorName: string): string | null {
  const i = tensorName.lastIndexOf("-");
  return i > 0 && i < tensorName.length - 1 ? tensorName.slice(i + 1) : null;
}

/** Whether the best value of a metric tensor is its largest (AUC, accuracy) rather than its smallest. */
export function higherIsBetterTensor(tensorName: string): boolean {
  const metric = metricOf(tensorName);
  return metric !== null && higherIsBetter(metric);
}

/** Units of XGBoost's eval metrics, where they are known. */
const METRIC_UNITS: Record<string, string> = {
  rmse: "label units",
  mae: "label units",
  rmsle: "log label units",
  mape: "fraction",
  mphe: "label units",
  logloss: "nats",
  mlogloss: "nats",
  error: "fraction wrong",
  merror: "fraction wrong",
  auc: "0–1",
  aucpr: "0–1",
};

/**
 * The y-axis label of a chart of one collection: the metric and its unit for metrics, the
 * importance type as a share for feature importance, SHAP values in label units; otherwise the
 * tensor (one series) or the collection name.
 */
export function axisLabel(collection: string, tensorNames: readonly string[], importanceType?: string | null): string {
  if (collection === "metrics") {
    const metrics = [...new Set(tensorNames.map((n) => metricOf(n) ?? n))];
    if (metrics.length === 1) {
      const unit = METRIC_UNITS[metrics[0].replace(/@.*$/, "").toLowerCase()];
      return unit ? `${metrics[0]} (${unit})` : metrics[0];
    }
    return "metric value";
  }
  if (collection === "feature_importance") return `${importanceType ?? "importance"} (share of total)`;
  if (collection === "average_shap") return "mean SHAP value (label units)";
  return tensorNames.length === 1 ? tensorNames[0] : collection;
}

/** Numbers as the dashboard and the report print them: 6 significant digits, exponent when tiny or huge. */
export function formatNumber(v: number | null | undefined): string {
  if (v == null) return "—";
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v)) return String(v);
  const abs = Math.abs(v);
  return abs !== 0 && (abs < 1e-3 || abs >= 1e6) ? v.toExponential(4) : v.toPrecision(6).replace(/\.?0+$/, "");
}
