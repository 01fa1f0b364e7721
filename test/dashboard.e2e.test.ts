/// <reference lib="dom" />
/**
 * The dashboard end to end, in real Chromium against the real service: the server is started
 * on a free port with a fresh data directory (it creates trials/example on first start), the
 * dashboard is built with vite, and local XGBoost lab jobs (eta 0.2 from the browser, eta 0.05
 * beside it) train with real libxgboost. Then: readable plots (palette, legend, axis labels, log,
 * zoom), rule firings on the curves and in the rules table, run comparison, the job report,
 * stop confirmation, focus, narrow screens, a strict CSP, and token mode on a second service.
 *
 * Needs the Debian package `chromium` (/usr/bin/chromium). Screenshots go to test-artifacts/dashboard/.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { freePort } from "./support/net.js";
import { startServiceProcess, type ServiceProcess } from "./support/service-process.js";
import { buildDashboard, launchBrowser, type Browser } from "./support/browser.js";
import { TrialWriter } from "../src/trials/trial-writer.js";
import { RUN_FAMILIES, SERIES_COLORS } from "../src/report/plot-style.js";
import os from "node:os";
import path from "node:path";
import type { BrowserContext, Page, Request } from "playwright-core";

const ROOT = path.resolve(__dirname, "..");
const FIXTURES = path.resolve(ROOT, "../shared/fixtures");
const ARTIFACTS = path.join(ROOT, "test-artifacts", "dashboard");
const EXAMPLE = "trials/example";
/** A trial with 24 SHAP series: more than the 20 colours, so the second channel (dash) shows. */
const WIDE = "trials/wide";
const WIDE_FEATURES = 24;
const JOB_TIMEOUT_MS = 150_000;
const TOKEN = "dashboard-operator-token-0123456789";

let server: ChildProcess | undefined;
let serverLog = "";
let base = "";
let dataDir = "";
let browser: Browser | undefined;
let context: BrowserContext;
let page: Page;
const pageErrors: string[] = [];
const graphqlRequests: Request[] = [];
let jobName = "";
/** The eta 0.05 lab job, started beside the form's job for the comparison. */
const SLOW_JOB = "lab-eta-005";
let tokenServer: ServiceProcess | undefined;
let tokenDataDir = "";

const LAB_INPUT = (eta: string, name: string, numRound = "51") => ({
  backend: "LOCAL",
  name,
  algorithm: { builtin: "xgboost", version: "1.7-1" },
  hyperparameters: { max_depth: "5", eta, gamma: "4", min_child_weight: "6", subsample: "0.7", objective: "reg:squarederror", num_round: numRound },
  inputs: [
    { name: "train", uri: "lab/abalone.train.libsvm", contentType: "libsvm" },
    { name: "validation", uri: "lab/abalone.validation.libsvm", contentType: "libsvm" },
  ],
  debugHookConfig: { collectionConfigs: ["metrics", "feature_importance", "average_shap"].map((n) => ({ name: n, parameters: { save_interval: "5" } })) },
  rules: [{ builtin: "LossNotDecreasing", parameters: { collection_names: "metrics", num_steps: "10" } }],
});

interface Finding {
  step: number;
  tensorNames: string[];
  message: string;
}
interface SeriesData {
  name: string;
  series: { steps: number[]; values: (number | null)[] };
}

async function waitForJob(name: string, done: (job: { status: string; ruleSummaries: { ruleEvaluationStatus: string }[] }) => boolean): Promise<void> {
  const until = Date.now() + JOB_TIMEOUT_MS;
  for (;;) {
    const r = await gql<{ trainingJob: { status: string; ruleSummaries: { ruleEvaluationStatus: string }[] } | null }>(
      `query($n: String!) { trainingJob(name: $n) { status ruleSummaries { ruleEvaluationStatus } } }`, { n: name });
    if (r.trainingJob && done(r.trainingJob)) return;
    if (Date.now() > until) throw new Error(`job ${name} did not get there: ${JSON.stringify(r.trainingJob)}`);
    await new Promise((res) => setTimeout(res, 300));
  }
}

/** Every legend entry of a chart: what it says, its colour and dash, and what its swatch draws. */
async function legendStyles(chart: string): Promise<{ label: string; title: string; color: string; dash: string; stroke: string; dasharray: string }[]> {
  return page.locator(`${chart} .legend-item`).evaluateAll((items) =>
    items.map((el) => {
      const line = el.querySelector("svg.swatch line");
      return {
        label: el.getAttribute("data-series") ?? "",
        title: el.getAttribute("title") ?? "",
        color: el.getAttribute("data-color") ?? "",
        dash: el.getAttribute("data-dash") ?? "",
        stroke: line?.getAttribute("stroke") ?? "",
        dasharray: line?.getAttribute("stroke-dasharray") ?? "",
      };
    }),
  );
}

/** No two series of the chart share colour and line style, and each swatch draws its line's style. */
async function assertDistinctStyles(chart: string, expectedSeries: number): Promise<{ color: string; dash: string }[]> {
  const styles = await legendStyles(chart);
  assert.equal(styles.length, expectedSeries, `${chart}: legend entries`);
  const keys = styles.map((s) => `${s.color}|${s.dash}`);
  assert.equal(new Set(keys).size, keys.length, `${chart}: two series look alike: ${keys.join(", ")}`);
  for (const s of styles) {
    assert.equal(s.stroke, s.color, `${s.label}: swatch colour`);
    assert.equal(s.dasharray, s.dash, `${s.label}: the swatch shows the line's dash`);
  }
  return styles;
}
interface GqlResult<T> {
  data?: T;
  errors?: { message: string; extensions?: { code?: string } }[];
}

/** The test's own GraphQL client, to derive expected values independently of the dashboard. */
async function gql<T>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const res = await fetch(`${base}/graphql`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query, variables }) });
  const body = (await res.json()) as GqlResult<T>;
  if (body.errors?.length) throw new Error(`GraphQL errors: ${JSON.stringify(body.errors)}`);
  return body.data as T;
}

async function waitForServer(timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (server?.exitCode != null) throw new Error(`server exited with ${server.exitCode}:\n${serverLog}`);
    try {
      const res = await fetch(`${base}/graphql`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query: "{ __typename }" }) });
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`server did not answer within ${timeoutMs} ms:\n${serverLog}`);
}

