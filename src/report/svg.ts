/**
 * Pure SVG charts for the job report: line charts over steps (with rule markers) and horizontal
 * bar charts. Strings in, markup out; no DOM, no I/O. Styling comes from the report's <style>
 * (classes) and SVG presentation attributes, never style attributes, so a strict CSP holds.
 */
import { html, type SafeHtml } from "./html.js";
import { formatNumber } from "./plot-style.js";

export interface SvgSeries {
  label: string;
  steps: readonly number[];
  values: readonly (number | null)[];
  color: string;
  dash: readonly number[];
}

export interface SvgMarker {
  step: number;
  rule: string;
  /** Shown on hover (SVG <title>) and listed under the chart. */
  message: string;
  tensors: readonly string[];
}

/** A filled area between two series of the chart (indices; both over the same steps): a min/max band. */
export interface SvgBand {
  upper: number;
  lower: number;
  fill: string;
}

export interface LineChartSpec {
  title: string;
  yLabel: string;
  /** Default "step". */
  xLabel?: string;
  bands?: readonly SvgBand[];
  series: readonly SvgSeries[];
  markers?: readonly SvgMarker[];
  width?: number;
  height?: number;
}

/** Round numbers for axis ticks: 1, 2 or 5 times a power of ten, about `count` of them. */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!(max > min)) return [min];
  const raw = (max - min) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).reduce((a, b) => (Math.abs((max - min) / b - count) < Math.abs((max - min) / a - count) ? b : a));
  const ticks: number[] = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

/** [min, max] of the finite values, padded a little; a flat series gets some room. */
function domain(values: number[], pad: number): [number, number] {
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (lo === hi) {
    const d = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    return [lo - d, hi + d];
  }
  const d = (hi - lo) * pad;
  lo -= d;
  hi += d;
  return [lo, hi];
}

const px = (v: number) => Number(v.toFixed(2));

export function swatch(color: string, dash: readonly number[]): SafeHtml {
  return html`<svg class="swatch" width="28" height="10" viewBox="0 0 28 10" aria-hidden="true"><line x1="1" y1="5" x2="27" y2="5" stroke="${color}" stroke-width="2.5"${dash.length ? html` stroke-dasharray="${dash.join(" ")}"` : ""}/></svg>`;
}

