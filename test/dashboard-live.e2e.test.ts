/// <reference lib="dom" />
/**
 * The dashboard live, in real Chromium against the real service with local XGBoost lab jobs:
 * the jobs list follows a job started elsewhere (progress and duration move as rounds finish, its
 * trial appears in the trials list without Refresh); the job page, its socket cut while the job
 * runs, says "reconnecting…" and then resumes with `after` (every update it missed, once); and each
 * rule has a timeline of its status over the evaluated steps, from its evaluation history.
 *
 * The page's WebSocket is wrapped (an init script) so the test can cut it, keep reconnections
 * failing for a while, and see what the client sent and received.
 *
 * Needs the Debian package `chromium` (/usr/bin/chromium). Screenshots go to test-artifacts/dashboard/.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { startServiceProcess, gqlAt, type ServiceProcess } from "./support/service-process.js";
import { buildDashboard, launchBrowser, type Browser } from "./support/browser.js";
import type { Page } from "playwright-core";
import { collect, wsClient } from "./support/ws-events.js";

const ROOT = path.resolve(__dirname, "..");
const FIXTURES = path.resolve(ROOT, "../shared/fixtures");
const ARTIFACTS = path.join(ROOT, "test-artifacts", "dashboard");
const JOB_TIMEOUT_MS = 150_000;

let service: ServiceProcess;
let dataDir = "";
let browser: Browser | undefined;
let page: Page;
const pageErrors: string[] = [];

/** Enough rounds that the job runs for a few seconds: progress and duration visibly move. */
const LAB = (name: string, rounds = "600") => ({
  backend: "LOCAL",
  name,
  algorithm: { builtin: "xgboost", version: "1.7-1" },
  hyperparameters: { max_depth: "5", eta: "0.2", gamma: "4", min_child_weight: "6", subsample: "0.7", objective: "reg:squarederror", num_round: rounds },
  inputs: [
    { name: "train", uri: "lab/abalone.train.libsvm", contentType: "libsvm" },
    { name: "validation", uri: "lab/abalone.validation.libsvm", contentType: "libsvm" },
  ],
  debugHookConfig: { collectionConfigs: [{ name: "metrics", parameters: { save_interval: "5" } }] },
  rules: [{ builtin: "LossNotDecreasing", parameters: { collection_names: "metrics", num_steps: "10" } }],
});

const testid = (s: string) => s.replace(/[^A-Za-z0-9_.-]+/g, "_");

async function gql<T = any>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const { body } = await gqlAt(service.url, query, variables);
  if (body.errors?.length) throw new Error(`GraphQL errors: ${JSON.stringify(body.errors)}`);
  return body.data as T;
}

async function waitForJob(name: string, done: (job: any) => boolean): Promise<any> {
  const until = Date.now() + JOB_TIMEOUT_MS;
  for (;;) {
    const r = await gql(`query($n: String!) { trainingJob(name: $n) { status progress { current total } ruleSummaries { ruleEvaluationStatus } } }`, { n: name });
    if (r.trainingJob && done(r.trainingJob)) return r.trainingJob;
    if (Date.now() > until) throw new Error(`job ${name} did not get there: ${JSON.stringify(r.trainingJob)}`);
    await new Promise((res) => setTimeout(res, 200));
  }
}