async function shot(name: string): Promise<void> {
  // From the top: a scrolled page would put the sticky top bar in the middle of the full-page image.
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

function testid(s: string): string {
  return s.replace(/[^A-Za-z0-9_.-]+/g, "_");
}

async function attr(selector: string, name: string): Promise<string | null> {
  return page.locator(selector).first().getAttribute(name);
}

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  // The server serves the built dashboard from dist/web.
  buildDashboard();

  dataDir = mkdtempSync(path.join(os.tmpdir(), "trialgraph-dashboard-"));
  mkdirSync(path.join(dataDir, "lab"));
  for (const f of ["abalone.train.libsvm", "abalone.validation.libsvm"]) copyFileSync(path.join(FIXTURES, "data", f), path.join(dataDir, "lab", f));
  // 24 SHAP series over 10 steps, written with the project's own smdebug writer.
  const wide = new TrialWriter(path.join(dataDir, WIDE));
  for (let step = 0; step < 10; step++) {
    await wide.writeStep(step, Array.from({ length: WIDE_FEATURES }, (_, f) => ({ name: `average_shap/f${f}`, dtype: "float32" as const, shape: [1], values: [Math.sin(step / 3 + f) * (f + 1) * 0.01] })));
  }
  await wide.writeCollections([{ name: "average_shap", includeRegex: ["^average_shap/.*$"] }]);
  await wide.end();

  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(port), HOST: "127.0.0.1", TRIALGRAPH_DATA_DIR: dataDir, TRIALGRAPH_POLL_INTERVAL_MS: "500", LOG_LEVEL: "warn", TRIALGRAPH_SAGEMAKER_ENABLED: "false" };
  for (const k of ["TRIALGRAPH_API_TOKENS", "TRIALGRAPH_REDIS_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"]) delete env[k];
  server = spawn(process.execPath, ["--import", "tsx", "src/server.ts"], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  server.stdout!.on("data", (d: Buffer) => (serverLog += d.toString()));
  server.stderr!.on("data", (d: Buffer) => (serverLog += d.toString()));
  await waitForServer(60_000);

  browser = await launchBrowser();
  ({ context, page } = browser);
  page.on("pageerror", (err) => pageErrors.push(String(err)));
  page.on("request", (req) => {
    if (req.url().endsWith("/graphql") && req.method() === "POST") graphqlRequests.push(req);
  });
});

after(async () => {
  await browser?.close();
  await tokenServer?.stop().catch(() => undefined);
  if (server && server.exitCode == null) {
    const exited = new Promise((r) => server!.once("exit", r));
    server.kill("SIGTERM");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (server.exitCode == null) server.kill("SIGKILL");
  }
  for (const dir of [dataDir, tokenDataDir]) if (dir) rmSync(dir, { recursive: true, force: true });
});

test("the dashboard loads at / with the jobs page, the trials list and a link to GraphiQL", async () => {
  await page.goto(`${base}/`);
  await page.getByTestId("page-title").filter({ hasText: "Training jobs" }).waitFor();
  assert.equal(await attr("[data-testid=graphiql-link]", "href"), "/graphql");
  const playground = await fetch(`${base}/graphql`, { headers: { accept: "text/html" } });
  assert.equal(playground.status, 200);
  assert.match(playground.headers.get("content-type") ?? "", /text\/html/);
  await page.getByTestId(`trial-link-${testid(EXAMPLE)}`).waitFor();
  // Marker that survives hash navigation but not a reload: later tests prove nothing reloaded.
  await page.evaluate(() => ((window as unknown as { __noReload: string }).__noReload = "still here"));
  await shot("01-jobs-empty");
});

