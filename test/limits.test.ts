import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { buildSchema, parse } from "graphql";
import { createClient, type Client } from "graphql-ws";
import WebSocket from "ws";
import { loadConfig } from "../src/config.js";
import { ASSUMED, checkAgainstTrials, checkOperation, RateLimiter, type TensorsFilter } from "../src/graphql/limits.js";
import type { TrialSize } from "../src/trials/trial.js";
import { TrialWriter } from "../src/trials/trial-writer.js";
import { startTestServer, type TestServer } from "./support/server.js";
import { installPerfTrial } from "./support/fixtures.js";
import { promises as fs, readFileSync } from "node:fs";
import { ProtoWriter } from "../src/format/protobuf.js";
import { frameRecord } from "../src/format/tfrecord.js";
import { serializeIndexFile } from "../src/format/index-file.js";
import { eventFileKey, indexFileKey } from "../src/format/locations.js";

const LIMITED = {
  TRIALGRAPH_MAX_DEPTH: "4",
  TRIALGRAPH_MAX_ALIASES: "3",
  TRIALGRAPH_MAX_TOKENS: "200",
  TRIALGRAPH_MAX_COST: "20000",
  TRIALGRAPH_MAX_BODY_BYTES: "2000",
  TRIALGRAPH_MAX_VALUES: "1000",
  TRIALGRAPH_WS_MAX_PAYLOAD_BYTES: "1000",
  TRIALGRAPH_WS_INIT_TIMEOUT_MS: "300",
};

let limited: TestServer;
let generous: TestServer;

/** 2 steps of a 600-element tensor plus 1000 steps of two scalars. */
async function writeWideTrial(dataDir: string): Promise<void> {
  const w = new TrialWriter(path.join(dataDir, "trials/wide"));
  await w.writeCollections([{ name: "metrics", includeRegex: ["^loss"] }, { name: "weights", includeRegex: ["^w$"] }]);
  for (let step = 0; step < 1000; step++) {
    const tensors = [
      { name: "loss_a", dtype: "float32" as const, shape: [1], values: [1 / (step + 1)] },
      { name: "loss_b", dtype: "float32" as const, shape: [1], values: [2 / (step + 1)] },
    ];
    if (step < 200) tensors.push({ name: "w", dtype: "float32" as const, shape: [600], values: Array.from({ length: 600 }, (_, i) => (i % 7) - step) } as any);
    await w.writeStep(step, tensors);
  }
  await w.end();
}

before(async () => {
  limited = await startTestServer(LIMITED);
  generous = await startTestServer();
  await writeWideTrial(limited.dataDir);
  await writeWideTrial(generous.dataDir);
});
after(async () => {
  await limited.close();
  await generous.close();
});

function assertLimit(r: { status: number; body: any }, limit: string): void {
  assert.equal(r.status, 400, JSON.stringify(r.body));
  assert.equal(r.body.errors[0].extensions.code, "LIMIT_EXCEEDED");
  assert.equal(r.body.errors[0].extensions.limit, limit);
  assert.equal(r.body.data, undefined, "nothing ran");
}

test("depth: at the limit runs, one deeper is LIMIT_EXCEEDED (HTTP 400)", async () => {
  const ok = await limited.gql(`{ trial(path: "trials/example") { tensor(name: "train-rmse") { series(maxPoints: 10) { steps } } } }`);
  assert.equal(ok.status, 200);
  assert.equal(ok.body.data.trial.tensor.series.steps.length, 10);
  const viaFragment = await limited.gql(`{ trial(path: "trials/example") { ...T } } fragment T on Trial { tensor(name: "x") { value(step: 0) { nonFinite { index } } } }`);
  assertLimit(viaFragment, "depth");
  assert.match(viaFragment.body.errors[0].message, /5 levels deep; the limit is 4/);
});

test("aliases: more than the limit per operation is LIMIT_EXCEEDED", async () => {
  const ok = await limited.gql(`{ a: trials { path } b: trials { path } c: trials { path } }`);
  assert.equal(ok.status, 200);
  assertLimit(await limited.gql(`{ a: trials { path } b: trials { path } c: trials { path } d: trials { path } }`), "aliases");
});

