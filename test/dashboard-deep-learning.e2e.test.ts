/// <reference lib="dom" />
/**
 * The dashboard on deep-learning trials, in real Chromium against the real service (its own process,
 * a fresh data folder): the digits-mlp fixture (smdebug 1.0.34's PyTorch hook: TRAIN and EVAL, weights,
 * biases, gradients with reductions, losses, ReLU outputs) against its golden, plus trials written
 * with the project's TrialWriter for what it lacks (reductions only, two workers, NaN, a growing trial).
 * Checks what the charts hold (legend values at a step, heat-map pixels) against the golden and the
 * API, that no two series of a chart look alike, a strict CSP, no script or console errors.
 *
 * Needs the Debian package `chromium`. Screenshots go to test-artifacts/dashboard-deep-learning/.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Page } from "playwright-core";
import { buildDashboard, launchBrowser, type Browser } from "./support/browser.js";
import { gqlAt, startServiceProcess, type ServiceProcess } from "./support/service-process.js";
import { DIGITS_TRIAL, loadDigitsGolden, type DigitsValue } from "./support/fixtures.js";
import { matrix, writeTrialTo } from "./support/write-trial.js";
import { TrialWriter } from "../src/trials/trial-writer.js";
import { formatNumber, heatColor } from "../src/report/plot-style.js";

const ROOT = path.resolve(__dirname, "..");
const ARTIFACTS = path.join(ROOT, "test-artifacts", "dashboard-deep-learning");
const golden = loadDigitsGolden();
const DIGITS = "trials/digits";
const REDUCED = "trials/reduced";
const WORKERS = "trials/workers";
const GROWING = "trials/growing";
const DEEP = "trials/deep";
const DEEP_LAYERS = 14;
/** Gradients saved only as reductions, with names long enough that one regex for all of them is past the server's 2,000 characters. */
const DEEP_GRADIENTS = Array.from({ length: 30 }, (_, i) => `gradient/transformer.encoder.layers.${i}.self_attention.query_projection.weight`);
const COLLECTIONS = [
  { name: "weights", includeRegex: ["^(?!gradient).*weight"] },
  { name: "gradients", includeRegex: ["^gradient"] },
  { name: "losses", includeRegex: ["loss"] },
];

let dataDir = "";
let service: ServiceProcess;
let browser: Browser;
let page: Page;
let growing: TrialWriter;
const pageErrors: string[] = [];
/** Every GraphQL request the dashboard sent: { query, variables }. */
const requests: { query: string; variables: Record<string, unknown> }[] = [];
const consoleErrors: string[] = [];

async function gql<T = any>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const r = await gqlAt(service.url, query, variables);
  assert.equal(r.body.errors, undefined, JSON.stringify(r.body.errors));
  return r.body.data as T;
}

async function open(trialPath: string): Promise<void> {
  await page.evaluate((p) => (location.hash = `#/trial?path=${encodeURIComponent(p)}`), trialPath);
  await page.getByTestId("trial-path").filter({ hasText: trialPath }).waitFor();
}