test("the example trial shows the metrics plot with both series, and zoom refetches the range at full resolution", async () => {
  await page.getByTestId(`trial-link-${testid(EXAMPLE)}`).click();
  const chart = "[data-testid=metrics-chart]";
  await page.locator(`${chart} canvas`).first().waitFor();
  const expected = await gql<{ trial: { collection: { tensors: { name: string; series: { steps: number[] } }[] } } }>(
    `query($p: String!) { trial(path: $p) { collection(name: "metrics") { tensors { name series { steps } } } } }`,
    { p: EXAMPLE },
  );
  const names = expected.trial.collection.tensors.map((t) => t.name);
  assert.ok(names.includes("train-rmse") && names.includes("validation-rmse"), `example metrics: ${names.join(", ")}`);
  assert.deepEqual((await attr(chart, "data-series"))!.split("|").sort(), names.slice().sort());
  const legend = await page.getByTestId("metrics-chart-legend").innerText();
  assert.match(legend, /train-rmse/);
  assert.match(legend, /validation-rmse/);
  await assertDistinctStyles(chart, names.length);
  // The y axis says what is plotted, with its unit.
  assert.equal(await attr(chart, "data-y-label"), "rmse (label units)");

  const allSteps = [...new Set(expected.trial.collection.tensors.flatMap((t) => t.series.steps))].sort((a, b) => a - b);
  assert.equal(Number(await attr(chart, "data-first-step")), allSteps[0]);
  assert.equal(Number(await attr(chart, "data-last-step")), allSteps[allSteps.length - 1]);
  await shot("02-example-trial");

  // Zoom into the middle of the run; the chart must then hold exactly the full-resolution points of that range.
  assert.ok(allSteps.length >= 4, "the example trial has enough steps to zoom");
  const from = allSteps[1];
  const to = allSteps[Math.floor(allSteps.length / 2)];
  const inRange = expected.trial.collection.tensors.reduce((n, t) => n + t.series.steps.filter((s) => s >= from && s <= to).length, 0);

  await page.getByLabel("Metrics: zoom from step").fill(String(from));
  await page.getByLabel("Metrics: zoom to step").fill(String(to));
  await page.locator(chart).getByRole("button", { name: "Zoom" }).click();
  await page.waitForFunction(
    ([sel, pts]) => document.querySelector(sel)?.getAttribute("data-points") === pts,
    [chart, String(inRange)] as const,
  );
  assert.equal(await attr(chart, "data-zoomed"), `${from}-${to}`);
  assert.equal(Number(await attr(chart, "data-first-step")), from);
  assert.equal(Number(await attr(chart, "data-last-step")), to);
  await shot("03-example-trial-zoomed");

  await page.getByTestId("metrics-chart-reset-zoom").click();
  await page.waitForFunction(
    ([sel, first, last]) => document.querySelector(sel)?.getAttribute("data-first-step") === first && document.querySelector(sel)?.getAttribute("data-last-step") === last,
    [chart, String(allSteps[0]), String(allSteps[allSteps.length - 1])] as const,
  );
  assert.equal(await attr(chart, "data-zoomed"), "");

  // Dragging across the plot zooms too: the chart then holds the full-resolution points of the dragged range.
  const over = await page.locator(`${chart} .u-over`).boundingBox();
  assert.ok(over);
  await page.mouse.move(over.x + over.width * 0.3, over.y + over.height / 2);
  await page.mouse.down();
  await page.mouse.move(over.x + over.width * 0.6, over.y + over.height / 2, { steps: 8 });
  await page.mouse.up();
  await page.waitForFunction((sel) => Boolean(document.querySelector(sel)?.getAttribute("data-zoomed")), chart);
  const [dragFrom, dragTo] = (await attr(chart, "data-zoomed"))!.split("-").map(Number);
  assert.ok(dragFrom > allSteps[0] && dragTo < allSteps[allSteps.length - 1] && dragFrom < dragTo, `dragged range ${dragFrom}-${dragTo}`);
  const dragPoints = expected.trial.collection.tensors.reduce((n, t) => n + t.series.steps.filter((s) => s >= dragFrom && s <= dragTo).length, 0);
  await page.waitForFunction(([sel, pts]) => document.querySelector(sel)?.getAttribute("data-points") === pts, [chart, String(dragPoints)] as const);
  await page.getByTestId("metrics-chart-reset-zoom").click();
  await page.waitForFunction((sel) => !document.querySelector(sel)?.getAttribute("data-zoomed"), chart);
  // The whole run is back once its data has arrived (the zoom label clears at the click).
  await page.waitForFunction(([sel, f, l]) => {
    const el = document.querySelector(sel);
    return el?.getAttribute("data-first-step") === f && el?.getAttribute("data-last-step") === l;
  }, [chart, String(allSteps[0]), String(allSteps[allSteps.length - 1])] as const);

  // Zoomed into the second half, the y range follows the data there (not the whole run's 8 → 1.2).
  const overview = { min: Number(await attr(chart, "data-y-min")), max: Number(await attr(chart, "data-y-max")) };
  const [zFrom, zTo] = [allSteps[Math.floor(allSteps.length / 2)], allSteps[allSteps.length - 1]];
  await page.getByLabel("Metrics: zoom from step").fill(String(zFrom));
  await page.getByLabel("Metrics: zoom to step").fill(String(zTo));
  await page.locator(chart).getByRole("button", { name: "Zoom" }).click();
  await page.waitForFunction(([sel, f]) => document.querySelector(sel)?.getAttribute("data-first-step") === f, [chart, String(zFrom)] as const);
  const zoomed = await gql<{ trial: { collection: { tensors: { series: { values: number[] } }[] } } }>(
    `query($p: String!, $f: Int, $t: Int) { trial(path: $p) { collection(name: "metrics") { tensors { series(fromStep: $f, toStep: $t) { values } } } } }`,
    { p: EXAMPLE, f: zFrom, t: zTo },
  );
  const vals = zoomed.trial.collection.tensors.flatMap((t) => t.series.values);
  const [dmin, dmax] = [Math.min(...vals), Math.max(...vals)];
  const [ymin, ymax] = [Number(await attr(chart, "data-y-min")), Number(await attr(chart, "data-y-max"))];
  assert.ok(ymin <= dmin && ymax >= dmax, `the zoomed data fits: [${ymin}, ${ymax}] vs [${dmin}, ${dmax}]`);
  assert.ok(ymax - ymin <= (dmax - dmin) * 1.5, `and fills the plot: [${ymin}, ${ymax}] for data [${dmin}, ${dmax}] (whole run [${overview.min}, ${overview.max}])`);
  assert.ok(ymax < overview.max, "the whole run's range is gone");
  await shot("03c-example-trial-zoomed-y");
  await page.getByTestId("metrics-chart-reset-zoom").click();
  await page.waitForFunction((sel) => !document.querySelector(sel)?.getAttribute("data-zoomed"), chart);
  // The whole run is back once its data has arrived (the zoom label clears at the click).
  await page.waitForFunction(([sel, f, l]) => {
    const el = document.querySelector(sel);
    return el?.getAttribute("data-first-step") === f && el?.getAttribute("data-last-step") === l;
  }, [chart, String(allSteps[0]), String(allSteps[allSteps.length - 1])] as const);

  // Log scale: the y axis spans decades, and goes back to linear.
  await page.getByTestId("metrics-chart-scale-log").click();
  await page.waitForFunction((sel) => document.querySelector(sel)?.getAttribute("data-y-scale") === "log", chart);
  assert.equal(await page.getByTestId("metrics-chart-scale-log").getAttribute("aria-checked"), "true");
  const logMin = Number(await attr(chart, "data-y-min"));
  assert.ok(logMin > 0, `a log axis starts above zero (${logMin})`);
  await page.locator(`${chart} canvas`).first().waitFor();
  await shot("03b-example-trial-log");
  await page.getByTestId("metrics-chart-scale-linear").click();
  await page.waitForFunction((sel) => document.querySelector(sel)?.getAttribute("data-y-scale") === "linear", chart);
  // SHAP values are signed: log is offered only where every value is above zero.
  assert.equal(await page.getByTestId("shap-chart-scale-log").isDisabled(), true);
});

test("switching the importance type redraws importance over steps and the latest ranking", async () => {
  const fi = await gql<{ trial: { collection: { tensors: { name: string; series: { steps: number[]; values: (number | null)[] } }[] } | null } }>(
    `query($p: String!) { trial(path: $p) { collection(name: "feature_importance") { tensors { name series { steps values } } } } }`,
    { p: EXAMPLE },
  );
  const tensors = fi.trial.collection?.tensors ?? [];
  const types = [...new Set(tensors.map((t) => t.name.split("/")[1]))];
  assert.ok(types.includes("weight") && types.includes("gain"), `importance types: ${types.join(", ")}`);
  const chart = "[data-testid=importance-chart]";
  for (const type of ["weight", "cover", "gain"].filter((t) => types.includes(t))) {
    await page.getByTestId(`importance-type-${type}`).click();
    await page.waitForFunction(([sel, t]) => document.querySelector(sel)?.getAttribute("data-importance-type") === t, [chart, type] as const);
    assert.equal(await page.getByTestId(`importance-type-${type}`).getAttribute("aria-checked"), "true");
    const ofType = tensors.filter((t) => t.name.startsWith(`feature_importance/${type}/`));
    const features = ofType.map((t) => t.name.slice(`feature_importance/${type}/`.length));
    assert.deepEqual((await attr(chart, "data-series"))!.split("|").sort(), features.slice().sort());
    assert.match(await page.locator(`${chart} h3`).innerText(), new RegExp(`Feature importance: ${type}`));
    // The ranking is the features ordered by their value at their latest saved step.
    const latest = ofType
      .map((t) => ({ feature: t.name.slice(`feature_importance/${type}/`.length), value: t.series.values[t.series.values.length - 1] ?? -Infinity }))
      .sort((a, b) => b.value - a.value);
    const ranked = await page.locator("[data-testid=importance-ranking] li").evaluateAll((els) => els.map((e) => e.getAttribute("data-feature")));
    assert.deepEqual(ranked, latest.map((x) => x.feature));
  }
  const shapSeries = await attr("[data-testid=shap-chart]", "data-series");
  assert.ok(shapSeries && shapSeries.length > 0, "average SHAP is plotted");
  await assertDistinctStyles(chart, (await attr(chart, "data-series"))!.split("|").length);
  await assertDistinctStyles("[data-testid=shap-chart]", shapSeries.split("|").length);
  assert.equal(await attr(chart, "data-y-label"), "gain (share of total)");
  await shot("04-importance-gain");
});