test("tokens: a document over maxTokens is refused before it is parsed", async () => {
  const r = await limited.gql(`{ trials { ${"id ".repeat(250)} } }`);
  assert.equal(r.status, 400);
  assert.equal(r.body.errors[0].extensions.code, "LIMIT_EXCEEDED");
  assert.equal(r.body.errors[0].extensions.limit, "tokens");
});

test("cost: lists are weighted by the steps or tensors they ask for", async () => {
  const narrow = await limited.gql(`{ trial(path: "trials/wide") { tensor(name: "loss_a") { values(fromStep: 0, toStep: 9) { step scalar } } } }`);
  assert.equal(narrow.status, 200);
  assert.deepEqual(narrow.body.data.trial.tensor.values.map((v: any) => v.step), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const wide = await limited.gql(`{ trial(path: "trials/wide") { tensor(name: "loss_a") { values(fromStep: 0, toStep: 99999) { step scalar } } } }`);
  assertLimit(wide, "cost");
  // 1 + 100000 steps * (step + scalar) for values, plus trial and tensor.
  assert.equal(wide.body.errors[0].extensions.value, 1 + 1 + 1 + 100_000 * 2);
  const everyTensor = await limited.gql(`{ trial(path: "trials/wide") { tensors { series { steps values } } } }`);
  assertLimit(everyTensor, "cost");
  const sampled = await limited.gql(`{ trial(path: "trials/wide") { tensors(collection: "metrics") { series(maxPoints: 50) { steps values } } } }`);
  assert.equal(sampled.status, 200, JSON.stringify(sampled.body.errors));
  assert.equal(sampled.body.data.trial.tensors.length, 2);
});

test("values returned per request: over maxValues is LIMIT_EXCEEDED from the value budget", async () => {
  const one = await limited.gql(`{ trial(path: "trials/wide") { tensor(name: "w") { value(step: 3) { size } } } }`);
  assert.equal(one.body.data.trial.tensor.value.size, 600);
  const two = await limited.gql(`{ trial(path: "trials/wide") { tensor(name: "w") { values(fromStep: 0, toStep: 1) { size } } } }`);
  assert.equal(two.body.errors[0].extensions.code, "LIMIT_EXCEEDED");
  assert.match(two.body.errors[0].message, /more than 1000 tensor elements/);
});

test("request body over the limit: JSON 413, never an HTML page", async () => {
  const res = await fetch(limited.url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query: `{ trials { path } }`, variables: { pad: "x".repeat(3000) } }),
  });
  assert.equal(res.status, 413);
  assert.match(res.headers.get("content-type") ?? "", /application\/json/);
  const text = await res.text();
  assert.doesNotMatch(text, /<html|<pre|at .*\.js/i);
  const body = JSON.parse(text);
  assert.equal(body.errors[0].extensions.code, "LIMIT_EXCEEDED");
  assert.match(body.errors[0].message, /larger than 2000 bytes/);
});

test("the defaults serve the dashboard and bulk analysis: a whole trial in one request", async () => {
  const r = await generous.gql(`{ trial(path: "trials/wide") {
    scalars: tensors(collection: "metrics") { name series { steps values } values { step scalar } }
    w: tensor(name: "w") { values { step data } }
  } }`);
  assert.equal(r.status, 200);
  assert.equal(r.body.errors, undefined, JSON.stringify(r.body.errors));
  const t = r.body.data.trial;
  assert.equal(t.scalars.length, 2);
  for (const s of t.scalars) {
    assert.equal(s.series.steps.length, 1000);
    assert.equal(s.values.length, 1000);
  }
  assert.equal(t.w.values.length, 200);
  assert.equal(t.w.values.reduce((n: number, v: any) => n + v.data.length, 0), 120_000);
  const intro = await generous.gql(`query IntrospectionQuery { __schema { types { name fields { name type { name kind ofType { name kind ofType { name kind ofType { name kind ofType { name kind } } } } } } } } }`);
  assert.equal(intro.status, 200, "deep introspection is not counted as depth");
});

