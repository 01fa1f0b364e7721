/// <reference lib="dom" />
/**
 * The GraphiQL playground at GET /graphql, over HTTP and in real Chromium against the real service:
 * a small revalidated page with external same-origin scripts only, content-hashed assets sent
 * precompressed (Brotli, gzip) and cached for a year, a query and its result, a malformed query shown
 * as the service's GraphQL error (no JavaScript stack), and a subscription over graphql-ws.
 *
 * Needs the Debian package `chromium` (/usr/bin/chromium) and the built web UI (built here when the
 * web sources are newer than dist/web). Load times are reported as test diagnostics, not asserted
 * beyond a sanity bound (benchmarks measure speed; this proves function).
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import zlib from "node:zlib";
import { chromium, type Browser, type Page } from "playwright-core";
import { PROJECT_ROOT, startServiceProcess, type ServiceProcess } from "./support/service-process.js";
import { TrialWriter } from "../src/trials/trial-writer.js";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const WEB = path.join(PROJECT_ROOT, "web");
const PAGE = path.join(PROJECT_ROOT, "dist/web/playground.html");

let service: ServiceProcess;
let dataDir = "";
let browser: Browser;
const pageErrors: string[] = [];

/** Newest modification time under a folder (web sources, the Vite config and its plugins). */
function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) newest = Math.max(newest, statSync(path.join(e.parentPath, e.name)).mtimeMs);
  }
  return newest;
}

/** A GET with exactly the headers given (fetch would add and undo its own Accept-Encoding). */
function rawGet(url: string, headers: Record<string, string>): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    http.get(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    }).on("error", reject);
  });
}

before(async () => {
  if (!existsSync(PAGE) || statSync(PAGE).mtimeMs < newestMtime(WEB)) {
    execFileSync(process.execPath, [path.join(PROJECT_ROOT, "node_modules/vite/bin/vite.js"), "build", "--config", "web/vite.config.mts", "--logLevel", "warn"], {
      cwd: PROJECT_ROOT,
      stdio: "inherit",
    });
  }
  dataDir = mkdtempSync(path.join(os.tmpdir(), "trialgraph-playground-"));
  service = await startServiceProcess({
    env: { TRIALGRAPH_DATA_DIR: dataDir, TRIALGRAPH_POLL_INTERVAL_MS: "500", TRIALGRAPH_SAGEMAKER_ENABLED: "false", TRIALGRAPH_API_TOKENS: "", TRIALGRAPH_REDIS_URL: "" },
  });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  await browser?.close().catch(() => undefined);
  await service?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

/** The playground page's assets: every script, module preload and stylesheet it names. */
function assetUrls(html: string): string[] {
  return [...html.matchAll(/<(?:script|link)\b[^>]*\b(?:src|href)="([^"]+)"/g)].map((m) => m[1]).filter((u) => !u.startsWith("data:"));
}

test("GET /graphql from a browser: a small page, revalidated by ETag, with external same-origin scripts only", async () => {
  const res = await rawGet(service.url, { accept: "text/html,application/xhtml+xml,*/*;q=0.8", "accept-encoding": "br, gzip" });
  assert.equal(res.status, 200);
  assert.match(String(res.headers["content-type"]), /^text\/html/);
  assert.equal(res.headers["cache-control"], "no-cache");
  assert.match(String(res.headers.vary), /Accept\b/);
  assert.ok(res.headers.etag, "an ETag to revalidate with");
  const html = res.body.toString("utf8");
  assert.ok(res.body.length < 4096, `the page itself is small (${res.body.length} bytes)`);
  assert.match(html, /<title>trialgraph playground<\/title>/);
  // A strict CSP (script-src 'self') must be enough: no inline script, nothing from another origin.
  for (const tag of html.match(/<script\b[^>]*>/g) ?? []) assert.match(tag, /\bsrc="\/assets\//, `external same-origin script: ${tag}`);
  assert.doesNotMatch(html, /<script\b[^>]*>[^<]+<\/script>/, "no inline script body");
  const assets = assetUrls(html);
  assert.ok(assets.length >= 3, JSON.stringify(assets));
  for (const u of assets) assert.match(u, /^\/assets\/[\w.-]+-[\w-]{8}\.(js|css)$/, `content-hashed, same origin: ${u}`);

  const again = await rawGet(service.url, { accept: "text/html", "if-none-match": String(res.headers.etag) });
  assert.equal(again.status, 304, "an unchanged page is revalidated, not resent");

  // Every other client still gets GraphQL at the same URL.
  const json = await fetch(service.url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query: "{ __typename }" }) });
  assert.deepEqual(await json.json(), { data: { __typename: "Query" } });
});