async function shot(name: string): Promise<void> {
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

// A string, not a function: tsx's name helpers do not exist in the page.
const WRAP_WEBSOCKET = `(() => {
  const Native = window.WebSocket;
  const w = window;
  w.__sockets = [];
  w.__sent = [];
  w.__received = [];
  w.__blockWs = false;
  class Tracked extends Native {
    constructor(url, protocols) {
      // While blocked, connections go to a closed port and fail, as with the network down.
      super(w.__blockWs ? "ws://127.0.0.1:9/graphql" : url, protocols);
      w.__sockets.push(this);
      this.addEventListener("message", (e) => w.__received.push(String(e.data)));
    }
    send(data) {
      w.__sent.push(String(data));
      super.send(data);
    }
  }
  window.WebSocket = Tracked;
})()`;

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  buildDashboard();
  dataDir = mkdtempSync(path.join(os.tmpdir(), "trialgraph-dashboard-live-"));
  mkdirSync(path.join(dataDir, "lab"));
  for (const f of ["abalone.train.libsvm", "abalone.validation.libsvm"]) copyFileSync(path.join(FIXTURES, "data", f), path.join(dataDir, "lab", f));
  service = await startServiceProcess({
    env: { TRIALGRAPH_DATA_DIR: dataDir, TRIALGRAPH_POLL_INTERVAL_MS: "200", LOG_LEVEL: "warn", TRIALGRAPH_SAGEMAKER_ENABLED: "false", TRIALGRAPH_REDIS_URL: "" },
  });
  browser = await launchBrowser();
  page = browser.page;
  await browser.context.addInitScript(WRAP_WEBSOCKET);
  page.on("pageerror", (err) => pageErrors.push(String(err)));
});

