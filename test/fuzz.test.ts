/**
 * Fuzzing the public surface with a seeded PRNG (set FUZZ_SEED to replay a run): random queries built
 * from the schema, mutated valid queries, random variables and trial paths, malformed HTTP requests
 * and WebSocket frames. The service must answer every one without a 5xx, without an
 * INTERNAL_SERVER_ERROR, without logging an unexpected error, and stay healthy.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import path from "node:path";
import os from "node:os";
import { promises as fs } from "node:fs";
import pino from "pino";
import WebSocket from "ws";
import {
  getNamedType, isEnumType, isInputObjectType, isListType, isNonNullType, isObjectType, isScalarType,
  type GraphQLField, type GraphQLInputType, type GraphQLObjectType, type GraphQLSchema,
} from "graphql";
import { loadConfig } from "../src/config.js";
import { startServer, type RunningServer } from "../src/server.js";
import { createSchema } from "../src/graphql/schema.js";
import { TrialWriter } from "../src/trials/trial-writer.js";
import { installPerfTrial } from "./support/fixtures.js";

const SEED = Number(process.env.FUZZ_SEED ?? 20260726);

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)];
  const chance = (p: number) => next() < p;
  return { next, int, pick, chance };
}
type Rng = ReturnType<typeof prng>;

const PATHS = [
  "trials/example", "trials/fuzz", "trials/", "trials", ".", "", " ", "..", "../", "../../etc/passwd", "/etc/passwd", "trials/../../x",
  "trials/example/../example", "trials/example/index", "trials/example/events/000000000000", "trials/%2e%2e/x", "trials/\u0000x",
  "C:\\Windows", "~/x", "trials/ünïcødé/📈", "s3://", "s3:///x", "s3://a", "s3://fuzz-bucket/x", "s3://fuzz-bucket/../..", "s3://UPPER/x",
  "trials/" + "a".repeat(300), "file:///etc/passwd", "http://example.invalid/x", "jobs", "jobs/../trials/example", "trials/example\n",
];
const STRINGS = ["", "train-rmse", "validation-rmse", "([", ".*", "(a+)+$", "x".repeat(2000), "\u0000", "💥", "metrics", "default", "worker_0", "LOCAL", "ab\"c", "\\"];
const NUMBERS = [0, 1, -1, 2, 7, 99, 100, 2147483647, -2147483648, 2147483648, 1e15, 0.5, -0.0];

function randomValueLiteral(rng: Rng, type: GraphQLInputType, depth = 0): string {
  // Sometimes ignore the type entirely: wrong types must be rejected cleanly.
  if (rng.chance(0.12)) return rng.pick(["null", "1", "\"s\"", "true", "[1, 2]", "{ a: 1 }", "ENUM_X", "1.5", "-99999999999"]);
  if (isNonNullType(type)) return randomValueLiteral(rng, type.ofType, depth);
  if (isListType(type)) {
    const n = rng.int(0, 3);
    return `[${Array.from({ length: n }, () => randomValueLiteral(rng, type.ofType, depth + 1)).join(", ")}]`;
  }
  if (isEnumType(type)) return rng.pick(type.getValues()).name;
  if (isInputObjectType(type)) {
    if (depth > 3) return "{}";
    const fields = Object.values(type.getFields()).filter(() => rng.chance(0.6));
    return `{ ${fields.map((f) => `${f.name}: ${randomValueLiteral(rng, f.type, depth + 1)}`).join(", ")} }`;
  }
  if (isScalarType(type)) {
    switch (type.name) {
      case "Int": return String(Math.trunc(rng.pick(NUMBERS)));
      case "Float": return String(rng.pick(NUMBERS));
      case "Boolean": return rng.pick(["true", "false"]);
      case "JSON": return rng.pick(["{ a: 1 }", "[1, \"x\"]", "\"s\"", "{ num_round: 1 }", "null"]);
      case "DateTime": return rng.pick(["\"2026-01-01T00:00:00Z\"", "\"yesterday\"", "0"]);
      default: {
        const s = rng.chance(0.5) ? rng.pick(PATHS) : rng.pick(STRINGS);
        return JSON.stringify(s);
      }
    }
  }
  return "null";
}

function randomSelection(rng: Rng, type: GraphQLObjectType, depth: number): string {
  const fields = Object.values(type.getFields());
  const chosen = fields.filter(() => rng.chance(depth > 4 ? 0.15 : 0.35));
  if (chosen.length === 0) chosen.push(rng.pick(fields));
  return chosen.map((f) => randomField(rng, f, depth)).join(" ");
}

function randomField(rng: Rng, f: GraphQLField<unknown, unknown>, depth: number): string {
  const args = f.args.filter((a) => isNonNullType(a.type) || rng.chance(0.4));
  const argText = args.length ? `(${args.map((a) => `${a.name}: ${randomValueLiteral(rng, a.type)}`).join(", ")})` : "";
  const alias = rng.chance(0.1) ? `a${rng.int(0, 99)}: ` : "";
  const named = getNamedType(f.type);
  if (isObjectType(named)) {
    if (depth > 6) return `${alias}${f.name}${argText} { __typename }`;
    return `${alias}${f.name}${argText} { ${randomSelection(rng, named, depth + 1)} }`;
  }
  return `${alias}${f.name}${argText}`;
}

function randomOperation(rng: Rng, schema: GraphQLSchema): string {
  const roots = [schema.getQueryType(), schema.getQueryType(), schema.getQueryType(), schema.getMutationType(), schema.getSubscriptionType()].filter(Boolean) as GraphQLObjectType[];
  const root = rng.pick(roots);
  const keyword = root === schema.getMutationType() ? "mutation" : root === schema.getSubscriptionType() ? "subscription" : rng.pick(["query", ""]);
  // Never start real training: startTrainingJob inputs are random but could be valid by chance.
  const fields = Object.values(root.getFields()).filter((f) => f.name !== "startTrainingJob");
  const pickedRoot = { ...root, getFields: () => Object.fromEntries(fields.map((f) => [f.name, f])) } as unknown as GraphQLObjectType;
  return `${keyword} { ${randomSelection(rng, pickedRoot, 1)} }`;
}

const SEEDS = [
  `{ trials { id path trainingEnded } }`,
  `query T($p: String!) { trial(path: $p) { steps tensorNames tensor(name: "train-rmse") { steps value(step: 0) { data scalar } series(maxPoints: 10) { steps values } } } }`,
  `{ trial(path: "trials/example") { collections { name tensorNames } tensors(regex: "rmse") { name values(fromStep: 0, toStep: 5) { step scalar } } } }`,
  `{ trainingJobs(first: 5) { nodes { name status } pageInfo { hasNextPage endCursor } } builtinRules { name parameters { name default } } }`,
  `mutation { stopTrainingJob(name: "nope") { name } }`,
  `query Frag { trial(path: "trials/example") { ...F } } fragment F on Trial { path steps }`,
];
const MUTATION_CHARS = ["{", "}", "(", ")", "[", "]", ":", "$", "!", "@", "\"", "\\", " ", "\n", "#", "...", "on", "0", "-", ",", "=", "\u0000", "💥", "__schema", "query", "fragment"];

function mutate(rng: Rng, s: string): string {
  let out = s;
  for (let n = rng.int(1, 4); n > 0; n--) {
    const i = rng.int(0, out.length);
    switch (rng.int(0, 4)) {
      case 0: out = out.slice(0, i) + out.slice(i + rng.int(1, 8)); break;
      case 1: out = out.slice(0, i) + rng.pick(MUTATION_CHARS) + out.slice(i); break;
      case 2: out = out.slice(0, i); break;
      case 3: { const j = rng.int(0, out.length); out = out.slice(0, i) + out.slice(Math.min(i, j), Math.max(i, j)) + out.slice(i); break; }
      default: out = out.split("").reverse().join("").slice(0, rng.int(0, out.length));
    }
  }
  return out;
}

function randomJson(rng: Rng, depth = 0): unknown {
  switch (rng.int(0, depth > 3 ? 4 : 7)) {
    case 0: return null;
    case 1: return rng.pick(NUMBERS);
    case 2: return rng.chance(0.5) ? rng.pick(PATHS) : rng.pick(STRINGS);
    case 3: return rng.chance(0.5);
    case 4: return rng.pick([NaN, Infinity, 1e308, -1e308, 2 ** 53 + 1]);
    case 5: return Array.from({ length: rng.int(0, 4) }, () => randomJson(rng, depth + 1));
    default: return Object.fromEntries(Array.from({ length: rng.int(0, 4) }, (_, i) => [rng.pick(["p", "s", "n", "x", "__proto__", "constructor", `k${i}`]), randomJson(rng, depth + 1)]));
  }
}

let server: RunningServer;
let schema: GraphQLSchema;
const errorLogs: any[] = [];

before(async () => {
  process.env.AWS_ACCESS_KEY_ID ??= "FUZZ";
  process.env.AWS_SECRET_ACCESS_KEY ??= "FUZZ";
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), "tg-fuzz-"));
  installPerfTrial(dataDir);
  // A collections file with patterns a backtracking engine never finishes over these names.
  const evil = new TrialWriter(path.join(dataDir, "trials/evil-collections"));
  await evil.writeCollections([{ name: "evil", includeRegex: ["^(a+)+$", "(x+x+)+y", "^(([a-z])+.)+[A-Z]([a-z])+$", "^x+$"] }, { name: "lookahead", includeRegex: ["(?=a)", "(b(?=c))"] }]);
  await evil.writeStep(0, [{ name: "a".repeat(40) + "!", dtype: "float64", shape: [1], values: [1] }, { name: "x".repeat(40), dtype: "float64", shape: [1], values: [2] }]);
  await evil.end();
  const w = new TrialWriter(path.join(dataDir, "trials/fuzz"));
  await w.writeCollections([{ name: "default", includeRegex: [] }]);
  await w.writeStep(0, [{ name: "v", dtype: "float32", shape: [3], values: [1, NaN, -Infinity] }, { name: "s", dtype: "float64", shape: [1], values: [2] }]);
  await w.writeStep(1, [{ name: "s", dtype: "float64", shape: [1], values: [3] }]);
  // Left without training_job_end: a trial that looks like it is still growing.
  const config = loadConfig({
    PORT: "0", TRIALGRAPH_DATA_DIR: dataDir,
    // S3 paths are tried against a port nothing listens on: never the internet.
    TRIALGRAPH_S3_ENDPOINT: "http://127.0.0.1:9", TRIALGRAPH_S3_TIMEOUT_MS: "500",
    TRIALGRAPH_MAX_BODY_BYTES: "200000", TRIALGRAPH_READY_CHECK_S3: "false",
  });
  const sink = new Writable({
    write(chunk, _e, done) {
      for (const line of String(chunk).split("\n")) {
        if (!line.trim()) continue;
        const entry = JSON.parse(line);
        if (entry.level >= 50) errorLogs.push(entry);
      }
      done();
    },
  });
  server = await startServer(config, pino({ level: "warn" }, sink));
  schema = await createSchema();
});
after(async () => server.close());

interface Outcome { status: number; text: string }

async function post(body: string, headers: Record<string, string> = { "content-type": "application/json" }, url = server.url): Promise<Outcome> {
  const res = await fetch(url, { method: "POST", headers, body });
  return { status: res.status, text: await res.text() };
}

/** No 5xx, no internal error, no stack trace; HTML only where a page is served (dashboard, playground), never as an error. */
function check(o: Outcome, what: string, pageAllowed = false): void {
  assert.ok(o.status < 500, `${what} → HTTP ${o.status}: ${o.text.slice(0, 300)}`);
  if (pageAllowed && o.status === 200 && /^\s*<!doctype html>/i.test(o.text)) return; // a page's scripts may mention anything
  assert.doesNotMatch(o.text, /INTERNAL_SERVER_ERROR|stacktrace|<html/i, `${what} → ${o.text.slice(0, 300)}`);
}

