/**
 * Hostile traffic against a real service process for a bounded time (HOSTILE_SECONDS, default 60):
 * a few clients at once send a seeded mix of everything issue 12 found — catastrophic regexes over
 * the perf trial's names, alias bombs, links out of the data directory, FIFOs, crafted records and
 * index entries, foreign origins and rebound host names over HTTP and WebSocket, subscription
 * floods, evaluateRules with webhooks and looping or hoarding custom rules, wrong APQ hashes,
 * malformed bodies — mixed with ordinary reads. The service must answer every one without a 5xx or
 * an INTERNAL_SERVER_ERROR, never die, never call the webhook, and still answer ordinary queries;
 * the test prints its peak RSS.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { promises as fs, readFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import WebSocket from "ws";
import { startServiceProcess, type ServiceProcess } from "./support/service-process.js";
import { installPerfTrial } from "./support/fixtures.js";
import { TrialWriter } from "../src/trials/trial-writer.js";
import { ProtoWriter } from "../src/format/protobuf.js";
import { frameRecord } from "../src/format/tfrecord.js";

const SECONDS = Number(process.env.HOSTILE_SECONDS ?? 60);
const CLIENTS = 4;
const SEED = Number(process.env.HOSTILE_SEED ?? 20261204);

let service: ServiceProcess;
let dataDir: string;
let rulesDir: string;
let outside: string;
let hook: http.Server;
let hookHits = 0;
let hookUrl: string;

function prng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function writeTrial(dir: string): Promise<void> {
  const w = new TrialWriter(dir);
  for (let step = 0; step < 4; step++) await w.writeStep(step, [{ name: "train-rmse", dtype: "float64", shape: [1], values: [step] }]);
  await w.writeCollections([{ name: "metrics", includeRegex: ["^(a+)+$", "(x(?=x))", "rmse"] }]);
  await w.end();
}

before(async () => {
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), "trialgraph-hostile-"));
  rulesDir = await fs.mkdtemp(path.join(os.tmpdir(), "trialgraph-hostile-rules-"));
  outside = await fs.mkdtemp(path.join(os.tmpdir(), "trialgraph-hostile-outside-"));
  installPerfTrial(dataDir);
  const trials = path.join(dataDir, "trials");
  await writeTrial(path.join(outside, "planted"));
  await fs.symlink(path.join(outside, "planted"), path.join(trials, "linked"));
  await writeTrial(path.join(trials, "events-linked"));
  await fs.rm(path.join(trials, "events-linked/events"), { recursive: true });
  await fs.symlink("/etc", path.join(trials, "events-linked/events"));
  await writeTrial(path.join(trials, "fifo"));
  const ev = "events/000000000001/000000000001_worker_0.tfevents";
  await fs.rm(path.join(trials, "fifo", ev));
  execFileSync("mkfifo", [path.join(trials, "fifo", ev)]);
  // A 69-byte record declaring 16000×16000, an index entry claiming 3 GB, a garbage index file.
  await writeTrial(path.join(trials, "crafted"));
  const shape = new ProtoWriter().message(2, new ProtoWriter().varint(1, 16000)).message(2, new ProtoWriter().varint(1, 16000));
  const bomb = frameRecord(new ProtoWriter().double(1, 0).message(5, new ProtoWriter().message(1,
    new ProtoWriter().string(1, "train-rmse").message(8, new ProtoWriter().varint(1, 2).message(2, shape).double(6, 1.5)))).finish());
  await fs.writeFile(path.join(trials, "crafted", ev), bomb);
  const ix = (s: number) => path.join(trials, "crafted", `index/000000000/00000000000${s}_worker_0.json`);
  const index1 = JSON.parse(await fs.readFile(ix(1), "utf8"));
  index1.tensor_payload[0].length = bomb.length;
  await fs.writeFile(ix(1), JSON.stringify(index1));
  const index2 = JSON.parse(await fs.readFile(ix(2), "utf8"));
  index2.tensor_payload[0].length = 3_000_000_000;
  await fs.writeFile(ix(2), JSON.stringify(index2));
  await fs.writeFile(ix(3), "\u0000garbage{");
  await fs.writeFile(path.join(rulesDir, "loops.js"), `module.exports = { name: "Loops", parameters: [], requiredTensors() { return []; }, invokeAtStep() { for (;;) {} } };`);
  await fs.writeFile(path.join(rulesDir, "hoards.js"), `module.exports = { name: "Hoards", parameters: [], create() { const k = []; return {
    requiredTensors() { return []; }, invokeAtStep() { for (let i = 0; i < 40; i++) k.push(new Array(100000).fill(i)); return false; } }; } };`);
  hook = http.createServer((req, res) => {
    hookHits++;
    req.resume();
    res.end();
  });
  await new Promise<void>((r) => hook.listen(0, "127.0.0.1", r));
  hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`;
  service = await startServiceProcess({
    // The benchmark (npm run bench -- hostile) measures the compiled service, as `npm start` runs it.
    preferDist: process.env.HOSTILE_PREFER_DIST === "1",
    env: {
      TRIALGRAPH_DATA_DIR: dataDir,
      TRIALGRAPH_RULES_DIR: rulesDir,
      TRIALGRAPH_RULE_STEP_TIMEOUT_MS: "300",
      TRIALGRAPH_RULE_MEMORY_MB: "32",
      TRIALGRAPH_RATE_LIMIT_PER_MINUTE: "0",
      LOG_LEVEL: "warn",
    },
  });
});

after(async () => {
  const code = await service?.stop();
  await new Promise((r) => hook?.close(r));
  for (const d of [dataDir, rulesDir, outside]) if (d) await fs.rm(d, { recursive: true, force: true });
  assert.equal(code, 0, "the service shut down cleanly at the end");
});

interface Outcome { status: number; text: string }

/**
 * One request on a fresh connection (no keep-alive: a reused socket the server just closed would be
 * the client's race, not the service's failure).
 */
