import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createClient, type Client } from "graphql-ws";
import WebSocket from "ws";
import http from "node:http";
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
    // A subscription is accepted for a reader: the ended example trial sends its steps, then completes.
    const sub = await new Promise<string>((resolve, reject) => {
      let got = "nothing";
      reader.client.subscribe({ query: `subscription { trialStepsAdded(path: "trials/example") { steps trainingEnded } }` }, {
        next: (r: any) => { got = r.data?.trialStepsAdded?.trainingEnded ? "steps" : JSON.stringify(r); },
        error: reject,
        complete: () => resolve(got),
      });
      setTimeout(() => resolve("timed out"), 10_000);
    });
    assert.equal(sub, "steps");
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
    assert.match(off.body.errors[0].message, /introspection has been disabled/i);
    assert.equal(off.body.errors[0].extensions.code, "GRAPHQL_VALIDATION_FAILED");
    const typo = await closed.gql(`{ trail(path: "x") { path } }`);
    assert.match(typo.body.errors[0].message, /Cannot query field "trail"/);
    assert.doesNotMatch(typo.body.errors[0].message, /Did you mean/, "no schema hints without introspection");
    // Nor do a variable's enum values: the service with introspection on names the one meant.
    const badEnum = { query: `query($m: Mode) { trial(path: "trials/example") { steps(mode: $m) } }`, variables: { m: "TRAINN" } };
    const hinted = await server.gql(badEnum.query, badEnum.variables, bearer(READER));
    assert.match(hinted.body.errors[0].message, /does not exist in "Mode" enum\. Did you mean the enum value "TRAIN"\?/);
    const unhinted = await closed.gql(badEnum.query, badEnum.variables);
    assert.equal(unhinted.body.errors[0].extensions.code, "BAD_USER_INPUT");
    assert.match(unhinted.body.errors[0].message, /does not exist in "Mode" enum\.$/);
    // The socket is the same API: neither the schema nor hints about it leak there either.
    const client = createClient({ url: closed.wsUrl, webSocketImpl: WebSocket, retryAttempts: 0, lazy: true });
    try {
      for (const query of [`{ __schema { queryType { name } } }`, `{ __type(name: "Trial") { name } }`, `{ a: trial(path: "trials/example") { __typename } b: __schema { types { name } } }`]) {
        const r = await once(client, query);
        assert.equal(r.data, undefined, query);
        assert.match(r.errors[0].message, /introspection has been disabled/i, query);
        assert.equal(r.errors[0].extensions.code, "GRAPHQL_VALIDATION_FAILED", query);
      }
      const wsTypo = await once(client, `{ trail(path: "x") { path } }`);
      assert.match(wsTypo.errors[0].message, /Cannot query field "trail"/);
      assert.doesNotMatch(wsTypo.errors[0].message, /Did you mean/, "no schema hints on the socket");
      const ok = await once(client, `{ trial(path: "trials/example") { __typename path } }`);
      assert.deepEqual(ok.data, { trial: { __typename: "Trial", path: "trials/example" } }, "__typename is not introspection");
    } finally {
      await client.dispose();
    }
  } finally {
    await closed.close();
  }
});

// ------------------------------------------------------------------------------------------------
// A web page in the user's browser: foreign origins and rebound host names get nothing.
// ------------------------------------------------------------------------------------------------

/** A raw HTTP request (fetch cannot set Host). */
function rawRequest(port: number, opts: { method?: string; path?: string; headers?: Record<string, string>; body?: string }): Promise<{ status: number; headers: import("node:http").IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method: opts.method ?? "GET", path: opts.path ?? "/graphql", headers: opts.headers }, (res) => {
      let body = "";
      res.on("data", (c) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end(opts.body);
  });
}

