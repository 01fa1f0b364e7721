/**
 * The job report: one self-contained, printable HTML page per training job, like SageMaker
 * Debugger's XGBoost training report: the job's settings, rule outcomes, metric curves with the
 * steps where rules fired, feature importance and SHAP. Charts are inline SVG; the one stylesheet is
 * inline (its hash goes in the route's CSP); nothing is fetched. Pure: data in, HTML out.
 */
import { createHash } from "node:crypto";
import { html, trusted, type SafeHtml } from "./html.js";
import { BAND_FILL, BAND_STYLES, axisLabel, formatNumber, higherIsBetterTensor, layerAxisLabel, seriesStyle, stepAxisLabel } from "./plot-style.js";
import type { JobReportData, ReportDeepLearning, ReportLayer, ReportRule, ReportSeries } from "./query.js";
import { barChart, lineChart, swatch, type SvgMarker, type SvgSeries } from "./svg.js";

/** Lines per over-steps chart and bars per ranking: more stops being readable on paper. */
const MAX_LINES = 10;
const MAX_BARS = 20;
/** Layer charts per collection: the first ones by name, the rest are on the dashboard. */
const MAX_LAYERS = 12;
const IMPORTANCE_TYPES = ["gain", "weight", "cover", "total_gain", "total_cover"];

export const REPORT_CSS = `
:root { color: #0f172a; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
body { margin: 0; background: #f6f7f9; }
.report { max-width: 980px; margin: 0 auto; padding: 24px 28px 40px; background: #fff; }
h1 { font-size: 1.5rem; margin: 0 0 4px; }
h1 code { font-size: 1.15rem; background: #eef2ff; padding: 1px 6px; border-radius: 4px; overflow-wrap: anywhere; }
h2 { font-size: 1.15rem; margin: 0 0 10px; padding-bottom: 4px; border-bottom: 2px solid #e2e8f0; }
h3 { font-size: 0.98rem; margin: 14px 0 6px; }
section { margin: 22px 0; break-inside: avoid-page; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.92em; overflow-wrap: anywhere; }
.meta, .muted, .note { color: #64748b; }
.note { font-size: 0.85rem; }
.empty { color: #64748b; font-style: italic; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 10px; }
th { text-align: left; font-size: 0.75rem; text-transform: uppercase; letter-spacing: 0.03em; color: #64748b; border-bottom: 1px solid #e2e8f0; padding: 5px 6px; }
td { border-bottom: 1px solid #f1f5f9; padding: 5px 6px; vertical-align: top; overflow-wrap: break-word; }
table.rules td:first-child { width: 11rem; }
.rankings { display: grid; grid-template-columns: repeat(auto-fill, minmax(330px, 1fr)); gap: 4px 24px; }
td.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
dl.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); gap: 8px 20px; margin: 0 0 10px; }
dl.facts dt { font-size: 0.72rem; text-transform: uppercase; letter-spacing: 0.03em; color: #64748b; }
dl.facts dd { margin: 1px 0 0; overflow-wrap: anywhere; }
.badge { display: inline-block; border-radius: 999px; padding: 1px 9px; font-size: 0.75rem; font-weight: 600; white-space: nowrap; background: #e2e8f0; color: #334155; }
.badge.completed, .badge.no-issues-found { background: #d1fae5; color: #065f46; }
.badge.issues-found { background: #ffedd5; color: #9a3412; }
.badge.failed, .badge.error { background: #fee2e2; color: #991b1b; }
.badge.in-progress { background: #dbeafe; color: #1e40af; }
.callout { border-left: 4px solid #f97316; background: #fff7ed; padding: 8px 12px; margin: 8px 0; }
.callout.ok { border-left-color: #10b981; background: #ecfdf5; }
.callout.problem { border-left-color: #dc2626; background: #fef2f2; }
.findings { margin: 4px 0 0; padding-left: 18px; font-size: 0.88rem; }
ul.legend { list-style: none; display: flex; flex-wrap: wrap; gap: 2px 14px; padding: 0; margin: 4px 0 8px; font-size: 0.82rem; }
ul.legend li { display: inline-flex; align-items: center; gap: 5px; }
svg.chart, svg.bars { display: block; max-width: 100%; height: auto; font-size: 11px; }
svg .grid { stroke: #e2e8f0; stroke-width: 1; }
svg .frame { fill: none; stroke: #cbd5e1; stroke-width: 1; }
svg .tick { fill: #475569; font-size: 11px; }
svg .axis-label { fill: #334155; font-size: 12px; font-weight: 600; }
svg .series { fill: none; stroke-width: 1.8; stroke-linejoin: round; }
svg .rule-marker line { stroke: #c2410c; stroke-width: 1.5; stroke-dasharray: 5 3; }
svg .rule-marker text { fill: #9a3412; font-size: 11px; font-weight: 600; }
svg .bar rect { fill: #3b82f6; }
svg .bar.negative rect { fill: #f97316; }
svg .bar-label, svg .bar-value { fill: #334155; font-size: 11px; }
svg .zero { stroke: #64748b; stroke-width: 1; }
.swatch { vertical-align: middle; }
.layers { display: grid; grid-template-columns: repeat(auto-fill, minmax(400px, 1fr)); gap: 4px 20px; }
.layers h3 { font-size: 0.85rem; margin: 8px 0 2px; overflow-wrap: anywhere; }
footer { margin-top: 28px; color: #64748b; font-size: 0.8rem; border-top: 1px solid #e2e8f0; padding-top: 8px; }
@page { size: A4; margin: 12mm; }
@media print {
  body { background: #fff; }
  .report { max-width: none; padding: 0; }
  section { break-inside: avoid; }
  h2 { break-after: avoid; }
}
`;

