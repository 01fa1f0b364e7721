import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { startTestServer, type TestServer } from "./support/server.js";
import { createBucket, createTestClient, start, uploadDirectory, type S3TestServer } from "./support/s3-server.js";
import { ABALONE_TRIAL, DIGITS_TRIAL, flattenGolden, goldenNumber, loadDigitsGolden, loadGolden } from "./support/fixtures.js";
import { S3RVER_CREDENTIALS } from "./support/s3-server.js";

const golden = loadGolden();
let s3: S3TestServer;
let server: TestServer;
const BUCKET = "trialgraph-test";
const PATH = `s3://${BUCKET}/lab-job/debug-output`;

before(async () => {
  s3 = await start();
  const client = createTestClient(s3);
  await createBucket(client, BUCKET);
  await uploadDirectory(client, BUCKET, "lab-job/debug-output", ABALONE_TRIAL);
  await uploadDirectory(client, BUCKET, "dl-job/debug-output", DIGITS_TRIAL);
  client.destroy();
  // The SDK's standard credential chain reads the environment.
  Object.assign(process.env, { AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey });
  server = await startTestServer({ TRIALGRAPH_S3_ENDPOINT: s3.endpoint, TRIALGRAPH_SAGEMAKER_ENABLED: "false", TRIALGRAPH_S3_TIMEOUT_MS: "3000" });
});
after(async () => {
  await server.close();
  await s3.close();
});

test("an S3 trial answers like the golden; one GraphQL request reads each event file with one GET", async () => {
  const query = `query($p: String!) { trial(path: $p) { steps tensorNames trainingEnded tensors { name values { step data } } } }`;
  s3.resetLog();
  let r = await server.gql(query, { p: PATH });
  assert.equal(r.body.errors, undefined, JSON.stringify(r.body.errors));
  const t = r.body.data.trial;
  assert.deepEqual(t.steps, golden.steps);
  assert.deepEqual(t.tensorNames, golden.tensor_names);
  assert.equal(t.trainingEnded, true);
  for (const tensor of t.tensors) {
    for (const v of tensor.values) {
      assert.deepEqual(v.data, flattenGolden(golden.tensors[tensor.name].values[String(v.step)].value).map(goldenNumber), `${tensor.name}@${v.step}`);
    }
  }
  const gets = s3.requests({ operation: "GetObject" });
  const eventGets = gets.filter((g) => g.key.includes("/events/"));
  const indexGets = gets.filter((g) => g.key.includes("/index/"));
  assert.equal(eventGets.length, 11, "one GET per event file for every value of the trial");
  assert.equal(new Set(eventGets.map((g) => g.key)).size, 11);
  assert.ok(eventGets.every((g) => /^bytes=\d+-\d+$/.test(g.range ?? "")), "ranged GETs");
  assert.equal(indexGets.length, 11, "each index file read once");

  // The same query again: the index is known, values are cached; no index file is read twice.
  s3.resetLog();
  r = await server.gql(query, { p: PATH });
  assert.equal(r.body.errors, undefined);
  assert.equal(s3.requests({ operation: "GetObject" }).filter((g) => g.key.includes("/index/")).length, 0);
  assert.equal(s3.requests({ operation: "GetObject" }).filter((g) => g.key.includes("/events/")).length, 0, "decoded values are cached for S3 trials");
});

