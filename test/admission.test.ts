/**
 * Heavy operations (estimated cost ≥ TRIALGRAPH_HEAVY_COST) run a few at a time and the others wait
 * their turn; a waiting operation whose client leaves is dropped without running; a full queue is
 * LIMIT_EXCEEDED (limit "queue", retryable, HTTP 429). Real service, real HTTP and WebSocket clients.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { createClient } from "graphql-ws";
import WebSocket from "ws";
import { AdmissionQueue } from "../src/graphql/limits.js";
import { startTestServer, type TestServer } from "./support/server.js";
import { installPerfTrial } from "./support/fixtures.js";
import { TrialWriter } from "../src/trials/trial-writer.js";

let server: TestServer;
let rulesDir: string;

before(async () => {
  // A custom rule whose first step never ends: evaluating it holds the heavy slot until the step
  // timeout (1.5 s), so the tests know the slot is taken whatever the machine's speed.
  rulesDir = await fs.mkdtemp(path.join(os.tmpdir(), "trialgraph-admission-rules-"));
  await fs.writeFile(path.join(rulesDir, "loops.js"), `module.exports = { name: "Loops", parameters: [], requiredTensors() { return []; }, invokeAtStep() { for (;;) {} } };`);
  server = await startTestServer({
    TRIALGRAPH_MAX_HEAVY_RUNNING: "1",
    TRIALGRAPH_MAX_HEAVY_QUEUED: "2",
    // One rule evaluation is estimated at 1,000: heavy here, as are whole-trial reads.
    TRIALGRAPH_HEAVY_COST: "1000",
    TRIALGRAPH_RULES_DIR: rulesDir,
    TRIALGRAPH_RULE_STEP_TIMEOUT_MS: "1500",
  });
  installPerfTrial(server.dataDir);
});
after(async () => {
  await server.close();
  await fs.rm(rulesDir, { recursive: true, force: true });
});

/** Holds the one heavy slot for about 1.5 s. */
const HOLDER = `{ evaluateRules(path: "trials/perf", rules: [{ builtin: "Loops" }]) { status } }`;

/** Every value of the perf trial (281,275): long enough to run that the other requests find the slot taken. */
const WHOLE_TRIAL = `{ trial(path: "trials/perf") { tensors { values { step data } } } }`;
/** Heavy by its estimated cost (50 tensors × 1,000 steps assumed), cheap to answer. */
const HEAVY_CHEAP = `{ trial(path: "trials/perf") { tensors(regex: "rmse$") { name values(toStep: 5000) { step } } } }`;

/** A POST on its own connection; `leaveAfterMs` aborts it (the client goes away). */
function post(query: string, leaveAfterMs?: number): Promise<{ status: number; body: any } | "left"> {
  const url = new URL(server.url);
  return new Promise((resolve, reject) => {
    const ac = new AbortController();
    const req = http.request({ host: url.hostname, port: url.port, path: url.pathname, method: "POST", agent: false, signal: ac.signal, headers: { "content-type": "application/json" } }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
      res.on("error", reject);
    });
    req.on("error", (e) => (ac.signal.aborted ? resolve("left") : reject(e)));
    req.end(JSON.stringify({ query }));
    if (leaveAfterMs !== undefined) setTimeout(() => ac.abort(), leaveAfterMs);
  });
}

