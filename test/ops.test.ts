import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { promises as fs } from "node:fs";
import os from "node:os";
import pino from "pino";
import { createClient } from "graphql-ws";
import WebSocket from "ws";
import { loadConfig } from "../src/config.js";
import { startServer, type RunningServer } from "../src/server.js";
import { ABALONE_TRIAL, loadGolden } from "./support/fixtures.js";
import * as s3server from "./support/s3-server.js";
import { privateRedis, type PrivateRedis } from "./support/redis-server.js";
import { gqlAt } from "./support/service-process.js";

const golden = loadGolden();
const logLines: any[] = [];
let server: RunningServer;
let s3: s3server.S3TestServer;
let redis: PrivateRedis;
let base: string;

before(async () => {
  s3 = await s3server.start();
  const client = s3server.createTestClient(s3);
  await s3server.createBucket(client, "ops-bucket");
  await s3server.uploadDirectory(client, "ops-bucket", "abalone", ABALONE_TRIAL);
  client.destroy();
  redis = await privateRedis();
  await redis.start();
  // The S3 client takes credentials from the SDK's chain: s3rver's fixed account.
  process.env.AWS_ACCESS_KEY_ID = s3server.S3RVER_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = s3server.S3RVER_CREDENTIALS.secretAccessKey;
  const dataDir = await fs.mkdtemp(`${os.tmpdir()}/trialgraph-ops-`);
  const config = loadConfig({
    PORT: "0", LOG_LEVEL: "info", TRIALGRAPH_DATA_DIR: dataDir,
    TRIALGRAPH_S3_ENDPOINT: s3.endpoint, TRIALGRAPH_REDIS_URL: redis.url, TRIALGRAPH_REDIS_PREFIX: `ops-${process.pid}`,
  });
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split("\n")) if (line.trim()) logLines.push(JSON.parse(line));
      done();
    },
  });
  server = await startServer(config, pino({ level: "info" }, sink));
  base = server.url.replace(/\/graphql$/, "");
});
after(async () => {
  await server.close();
  await s3.close();
  await redis.kill();
});

