/**
 * Queries have no side effects: evaluateRules (any reader may send it) never POSTs to a webhook nor
 * stops a job, whatever the rules say. Actions run only for rules attached to jobs (operator
 * mutations), and a rule's own webhook must target an allowed host (TRIALGRAPH_WEBHOOK_ALLOWED_HOSTS);
 * the global TRIALGRAPH_WEBHOOK_URL is trusted configuration. Probed with a real HTTP listener.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { promises as fs } from "node:fs";
import path from "node:path";
import { startTestServer, type TestServer } from "./support/server.js";
import { ABALONE_TRIAL, FIXTURES } from "./support/fixtures.js";

let listener: http.Server;
let hits: { url: string; body: any }[] = [];
let hookBase: string;
let server: TestServer;
let allowing: TestServer;

before(async () => {
  listener = http.createServer((req, res) => {
    let text = "";
    req.on("data", (c) => (text += c));
    req.on("end", () => {
      hits.push({ url: req.url ?? "", body: text ? JSON.parse(text) : null });
      res.end("ok");
    });
  });
  await new Promise<void>((r) => listener.listen(0, "127.0.0.1", r));
  hookBase = `http://127.0.0.1:${(listener.address() as AddressInfo).port}`;
  server = await startTestServer();
  allowing = await startTestServer({ TRIALGRAPH_WEBHOOK_ALLOWED_HOSTS: `127.0.0.1:${(listener.address() as AddressInfo).port}` });
  for (const s of [server, allowing]) {
    await fs.cp(ABALONE_TRIAL, path.join(s.dataDir, "trials/abalone"), { recursive: true });
    await fs.mkdir(path.join(s.dataDir, "lab"), { recursive: true });
    for (const f of ["abalone.train.libsvm", "abalone.validation.libsvm"]) {
      await fs.copyFile(path.join(FIXTURES, "data", f), path.join(s.dataDir, "lab", f));
    }
  }
});

after(async () => {
  await server.close();
  await allowing.close();
  await new Promise((r) => listener.close(r));
});

const FIRING_RULE = (url: string) => ({
  builtin: "LossNotDecreasing",
  parameters: {
    collection_names: "metrics", num_steps: "10", webhook_url: `${url}/rule`,
    action_json: JSON.stringify([{ name: "StopTraining", training_job_prefix: "" }, { name: "webhook", url: `${url}/action` }]),
  },
});

const LAB_JOB = (name: string, rule: unknown) => ({
  backend: "LOCAL", name, algorithm: { builtin: "xgboost", version: "1.7-1" },
  hyperparameters: { max_depth: "5", eta: "0.2", gamma: "4", min_child_weight: "6", subsample: "0.7", objective: "reg:squarederror", num_round: "51" },
  inputs: [{ name: "train", uri: "lab/abalone.train.libsvm", contentType: "libsvm" }, { name: "validation", uri: "lab/abalone.validation.libsvm", contentType: "libsvm" }],
  debugHookConfig: { collectionConfigs: [{ name: "metrics", parameters: { save_interval: "5" } }] },
  rules: [rule],
});
const START = `mutation($i: StartTrainingJobInput!) { startTrainingJob(input: $i) { name status } }`;

test("evaluateRules is a query: a firing rule's webhook and stop-training actions never run", async () => {
  hits = [];
  const { body } = await server.gql(`query($r: [RuleInput!]!) { evaluateRules(path: "trials/abalone", rules: $r) { status statusDetails } }`, { r: [FIRING_RULE(hookBase)] });
  assert.equal(body.errors, undefined, JSON.stringify(body.errors));
  assert.equal(body.data.evaluateRules[0].status, "ISSUES_FOUND");
  await new Promise((r) => setTimeout(r, 500));
  assert.deepEqual(hits, [], "no request left the service");
  // Probing the internal network through it is impossible too: a closed port answers just as fast and the same way.
  const probe = await server.gql(`query($r: [RuleInput!]!) { evaluateRules(path: "trials/abalone", rules: $r) { status } }`, { r: [FIRING_RULE("http://10.255.255.1:81")] });
  assert.equal(probe.body.data.evaluateRules[0].status, "ISSUES_FOUND");
});

test("a rule's webhook not on TRIALGRAPH_WEBHOOK_ALLOWED_HOSTS is BAD_USER_INPUT when the job starts; no job is created", async () => {
  const { body } = await server.gql(START, { i: LAB_JOB("hook-refused", FIRING_RULE(hookBase)) });
  assert.equal(body.errors?.[0]?.extensions.code, "BAD_USER_INPUT", JSON.stringify(body));
  assert.match(body.errors[0].message, /webhook 127\.0\.0\.1:\d+ is not an allowed target \(TRIALGRAPH_WEBHOOK_ALLOWED_HOSTS/);
  const job = await server.gql(`{ trainingJob(name: "hook-refused") { name } }`);
  assert.equal(job.body.data.trainingJob, null);
});

test("rules attached to a job (operator) act: the allowed webhook receives the firing rule's summary", async () => {
  hits = [];
  const started = await allowing.gql(START, { i: LAB_JOB("hook-allowed", { ...FIRING_RULE(hookBase), parameters: { ...FIRING_RULE(hookBase).parameters, action_json: JSON.stringify({ name: "webhook", url: `${hookBase}/action` }) } }) });
  assert.equal(started.body.errors, undefined, JSON.stringify(started.body.errors));
  const until = Date.now() + 120_000;
  while (!hits.some((h) => h.url === "/rule") && Date.now() < until) await new Promise((r) => setTimeout(r, 200));
  const urls = hits.map((h) => h.url).sort();
  assert.deepEqual(urls, ["/action", "/rule"]);
  assert.equal(hits[0].body.trainingJobName, "hook-allowed");
  assert.equal(hits[0].body.ruleEvaluationStatus, "ISSUES_FOUND");
});