test("default limits statically admit a few million values and a broad dashboard query", () => {
  const config = loadConfig({});
  const schema = buildSchema(`type Query { trial(path: String!): Trial trials: [Trial!]! }
    type Trial { path: String! tensors(regex: String, collection: String): [Tensor!]! tensor(name: String!): Tensor }
    type Tensor { name: String! values(fromStep: Int, toStep: Int): [TensorValue!]! series(fromStep: Int, toStep: Int, maxPoints: Int): Series! value(step: Int!): TensorValue }
    type TensorValue { step: Int! data: [Float] scalar: Float }
    type Series { steps: [Int!]! values: [Float]! }`);
  const caller = { name: "x", role: "reader" as const };
  const bulk = checkOperation({ schema, document: parse(`{ trial(path: "p") { tensors { name values(fromStep: 0, toStep: 19999) { step data } series { steps values } } } }`), limits: config.limits, caller });
  assert.ok(bulk.cost <= config.limits.maxCost, `cost ${bulk.cost}`);
  assert.equal(bulk.cost, 1 + 1 + ASSUMED.tensors * (1 + (1 + 20_000 * 2) + (1 + ASSUMED.steps * 2)));
  assert.ok(config.limits.maxValues >= 5_000_000, "a few million values per request");
  assert.ok(config.introspection);
});

test("rate limit: a token bucket per caller, RATE_LIMITED with HTTP 429", async () => {
  let now = 0;
  const limiter = new RateLimiter(60, () => now);
  for (let i = 0; i < 60; i++) assert.equal(limiter.take("a"), 0);
  assert.equal(limiter.take("a"), 1, "empty: one token a second");
  assert.equal(limiter.take("b"), 0, "buckets are per caller");
  now += 1000;
  assert.equal(limiter.take("a"), 0);
  assert.ok(limiter.take("a") > 0);

  const tokenA = "token-a-0123456789abcdef";
  const tokenB = "token-b-0123456789abcdef";
  const s = await startTestServer({ TRIALGRAPH_RATE_LIMIT_PER_MINUTE: "5", TRIALGRAPH_API_TOKENS: `a:reader:${tokenA},b:reader:${tokenB}` });
  try {
    const q = `{ trials { path } }`;
    for (let i = 0; i < 5; i++) assert.equal((await s.gql(q, undefined, { authorization: `Bearer ${tokenA}` })).status, 200);
    const r = await s.gql(q, undefined, { authorization: `Bearer ${tokenA}` });
    assert.equal(r.status, 429);
    assert.equal(r.body.errors[0].extensions.code, "RATE_LIMITED");
    assert.ok(r.body.errors[0].extensions.retryAfterSeconds >= 1);
    assert.equal((await s.gql(q, undefined, { authorization: `Bearer ${tokenB}` })).status, 200, "another token has its own bucket");
    const ws = createClient({ url: s.wsUrl, webSocketImpl: WebSocket, retryAttempts: 0, connectionParams: { authorization: `Bearer ${tokenA}` } });
    try {
      const res = await run(ws, q);
      assert.equal(res.errors[0].extensions.code, "RATE_LIMITED", "the same bucket over WebSocket");
    } finally {
      await ws.dispose();
    }
  } finally {
    await s.close();
  }
});

function run(client: Client, query: string, variables?: Record<string, unknown>): Promise<any> {
  return new Promise((resolve) => {
    let result: any;
    client.subscribe({ query, variables }, { next: (v) => (result = v), error: (e) => resolve({ errors: Array.isArray(e) ? e : [e] }), complete: () => resolve(result) });
  });
}