/** For the route's Content-Security-Policy: the inline stylesheet is allowed by its hash, nothing else. */
export const REPORT_STYLE_HASH = `sha256-${createHash("sha256").update(REPORT_CSS).digest("base64")}`;

function badge(status: string): SafeHtml {
  return html`<span class="badge ${status.toLowerCase().replace(/_/g, "-")}">${status.replace(/_/g, " ")}</span>`;
}

function time(iso: string | null | undefined): string {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : `${d.toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

function duration(from: string | null, to: string | null): string {
  if (!from || !to) return "—";
  const s = Math.round((new Date(to).getTime() - new Date(from).getTime()) / 1000);
  if (!Number.isFinite(s) || s < 0) return "—";
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}

function lastFinite(s: ReportSeries["series"]): { step: number; value: number } | null {
  for (let i = s.values.length - 1; i >= 0; i--) {
    const v = s.values[i];
    if (v != null && Number.isFinite(v)) return { step: s.steps[i], value: v };
  }
  return null;
}

function best(name: string, s: ReportSeries["series"]): { step: number; value: number } | null {
  const higher = higherIsBetterTensor(name);
  let out: { step: number; value: number } | null = null;
  s.values.forEach((v, i) => {
    if (v == null || !Number.isFinite(v)) return;
    if (!out || (higher ? v > out.value : v < out.value)) out = { step: s.steps[i], value: v };
  });
  return out;
}

function legend(series: readonly SvgSeries[]): SafeHtml {
  return html`<ul class="legend">${series.map((s) => html`<li>${swatch(s.color, s.dash)}<span>${s.label}</span></li>`)}</ul>`;
}

function toSvgSeries(tensors: readonly ReportSeries[], label: (name: string) => string): SvgSeries[] {
  return tensors.map((t, i) => ({ label: label(t.name), steps: t.series.steps, values: t.series.values, ...seriesStyle(i) }));
}

/** Every finding of every rule, for the charts of the tensors it names (run-wide ones go on metrics). */
function markersFor(rules: readonly ReportRule[], tensors: readonly string[], runWide: boolean): SvgMarker[] {
  const names = new Set(tensors);
  return rules.flatMap((r) =>
    r.findings
      .filter((f) => (f.tensorNames.length ? f.tensorNames.some((t) => names.has(t)) : runWide))
      .map((f) => ({ step: f.step, rule: r.ruleConfigurationName, message: f.message, tensors: f.tensorNames })),
  );
}

function sampledNote(tensors: readonly ReportSeries[]): SafeHtml | "" {
  return tensors.some((t) => t.series.sampled)
    ? html`<p class="note">Long series are drawn from a downsampled copy that keeps each bucket's extremes, the first and the last step.</p>`
    : "";
}