function request(headers: Record<string, string>, body: string, signal?: AbortSignal): Promise<Outcome> {
  const port = Number(new URL(service.url).port);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method: "POST", path: "/graphql", agent: false, signal, headers: { "content-type": "application/json", ...headers } }, (res) => {
      let text = "";
      res.on("data", (c) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode!, text }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

const post = (body: unknown, headers: Record<string, string> = {}, signal?: AbortSignal) =>
  request(headers, typeof body === "string" ? body : JSON.stringify(body), signal);

const raw = (headers: Record<string, string>) => request(headers, JSON.stringify({ query: "{ builtinRules { name } }" }));

function wsUpgrade(headers: Record<string, string>): Promise<Outcome> {
  return new Promise((resolve) => {
    const ws = new WebSocket(service.wsUrl, "graphql-transport-ws", { headers });
    ws.once("open", () => { ws.close(); resolve({ status: 101, text: "" }); });
    ws.once("unexpected-response", (_q, res) => { res.resume(); resolve({ status: res.statusCode!, text: "" }); });
    ws.once("error", () => resolve({ status: 0, text: "" }));
  });
}

/** Opens one socket, subscribes 130 times (the cap is 100), checks the socket still answers a query. */
function subscriptionFlood(): Promise<Outcome> {
  return new Promise((resolve) => {
    const ws = new WebSocket(service.wsUrl, "graphql-transport-ws");
    const texts: string[] = [];
    let limited = 0;
    ws.once("open", () => ws.send(JSON.stringify({ type: "connection_init" })));
    ws.on("message", (m) => {
      const msg = JSON.parse(String(m));
      if (msg.type === "connection_ack") {
        for (let i = 0; i < 130; i++) ws.send(JSON.stringify({ id: `s${i}`, type: "subscribe", payload: { query: `subscription { trainingJobStatusChanged { previousStatus } }` } }));
      } else if (msg.type === "error") {
        texts.push(JSON.stringify(msg));
        if (msg.payload?.[0]?.extensions?.code === "LIMIT_EXCEEDED") limited++;
        // Over the cap: the socket stays usable once one of its subscriptions has ended (asynchronously:
        // a subscription still being set up ends when its setup does), so the query is retried until then.
        const query = () => ws.send(JSON.stringify({ id: "s-done", type: "subscribe", payload: { query: "{ __typename }" } }));
        if (limited === 30) {
          ws.send(JSON.stringify({ id: "s0", type: "complete" }));
          query();
        } else if (msg.id === "s-done") setTimeout(query, 100);
      } else if (msg.type === "next" && msg.id === "s-done") {
        texts.push(JSON.stringify(msg));
      } else if (msg.type === "complete" && msg.id === "s-done") {
        ws.close();
        resolve({ status: limited >= 30 ? 200 : 599, text: texts.join("\n") });
      }
    });
    ws.once("error", () => resolve({ status: 0, text: "socket error" }));
    setTimeout(() => { ws.terminate(); resolve({ status: 598, text: "flood: no answer within 20 s" }); }, 20_000).unref();
  });
}

const EVIL_REGEXES = ["^(a+)+$", "(x+x+)+y", "^(([a-z])+.)+[A-Z]([a-z])+$", "(.*a){25}", "(\\w+\\s?)*$", "^(feature_importance/)+(.+)+(.+)+x$"];
const ALIASES = (n: number) => `{ trial(path: "trials/perf") { ${Array.from({ length: n }, (_, i) => `a${i}: tensors { values { data } }`).join(" ")} } }`;

type Case = { name: string; run: () => Promise<Outcome>; expect?: RegExp };

const CASES: Case[] = [
  { name: "catastrophic regex over perf names", run: () => post({ query: `query($r: String) { trial(path: "trials/perf") { tensorNames(regex: $r) tensors(regex: $r) { name } } }`, variables: { r: EVIL_REGEXES[Math.floor(rand() * EVIL_REGEXES.length)] } }) },
  { name: "lookahead / backreference", run: () => post({ query: `{ trial(path: "trials/perf") { a: tensorNames(regex: "(a)\\\\1") b: tensorNames(regex: "^(?!feature).*(?!x)") } }` }), expect: /BAD_USER_INPUT/ },
  { name: "alias bomb", run: () => post({ query: ALIASES(12 + Math.floor(rand() * 9)) }), expect: /LIMIT_EXCEEDED/ },
  { name: "link out of the data directory", run: () => post({ query: `{ a: trial(path: "trials/linked") { steps } b: trial(path: "trials/events-linked") { tensor(name: "train-rmse") { value(step: 1) { data } } } }` }), expect: /FORBIDDEN_PATH/ },
  { name: "FIFO event file", run: () => post({ query: `{ trial(path: "trials/fifo") { tensor(name: "train-rmse") { value(step: 1) { data } } } }` }), expect: /FORBIDDEN_PATH/ },
  { name: "crafted records and index entries", run: () => post({ query: `{ trial(path: "trials/crafted") { tensor(name: "train-rmse") { a: value(step: 1) { size } b: value(step: 2) { size } c: value(step: 3) { size } series { values } } } }` }), expect: /LIMIT_EXCEEDED|CORRUPT_RECORD/ },
  { name: "foreign origin", run: () => raw({ origin: "http://evil.example" }), expect: /FORBIDDEN/ },
  { name: "rebound host", run: () => raw({ host: "evil.example" }), expect: /FORBIDDEN/ },
  { name: "foreign WebSocket", run: () => wsUpgrade({ origin: "http://evil.example" }) },
  { name: "subscription flood", run: () => subscriptionFlood() },
  { name: "evaluateRules with webhooks and custom rules", run: () => post({ query: `query($r: [RuleInput!]!) { evaluateRules(path: "trials/perf", rules: $r) { status statusDetails } }`, variables: { r: [
    { builtin: "Loops" }, { builtin: "Hoards" },
    { builtin: "AllZero", parameters: { tensor_regex: "^(a+)+$|gradient", webhook_url: hookUrl, action_json: JSON.stringify({ name: "StopTraining", training_job_prefix: "" }) } },
  ] } }) },
  { name: "APQ wrong hash", run: () => post({ query: "{ builtinRules { name } }", extensions: { persistedQuery: { version: 1, sha256Hash: "ab".repeat(32) } } }), expect: /PERSISTED_QUERY_HASH_MISMATCH/ },
  { name: "malformed body", run: () => post(`{"query": "{ trial(path: \\"${"x".repeat(50)}`) },
  { name: "fragment bomb", run: () => {
    // Each fragment spreads the one before twice: 16-40 levels, 2^16-2^40 selections in a few lines.
    const levels = 16 + Math.floor(rand() * 25);
    let fragments = "fragment F0 on Trial { path steps }";
    for (let i = 1; i <= levels; i++) fragments += ` fragment F${i} on Trial { ...F${i - 1} ...F${i - 1} }`;
    return post({ query: `{ trial(path: "trials/perf") { ...F${levels} } } ${fragments}` });
  }, expect: /LIMIT_EXCEEDED|GRAPHQL_VALIDATION_FAILED/ },
  { name: "deep query", run: () => post({ query: `{ trial(path: "trials/perf") { ${"collection(name: \"metrics\") { tensors { trial: name ".repeat(3)} } } } } } } } }` }) },
  { name: "client that leaves mid-request", run: async () => {
    const ac = new AbortController();
    const p = post({ query: `{ trial(path: "trials/perf") { tensors { values { step data } } } }` }, {}, ac.signal).catch(() => ({ status: 200, text: "" }));
    setTimeout(() => ac.abort(), 50 + Math.floor(rand() * 200));
    return p;
  } },
  { name: "ordinary series read", run: () => post({ query: `{ trial(path: "trials/perf") { tensors(regex: "rmse$") { name series(maxPoints: 50) { steps values } } } }` }), expect: /"series"/ },
];

let rand = prng(SEED);
/** HOSTILE_CASES (a regular expression over case names) narrows the mix, to find what costs memory. */
const PICKED = process.env.HOSTILE_CASES ? CASES.filter((c) => new RegExp(process.env.HOSTILE_CASES!).test(c.name)) : CASES;

function rssKb(pid: number, field: "VmRSS" | "VmHWM"): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) : 0;
}

