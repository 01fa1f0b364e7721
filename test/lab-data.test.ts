/**
 * `npm run lab:data`: the CLI (compiled with the service, so the Docker image has it) downloads the
 * lab's LIBSVM Abalone file, here from a local HTTP server standing in for the LIBSVM site (tests
 * never reach the internet), and splits it 80/20 into <data>/lab/. Unreachable, it says which files
 * to copy where instead.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { FIXTURES } from "./support/fixtures.js";
import { freePort } from "./support/net.js";
import { PROJECT_ROOT } from "./support/service-process.js";

/** The CLI from its source (the test of `npm run lab:data` itself is that it runs this file compiled). */
function runLabData(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, ["--import", "tsx", path.join(PROJECT_ROOT, "src/cli/lab-data.ts"), ...args], {
      cwd: PROJECT_ROOT,
      env: { ...(process.env as Record<string, string>), ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    proc.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    proc.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    proc.once("close", (code) => resolve({ code, stdout, stderr }));
  });
}

const lines = (file: string) => readFileSync(file, "utf8").trim().split("\n");

test("npm run lab:data runs the compiled CLI, so it works where tsx is not installed (the Docker image)", () => {
  const pkg = JSON.parse(readFileSync(path.join(PROJECT_ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> };
  const tsconfig = JSON.parse(readFileSync(path.join(PROJECT_ROOT, "tsconfig.json"), "utf8")) as { compilerOptions: { outDir: string; rootDir: string }; include: string[] };
  const emitted = path.join(tsconfig.compilerOptions.outDir, path.relative(tsconfig.compilerOptions.rootDir, "src/cli/lab-data.ts")).replace(/\.ts$/, ".js");
  assert.equal(pkg.scripts["lab:data"], `node ${emitted}`);
  assert.ok(tsconfig.include.includes("src/**/*.ts"), "tsc compiles src/cli");
});

test("the data set is downloaded and split 80/20 into <data>/lab/abalone.{train,validation}.libsvm", async () => {
  // The LIBSVM site's file: one data set, all rows (here the fixture's rows).
  const rows = [...lines(path.join(FIXTURES, "data/abalone.train.libsvm")), ...lines(path.join(FIXTURES, "data/abalone.validation.libsvm"))];
  const site = http.createServer((req, res) => {
    if (req.url !== "/abalone") return void res.writeHead(404).end();
    res.writeHead(200, { "content-type": "text/plain" }).end(rows.join("\n") + "\n");
  });
  await new Promise<void>((resolve) => site.listen(0, "127.0.0.1", resolve));
  const dataDir = mkdtempSync(path.join(os.tmpdir(), "tg-lab-data-"));
  try {
    const url = `http://127.0.0.1:${(site.address() as AddressInfo).port}/abalone`;
    const run = await runLabData(["--url", url], { TRIALGRAPH_DATA_DIR: dataDir });
    assert.equal(run.code, 0, run.stderr);
    const train = lines(path.join(dataDir, "lab/abalone.train.libsvm"));
    const validation = lines(path.join(dataDir, "lab/abalone.validation.libsvm"));
    assert.equal(train.length, Math.floor(rows.length * 0.8));
    assert.equal(train.length + validation.length, rows.length);
    assert.deepEqual([...train, ...validation].sort(), [...rows].sort(), "every row once");
    assert.match(run.stdout, new RegExp(`wrote ${train.length} training and ${validation.length} validation rows to ${path.join(dataDir, "lab")}`));
    assert.match(run.stdout, /inputs lab\/abalone\.train\.libsvm \(train\) and lab\/abalone\.validation\.libsvm \(validation\)/);
  } finally {
    site.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test("offline: exit code 1 and one line saying that any LIBSVM train/validation pair copied to the exact file names works", async () => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), "tg-lab-data-"));
  try {
    const url = `http://127.0.0.1:${await freePort()}/abalone`; // nothing listens there
    const run = await runLabData(["--data-dir", dataDir, "--url", url]);
    assert.equal(run.code, 1);
    const lab = path.join(dataDir, "lab");
    assert.equal(
      run.stderr,
      `lab:data: could not download ${url} (ECONNREFUSED): this needs internet access. Offline, any LIBSVM train/validation pair works: ` +
        `copy them to ${path.join(lab, "abalone.train.libsvm")} and ${path.join(lab, "abalone.validation.libsvm")}\n`,
    );
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
