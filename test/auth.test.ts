import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createClient, type Client } from "graphql-ws";
import WebSocket from "ws";
import { ConfigError, loadConfig, sha256Hex } from "../src/config.js";
import { startTestServer, type TestServer } from "./support/server.js";
import { startServiceProcess } from "./support/service-process.js";

const READER = "reader-token-0123456789abcdef";
const OPERATOR = "operator-token-0123456789abcdef";
const HASHED_READER = "hashed-reader-token-0123456789";
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

let server: TestServer;

before(async () => {
  server = await startTestServer({
    TRIALGRAPH_API_TOKENS: `ann:reader:${READER}, otto:operator:${OPERATOR}, hal:reader:sha256=${sha256Hex(HASHED_READER)}`,
  });
});
after(async () => server.close());

const TRIAL_QUERY = `{ trial(path: "trials/example") { tensorNames(collection: "metrics") } }`;
// A mutation that reaches the backend without side effects: stopping a job that does not exist.
const STOP_MUTATION = `mutation { stopTrainingJob(name: "no-such-job") { name status } }`;

test("config keeps tokens hashed only, and accepts pre-hashed sha256= entries", () => {
  const config = loadConfig({ TRIALGRAPH_API_TOKENS: `ann:reader:${READER},hal:operator:sha256=${sha256Hex(HASHED_READER).toUpperCase()}` });
  assert.deepEqual(config.apiTokens.map((t) => [t.name, t.role]), [["ann", "reader"], ["hal", "operator"]]);
  assert.equal(config.apiTokens[0].sha256, sha256Hex(READER));
  assert.equal(config.apiTokens[1].sha256, sha256Hex(HASHED_READER));
  assert.doesNotMatch(JSON.stringify(config), new RegExp(READER), "the clear token is not kept");
  assert.throws(() => loadConfig({ TRIALGRAPH_API_TOKENS: "x:admin:0123456789abcdefgh" }), /name:reader\|operator/);
  assert.throws(() => loadConfig({ TRIALGRAPH_API_TOKENS: "x:reader:short" }), /16\+ characters/);
});

test("without tokens only loopback is allowed, unless explicitly allowed", () => {
  assert.equal(loadConfig({ HOST: "127.0.0.1" }).host, "127.0.0.1");
  assert.equal(loadConfig({ HOST: "::1" }).host, "::1");
  assert.throws(() => loadConfig({ HOST: "0.0.0.0" }), (e: unknown) => e instanceof ConfigError && /refusing to serve unauthenticated/.test(e.message));
  assert.equal(loadConfig({ HOST: "0.0.0.0", TRIALGRAPH_ALLOW_UNAUTHENTICATED: "true" }).host, "0.0.0.0");
  assert.equal(loadConfig({ HOST: "0.0.0.0", TRIALGRAPH_API_TOKENS: `a:reader:${READER}` }).apiTokens.length, 1);
});

test("the service refuses to start on a public address without tokens, and says loopback-only when it starts without them", async () => {
  await assert.rejects(startServiceProcess({ env: { HOST: "0.0.0.0", TRIALGRAPH_DATA_DIR: server.dataDir } }), (e: Error) => {
    assert.match(e.message, /exited \(2\)/);
    assert.match(e.message, /refusing to serve unauthenticated beyond this machine/);
    return true;
  });
  const child = await startServiceProcess({ env: { TRIALGRAPH_DATA_DIR: server.dataDir } });
  try {
    assert.ok(child.logs.some((l) => /loopback only/.test(l.msg)), "the start log says it is loopback-only");
    const res = await fetch(child.url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query: TRIAL_QUERY }) });
    assert.equal(res.status, 200, "no tokens configured: local callers are let in");
  } finally {
    assert.equal(await child.stop(), 0);
  }
});

test("HTTP: no token or an unknown one is 401 UNAUTHENTICATED; /healthz and /readyz stay open", async () => {
  for (const headers of [{}, bearer("not-a-valid-token-at-all"), { authorization: `Basic ${Buffer.from("a:b").toString("base64")}` }, { authorization: "Bearer" }]) {
    const r = await server.gql(TRIAL_QUERY, undefined, headers as Record<string, string>);
    assert.equal(r.status, 401, JSON.stringify(headers));
    assert.equal(r.body.errors[0].extensions.code, "UNAUTHENTICATED");
    assert.equal(r.body.data, undefined);
  }
  const base = server.url.replace(/\/graphql$/, "");
  const health = await fetch(`${base}/healthz`);
  assert.equal(health.status, 200);
  assert.equal(((await health.json()) as any).status, "ok");
  assert.equal((await fetch(`${base}/readyz`)).status, 200);
  assert.equal((await fetch(`${base}/metrics`)).status, 401, "metrics need a token when tokens are configured");
  assert.equal((await fetch(`${base}/metrics`, { headers: bearer(READER) })).status, 200);
});

test("the job report authenticates like /graphql: 401 without a token, the query runs with one (reader role is enough)", async () => {
  const base = server.url.replace(/\/graphql$/, "");
  const url = `${base}/jobs/${encodeURIComponent("no-such-job")}/report.html`;
  for (const headers of [{}, bearer("not-a-valid-token-at-all")]) {
    const r = await fetch(url, { headers });
    assert.equal(r.status, 401);
    assert.equal(((await r.json()) as any).errors[0].extensions.code, "UNAUTHENTICATED");
  }
  const r = await fetch(url, { headers: bearer(READER) });
  assert.equal(r.status, 404, "the caller got in; the job does not exist");
  const body = (await r.json()) as any;
  assert.equal(body.errors[0].extensions.code, "NOT_FOUND");
  assert.match(body.errors[0].message, /no-such-job/);
});