test("the tensor explorer shows a tensor's value at a step with its shape and dtype", async () => {
  await page.getByTestId("explorer-collection").selectOption("metrics");
  await page.getByTestId("explorer-tensor").selectOption("validation-rmse");
  const steps = await page.getByTestId("explorer-step").locator("option").evaluateAll((els) => els.map((e) => Number((e as HTMLOptionElement).value)));
  assert.ok(steps.length > 1);
  await page.getByTestId("explorer-step").selectOption(String(steps[0]));
  await page.getByTestId("explorer-value-step").filter({ hasText: new RegExp(`^${steps[0]} `) }).waitFor();
  const v = await gql<{ trial: { tensor: { value: { dtype: string; shape: number[]; scalar: number | null } } } }>(
    `query($p: String!, $s: Int!) { trial(path: $p) { tensor(name: "validation-rmse") { value(step: $s) { dtype shape scalar } } } }`,
    { p: EXAMPLE, s: steps[0] },
  );
  assert.equal(await page.getByTestId("explorer-dtype").innerText(), v.trial.tensor.value.dtype);
  assert.equal(await page.getByTestId("explorer-shape").innerText(), `[${v.trial.tensor.value.shape.join(", ")}]`);
});

test("a chart of 24 series: 20 distinct colours, then dashed lines; none alike; the legend shows each dash", async () => {
  await page.evaluate((p) => (location.hash = `#/trial?path=${encodeURIComponent(p)}`), WIDE);
  const chart = "[data-testid=shap-chart]";
  await page.waitForFunction((sel) => (document.querySelector(sel)?.getAttribute("data-series") ?? "").split("|").length === 24, chart);
  const styles = await assertDistinctStyles(chart, WIDE_FEATURES);
  assert.deepEqual([...new Set(styles.map((s) => s.color))].sort(), [...SERIES_COLORS].sort(), "all 20 colours in use");
  assert.ok(styles.slice(0, 20).every((s) => s.dash === ""), "the first 20 are solid");
  assert.ok(styles.slice(20).every((s) => s.dash !== ""), "the rest are dashed");
  // Hiding a series from the legend takes it out of the plot and its y range.
  const first = page.locator(`${chart} .legend-item`).first();
  await first.click();
  assert.equal(await first.getAttribute("aria-pressed"), "false");
  await first.click();
  assert.equal(await first.getAttribute("aria-pressed"), "true");
  await shot("04b-24-series");
});

test("GraphQL errors are shown with their message and extensions.code", async () => {
  await page.evaluate(() => (location.hash = `#/trial?path=${encodeURIComponent("../../etc")}`));
  const box = page.getByTestId("trial-error");
  await box.waitFor();
  assert.equal(await box.getByTestId("error-code").first().innerText(), "FORBIDDEN_PATH");
  assert.ok((await box.getByTestId("error-message").first().innerText()).length > 0);
  await shot("05-error");
});

test("a local lab job started from the form goes live to COMPLETED and its rule to ISSUES_FOUND without a reload", async () => {
  await page.evaluate(() => (location.hash = "#/jobs"));
  await page.getByTestId("start-job-toggle").click();
  const form = page.getByTestId("start-job-form");
  assert.equal(await page.getByTestId("form-backend").inputValue(), "LOCAL");
  assert.equal(await page.getByTestId("form-base-job-name").inputValue(), "xgboost-lab");
  assert.equal(await form.locator('input[name="hyperparameters.1.key"]').inputValue(), "eta");
  assert.equal(await form.locator('input[name="hyperparameters.1.value"]').inputValue(), "0.2");
  assert.equal(await form.locator('input[name="hyperparameters.6.value"]').inputValue(), "51");
  assert.equal(await form.locator('input[name="inputs.0.uri"]').inputValue(), "lab/abalone.train.libsvm");
  assert.equal(await form.locator('input[name="inputs.1.uri"]').inputValue(), "lab/abalone.validation.libsvm");
  assert.equal(await form.locator('input[name="rules.0.builtin"]').inputValue(), "LossNotDecreasing");
  // No field cuts its prefilled value off.
  const cut = await form.locator("input[type=text]").evaluateAll((els) =>
    (els as HTMLInputElement[]).filter((e) => e.value && e.scrollWidth > e.clientWidth + 1).map((e) => `${e.name}: ${e.value}`));
  assert.deepEqual(cut, []);
  await shot("06-start-form");

  // The API names the field at fault (extensions.field): that input is marked and focused.
  const eta = form.locator('input[name="hyperparameters.1.value"]');
  await eta.fill("1.5");
  await page.getByTestId("start-job-submit").click();
  await page.getByTestId("start-job-error").waitFor();
  assert.equal(await page.getByTestId("start-job-error").getByTestId("error-code").first().innerText(), "BAD_USER_INPUT");
  assert.equal(await eta.getAttribute("aria-invalid"), "true");
  assert.equal(await eta.evaluate((e) => e === document.activeElement), true, "the failing field has the focus");
  assert.equal(await form.locator("[aria-invalid=true]").count(), 1);
  await shot("06b-start-form-invalid");
  await eta.fill("0.2");
  assert.equal(await eta.getAttribute("aria-invalid"), null, "editing the field clears the mark");

  await page.getByTestId("start-job-submit").click();
  const ok = page.getByTestId("start-job-ok");
  await Promise.race([ok.waitFor(), page.getByTestId("start-job-error").waitFor().then(async () => assert.fail(await page.getByTestId("start-job-error").innerText()))]);
  jobName = (await ok.getAttribute("data-job-name"))!;
  assert.match(jobName, /^xgboost-lab/);
  const id = testid(jobName);
  // The eta 0.05 run trains beside it, for the comparison later.
  await gql(`mutation($i: StartTrainingJobInput!) { startTrainingJob(input: $i) { name } }`, { i: LAB_INPUT("0.05", SLOW_JOB) });

  // Record every status the row shows, to see the live transition and not only the end state.
  // (A string, not a function: tsx's name helpers do not exist in the page.)
  await page.evaluate(`(() => {
    const seen = [];
    window.__seenStatuses = seen;
    const record = () => {
      const s = document.querySelector('[data-testid="job-status-${id}"]')?.getAttribute("data-status");
      if (s && seen[seen.length - 1] !== s) seen.push(s);
    };
    record();
    new MutationObserver(record).observe(document.querySelector("[data-testid=jobs-body]"), { childList: true, subtree: true, attributes: true });
  })()`);

  await page.locator(`[data-testid="job-status-${id}"][data-status="COMPLETED"]`).waitFor({ timeout: JOB_TIMEOUT_MS });
  await page.locator(`[data-testid="rule-status-${id}-LossNotDecreasing"][data-status="ISSUES_FOUND"]`).waitFor({ timeout: JOB_TIMEOUT_MS });
  const seen = await page.evaluate(() => (window as unknown as { __seenStatuses: string[] }).__seenStatuses);
  assert.equal(seen[0], "IN_PROGRESS", `statuses seen: ${seen.join(" -> ")}`);
  assert.equal(seen[seen.length - 1], "COMPLETED");
  assert.equal(await page.evaluate(() => (window as unknown as { __noReload?: string }).__noReload), "still here", "the page was not reloaded");
  await shot("07-job-completed");
});