test(`hostile traffic for ${SECONDS} s: no 5xx, no INTERNAL_SERVER_ERROR, no death, no webhook call`, { timeout: (SECONDS + 120) * 1000 }, async () => {
  rand = prng(SEED);
  const counts = new Map<string, number>();
  const failures: string[] = [];
  let samples = 0;
  let maxSampled = 0;
  const sampler = setInterval(() => {
    try {
      maxSampled = Math.max(maxSampled, rssKb(service.pid, "VmRSS"));
      samples++;
    } catch {
      // the process is gone: the checks below say so
    }
  }, 250);
  const deadline = Date.now() + SECONDS * 1000;
  await Promise.all(Array.from({ length: CLIENTS }, async () => {
    while (Date.now() < deadline) {
      const c = PICKED[Math.floor(rand() * PICKED.length)];
      let o: Outcome;
      try {
        o = await c.run();
      } catch (e) {
        failures.push(`${c.name}: the request failed: ${(e as Error).message} ${String((e as { cause?: unknown }).cause ?? "")}`);
        if (service.proc.exitCode !== null || service.proc.signalCode !== null) return;
        continue;
      }
      counts.set(c.name, (counts.get(c.name) ?? 0) + 1);
      if (o.status >= 500 || o.status === 0) failures.push(`${c.name}: HTTP ${o.status}: ${o.text.slice(0, 300)}`);
      if (/INTERNAL_SERVER_ERROR|stacktrace/.test(o.text)) failures.push(`${c.name}: ${o.text.slice(0, 400)}`);
      if (c.expect && o.status !== 101 && !c.expect.test(o.text)) failures.push(`${c.name}: expected ${c.expect}: ${o.text.slice(0, 300)}`);
      if (failures.length > 20) return;
    }
  }));
  clearInterval(sampler);
  assert.equal(service.proc.exitCode, null, `the service is alive (stderr: ${service.stderr.slice(-2000)})`);
  assert.equal(service.proc.signalCode, null);
  const peakKb = rssKb(service.pid, "VmHWM");
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  console.log(`# hostile traffic: ${total} requests in ${SECONDS} s by ${CLIENTS} clients; peak RSS ${(peakKb / 1024).toFixed(0)} MB (VmHWM), highest sampled ${(maxSampled / 1024).toFixed(0)} MB over ${samples} samples`);
  console.log(`# per case: ${[...counts].map(([k, v]) => `${k}=${v}`).join(", ")}`);
  assert.deepEqual(failures, []);
  assert.equal(hookHits, 0, "no query made the service call a webhook");
  // Still serving ordinary reads, and nothing unexpected was logged.
  const ok = await post({ query: `{ trial(path: "trials/perf") { steps tensor(name: "train-rmse") { value(step: 499) { scalar } } } }` });
  assert.equal(ok.status, 200, ok.text);
  assert.doesNotMatch(ok.text, /"errors"/);
  const unexpected = service.logs.filter((l) => l.level >= 50);
  assert.deepEqual(unexpected.map((l) => l.msg), [], JSON.stringify(unexpected).slice(0, 1000));
  assert.ok(PICKED.every((c) => (counts.get(c.name) ?? 0) > 0 || SECONDS < 30), "every kind of hostile request was sent");
});