async function scrape(): Promise<string> {
  const res = await fetch(`${base}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /text\/plain/);
  return res.text();
}

function sample(text: string, name: string, labels: Record<string, string> = {}): number | null {
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z0-9_:]+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries((m[2] ?? "").split(",").filter(Boolean).map((kv) => {
      const [k, v] = kv.split("=");
      return [k, JSON.parse(v)];
    }));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return null;
}

test("/healthz is liveness; /readyz checks the database, S3 and Redis and reports each", async () => {
  // The event bus connects to Redis in the background after start.
  let health: any;
  for (let i = 0; i < 50; i++) {
    const h = await fetch(`${base}/healthz`);
    assert.equal(h.status, 200);
    health = await h.json();
    if (health.events.redis === "up") break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.deepEqual({ ...health, instance: typeof health.instance }, { status: "ok", events: { redis: "up" }, database: { engine: "sqlite", reachable: true }, instance: "string" });
  const r = await fetch(`${base}/readyz`);
  const body = (await r.json()) as any;
  assert.equal(r.status, 200, JSON.stringify(body));
  assert.equal(body.ready, true);
  assert.deepEqual(Object.keys(body.checks).sort(), ["database", "redis", "s3"]);
  assert.ok(s3.requests({ operation: "ListBuckets" }).length + s3.requestLog.filter((e) => e.path === "/" && e.method === "GET").length > 0, "S3 was asked");
});

test("X-Request-Id is honoured and echoed, invalid ones replaced, and logs carry it", async () => {
  const r = await gqlAt(server.url, `query Ping { trials { path } }`, undefined, { "x-request-id": "req-abc.123" });
  assert.equal(r.headers.get("x-request-id"), "req-abc.123");
  const line = logLines.find((l) => l.reqId === "req-abc.123" && l.msg === "request");
  assert.ok(line, "an access log line with the request id");
  assert.equal(line.status, 200);
  assert.equal(line.path, "/graphql");
  assert.equal(typeof line.ms, "number");
  const bad = await gqlAt(server.url, `{ trials { path } }`, undefined, { "x-request-id": "has spaces and {braces}" });
  assert.match(bad.headers.get("x-request-id") ?? "", /^[0-9a-f-]{36}$/);
  const fresh = await gqlAt(server.url, `{ trials { path } }`);
  assert.match(fresh.headers.get("x-request-id") ?? "", /^[0-9a-f-]{36}$/);
  assert.notEqual(fresh.headers.get("x-request-id"), bad.headers.get("x-request-id"));
});

test("metrics: requests and latency by operation name, S3 GETs and bytes, value cache hit ratio", async () => {
  s3.resetLog();
  const before = await scrape();
  const gets0 = sample(before, "trialgraph_s3_requests_total", { operation: "GetObject", outcome: "ok" }) ?? 0;
  const bytes0 = sample(before, "trialgraph_s3_get_bytes_total") ?? 0;
  const q = `query RmseAt20($p: String!) { trial(path: $p) { tensor(name: "train-rmse") { value(step: 20) { scalar } } } }`;
  const r1 = await gqlAt(server.url, q, { p: "s3://ops-bucket/abalone" });
  assert.equal(r1.body.data.trial.tensor.value.scalar, (golden.tensors["train-rmse"].values["20"].value as number[])[0]);
  const r2 = await gqlAt(server.url, q, { p: "s3://ops-bucket/abalone" });
  assert.deepEqual(r2.body, r1.body);
  const text = await scrape();
  assert.equal(sample(text, "trialgraph_graphql_requests_total", { operation: "RmseAt20", type: "query", outcome: "ok" }), 2);
  assert.equal(sample(text, "trialgraph_graphql_request_duration_seconds_count", { operation: "RmseAt20", type: "query" }), 2);
  const proxyGets = s3.requests({ operation: "GetObject" }).filter((e) => e.status === 200 || e.status === 206);
  assert.ok(proxyGets.length > 0);
  assert.equal((sample(text, "trialgraph_s3_requests_total", { operation: "GetObject", outcome: "ok" }) ?? 0) - gets0, proxyGets.length, "one count per GET the S3 server saw");
  assert.ok((sample(text, "trialgraph_s3_get_bytes_total") ?? 0) - bytes0 > 0);
  const hits = sample(text, "trialgraph_value_cache_hits")!;
  const misses = sample(text, "trialgraph_value_cache_misses")!;
  assert.ok(hits >= 1, "the second identical query is a cache hit");
  assert.ok(misses >= 1);
  assert.equal(sample(text, "trialgraph_value_cache_hit_ratio"), hits / (hits + misses));
  assert.equal(sample(text, "trialgraph_running_jobs", { backend: "LOCAL" }), 0);
  assert.ok(sample(text, "trialgraph_process_resident_memory_bytes")! > 0, "process metrics");
});

test("metrics: active subscriptions go up while subscribed and back down after", async () => {
  const client = createClient({ url: server.url.replace(/^http/, "ws"), webSocketImpl: WebSocket, retryAttempts: 0 });
  try {
    let stop!: () => void;
    await new Promise<void>((resolve, reject) => {
      // Every job's status changes: stays open until stopped.
      stop = client.subscribe({ query: `subscription Watch { trainingJobStatusChanged { previousStatus } }` }, { next: () => {}, error: reject, complete: () => {} });
      client.on("connected", () => setTimeout(resolve, 200));
    });
    let text = await scrape();
    assert.equal(sample(text, "trialgraph_active_subscriptions"), 1);
    assert.equal(sample(text, "trialgraph_ws_connections"), 1);
    stop();
    await new Promise((r) => setTimeout(r, 200));
    text = await scrape();
    assert.equal(sample(text, "trialgraph_active_subscriptions"), 0);
    assert.equal(sample(text, "trialgraph_graphql_requests_total", { operation: "Watch", type: "subscription", outcome: "ok" }), 1);
  } finally {
    await client.dispose();
  }
});

test("metrics: limit rejections are counted by limit", async () => {
  const r = await gqlAt(server.url, `{ trial(path: "trials/example") { tensors { values(fromStep: 0, toStep: 900000000) { data } } } }`);
  assert.equal(r.status, 400);
  assert.equal(r.body.errors[0].extensions.code, "LIMIT_EXCEEDED");
  assert.equal(sample(await scrape(), "trialgraph_limit_rejections_total", { code: "LIMIT_EXCEEDED", limit: "cost" }), 1);
});