after(async () => {
  await browser?.close();
  await service?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

test("the jobs list is live: a job started elsewhere appears, progress and duration move as rounds finish, its trial shows up without Refresh", async () => {
  await page.goto(`${service.base}/#/jobs`);
  await page.getByTestId("page-title").filter({ hasText: "Training jobs" }).waitFor();
  await page.locator("[data-testid=ws-status][data-state=connected]").waitFor();
  const name = "live-list";
  const id = testid(name);
  // Everything the row shows is recorded as it changes.
  await page.evaluate(`(() => {
    const seen = { progress: [], duration: [], status: [] };
    window.__row = seen;
    const push = (list, v) => { if (v != null && list[list.length - 1] !== v) list.push(v); };
    const record = () => {
      push(seen.progress, document.querySelector('[data-testid="job-progress-${id}"]')?.getAttribute("aria-valuenow"));
      push(seen.duration, document.querySelector('[data-testid="job-duration-${id}"]')?.textContent);
      push(seen.status, document.querySelector('[data-testid="job-status-${id}"]')?.getAttribute("data-status"));
    };
    new MutationObserver(record).observe(document.querySelector("[data-testid=jobs-body]"), { childList: true, subtree: true, attributes: true });
  })()`);
  // Started by another client, not from this page.
  const started = await gql(`mutation($i: StartTrainingJobInput!) { startTrainingJob(input: $i) { debugOutputPath } }`, { i: LAB(name) });
  const trialPath = started.startTrainingJob.debugOutputPath;
  // The trial does not exist at the start; it appears in the list once written, with no click on Refresh.
  await page.getByTestId(`trial-row-${testid(trialPath)}`).waitFor({ timeout: JOB_TIMEOUT_MS });
  await page.locator(`[data-testid="job-status-${id}"][data-status="COMPLETED"]`).waitFor({ timeout: JOB_TIMEOUT_MS });
  const total = (await waitForJob(name, (j) => j.status === "COMPLETED")).progress.total;
  await page.locator(`[data-testid="job-progress-${id}"][aria-valuenow="${total}"]`).waitFor();
  const row = await page.evaluate(() => (window as unknown as { __row: { progress: string[]; duration: string[]; status: string[] } }).__row);
  const progress = row.progress.map(Number);
  assert.ok(progress.length >= 5, `progress moved as rounds finished: ${progress.join(", ")}`);
  assert.deepEqual(progress, [...progress].sort((a, b) => a - b), "progress only moves forward");
  assert.ok(row.duration.length >= 2, `the duration moved: ${row.duration.join(", ")}`);
  assert.deepEqual(row.status, ["IN_PROGRESS", "COMPLETED"]);
  // The trial's row follows the job's end too (every step, ENDED), still without Refresh.
  const trialRow = page.getByTestId(`trial-row-${testid(trialPath)}`);
  await trialRow.filter({ hasText: "ENDED" }).waitFor({ timeout: 15_000 });
  const trialSteps = (await gql(`query($p: String!) { trial(path: $p) { steps } }`, { p: trialPath })).trial.steps as number[];
  assert.match(await trialRow.innerText(), new RegExp(`\\b${trialSteps.length}\\s*\\(last ${trialSteps[trialSteps.length - 1]}\\)`));
  await shot("20-jobs-live");
});

test("the job page, its socket cut mid-job, says reconnecting… and resumes with after: every missed update once", async () => {
  const name = "live-reconnect";
  await gql(`mutation($i: StartTrainingJobInput!) { startTrainingJob(input: $i) { name } }`, { i: LAB(name, "900") });
  await page.evaluate((n) => (location.hash = `#/job?name=${encodeURIComponent(n)}`), name);
  await page.locator("[data-testid=job-progress]").waitFor({ timeout: JOB_TIMEOUT_MS });
  await page.waitForFunction(() => Number(document.querySelector("[data-testid=job-progress]")?.getAttribute("aria-valuenow") ?? 0) > 0, undefined, { timeout: JOB_TIMEOUT_MS });

  // Cut the socket and keep reconnections failing: the page says so.
  const before = await page.evaluate(() => {
    const w = window as unknown as { __blockWs: boolean; __sockets: WebSocket[]; __received: string[] };
    w.__blockWs = true;
    for (const s of w.__sockets) s.close(3000, "cut by the test");
    return w.__received.length;
  });
  await page.locator("[data-testid=ws-status][data-state=reconnecting]").waitFor();
  assert.equal(await page.getByTestId("ws-status").innerText(), "live: reconnecting…");
  const shownAtCut = Number(await page.getByTestId("job-progress").getAttribute("aria-valuenow"));
  // The job goes on (and ends) while the page is away.
  const ended = await waitForJob(name, (j) => j.status === "COMPLETED" && j.ruleSummaries.every((r: any) => r.ruleEvaluationStatus !== "IN_PROGRESS"));
  assert.ok(ended.progress.total > shownAtCut, "the page missed rounds while away");
  await shot("21-job-reconnecting");
  const sentMark = await page.evaluate(() => (window as unknown as { __sent: string[] }).__sent.length);
  await page.evaluate(() => ((window as unknown as { __blockWs: boolean }).__blockWs = false));
  await page.locator("[data-testid=ws-status][data-state=connected]").waitFor({ timeout: 60_000 });
  await page.locator("[data-testid=job-status][data-status=COMPLETED]").waitFor();
  await page.locator(`[data-testid="job-progress"][aria-valuenow="${ended.progress.total}"]`).waitFor();
  await page.locator(`[data-testid="rule-status-${testid(name)}-LossNotDecreasing"][data-status="ISSUES_FOUND"]`).waitFor();

  const { sent, received } = await page.evaluate((marks) => {
    const w = window as unknown as { __sent: string[]; __received: string[] };
    return { sent: w.__sent.slice(marks[0]), received: w.__received.slice(0, marks[1]).concat(["--cut--"], w.__received.slice(marks[1])) };
  }, [sentMark, before] as const);
  // The resubscriptions carried the cursor of the last event each had.
  const subscribes = sent.map((m) => JSON.parse(m)).filter((m) => m.type === "subscribe");
  const updates = subscribes.find((m) => /trainingJobUpdated/.test(m.payload.query));
  assert.ok(updates?.payload.variables.after, `trainingJobUpdated resumed with after: ${JSON.stringify(subscribes.map((s) => s.payload.variables))}`);
  assert.ok(subscribes.find((m) => /ruleStatusChanged/.test(m.payload.query))?.payload.variables.after, "ruleStatusChanged resumed with after");

  // What the page received for the job, before the cut and after it, against what a client that
  // resumes from the same cursor in this test gets: the same events, none missing, none twice.
  const cut = received.indexOf("--cut--");
  const updatesIn = (raw: string[]) => raw.map((m) => JSON.parse(m)).filter((m) => m.type === "next" && m.payload.data?.trainingJobUpdated?.name === name)
    .map((m) => m.payload.data.trainingJobUpdated as { eventId: string; status: string; progress: { current: number } | null });
  const beforeCut = updatesIn(received.slice(0, cut));
  const afterCut = updatesIn(received.slice(cut + 1));
  assert.ok(afterCut.length > 0, "updates missed while away were delivered after the reconnect");
  const cursor = beforeCut[beforeCut.length - 1].eventId;
  assert.equal(updates.payload.variables.after, cursor, "resumed from the last update the page had");
  const control = wsClient(service.wsUrl);
  try {
    const replay = collect(control, `subscription($j: String, $a: String) { trainingJobUpdated(jobName: $j, after: $a) { eventId status progress { current } } }`, { j: name, a: cursor });
    await replay.waitFor((r) => r.data?.trainingJobUpdated?.status === "COMPLETED", "the replay reaching COMPLETED");
    const expected = replay.results.map((r) => `${r.data.trainingJobUpdated.eventId}:${r.data.trainingJobUpdated.progress?.current}`);
    assert.deepEqual(afterCut.map((u) => `${u.eventId}:${u.progress?.current}`), expected);
    const progress = afterCut.map((u) => u.progress?.current ?? 0);
    assert.ok(progress[0] >= (beforeCut.at(-1)!.progress?.current ?? 0), "no step back");
    assert.deepEqual(progress, [...progress].sort((a, b) => a - b), "progress only moves forward");
    replay.stop();
  } finally {
    await control.dispose();
  }
  await shot("22-job-resumed");
});

test("the job page shows a timeline per rule from its evaluation history: where the status changed, at which step", async () => {
  const name = "live-reconnect";
  const rid = `${testid(name)}-LossNotDecreasing`;
  // What the API says: the rule's history, and its status changes.
  const nodes: { step: number | null; status: string }[] = [];
  let afterCursor: string | null = null;
  for (;;) {
    const r: any = await gql(`query($n: String!, $a: String) { trainingJob(name: $n) { ruleSummaries { ruleConfigurationName evaluations(first: 100, after: $a) { nodes { step status } pageInfo { endCursor hasNextPage } } } } }`, { n: name, a: afterCursor });
    const rule = r.trainingJob.ruleSummaries.find((x: any) => x.ruleConfigurationName === "LossNotDecreasing");
    nodes.push(...rule.evaluations.nodes);
    if (!rule.evaluations.pageInfo.hasNextPage) break;
    afterCursor = rule.evaluations.pageInfo.endCursor;
  }
  const expected: string[] = [];
  let previous: string | null = null;
  for (const n of nodes) {
    if (n.status !== previous) expected.push(`${previous ?? ""}>${n.status}@${n.step ?? ""}`);
    previous = n.status;
  }
  assert.ok(expected.some((c) => c.startsWith("IN_PROGRESS>ISSUES_FOUND@")), `the rule fired: ${expected.join(" | ")}`);
  const timeline = page.getByTestId(`rule-timeline-${rid}`);
  await timeline.waitFor();
  await page.waitForFunction(([sel, want]) => document.querySelector(sel)?.getAttribute("data-changes") === want, [`[data-testid="rule-timeline-${rid}"]`, expected.join("|")] as const);
  const firing = expected.find((c) => c.startsWith("IN_PROGRESS>ISSUES_FOUND@"))!;
  const step = firing.split("@")[1];
  const text = await page.getByTestId(`rule-timeline-changes-${rid}`).innerText();
  assert.match(text, new RegExp(`IN_PROGRESS → ISSUES_FOUND at step ${step}`));
  // The strip: one segment per status held, the firing's colour after IN_PROGRESS's.
  const segments = await timeline.locator(".tl-seg").evaluateAll((els) => els.map((e) => e.className));
  assert.deepEqual(segments.slice(0, 2), ["tl-seg tl-in-progress", "tl-seg tl-issues-found"]);
  assert.equal(segments.length, expected.length);
  await timeline.scrollIntoViewIfNeeded();
  await page.screenshot({ path: path.join(ARTIFACTS, "23-rule-timeline.png") });
});

test("no script errors happened", () => {
  assert.deepEqual(pageErrors, []);
});