async function shot(name: string): Promise<void> {
  await page.mouse.move(0, 0);
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

const chartOf = (testid: string) => `[data-testid="${testid}"]`;
const layerChart = (collection: string, tensor: string) => chartOf(`layer-${collection}-${tensor.replace(/[^A-Za-z0-9_.-]+/g, "_")}`);

async function attr(selector: string, name: string): Promise<string> {
  return (await page.locator(selector).first().getAttribute(name)) ?? "";
}

/** The chart's series labels, once it has drawn `kind` with them. */
async function waitForChart(selector: string, series: string, kind?: string): Promise<void> {
  await page.waitForFunction(
    ([sel, s, k]) => {
      const el = document.querySelector(sel as string) as HTMLElement | null;
      return !!el && el.dataset.series === s && !!el.querySelector("canvas") && (!k || el.dataset.kind === k);
    },
    [selector, series, kind ?? ""],
  );
}

/** Legend value text by series label (the value at the cursor's step, or each series' last value). */
async function legendValues(selector: string): Promise<Record<string, string>> {
  const items = await page.locator(`${selector} .legend-item`).evaluateAll((els) =>
    els.map((el) => [el.getAttribute("data-series") ?? "", el.querySelector(".legend-value")?.textContent ?? ""]),
  );
  return Object.fromEntries(items);
}

/** Moves the mouse over the plot to `step` and waits until the chart's cursor is there. */
async function hoverStep(selector: string, step: number): Promise<void> {
  const over = page.locator(`${selector} .u-over`);
  await over.scrollIntoViewIfNeeded();
  const box = (await over.boundingBox())!;
  const [xMin, xMax] = [Number(await attr(selector, "data-x-min")), Number(await attr(selector, "data-x-max"))];
  await page.mouse.move(box.x + ((step - xMin) / (xMax - xMin)) * box.width, box.y + box.height / 2);
  await page.waitForFunction(([sel, s]) => document.querySelector(sel as string)?.getAttribute("data-cursor-step") === String(s), [selector, step]);
}

/** Every chart on the page: no two of its series share colour and dash, and each swatch draws its line's. */
async function assertChartsDistinct(): Promise<number> {
  const charts = await page.locator("figure.chart").evaluateAll((figs) =>
    figs
      .filter((f) => (f as HTMLElement).offsetParent !== null)
      .map((f) => ({
        chart: f.getAttribute("data-testid") ?? "",
        items: [...f.querySelectorAll(".legend-item")].map((el) => {
          const line = el.querySelector("svg.swatch line");
          return { label: el.getAttribute("data-series"), color: el.getAttribute("data-color"), dash: el.getAttribute("data-dash"), stroke: line?.getAttribute("stroke"), dasharray: line?.getAttribute("stroke-dasharray") ?? "" };
        }),
      })),
  );
  let checked = 0;
  for (const c of charts) {
    const keys = c.items.map((i) => `${i.color}|${i.dash}`);
    assert.equal(new Set(keys).size, keys.length, `${c.chart}: two series look alike: ${keys.join(", ")}`);
    for (const i of c.items) {
      assert.equal(i.stroke, i.color, `${c.chart} ${i.label}: swatch colour`);
      assert.equal(i.dasharray, i.dash, `${c.chart} ${i.label}: swatch dash`);
    }
    if (c.items.length) checked++;
  }
  return checked;
}

/** min, max and mean of a golden value (its statistics, or its elements when it has at most 64). */
function goldenStats(v: DigitsValue): { min: number; max: number; mean: number } {
  if (v.stats) return v.stats;
  const data = v.data!.filter((x): x is number => x != null);
  return { min: Math.min(...data), max: Math.max(...data), mean: data.reduce((a, b) => a + b, 0) / data.length };
}

/** The global step of a mode step in the golden. */
function globalStep(tensor: string, mode: string, modeStep: number): number {
  return golden.tensors[tensor].mode_steps[mode][String(modeStep)];
}

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  buildDashboard();
  dataDir = mkdtempSync(path.join(os.tmpdir(), "trialgraph-dl-dashboard-"));
  const trials = path.join(dataDir, "trials");
  mkdirSync(trials);
  cpSync(DIGITS_TRIAL, path.join(trials, "digits"), { recursive: true });

  // Gradients saved only as reductions (save_raw_tensor False); a weight with a NaN at the last step.
  await writeTrialTo(path.join(dataDir, REDUCED), [0, 1, 2, 3, 4, 5].map((step) => ({
    step, mode: "TRAIN" as const, modeStep: step,
    tensors: {
      "gradient/fc.weight": matrix(8, 8, (r, c) => (r - c) * 10 ** (-step / 2)),
      "fc.weight": matrix(4, 4, (r, c) => (step === 5 && r === 0 && c === 0 ? NaN : (r * 4 + c - 7) / 10 + step * 0.01)),
      loss: 3 - step * 0.3,
    },
  })), {
    collections: COLLECTIONS,
    reductions: [{ match: /^gradient\//, saveRaw: false, reductions: [{ reduction: "mean", abs: true }, { reduction: "max", abs: false }, { reduction: "min", abs: false }, { reduction: "l2", abs: false }] }],
  });

  // Two workers (include_workers "all"), each with its own values; TRAIN steps 0 1 3 4, EVAL steps 2 5.
  const steps = [];
  for (const worker of ["worker_0", "worker_1"]) {
    const k = worker === "worker_0" ? 1 : 2;
    for (let step = 0; step < 6; step++) {
      const evalStep = step % 3 === 2;
      steps.push({
        step, worker, mode: (evalStep ? "EVAL" : "TRAIN") as "EVAL" | "TRAIN", modeStep: evalStep ? Math.floor(step / 3) : step - Math.floor(step / 3),
        tensors: { loss: 10 * k - step, "fc.weight": matrix(4, 8, (r, c) => k * (r + c + step)) },
      });
    }
  }
  await writeTrialTo(path.join(dataDir, WORKERS), steps, { workers: ["worker_0", "worker_1"], collections: COLLECTIONS });

  // More layers than a card draws at first.
  await writeTrialTo(path.join(dataDir, DEEP), [0, 1].map((step) => ({
    step, mode: "TRAIN" as const, modeStep: step,
    tensors: {
      ...Object.fromEntries(Array.from({ length: DEEP_LAYERS }, (_, i) => [`layer${i + 1}.weight`, [i, -i, step]])),
      ...Object.fromEntries(DEEP_GRADIENTS.map((n, i) => [n, [i, -i, step + 1]])),
    },
  })), { collections: COLLECTIONS, reductions: [{ match: /^gradient\//, saveRaw: false, reductions: [{ reduction: "max", abs: false }, { reduction: "min", abs: false }] }] });

  // A trial still being written: three steps now, more while the page is open.
  growing = new TrialWriter(path.join(dataDir, GROWING));
  await growing.writeCollections(COLLECTIONS);
  for (let step = 0; step < 3; step++) await growing.writeStep(step, [{ name: "fc.weight", dtype: "float32", shape: [2, 2], values: [step, -step, 1, 2] }, { name: "loss", dtype: "float32", shape: [1], values: [5 - step] }], { mode: "TRAIN", modeStep: step });

  service = await startServiceProcess({ env: { TRIALGRAPH_DATA_DIR: dataDir, TRIALGRAPH_SAGEMAKER_ENABLED: "false", TRIALGRAPH_POLL_INTERVAL_MS: "300", LOG_LEVEL: "warn" } });
  browser = await launchBrowser();
  page = browser.page;
  page.on("pageerror", (err) => pageErrors.push(String(err)));
  page.on("request", (req) => {
    if (req.url().endsWith("/graphql") && req.method() === "POST") requests.push(req.postDataJSON());
  });
  page.on("console", (msg) => {
    if (msg.type() === "error") consoleErrors.push(msg.text());
  });
  await page.goto(`${service.base}/`);
  await page.getByTestId("page-title").waitFor();
});

after(async () => {
  await browser?.close();
  await service?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

test("digits-mlp: losses and a card per collection with a chart per layer; no XGBoost panels without data", async () => {
  await open(DIGITS);
  await page.getByTestId("deep-learning").waitFor();
  for (const c of ["weights", "gradients", "biases", "relu_activations"]) await page.getByTestId(`layers-${c}`).waitFor();
  const groups = await page.locator("[data-testid=deep-learning] .layer-group").evaluateAll((els) => els.map((e) => e.getAttribute("data-collection")));
  assert.deepEqual(groups, ["weights", "gradients", "biases", "relu_activations"]);
  for (const [collection, names] of [["weights", golden.collections.weights.tensor_names], ["gradients", golden.collections.gradients.tensor_names]] as const) {
    await page.waitForFunction(([c, n]) => document.querySelectorAll(`[data-collection="${c}"] figure.chart canvas`).length === n, [collection, names.length] as const);
    const shown = await page.locator(`[data-collection="${collection}"] figure.chart`).evaluateAll((els) => els.map((e) => e.getAttribute("data-tensor")));
    assert.deepEqual(shown.sort(), names.slice().sort(), `${collection}: one chart per tensor`);
  }
  assert.equal(await page.getByTestId("metrics-chart").isVisible(), false, "no metrics collection, no metrics chart");
  assert.equal(await page.getByTestId("importance-chart").isVisible(), false);
  assert.equal(await page.getByTestId("shap-chart").isVisible(), false);
  assert.equal(await page.getByTestId("trial-modes").innerText(), "TRAIN, EVAL");
  assert.ok((await assertChartsDistinct()) >= 15, "every chart of the page checked");
  await shot("01-digits-band");
});

test("losses by mode: TRAIN and EVAL on one chart over mode steps (stated on the axis), then over global steps", async () => {
  const chart = chartOf("loss-chart");
  await waitForChart(chart, "TRAIN|EVAL");
  assert.match(await attr(chart, "data-x-label"), /^mode step/);
  const loss = "CrossEntropyLoss_output_0";
  const value = (global: number) => formatNumber((golden.tensors[loss].values[String(global)].data as number[])[0]);
  const trainSteps = Object.keys(golden.tensors[loss].mode_steps.TRAIN).map(Number).sort((a, b) => a - b);
  const evalSteps = Object.keys(golden.tensors[loss].mode_steps.EVAL).map(Number).sort((a, b) => a - b);
  assert.equal(Number(await attr(chart, "data-last-step")), Math.max(...trainSteps));
  // Away from the plot the legend shows each series' last value.
  let shown = await legendValues(chart);
  assert.equal(shown.TRAIN, value(globalStep(loss, "TRAIN", trainSteps.at(-1)!)));
  assert.equal(shown.EVAL, value(globalStep(loss, "EVAL", evalSteps.at(-1)!)));
  // At mode step 5: TRAIN's 5th step is global step 5, EVAL's is global step 28.
  await hoverStep(chart, 5);
  shown = await legendValues(chart);
  assert.deepEqual([shown.TRAIN, shown.EVAL], [value(globalStep(loss, "TRAIN", 5)), value(globalStep(loss, "EVAL", 5))]);
  await assertChartsDistinct();

  await page.getByTestId("loss-axis-global").click();
  await page.waitForFunction((sel) => document.querySelector(sel)?.getAttribute("data-x-label") === "global step", chart);
  await page.waitForFunction((sel) => document.querySelector(sel)?.getAttribute("data-last-step") === "84", chart);
  await hoverStep(chart, 23);
  shown = await legendValues(chart);
  assert.equal(shown.EVAL, value(23), "global step 23 is EVAL's first");
  assert.equal(shown.TRAIN, "—", "TRAIN saved nothing at global step 23");
  // Zoomed over global steps: both modes' points inside the range, at full resolution.
  await page.locator(`${chart} input[placeholder=from]`).fill("20");
  await page.locator(`${chart} input[placeholder=to]`).fill("40");
  await page.locator(`${chart} form.zoom-form button[type=submit]`).click();
  await page.waitForFunction((sel) => document.querySelector(sel)?.getAttribute("data-first-step") === "20" && document.querySelector(sel)?.getAttribute("data-last-step") === "36", chart);
  assert.equal(await attr(chart, "data-points"), String([20, 31, 36, 23, 28].length));
  await page.getByTestId("loss-axis-mode").click();
  await page.waitForFunction((sel) => document.querySelector(sel)?.getAttribute("data-x-label")?.startsWith("mode step") && document.querySelector(sel)?.getAttribute("data-last-step") === "65", chart);
  assert.equal(await attr(chart, "data-zoomed"), "", "switching the axis resets the zoom");
});

test("per layer: each weight and gradient is a min/max band with the mean, equal to the golden statistics at a step", async () => {
  const modeStep = 25;
  const api = await gql(`query($p: String!) { trial(path: $p) {
    weights: tensors(collection: "weights") { name statsSeries(mode: TRAIN) { steps min max mean } }
    gradients: tensors(collection: "gradients") { name statsSeries(mode: TRAIN) { steps min max mean } }
  } }`, { p: DIGITS });
  for (const [collection, tensors] of [["weights", api.trial.weights], ["gradients", api.trial.gradients]] as const) {
    for (const t of tensors as { name: string; statsSeries: { steps: number[]; min: number[]; max: number[]; mean: number[] } }[]) {
      const chart = layerChart(collection, t.name);
      await waitForChart(chart, "max|mean|min", "band");
      assert.equal(await attr(chart, "data-bands"), "max>min", `${t.name}: the band spans min to max`);
      assert.equal(await attr(chart, "data-x-label"), "TRAIN step");
      assert.equal(await attr(chart, "data-y-label"), collection === "weights" ? "weight value" : "gradient value");
      await hoverStep(chart, modeStep);
      const shown = await legendValues(chart);
      const i = t.statsSeries.steps.indexOf(modeStep);
      const g = goldenStats(golden.tensors[t.name].values[String(globalStep(t.name, "TRAIN", modeStep))]);
      assert.equal(t.statsSeries.min[i], g.min, `${t.name}: the API's min is the golden's`);
      assert.equal(t.statsSeries.max[i], g.max);
      assert.ok(Math.abs(t.statsSeries.mean[i] - g.mean) <= 1e-9 * Math.max(1, Math.abs(g.max)), `${t.name}: mean ${t.statsSeries.mean[i]} vs ${g.mean}`);
      assert.deepEqual(shown, { max: formatNumber(g.max), mean: formatNumber(t.statsSeries.mean[i]), min: formatNumber(g.min) }, `${t.name} at TRAIN step ${modeStep}`);
      const saved = golden.tensors[t.name].values[String(globalStep(t.name, "TRAIN", modeStep))].reductions;
      if (saved) assert.equal(shown.max, formatNumber(saved.max), `${t.name}: the band's top is smdebug's saved max reduction`);
    }
  }
});

test("the distribution view: a heat map per layer from histogramSeries (its cells coloured by the API's counts), the mean on top", async () => {
  await page.getByTestId("layers-gradients-view-distribution").click();
  const name = "gradient/MLP_fc1.weight";
  const chart = layerChart("gradients", name);
  await waitForChart(chart, "mean", "distribution");
  for (const t of golden.collections.gradients.tensor_names) assert.equal(await attr(layerChart("gradients", t), "data-heatmap"), "32x14", `${t}: 32 bins × 14 TRAIN steps`);
  await page.getByTestId("heat-key").waitFor();

  const api = await gql(`query($p: String!, $n: String!) { trial(path: $p) { tensor(name: $n) {
    histogramSeries(bins: 32, mode: TRAIN) { steps edges counts } statsSeries(mode: TRAIN) { mean } } } }`, { p: DIGITS, n: name });
  const { steps, edges, counts } = api.trial.tensor.histogramSeries as { steps: number[]; edges: number[]; counts: number[][] };
  const means = api.trial.tensor.statsSeries.mean as number[];
  const shares = counts.map((row) => row.map((c) => c / row.reduce((a, b) => a + b, 0)));
  const top = Math.max(...shares.flat());
  // The fullest cell away from the mean line, and its colour on the ramp the chart uses.
  const binHeight = edges[1] - edges[0];
  let best = { i: -1, b: -1, share: 0 };
  shares.forEach((row, i) => row.forEach((share, b) => {
    const centre = (edges[b] + edges[b + 1]) / 2;
    if (i > 0 && i < steps.length - 1 && Math.abs(centre - means[i]) > 3 * binHeight && share > best.share) best = { i, b, share };
  }));
  assert.ok(best.i >= 0, "a filled cell away from the mean");
  const expected = heatColor(0.08 + 0.92 * Math.sqrt(best.share / top));
  await page.locator(chart).scrollIntoViewIfNeeded();
  const pixel = await page.locator(chart).evaluate((fig, cell) => {
    const d = (fig as HTMLElement).dataset;
    const over = fig.querySelector(".u-over")!.getBoundingClientRect();
    const canvas = fig.querySelector("canvas")!;
    const c = canvas.getBoundingClientRect();
    const x = over.left + ((cell.x - Number(d.xMin)) / (Number(d.xMax) - Number(d.xMin))) * over.width;
    const y = over.top + (1 - (cell.y - Number(d.yMin)) / (Number(d.yMax) - Number(d.yMin))) * over.height;
    const px = canvas.getContext("2d")!.getImageData(Math.round((x - c.left) * (canvas.width / c.width)), Math.round((y - c.top) * (canvas.height / c.height)), 1, 1).data;
    return `rgb(${px[0]}, ${px[1]}, ${px[2]})`;
  }, { x: steps[best.i], y: (edges[best.b] + edges[best.b + 1]) / 2 });
  assert.equal(pixel, expected, `cell of step ${steps[best.i]}, bin ${best.b} (share ${best.share.toFixed(3)} of the largest ${top.toFixed(3)})`);
  assert.equal(await attr(chart, "data-bands"), "", "no band in the distribution view");
  await assertChartsDistinct();
  await shot("02-digits-distribution");
  await page.getByTestId("layers-gradients-view-band").click();
  await waitForChart(chart, "max|mean|min", "band");
});

test("EVAL steps: the per-layer panels follow the mode; gradients, saved in TRAIN only, say so", async () => {
  await page.getByTestId("dl-mode-eval").click();
  const weight = layerChart("weights", "MLP_fc2.weight");
  await page.waitForFunction((sel) => document.querySelector(sel)?.getAttribute("data-x-label") === "EVAL step", weight);
  await waitForChart(weight, "max|mean|min", "band");
  const evalSteps = Object.keys(golden.tensors["MLP_fc2.weight"].mode_steps.EVAL).map(Number);
  assert.equal(Number(await attr(weight, "data-last-step")), Math.max(...evalSteps));
  const g = goldenStats(golden.tensors["MLP_fc2.weight"].values[String(globalStep("MLP_fc2.weight", "EVAL", Math.max(...evalSteps)))]);
  await page.mouse.move(0, 0);
  assert.equal((await legendValues(weight)).max, formatNumber(g.max));
  const gradient = layerChart("gradients", "gradient/MLP_fc1.weight");
  await page.locator(`${gradient} [data-testid$=-empty]`).waitFor();
  await page.getByTestId("dl-mode-train").click();
  await page.waitForFunction((sel) => document.querySelector(sel)?.getAttribute("data-x-label") === "TRAIN step", weight);
});

test("zooming one layer chart (a drag) or the group's range form zooms every chart of the group; the server sends the range", async () => {
  const charts = golden.collections.weights.tensor_names.map((n) => layerChart("weights", n));
  const span = (first: number, last: number) => page.waitForFunction(([sels, f, l]) => (sels as string[]).every((sel) => {
    const el = document.querySelector(sel);
    return el?.getAttribute("data-first-step") === String(f) && el?.getAttribute("data-last-step") === String(l);
  }), [charts, first, last] as const);
  const over = page.locator(`${charts[1]} .u-over`);
  await over.scrollIntoViewIfNeeded();
  const box = (await over.boundingBox())!;
  const x = (step: number) => box.x + (step / 65) * box.width;
  await page.mouse.move(x(18), box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(x(30), box.y + box.height / 2, { steps: 4 });
  await page.mouse.move(x(42), box.y + box.height / 2, { steps: 4 });
  await page.mouse.up();
  await span(20, 40);
  // The dragged range (whole steps inside the selection, about 18–42) is every chart's.
  const zoomed = await attr(charts[1], "data-zoomed");
  const [from, to] = zoomed.split("-").map(Number);
  assert.ok(from > 15 && from <= 20 && to >= 40 && to < 45, `dragged ${zoomed}`);
  for (const c of charts) assert.equal(await attr(c, "data-zoomed"), zoomed);
  assert.equal(await attr(charts[0], "data-points"), String(3 * 5), "max, mean and min at TRAIN steps 20–40");
  await page.getByLabel("Weights: zoom from step").fill("10");
  await page.getByLabel("Weights: zoom to step").fill("30");
  await page.getByTestId("layers-weights").locator(".card-head form.zoom-form button[type=submit]").click();
  await span(10, 30);
  await page.getByTestId("layers-weights-reset-zoom").click();
  await span(0, 65);
  assert.equal(await attr(charts[2], "data-zoomed"), "");
});

test("the tensor explorer describes a large layer by its server statistics instead of listing its elements", async () => {
  await page.getByTestId("explorer-collection").selectOption("weights");
  await page.getByTestId("explorer-tensor").selectOption("MLP_fc1.weight");
  await page.getByTestId("explorer-stats").waitFor();
  const last = golden.tensors["MLP_fc1.weight"].steps.at(-1)!;
  await page.getByTestId("explorer-value-step").filter({ hasText: new RegExp(`^${last} `) }).waitFor();
  // Only the 2,048-element weight says so: the previous selection (fc1.bias, same last step, also with
  // statistics) may still be on screen until then, and a loaded machine once read its min here.
  await page.getByTestId("explorer-too-large").waitFor();
  const g = golden.tensors["MLP_fc1.weight"].values[String(last)].stats!;
  assert.equal(await page.locator("[data-testid=explorer-stats] [data-stat=min]").innerText(), formatNumber(g.min));
  assert.equal(await page.locator("[data-testid=explorer-stats] [data-stat=max]").innerText(), formatNumber(g.max));
  assert.equal(await page.locator("[data-testid=explorer-output] .values-table").count(), 0, "2,048 elements are not listed");
});

test("a trial saved only as reductions: its gradient plots the saved reductions (max/min band, abs mean, l2); NaN steps are flagged", async () => {
  await open(REDUCED);
  const chart = layerChart("gradients", "gradient/fc.weight");
  await waitForChart(chart, "max|min|abs mean|l2", "reductions");
  assert.equal(await attr(chart, "data-bands"), "max>min");
  const api = await gql(`query($p: String!) { trial(path: $p) { tensor(name: "gradient/fc.weight") { reductionsOnly
    max: reductionSeries(name: MAX, mode: TRAIN) { steps values } min: reductionSeries(name: MIN, mode: TRAIN) { values }
    absMean: reductionSeries(name: MEAN, abs: true, mode: TRAIN) { values } l2: reductionSeries(name: L2, mode: TRAIN) { values } } } }`, { p: REDUCED });
  const t = api.trial.tensor;
  assert.equal(t.reductionsOnly, true);
  await hoverStep(chart, 2);
  const at = t.max.steps.indexOf(2);
  assert.deepEqual(await legendValues(chart), {
    max: formatNumber(t.max.values[at]), min: formatNumber(t.min.values[at]), "abs mean": formatNumber(t.absMean.values[at]), l2: formatNumber(t.l2.values[at]),
  });
  // The writer saved max of (r − c)·10^(−1) over an 8×8 matrix at step 2: 0.7.
  assert.equal((await legendValues(chart)).max, formatNumber(Math.fround(7 * 10 ** -1)));
  const weight = layerChart("weights", "fc.weight");
  await waitForChart(weight, "max|mean|min", "band");
  assert.match(await page.getByTestId("layer-weights-fc.weight-warning").innerText(), /^1 step\(s\) with NaN/);
  await page.getByTestId("explorer-collection").selectOption("gradients");
  await page.getByTestId("explorer-reduction-abs_mean").waitFor();
  assert.equal(await page.getByTestId("explorer-reduction-l2").innerText(), formatNumber(t.l2.values.at(-1)));
  await assertChartsDistinct();
  await shot("03-reductions-only");
});

test("two workers: a loss series per worker and mode, and per layer a line per worker", async () => {
  await open(WORKERS);
  const loss = chartOf("loss-chart");
  await waitForChart(loss, "TRAIN · worker_0|TRAIN · worker_1|EVAL · worker_0|EVAL · worker_1");
  const api = await gql(`query($p: String!) { trial(path: $p) { workers
    loss: tensor(name: "loss") { train: workerSeries(mode: TRAIN) { worker steps values } eval: workerSeries(mode: EVAL) { worker steps values } }
    w: tensor(name: "fc.weight") { workerSeries(stat: MEAN, mode: TRAIN) { worker steps values } } } }`, { p: WORKERS });
  assert.deepEqual(api.trial.workers, ["worker_0", "worker_1"]);
  await page.mouse.move(0, 0);
  const shown = await legendValues(loss);
  for (const mode of ["train", "eval"] as const) {
    for (const s of api.trial.loss[mode] as { worker: string; values: number[] }[]) assert.equal(shown[`${mode.toUpperCase()} · ${s.worker}`], formatNumber(s.values.at(-1)));
  }
  const weight = layerChart("weights", "fc.weight");
  await waitForChart(weight, "worker_0|worker_1", "workers");
  assert.equal(await attr(weight, "data-y-label"), "mean weight value");
  await hoverStep(weight, 2);
  // worker k wrote k·(r + c + step) on a 4×8 matrix: mean k·(5 + step); TRAIN step 2 is global step 3.
  assert.deepEqual(await legendValues(weight), { worker_0: formatNumber(8), worker_1: formatNumber(16) });
  const ws = api.trial.w.workerSeries as { worker: string; steps: number[]; values: number[] }[];
  assert.deepEqual(ws.map((s) => s.values[s.steps.indexOf(2)]), [8, 16]);
  // The statistic is chosen per group; the band shows the first worker's values.
  await page.getByTestId("layers-weights-stat").selectOption("MAX");
  await page.waitForFunction((sel) => document.querySelector(sel)?.getAttribute("data-y-label") === "max weight value", weight);
  await page.getByTestId("layers-weights-view-band").click();
  await waitForChart(weight, "max|mean|min", "band");
  assert.match(await page.getByTestId("layers-weights").getByTestId("layer-group-caption").innerText(), /first worker/);
  await page.getByTestId("layers-weights-view-workers").click();
  await waitForChart(weight, "worker_0|worker_1", "workers");
  await assertChartsDistinct();
  await shot("04-two-workers");
});

test("a card draws its first 12 layers in natural order, then the rest on request", async () => {
  await open(DEEP);
  const card = page.getByTestId("layers-weights");
  await page.waitForFunction(() => document.querySelectorAll('[data-collection="weights"] figure.chart canvas').length === 12);
  const names = () => card.locator("figure.chart").evaluateAll((els) => els.map((e) => e.getAttribute("data-tensor")));
  assert.deepEqual(await names(), Array.from({ length: 12 }, (_, i) => `layer${i + 1}.weight`));
  assert.match(await card.getByTestId("layer-group-caption").innerText(), /^14 tensors/);
  await card.getByRole("button", { name: "Show 2 more" }).click();
  await page.waitForFunction((n) => document.querySelectorAll('[data-collection="weights"] figure.chart canvas').length === n, DEEP_LAYERS);
  assert.deepEqual((await names()).slice(12), ["layer13.weight", "layer14.weight"]);
  assert.equal(await card.getByRole("button", { name: /^Show \d+ more$/ }).isVisible(), false);

  // 30 gradients saved only as reductions: their reductions come in as many requests as the server's pattern length needs.
  const gradients = page.getByTestId("layers-gradients");
  await gradients.getByRole("button", { name: "Show 18 more" }).click();
  await page.waitForFunction((n) => [...document.querySelectorAll('[data-collection="gradients"] figure.chart')].filter((f) => (f as HTMLElement).dataset.kind === "reductions").length === n, DEEP_GRADIENTS.length);
  const last = layerChart("gradients", DEEP_GRADIENTS[29]);
  await waitForChart(last, "max|min", "reductions");
  await page.mouse.move(0, 0);
  assert.deepEqual(await legendValues(last), { max: "29", min: "-29" });
  const asked = requests.filter((r) => r.query.startsWith("query LayerReductions") && r.variables.path === DEEP);
  assert.ok(asked.length >= 2 && asked.every((r) => String(r.variables.regex).length <= 2000), `${asked.length} requests`);
});

test("a trial being written: new steps reach the loss and layer charts (band and heat map) without a reload", async () => {
  await open(GROWING);
  const weight = layerChart("weights", "fc.weight");
  await waitForChart(weight, "max|mean|min", "band");
  await page.waitForFunction((sel) => document.querySelector(sel)?.getAttribute("data-last-step") === "2", weight);
  await page.getByTestId("layers-weights-view-distribution").click();
  await waitForChart(weight, "mean", "distribution");
  assert.equal(await attr(weight, "data-heatmap"), "32x3");
  for (let step = 3; step < 6; step++) await growing.writeStep(step, [{ name: "fc.weight", dtype: "float32", shape: [2, 2], values: [step, -step, 1, 2] }, { name: "loss", dtype: "float32", shape: [1], values: [5 - step] }], { mode: "TRAIN", modeStep: step });
  await growing.end();
  await page.waitForFunction((sel) => document.querySelector(sel)?.getAttribute("data-heatmap") === "32x6", weight, { timeout: 15_000 });
  // The heat map's extent follows the new steps: the last column reaches half a step past step 5.
  await page.waitForFunction((sel) => document.querySelector(sel)?.getAttribute("data-x-max") === "5.5", weight);
  await page.waitForFunction(() => document.querySelector("[data-testid=loss-chart]")?.getAttribute("data-last-step") === "5", undefined, { timeout: 15_000 });
  await page.getByTestId("layers-weights-view-band").click();
  await waitForChart(weight, "max|mean|min", "band");
  assert.equal(await attr(weight, "data-last-step"), "5");
  await page.mouse.move(0, 0);
  assert.deepEqual(await legendValues(weight), { max: "5", mean: formatNumber(0.75), min: "-5" });
});

test("on a narrow screen (390 px) the per-layer charts stack without overflowing the page", async () => {
  await page.setViewportSize({ width: 390, height: 900 });
  try {
    await open(DIGITS);
    await waitForChart(layerChart("weights", "MLP_fc1.weight"), "max|mean|min", "band");
    assert.equal(await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth), 0);
    const [a, b] = await Promise.all(["MLP_fc1.weight", "MLP_fc2.weight"].map((n) => page.locator(layerChart("weights", n)).boundingBox()));
    assert.ok(b!.y >= a!.y + a!.height, "one chart per row");
    assert.ok(a!.width <= 390, `a chart fits: ${a!.width}px`);
  } finally {
    await page.setViewportSize({ width: 1360, height: 900 });
  }
});

test("the XGBoost example trial keeps its panels and gets no deep-learning ones", async () => {
  await open("trials/example");
  await page.locator("[data-testid=metrics-chart] canvas").waitFor();
  assert.equal(await page.getByTestId("deep-learning").count(), 0);
  assert.equal(await page.getByTestId("importance-chart").isVisible(), true);
  assert.equal(await page.getByTestId("shap-chart").isVisible(), true);
});

test("under a strict Content-Security-Policy (no inline styles) the deep-learning panels draw without violations", async () => {
  const strict = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'";
  const csp = await browser.context.newPage();
  await csp.route(`${service.base}/**`, async (route) => {
    const response = await route.fetch();
    await route.fulfill({ response, headers: { ...response.headers(), "content-security-policy": strict } });
  });
  const violations: string[] = [];
  await csp.exposeFunction("__cspViolation", (v: string) => violations.push(v));
  await csp.addInitScript(() => document.addEventListener("securitypolicyviolation", (e) => (window as unknown as { __cspViolation: (v: string) => void }).__cspViolation(`${e.violatedDirective} ${e.blockedURI} ${e.sample}`)));
  try {
    await csp.goto(`${service.base}/#/trial?path=${encodeURIComponent(DIGITS)}`);
    await csp.locator(`${layerChart("gradients", "gradient/MLP_fc3.weight")} canvas`).waitFor();
    await csp.getByTestId("layers-weights-view-distribution").click();
    await csp.waitForFunction((sel) => document.querySelector(sel)?.getAttribute("data-kind") === "distribution", layerChart("weights", "MLP_fc1.weight"));
    assert.deepEqual(violations, []);
  } finally {
    await csp.close();
  }
});

test("the panels asked for statistics only: one list field per group, never raw values", () => {
  const panels = requests.filter((r) => /^query (Losses|LayerGroup|LayerReductions)\b/.test(r.query));
  const groups = panels.filter((r) => r.query.startsWith("query LayerGroup"));
  assert.ok(groups.length >= 8, `${groups.length} group requests`);
  assert.deepEqual([...new Set(groups.map((r) => r.variables.collection))].sort(), ["biases", "gradients", "relu_activations", "weights"]);
  for (const r of panels) {
    assert.doesNotMatch(r.query, /\b(data|values?\(|value\s*\{)/, `no raw values: ${r.query}`);
    // Aliases name modes (train/eval) or reductions (r0, r1, …), never a tensor.
    for (const [, alias] of r.query.matchAll(/(\w+):\s*\w+\(/g)) assert.match(alias, /^(train|eval|predict|all|r\d+)$/, `alias ${alias}`);
  }
  for (const r of groups) assert.match(r.query, /tensors\(collection: \$collection\)/);
});

test("no script errors and no console errors happened", () => {
  assert.deepEqual(pageErrors, []);
  assert.deepEqual(consoleErrors, []);
});
