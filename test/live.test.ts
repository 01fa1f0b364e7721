/**
 * Live without gaps, over graphql-ws with real clients against the real service and local XGBoost
 * jobs: subscriptions start from the current state, follow a job's trial from before its first
 * step, report each real change once, and resume after a dropped socket with `after: eventId`
 * (no gap, no repeat); cursors past the retention answer CURSOR_EXPIRED.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import path from "node:path";
import type { Client } from "graphql-ws";
import { startTestServer, type TestServer } from "./support/server.js";
import { FIXTURES } from "./support/fixtures.js";
import { collect, errorsOf, eventually, killableClient, wsClient, type CollectedSubscription } from "./support/ws-events.js";

let server: TestServer;
const clients: Client[] = [];

const LAB = (name: string, rounds = 51) => ({
  backend: "LOCAL",
  name,
  algorithm: { builtin: "xgboost", version: "1.7-1" },
  hyperparameters: { max_depth: "5", eta: "0.2", gamma: "4", min_child_weight: "6", subsample: "0.7", objective: "reg:squarederror", num_round: String(rounds) },
  inputs: [
    { name: "train", uri: "lab/abalone.train.libsvm", contentType: "libsvm" },
    { name: "validation", uri: "lab/abalone.validation.libsvm", contentType: "libsvm" },
  ],
  debugHookConfig: { collectionConfigs: [{ name: "metrics", parameters: { save_interval: "5" } }] },
  rules: [
    { builtin: "LossNotDecreasing", parameters: { collection_names: "metrics", num_steps: "10" } },
    { builtin: "Overtraining", name: "overtraining" },
  ],
});

export const RULE_SUB = `subscription($j: String, $a: String) { ruleStatusChanged(jobName: $j, after: $a) { eventId jobName previousStatus rule { ruleConfigurationName ruleEvaluationStatus statusDetails } } }`;
export const STATUS_SUB = `subscription($j: String, $a: String) { trainingJobStatusChanged(jobName: $j, after: $a) { eventId previousStatus job { name status secondaryStatus } } }`;
export const UPDATED_SUB = `subscription($j: String, $a: String) { trainingJobUpdated(jobName: $j, after: $a) { eventId name status secondaryStatus progress { current total } } }`;
const STEPS_SUB = `subscription($p: String!, $a: String) { trialStepsAdded(path: $p, after: $a) { eventId path steps lastCompleteStep trainingEnded } }`;

function client(url = server.wsUrl): Client {
  const c = wsClient(url);
  clients.push(c);
  return c;
}

async function copyLab(dataDir: string): Promise<void> {
  await fs.mkdir(path.join(dataDir, "lab"), { recursive: true });
  for (const f of ["abalone.train.libsvm", "abalone.validation.libsvm"]) await fs.copyFile(path.join(FIXTURES, "data", f), path.join(dataDir, "lab", f));
}

async function start(s: { gql: TestServer["gql"] }, input: unknown): Promise<any> {
  const { body } = await s.gql(`mutation($i: StartTrainingJobInput!) { startTrainingJob(input: $i) { name debugOutputPath status } }`, { i: input });
  assert.equal(body.errors, undefined, JSON.stringify(body.errors));
  return body.data.startTrainingJob;
}

const ruleLine = (r: any) => `${r.data.ruleStatusChanged.rule.ruleConfigurationName}:${r.data.ruleStatusChanged.previousStatus}>${r.data.ruleStatusChanged.rule.ruleEvaluationStatus}`;
const statusLine = (r: any) => `${r.data.trainingJobStatusChanged.previousStatus}>${r.data.trainingJobStatusChanged.job.status}`;
const finalRule = (s: string) => s !== "IN_PROGRESS";
const idOf = (r: any) => Number(Object.values(r.data as Record<string, any>)[0].eventId);

before(async () => {
  server = await startTestServer({ TRIALGRAPH_POLL_INTERVAL_MS: "100" });
  await copyLab(server.dataDir);
});

after(async () => {
  await Promise.all(clients.map((c) => c.dispose()));
  await server?.close();
});

test("right after startTrainingJob: the trial from its first step to trainingEnded, and each real change of the job and its rules exactly once", async () => {
  const name = "live-counted";
  const job = await start(server, LAB(name));
  const c = client();
  // Subscribed right after the start: the trial does not exist yet, which is normal for a known job's trial.
  const steps = collect(c, STEPS_SUB, { p: job.debugOutputPath });
  // Every job, from the beginning of the log: what happened before these subscriptions were open is replayed.
  const rules = collect(c, RULE_SUB, { a: "0" });
  const statuses = collect(c, STATUS_SUB, { a: "0" });
  const updates = collect(c, UPDATED_SUB, { a: "0" });

  await eventually(() => steps.completed, "the steps subscription completing at the end of training", 120_000);
  assert.equal(steps.error, undefined);
  const delivered = steps.results.flatMap((r) => r.data.trialStepsAdded.steps);
  const { body } = await server.gql(`query($p: String!) { trial(path: $p) { steps } }`, { p: job.debugOutputPath });
  assert.deepEqual(delivered, body.data.trial.steps, "every saved step, once, in order");
  assert.ok(delivered.length >= 10, `the lab saves steps 0, 5, ..., 50: ${delivered}`);
  const last = steps.results.at(-1).data.trialStepsAdded;
  assert.equal(last.trainingEnded, true);
  assert.ok(steps.results.slice(0, -1).every((r) => !r.data.trialStepsAdded.trainingEnded), "trainingEnded only on the last event");

  const mine = (sub: CollectedSubscription, key: string) => sub.results.filter((r) => (r.data[key].jobName ?? r.data[key].job?.name ?? r.data[key].name) === name);
  await eventually(() => mine(rules, "ruleStatusChanged").filter((r) => finalRule(r.data.ruleStatusChanged.rule.ruleEvaluationStatus)).length === 2, "both rules' final status", 60_000);
  await eventually(() => mine(statuses, "trainingJobStatusChanged").some((r) => r.data.trainingJobStatusChanged.job.status === "COMPLETED"), "COMPLETED");
  await eventually(() => mine(updates, "trainingJobUpdated").some((r) => r.data.trainingJobUpdated.status === "COMPLETED"), "the COMPLETED update");

  const ruleEvents = mine(rules, "ruleStatusChanged");
  assert.deepEqual(ruleEvents.map(ruleLine).sort(), [
    "LossNotDecreasing:IN_PROGRESS>ISSUES_FOUND", "LossNotDecreasing:null>IN_PROGRESS",
    "overtraining:IN_PROGRESS>NO_ISSUES_FOUND", "overtraining:null>IN_PROGRESS",
  ], "one IN_PROGRESS report per rule, then its final status");
  for (const r of ruleEvents.filter((e) => e.data.ruleStatusChanged.previousStatus === null)) {
    assert.ok(r.data.ruleStatusChanged.rule.statusDetails, "the first report keeps its status detail");
  }
  assert.deepEqual(mine(statuses, "trainingJobStatusChanged").map(statusLine), ["null>IN_PROGRESS", "IN_PROGRESS>COMPLETED"], "status changes only");

  const ups = mine(updates, "trainingJobUpdated").map((r) => r.data.trainingJobUpdated);
  const ids = ups.map((u) => Number(u.eventId));
  assert.deepEqual(ids, [...ids].sort((a, b) => a - b), "in cursor order");
  assert.equal(new Set(ids).size, ids.length, "no event twice");
  const states = ups.map((u) => `${u.status}/${u.secondaryStatus}/${u.progress?.current}`);
  assert.equal(new Set(states).size, states.length, `each update says something new: ${states}`);
  const progress = ups.map((u) => u.progress?.current ?? 0);
  assert.deepEqual(progress, [...progress].sort((a, b) => a - b), "progress only moves forward");
  assert.ok(new Set(progress).size > 3, `progress moves as rounds finish: ${progress}`);
  for (const s of [rules, statuses, updates]) s.stop();
});

test("subscribing after the end: the current state arrives at once; an ended trial sends its steps with trainingEnded and completes", async () => {
  const name = "live-counted";
  const c = client();
  const rules = collect(c, RULE_SUB, { j: name });
  const statuses = collect(c, STATUS_SUB, { j: name });
  const updates = collect(c, UPDATED_SUB, { j: name });
  const { body } = await server.gql(`query($n: String!) { trainingJob(name: $n) { debugOutputPath trial { steps } } }`, { n: name });
  const steps = collect(c, STEPS_SUB, { p: body.data.trainingJob.debugOutputPath });

  await eventually(() => rules.results.length === 2 && statuses.results.length === 1 && updates.results.length === 1 && steps.completed, "the current state of everything");
  assert.deepEqual(rules.results.map(ruleLine).sort(), ["LossNotDecreasing:null>ISSUES_FOUND", "overtraining:null>NO_ISSUES_FOUND"]);
  assert.deepEqual(statuses.results.map(statusLine), ["null>COMPLETED"]);
  assert.equal(updates.results[0].data.trainingJobUpdated.status, "COMPLETED");
  assert.equal(steps.results.length, 1);
  assert.deepEqual(steps.results[0].data.trialStepsAdded.steps, body.data.trainingJob.trial.steps);
  assert.equal(steps.results[0].data.trialStepsAdded.trainingEnded, true);

  // Resuming the trial after its third step gives the rest.
  const cursor = `step:${body.data.trainingJob.trial.steps[2]}`;
  const rest = collect(c, STEPS_SUB, { p: body.data.trainingJob.debugOutputPath, a: cursor });
  await eventually(() => rest.completed, "the resumed trial subscription completing");
  assert.deepEqual(rest.results.flatMap((r) => r.data.trialStepsAdded.steps), body.data.trainingJob.trial.steps.slice(3));
  for (const s of [rules, statuses, updates]) s.stop();
});

test("a socket killed mid-job resumes with after: no gap and no repeat against a subscriber that stayed connected", async () => {
  const name = "live-resumed";
  await start(server, LAB(name, 150));
  const control = collect(client(), UPDATED_SUB, { j: name });
  const cut = killableClient(server.wsUrl);
  clients.push(cut.client);
  const first = collect(cut.client, UPDATED_SUB, { j: name });
  await first.waitFor((r) => (r.data?.trainingJobUpdated?.progress?.current ?? 0) > 0, "progress before the cut", 60_000);
  const firstPart = first.results.slice();
  cut.kill();
  const lastId = firstPart.at(-1).data.trainingJobUpdated.eventId;
  const resumed = collect(client(), UPDATED_SUB, { j: name, a: lastId });
  await resumed.waitFor((r) => r.data.trainingJobUpdated.status === "COMPLETED", "COMPLETED after resuming", 120_000);
  await control.waitFor((r) => r.data.trainingJobUpdated.status === "COMPLETED", "COMPLETED on the control", 120_000);

  // No repeat: across the cut, every eventId once, increasing.
  const ids = [...firstPart.slice(1), ...resumed.results].map(idOf);
  assert.deepEqual(ids, [...new Set(ids)].sort((a, b) => a - b), "no event twice, in order");
  // No gap: whatever the uninterrupted subscriber got after the cursor, the resumed one got too.
  const resumedIds = new Set(resumed.results.map(idOf));
  const missing = control.results.filter((r) => idOf(r) > Number(lastId) && !resumedIds.has(idOf(r))).map(idOf);
  assert.deepEqual(missing, [], "events after the cursor that the resumed stream lacks");
  assert.ok(resumed.results.length > 3, `the job moved after the cut: ${resumed.results.length} updates`);
  // And the resumed stream (part replay, part live) equals a pure replay of the log from the same cursor.
  const replay = collect(client(), UPDATED_SUB, { j: name, a: lastId });
  await replay.waitFor((r) => r.data.trainingJobUpdated.status === "COMPLETED", "COMPLETED in the replay");
  assert.deepEqual(resumed.results.map((r) => JSON.stringify(r.data)), replay.results.map((r) => JSON.stringify(r.data)));
  replay.stop();
  control.stop();
  resumed.stop();
});

test("bad cursors and unknown trials are clear errors", async () => {
  const c = client();
  const cases: [string, Record<string, unknown>, string][] = [
    [UPDATED_SUB, { j: "live-counted", a: "not-a-cursor" }, "BAD_USER_INPUT"],
    [STATUS_SUB, { a: "999999999999" }, "CURSOR_EXPIRED"],
    [RULE_SUB, { j: "no-such-job" }, "NOT_FOUND"],
    [STEPS_SUB, { p: "trials/no-such-trial" }, "NOT_FOUND"],
    [STEPS_SUB, { p: "trials/example", a: "12" }, "BAD_USER_INPUT"],
  ];
  for (const [query, variables, code] of cases) {
    const sub = collect(c, query, variables);
    const errors = errorsOf(await sub.waitForError());
    assert.equal(errors[0]?.extensions?.code, code, `${JSON.stringify(variables)}: ${JSON.stringify(errors)}`);
  }
});

test("a cursor older than the retention answers CURSOR_EXPIRED", async () => {
  const small = await startTestServer({ TRIALGRAPH_POLL_INTERVAL_MS: "100", TRIALGRAPH_EVENT_RETENTION_COUNT: "100", TRIALGRAPH_EVENT_RETENTION_MS: "2000" });
  const c = wsClient(small.wsUrl);
  try {
    await copyLab(small.dataDir);
    await start(small, LAB("live-expiring", 150));
    // Subscribed by name after the start: the current state comes first, with a cursor from the log.
    // (A subscription sent before the start could reach a loaded machine after the job's first
    // events were already pruned at this short retention, and begin with CURSOR_EXPIRED itself.)
    const early = collect(c, UPDATED_SUB, { j: "live-expiring" });
    const first = await early.waitFor(() => true, "the current state");
    assert.ok(first.data, `the current state, not ${JSON.stringify(first.errors)}`);
    const firstId = first.data.trainingJobUpdated.eventId;
    assert.match(firstId, /^\d+$/);
    await early.waitFor((r) => r.data.trainingJobUpdated.status === "COMPLETED", "COMPLETED", 120_000);
    early.stop();
    // Pruned past the retention (count and age), every second: the first cursor expires.
    const errors = await eventually(async () => {
      const sub = collect(c, UPDATED_SUB, { a: firstId });
      const result = await Promise.race([sub.waitForError(3000).then(errorsOf, () => null), sub.waitFor(() => true, "an event", 3000).then(() => null, () => null)]);
      sub.stop();
      return result?.[0]?.extensions?.code === "CURSOR_EXPIRED" ? result : undefined;
    }, "the first cursor expiring", 30_000, 500);
    assert.match(errors[0].message, /pruned/);
  } finally {
    await c.dispose();
    await small.close();
  }
});