test("the job page shows the job's status, rule and trial charts", async () => {
  assert.ok(jobName, "needs the job started by the previous test");
  const id = testid(jobName);
  await page.getByTestId(`job-link-${id}`).click();
  await page.locator(`[data-testid=job-status][data-status=COMPLETED]`).waitFor();
  await page.locator(`[data-testid="rule-status-${id}-LossNotDecreasing"][data-status="ISSUES_FOUND"]`).waitFor();
  const job = await gql<{ trainingJob: { trial: { path: string; steps: number[] } | null } }>(`query($n: String!) { trainingJob(name: $n) { trial { path steps } } }`, { n: jobName });
  assert.ok(job.trainingJob.trial, "the completed job has a trial");
  const steps = job.trainingJob.trial.steps;
  const chart = "[data-testid=metrics-chart]";
  await page.waitForFunction(([sel, last]) => document.querySelector(sel)?.getAttribute("data-last-step") === last, [chart, String(steps[steps.length - 1])] as const);
  const series = (await attr(chart, "data-series"))!.split("|");
  assert.ok(series.includes("train-rmse") && series.includes("validation-rmse"), series.join(", "));
  await page.locator("[data-testid=importance-chart] canvas").first().waitFor();
  await page.locator("[data-testid=shap-chart] canvas").first().waitFor();
  assert.equal(await page.evaluate(() => (window as unknown as { __noReload?: string }).__noReload), "still here");

  // The tensor explorer offers only collections that have tensors.
  const cols = await gql<{ trainingJob: { trial: { collections: { name: string; tensorNames: string[] }[] } } }>(
    `query($n: String!) { trainingJob(name: $n) { trial { collections { name tensorNames } } } }`, { n: jobName });
  const withTensors = cols.trainingJob.trial.collections.filter((c) => c.tensorNames.length).map((c) => c.name).sort();
  assert.ok(cols.trainingJob.trial.collections.some((c) => c.tensorNames.length === 0), "the lab's trial has empty collections");
  await page.waitForFunction((n) => document.querySelectorAll("[data-testid=explorer-collection] option").length === n, withTensors.length);
  const offered = await page.getByTestId("explorer-collection").locator("option").evaluateAll((els) => els.map((e) => (e as HTMLOptionElement).value).sort());
  assert.deepEqual(offered, withTensors);
  await shot("08-job-page");
});

test("where LossNotDecreasing fired: a marker at step 30 on validation-rmse, the finding on hover, a one-line rules table", async () => {
  const id = testid(jobName);
  const r = await gql<{ trainingJob: { ruleSummaries: { statusDetails: string; findings: Finding[] }[] } }>(
    `query($n: String!) { trainingJob(name: $n) { ruleSummaries { statusDetails findings { step tensorNames message } } } }`, { n: jobName });
  const rule = r.trainingJob.ruleSummaries[0];
  assert.deepEqual(rule.findings[0].step, 30);
  assert.deepEqual(rule.findings[0].tensorNames, ["validation-rmse"]);

  const chart = "[data-testid=metrics-chart]";
  const marker = page.locator(`${chart} [data-testid=rule-marker][data-step="30"][data-rule="LossNotDecreasing"]`);
  await marker.waitFor();
  assert.equal(await marker.getAttribute("data-tensors"), "validation-rmse");
  // It stands at step 30 on the x axis: the plot spans the trial's first to last step.
  const over = (await page.locator(`${chart} .u-over`).boundingBox())!;
  const box = (await marker.boundingBox())!;
  const [first, last] = [Number(await attr(chart, "data-first-step")), Number(await attr(chart, "data-last-step"))];
  const expectedX = over.x + ((30 - first) / (last - first)) * over.width;
  assert.ok(Math.abs(box.x + box.width / 2 - expectedX) <= 2, `marker at x ${box.x + box.width / 2}, step 30 at ${expectedX}`);
  assert.ok(box.height >= over.height - 2, "the marker spans the plot's height");
  assert.equal(await page.locator(`${chart} .rule-marker-label`).first().innerText(), "LossNotDecreasing");
  // Hover shows the finding.
  const tip = marker.getByTestId("rule-tip");
  assert.equal(await tip.isVisible(), false);
  await marker.hover();
  await tip.waitFor({ state: "visible" });
  assert.ok((await tip.innerText()).includes(rule.findings[0].message), await tip.innerText());
  await shot("08b-job-rule-marker");
  // Importance and SHAP tensors were not named by the rule: no markers there.
  assert.equal(await page.locator("[data-testid=importance-chart] [data-testid=rule-marker]").count(), 0);
  assert.equal(await page.locator("[data-testid=shap-chart] [data-testid=rule-marker]").count(), 0);

  // The rules table: status, step, tensor and one line; the full details on demand.
  const rid = `${id}-LossNotDecreasing`;
  assert.match(await page.getByTestId(`rule-step-${rid}`).innerText(), /^30/);
  assert.equal(await page.getByTestId(`rule-tensor-${rid}`).innerText(), "validation-rmse");
  const details = page.getByTestId(`rule-details-${rid}`);
  const summary = details.locator("summary");
  const lineHeight = await summary.evaluate((e) => parseFloat(getComputedStyle(e).lineHeight) || 20);
  assert.ok((await summary.boundingBox())!.height <= lineHeight * 1.5, "the finding takes one line");
  assert.equal(await page.getByTestId(`rule-status-details-${rid}`).isVisible(), false);
  await summary.click();
  await page.getByTestId(`rule-status-details-${rid}`).waitFor({ state: "visible" });
  assert.equal(await page.getByTestId(`rule-status-details-${rid}`).innerText(), rule.statusDetails);
  await summary.click();
});