test(`random schema-shaped operations (seed ${SEED})`, async () => {
  const rng = prng(SEED);
  for (let i = 0; i < 250; i++) {
    const query = randomOperation(rng, schema);
    check(await post(JSON.stringify({ query })), `case ${i}: ${query.slice(0, 500)}`);
  }
});

test(`mutated valid queries (seed ${SEED + 1})`, async () => {
  const rng = prng(SEED + 1);
  for (let i = 0; i < 250; i++) {
    const query = mutate(rng, rng.pick(SEEDS));
    check(await post(JSON.stringify({ query, variables: { p: rng.pick(PATHS) } })), `case ${i}: ${JSON.stringify(query)}`);
  }
});

test(`random variables and trial paths (seed ${SEED + 2})`, async () => {
  const rng = prng(SEED + 2);
  const queries = [
    `query($p: String!) { trial(path: $p) { path steps tensorNames } }`,
    `query($p: String!, $n: String!, $s: Int!) { trial(path: $p) { tensor(name: $n) { value(step: $s) { data strings scalar nonFinite { index value } } } } }`,
    `query($p: String!, $f: Int, $t: Int, $m: Int) { trial(path: $p) { tensors { name series(fromStep: $f, toStep: $t, maxPoints: $m) { steps values } } } }`,
    `query($p: String!, $r: String, $c: String, $mode: Mode) { trial(path: $p) { tensors(regex: $r, collection: $c, mode: $mode) { name values { step } } } }`,
    `query($first: Int, $after: String, $b: Backend) { trainingJobs(first: $first, after: $after, backend: $b) { nodes { name } } }`,
    `query($p: String!, $rules: [RuleInput!]!) { evaluateRules(path: $p, rules: $rules) { ruleConfigurationName status } }`,
  ];
  for (let i = 0; i < 200; i++) {
    const variables: Record<string, unknown> = {};
    for (const k of ["p", "n", "s", "f", "t", "m", "r", "c", "mode", "first", "after", "b", "rules"]) {
      if (rng.chance(0.7)) variables[k] = k === "p" && rng.chance(0.7) ? rng.pick(PATHS) : randomJson(rng);
    }
    if (rng.chance(0.3)) variables.rules = [{ builtin: rng.pick(["LossNotDecreasing", "Overfit", "Nope", ""]), parameters: randomJson(rng) }];
    const body = rng.chance(0.1) ? { query: rng.pick(queries), variables: randomJson(rng) } : { query: rng.pick(queries), variables };
    check(await post(JSON.stringify(body)), `case ${i}: ${JSON.stringify(body).slice(0, 500)}`);
  }
});

