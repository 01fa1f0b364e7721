/**
 * Starting the real service process when something is wrong: what must be fixed first ends the start
 * with one line on stderr (no stack trace) and a non-zero exit code, before anything is written;
 * what only degrades the service (Redis away, libxgboost unusable) is one warning line at start.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { spawn } from "node:child_process";
import { PROJECT_ROOT, runServiceUntilExit, serviceCommand, startServiceProcess, gqlAt } from "./support/service-process.js";
import { freePort } from "./support/net.js";
import { listen, redactUrl, StartupError } from "../src/startup.js";

/** A JavaScript stack frame, or an error class printed as Node prints uncaught errors. */
const STACK = /^\s+at\s|\bError:|EADDRINUSE/m;
/** Variables of the test's environment that would change what the service does at start. */
const NEUTRAL = { TRIALGRAPH_REDIS_URL: "", TRIALGRAPH_API_TOKENS: "", TRIALGRAPH_XGBOOST_LIB: "", TRIALGRAPH_SAGEMAKER_ENABLED: "false", LOG_FORMAT: "" };

function tempDir(): string {
  return mkdtempSync(path.join(os.tmpdir(), "trialgraph-startup-"));
}

test("a taken port: one line naming the port, the host and PORT=…, exit code 1, no stack trace, nothing written", async () => {
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
  const port = (blocker.address() as net.AddressInfo).port;
  const dataDir = tempDir();
  try {
    const run = await runServiceUntilExit({ ...NEUTRAL, PORT: String(port), TRIALGRAPH_DATA_DIR: dataDir });
    const output = (run.stdout + run.stderr).trim();
    assert.equal(run.code, 1, output);
    assert.equal(output.split("\n").length, 1, `one line:\n${output}`);
    assert.equal(run.stdout, "", "nothing on stdout (no log lines before the refusal)");
    assert.match(run.stderr, new RegExp(`^trialgraph: port ${port} on 127\\.0\\.0\\.1 is already in use: .*PORT=<port>`));
    assert.doesNotMatch(output, STACK);
    assert.deepEqual(readdirSync(dataDir), [], "the example trial is not written when the start is refused");
  } finally {
    blocker.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test("the service's own listen maps a port taken at the last moment to the same StartupError", async () => {
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
  const port = (blocker.address() as net.AddressInfo).port;
  const server = http.createServer();
  try {
    await assert.rejects(listen(server, port, "127.0.0.1"), (e: unknown) => {
      assert.ok(e instanceof StartupError);
      assert.equal(e.exitCode, 1);
      assert.match(e.message, new RegExp(`^port ${port} on 127\\.0\\.0\\.1 is already in use`));
      return true;
    });
    assert.equal(server.listening, false);
    await listen(server, 0, "127.0.0.1");
    assert.equal(server.listening, true, "the same server listens once given a free port");
  } finally {
    server.close();
    blocker.close();
  }
});

test("a data folder that cannot be written: one line naming it and TRIALGRAPH_DATA_DIR, exit code 1", async () => {
  const dir = tempDir();
  try {
    // A file where a folder should be: refused even for root (permissions alone are not).
    writeFileSync(path.join(dir, "not-a-folder"), "");
    const dataDir = path.join(dir, "not-a-folder", "data");
    const run = await runServiceUntilExit({ ...NEUTRAL, PORT: "0", TRIALGRAPH_DATA_DIR: dataDir });
    const output = (run.stdout + run.stderr).trim();
    assert.equal(run.code, 1, output);
    assert.equal(output.split("\n").length, 1, `one line:\n${output}`);
    assert.equal(run.stderr.trim(), `trialgraph: data folder ${dataDir} is not writable (ENOTDIR: a part of the path is a file): set TRIALGRAPH_DATA_DIR to a folder this user can write`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("invalid configuration goes through the same printer: the bad variables, exit code 2, no stack trace", async () => {
  const run = await runServiceUntilExit({ ...NEUTRAL, PORT: "99999", LOG_FORMAT: "xml" });
  assert.equal(run.code, 2);
  assert.equal(run.stdout, "");
  assert.match(run.stderr, /^trialgraph: invalid configuration:\n {2}- PORT="99999": expected an integer from 0 to 65535\n {2}- LOG_FORMAT="xml": expected json or pretty\n$/);
  assert.doesNotMatch(run.stderr, STACK);
});

test("Redis unreachable at start: the service starts degraded with one warning naming Redis, the password hidden", async () => {
  const port = await freePort(); // nothing listens there
  const secret = "s3cret-redis-password";
  const dataDir = tempDir();
  const service = await startServiceProcess({ env: { ...NEUTRAL, TRIALGRAPH_DATA_DIR: dataDir, TRIALGRAPH_REDIS_URL: `redis://:${secret}@127.0.0.1:${port}/0` } });
  try {
    const named = `redis://:***@127.0.0.1:${port}/0`;
    let warnings: any[] = [];
    for (let i = 0; i < 50 && warnings.length === 0; i++) {
      warnings = service.logs.filter((l) => l.level === 40 && /redis/i.test(l.msg));
      if (!warnings.length) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    assert.match(warnings[0].msg, new RegExp(`^redis ${named.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")} is unreachable \\(connect ECONNREFUSED 127\\.0\\.0\\.1:${port}\\): started without it`));
    const ready = await fetch(`${service.base}/readyz`);
    assert.equal(ready.status, 503, "readiness reports the missing Redis");
    const { body } = await gqlAt(service.url, `{ trial(path: "trials/example") { steps } }`);
    assert.ok(body.data.trial.steps.length > 0, "queries are answered meanwhile");
    assert.doesNotMatch(JSON.stringify(service.logs) + service.stderr, new RegExp(secret), "the password never reaches the logs");
  } finally {
    assert.equal(await service.stop(), 0);
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test("TRIALGRAPH_XGBOOST_LIB pointing nowhere: one warning at start that local jobs will fail, naming the path once", async () => {
  const dataDir = tempDir();
  const lib = path.join(dataDir, "nowhere", "libxgboost.so");
  mkdirSync(path.join(dataDir, "lab"));
  writeFileSync(path.join(dataDir, "lab", "train.libsvm"), "1 1:0.5\n0 1:0.1\n");
  const service = await startServiceProcess({ env: { ...NEUTRAL, TRIALGRAPH_DATA_DIR: dataDir, TRIALGRAPH_XGBOOST_LIB: lib } });
  try {
    const warnings = service.logs.filter((l) => l.level === 40 && /xgboost/i.test(l.msg));
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    assert.equal(
      warnings[0].msg,
      `local jobs will fail: TRIALGRAPH_XGBOOST_LIB=${lib} cannot be loaded (cannot open shared object file: No such file or directory): ` +
        "point it at libxgboost.so, or unset it to use the system's (Debian/Ubuntu: `apt-get install libxgboost0`)",
    );
    assert.equal(warnings[0].msg.split(lib).length - 1, 1, "the path once");
    // The same reason, once, when a job is started anyway.
    const { body } = await gqlAt(service.url, `mutation($d: String!) { startTrainingJob(input: { backend: LOCAL, baseJobName: "nolib",
      algorithm: { builtin: "xgboost", version: "1.7-1" }, hyperparameters: { num_round: "2" },
      inputs: [{ name: "train", uri: $d, contentType: "libsvm" }] }) { name } }`, { d: "lab/train.libsvm" });
    assert.equal(body.errors?.[0]?.extensions?.code, "XGBOOST_UNAVAILABLE", JSON.stringify(body));
    assert.equal(JSON.stringify(body.errors[0]).split(lib).length - 1, 1, `the path once: ${JSON.stringify(body.errors[0])}`);
  } finally {
    assert.equal(await service.stop(), 0);
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test("LOG_FORMAT=pretty: one readable line per entry, and the start line names the dashboard and the playground", async () => {
  const dataDir = tempDir();
  const env: Record<string, string> = { ...(process.env as Record<string, string>), ...NEUTRAL, HOST: "127.0.0.1", PORT: "0", LOG_LEVEL: "info", LOG_FORMAT: "pretty", TRIALGRAPH_DATA_DIR: dataDir };
  delete env.NODE_TEST_CONTEXT;
  delete env.NODE_OPTIONS;
  const proc = spawn(process.execPath, serviceCommand(), { cwd: PROJECT_ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  try {
    const start = await new Promise<string>((resolve, reject) => {
      proc.stdout!.on("data", (c: Buffer) => {
        stdout += c.toString();
        const line = stdout.split("\n").find((l) => l.includes("trialgraph listening"));
        if (line) resolve(line);
      });
      proc.once("exit", (code) => reject(new Error(`exited (${code}) before listening:\n${stdout}`)));
    });
    // Not a terminal here, so no colours; on one it is the same line in colour.
    assert.match(start, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: trialgraph listening: dashboard http:\/\/127\.0\.0\.1:(\d+)\/ · GraphQL and playground http:\/\/127\.0\.0\.1:\1\/graphql /);
    for (const line of stdout.trim().split("\n")) assert.match(line, /^\[\d\d:\d\d:\d\d\.\d{3}\] (INFO|WARN): /, `one readable line per entry: ${line}`);
  } finally {
    const exited = new Promise((resolve) => proc.once("close", resolve));
    proc.kill("SIGTERM");
    await exited;
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test("redactUrl hides a URL's password and keeps the rest", () => {
  assert.equal(redactUrl("redis://:pw@host:6379/2"), "redis://:***@host:6379/2");
  assert.equal(redactUrl("postgres://me:pw@db.example:5432/tg"), "postgres://me:***@db.example:5432/tg");
  assert.equal(redactUrl("redis://host:6379"), "redis://host:6379");
  assert.equal(redactUrl("not a url"), "(an unparsable URL)");
});

test("a fresh service answers a query on the example trial and collects its heap before it listens, and logs it", async () => {
  const dataDir = tempDir();
  const service = await startServiceProcess({ env: { ...NEUTRAL, TRIALGRAPH_DATA_DIR: dataDir } });
  try {
    const warmUp = service.logs.findIndex((l) => l.msg === "start-up warm-up: answered a query on the example trial and collected the heap");
    const listening = service.logs.findIndex((l) => String(l.msg).startsWith("trialgraph listening"));
    assert.ok(warmUp >= 0 && warmUp < listening, `the warm-up is logged before the listening line: ${JSON.stringify(service.logs.map((l) => l.msg))}`);
    const entry = service.logs[warmUp];
    assert.equal(entry.level, 30);
    assert.match(entry.query, /trial\(path: "trials\/example"\)/);
    assert.ok(Number.isFinite(entry.answerMs) && Number.isFinite(entry.gcMs), JSON.stringify(entry));
    assert.equal(service.logs.filter((l) => l.level >= 40 && /warm-up/.test(l.msg)).length, 0);
    // What it answered is what a client gets: the same series as a query over HTTP.
    const { body } = await gqlAt(service.url, `{ trial(path: "trials/example") { tensor(name: "train-rmse") { series { steps } } } }`);
    assert.equal(body.data.trial.tensor.series.steps.length, 100, JSON.stringify(body).slice(0, 300));
  } finally {
    assert.equal(await service.stop(), 0);
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test("an example trial that cannot be read: the warm-up fails with one warning and the service starts", async () => {
  const dataDir = tempDir();
  // A file where the example trial would be: left alone at start, and not a trial.
  mkdirSync(path.join(dataDir, "trials"));
  writeFileSync(path.join(dataDir, "trials", "example"), "not a trial\n");
  const service = await startServiceProcess({ env: { ...NEUTRAL, TRIALGRAPH_DATA_DIR: dataDir } });
  try {
    const warnings = service.logs.filter((l) => l.level === 40 && /warm-up/.test(l.msg));
    assert.equal(warnings.length, 1, JSON.stringify(service.logs));
    assert.equal(warnings[0].msg, "start-up warm-up query failed (the service runs, its first request is slower)");
    assert.equal(typeof warnings[0].error, "string");
    const health = await fetch(`${service.base}/healthz`);
    assert.equal(health.status, 200);
  } finally {
    assert.equal(await service.stop(), 0);
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test("a service that never reads S3 does not load the S3 SDK: not at start, not answering a local trial", async () => {
  const dataDir = tempDir();
  const script = `
    const { loadConfig } = require("./src/config.ts");
    const { startServer } = require("./src/server.ts");
    const pino = require("pino");
    (async () => {
      const config = loadConfig({ PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "silent", TRIALGRAPH_DATA_DIR: process.env.TRIALGRAPH_DATA_DIR, TRIALGRAPH_READY_CHECK_S3: "false" });
      const server = await startServer(config, pino({ level: "silent" }));
      const res = await fetch(server.url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query: '{ trial(path: "trials/example") { steps } }' }) });
      const steps = (await res.json()).data.trial.steps.length;
      const metrics = (await fetch(server.url.replace(/graphql$/, "metrics"))).status;
      const loaded = Object.keys(require.cache).filter((k) => k.includes("/node_modules/@aws-sdk/client-s3/")).length;
      await server.close();
      console.log(JSON.stringify({ steps, metrics, loaded }));
      process.exit(0);
    })();`;
  try {
    const env: Record<string, string> = { ...(process.env as Record<string, string>), ...NEUTRAL, TRIALGRAPH_DATA_DIR: dataDir };
    delete env.NODE_TEST_CONTEXT;
    delete env.NODE_OPTIONS;
    const proc = spawn(process.execPath, ["--import", "tsx", "-e", script], { cwd: PROJECT_ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    proc.stdout!.on("data", (c: Buffer) => (stdout += c.toString()));
    proc.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise((resolve) => proc.once("close", resolve));
    assert.equal(code, 0, stderr);
    const out = JSON.parse(stdout.trim().split("\n").pop()!);
    assert.deepEqual(out, { steps: 100, metrics: 200, loaded: 0 });
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