test("the job report: linked from the job page, inline SVG with the rule marker, renders offline, downloads", async () => {
  const reportUrl = `${base}/jobs/${encodeURIComponent(jobName)}/report.html`;
  const res = await fetch(reportUrl);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^text\/html/);
  assert.match(res.headers.get("content-security-policy") ?? "", /default-src 'none'/);
  const body = await res.text();
  assert.ok(body.includes(`<code>${jobName}</code>`));
  assert.match(body, /<g class="rule-marker" data-step="30" data-rule="LossNotDecreasing">/);
  assert.ok(body.includes("<code>eta</code></td><td><code>0.2</code>"));

  // Opened from the job page: the page asks for nothing but itself, and its CSP lets its own style through.
  const [popup] = await Promise.all([context.waitForEvent("page"), page.getByTestId("job-report-link").click()]);
  await popup.waitForLoadState("load");
  assert.equal(popup.url(), reportUrl);
  await popup.close();
  // Loaded in a page we watch from the start.
  const report = await context.newPage();
  const requests: string[] = [];
  const violations: string[] = [];
  report.on("request", (req) => requests.push(req.url()));
  report.on("console", (msg) => msg.type() === "error" && violations.push(msg.text()));
  await report.goto(reportUrl);
  assert.deepEqual([...new Set(requests)], [reportUrl], "no request beyond the page");
  assert.deepEqual(violations, []);
  assert.ok((await report.locator("svg.chart").count()) >= 3, "metric, importance and SHAP charts are inline SVG");
  assert.equal(await report.locator("#metrics g.rule-marker[data-step='30']").count(), 2, "on the whole run and on its fitted later part");
  assert.equal(await report.locator("h2").first().evaluate((e) => getComputedStyle(e).borderBottomWidth), "2px", "the inline stylesheet applied");
  await report.setViewportSize({ width: 1100, height: 900 });
  await report.screenshot({ path: path.join(ARTIFACTS, "11-report.png"), fullPage: true });
  await report.close();

  // Downloaded, it renders with the network off.
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByTestId("job-report-download").click()]);
  assert.equal(download.suggestedFilename(), `${jobName}-report.html`);
  const file = path.join(ARTIFACTS, "downloaded-report.html");
  await download.saveAs(file);
  assert.ok(readFileSync(file, "utf8").includes("<svg"));
  const offline = await context.newPage();
  await context.setOffline(true);
  try {
    const seen: string[] = [];
    offline.on("request", (req) => seen.push(req.url()));
    await offline.goto(`file://${file}`);
    assert.ok((await offline.locator("svg.chart").count()) >= 3);
    assert.deepEqual(seen.filter((u) => !u.startsWith("file://")), [], "nothing fetched");
  } finally {
    await context.setOffline(false);
    await offline.close();
  }
});

test("compare overlays the example trial and the job, fetched in one aliased request", async () => {
  assert.ok(jobName, "needs the job started by the previous test");
  const before = graphqlRequests.length;
  await page.evaluate((name) => (location.hash = `#/compare?paths=${encodeURIComponent("trials/example")}&jobs=${encodeURIComponent(name)}`), jobName);
  const chart = "[data-testid=compare-chart]";
  await page.waitForFunction(
    ([sel, name]) => {
      const s = document.querySelector(sel)?.getAttribute("data-series")?.split("|") ?? [];
      return s.includes("trials/example · train-rmse") && s.includes(`${name} · train-rmse`) && s.includes(`${name} · validation-rmse`);
    },
    [chart, jobName] as const,
  );
  const compareRequests = graphqlRequests.slice(before).filter((r) => (r.postData() ?? "").includes("series("));
  assert.ok(compareRequests.length >= 1);
  const first = JSON.parse(compareRequests[0].postData()!) as { query: string; variables: Record<string, unknown> };
  assert.match(first.query, /t0: trial\(path: \$t0\)/);
  assert.match(first.query, /j0: trainingJob\(name: \$j0\)/);
  assert.deepEqual([first.variables.t0, first.variables.j0], ["trials/example", jobName]);
});