test(`malformed HTTP requests: bodies, content types, methods and URL paths (seed ${SEED + 3})`, async () => {
  const rng = prng(SEED + 3);
  const base = server.url.replace(/\/graphql$/, "");
  const urlPaths = ["/graphql", "/graphql/", "/graphql?query=%7B", "/graphql/../healthz", "/%2e%2e/etc/passwd", "/healthz?x=1", "/readyz", "/metrics", "/nope", "/graphql%00", "/" + "a".repeat(3000), "/index.html", "/assets/../../package.json"];
  for (let i = 0; i < 150; i++) {
    const kind = rng.int(0, 5);
    let o: Outcome;
    let what: string;
    if (kind === 0) {
      const bytes = Buffer.from(Array.from({ length: rng.int(0, 400) }, () => rng.int(0, 255)));
      what = `random bytes (${bytes.length})`;
      const res = await fetch(server.url, { method: "POST", headers: { "content-type": "application/json" }, body: bytes });
      o = { status: res.status, text: await res.text() };
    } else if (kind === 1) {
      const body = JSON.stringify(randomJson(rng));
      what = `JSON ${body.slice(0, 200)}`;
      o = await post(body);
    } else if (kind === 2) {
      const body = JSON.stringify(rng.chance(0.5) ? [{ query: "{ trials { path } }" }, { query: "{ trials { id } }" }] : { query: rng.pick([1, null, ["x"], { a: 1 }, true]), operationName: randomJson(rng), extensions: randomJson(rng) });
      what = `odd request ${body.slice(0, 200)}`;
      o = await post(body);
    } else if (kind === 3) {
      const ct = rng.pick(["application/json; charset=latin1", "application/graphql", "text/plain", "multipart/form-data; boundary=x", "application/x-www-form-urlencoded", "application/json; charset=utf-16", "*/*", ""]);
      what = `content-type ${JSON.stringify(ct)}`;
      o = await post(JSON.stringify({ query: rng.pick(SEEDS) }), { "content-type": ct, "apollo-require-preflight": "1" });
    } else if (kind === 4) {
      const method = rng.pick(["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]);
      const p = rng.pick(urlPaths);
      what = `${method} ${p.slice(0, 80)}`;
      const res = await fetch(base + p, { method, headers: { "apollo-require-preflight": "1", accept: rng.pick(["application/json", "text/html", "*/*"]) } });
      o = { status: res.status, text: method === "HEAD" ? "" : await res.text() };
      if (p === "/graphql" && method === "GET") assert.ok(o.status === 200 || o.status === 400, what);
      check(o, `case ${i}: ${what}`, true);
      continue;
    } else {
      const q = encodeURIComponent(mutate(rng, rng.pick(SEEDS)));
      const vars = encodeURIComponent(rng.chance(0.5) ? JSON.stringify(randomJson(rng)) : "{not json");
      what = `GET query ${q.slice(0, 100)}`;
      const res = await fetch(`${server.url}?query=${q}&variables=${vars}`, { headers: { "apollo-require-preflight": "1", accept: "application/json" } });
      o = { status: res.status, text: await res.text() };
    }
    check(o, `case ${i}: ${what}`);
  }
});

test(`malformed graphql-ws frames (seed ${SEED + 4})`, async () => {
  const rng = prng(SEED + 4);
  for (let i = 0; i < 40; i++) {
    const ws = new WebSocket(server.url.replace(/^http/, "ws"), "graphql-transport-ws");
    await new Promise((r, j) => { ws.once("open", r); ws.once("error", j); });
    const closed = new Promise<number>((r) => ws.once("close", (c) => r(c)));
    const received: any[] = [];
    ws.on("message", (m) => received.push(JSON.parse(String(m))));
    if (rng.chance(0.8)) ws.send(JSON.stringify({ type: "connection_init", payload: rng.chance(0.8) ? {} : randomJson(rng) }));
    for (let n = rng.int(1, 4); n > 0; n--) {
      const frame = rng.pick([
        () => JSON.stringify({ type: "subscribe", id: String(rng.int(0, 3)), payload: { query: mutate(rng, rng.pick(SEEDS)), variables: randomJson(rng) } }),
        () => JSON.stringify({ type: "subscribe", id: String(rng.int(0, 3)), payload: { query: randomOperation(rng, schema) } }),
        () => JSON.stringify({ type: "subscribe", id: randomJson(rng), payload: randomJson(rng) }),
        () => JSON.stringify(randomJson(rng)),
        () => JSON.stringify({ type: rng.pick(["ping", "pong", "complete", "next", "connection_ack", "bogus"]), id: "1" }),
        () => Buffer.from(Array.from({ length: rng.int(1, 50) }, () => rng.int(0, 255))).toString("latin1"),
      ])();
      ws.send(frame);
    }
    await new Promise((r) => setTimeout(r, 60));
    ws.close(1000);
    const code = await closed;
    assert.notEqual(code, 1011, `case ${i}: the server hit an internal error`);
    for (const m of received) {
      if (m.type === "error" || m.type === "next") assert.doesNotMatch(JSON.stringify(m.payload), /INTERNAL_SERVER_ERROR/, `case ${i}: ${JSON.stringify(m).slice(0, 300)}`);
    }
  }
});

/** Nested quantifiers, overlapping alternations, huge counts: exponential for a backtracking engine. */
const EVIL_PIECES = ["(a+)+", "(.*)*", "(\\w+)*", "([a-z]+)+", "(a|aa)+", "(.*a){12}", "(x+x+)+", "(feature_importance/|f)+", "(\\d*)*", "((w|e)+i+)+"];

test(`catastrophic regular expressions over the perf trial's 587 names answer at once (seed ${SEED + 5})`, { timeout: 120_000 }, async () => {
  const rng = prng(SEED + 5);
  const patterns = ["^(a+)+$", "(x+x+)+y", "^(([a-z])+.)+[A-Z]([a-z])+$", "^(feature_importance/)+(.+)+(.+)+x$", "(\\w+\\s?)*$"];
  for (let i = 0; i < 40; i++) patterns.push(Array.from({ length: rng.int(1, 4) }, () => rng.pick(EVIL_PIECES)).join("") + rng.pick(["$", "!", "y", ""]));
  for (const r of patterns) {
    const o = await post(JSON.stringify({
      query: `query($r: String) { trial(path: "trials/perf") { tensorNames(regex: $r) tensors(regex: $r) { name } }
        evaluateRules(path: "trials/perf", rules: [{ builtin: "AllZero", parameters: { tensor_regex: $r } }]) { status } }`,
      variables: { r },
    }));
    check(o, `pattern ${r}`);
    const body = JSON.parse(o.text);
    for (const e of body.errors ?? []) assert.equal(e.extensions.code, "BAD_USER_INPUT", `${r}: ${e.message}`);
  }
  // A collections file's patterns run on the same engine; one that cannot run matches nothing.
  const c = await post(JSON.stringify({ query: `{ trial(path: "trials/evil-collections") { evil: collection(name: "evil") { tensorNames } lookahead: collection(name: "lookahead") { tensorNames } } }` }));
  check(c, "evil collections");
  const data = JSON.parse(c.text).data.trial;
  assert.deepEqual(data.evil.tensorNames, ["x".repeat(40)], "only ^x+$ matches, as in Python");
  assert.deepEqual(data.lookahead.tensorNames, ["a".repeat(40) + "!"], "a top-level lookahead runs");
  const bad = await post(JSON.stringify({ query: `{ trial(path: "trials/perf") { tensorNames(regex: "(x(?=rmse))") } }` }));
  assert.match(JSON.parse(bad.text).errors[0].message, /lookahead .* outside groups/);
});

test("after the fuzzing: healthy, and nothing unexpected was logged", async () => {
  const h = await fetch(server.url.replace(/\/graphql$/, "/healthz"));
  assert.equal(h.status, 200);
  const r = await post(JSON.stringify({ query: `{ trial(path: "trials/example") { steps } }` }));
  assert.equal(JSON.parse(r.text).data.trial.steps.length, 100);
  assert.deepEqual(errorLogs.map((e) => e.msg + " " + JSON.stringify(e.err ?? {}).slice(0, 300)), []);
});