test("WebSocket: the same depth, alias, token and cost limits apply to every operation", async () => {
  const client = createClient({ url: limited.wsUrl, webSocketImpl: WebSocket, retryAttempts: 0 });
  try {
    const ok = await run(client, `{ trial(path: "trials/example") { tensor(name: "train-rmse") { series(maxPoints: 10) { steps } } } }`);
    assert.equal(ok.data.trial.tensor.series.steps.length, 10);
    const cases: [string, string][] = [
      [`{ trial(path: "trials/example") { tensor(name: "x") { value(step: 0) { nonFinite { index } } } } }`, "depth"],
      [`{ a: trials { path } b: trials { path } c: trials { path } d: trials { path } }`, "aliases"],
      [`{ trials { ${"id ".repeat(250)} } }`, "tokens"],
      [`{ trial(path: "trials/wide") { tensor(name: "loss_a") { values(fromStep: 0, toStep: 99999) { step } } } }`, "cost"],
      [`subscription { trialStepsAdded(path: "trials/wide") { ...S } } fragment S on StepsAdded { a: path b: path c: path d: path }`, "aliases"],
    ];
    for (const [query, limit] of cases) {
      const r = await run(client, query);
      assert.equal(r.errors?.[0]?.extensions?.code, "LIMIT_EXCEEDED", query);
      assert.equal(r.errors[0].extensions.limit, limit, query);
    }
    const invalid = await run(client, `{ trial(path: 1) { nope } }`);
    assert.equal(invalid.errors[0].extensions.code, "GRAPHQL_VALIDATION_FAILED");
  } finally {
    await client.dispose();
  }
});

/** Fragments each spreading the one before twice: `levels` lines of text that expand to 2^levels selections. */
function fragmentBomb(levels: number): string {
  let fragments = "fragment F0 on Trial { path steps }";
  for (let i = 1; i <= levels; i++) fragments += `\nfragment F${i} on Trial { ...F${i - 1} ...F${i - 1} }`;
  return `{ trial(path: "trials/example") { ...F${levels} } }\n${fragments}`;
}

test("fragment bombs are refused by counting each fragment once, over HTTP and WebSocket, and the service keeps answering", async () => {
  // 2^20 selections (under Apollo's recursive-selection cap of 10 million) once took ~2 s of blocked
  // event loop in the limit walks; 2^60 would never finish if anything still expanded the fragments.
  const small = await generous.gql(fragmentBomb(3));
  assert.equal(small.status, 200, JSON.stringify(small.body));
  assert.equal(small.body.data.trial.path, "trials/example");
  const bomb = await generous.gql(fragmentBomb(20));
  assertLimit(bomb, "selections");
  assert.match(bomb.body.errors[0].message, /more than 10000 fields once its fragments are expanded/);
  const huge = await generous.gql(fragmentBomb(60));
  assert.equal(huge.status, 400);
  assert.equal(huge.body.errors[0].extensions.code, "GRAPHQL_VALIDATION_FAILED", "Apollo's own cap answers first over HTTP");
  const client = createClient({ url: generous.wsUrl, webSocketImpl: WebSocket, retryAttempts: 0 });
  try {
    for (const levels of [20, 60]) {
      const r = await run(client, fragmentBomb(levels));
      assert.equal(r.data, undefined);
      assert.equal(r.errors?.[0]?.extensions?.code, "LIMIT_EXCEEDED", JSON.stringify(r));
      assert.equal(r.errors[0].extensions.limit, "selections");
    }
    assert.equal((await run(client, fragmentBomb(3))).data.trial.path, "trials/example");
  } finally {
    await client.dispose();
  }
});

test("WebSocket: oversized frames close with 1009, a silent connection times out with 4408", async () => {
  const big = new WebSocket(limited.wsUrl, "graphql-transport-ws");
  await new Promise((r) => big.once("open", r));
  big.send(JSON.stringify({ type: "connection_init", payload: { pad: "x".repeat(2000) } }));
  const [bigCode] = await new Promise<[number, string]>((r) => big.once("close", (c, reason) => r([c, String(reason)])));
  assert.equal(bigCode, 1009);

  const silent = new WebSocket(limited.wsUrl, "graphql-transport-ws");
  const [code, reason] = await new Promise<[number, string]>((r) => silent.once("close", (c, why) => r([c, String(why)])));
  assert.equal(code, 4408);
  assert.match(reason, /initialisation timeout/i);
});