test("compare explains itself: runs labelled eta=0.2 / eta=0.05, one colour family each, differing settings, final and best with the difference", async () => {
  await waitForJob(SLOW_JOB, (j) => j.status === "COMPLETED" && j.ruleSummaries.every((r) => r.ruleEvaluationStatus !== "IN_PROGRESS"));
  await page.evaluate(([a, b]) => (location.hash = `#/compare?jobs=${encodeURIComponent(a)},${encodeURIComponent(b)}&collection=metrics`), [jobName, SLOW_JOB] as const);
  const chart = "[data-testid=compare-chart]";
  await page.waitForFunction((sel) => (document.querySelector(sel)?.getAttribute("data-series") ?? "").split("|").length === 4, chart);
  const labels = (await attr(chart, "data-series"))!.split("|").sort();
  assert.deepEqual(labels, ["eta=0.05 · train-rmse", "eta=0.05 · validation-rmse", "eta=0.2 · train-rmse", "eta=0.2 · validation-rmse"]);
  const styles = await assertDistinctStyles(chart, 4);
  const legend = await legendStyles(chart);
  // Hover names the job; each run is one colour family, and a tensor has the same dash in both runs.
  const of = (label: string) => legend.find((l) => l.label === label)!;
  assert.match(of("eta=0.2 · train-rmse").title, new RegExp(`^${jobName} · train-rmse$`));
  assert.match(of("eta=0.05 · validation-rmse").title, new RegExp(`^${SLOW_JOB} · validation-rmse$`));
  for (const t of ["train-rmse", "validation-rmse"]) {
    assert.ok(RUN_FAMILIES[0].includes(of(`eta=0.2 · ${t}`).color), `eta=0.2 ${t} in the first family`);
    assert.ok(RUN_FAMILIES[1].includes(of(`eta=0.05 · ${t}`).color), `eta=0.05 ${t} in the second family`);
    assert.equal(of(`eta=0.2 · ${t}`).dash, of(`eta=0.05 · ${t}`).dash);
  }
  assert.notEqual(of("eta=0.2 · train-rmse").dash, of("eta=0.2 · validation-rmse").dash);
  assert.equal(styles.length, 4);

  // The differing hyperparameters, and what is the same.
  const hp = page.getByTestId("compare-hyperparameters");
  assert.deepEqual(await hp.locator("thead th").evaluateAll((els) => els.map((e) => e.textContent)), ["Run", "eta"], "only eta differs");
  assert.deepEqual(await hp.locator("td[data-key=eta]").allInnerTexts(), ["0.2", "0.05"]);
  assert.match(await page.getByTestId("compare-same").innerText(), /max_depth=5/);

  // Final and best per run, each against the first run, from the series themselves.
  const series = async (n: string) => (await gql<{ trainingJob: { trial: { collection: { tensors: SeriesData[] } } } }>(
    `query($n: String!) { trainingJob(name: $n) { trial { collection(name: "metrics") { tensors { name series { steps values } } } } } }`, { n })).trainingJob.trial.collection.tensors;
  const [fast, slow] = [await series(jobName), await series(SLOW_JOB)];
  const val = (ts: SeriesData[], name: string) => ts.find((t) => t.name === name)!.series.values as number[];
  const row = (run: number, t: string) => page.getByTestId(`compare-stat-${run}-${t}`);
  for (const t of ["train-rmse", "validation-rmse"]) {
    const a = val(fast, t);
    const b = val(slow, t);
    assert.equal(Number(await row(0, t).locator("td[data-final]").getAttribute("data-final")), a[a.length - 1]);
    assert.equal(Number(await row(1, t).locator("td[data-final]").getAttribute("data-final")), b[b.length - 1]);
    assert.equal(Number(await row(0, t).locator("td[data-best]").getAttribute("data-best")), Math.min(...a));
    assert.equal(Number(await row(1, t).locator("td[data-best]").getAttribute("data-best")), Math.min(...b));
    const delta = Number(await row(1, t).locator("td[data-delta-final]").getAttribute("data-delta-final"));
    assert.ok(Math.abs(delta - (b[b.length - 1] - a[a.length - 1])) < 1e-12, `Δ final ${t}`);
    const deltaBest = Number(await row(1, t).locator("td[data-delta-best]").getAttribute("data-delta-best"));
    assert.ok(Math.abs(deltaBest - (Math.min(...b) - Math.min(...a))) < 1e-12, `Δ best ${t}`);
  }
  // eta 0.05 has not converged by round 50: its final validation rmse is the larger.
  assert.ok(val(slow, "validation-rmse").at(-1)! > val(fast, "validation-rmse").at(-1)!);
  await shot("09-compare");
});

test("stopping a job asks first: cancel leaves it running, confirm stops it", async () => {
  const long = "lab-long-run";
  await gql(`mutation($i: StartTrainingJobInput!) { startTrainingJob(input: $i) { name } }`, { i: LAB_INPUT("0.2", long, "100000") });
  await page.evaluate(() => (location.hash = "#/jobs"));
  const stop = page.getByTestId(`job-stop-${testid(long)}`);
  await page.locator(`[data-testid="job-status-${testid(long)}"][data-status="IN_PROGRESS"]`).waitFor();
  await stop.click();
  const dialog = page.getByTestId("stop-confirm");
  await dialog.waitFor();
  assert.match(await dialog.innerText(), new RegExp(`Stop ${long}\\?`));
  await shot("12-stop-confirm");
  await dialog.getByTestId("confirm-cancel").click();
  await dialog.waitFor({ state: "detached" });
  const still = await gql<{ trainingJob: { status: string } }>(`query($n: String!) { trainingJob(name: $n) { status } }`, { n: long });
  assert.equal(still.trainingJob.status, "IN_PROGRESS", "cancel did not stop it");
  assert.equal(await stop.isEnabled(), true);
  await stop.click();
  await page.getByTestId("stop-confirm").getByTestId("confirm-ok").click();
  await page.locator(`[data-testid="job-status-${testid(long)}"][data-status="STOPPED"]`).waitFor({ timeout: JOB_TIMEOUT_MS });
});

test("navigation moves focus to the page title without drawing an outline across the page", async () => {
  await page.evaluate(() => (location.hash = "#/compare"));
  await page.getByTestId("page-title").filter({ hasText: "Compare runs" }).waitFor();
  const focus = await page.evaluate(() => {
    const el = document.activeElement as HTMLElement;
    const style = getComputedStyle(el);
    return { tag: el.tagName, text: el.textContent, outline: style.outlineStyle, width: style.outlineWidth, mainOutline: getComputedStyle(document.querySelector("main")!).outlineStyle };
  });
  assert.equal(focus.tag, "H1");
  assert.equal(focus.text, "Compare runs");
  assert.equal(focus.outline, "none");
  assert.equal(focus.mainOutline, "none");
});