test("HTTP roles: readers query, only operators run mutations (FORBIDDEN, 403)", async () => {
  for (const token of [READER, HASHED_READER, OPERATOR]) {
    const r = await server.gql(TRIAL_QUERY, undefined, bearer(token));
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.data.trial.tensorNames, ["train-rmse", "validation-rmse"]);
  }
  const denied = await server.gql(STOP_MUTATION, undefined, bearer(READER));
  assert.equal(denied.status, 403);
  assert.equal(denied.body.errors[0].extensions.code, "FORBIDDEN");
  assert.match(denied.body.errors[0].message, /ann may not run mutations/);
  const allowed = await server.gql(STOP_MUTATION, undefined, bearer(OPERATOR));
  assert.equal(allowed.body.errors[0].extensions.code, "NOT_FOUND", "the operator got past the role check to the backend");
});

test("CSRF prevention: simple requests without a preflight header are refused", async () => {
  const plain = await fetch(server.url, { method: "POST", headers: { "content-type": "text/plain", ...bearer(READER) }, body: JSON.stringify({ query: TRIAL_QUERY }) });
  assert.equal(plain.status, 400);
  assert.match(await plain.text(), /CSRF/i);
  const form = await fetch(server.url, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", ...bearer(READER) }, body: "query=x" });
  assert.equal(form.status, 400);
  const q = `${server.url}?query=${encodeURIComponent(TRIAL_QUERY)}`;
  const get = await fetch(q, { headers: { accept: "application/json", ...bearer(READER) } });
  assert.equal(get.status, 400, "GET without a preflight header");
  const preflighted = await fetch(q, { headers: { accept: "application/json", "apollo-require-preflight": "1", ...bearer(READER) } });
  assert.equal(preflighted.status, 200);
  assert.deepEqual(((await preflighted.json()) as any).data.trial.tensorNames, ["train-rmse", "validation-rmse"]);
});

function wsClient(connectionParams?: Record<string, unknown>): { client: Client; closed: Promise<{ code: number; reason: string }> } {
  let onClosed!: (v: { code: number; reason: string }) => void;
  const closed = new Promise<{ code: number; reason: string }>((r) => (onClosed = r));
  const client = createClient({
    url: server.wsUrl,
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    lazy: false,
    connectionParams,
    on: { closed: (e: any) => onClosed({ code: e.code, reason: String(e.reason) }) },
    onNonLazyError: () => {},
  });
  return { client, closed };
}

function once(client: Client, query: string): Promise<any> {
  return new Promise((resolve) => {
    let result: any;
    client.subscribe({ query }, { next: (v) => (result = v), error: (e) => resolve({ errors: Array.isArray(e) ? e : [e] }), complete: () => resolve(result) });
  });
}

test("WebSocket: a missing or unknown token closes with 4401 and a reason", async () => {
  for (const params of [undefined, { authorization: "Bearer wrong-token-wrong-token" }, { authorization: 42 }]) {
    const { client, closed } = wsClient(params as Record<string, unknown> | undefined);
    const { code, reason } = await closed;
    assert.equal(code, 4401, JSON.stringify(params));
    assert.match(reason, /^Unauthorized: (send an API token|unknown API token)/);
    await client.dispose();
  }
});

test("WebSocket roles: readers query and subscribe, mutations need an operator", async () => {
  const reader = wsClient({ authorization: `Bearer ${READER}` });
  const operator = wsClient({ authorization: `Bearer ${OPERATOR}` });
  try {
    const r = await once(reader.client, TRIAL_QUERY);
    assert.deepEqual(r.data.trial.tensorNames, ["train-rmse", "validation-rmse"]);
    const denied = await once(reader.client, STOP_MUTATION);
    assert.equal(denied.errors[0].extensions.code, "FORBIDDEN");
    assert.equal(denied.errors[0].extensions.http, undefined, "no HTTP details on a socket");
    const allowed = await once(operator.client, STOP_MUTATION);
    assert.equal(allowed.errors[0].extensions.code, "NOT_FOUND");
    // A subscription is accepted for a reader (and ends when the client completes it).
    const sub = await new Promise<string>((resolve, reject) => {
      const stop = reader.client.subscribe({ query: `subscription { trialStepsAdded(path: "trials/example") { steps } }` }, { next: () => {}, error: reject, complete: () => resolve("completed") });
      setTimeout(() => { stop(); resolve("running"); }, 300);
    });
    assert.equal(sub, "running");
  } finally {
    await reader.client.dispose();
    await operator.client.dispose();
  }
});

test("introspection can be turned off", async () => {
  const r = await server.gql(`{ __schema { queryType { name } } }`, undefined, bearer(READER));
  assert.equal(r.body.data.__schema.queryType.name, "Query", "on by default");
  const closed = await startTestServer({ TRIALGRAPH_INTROSPECTION: "false" });
  try {
    const off = await closed.gql(`{ __schema { queryType { name } } }`);
    assert.equal(off.status, 400);
    assert.match(off.body.errors[0].message, /introspection is not allowed/i);
    const typo = await closed.gql(`{ trail(path: "x") { path } }`);
    assert.doesNotMatch(typo.body.errors[0].message, /Did you mean/, "no schema hints without introspection");
  } finally {
    await closed.close();
  }
});
