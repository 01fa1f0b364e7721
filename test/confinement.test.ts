/**
 * Nothing a request names may be read from outside the data directory: links planted in a trial
 * (its folder, index/, events/, one event file), in job inputs, or in the trials folder itself are
 * refused with FORBIDDEN_PATH naming the link, and special files (FIFOs) are refused without
 * blocking the service. S3 access can be limited to listed buckets. Real files, a real service,
 * real HTTP.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { startTestServer, type TestServer } from "./support/server.js";
import { TrialWriter } from "../src/trials/trial-writer.js";
import { freePort } from "./support/net.js";

const SECRET = 4242.5;
let outside: string;
let server: TestServer;

async function writeTrial(dir: string, value: number): Promise<void> {
  const w = new TrialWriter(dir);
  for (let step = 0; step < 3; step++) {
    await w.writeStep(step, [{ name: "train-rmse", dtype: "float64", shape: [1], values: [value + step] }]);
  }
  await w.writeCollections([{ name: "metrics", includeRegex: ["rmse"] }]);
  await w.end();
}

const VALUE_QUERY = `query($p: String!) { trial(path: $p) { steps tensor(name: "train-rmse") { value(step: 1) { scalar } } } }`;

function errorsOf(body: any): any[] {
  return body.errors ?? [];
}

before(async () => {
  outside = await fs.mkdtemp(path.join(os.tmpdir(), "trialgraph-outside-"));
  await writeTrial(path.join(outside, "planted"), SECRET);
  await fs.writeFile(path.join(outside, "secret.libsvm"), "SECRET-LINE-7 1:2\n");
  server = await startTestServer();
  const trials = path.join(server.dataDir, "trials");
  await writeTrial(path.join(trials, "real"), 1);
  // 1. the trial folder is a link out
  await fs.symlink(path.join(outside, "planted"), path.join(trials, "whole-link"));
  // 2. index/ is a link out (events inside)
  await writeTrial(path.join(trials, "index-link"), 1);
  await fs.rm(path.join(trials, "index-link/index"), { recursive: true });
  await fs.symlink(path.join(outside, "planted/index"), path.join(trials, "index-link/index"));
  // 3. events/ is a link out: the index inside points into planted values
  await writeTrial(path.join(trials, "events-link"), 1);
  await fs.rm(path.join(trials, "events-link/events"), { recursive: true });
  await fs.symlink(path.join(outside, "planted/events"), path.join(trials, "events-link/events"));
  // 4. one event file is a link out
  await writeTrial(path.join(trials, "file-link"), 1);
  const eventFile = "events/000000000001/000000000001_worker_0.tfevents";
  await fs.rm(path.join(trials, "file-link", eventFile));
  await fs.symlink(path.join(outside, "planted", eventFile), path.join(trials, "file-link", eventFile));
  // 5. one event file is a FIFO
  await writeTrial(path.join(trials, "fifo"), 1);
  await fs.rm(path.join(trials, "fifo", eventFile));
  execFileSync("mkfifo", [path.join(trials, "fifo", eventFile)]);
  // 6. a link that stays inside the data directory is fine
  await fs.symlink(path.join(trials, "real"), path.join(trials, "alias"));
  // 7. collections/ is a link out
  await writeTrial(path.join(trials, "collections-link"), 1);
  await fs.rm(path.join(trials, "collections-link/collections"), { recursive: true });
  await fs.symlink(path.join(outside, "planted/collections"), path.join(trials, "collections-link/collections"));
});

after(async () => {
  await server?.close();
  await fs.rm(outside, { recursive: true, force: true });
  await fs.rm(server.dataDir, { recursive: true, force: true });
});

test("a trial folder, index/, events/ or collections/ linked out of the data directory is refused, naming the link", async () => {
  for (const [trial, link] of [
    ["trials/whole-link", "trials/whole-link"],
    ["trials/index-link", "index"],
    ["trials/collections-link", "collections"],
    ["trials/events-link", "events"],
    ["trials/file-link", "events/000000000001/000000000001_worker_0.tfevents"],
  ]) {
    const { body } = await server.gql(VALUE_QUERY, { p: trial });
    const errors = errorsOf(body);
    assert.ok(errors.length > 0, `${trial}: refused`);
    const e = errors[0];
    assert.equal(e.extensions.code, "FORBIDDEN_PATH", `${trial}: ${e.message}`);
    assert.match(e.message, new RegExp(`${link.replace(/[./]/g, "\\$&")} is a symbolic link whose target is outside the data directory`), trial);
    const text = JSON.stringify(body);
    assert.ok(!text.includes(String(SECRET + 1)), `${trial}: no planted value comes back`);
    assert.ok(!text.includes(outside) && !text.includes(server.dataDir), `${trial}: no absolute server path in the answer`);
  }
});

test("a link that stays inside the data directory reads normally", async () => {
  const { body } = await server.gql(VALUE_QUERY, { p: "trials/alias" });
  assert.equal(body.errors, undefined, JSON.stringify(body.errors));
  assert.deepEqual(body.data.trial.steps, [0, 1, 2]);
  assert.equal(body.data.trial.tensor.value.scalar, 2);
});

test("a FIFO in place of an event file is refused at once; the service keeps answering", async () => {
  const [fifo, health] = await Promise.all([
    server.gql(VALUE_QUERY, { p: "trials/fifo" }),
    fetch(server.url.replace(/graphql$/, "healthz")).then((r) => r.status),
  ]);
  assert.equal(health, 200);
  const e = errorsOf(fifo.body)[0];
  assert.equal(e?.extensions.code, "FORBIDDEN_PATH", JSON.stringify(fifo.body));
  assert.match(e.message, /is a FIFO, not a regular file/);
  // Other steps of the same trial still read.
  const other = await server.gql(`{ trial(path: "trials/fifo") { tensor(name: "train-rmse") { value(step: 2) { scalar } } } }`);
  assert.equal(other.body.data.trial.tensor.value.scalar, 3);
});

const START = `mutation($i: StartTrainingJobInput!) { startTrainingJob(input: $i) { name status failureReason } }`;
const jobInput = (uri: string) => ({
  i: {
    backend: "LOCAL", baseJobName: "confined", algorithm: { builtin: "xgboost", version: "1.7-1" },
    hyperparameters: { num_round: "2", objective: "reg:squarederror" },
    inputs: [{ name: "train", uri, contentType: "libsvm" }],
  },
});

test("job inputs: a link out of the data directory or a FIFO is refused at start, and no line of it is echoed", async () => {
  await fs.mkdir(path.join(server.dataDir, "lab"), { recursive: true });
  await fs.symlink(path.join(outside, "secret.libsvm"), path.join(server.dataDir, "lab/linked.libsvm"));
  await fs.symlink(outside, path.join(server.dataDir, "lab/linked-folder"));
  execFileSync("mkfifo", [path.join(server.dataDir, "lab/fifo.libsvm")]);
  for (const [uri, why] of [
    ["lab/linked.libsvm", /lab\/linked\.libsvm is a symbolic link whose target is outside the data directory/],
    ["lab/linked-folder/secret.libsvm", /lab\/linked-folder is a symbolic link whose target is outside the data directory/],
    ["lab/linked-folder", /lab\/linked-folder is a symbolic link whose target is outside the data directory/],
    ["lab/fifo.libsvm", /is a FIFO, not a regular file/],
    ["../outside.libsvm", /outside the data directory/],
  ] as const) {
    const { body } = await server.gql(START, jobInput(uri));
    const e = errorsOf(body)[0];
    assert.equal(e?.extensions.code, "FORBIDDEN_PATH", `${uri}: ${JSON.stringify(body)}`);
    assert.match(e.message, why, uri);
    assert.equal(e.extensions.field, "inputs[0].uri");
    assert.ok(!JSON.stringify(body).includes("SECRET-LINE"), `${uri}: the file's content never comes back`);
  }
});

test("TRIALGRAPH_S3_ALLOWED_BUCKETS limits S3 trials and S3 job inputs to the listed buckets", async () => {
  const deadPort = await freePort();
  const s3only = await startTestServer({
    TRIALGRAPH_S3_ALLOWED_BUCKETS: "allowed-bucket",
    TRIALGRAPH_S3_ENDPOINT: `http://127.0.0.1:${deadPort}`,
    TRIALGRAPH_S3_TIMEOUT_MS: "500",
  });
  try {
    const denied = await s3only.gql(`{ trial(path: "s3://other-bucket/job/debug-output") { steps } }`);
    assert.equal(denied.body.errors[0].extensions.code, "FORBIDDEN_PATH");
    assert.match(denied.body.errors[0].message, /S3 bucket other-bucket is not one this service may read/);
    // A listed bucket goes on to S3 (down here, and no credentials): the bucket check let it through.
    const allowed = await s3only.gql(`{ trial(path: "s3://allowed-bucket/job/debug-output") { steps } }`);
    assert.ok(["S3_UNAVAILABLE", "ACCESS_DENIED"].includes(allowed.body.errors[0].extensions.code), JSON.stringify(allowed.body));
    const job = await s3only.gql(START, jobInput("s3://other-bucket/train.libsvm"));
    assert.equal(job.body.errors[0].extensions.code, "FORBIDDEN_PATH", JSON.stringify(job.body));
    assert.equal(job.body.errors[0].extensions.field, "inputs[0].uri");
  } finally {
    await s3only.close();
    await fs.rm(s3only.dataDir, { recursive: true, force: true });
  }
});

test("a trials folder linked out of the data directory: the service starts and writes no example trial there", async () => {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), "trialgraph-linked-trials-"));
  const target = await fs.mkdtemp(path.join(os.tmpdir(), "trialgraph-linked-target-"));
  await fs.symlink(target, path.join(dataDir, "trials"));
  const s = await startTestServer({ TRIALGRAPH_DATA_DIR: dataDir });
  try {
    assert.deepEqual(await fs.readdir(target), [], "nothing was written outside the data directory");
    await writeTrial(path.join(target, "planted"), SECRET);
    const { body } = await s.gql(`{ trial(path: "trials/planted") { steps } }`);
    assert.equal(body.errors?.[0]?.extensions.code, "FORBIDDEN_PATH", JSON.stringify(body));
    assert.match(body.errors[0].message, /trials is a symbolic link whose target is outside the data directory/);
  } finally {
    await s.close();
    await fs.rm(dataDir, { recursive: true, force: true });
    await fs.rm(target, { recursive: true, force: true });
  }
});
