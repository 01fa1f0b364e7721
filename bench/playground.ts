/**
 * The playground in Chromium against the compiled service on loopback: time from navigation until
 * the editor shows the default query ("editor ready") and until that query's result is shown
 * ("first result"); cold (a fresh browser profile: nothing cached) and cached (the same profile,
 * after two loads: assets from the HTTP cache, scripts from V8's code cache). Median of BENCH_RUNS.
 * "First result" includes Playwright's click (it waits for the button to be stable). On a shared
 * machine the wall times grow with the load; the main thread's CPU time until ready much less so.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium, type Page } from "playwright-core";
import { PROJECT_ROOT, startServiceProcess } from "../test/support/service-process.js";

type Rows = Record<string, string | number>[];

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

interface Load {
  editorMs: number;
  resultMs: number;
  /** CPU time of the page's main thread until the editor was ready: roughly the wall time on an idle machine. */
  cpuMs: number;
  bytes: number;
}

async function load(page: Page, url: string): Promise<Load> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Performance.enable");
  const threadTime = async () => (await cdp.send("Performance.getMetrics")).metrics.find((m) => m.name === "ThreadTime")?.value ?? NaN;
  const started = Date.now();
  await page.goto(url, { waitUntil: "commit" });
  const atCommit = await threadTime(); // the renderer may be reused across loads: count from here
  await page.locator(".graphiql-query-editor .view-lines").filter({ hasText: "trials/example" }).waitFor();
  const editorMs = Date.now() - started;
  const cpuMs = Math.round(1000 * ((await threadTime()) - atCommit));
  await cdp.detach();
  await page.locator(".graphiql-execute-button").click();
  await page.locator(".graphiql-response .view-lines").filter({ hasText: /"steps":/ }).waitFor();
  const resultMs = Date.now() - started;
  // Bytes over the wire (compressed; 0 for what came from the cache).
  const bytes = await page.evaluate(() =>
    [...performance.getEntriesByType("navigation"), ...performance.getEntriesByType("resource")]
      .reduce((sum, e) => sum + ((e as PerformanceResourceTiming).transferSize ?? 0), 0));
  return { editorMs, resultMs, cpuMs, bytes };
}

export async function runPlaygroundBench(runs: number): Promise<Rows> {
  execFileSync(process.execPath, [path.join(PROJECT_ROOT, "node_modules/vite/bin/vite.js"), "build", "--config", "web/vite.config.mts", "--logLevel", "warn"], {
    cwd: PROJECT_ROOT,
    stdio: "inherit",
  });
  const dataDir = mkdtempSync(path.join(os.tmpdir(), "tg-bench-playground-"));
  const service = await startServiceProcess({
    preferDist: true,
    env: { NODE_ENV: "production", TRIALGRAPH_DATA_DIR: dataDir, TRIALGRAPH_SAGEMAKER_ENABLED: "false", LOG_LEVEL: "warn" },
  });
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"] });
  try {
    const cold: Load[] = [];
    const cached: Load[] = [];
    for (let i = 0; i < runs; i++) {
      const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
      const page = await context.newPage();
      cold.push(await load(page, service.url));
      await load(page, service.url); // the second load makes the scripts "hot" for V8's code cache
      cached.push(await load(page, service.url));
      await context.close();
    }
    const row = (name: string, xs: typeof cold) => ({
      case: name,
      "editor ready (ms)": median(xs.map((x) => x.editorMs)),
      "first result (ms)": median(xs.map((x) => x.resultMs)),
      "main-thread CPU until ready (ms)": median(xs.map((x) => x.cpuMs)),
      "transferred (KB)": Math.round(median(xs.map((x) => x.bytes)) / 1024),
      runs: xs.length,
    });
    return [row("cold (empty cache)", cold), row("cached", cached), { case: "load average (1 min)", "editor ready (ms)": os.loadavg()[0].toFixed(2) }];
  } finally {
    await browser.close();
    await service.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
