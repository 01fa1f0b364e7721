/**
 * What the browser tests share: the dashboard built with vite into dist/web (the server serves it at
 * "/"), and a headless Chromium (the Debian package, /usr/bin/chromium) in a throwaway profile.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { PROJECT_ROOT } from "./service-process.js";

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** Builds the dashboard (web/vite.config.mts → dist/web). */
export function buildDashboard(): void {
  execFileSync(process.execPath, [path.join(PROJECT_ROOT, "node_modules/vite/bin/vite.js"), "build", "--config", "web/vite.config.mts", "--logLevel", "warn"], {
    cwd: PROJECT_ROOT,
    stdio: "inherit",
    env: { ...process.env, VITE_CONFIG_NATIVE_IGNORE_WARNING: "true" },
  });
  assert.ok(existsSync(path.join(PROJECT_ROOT, "dist/web/index.html")), "vite build produced dist/web/index.html");
}

export interface Browser {
  context: BrowserContext;
  page: Page;
  /** Closes Chromium and removes its profile. */
  close(): Promise<void>;
}

/** Headless Chromium with one page; nothing leaves the machine (no background networking, sync or updates). */
export async function launchBrowser(viewport = { width: 1360, height: 900 }): Promise<Browser> {
  const profileDir = mkdtempSync(path.join(os.tmpdir(), "trialgraph-chromium-"));
  const context = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync"],
    viewport,
  });
  context.setDefaultTimeout(20_000);
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    context,
    page,
    async close() {
      await context.close().catch(() => undefined);
      rmSync(profileDir, { recursive: true, force: true });
    },
  };
}