async function metric(name: string): Promise<number> {
  const text = await (await fetch(server.url.replace(/\/graphql$/, "/metrics"))).text();
  const m = new RegExp(`^${name.replace(/[{}]/g, "\\$&")} (\\d+)`, "m").exec(text);
  return m ? Number(m[1]) : 0;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sends HOLDER and resolves once it holds the heavy slot (however loaded the machine), with its answer to come. */
async function hold(): Promise<{ answer: ReturnType<typeof post> }> {
  const answer = post(HOLDER);
  for (let i = 0; i < 200 && (await metric(`trialgraph_heavy_operations{state="running"}`)) !== 1; i++) await sleep(10);
  return { answer };
}

test("AdmissionQueue: runs `running` at a time, admits the waiting in order, refuses beyond `queued`, drops a waiting one whose client left", async () => {
  const q = new AdmissionQueue(1, 2);
  const order: string[] = [];
  const first = await q.enter(new AbortController().signal);
  const leaving = new AbortController();
  const second = q.enter(new AbortController().signal).then((release) => (order.push("second"), release));
  const gone = q.enter(leaving.signal);
  await assert.rejects(q.enter(new AbortController().signal), (e: any) => e.extensions.code === "LIMIT_EXCEEDED" && e.extensions.limit === "queue" && e.extensions.retryable === true && e.extensions.http.status === 429);
  assert.deepEqual(q.load, { running: 1, waiting: 2 });
  leaving.abort();
  await assert.rejects(gone, (e: any) => e.extensions.limit === "cancelled");
  assert.deepEqual(q.load, { running: 1, waiting: 1 });
  const third = q.enter(new AbortController().signal).then((release) => (order.push("third"), release));
  first();
  first(); // twice: the slot is given back once
  const releaseSecond = await second;
  assert.deepEqual(q.load, { running: 1, waiting: 1 });
  releaseSecond();
  (await third)();
  assert.deepEqual(order, ["second", "third"]);
  assert.deepEqual(q.load, { running: 0, waiting: 0 });
  await assert.rejects(q.enter(AbortSignal.abort()), (e: any) => e.extensions.limit === "cancelled");
});

test("HTTP: heavy requests wait for the one slot and are all answered in full; beyond the queue, LIMIT_EXCEEDED (queue) with HTTP 429", async () => {
  const holder = await hold();
  const waiting = [post(WHOLE_TRIAL), post(HEAVY_CHEAP)];
  await sleep(50);
  assert.equal(await metric(`trialgraph_heavy_operations{state="waiting"}`), 2);
  const refused = await post(HEAVY_CHEAP);
  assert.notEqual(refused, "left");
  if (refused === "left") return;
  assert.equal(refused.status, 429, JSON.stringify(refused.body));
  assert.equal(refused.body.errors[0].extensions.code, "LIMIT_EXCEEDED");
  assert.equal(refused.body.errors[0].extensions.limit, "queue");
  assert.equal(refused.body.errors[0].extensions.retryable, true);
  assert.equal(refused.body.data, undefined, "nothing ran");
  // A light request does not wait.
  const light = await server.gql(`{ trial(path: "trials/perf") { tensor(name: "train-rmse") { value(step: 3) { step } } } }`);
  assert.deepEqual(light.body, { data: { trial: { tensor: { value: { step: 3 } } } } });
  const held = await holder.answer;
  assert.ok(held !== "left" && held.status === 200, JSON.stringify(held).slice(0, 300));
  const [whole, cheap] = await Promise.all(waiting);
  assert.ok(whole !== "left" && whole.status === 200 && !whole.body.errors, JSON.stringify(whole).slice(0, 300));
  assert.equal(whole.body.data.trial.tensors.reduce((n: number, t: any) => n + t.values.length, 0), 281_275);
  assert.ok(cheap !== "left" && cheap.status === 200 && !cheap.body.errors, JSON.stringify(cheap).slice(0, 300));
  assert.ok(cheap.body.data.trial.tensors.length > 0 && cheap.body.data.trial.tensors.every((t: any) => t.values.length === 500));
  assert.equal(await metric(`trialgraph_heavy_operations{state="running"}`), 0);
});

test("HTTP: clients that leave while their heavy request waits are dropped without running; the next one runs as soon as the slot is free", async () => {
  const cancelledBefore = await metric(`trialgraph_limit_rejections_total{code="LIMIT_EXCEEDED",limit="cancelled"}`);
  const holder = await hold();
  const leavers = [post(WHOLE_TRIAL, 100), post(WHOLE_TRIAL, 100)];
  assert.deepEqual(await Promise.all(leavers), ["left", "left"]);
  await sleep(50);
  assert.equal(await metric(`trialgraph_heavy_operations{state="waiting"}`), 0, "the queue forgot them");
  const next = post(HEAVY_CHEAP);
  assert.ok((await holder.answer) !== "left");
  const r = await next;
  assert.ok(r !== "left" && r.status === 200 && !r.body.errors, JSON.stringify(r).slice(0, 300));
  assert.equal(await metric(`trialgraph_limit_rejections_total{code="LIMIT_EXCEEDED",limit="cancelled"}`), cancelledBefore + 2);
});

test("HTTP: a client that leaves in the middle of a whole-trial read frees the slot for the next one, which is answered in full", async () => {
  // 30 ms in: the trial is being read, or its values completed (a warm read takes several hundred ms).
  const left = await post(WHOLE_TRIAL, 30);
  assert.equal(left, "left");
  const r = await post(WHOLE_TRIAL);
  assert.ok(r !== "left" && r.status === 200 && !r.body.errors, JSON.stringify(r).slice(0, 300));
  assert.equal(r.body.data.trial.tensors.reduce((n: number, t: any) => n + t.values.length, 0), 281_275);
  await sleep(50);
  assert.equal(await metric(`trialgraph_heavy_operations{state="running"}`), 0);
});

test("WebSocket: a heavy query waits for the same slot and is answered in full", async () => {
  const client = createClient({ url: server.wsUrl, webSocketImpl: WebSocket, retryAttempts: 0 });
  try {
    const holder = await hold();
    const viaWs = new Promise<any>((resolve, reject) => {
      let result: any;
      client.subscribe({ query: HEAVY_CHEAP }, { next: (r) => (result = r), error: reject, complete: () => resolve(result) });
    });
    await sleep(100);
    assert.equal(await metric(`trialgraph_heavy_operations{state="waiting"}`), 1);
    const r = await viaWs;
    assert.equal(r.errors, undefined);
    assert.ok(r.data.trial.tensors.every((t: any) => t.values.length === 500));
    assert.ok((await holder.answer) !== "left");
  } finally {
    await client.dispose();
  }
});

test("HTTP: judged by the real size of the trials it names: an alias bomb of whole-trial reads is refused before it runs or waits, a small trial's whole read does not wait", async () => {
  const small = new TrialWriter(path.join(server.dataDir, "trials/small"));
  for (let step = 0; step < 10; step++) {
    await small.writeStep(step, ["a", "b", "c"].map((name, i) => ({ name, dtype: "float32" as const, shape: [1], values: [step * i] })));
  }
  await small.end();
  // Both trials open (a trial not open yet is judged by the assumed size).
  assert.equal((await server.gql(`{ trial(path: "trials/small") { steps } }`)).body.data.trial.steps.length, 10);
  assert.equal((await server.gql(`{ trial(path: "trials/perf") { lastCompleteStep } }`)).body.data.trial.lastCompleteStep, 499);
  const readsBefore = await metric(`trialgraph_heavy_operations{state="waiting"}`);
  assert.equal(readsBefore, 0);

  const holder = await hold();
  // Three whole reads of 281,275 values: over the 256 MB a request may hold, known before reading.
  const bomb = await post(`{ trial(path: "trials/perf") { a: tensors { values { data } } b: tensors { values { data } } c: tensors { values { step } } } }`);
  assert.ok(bomb !== "left");
  assert.equal(bomb.status, 400, JSON.stringify(bomb.body));
  assert.equal(bomb.body.errors[0].extensions.code, "LIMIT_EXCEEDED");
  assert.equal(bomb.body.errors[0].extensions.limit, "memory");
  assert.equal(bomb.body.data, undefined, "nothing ran");
  // The same through patterns that list every tensor: sized by the tensors they list.
  const listed = await post(`{ trial(path: "trials/perf") { a: tensors(regex: ".") { values { data } } b: tensors(regex: "^[^#]") { values { data } } c: tensors(regex: "$") { values { step } } } }`);
  assert.ok(listed !== "left");
  assert.equal(listed.status, 400, JSON.stringify(listed.body));
  assert.equal(listed.body.errors[0].extensions.limit, "memory");
  assert.equal(listed.body.data, undefined, "nothing ran");
  // Every value of the small trial, heavy by the assumed size (50 tensors × 1,000 steps): answered while the slot is taken.
  const smallRead = await post(`{ trial(path: "trials/small") { tensors { name values { step data } } } }`);
  assert.ok(smallRead !== "left" && smallRead.status === 200 && !smallRead.body.errors, JSON.stringify(smallRead));
  assert.deepEqual(smallRead.body.data.trial.tensors.map((t: any) => [t.name, t.values.length, t.values[9].data[0]]), [["a", 10, 0], ["b", 10, 9], ["c", 10, 18]]);
  assert.equal(await metric(`trialgraph_heavy_operations{state="running"}`), 1, "the holder still runs");
  // The perf trial's whole read still takes its turn.
  const whole = post(WHOLE_TRIAL);
  await sleep(50);
  assert.equal(await metric(`trialgraph_heavy_operations{state="waiting"}`), 1);
  assert.ok((await holder.answer) !== "left");
  const r = await whole;
  assert.ok(r !== "left" && r.status === 200 && !r.body.errors, JSON.stringify(r).slice(0, 300));
});