test("the playground's assets are precompressed (Brotli, gzip), cached for a year, and the same bytes in every encoding", async (t) => {
  const html = (await rawGet(service.url, { accept: "text/html" })).body.toString("utf8");
  let identityBytes = 0;
  let brotliBytes = 0;
  let compressibleBytes = 0;
  for (const asset of assetUrls(html)) {
    const url = service.base + asset;
    const plain = await rawGet(url, { "accept-encoding": "identity" });
    assert.equal(plain.status, 200, asset);
    assert.equal(plain.headers["content-encoding"], undefined, asset);
    assert.equal(plain.headers["cache-control"], "public, max-age=31536000, immutable", asset);
    assert.match(String(plain.headers["content-type"]), asset.endsWith(".css") ? /^text\/css/ : /^(text|application)\/javascript/, asset);
    identityBytes += plain.body.length;
    const br = await rawGet(url, { "accept-encoding": "gzip, deflate, br" });
    const gz = await rawGet(url, { "accept-encoding": "gzip" });
    if (plain.body.length < 1024) continue; // too small to be worth a compressed copy
    assert.equal(br.headers["content-encoding"], "br", asset);
    assert.equal(gz.headers["content-encoding"], "gzip", asset);
    for (const r of [br, gz]) {
      assert.match(String(r.headers.vary), /Accept-Encoding/, asset);
      assert.equal(r.headers["cache-control"], "public, max-age=31536000, immutable", asset);
      assert.match(String(r.headers["content-type"]), /^(text\/css|text\/javascript|application\/javascript)/, asset);
    }
    assert.ok(br.body.length < gz.body.length && gz.body.length < plain.body.length, `${asset}: ${br.body.length} (br) and ${gz.body.length} (gzip) of ${plain.body.length} bytes`);
    assert.ok(zlib.brotliDecompressSync(br.body).equals(plain.body), `${asset}: Brotli copy decodes to the file`);
    assert.ok(zlib.gunzipSync(gz.body).equals(plain.body), `${asset}: gzip copy decodes to the file`);
    brotliBytes += br.body.length;
    compressibleBytes += plain.body.length;
  }
  assert.ok(brotliBytes > 0 && brotliBytes < compressibleBytes / 2, `Brotli sends ${brotliBytes} of ${compressibleBytes} bytes`);
  // The compressed copies are served under the original names only.
  const hidden = await rawGet(`${service.base}${assetUrls(html).find((u) => u.endsWith(".js"))}.br`, {});
  assert.equal(hidden.status, 404);
  t.diagnostic(`playground page assets: ${identityBytes} bytes, ${brotliBytes} bytes with Brotli`);
});

async function openPlayground(page: Page): Promise<{ editorMs: number; resultMs: number }> {
  const started = Date.now();
  await page.goto(service.url, { waitUntil: "commit" });
  await page.locator(".graphiql-query-editor .view-lines").filter({ hasText: "trials/example" }).waitFor();
  const editorMs = Date.now() - started;
  await page.locator(".graphiql-execute-button").click();
  await page.locator(".graphiql-response .view-lines").filter({ hasText: /"steps":/ }).waitFor();
  return { editorMs, resultMs: Date.now() - started };
}

/**
 * Replaces the query editor's text and runs it the way a user would: typing (Monaco may close
 * brackets as they are typed), then Ctrl+Enter (its completion list may cover the run button).
 */
async function typeAndRun(page: Page, text: string): Promise<void> {
  await page.locator(".graphiql-query-editor .monaco-editor").click();
  await page.keyboard.press("ControlOrMeta+A");
  await page.keyboard.press("Delete");
  await page.keyboard.type(text);
  await page.keyboard.press("ControlOrMeta+Enter");
}

const responseText = (page: Page) => page.locator(".graphiql-response .view-lines").innerText();