// ------------------------------------------------------------------------------------------------
// Memory: what an answer will really hold, on the 63 MB perf trial and on crafted files.
// ------------------------------------------------------------------------------------------------

const ALL_VALUES = (aliases: number) =>
  `{ trial(path: "trials/perf") { ${Array.from({ length: aliases }, (_, i) => `a${i}: tensors { values { data } }`).join(" ")} } }`;

test("alias bombs on the perf trial are LIMIT_EXCEEDED (memory) before the service takes gigabytes, three at once too", async () => {
  installPerfTrial(generous.dataDir);
  const before = process.memoryUsage().rss;
  const bombs = await Promise.all([20, 12, 20].map((n) => generous.gql(ALL_VALUES(n))));
  for (const r of bombs) {
    assert.equal(r.body.errors?.[0]?.extensions.code, "LIMIT_EXCEEDED", JSON.stringify(r.body).slice(0, 300));
    assert.equal(r.body.errors[0].extensions.limit, "memory");
    assert.match(r.body.errors[0].message, /more than 256 MB of values \(TRIALGRAPH_MAX_REQUEST_MB\)|no memory left/);
    assert.ok(r.body.errors.length < 50, "one refusal, not one error per tensor");
  }
  const grown = (process.memoryUsage().rss - before) / 2 ** 20;
  console.log(`# RSS growth answering three alias bombs at once: ${grown.toFixed(0)} MB`);
  // Still serving, and the pool was given back: one whole-trial read (281,275 values) fits the defaults.
  const whole = await generous.gql(`{ trial(path: "trials/perf") { tensors { values { step data } } } }`);
  assert.equal(whole.body.errors, undefined, JSON.stringify(whole.body.errors)?.slice(0, 300));
  assert.equal(whole.body.data.trial.tensors.reduce((n: number, t: any) => n + t.values.length, 0), 281_275);
});

test("a record declaring 16000×16000 in a few bytes is refused before it is allocated", async () => {
  const dir = path.join(generous.dataDir, "trials/bomb");
  const shape = new ProtoWriter().message(2, new ProtoWriter().varint(1, 16000)).message(2, new ProtoWriter().varint(1, 16000));
  // float64 with one double_val: TensorFlow's "fill the shape" form.
  const tensor = new ProtoWriter().varint(1, 2).message(2, shape).double(6, 1.5);
  const event = new ProtoWriter().double(1, 0).message(5, new ProtoWriter().message(1, new ProtoWriter().string(1, "bomb").message(8, tensor)));
  const record = frameRecord(event.finish());
  assert.ok(record.length < 80, `a ${record.length}-byte record`);
  await writeRawStep(dir, 0, [{ name: "bomb", bytes: record }]);
  const heap = process.memoryUsage().heapUsed;
  const r = await generous.gql(`{ trial(path: "trials/bomb") { tensor(name: "bomb") { value(step: 0) { size } } } }`);
  assert.equal(r.body.errors?.[0]?.extensions.code, "LIMIT_EXCEEDED", JSON.stringify(r.body));
  assert.ok(process.memoryUsage().heapUsed - heap < 512 * 2 ** 20, "2 GiB were never allocated");
  // A negative dimension is a corrupt record, not a crash.
  const negative = new ProtoWriter().varint(1, 2).message(2, new ProtoWriter().message(2, new ProtoWriter().varint(1, -5))).double(6, 1);
  const bad = frameRecord(new ProtoWriter().double(1, 0).message(5, new ProtoWriter().message(1, new ProtoWriter().string(1, "neg").message(8, negative))).finish());
  await writeRawStep(path.join(generous.dataDir, "trials/negative"), 0, [{ name: "neg", bytes: bad }]);
  const n = await generous.gql(`{ trial(path: "trials/negative") { tensor(name: "neg") { value(step: 0) { size } } } }`);
  assert.equal(n.body.errors?.[0]?.extensions.code, "CORRUPT_RECORD", JSON.stringify(n.body));
});