/** A line chart of series over steps, with dashed vertical markers where rules fired. */
export function lineChart(spec: LineChartSpec): SafeHtml {
  const width = spec.width ?? 720;
  const height = spec.height ?? 280;
  const m = { left: 70, right: 16, top: 22, bottom: 42 };
  const plotW = width - m.left - m.right;
  const plotH = height - m.top - m.bottom;
  const steps = spec.series.flatMap((s) => s.steps);
  const ys = spec.series.flatMap((s) => s.values.filter((v): v is number => v != null && Number.isFinite(v)));
  if (!steps.length || !ys.length) return html`<p class="empty">No values saved.</p>`;
  const [x0, x1] = steps.length > 1 && Math.min(...steps) !== Math.max(...steps) ? [Math.min(...steps), Math.max(...steps)] : [steps[0] - 1, steps[0] + 1];
  const [y0, y1] = domain(ys, 0.06);
  const x = (v: number) => px(m.left + ((v - x0) / (x1 - x0)) * plotW);
  const y = (v: number) => px(m.top + (1 - (v - y0) / (y1 - y0)) * plotH);

  const xTicks = niceTicks(x0, x1, Math.max(2, Math.floor(plotW / 70))).filter((t) => Number.isInteger(t));
  const yTicks = niceTicks(y0, y1, Math.max(2, Math.floor(plotH / 35)));
  const grid = [
    ...yTicks.map((t) => html`<line class="grid" x1="${m.left}" x2="${m.left + plotW}" y1="${y(t)}" y2="${y(t)}"/><text class="tick" x="${m.left - 6}" y="${y(t) + 4}" text-anchor="end">${formatNumber(t)}</text>`),
    ...xTicks.map((t) => html`<line class="grid" y1="${m.top}" y2="${m.top + plotH}" x1="${x(t)}" x2="${x(t)}"/><text class="tick" x="${x(t)}" y="${m.top + plotH + 16}" text-anchor="middle">${t}</text>`),
  ];
  // A null value (NaN, ±Infinity) breaks the line, as in the dashboard.
  const paths = spec.series.map((s) => {
    let d = "";
    let pen = false;
    s.steps.forEach((st, i) => {
      const v = s.values[i];
      if (v == null || !Number.isFinite(v)) {
        pen = false;
        return;
      }
      d += `${pen ? "L" : "M"}${x(st)} ${y(v)}`;
      pen = true;
    });
    return html`<path class="series" d="${d}" stroke="${s.color}"${s.dash.length ? html` stroke-dasharray="${s.dash.join(" ")}"` : ""}><title>${s.label}</title></path>`;
  });
  // Bands under the lines: one closed path per run of steps where both edges are finite.
  const bands = (spec.bands ?? []).map((b) => {
    const up = spec.series[b.upper];
    const lo = spec.series[b.lower];
    if (!up || !lo) return "";
    let d = "";
    let run: [number, number, number][] = [];
    const flush = () => {
      if (run.length > 1) d += `M${run.map((p) => `${p[0]} ${p[1]}`).join("L")}L${run.slice().reverse().map((p) => `${p[0]} ${p[2]}`).join("L")}Z`;
      run = [];
    };
    up.steps.forEach((st, i) => {
      const [a, c] = [up.values[i], lo.values[i]];
      if (a != null && c != null && Number.isFinite(a) && Number.isFinite(c)) run.push([x(st), y(a), y(c)]);
      else flush();
    });
    flush();
    return d ? html`<path class="band" d="${d}" fill="${b.fill}"/>` : "";
  });
  const labelled = new Set<string>();
  const markers = (spec.markers ?? [])
    .filter((mk) => mk.step >= x0 && mk.step <= x1)
    .sort((a, b) => a.step - b.step)
    .map((mk) => {
      const first = !labelled.has(mk.rule);
      labelled.add(mk.rule);
      const right = x(mk.step) > m.left + plotW * 0.7;
      const on = mk.tensors.length ? ` on ${mk.tensors.join(", ")}` : "";
      return html`<g class="rule-marker" data-step="${mk.step}" data-rule="${mk.rule}"><title>${mk.rule} at step ${mk.step}${on}: ${mk.message}</title><line x1="${x(mk.step)}" x2="${x(mk.step)}" y1="${m.top}" y2="${m.top + plotH}"/>${first ? html`<text x="${x(mk.step) + (right ? -4 : 4)}" y="${m.top + 11}" text-anchor="${right ? "end" : "start"}">${mk.rule}</text>` : ""}</g>`;
    });
  return html`<svg class="chart" role="img" viewBox="0 0 ${width} ${height}" width="100%" preserveAspectRatio="xMidYMid meet"><title>${spec.title}</title>${grid}<rect class="frame" x="${m.left}" y="${m.top}" width="${plotW}" height="${plotH}"/>${bands}${paths}${markers}<text class="axis-label" x="${m.left + plotW / 2}" y="${height - 6}" text-anchor="middle">${spec.xLabel ?? "step"}</text><text class="axis-label" transform="translate(14 ${m.top + plotH / 2}) rotate(-90)" text-anchor="middle">${spec.yLabel}</text></svg>`;
}

export interface BarItem {
  label: string;
  value: number;
}

/**
 * Horizontal bars, in the given order; signed values grow left or right of a zero line
 * (average SHAP), non-negative ones from the left (importance).
 */
export function barChart(title: string, items: readonly BarItem[], width = 720): SafeHtml {
  if (!items.length) return html`<p class="empty">No values saved.</p>`;
  const row = 20;
  const labelW = 170;
  const valueW = 80;
  const height = items.length * row + 8;
  const plotW = width - labelW - valueW - 8;
  const lo = Math.min(0, ...items.map((i) => i.value));
  const hi = Math.max(0, ...items.map((i) => i.value));
  const span = hi - lo || 1;
  const x = (v: number) => px(labelW + ((v - lo) / span) * plotW);
  const bars = items.map((it, i) => {
    const top = 4 + i * row;
    const a = x(Math.min(0, it.value));
    const b = x(Math.max(0, it.value));
    return html`<g class="bar${it.value < 0 ? " negative" : ""}"><title>${it.label}: ${formatNumber(it.value)}</title><text class="bar-label" x="${labelW - 6}" y="${top + 13}" text-anchor="end">${it.label}</text><rect x="${a}" y="${top + 3}" width="${px(Math.max(0.5, b - a))}" height="${row - 6}"/><text class="bar-value" x="${width - 4}" y="${top + 13}" text-anchor="end">${formatNumber(it.value)}</text></g>`;
  });
  const zero = lo < 0 ? html`<line class="zero" x1="${x(0)}" x2="${x(0)}" y1="2" y2="${height - 2}"/>` : "";
  return html`<svg class="bars" role="img" viewBox="0 0 ${width} ${height}" width="100%" preserveAspectRatio="xMidYMid meet"><title>${title}</title>${bars}${zero}</svg>`;
}