function rulesSection(rules: readonly ReportRule[]): SafeHtml {
  if (!rules.length) return html`<p class="empty">No rules were configured for this job.</p>`;
  const issues = rules.filter((r) => r.ruleEvaluationStatus === "ISSUES_FOUND");
  const callout = issues.length
    ? html`<div class="callout" data-testid="report-issues">${issues.map((r) => {
        const f = r.findings[0];
        return html`<div><strong>${r.ruleConfigurationName}</strong> found an issue${f ? html` at step ${f.step}${f.tensorNames.length ? html` on <code>${f.tensorNames.join(", ")}</code>` : ""}` : ""}${r.findings.length > 1 ? ` (and ${r.findings.length - 1} later step(s))` : ""}.</div>`;
      })}</div>`
    : html`<div class="callout ok">No rule found an issue.</div>`;
  const rows = rules.map(
    (r) => html`<tr data-rule="${r.ruleConfigurationName}"><td><strong>${r.ruleConfigurationName}</strong><div class="muted">${r.evaluator}</div></td><td>${badge(r.ruleEvaluationStatus)}</td><td class="num">${r.findings.map((f) => f.step).join(", ") || "—"}</td><td>${r.statusDetails ?? "—"}${
      r.findings.length
        ? html`<ol class="findings">${r.findings.map((f) => html`<li>step ${f.step}${f.mode !== "GLOBAL" ? ` (${f.mode} ${f.modeStep})` : ""}${f.tensorNames.length ? html` · <code>${f.tensorNames.join(", ")}</code>` : ""}: ${f.message}</li>`)}</ol>`
        : ""
    }<div class="muted">updated ${time(r.lastModifiedTime)}</div></td></tr>`,
  );
  return html`${callout}<table class="rules"><thead><tr><th>Rule</th><th>Status</th><th>Steps</th><th>Details</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function metricsSection(tensors: readonly ReportSeries[], rules: readonly ReportRule[]): SafeHtml {
  if (!tensors.length) return html`<p class="empty">The trial has no metrics collection.</p>`;
  const series = toSvgSeries(tensors, (n) => n);
  const markers = markersFor(rules, tensors.map((t) => t.name), true);
  const rows = tensors.map((t, i) => {
    const last = lastFinite(t.series);
    const top = best(t.name, t.series);
    return html`<tr><td>${swatch(series[i].color, series[i].dash)} <code>${t.name}</code></td><td class="num">${last ? html`${formatNumber(last.value)} <span class="muted">@ ${last.step}</span>` : "—"}</td><td class="num">${top ? html`${formatNumber(top.value)} <span class="muted">@ ${top.step}</span>` : "—"}</td><td class="num">${last && top ? formatNumber(last.value - top.value) : "—"}</td></tr>`;
  });
  const yLabel = axisLabel("metrics", tensors.map((t) => t.name));
  return html`${lineChart({ title: "Metrics over steps", yLabel, series, markers })}${legend(series)}${laterPart(series, markers, yLabel)}${
    markers.length ? html`<p class="note">Dashed vertical lines: steps where a rule found an issue (hover for the finding).</p>` : ""
  }${sampledNote(tensors)}<table><thead><tr><th>Metric</th><th>Final</th><th>Best</th><th>Final − best</th></tr></thead><tbody>${rows}</tbody></table>`;
}

/**
 * When the first rounds' large losses squeeze the rest of the run into a flat line (8 → 1.5 hides a
 * 2.25 → 2.30 rise), the run after its first fifth again, with the y axis fitted to it.
 */
function laterPart(series: readonly SvgSeries[], markers: readonly SvgMarker[], yLabel: string): SafeHtml | "" {
  const steps = series.flatMap((s) => s.steps);
  if (steps.length < 2) return "";
  const [first, last] = [Math.min(...steps), Math.max(...steps)];
  const cut = first + Math.ceil((last - first) / 5);
  const finite = (v: number | null): v is number => v != null && Number.isFinite(v);
  const spread = (vals: (number | null)[]) => {
    const f = vals.filter(finite);
    return f.length ? Math.max(...f) - Math.min(...f) : 0;
  };
  const whole = spread(series.flatMap((s) => [...s.values]));
  const later = series.map((s) => {
    const keep = s.steps.map((st) => st >= cut);
    return { ...s, steps: s.steps.filter((_, i) => keep[i]), values: s.values.filter((_, i) => keep[i]) };
  });
  if (!(whole > 0) || spread(later.flatMap((s) => s.values)) > whole * 0.3) return "";
  return html`<h3>From step ${cut} on, y axis fitted</h3>${lineChart({ title: `Metrics from step ${cut}`, yLabel, series: later, markers, height: 240 })}`;
}

/** The top `n` tensors by the absolute value of their last value. */
function topByLatest(tensors: readonly ReportSeries[], n: number): ReportSeries[] {
  return tensors
    .map((t) => ({ t, v: Math.abs(lastFinite(t.series)?.value ?? 0) }))
    .sort((a, b) => b.v - a.v)
    .slice(0, n)
    .map((x) => x.t);
}

function ranking(tensors: readonly ReportSeries[], label: (n: string) => string, title: string, width?: number): SafeHtml {
  const items = topByLatest(tensors, MAX_BARS)
    .map((t) => ({ label: label(t.name), value: lastFinite(t.series)?.value ?? 0 }));
  const more = tensors.length > MAX_BARS ? html`<p class="note">The ${MAX_BARS} largest of ${tensors.length}.</p>` : "";
  return html`${barChart(title, items, width)}${more}`;
}

function importanceSection(tensors: readonly ReportSeries[], rules: readonly ReportRule[]): SafeHtml {
  if (!tensors.length) return html`<p class="empty">The trial has no feature_importance collection.</p>`;
  const byType = new Map<string, ReportSeries[]>();
  for (const t of tensors) {
    const m = /^feature_importance\/([^/]+)\/(.+)$/.exec(t.name);
    if (!m) continue;
    if (!byType.has(m[1])) byType.set(m[1], []);
    byType.get(m[1])!.push(t);
  }
  const types = [...IMPORTANCE_TYPES.filter((t) => byType.has(t)), ...[...byType.keys()].filter((t) => !IMPORTANCE_TYPES.includes(t)).sort()];
  const feature = (n: string) => n.replace(/^feature_importance\/[^/]+\//, "");
  // Each type's ranking at its last step side by side; the first type's course over steps below.
  const rankings = types.map((type) => {
    const ofType = byType.get(type)!;
    const last = Math.max(...ofType.map((t) => lastFinite(t.series)?.step ?? -Infinity));
    return html`<div><h3>${type}${Number.isFinite(last) ? html` <span class="muted">at step ${last}</span>` : ""}</h3>${ranking(ofType, feature, `Feature importance (${type}) at the last step`, 420)}</div>`;
  });
  const main = types[0];
  const lines = main ? topByLatest(byType.get(main)!, MAX_LINES) : [];
  const series = toSvgSeries(lines, feature);
  return html`<p class="note">Each importance type as a share of its total over the features (XGBoost's get_score, normalized by the debugger hook).</p><div class="rankings">${rankings}</div>${
    lines.length
      ? html`<h3>${main} over steps</h3>${lineChart({ title: `Feature importance (${main}) over steps`, yLabel: axisLabel("feature_importance", [], main), series, markers: markersFor(rules, lines.map((t) => t.name), false), height: 240 })}${legend(series)}`
      : ""
  }${sampledNote(tensors)}`;
}

function shapSection(tensors: readonly ReportSeries[], rules: readonly ReportRule[]): SafeHtml {
  if (!tensors.length) return html`<p class="empty">The trial has no average_shap collection.</p>`;
  const feature = (n: string) => n.replace(/^average_shap\//, "");
  const lines = topByLatest(tensors, MAX_LINES);
  const series = toSvgSeries(lines, feature);
  const last = Math.max(...tensors.map((t) => lastFinite(t.series)?.step ?? -Infinity));
  return html`<h3>Average SHAP value per feature${Number.isFinite(last) ? html` <span class="muted">at step ${last}</span>` : ""}</h3><p class="note">The mean SHAP value over the training rows: how much, and in which direction, a feature moves the prediction on average (label units).</p>${ranking(tensors, feature, "Average SHAP at the last step")}${lineChart({ title: "Average SHAP over steps", yLabel: axisLabel("average_shap", []), series, markers: markersFor(rules, lines.map((t) => t.name), false), height: 240 })}${legend(series)}${sampledNote(tensors)}`;
}

/** Losses by mode on one chart over global steps, and each mode's final and lowest value. */
function lossesSection(dl: ReportDeepLearning, rules: readonly ReportRule[]): SafeHtml {
  const lines = dl.losses.flatMap((l) => l.byMode.map((m) => ({ tensor: l.name, mode: m.mode, series: { ...m.series, steps: m.series.globalSteps } })));
  if (!lines.length) return html`<p class="empty">The trial has no losses collection.</p>`;
  const several = dl.losses.length > 1;
  const label = (x: (typeof lines)[number]) => (several ? `${x.tensor} · ${x.mode}` : x.mode);
  const series: SvgSeries[] = lines.map((x, i) => ({ label: label(x), steps: x.series.steps, values: x.series.values, ...seriesStyle(i) }));
  const markers = markersFor(rules, dl.losses.map((l) => l.name), true);
  const rows = lines.map((x, i) => {
    const last = lastFinite(x.series);
    let low: { step: number; value: number } | null = null;
    x.series.values.forEach((v, k) => {
      if (v != null && Number.isFinite(v) && (!low || v < low.value)) low = { step: x.series.steps[k], value: v };
    });
    const lowest = low as { step: number; value: number } | null;
    return html`<tr><td>${swatch(series[i].color, series[i].dash)} <code>${x.tensor}</code></td><td>${x.mode}</td><td class="num">${last ? html`${formatNumber(last.value)} <span class="muted">@ ${last.step}</span>` : "—"}</td><td class="num">${lowest ? html`${formatNumber(lowest.value)} <span class="muted">@ ${lowest.step}</span>` : "—"}</td></tr>`;
  });
  return html`${lineChart({ title: "Losses by mode over global steps", yLabel: layerAxisLabel("losses"), xLabel: "global step", series, markers })}${legend(series)}<p class="note">Each mode is a series; the x axis is the global step, so training and evaluation steps line up as they ran.</p>${sampledNote(lines.map((x) => ({ name: x.tensor, series: x.series })))}<table><thead><tr><th>Loss</th><th>Mode</th><th>Final</th><th>Lowest</th></tr></thead><tbody>${rows}</tbody></table>`;
}

/** A chart per layer: the min/max band of its elements and their mean over the steps of one mode. */
function layersSection(collection: string, layers: readonly ReportLayer[], dl: ReportDeepLearning, rules: readonly ReportRule[]): SafeHtml {
  if (!layers.length) return html`<p class="empty">The trial has no ${collection} collection.</p>`;
  const withStats = layers.filter((l) => l.statsSeries.steps.length > 0);
  const reduced = layers.filter((l) => l.statsSeries.steps.length === 0);
  const shown = withStats.slice(0, MAX_LAYERS);
  const key: SvgSeries[] = (["max", "mean", "min"] as const).map((k) => ({ label: k, steps: [], values: [], ...BAND_STYLES[k] }));
  // Findings are at global steps; these charts are over the mode's steps.
  const at = (f: ReportRule["findings"][number]) => (dl.mode ? (f.mode === dl.mode ? f.modeStep : null) : f.step);
  const charts = shown.map((l) => {
    const s = l.statsSeries;
    const series: SvgSeries[] = [
      { label: "max", steps: s.steps, values: s.max, ...BAND_STYLES.max },
      { label: "mean", steps: s.steps, values: s.mean, ...BAND_STYLES.mean },
      { label: "min", steps: s.steps, values: s.min, ...BAND_STYLES.min },
    ];
    const markers = rules.flatMap((r) =>
      r.findings
        .filter((f) => f.tensorNames.includes(l.name) && at(f) != null)
        .map((f) => ({ step: at(f)!, rule: r.ruleConfigurationName, message: f.message, tensors: f.tensorNames })),
    );
    const i = s.steps.length - 1;
    const last = html`<p class="note" data-last-stats>${stepAxisLabel(dl.mode)} ${s.steps[i]}: min ${formatNumber(s.min[i])}, mean ${formatNumber(s.mean[i])}, max ${formatNumber(s.max[i])}</p>`;
    return html`<div data-layer="${l.name}"><h3><code>${l.name}</code></h3>${last}${lineChart({ title: `${l.name}: min, mean and max over ${stepAxisLabel(dl.mode)}s`, yLabel: layerAxisLabel(collection), xLabel: stepAxisLabel(dl.mode), series, markers, bands: [{ upper: 0, lower: 2, fill: BAND_FILL }], width: 460, height: 220 })}</div>`;
  });
  return html`${legend(key)}<p class="note">Per layer over ${dl.mode ? `${dl.mode} steps` : "all steps"}: the band spans the smallest to the largest element, the line is the mean (statistics computed by the service from every element).</p><div class="layers">${charts}</div>${
    withStats.length > MAX_LAYERS ? html`<p class="note">The first ${MAX_LAYERS} of ${withStats.length} tensors; the dashboard shows all.</p>` : ""
  }${reduced.length ? html`<p class="note">Saved only as reductions (or not in these steps): ${reduced.map((l, i) => html`${i ? ", " : ""}<code>${l.name}</code>`)}; the dashboard plots their reductions.</p>` : ""}`;
}

export function renderJobReport(data: JobReportData): string {
  const j = data.job;
  const t = j.trial;
  // A deep-learning trial: losses and layers, and of the XGBoost sections only those with data.
  const dl = t ? data.deepLearning ?? null : null;
  const hp = Object.entries(j.hyperparameters ?? {}).sort(([a], [b]) => a.localeCompare(b));
  const problems = data.problems.length
    ? html`<div class="callout problem" data-testid="report-problems">${data.problems.map((p) => html`<div>Could not read <code>${p.path}</code>: ${p.message} <code>${p.code}</code></div>`)}</div>`
    : "";
  const facts: [string, unknown][] = [
    ["Status", html`${badge(j.status)}${j.secondaryStatus ? html` <span class="muted">${j.secondaryStatus}</span>` : ""}`],
    ["Backend", j.backend],
    ["Progress", j.progress ? `${j.progress.current} / ${j.progress.total} rounds` : "—"],
    ["Created", time(j.createdAt)],
    ["Started", time(j.startedAt)],
    ["Ended", time(j.endedAt)],
    ["Duration", duration(j.startedAt ?? j.createdAt, j.endedAt)],
    ["Debug output", j.debugOutputPath ? html`<code>${j.debugOutputPath}</code>` : "—"],
    ["Trial", t ? html`${t.steps.length} steps${t.steps.length ? ` (${t.steps[0]}–${t.steps[t.steps.length - 1]})` : ""}, ${t.trainingEnded ? "training ended" : "training not ended"}, workers ${t.workers.join(", ") || "—"}` : "none yet"],
  ];
  if (j.arn) facts.push(["ARN", html`<code>${j.arn}</code>`]);
  const body = html`<main class="report">
<header><h1>Training report <code>${j.name}</code></h1><p class="meta">Generated ${time(data.generatedAt.toISOString())} by trialgraph from the job's record and its smdebug trial.</p></header>
${problems}
${j.failureReason ? html`<div class="callout problem"><strong>Failure:</strong> ${j.failureReason}</div>` : ""}
<section id="settings"><h2>Job settings</h2><dl class="facts">${facts.map(([k, v]) => html`<div><dt>${k}</dt><dd>${v}</dd></div>`)}</dl>
<h3>Hyperparameters</h3>${hp.length ? html`<table data-testid="report-hyperparameters"><tbody>${hp.map(([k, v]) => html`<tr><td><code>${k}</code></td><td><code>${String(v)}</code></td></tr>`)}</tbody></table>` : html`<p class="empty">None.</p>`}</section>
<section id="rules"><h2>Rule outcomes</h2>${rulesSection(j.ruleSummaries)}</section>
${dl ? html`<section id="losses"><h2>Losses</h2>${lossesSection(dl, j.ruleSummaries)}</section>
<section id="weights"><h2>Weights</h2>${layersSection("weights", dl.weights, dl, j.ruleSummaries)}</section>
<section id="gradients"><h2>Gradients</h2>${layersSection("gradients", dl.gradients, dl, j.ruleSummaries)}</section>` : ""}
${dl && !t?.metrics?.tensors.length ? "" : html`<section id="metrics"><h2>Metrics</h2>${t ? metricsSection(t.metrics?.tensors ?? [], j.ruleSummaries) : html`<p class="empty">The job has no trial yet.</p>`}</section>`}
${dl && !t?.importance?.tensors.length ? "" : html`<section id="importance"><h2>Feature importance</h2>${t ? importanceSection(t.importance?.tensors ?? [], j.ruleSummaries) : html`<p class="empty">The job has no trial yet.</p>`}</section>`}
${dl && !t?.shap?.tensors.length ? "" : html`<section id="shap"><h2>SHAP</h2>${t ? shapSection(t.shap?.tensors ?? [], j.ruleSummaries) : html`<p class="empty">The job has no trial yet.</p>`}</section>`}
<footer>trialgraph job report · ${j.name} · self-contained: charts are inline SVG, nothing is loaded from elsewhere.</footer>
</main>`;
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Training report: ${j.name}</title><style>${trusted(REPORT_CSS)}</style></head>
<body>${body}</body></html>
`.value;
}