test("an index entry claiming 3,000,000,000 bytes never reaches fs.read: the process stays up, the record is corrupt", async () => {
  const w = new TrialWriter(path.join(generous.dataDir, "trials/claims"));
  await w.writeStep(0, [{ name: "loss", dtype: "float32", shape: [1], values: [1] }]);
  await w.end();
  const indexFile = path.join(generous.dataDir, "trials/claims/index/000000000/000000000000_worker_0.json");
  const index = JSON.parse(await fs.readFile(indexFile, "utf8"));
  index.tensor_payload[0].length = 3_000_000_000;
  await fs.writeFile(indexFile, JSON.stringify(index));
  const r = await generous.gql(`{ trial(path: "trials/claims") { tensor(name: "loss") { value(step: 0) { scalar } series { values } } } }`);
  const codes = (r.body.errors ?? []).map((e: any) => e.extensions.code);
  assert.ok(codes.length > 0 && codes.every((c: string) => c === "CORRUPT_RECORD"), JSON.stringify(r.body));
  assert.match(r.body.errors[0].message, /events\/000000000000\/000000000000_worker_0\.tfevents/);
  assert.equal((await fetch(generous.url.replace(/graphql$/, "healthz"))).status, 200);
});

/** Writes one step of raw, already framed records (and the index pointing at them), then the end marker. */
async function writeRawStep(dir: string, step: number, records: { name: string; bytes: Uint8Array }[]): Promise<void> {
  const eventFile = eventFileKey(step, "worker_0");
  await fs.mkdir(path.dirname(path.join(dir, eventFile)), { recursive: true });
  let at = 0;
  const tensors = records.map((r) => {
    const entry = { name: r.name, start: at, length: r.bytes.length };
    at += r.bytes.length;
    return entry;
  });
  await fs.writeFile(path.join(dir, eventFile), Buffer.concat(records.map((r) => r.bytes)));
  const indexFile = path.join(dir, indexFileKey(step, "worker_0"));
  await fs.mkdir(path.dirname(indexFile), { recursive: true });
  await fs.writeFile(indexFile, serializeIndexFile({ mode: "GLOBAL", modeStep: step, eventFile, tensors, shapes: [] }));
  await fs.writeFile(path.join(dir, "training_job_end.ts"), "");
}