test("statistics of every weight and gradient over steps: one GET per event file, then none (cached statistics)", async () => {
  const digits = loadDigitsGolden();
  const stats = `{ trial(path: "s3://${BUCKET}/dl-job/debug-output") { tensors(regex: "weight$") { name statsSeries { steps max } } } }`;
  s3.resetLog();
  let r = await server.gql(stats);
  assert.equal(r.body.errors, undefined, JSON.stringify(r.body.errors));
  const tensors = r.body.data.trial.tensors;
  assert.equal(tensors.length, 6);
  for (const t of tensors) {
    const g = digits.tensors[t.name];
    assert.deepEqual(t.statsSeries.steps, g.steps);
    assert.deepEqual(t.statsSeries.max, g.steps.map((s) => g.values[String(s)].stats!.max));
  }
  const eventGets = s3.requests({ operation: "GetObject" }).filter((g) => g.key.includes("/events/"));
  assert.equal(eventGets.length, 18, "each of the 18 event files read once for 6 tensors × their steps");
  assert.equal(new Set(eventGets.map((g) => g.key)).size, 18);
  s3.resetLog();
  r = await server.gql(stats);
  assert.equal(r.body.errors, undefined);
  assert.equal(s3.requests({ operation: "GetObject" }).filter((g) => g.key.includes("/events/")).length, 0, "statistics are cached by record");
});

test("nothing under the prefix or no such bucket: a null trial", async () => {
  for (const p of [`s3://${BUCKET}/nothing-here`, "s3://no-such-bucket-xyz/x"]) {
    const r = await server.gql(`query($p: String!) { trial(path: $p) { path } }`, { p });
    assert.deepEqual(r.body, { data: { trial: null } }, p);
  }
});

test("access denied is ACCESS_DENIED; an unreachable S3 is S3_UNAVAILABLE while local trials keep answering", async () => {
  // Listings are bucket-level requests: the first one of the next open is refused.
  s3.inject({ operation: "ListObjectsV2", times: 1, status: 403, code: "AccessDenied" });
  let r = await server.gql(`{ trial(path: "s3://${BUCKET}/denied/debug-output") { path } }`);
  assert.equal(r.body.errors?.[0].extensions.code, "ACCESS_DENIED");
  s3.clearFaults();

  s3.inject({ operation: "ListObjectsV2", status: 503, code: "ServiceUnavailable" });
  r = await server.gql(`{ trial(path: "s3://${BUCKET}/down/debug-output") { path } }`);
  assert.equal(r.body.errors?.[0].extensions.code, "S3_UNAVAILABLE");
  s3.clearFaults();
  r = await server.gql(`{ trial(path: "trials/example") { steps } }`);
  assert.equal(r.body.data.trial.steps.length, 100);
});

test("a trial growing in S3: objects added between refreshes show up, and only new index keys are listed after", async () => {
  const client = createTestClient(s3);
  const { PutObjectCommand } = await import("@aws-sdk/client-s3");
  const { promises: fs } = await import("node:fs");
  const path = await import("node:path");
  const put = async (rel: string) =>
    client.send(new PutObjectCommand({ Bucket: BUCKET, Key: `grow/debug-output/${rel}`, Body: await fs.readFile(path.join(ABALONE_TRIAL, rel)) }));
  await put("collections/000000000/worker_0_collections.json");
  for (const step of ["000000000000", "000000000005"]) {
    await put(`events/${step}/${step}_worker_0.tfevents`);
    await put(`index/000000000/${step}_worker_0.json`);
  }
  const q = `{ trial(path: "s3://${BUCKET}/grow/debug-output") { steps trainingEnded } }`;
  let r = await server.gql(q);
  assert.deepEqual(r.body.data.trial, { steps: [0, 5], trainingEnded: false });
  await put("events/000000000010/000000000010_worker_0.tfevents");
  await put("index/000000000/000000000010_worker_0.json");
  await put("training_job_end.ts");
  await new Promise((res) => setTimeout(res, 1100)); // queries refresh a live trial at most once a second
  s3.resetLog();
  r = await server.gql(q);
  assert.deepEqual(r.body.data.trial, { steps: [0, 5, 10], trainingEnded: true });
  const listings = s3.requests({ operation: "ListObjectsV2" }).filter((l) => l.query.prefix?.includes("/index"));
  assert.ok(listings.length >= 1);
  // Never from scratch: after step 5 (complete before), or after 10 on the final pass.
  for (const l of listings) assert.match(l.query["start-after"] ?? "", /index\/000000000\/0000000000(05|10)_worker_0\.json$/, JSON.stringify(l.query));
  client.destroy();
});
