/**
 * The job report renderer and its SVG plotting, without a server: everything a user controls is
 * escaped, charts are inline SVG with rule markers at the right x, nothing external is referenced.
 * (The route, auth and the browser rendering are in dashboard.e2e.test.ts and auth.test.ts.)
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { escapeHtml, html } from "../src/report/html.js";
import { REPORT_CSS, REPORT_STYLE_HASH, renderJobReport } from "../src/report/render.js";
import { REPORT_CSP, reportFileName } from "../src/report/route.js";
import { barChart, lineChart, niceTicks } from "../src/report/svg.js";
import type { JobReportData, ReportDeepLearning, ReportSeries } from "../src/report/query.js";

const EVIL = `<script>alert("x")</script><img src=x onerror=alert(1)>'"&`;

function series(name: string, values: number[]): ReportSeries {
  return { name, series: { steps: values.map((_, i) => i * 5), values, sampled: false } };
}

function report(overrides: Partial<JobReportData["job"]> = {}): JobReportData {
  return {
    generatedAt: new Date("2026-07-26T12:00:00Z"),
    problems: [],
    job: {
      name: "lab-eta-02",
      arn: null,
      backend: "LOCAL",
      status: "COMPLETED",
      secondaryStatus: "Completed",
      failureReason: null,
      createdAt: "2026-07-26T11:00:00.000Z",
      startedAt: "2026-07-26T11:00:01.000Z",
      endedAt: "2026-07-26T11:00:06.000Z",
      hyperparameters: { eta: "0.2", max_depth: "5" },
      debugOutputPath: "jobs/lab-eta-02/debug-output",
      progress: { current: 11, total: 11 },
      ruleSummaries: [{
        ruleConfigurationName: "LossNotDecreasing", ruleEvaluationStatus: "ISSUES_FOUND", evaluator: "SERVICE",
        statusDetails: "LossNotDecreasing found an issue at step 30 (tensor validation-rmse): it rose",
        lastModifiedTime: "2026-07-26T11:00:05.000Z",
        findings: [{ step: 30, mode: "GLOBAL", modeStep: 30, tensorNames: ["validation-rmse"], message: "validation-rmse rose" }],
      }],
      trial: {
        path: "jobs/lab-eta-02/debug-output", steps: [0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50], lastCompleteStep: 50, trainingEnded: true, workers: ["worker_0"],
        modes: [], collections: [{ name: "metrics", tensorNames: ["train-rmse", "validation-rmse"] }],
        metrics: { tensors: [series("train-rmse", [8, 3.3, 2.1, 1.9, 1.8, 1.75, 1.7, 1.68, 1.65, 1.62, 1.6]), series("validation-rmse", [8.1, 3.5, 2.4, 2.3, 2.249, 2.26, 2.264, 2.27, 2.28, 2.29, 2.303])] },
        importance: { tensors: [series("feature_importance/gain/f8", [0.4, 0.38]), series("feature_importance/gain/f4", [0.1, 0.14]), series("feature_importance/weight/f8", [0.2, 0.21])] },
        shap: { tensors: [series("average_shap/f8", [-0.05, -0.38]), series("average_shap/f7", [0, 0.2])] },
      },
      ...overrides,
    },
  };
}

test("escapeHtml and the html tag escape interpolations, keep nested html", () => {
  assert.equal(escapeHtml(`<a href="x">'&'</a>`), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  assert.equal(html`<p>${"<b>"}${html`<i>${"&"}</i>`}${["<", html`<br>`]}</p>`.value, "<p>&lt;b&gt;<i>&amp;</i>&lt;<br></p>");
});

test("a report with hostile names, hyperparameters, tensors and rule details has no markup of theirs", () => {
  const data = report({
    name: `lab${EVIL}`,
    hyperparameters: { [`key${EVIL}`]: `value${EVIL}` },
    failureReason: `failed${EVIL}`,
    ruleSummaries: [{
      ruleConfigurationName: `Rule${EVIL}`, ruleEvaluationStatus: "ISSUES_FOUND", evaluator: "SERVICE", statusDetails: `details${EVIL}</style>`,
      lastModifiedTime: null, findings: [{ step: 5, mode: "GLOBAL", modeStep: 5, tensorNames: [`t${EVIL}`], message: `msg${EVIL}` }],
    }],
  });
  data.job.trial!.metrics!.tensors.push(series(`m${EVIL}`, [1, 2]));
  data.problems.push({ path: `trainingJob.trial${EVIL}`, message: `cannot${EVIL}`, code: "S3_UNAVAILABLE" });
  const out = renderJobReport(data);
  assert.doesNotMatch(out, /<script/i);
  assert.doesNotMatch(out, /<img/i);
  // Attribute values are quoted with their quotes escaped: without them, no tag has a handler.
  assert.doesNotMatch(out.replace(/"[^"]*"/g, '""'), /<[^>]*\sonerror=/, "no event handler attribute in any tag");
  assert.equal(out.match(/<\/style>/g)?.length, 1, "only the report's own stylesheet closes");
  assert.ok(out.includes("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"), "the text is kept, escaped");
  assert.ok(out.includes(`<title>Training report: lab&lt;script&gt;`));
  // The only element names in the document are the report's own.
  const tags = new Set([...out.matchAll(/<([a-zA-Z][a-zA-Z0-9]*)/g)].map((m) => m[1].toLowerCase()));
  const allowed = ["html", "head", "meta", "title", "style", "body", "main", "header", "h1", "h2", "h3", "p", "code", "div", "section", "dl", "dt", "dd", "span", "table", "thead", "tbody", "tr", "th", "td", "strong", "ol", "ul", "li", "svg", "line", "text", "rect", "path", "g", "footer"];
  assert.deepEqual([...tags].filter((t) => !allowed.includes(t)), []);
});

test("the report is self-contained: inline SVG charts, no URL to fetch, and its stylesheet matches the CSP hash", () => {
  const out = renderJobReport(report());
  assert.ok((out.match(/<svg class="chart"/g)?.length ?? 0) >= 3, "metrics, importance and SHAP over steps");
  assert.ok((out.match(/<svg class="bars"/g)?.length ?? 0) >= 3, "importance rankings per type and SHAP");
  assert.doesNotMatch(out, /\b(src|href)=/, "nothing is loaded or linked");
  assert.doesNotMatch(out, /url\(/);
  assert.doesNotMatch(out, /\sstyle=/, "no style attributes (a strict CSP would drop them)");
  const css = /<style>([\s\S]*?)<\/style>/.exec(out)![1];
  assert.equal(css, REPORT_CSS);
  assert.equal(REPORT_STYLE_HASH, `sha256-${createHash("sha256").update(css).digest("base64")}`);
  assert.match(REPORT_CSP, /default-src 'none'/);
  assert.ok(REPORT_CSP.includes(`style-src '${REPORT_STYLE_HASH}'`));
  for (const section of ["settings", "rules", "metrics", "importance", "shap"]) assert.ok(out.includes(`<section id="${section}">`), section);
  assert.ok(out.includes("<code>eta</code></td><td><code>0.2</code>"));
});

test("rule findings are marked on the metrics chart at their step, only on charts of the tensors they name", () => {
  const out = renderJobReport(report());
  const metrics = /<section id="metrics">([\s\S]*?)<\/section>/.exec(out)![1];
  const marker = /<g class="rule-marker" data-step="30" data-rule="LossNotDecreasing"><title>([^<]*)<\/title><line x1="([\d.]+)"/.exec(metrics);
  // The run after its first fifth, fitted: the 2.249 → 2.303 rise fills the plot instead of 1 % of it.
  assert.match(metrics, /<h3>From step 10 on, y axis fitted<\/h3><svg class="chart"/);
  assert.equal(metrics.match(/data-step="30" data-rule="LossNotDecreasing"/g)?.length, 2, "the marker is on both charts");
  assert.ok(marker, "a marker at step 30 on the metrics chart");
  assert.match(marker[1], /LossNotDecreasing at step 30 on validation-rmse: validation-rmse rose/);
  // x of step 30 on a 0–50 axis: left margin 70, plot width 720 − 70 − 16.
  assert.equal(Number(marker[2]), Number((70 + (30 / 50) * (720 - 70 - 16)).toFixed(2)));
  for (const id of ["importance", "shap"]) {
    const part = new RegExp(`<section id="${id}">([\\s\\S]*?)</section>`).exec(out)![1];
    assert.doesNotMatch(part, /rule-marker/, `${id} has no tensor the rule named`);
  }
  assert.match(out, /data-testid="report-issues"><div><strong>LossNotDecreasing<\/strong> found an issue at step 30 on <code>validation-rmse<\/code>/);
});

/** A PyTorch-like trial: TRAIN steps 0–4, EVAL 0–1; losses at TRAIN 0–3 (global 0, 1, 3, 4) and EVAL 0–1 (global 2, 5). */
function deepLearning(layerName = "fc1.weight"): ReportDeepLearning {
  const stats = (k: number) => ({ steps: [0, 1, 2, 3, 4], min: [-k, -k, null, -k * 1.5, -k * 1.6], max: [k, k * 1.2, null, k * 1.4, k * 1.3], mean: [0, 0.01, null, 0.02, 0.03] });
  return {
    mode: "TRAIN",
    losses: [{ name: "CrossEntropyLoss_output_0", byMode: [
      { mode: "TRAIN", series: { steps: [0, 1, 2, 3], globalSteps: [0, 1, 3, 4], values: [2.3, 2.2, 2.0, 2.1], sampled: false } },
      { mode: "EVAL", series: { steps: [0, 1], globalSteps: [2, 5], values: [2.25, 2.05], sampled: false } },
    ] }],
    weights: [{ name: layerName, reductionsOnly: false, statsSeries: stats(0.2) }, { name: "fc2.weight", reductionsOnly: false, statsSeries: stats(0.3) }],
    gradients: [{ name: "gradient/fc1.weight", reductionsOnly: true, statsSeries: { steps: [], min: [], max: [], mean: [] } }],
  };
}