test("WebSocket: subscriptions are capped per socket and per caller; over the cap that subscription is LIMIT_EXCEEDED and the socket stays usable", async () => {
  const capped = await startTestServer({ TRIALGRAPH_MAX_SUBSCRIPTIONS_PER_SOCKET: "3", TRIALGRAPH_MAX_SUBSCRIPTIONS_PER_CALLER: "5" });
  const clients: Client[] = [];
  const client = () => {
    const c = createClient({ url: capped.wsUrl, webSocketImpl: WebSocket, retryAttempts: 0, lazy: false, onNonLazyError: () => {} });
    clients.push(c);
    return c;
  };
  /** Subscribes; resolves "open" once it runs a while without error, or the error's code. */
  const subscribe = (c: Client) => {
    let stop: () => void = () => {};
    const outcome = new Promise<string>((resolve) => {
      // Every job's status changes: stays open (there are no jobs here).
      stop = c.subscribe({ query: `subscription { trainingJobStatusChanged { previousStatus } }` }, {
        next: () => {}, complete: () => resolve("complete"),
        error: (e: any) => resolve(Array.isArray(e) ? `${e[0].extensions?.code}:${e[0].extensions?.limit}` : String(e)),
      });
      setTimeout(() => resolve("open"), 400);
    });
    return { outcome, stop: () => stop() };
  };
  const query = (c: Client) => new Promise<any>((resolve) => {
    let result: any;
    c.subscribe({ query: "{ builtinRules { name } }" }, { next: (v) => (result = v), error: (e) => resolve({ errors: e }), complete: () => resolve(result) });
  });
  try {
    const a = client();
    const subs = [subscribe(a), subscribe(a), subscribe(a), subscribe(a)];
    assert.deepEqual(await Promise.all(subs.map((s) => s.outcome)), ["open", "open", "open", "LIMIT_EXCEEDED:subscriptions"]);
    const refused = await query(a);
    assert.equal(refused.errors[0].extensions.code, "LIMIT_EXCEEDED", "a query counts too while the socket is full");
    assert.match(refused.errors[0].message, /already runs 3 operations \(TRIALGRAPH_MAX_SUBSCRIPTIONS_PER_SOCKET\)/);
    // Another socket of the same caller: 2 more fit under the caller's cap of 5.
    const b = client();
    const more = [subscribe(b), subscribe(b), subscribe(b)];
    assert.deepEqual(await Promise.all(more.map((s) => s.outcome)), ["open", "open", "LIMIT_EXCEEDED:subscriptions"]);
    // Ending one frees its place: the first socket answers again.
    subs[0].stop();
    let answer: any;
    for (let i = 0; i < 50 && !answer?.data; i++) {
      answer = await query(a);
      if (!answer?.data) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(answer.data.builtinRules.length >= 12, JSON.stringify(answer));
  } finally {
    for (const c of clients) await c.dispose();
    await capped.close();
  }
});

test("checkAgainstTrials: whole-trial values reads of the trials an operation names, counted as execution merges them, refused over the request's memory", () => {
  // Room for the static cost of the queries below: this test is about what comes after it.
  const config = loadConfig({ TRIALGRAPH_MAX_COST: "1000000000" });
  const schema = buildSchema(readFileSync(path.join(__dirname, "../schema/schema.graphql"), "utf8"));
  const caller = { name: "x", role: "reader" as const };
  // 300,000 complete values: one whole read is estimated at 120 MB of the 256 MB a request may hold.
  const big: TrialSize = { tensors: 600, maxSteps: 500, completeValues: 300_000 };
  const small: TrialSize = { tensors: 3, maxSteps: 10, completeValues: 30 };
  const sizes: Record<string, TrialSize> = { "trials/big": big, "trials/small": small };
  // What the big trial's filters list: two rmse tensors, half of it in "weights"; "(" is a pattern the trial refuses.
  const listedBy: Record<string, TrialSize> = {
    rmse: { tensors: 2, maxSteps: 500, completeValues: 1_000 },
    ".": big,
    weights: { tensors: 300, maxSteps: 500, completeValues: 150_000 },
  };
  const sizeOf = (p: string, filter?: TensorsFilter): TrialSize | null => {
    if (!sizes[p]) return null;
    if (!filter || (filter.regex === null && filter.collection === null)) return sizes[p];
    if (filter.regex === "(") throw new Error("BAD_USER_INPUT: unbalanced parenthesis");
    return listedBy[filter.regex ?? filter.collection!] ?? { tensors: 0, maxSteps: 0, completeValues: 0 };
  };
  const judge = (query: string, variables: Record<string, unknown> = {}) => {
    const check = { schema, document: parse(query), variables, limits: config.limits, caller };
    const report = checkOperation(check);
    return { report, reads: [...report.trials].map(([p, reads]) => [p, reads.length]), verdict: () => checkAgainstTrials(check, report, sizeOf) };
  };
  const whole = (alias: string) => `${alias}: tensors { values { step data } }`;
  const refused = (f: () => unknown) => assert.throws(f, (e: any) => e.extensions.code === "LIMIT_EXCEEDED" && e.extensions.limit === "memory" && e.extensions.http.status === 400 && /TRIALGRAPH_MAX_REQUEST_MB/.test(e.message));

  assert.deepEqual(judge(`{ trial(path: "trials/big") { ${whole("a")} ${whole("b")} } }`).reads, [["trials/big", 2]]);
  assert.equal(judge(`{ trial(path: "trials/big") { ${whole("a")} ${whole("b")} } }`).verdict().heavy, true, "two reads fit (240 MB) and are heavy");
  refused(judge(`{ trial(path: "trials/big") { ${whole("a")} ${whole("b")} ${whole("c")} } }`).verdict);
  // Through a variable, a fragment and two trial fields of the same trial.
  refused(judge(`query($p: String!) { x: trial(path: $p) { ...W } y: trial(path: $p) { ${whole("a")} } } fragment W on Trial { ${whole("a")} ${whole("b")} }`, { p: "trials/big" }).verdict);
  // Fields with the same response key are one read; skipped ones, narrowed ones and other fields none.
  const merged = judge(`query($no: Boolean!) { trial(path: "trials/big") {
    a: tensors { values { step } } a: tensors { values { data } } ... on Trial { a: tensors { values { step } } }
    b: tensors @include(if: $no) { values { step } } c: tensors @skip(if: true) { values { step } }
    d: tensors(regex: "rmse") { values { step } } e: tensors { values(fromStep: 3) { step } } f: tensors { name series { values } }
    g: tensors(regex: null) { values(mode: null) { step } } h: tensors(mode: TRAIN) { values { step } } } }`, { no: false });
  const unfiltered = { regex: null, collection: null };
  assert.deepEqual([...merged.report.trials], [["trials/big", [unfiltered, { regex: "rmse", collection: null }, unfiltered]]], "a, d and g");
  // Variables' defaults are what execution uses.
  const defaults = judge(`query($p: String = "trials/big", $skip: Boolean = true) { trial(path: $p) { ${whole("a")} b: tensors @skip(if: $skip) { values { step } } } }`);
  assert.deepEqual(defaults.reads, [["trials/big", 1]]);
  merged.verdict();
  // Reads through a regex or a collection count the values of the tensors those list.
  refused(judge(`{ trial(path: "trials/big") { a: tensors(regex: ".") { values { step } } b: tensors(regex: ".") { values { step } } c: tensors(regex: ".") { values { step } } } }`).verdict);
  refused(judge(`query($c: String) { trial(path: "trials/big") { ${whole("a")} ${whole("b")} w: tensors(collection: $c) { values { step } } } }`, { c: "weights" }).verdict);
  const narrow = Array.from({ length: 40 }, (_, i) => `r${i}: tensors(regex: "rmse") { values { step } }`).join(" ");
  judge(`{ trial(path: "trials/big") { ${whole("a")} ${whole("b")} ${narrow} } }`).verdict();
  // Each filter is sized as itself: the pattern "null" lists what it matches, not the whole trial.
  judge(`{ trial(path: "trials/big") { ${whole("a")} ${whole("b")} n: tensors(regex: "null") { values { step } } } }`).verdict();
  // A pattern the trial refuses counts nothing here: execution answers with that error before reading.
  judge(`{ trial(path: "trials/big") { ${whole("a")} ${whole("b")} p: tensors(regex: "(") { values { step } } } }`).verdict();
  // A trial that is not open is not judged; nor is a query that does not name its trial.
  assert.equal(judge(`{ trial(path: "trials/unopened") { ${whole("a")} ${whole("b")} ${whole("c")} } }`).verdict().heavy, true);
  assert.equal(judge(`{ trials { ${whole("a")} ${whole("b")} ${whole("c")} } }`).verdict().heavy, true);

  // Heavy from the trial's real size: a small trial's whole read is light, a big one's heavy.
  const smallRead = judge(`{ trial(path: "trials/small") { ${whole("a")} tensor(name: "x") { statsSeries { mean } } } }`);
  assert.ok(smallRead.report.cost >= config.limits.heavyCost, `heavy by the assumed size (${smallRead.report.cost})`);
  assert.equal(smallRead.verdict().heavy, false);
  assert.equal(judge(`{ trial(path: "trials/big") { tensors(regex: "rmse") { values { step } } } }`).verdict().heavy, true);
  // Reached some other way too (a job's trial): its size is unknown, so the assumed one stands.
  assert.equal(judge(`{ trial(path: "trials/small") { ${whole("a")} } trainingJobs { nodes { trial { path } } } }`).verdict().heavy, true);
});