test("in Chromium: the editor loads, the default query runs, and a malformed query shows the service's GraphQL error, not a stack trace", async (t) => {
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
  try {
    const page = await context.newPage();
    page.on("pageerror", (err) => pageErrors.push(String(err)));
    // The service's Content-Security-Policy (same-origin scripts only) must not block anything.
    const blocked: string[] = [];
    page.on("console", (m) => {
      if (/Content Security Policy/i.test(m.text())) blocked.push(m.text());
    });
    const elsewhere: string[] = [];
    page.on("request", (req) => {
      if (!req.url().startsWith(`${service.base}/`) && !/^(data|blob):/.test(req.url())) elsewhere.push(req.url());
    });
    const cold = await openPlayground(page);
    const response = await responseText(page);
    assert.match(response, /"data":\s*\{\s*"trial":\s*\{\s*"steps":\s*\[\s*0,/, response.slice(0, 300));
    const warm = await openPlayground(page); // assets now come from the browser's cache
    t.diagnostic(`playground cold: editor ${cold.editorMs} ms, first result ${cold.resultMs} ms; cached: editor ${warm.editorMs} ms, result ${warm.resultMs} ms`);
    // A sanity bound only: the figures are reported, and this machine is shared.
    assert.ok(warm.resultMs < 15_000, `cached playground answered within 15 s (${warm.resultMs} ms)`);

    await typeAndRun(page, "{ trial(path: ");
    // Monaco shows spaces as no-break spaces: \s matches both.
    const error = page.locator(".graphiql-response .view-lines").filter({ hasText: /Syntax\sError/ });
    await error.waitFor();
    const shown = await error.innerText();
    assert.match(shown, /"errors":/);
    assert.match(shown, /"code":\s*"GRAPHQL_PARSE_FAILED"/);
    assert.doesNotMatch(shown, /\bat\s+\S+\s+\(?\S+:\d+:\d+\)?|\.js:\d+|stack/i, `no JavaScript stack in the response pane:\n${shown}`);
    assert.deepEqual(pageErrors, []);
    assert.deepEqual(elsewhere, [], "offline: every request goes to the service itself (no CDN)");
    assert.deepEqual(blocked, [], "nothing refused by the page's Content-Security-Policy");
  } finally {
    await context.close();
  }
});

test("in Chromium: a subscription runs over graphql-ws and shows the trial's new steps as they are written", async () => {
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
  const writer = new TrialWriter(path.join(dataDir, "trials/live"));
  try {
    await writer.writeCollections([{ name: "metrics", includeRegex: ["^train-rmse$"] }]);
    await writer.writeStep(0, [{ name: "train-rmse", dtype: "float64", shape: [1], values: [3] }]);
    const page = await context.newPage();
    let subscribes = 0;
    page.on("websocket", (ws) => ws.on("framesent", (f) => {
      if (String(f.payload).includes('"type":"subscribe"')) subscribes++;
    }));
    await page.goto(service.url);
    await page.locator(".graphiql-query-editor .view-lines").filter({ hasText: "trials/example" }).waitFor();
    await typeAndRun(page, 'subscription { trialStepsAdded(path: "trials/live") { steps lastCompleteStep trainingEnded ');
    // The first event has the steps the trial has; then each new step, until the trial ends.
    const pane = page.locator(".graphiql-response .view-lines");
    let step = 1;
    while (!/"trialStepsAdded":/.test(await pane.innerText())) {
      assert.ok(step < 120, "no trialStepsAdded event within a minute of writing steps");
      await writer.writeStep(step, [{ name: "train-rmse", dtype: "float64", shape: [1], values: [1 / step] }]);
      step++;
      await pane.filter({ hasText: /"trialStepsAdded":/ }).waitFor({ timeout: 500 }).catch(() => undefined);
    }
    await writer.writeStep(step, [{ name: "train-rmse", dtype: "float64", shape: [1], values: [0] }]);
    await writer.end();
    const last = pane.filter({ hasText: /"trainingEnded":\s*true/ });
    await last.waitFor();
    assert.match(await last.innerText(), new RegExp(`"lastCompleteStep":\\s*${step}\\b`));
    assert.ok(subscribes >= 1, "the subscription went over the WebSocket");
    // Training ended: the service completes the subscription (the button turns back to Execute).
    await page.locator('.graphiql-execute-button[aria-label^="Execute"]').waitFor();

    // A subscription the service refuses ends with its GraphQL error, shown as such.
    await typeAndRun(page, 'subscription { trialStepsAdded(path: "trials/nope") { steps ');
    const refused = page.locator(".graphiql-response .view-lines").filter({ hasText: /NOT_FOUND/ });
    await refused.waitFor();
    assert.match(await refused.innerText(), /"errors":[\s\S]*no\strial\sat\strials\/nope/);
    assert.deepEqual(pageErrors, []);
  } finally {
    await context.close();
  }
});