function dlReport(layerName?: string): JobReportData {
  const data = report({
    ruleSummaries: [{
      ruleConfigurationName: "ExplodingTensor", ruleEvaluationStatus: "ISSUES_FOUND", evaluator: "SERVICE", statusDetails: "ExplodingTensor at step 3", lastModifiedTime: null,
      findings: [{ step: 3, mode: "TRAIN", modeStep: 2, tensorNames: [layerName ?? "fc1.weight"], message: "NaN in fc1.weight" }],
    }],
  });
  data.job.trial = { ...data.job.trial!, modes: ["TRAIN", "EVAL"], metrics: { tensors: [] }, importance: null, shap: null };
  data.deepLearning = deepLearning(layerName);
  return data;
}

test("a deep-learning report: losses by mode over global steps, a band per layer, markers at the mode step, no empty XGBoost sections", () => {
  const out = renderJobReport(dlReport());
  for (const id of ["losses", "weights", "gradients"]) assert.ok(out.includes(`<section id="${id}">`), id);
  for (const id of ["metrics", "importance", "shap"]) assert.ok(!out.includes(`<section id="${id}">`), `no ${id}`);
  const losses = /<section id="losses">([\s\S]*?)<\/section>/.exec(out)![1];
  assert.equal(losses.match(/<path class="series"/g)?.length, 2, "TRAIN and EVAL on one chart");
  assert.match(losses, />global step<\/text>/);
  assert.match(losses, /<td>TRAIN<\/td><td class="num">2.1 <span class="muted">@ 4<\/span><\/td><td class="num">2 <span class="muted">@ 3<\/span>/);
  assert.match(losses, /<td>EVAL<\/td><td class="num">2.05 <span class="muted">@ 5<\/span>/);
  const weights = /<section id="weights">([\s\S]*?)<\/section>/.exec(out)![1];
  // The band: upper edge left to right, lower edge back, split where a step has no statistics.
  const bands = [...weights.matchAll(/<path class="band" d="([^"]+)" fill="([^"]+)"/g)];
  assert.equal(bands.length, 2);
  assert.equal(bands[0][1].match(/Z/g)?.length, 2, "a null step splits the band");
  assert.match(bands[0][2], /^rgba\(/);
  assert.match(weights, /data-last-stats>TRAIN step 4: min -0.32, mean 0.03, max 0.26</);
  // ExplodingTensor fired at global step 3 = TRAIN step 2: on fc1.weight's chart at x of 2 on 0–4 (width 460), not on fc2's.
  const fc1 = weights.slice(weights.indexOf('data-layer="fc1.weight"'), weights.indexOf('data-layer="fc2.weight"'));
  const marker = /<g class="rule-marker" data-step="2" data-rule="ExplodingTensor">[\s\S]*?<line x1="([\d.]+)"/.exec(fc1);
  assert.ok(marker, "the marker is at TRAIN step 2");
  assert.equal(Number(marker[1]), Number((70 + (2 / 4) * (460 - 70 - 16)).toFixed(2)));
  assert.doesNotMatch(weights.slice(weights.indexOf('data-layer="fc2.weight"')), /rule-marker/);
  assert.match(out, /Saved only as reductions \(or not in these steps\): <code>gradient\/fc1.weight<\/code>/);
  assert.doesNotMatch(out, /\sstyle=/);
});

test("a deep-learning report escapes layer names", () => {
  const out = renderJobReport(dlReport(`fc${EVIL}`));
  assert.doesNotMatch(out, /<script/i);
  assert.doesNotMatch(out, /<img/i);
  assert.ok(out.includes("fc&lt;script&gt;"));
});

test("SVG helpers: nice ticks, a gap at a non-finite value, signed bars around zero", () => {
  assert.deepEqual(niceTicks(0, 50, 5), [0, 10, 20, 30, 40, 50]);
  assert.deepEqual(niceTicks(1.5, 2.4, 4), [1.6, 1.8, 2, 2.2, 2.4]);
  const svg = lineChart({ title: "t", yLabel: "y", series: [{ label: "a", steps: [0, 1, 2, 3], values: [1, null, 3, 4], color: "#000", dash: [] }] }).value;
  const d = /<path class="series" d="([^"]+)"/.exec(svg)![1];
  assert.equal((d.match(/M/g) ?? []).length, 2, "the line restarts after the missing value");
  const bars = barChart("b", [{ label: "pos", value: 0.2 }, { label: "neg", value: -0.4 }]).value;
  assert.match(bars, /<g class="bar negative"><title>neg: -0.4<\/title>/);
  assert.match(bars, /<line class="zero"/);
});

test("report file names are safe in Content-Disposition", () => {
  assert.equal(reportFileName("xgboost-lab-2026-07-26"), "xgboost-lab-2026-07-26-report.html");
  assert.equal(reportFileName(`a"b\r\nc/../d`), "a_b_c_.._d-report.html");
});
