/// <reference lib="dom" />
/**
 * The dashboard end to end, in real Chromium against the real service: the server is started
 * on a free port with a fresh data directory (it creates trials/example on first start), the
 * dashboard is built with vite, and a local XGBoost lab job is started from the browser.
 *
 * Needs the Debian package `chromium` (/usr/bin/chromium). Screenshots go to test-artifacts/dashboard/.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { freePort } from "./support/net.js";
import os from "node:os";
import path from "node:path";
import { chromium, type BrowserContext, type Page, type Request } from "playwright-core";

const ROOT = path.resolve(__dirname, "..");
const FIXTURES = path.resolve(ROOT, "../shared/fixtures");
const ARTIFACTS = path.join(ROOT, "test-artifacts", "dashboard");
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const EXAMPLE = "trials/example";
const JOB_TIMEOUT_MS = 150_000;

let server: ChildProcess | undefined;
let serverLog = "";
let base = "";
let dataDir = "";
let profileDir = "";
let context: BrowserContext;
let page: Page;
const pageErrors: string[] = [];
const graphqlRequests: Request[] = [];
let jobName = "";

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
  execFileSync(process.execPath, [path.join(ROOT, "node_modules/vite/bin/vite.js"), "build", "--config", "web/vite.config.mts", "--logLevel", "warn"], {
    cwd: ROOT,
    stdio: "inherit",
    env: { ...process.env, VITE_CONFIG_NATIVE_IGNORE_WARNING: "true" },
  });
  assert.ok(existsSync(path.join(ROOT, "dist/web/index.html")), "vite build produced dist/web/index.html");

  dataDir = mkdtempSync(path.join(os.tmpdir(), "trialgraph-dashboard-"));
  mkdirSync(path.join(dataDir, "lab"));
  for (const f of ["abalone.train.libsvm", "abalone.validation.libsvm"]) copyFileSync(path.join(FIXTURES, "data", f), path.join(dataDir, "lab", f));

  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(port), HOST: "127.0.0.1", TRIALGRAPH_DATA_DIR: dataDir, TRIALGRAPH_POLL_INTERVAL_MS: "500", LOG_LEVEL: "warn", TRIALGRAPH_SAGEMAKER_ENABLED: "false" };
  for (const k of ["TRIALGRAPH_API_TOKENS", "TRIALGRAPH_REDIS_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"]) delete env[k];
  server = spawn(process.execPath, ["--import", "tsx", "src/server.ts"], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  server.stdout!.on("data", (d: Buffer) => (serverLog += d.toString()));
  server.stderr!.on("data", (d: Buffer) => (serverLog += d.toString()));
  await waitForServer(60_000);

  profileDir = mkdtempSync(path.join(os.tmpdir(), "trialgraph-chromium-"));
  context = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync"],
    viewport: { width: 1360, height: 900 },
  });
  context.setDefaultTimeout(20_000);
  page = context.pages()[0] ?? (await context.newPage());
  page.on("pageerror", (err) => pageErrors.push(String(err)));
  page.on("request", (req) => {
    if (req.url().endsWith("/graphql") && req.method() === "POST") graphqlRequests.push(req);
  });
});

after(async () => {
  await context?.close().catch(() => undefined);
  if (server && server.exitCode == null) {
    const exited = new Promise((r) => server!.once("exit", r));
    server.kill("SIGTERM");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (server.exitCode == null) server.kill("SIGKILL");
  }
  for (const dir of [dataDir, profileDir]) if (dir) rmSync(dir, { recursive: true, force: true });
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
  const legend = await page.locator(`${chart} .u-legend`).innerText();
  assert.match(legend, /train-rmse/);
  assert.match(legend, /validation-rmse/);

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
  await shot("06-start-form");

  await page.getByTestId("start-job-submit").click();
  const ok = page.getByTestId("start-job-ok");
  await Promise.race([ok.waitFor(), page.getByTestId("start-job-error").waitFor().then(async () => assert.fail(await page.getByTestId("start-job-error").innerText()))]);
  jobName = (await ok.getAttribute("data-job-name"))!;
  assert.match(jobName, /^xgboost-lab/);
  const id = testid(jobName);

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
  await shot("08-job-page");
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
  await shot("09-compare");
});

test("the layout holds on a narrow screen and no script errors happened", async () => {
  await page.setViewportSize({ width: 420, height: 900 });
  await page.evaluate(() => (location.hash = "#/jobs"));
  await page.getByTestId(`trial-link-${testid(EXAMPLE)}`).waitFor();
  if (jobName) await page.getByTestId(`job-row-${testid(jobName)}`).waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  const wide = await page.evaluate(`[...document.querySelectorAll("body *")].filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1).slice(0, 8).map((e) => e.tagName + "." + e.className)`);
  assert.ok(overflow <= 0, `page scrolls sideways by ${overflow}px: ${JSON.stringify(wide)}`);
  await shot("10-narrow");
  assert.deepEqual(pageErrors, []);
});