test("under a strict Content-Security-Policy (no inline styles or scripts) the job page has no violations", async () => {
  const strict = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'";
  const csp = await context.newPage();
  await csp.route(`${base}/**`, async (route) => {
    const response = await route.fetch();
    await route.fulfill({ response, headers: { ...response.headers(), "content-security-policy": strict } });
  });
  const violations: string[] = [];
  await csp.exposeFunction("__cspViolation", (v: string) => violations.push(v));
  await csp.addInitScript(() => document.addEventListener("securitypolicyviolation", (e) => (window as unknown as { __cspViolation: (v: string) => void }).__cspViolation(`${e.violatedDirective} ${e.blockedURI} ${e.sample}`)));
  try {
    await csp.goto(`${base}/#/job?name=${encodeURIComponent(jobName)}`);
    await csp.locator("[data-testid=metrics-chart] [data-testid=rule-marker]").first().waitFor();
    await csp.locator("[data-testid=job-progress] .progress-fill").waitFor();
    assert.equal(await csp.locator("[data-testid=job-progress] .progress-fill").evaluate((e) => getComputedStyle(e).width !== "0px"), true, "sizes set through CSSOM apply");
    assert.deepEqual(violations, []);
    // The watch works: a style attribute from markup is blocked and reported.
    await csp.evaluate(() => document.body.insertAdjacentHTML("beforeend", '<div style="color: red">inline</div>'));
    await csp.waitForFunction(() => true);
    for (let i = 0; i < 50 && violations.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    assert.match(violations.join("\n"), /style-src/);
  } finally {
    await csp.close();
  }
});

test("the layout holds on a narrow screen (390 px): jobs, and the job page's rules table", async () => {
  await page.setViewportSize({ width: 390, height: 900 });
  await page.evaluate(() => (location.hash = "#/jobs"));
  await page.getByTestId(`trial-link-${testid(EXAMPLE)}`).waitFor();
  if (jobName) await page.getByTestId(`job-row-${testid(jobName)}`).waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  const wide = await page.evaluate(`[...document.querySelectorAll("body *")].filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1).slice(0, 8).map((e) => e.tagName + "." + e.className)`);
  assert.ok(overflow <= 0, `page scrolls sideways by ${overflow}px: ${JSON.stringify(wide)}`);
  await shot("10-narrow");
  await page.evaluate((n) => (location.hash = `#/job?name=${encodeURIComponent(n)}`), jobName);
  await page.getByTestId("rules-table").waitFor();
  await page.locator("[data-testid=metrics-chart] canvas").first().waitFor();
  const jobOverflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  const table = await page.getByTestId("rules-table").evaluate((e) => ({ scroll: e.scrollWidth, client: e.clientWidth, parent: e.parentElement!.clientWidth }));
  const jobWide = await page.evaluate(`[...document.querySelectorAll("body *")].filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1).slice(0, 8).map((e) => e.tagName + "." + e.className)`);
  assert.ok(jobOverflow <= 0, `job page scrolls sideways by ${jobOverflow}px: ${JSON.stringify(jobWide)}`);
  assert.ok(table.scroll <= table.parent, `rules table ${table.scroll}px in ${table.parent}px`);
  await shot("10b-narrow-job");
  await page.setViewportSize({ width: 1360, height: 900 });
});

test("token mode: one prompt instead of error banners and toasts; after the token is set everything reconnects", async () => {
  tokenDataDir = mkdtempSync(path.join(os.tmpdir(), "trialgraph-dashboard-token-"));
  mkdirSync(path.join(tokenDataDir, "lab"));
  for (const f of ["abalone.train.libsvm", "abalone.validation.libsvm"]) copyFileSync(path.join(FIXTURES, "data", f), path.join(tokenDataDir, "lab", f));
  tokenServer = await startServiceProcess({
    env: {
      TRIALGRAPH_DATA_DIR: tokenDataDir, TRIALGRAPH_API_TOKENS: `tester:operator:${TOKEN}`, TRIALGRAPH_SAGEMAKER_ENABLED: "false",
      TRIALGRAPH_REDIS_URL: "", LOG_LEVEL: "warn", TRIALGRAPH_POLL_INTERVAL_MS: "500",
    },
  });
  // Another origin (port): its own localStorage, so no token yet.
  const p = await context.newPage();
  const errors: string[] = [];
  p.on("pageerror", (e) => errors.push(String(e)));
  try {
    await p.goto(`${tokenServer.base}/`);
    await p.getByTestId("auth-prompt").waitFor();
    // The socket was refused too (4401) before we count what is shown.
    await p.waitForFunction(() => document.querySelector("[data-testid=ws-status]")?.getAttribute("data-state") === "closed");
    assert.equal(await p.getByTestId("auth-prompt").count(), 1, "one prompt");
    assert.equal(await p.getByTestId("global-error").count(), 0, "no WS_CLOSED toasts");
    assert.equal(await p.getByTestId("error-code").count(), 0, "no UNAUTHENTICATED banners");
    assert.equal(await p.locator("[data-testid=jobs-error-auth], [data-testid=trials-error-auth]").count(), 2, "the panels say they wait for a token");
    await p.screenshot({ path: path.join(ARTIFACTS, "13-token-prompt.png") });

    // A wrong token: asked again, saying it was not accepted.
    await p.getByTestId("auth-prompt-open").click();
    await p.getByTestId("token-dialog").waitFor();
    await p.getByTestId("token-input").fill("wrong-token-0123456789abcdef");
    await p.getByTestId("token-save").click();
    await p.getByTestId("auth-prompt").filter({ hasText: "not accepted" }).waitFor();
    assert.equal(await p.getByTestId("auth-prompt").count(), 1);

    // The right one: the prompt goes, the lists load, live updates connect; no reload.
    await p.evaluate(() => ((window as unknown as { __noReload: string }).__noReload = "same page"));
    await p.getByTestId("auth-prompt-open").click();
    await p.getByTestId("token-input").fill(TOKEN);
    await p.getByTestId("token-save").click();
    await p.getByTestId(`trial-link-${testid(EXAMPLE)}`).waitFor();
    await p.waitForFunction(() => document.querySelector("[data-testid=ws-status]")?.getAttribute("data-state") === "connected");
    assert.equal(await p.getByTestId("auth-prompt").count(), 0);
    assert.equal(await p.getByTestId("token-button").innerText(), "API token ✓");
    assert.equal(await p.evaluate(() => (window as unknown as { __noReload?: string }).__noReload), "same page");
    assert.equal(await p.getByTestId("global-error").count(), 0);
    await p.screenshot({ path: path.join(ARTIFACTS, "13b-token-set.png") });

    // The report needs the token too: a plain link cannot send it, so the page fetches it with it.
    const authed = { "content-type": "application/json", authorization: `Bearer ${TOKEN}` };
    const started = await fetch(`${tokenServer.base}/graphql`, {
      method: "POST", headers: authed,
      body: JSON.stringify({ query: `mutation($i: StartTrainingJobInput!) { startTrainingJob(input: $i) { name } }`, variables: { i: LAB_INPUT("0.2", "token-lab", "11") } }),
    });
    assert.equal(started.status, 200);
    await p.evaluate(() => (location.hash = `#/job?name=token-lab`));
    await p.locator("[data-testid=job-status][data-status=COMPLETED]").waitFor({ timeout: JOB_TIMEOUT_MS });
    assert.equal((await fetch(`${tokenServer.base}/jobs/token-lab/report.html`)).status, 401, "not without the token");
    const [download] = await Promise.all([p.waitForEvent("download"), p.getByTestId("job-report-download").click()]);
    const saved = path.join(ARTIFACTS, "token-report.html");
    await download.saveAs(saved);
    const html = readFileSync(saved, "utf8");
    assert.ok(html.includes("<code>token-lab</code>") && html.includes('<svg class="chart"'), "the downloaded report is the job's");
    const [view] = await Promise.all([context.waitForEvent("page"), p.getByTestId("job-report-link").click()]);
    await view.waitForURL(/^blob:/);
    await view.locator("svg.chart").first().waitFor();
    await view.close();
    assert.equal(await p.getByTestId("auth-prompt").count(), 0);
    assert.deepEqual(errors, []);
  } finally {
    await p.close();
  }
});

test("no script errors happened", () => {
  assert.deepEqual(pageErrors, []);
});