/** Opens a raw WebSocket with these headers: "open", or the refusal's HTTP status. */
function wsHandshake(port: number, headers: Record<string, string>): Promise<"open" | number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/graphql`, "graphql-transport-ws", { headers });
    ws.once("open", () => { ws.close(); resolve("open"); });
    ws.once("unexpected-response", (_req, res) => { resolve(res.statusCode!); res.resume(); });
    ws.once("error", () => {});
  });
}

test("browser-facing defaults: a foreign Origin or a rebound Host gets a 403 over HTTP and WebSocket; same-origin and non-browser clients work", async () => {
  const open = await startTestServer(); // loopback, no tokens: every local caller is an operator
  const listed = await startTestServer({ TRIALGRAPH_ALLOWED_ORIGINS: "http://dashboard.example:8080", TRIALGRAPH_ALLOWED_HOSTS: "trialgraph.internal, 127.0.0.1" });
  try {
    const port = open.port;
    const self = `127.0.0.1:${port}`;
    const post = (headers: Record<string, string>, s = open) =>
      rawRequest(s.port, { method: "POST", headers: { "content-type": "application/json", host: `127.0.0.1:${s.port}`, ...headers }, body: JSON.stringify({ query: STOP_MUTATION }) });
    // A page on another site may not drive the API: the mutation never runs.
    const foreign = await post({ origin: "http://evil.example" });
    assert.equal(foreign.status, 403);
    assert.equal(JSON.parse(foreign.body).errors[0].extensions.code, "FORBIDDEN");
    assert.match(JSON.parse(foreign.body).errors[0].message, /web origin "http:\/\/evil\.example" are refused/);
    assert.equal((await post({ origin: "null" })).status, 403, "sandboxed frames and file: pages are foreign");
    // The service's own pages, and clients that send no Origin (curl, SDKs), are served.
    for (const headers of [{ origin: `http://${self}` }, {}]) {
      const r = await post(headers);
      assert.equal(r.status, 200, JSON.stringify(headers));
      assert.equal(JSON.parse(r.body).errors[0].extensions.code, "NOT_FOUND");
    }
    // DNS rebinding: evil.example resolving to 127.0.0.1 still says Host: evil.example.
    for (const host of [`evil.example:${port}`, `127.0.0.1.nip.io:${port}`, "192.168.1.5"]) {
      const r = await rawRequest(port, { headers: { host, accept: "text/html" } });
      assert.equal(r.status, 403, host);
      assert.match(JSON.parse(r.body).errors[0].message, /is not served here/);
    }
    for (const host of [self, `localhost:${port}`, `127.0.0.7:${port}`, `[::1]:${port}`, "localhost"]) {
      assert.equal((await rawRequest(port, { path: "/healthz", headers: { host } })).status, 200, host);
    }
    // The same over a real WebSocket handshake.
    assert.equal(await wsHandshake(port, { origin: "http://evil.example" }), 403);
    assert.equal(await wsHandshake(port, { host: `evil.example:${port}` }), 403);
    assert.equal(await wsHandshake(port, { origin: `http://${self}` }), "open");
    assert.equal(await wsHandshake(port, {}), "open");
    // Listed origins and host names are allowed.
    assert.equal((await post({ origin: "http://dashboard.example:8080" }, listed)).status, 200);
    assert.equal((await post({ origin: "http://dashboard.example:9090" }, listed)).status, 403);
    assert.equal(await wsHandshake(listed.port, { origin: "http://dashboard.example:8080" }), "open");
    assert.equal((await rawRequest(listed.port, { path: "/healthz", headers: { host: "trialgraph.internal" } })).status, 200);
    assert.equal((await rawRequest(listed.port, { path: "/healthz", headers: { host: "localhost" } })).status, 403, "a list replaces the loopback default");
  } finally {
    await open.close();
    await listed.close();
  }
});

test("security headers: a same-origin CSP with frame-ancestors 'none' everywhere; no page runs inline scripts, the playground included", async () => {
  const dashboard = await fetch(server.url.replace(/graphql$/, ""));
  const playground = await fetch(server.url, { headers: { accept: "text/html" } });
  const api = await fetch(server.url, { method: "POST", headers: { "content-type": "application/json", ...bearer(READER) }, body: JSON.stringify({ query: TRIAL_QUERY }) });
  for (const [what, res] of [["dashboard", dashboard], ["playground", playground], ["API", api]] as const) {
    const csp = res.headers.get("content-security-policy") ?? "";
    assert.match(csp, /frame-ancestors 'none'/, what);
    assert.match(csp, /default-src 'self'/, what);
    assert.equal(res.headers.get("x-content-type-options"), "nosniff", what);
    assert.equal(res.headers.get("referrer-policy"), "no-referrer", what);
    assert.equal(res.headers.get("x-frame-options"), "DENY", what);
  }
  for (const page of [dashboard, playground]) {
    assert.match(page.headers.get("content-security-policy")!, /script-src 'self';/);
    assert.doesNotMatch(page.headers.get("content-security-policy")!, /script-src[^;]*unsafe/);
  }
});
