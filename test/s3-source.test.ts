import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import net from "node:net";
import path from "node:path";
import { after, before, beforeEach, describe, test } from "node:test";
import { PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { TrialgraphError } from "../src/errors.js";
import type { ByteRange } from "../src/storage/byte-source.js";
import { ConcurrencyLimiter, mapWithConcurrency } from "../src/storage/concurrency.js";
import { SizeBoundedLru, createObjectCache } from "../src/storage/lru.js";
import { coalesceRanges, readCoalesced, sliceMembers } from "../src/storage/ranges.js";
import { clientSocketStats, createS3Client, parseS3Uri } from "../src/storage/s3-client.js";
import { S3Source } from "../src/storage/s3-source.js";
import { openTrial } from "../src/trials/trial.js";
import { S3RVER_CREDENTIALS, createBucket, createTestClient, start, uploadDirectory, type S3TestServer } from "./support/s3-server.js";

const FIXTURE = path.resolve(__dirname, "../../shared/fixtures/trials/abalone-eta0.2");
const GOLDEN = path.resolve(__dirname, "../../shared/fixtures/golden/abalone-eta0.2.json");
const BUCKET = "trials";
const PREFIX = "jobs/abalone-eta0.2/debug-output";
const LOCKED_BUCKET = "locked-trials";

interface IndexFile {
  meta: { event_file_name: string };
  tensor_payload: { tensorname: string; start_idx: number; length: number }[];
}

async function fixtureFiles(dir: string, rel = ""): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await fixtureFiles(dir, r)));
    else out.push(r);
  }
  return out.sort();
}

async function expectCode(p: Promise<unknown>, code: string): Promise<TrialgraphError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof TrialgraphError, `expected a TrialgraphError, got ${e}`);
    assert.equal(e.code, code, e.message);
    return e;
  }
  assert.fail(`expected ${code}, but it succeeded`);
}

/** Deterministic pseudo-random numbers (mulberry32), so a failing shuffle can be replayed. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

describe("S3Source against s3rver", () => {
  let server: S3TestServer;
  let client: S3Client;
  let fixtureKeys: string[];
  let indexKeys: string[];
  const clients: S3Client[] = [];
  const newClient = (opts: Parameters<typeof createTestClient>[1] = {}) => {
    const c = createTestClient(server, opts);
    clients.push(c);
    return c;
  };
  const source = (opts: Partial<ConstructorParameters<typeof S3Source>[0]> = {}) =>
    new S3Source({ client, bucket: BUCKET, prefix: PREFIX, ...opts });

  before(async () => {
    server = await start({ port: 0 });
    client = newClient();
    await createBucket(client, BUCKET);
    await createBucket(client, LOCKED_BUCKET);
    const uploaded = await uploadDirectory(client, BUCKET, PREFIX, FIXTURE);
    fixtureKeys = await fixtureFiles(FIXTURE);
    assert.deepEqual(uploaded, fixtureKeys.map((k) => `${PREFIX}/${k}`));
    indexKeys = fixtureKeys.filter((k) => k.startsWith("index/"));
    assert.equal(indexKeys.length, 11);
  });

  after(async () => {
    for (const c of clients) c.destroy();
    await server?.close();
  });

  beforeEach(() => {
    server.clearFaults();
    server.responseDelayMs = 0;
    server.resetLog();
  });

  test("list pages through every key, forced by a small page size", async () => {
    const keys = await source({ pageSize: 5 }).list("");
    assert.deepEqual(keys, fixtureKeys);
    const lists = server.requests({ operation: "ListObjectsV2" });
    assert.equal(lists.length, Math.ceil(fixtureKeys.length / 5));
    assert.equal(lists[0].query["continuation-token"], undefined);
    for (const l of lists.slice(1)) assert.ok(l.query["continuation-token"], "later pages continue the listing");
    for (const l of lists) assert.equal(l.query["max-keys"], "5");
  });

  test("list under a sub-prefix, and with startAfter, returns only later keys", async () => {
    const src = source({ pageSize: 2 });
    assert.deepEqual(await src.list("index/"), indexKeys);
    server.resetLog();
    const after4 = await src.list("index/", indexKeys[4]);
    assert.deepEqual(after4, indexKeys.slice(5));
    const lists = server.requests({ operation: "ListObjectsV2" });
    assert.equal(lists.length, Math.ceil(after4.length / 2));
    assert.equal(lists[0].query["start-after"], `${PREFIX}/${indexKeys[4]}`);
    assert.equal(lists[0].query.prefix, `${PREFIX}/index/`);

    // A refresh after the last known key sees exactly what was written since.
    const last = indexKeys[indexKeys.length - 1];
    assert.deepEqual(await src.list("index/", last), []);
    const newKey = "index/000000000/000000000055_worker_0.json";
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: `${PREFIX}/${newKey}`, Body: "{}" }));
    server.resetLog();
    assert.deepEqual(await src.list("index/", last), [newKey]);
    assert.equal(server.requests({ operation: "ListObjectsV2" }).length, 1);
    assert.deepEqual(await src.list("index/", newKey), []);
  });

  test("list of a key-name prefix (the training end marker)", async () => {
    const src = source();
    assert.deepEqual(await src.list("training_job_end.ts"), ["training_job_end.ts"]);
    assert.deepEqual(await src.list("END_OF_JOB.ts"), []);
  });

  test("read returns whole objects byte for byte, null when absent", async () => {
    const src = source();
    for (const key of ["collections/000000000/worker_0_collections.json", "events/000000000050/000000000050_worker_0.tfevents", "training_job_end.ts"]) {
      const want = await fs.readFile(path.join(FIXTURE, key));
      const got = await src.read(key);
      assert.ok(got, key);
      assert.ok(want.equals(got), key);
    }
    assert.equal(await src.read("events/000000000055/000000000055_worker_0.tfevents"), null);
    assert.equal(await src.read("index/000000000/000000000099_worker_0.json"), null);
  });

  test("index and collections files are fetched once; event files are not cached", async () => {
    const src = source();
    const indexKey = indexKeys[3];
    const collectionsKey = "collections/000000000/worker_0_collections.json";
    const first = await src.read(indexKey);
    const second = await src.read(indexKey);
    assert.ok(first && second && first.equals(second));
    const concurrent = await Promise.all([src.read(collectionsKey), src.read(collectionsKey), src.read(collectionsKey)]);
    assert.ok(concurrent.every((b) => b && b.equals(concurrent[0]!)));
    const eventKey = "events/000000000000/000000000000_worker_0.tfevents";
    await src.read(eventKey);
    await src.read(eventKey);
    assert.equal(server.requests({ operation: "GetObject", keyPrefix: `${PREFIX}/${indexKey}` }).length, 1);
    assert.equal(server.requests({ operation: "GetObject", keyPrefix: `${PREFIX}/${collectionsKey}` }).length, 1);
    assert.equal(server.requests({ operation: "GetObject", keyPrefix: `${PREFIX}/${eventKey}` }).length, 2);

    // A missing index file is not remembered as missing: it may appear at the next refresh.
    const later = "index/000000000/000000000060_worker_0.json";
    assert.equal(await src.read(later), null);
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: `${PREFIX}/${later}`, Body: '{"meta":{}}' }));
    assert.equal((await src.read(later))?.toString(), '{"meta":{}}');

    // One cache shared by two sources of the same trial: still one GET.
    server.resetLog();
    const shared = createObjectCache(1 << 20);
    await source({ objectCache: shared }).read(indexKeys[0]);
    await source({ objectCache: shared }).read(indexKeys[0]);
    assert.equal(server.requests({ operation: "GetObject" }).length, 1);
  });

  test("readRanges: all tensors of an event file, unsorted, in exactly one GET with correct bytes", async () => {
    const src = source();
    const random = prng(7);
    let eventFiles = 0;
    for (const indexKey of indexKeys) {
      const index = JSON.parse((await fs.readFile(path.join(FIXTURE, indexKey))).toString()) as IndexFile;
      const ranges = shuffled(
        index.tensor_payload.map((t) => ({ start: t.start_idx, length: t.length })),
        random,
      );
      const eventBytes = await fs.readFile(path.join(FIXTURE, index.meta.event_file_name));
      server.resetLog();
      const got = await src.readRanges(index.meta.event_file_name, ranges);
      assert.ok(got);
      assert.equal(got.length, ranges.length);
      ranges.forEach((r, i) => assert.ok(got[i].equals(eventBytes.subarray(r.start, r.start + r.length)), `${indexKey} range ${i}`));
      const gets = server.requests({ operation: "GetObject" });
      assert.equal(gets.length, 1, `${index.meta.event_file_name}: ${gets.length} GETs`);
      const lo = Math.min(...ranges.map((r) => r.start));
      const hi = Math.max(...ranges.map((r) => r.start + r.length));
      assert.equal(gets[0].range, `bytes=${lo}-${hi - 1}`);
      eventFiles++;
    }
    assert.equal(eventFiles, 11);
  });

  test("readRanges: overlapping and duplicate ranges, ranges past the end, and a gap limit", async () => {
    const key = "events/000000000010/000000000010_worker_0.tfevents";
    const bytes = await fs.readFile(path.join(FIXTURE, key));
    const size = bytes.length;
    const ranges: ByteRange[] = [
      { start: 200, length: 50 },
      { start: 0, length: 100 },
      { start: 50, length: 100 },
      { start: 200, length: 50 },
      { start: size - 10, length: 100 }, // crosses the end: short
      { start: size + 500, length: 10 }, // entirely past the end: empty
      { start: 30, length: 0 },
    ];
    const got = await source().readRanges(key, ranges);
    assert.ok(got);
    ranges.forEach((r, i) => assert.ok(got[i].equals(bytes.subarray(r.start, r.start + r.length)), `range ${i}`));
    assert.equal(got[4].length, 10);
    assert.equal(got[5].length, 0);
    assert.equal(got[6].length, 0);
    assert.equal(server.requests({ operation: "GetObject" }).length, 1);

    // Only ranges past the end: the server answers 416 InvalidRange, which reads as "not written yet".
    server.resetLog();
    const past = await source().readRanges(key, [{ start: size, length: 8 }]);
    assert.deepEqual(past, [Buffer.alloc(0)]);
    assert.equal(server.requests({ operation: "GetObject" })[0].status, 416);

    // With a gap limit, far-apart ranges are separate GETs (run concurrently).
    server.resetLog();
    const split = await source({ maxGap: 100 }).readRanges(key, [
      { start: 0, length: 10 },
      { start: 50, length: 10 },
      { start: 1000, length: 10 },
    ]);
    assert.ok(split);
    assert.ok(split[2].equals(bytes.subarray(1000, 1010)));
    assert.deepEqual(server.requests({ operation: "GetObject" }).map((g) => g.range).sort(), ["bytes=0-59", "bytes=1000-1009"]);

    // A missing event file (index written, event upload not there yet).
    assert.equal(await source().readRanges("events/000000000055/000000000055_worker_0.tfevents", [{ start: 0, length: 8 }]), null);
    assert.equal(await source().readRanges("events/000000000055/000000000055_worker_0.tfevents", []), null);
    assert.deepEqual(await source().readRanges(key, []), []);

    // A corrupt index can produce nonsense offsets.
    await expectCode(source().readRanges(key, [{ start: -1, length: 5 }]), "CORRUPT_RECORD");
    await expectCode(source().readRanges(key, [{ start: 1.5, length: 5 }]), "CORRUPT_RECORD");
  });

  test("readRanges with scratch: one range is read into it when its body fits, else into a buffer of its own", async () => {
    const key = "events/000000000010/000000000010_worker_0.tfevents";
    const bytes = await fs.readFile(path.join(FIXTURE, key));
    const src = source();
    const scratch = Buffer.alloc(bytes.length, 0xee);

    const got = await src.readRanges(key, [{ start: 100, length: 300 }], { scratch });
    assert.ok(got && got[0].equals(bytes.subarray(100, 400)));
    assert.equal(got[0].buffer, scratch.buffer, "the body went into scratch");
    assert.equal(got[0].byteOffset, scratch.byteOffset);

    // Crossing the end: the shorter body still goes into scratch.
    const short = await src.readRanges(key, [{ start: bytes.length - 10, length: 100 }], { scratch });
    assert.ok(short && short[0].equals(bytes.subarray(bytes.length - 10)));
    assert.equal(short[0].buffer, scratch.buffer);

    // Larger than scratch: a buffer of its own, scratch untouched.
    const small = Buffer.alloc(64, 0xee);
    const big = await src.readRanges(key, [{ start: 0, length: 200 }], { scratch: small });
    assert.ok(big && big[0].equals(bytes.subarray(0, 200)));
    assert.notEqual(big[0].buffer, small.buffer);
    assert.ok(small.equals(Buffer.alloc(64, 0xee)));

    // Several ranges: the groups get buffers of their own (scratch holds one read at most).
    const multi = await source({ maxGap: 100 }).readRanges(key, [{ start: 0, length: 10 }, { start: 1000, length: 10 }], { scratch });
    assert.ok(multi && multi[0].equals(bytes.subarray(0, 10)) && multi[1].equals(bytes.subarray(1000, 1010)));
    assert.ok(multi.every((b) => b.buffer !== scratch.buffer));

    // A body cut once is fetched again into the same scratch, and the bytes are right.
    server.resetLog();
    server.inject({ operation: "GetObject", keyPrefix: `${PREFIX}/${key}`, truncateBodyAfter: 50, times: 1 });
    const patient = new S3Source({ client: newClient({ maxAttempts: 2 }), bucket: BUCKET, prefix: PREFIX });
    const again = await patient.readRanges(key, [{ start: 20, length: 500 }], { scratch });
    assert.ok(again && again[0].equals(bytes.subarray(20, 520)));
    assert.equal(again[0].buffer, scratch.buffer);
    assert.equal(server.requests({ operation: "GetObject" }).length, 2);

    // Missing object: null, as without scratch.
    assert.equal(await src.readRanges("events/000000000055/000000000055_worker_0.tfevents", [{ start: 0, length: 8 }], { scratch }), null);
  });

  test("concurrent reads of two buckets through one client each get their own bucket's bytes", async () => {
    // The SDK's cacheMiddleware option shares one handler context between concurrent requests of a
    // command, and a request can then be sent to another request's bucket: it must stay off.
    const other = "trials-other";
    await createBucket(client, other);
    for (const bucket of [BUCKET, other]) {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: `${PREFIX}/which-bucket`, Body: bucket }));
    }
    const sources = [source(), new S3Source({ client, bucket: other, prefix: PREFIX })];
    const reads = await Promise.all(Array.from({ length: 64 }, (_, i) => sources[i % 2].readRanges("which-bucket", [{ start: 0, length: 64 }])));
    reads.forEach((got, i) => assert.equal(got?.[0].toString(), i % 2 ? other : BUCKET, `read ${i}`));
  });

  test("exists", async () => {
    const src = source();
    assert.equal(await src.exists("training_job_end.ts"), true);
    assert.equal(await src.exists(indexKeys[0]), true);
    assert.equal(await src.exists("claim.smd"), false);
  });

  test("never more than the concurrency bound in flight", async () => {
    const index = JSON.parse((await fs.readFile(path.join(FIXTURE, indexKeys[1]))).toString()) as IndexFile;
    const eventKeys = fixtureKeys.filter((k) => k.startsWith("events/"));
    const jobs = [...eventKeys, ...eventKeys, ...eventKeys, ...eventKeys];
    server.responseDelayMs = 50;

    const bounded = newClient({ maxSockets: 64, maxConcurrency: 4 });
    const src = new S3Source({ client: bounded, bucket: BUCKET, prefix: PREFIX });
    const results = await Promise.all(jobs.map((k) => src.readRanges(k, [{ start: 0, length: index.tensor_payload[0].length }])));
    assert.ok(results.every((r) => r && r[0].length > 0));
    assert.equal(server.requests({ operation: "GetObject" }).length, jobs.length);
    assert.ok(server.maxInFlight <= 4, `max in flight ${server.maxInFlight}`);
    assert.ok(server.maxInFlight >= 2, `requests did run concurrently (${server.maxInFlight})`);

    // The same load with a wide bound does exceed 4: the proxy would have seen a broken limiter.
    server.resetLog();
    const wide = newClient({ maxSockets: 64, maxConcurrency: 64 });
    const wideSrc = new S3Source({ client: wide, bucket: BUCKET, prefix: PREFIX });
    await Promise.all(jobs.map((k) => wideSrc.readRanges(k, [{ start: 0, length: 16 }])));
    assert.ok(server.maxInFlight > 4, `unbounded max in flight ${server.maxInFlight}`);
  });

  test("NoSuchBucket and an empty prefix read as nothing there", async () => {
    const missing = new S3Source({ client, bucket: "no-such-bucket", prefix: "job/debug-output" });
    assert.deepEqual(await missing.list("index/"), []);
    assert.deepEqual(await missing.list(""), []);
    assert.equal(await missing.read("collections/000000000/worker_0_collections.json"), null);
    assert.equal(await missing.readRanges("events/000000000000/000000000000_worker_0.tfevents", [{ start: 0, length: 8 }]), null);
    assert.equal(await missing.exists("training_job_end.ts"), false);
    assert.equal(server.requests({ operation: "ListObjectsV2" })[0].status, 404);

    const empty = new S3Source({ client, bucket: BUCKET, prefix: "jobs/never-ran/debug-output" });
    assert.deepEqual(await empty.list(""), []);
    assert.deepEqual(await empty.list("index/", "index/000000000/000000000000_worker_0.json"), []);
    assert.equal(await empty.read("training_job_end.ts"), null);
  });

  test("AccessDenied (403) becomes ACCESS_DENIED for every operation", async () => {
    await uploadDirectory(client, LOCKED_BUCKET, "job", path.join(FIXTURE, "collections"));
    server.resetLog();
    server.inject({ bucket: LOCKED_BUCKET, status: 403, code: "AccessDenied" });
    const locked = new S3Source({ client, bucket: LOCKED_BUCKET, prefix: "job" });
    const e = await expectCode(locked.list(""), "ACCESS_DENIED");
    assert.equal(e.details.s3Code, "AccessDenied");
    assert.equal(e.details.location, "s3://locked-trials/job/");
    await expectCode(locked.read("000000000/worker_0_collections.json"), "ACCESS_DENIED");
    await expectCode(locked.readRanges("000000000/worker_0_collections.json", [{ start: 0, length: 4 }]), "ACCESS_DENIED");
    await expectCode(locked.exists("000000000/worker_0_collections.json"), "ACCESS_DENIED");
    assert.ok(server.requests({ bucket: LOCKED_BUCKET }).every((r) => r.injected && r.status === 403));
    // The rest of the server is unaffected.
    assert.equal((await source().list("index/")).length >= 11, true);
  });

  test("credentials s3rver rejects (its own signature check) become ACCESS_DENIED", async () => {
    const wrong = newClient({ credentials: { accessKeyId: "NOT-S3RVER", secretAccessKey: "wrong" } });
    const src = new S3Source({ client: wrong, bucket: BUCKET, prefix: PREFIX });
    const e = await expectCode(src.list("index/"), "ACCESS_DENIED");
    assert.equal(e.details.httpStatus, 403);
    assert.ok(!JSON.stringify(e.details).includes("wrong"), "no secret in error details");
    await expectCode(src.read(indexKeys[0]), "ACCESS_DENIED");
  });

  test("an unreachable endpoint becomes S3_UNAVAILABLE after the retries", async () => {
    const closedPort = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, "127.0.0.1", () => {
        const { port } = s.address() as net.AddressInfo;
        s.close(() => resolve(port));
      });
    });
    const dead = createS3Client({
      region: "us-east-1",
      endpoint: `http://127.0.0.1:${closedPort}`,
      credentials: S3RVER_CREDENTIALS,
      maxAttempts: 3,
      connectionTimeoutMs: 1000,
    });
    clients.push(dead);
    const src = new S3Source({ client: dead, bucket: BUCKET, prefix: PREFIX });
    const e = await expectCode(src.list("index/"), "S3_UNAVAILABLE");
    assert.equal(e.details.attempts, 3);
    assert.equal(e.details.networkCode, "ECONNREFUSED");
    await expectCode(src.read(indexKeys[0]), "S3_UNAVAILABLE");
    await expectCode(src.readRanges("events/000000000000/000000000000_worker_0.tfevents", [{ start: 0, length: 8 }]), "S3_UNAVAILABLE");
    await expectCode(src.exists("training_job_end.ts"), "S3_UNAVAILABLE");
  });

  test("503 SlowDown is retried by the SDK, then succeeds; persistent 5xx becomes S3_UNAVAILABLE", async () => {
    const key = "events/000000000020/000000000020_worker_0.tfevents";
    const bytes = await fs.readFile(path.join(FIXTURE, key));
    const retrying = newClient({ maxAttempts: 3 });
    const src = new S3Source({ client: retrying, bucket: BUCKET, prefix: PREFIX });

    server.inject({ operation: "GetObject", keyPrefix: `${PREFIX}/${key}`, status: 503, code: "SlowDown", times: 1 });
    const got = await src.readRanges(key, [{ start: 10, length: 90 }]);
    assert.ok(got && got[0].equals(bytes.subarray(10, 100)));
    const gets = server.requests({ operation: "GetObject" });
    assert.deepEqual(gets.map((g) => [g.status, g.injected]), [[503, true], [206, false]]);

    server.resetLog();
    server.inject({ operation: "ListObjectsV2", status: 503, code: "SlowDown", times: 1 });
    assert.deepEqual(await src.list("index/"), (await source().list("index/")));
    assert.equal(server.requests({ operation: "ListObjectsV2" }).length, 3);

    server.resetLog();
    server.inject({ operation: "GetObject", status: 500, code: "InternalError", times: 3 });
    const e = await expectCode(src.read(key), "S3_UNAVAILABLE");
    assert.equal(e.details.httpStatus, 500);
    assert.equal(server.requests({ operation: "GetObject" }).length, 3);
  });

  test("request timeouts: no response headers, and a body that stalls", async () => {
    const key = "events/000000000025/000000000025_worker_0.tfevents";
    const bytes = await fs.readFile(path.join(FIXTURE, key));
    const impatient = newClient({ maxAttempts: 2, requestTimeoutMs: 600 });
    const src = new S3Source({ client: impatient, bucket: BUCKET, prefix: PREFIX });

    server.inject({ operation: "GetObject", stallHeaders: true, times: 2 });
    await expectCode(src.read(key), "S3_UNAVAILABLE");
    assert.equal(server.requests({ operation: "GetObject" }).length, 2);

    server.resetLog();
    server.inject({ operation: "GetObject", stallBodyAfter: 10, times: 2 });
    await expectCode(src.read(key), "S3_UNAVAILABLE");
    assert.equal(server.requests({ operation: "GetObject" }).length, 2, "one fresh GET after a broken body");

    // A body cut once is fetched again and the bytes are right.
    server.resetLog();
    server.inject({ operation: "GetObject", truncateBodyAfter: 20, times: 1 });
    const patient = new S3Source({ client: newClient({ maxAttempts: 2 }), bucket: BUCKET, prefix: PREFIX });
    const got = await patient.read(key);
    assert.ok(got && got.equals(bytes));
    assert.equal(server.requests({ operation: "GetObject" }).length, 2);
  });

  test("the trial reader over S3: each index file read once, one GET per event file for a whole batch, golden values", async () => {
    type Nested = number | string | Nested[];
    const golden = JSON.parse(await fs.readFile(GOLDEN, "utf8")) as {
      tensor_names: string[];
      steps: number[];
      tensors: Record<string, { steps: number[]; values: Record<string, { value: Nested }> }>;
    };
    // A client of its own: the fault tests before leave the shared client's pool with sockets the
    // server may reset, and test clients do not retry (the GET counts below are exact).
    const src = source({ client: newClient(), objectCacheBytes: 0 });
    const trial = await openTrial(src, `s3://${BUCKET}/${PREFIX}`);
    assert.ok(trial);
    assert.deepEqual(trial.steps(), golden.steps);
    for (const key of indexKeys) assert.equal(server.requests({ operation: "GetObject", keyPrefix: `${PREFIX}/${key}` }).length, 1, key);

    server.resetLog();
    const requests = golden.tensor_names.flatMap((name) => golden.tensors[name].steps.map((step) => ({ name, step })));
    const values = await trial.values(requests);
    const gets = server.requests({ operation: "GetObject" });
    assert.equal(gets.length, golden.steps.length, "one GET per event file");
    assert.equal(new Set(gets.map((g) => g.key)).size, golden.steps.length);
    assert.ok(gets.every((g) => g.key.startsWith(`${PREFIX}/events/`) && g.range));
    const flat = (v: Nested): number[] => (Array.isArray(v) ? v.flatMap(flat) : [typeof v === "string" ? Number(v) : v]);
    requests.forEach((req, i) => {
      const got = values[i];
      assert.ok(!(got instanceof Error), `${req.name}@${req.step}: ${got}`);
      const want = flat(golden.tensors[req.name].values[String(req.step)].value);
      assert.deepEqual(Array.from(got.values ?? []), want, `${req.name}@${req.step}`);
    });

    // A trial that ended lists nothing more and reads no index file again.
    server.resetLog();
    await trial.refresh({ force: true });
    assert.equal(server.requests({ operation: "GetObject" }).length, 0);

    assert.equal(await openTrial(new S3Source({ client, bucket: "no-such-bucket", prefix: PREFIX }), "s3://no-such-bucket/x"), null);
  });

  test("no socket is left holding an unread body (maxSockets 2, many failing and short reads)", { timeout: 60_000 }, async () => {
    const small = newClient({ maxSockets: 2, maxConcurrency: 8, maxAttempts: 1, requestTimeoutMs: 2000 });
    const src = new S3Source({ client: small, bucket: BUCKET, prefix: PREFIX, objectCacheBytes: 0 });
    const key = "events/000000000030/000000000030_worker_0.tfevents";
    const bytes = await fs.readFile(path.join(FIXTURE, key));
    server.inject({ operation: "GetObject", keyPrefix: `${PREFIX}/events/000000000035/`, status: 500, code: "InternalError" });
    server.inject({ operation: "GetObject", keyPrefix: `${PREFIX}/events/000000000040/`, truncateBodyAfter: 5 });
    server.inject({ operation: "GetObject", keyPrefix: `${PREFIX}/index/`, status: 403, code: "AccessDenied" });

    const work: Promise<unknown>[] = [];
    for (let i = 0; i < 12; i++) {
      work.push(src.readRanges(key, [{ start: bytes.length + i, length: 10 }])); // 416
      work.push(src.readRanges(key, [{ start: bytes.length - 5, length: 50 }])); // short
      work.push(src.read(`events/missing/${i}.tfevents`)); // 404
      work.push(src.exists(`missing/${i}`)); // HEAD 404
      work.push(src.read("events/000000000035/000000000035_worker_0.tfevents").catch((e) => e)); // 500
      work.push(src.read("events/000000000040/000000000040_worker_0.tfevents").catch((e) => e)); // cut body
      work.push(src.read(indexKeys[i % indexKeys.length]).catch((e) => e)); // 403
      work.push(src.read(key)); // whole, fine
    }
    const results = await Promise.all(work);
    const failures = results.filter((r) => r instanceof TrialgraphError) as TrialgraphError[];
    assert.equal(failures.length, 36);
    assert.deepEqual([...new Set(failures.map((f) => f.code))].sort(), ["ACCESS_DENIED", "S3_UNAVAILABLE"]);

    const got = await src.readRanges(key, [{ start: 0, length: 64 }]);
    assert.ok(got && got[0].equals(bytes.subarray(0, 64)));
    const stats = clientSocketStats(small);
    assert.ok(stats);
    assert.equal(stats.waiting, 0);
    assert.ok(stats.inUse + stats.idle <= 2);
    // Bodies are consumed before a read resolves, so every socket is back in the idle pool (or closed).
    await new Promise((r) => setImmediate(r));
    assert.equal(clientSocketStats(small)!.inUse, 0);
  });
});

describe("s3:// URIs and client options", () => {
  test("parseS3Uri normalizes the prefix and validates the bucket", () => {
    assert.deepEqual(parseS3Uri("s3://my-bucket/job/debug-output"), { bucket: "my-bucket", prefix: "job/debug-output/" });
    assert.deepEqual(parseS3Uri("s3://my-bucket/job/debug-output/"), { bucket: "my-bucket", prefix: "job/debug-output/" });
    assert.deepEqual(parseS3Uri("s3://my-bucket"), { bucket: "my-bucket", prefix: "" });
    assert.deepEqual(parseS3Uri("S3://my.bucket//x"), { bucket: "my.bucket", prefix: "x/" });
    for (const bad of ["s3://a/x", "s3://Upper/x", "s3://under_score/x", "s3:///x", "http://bucket/x", "s3://-dash/x", "s3://a..b/x"]) {
      assert.throws(() => parseS3Uri(bad), (e: unknown) => e instanceof TrialgraphError && e.code === "BAD_USER_INPUT", bad);
    }
  });

  test("S3Source location and bad construction", () => {
    const c = createS3Client({ region: "us-east-1", endpoint: "http://127.0.0.1:9", credentials: S3RVER_CREDENTIALS });
    try {
      assert.equal(new S3Source({ client: c, bucket: "bkt", prefix: "a/b" }).location, "s3://bkt/a/b");
      assert.equal(S3Source.fromUri(c, "s3://bkt/a/b/").prefix, "a/b/");
      assert.equal(S3Source.fromUri(c, "s3://bkt").location, "s3://bkt/");
      assert.throws(() => new S3Source({ client: c, bucket: "B", prefix: "" }), (e: unknown) => e instanceof TrialgraphError && e.code === "BAD_USER_INPUT");
    } finally {
      c.destroy();
    }
    assert.throws(() => createS3Client({ region: "us-east-1", endpoint: "minio:9000" }), (e: unknown) => e instanceof TrialgraphError && e.code === "BAD_USER_INPUT");
    assert.throws(() => createS3Client({ region: "" }), (e: unknown) => e instanceof TrialgraphError && e.code === "BAD_USER_INPUT");
  });
});

describe("coalesceRanges", () => {
  const r = (start: number, length: number): ByteRange => ({ start, length });

  test("unsorted input comes out ordered by start, split by the gap limit (inclusive)", () => {
    const ranges = [r(100, 10), r(0, 10), r(50, 10)];
    assert.deepEqual(coalesceRanges(ranges, 0), [
      { start: 0, length: 10, members: [1] },
      { start: 50, length: 10, members: [2] },
      { start: 100, length: 10, members: [0] },
    ]);
    // Gaps are 40 and 40 bytes.
    assert.deepEqual(coalesceRanges(ranges, 39).length, 3);
    assert.deepEqual(coalesceRanges(ranges, 40), [{ start: 0, length: 110, members: [1, 2, 0] }]);
    assert.deepEqual(coalesceRanges(ranges, Infinity), [{ start: 0, length: 110, members: [1, 2, 0] }]);
  });

  test("adjacent, overlapping, contained and duplicate ranges merge; ties keep input order", () => {
    assert.deepEqual(coalesceRanges([r(10, 5), r(0, 10)], 0), [{ start: 0, length: 15, members: [1, 0] }]);
    assert.deepEqual(coalesceRanges([r(0, 100), r(10, 5), r(200, 1)], 50), [
      { start: 0, length: 100, members: [0, 1] },
      { start: 200, length: 1, members: [2] },
    ]);
    assert.deepEqual(coalesceRanges([r(5, 3), r(5, 3), r(0, 6)], 0), [{ start: 0, length: 8, members: [2, 0, 1] }]);
    assert.deepEqual(coalesceRanges([r(7, 0), r(0, 7)], 0), [{ start: 0, length: 7, members: [1, 0] }]);
    assert.deepEqual(coalesceRanges([], 10), []);
  });

  test("maxSpan stops merging but never splits a range", () => {
    const ranges = [r(0, 10), r(10, 10), r(20, 10), r(30, 100)];
    assert.deepEqual(
      coalesceRanges(ranges, 0, { maxSpan: 20 }).map((g) => [g.start, g.length, g.members]),
      [
        [0, 20, [0, 1]],
        [20, 10, [2]],
        [30, 100, [3]],
      ],
    );
  });

  test("invalid ranges are a corrupt index", () => {
    for (const bad of [r(-1, 5), r(0, -5), r(Number.NaN, 1), r(0.5, 1), r(Number.MAX_SAFE_INTEGER, 10)]) {
      assert.throws(() => coalesceRanges([r(0, 1), bad], 0), (e: unknown) => e instanceof TrialgraphError && e.code === "CORRUPT_RECORD");
    }
  });

  test("random ranges: every member once, inside its group, groups apart by more than the gap, bytes equal", async () => {
    const random = prng(42);
    const object = Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 31 + 7) & 0xff));
    for (let round = 0; round < 200; round++) {
      const n = 1 + Math.floor(random() * 20);
      const ranges = Array.from({ length: n }, () => r(Math.floor(random() * 5200), Math.floor(random() * 300)));
      const maxGap = [0, 1, 16, 256, 4096][round % 5];
      const groups = coalesceRanges(ranges, maxGap);
      const seen = groups.flatMap((g) => g.members).sort((a, b) => a - b);
      assert.deepEqual(seen, ranges.map((_, i) => i));
      for (let gi = 0; gi < groups.length; gi++) {
        const g = groups[gi];
        for (const m of g.members) assert.ok(ranges[m].start >= g.start && ranges[m].start + ranges[m].length <= g.start + g.length);
        // Tight: the group starts at its first member and ends at its furthest member end.
        assert.equal(g.start, Math.min(...g.members.map((m) => ranges[m].start)));
        assert.equal(g.start + g.length, Math.max(...g.members.map((m) => ranges[m].start + ranges[m].length)));
        if (gi > 0) {
          const prev = groups[gi - 1];
          assert.ok(g.start - (prev.start + prev.length) > maxGap || (g.length === 0 && g.start - (prev.start + prev.length) > 0));
        }
      }
      let calls = 0;
      const got = await readCoalesced(ranges, maxGap, async (start, length) => {
        calls++;
        return object.subarray(start, start + length);
      });
      assert.ok(got);
      assert.equal(calls, groups.filter((g) => g.length > 0).length);
      ranges.forEach((x, i) => assert.ok(got[i].equals(object.subarray(x.start, x.start + x.length))));
    }
  });

  test("sliceMembers with a short read, and readCoalesced with a missing object", async () => {
    const ranges = [r(0, 4), r(6, 4)];
    const groups = coalesceRanges(ranges, 10);
    const out: Buffer[] = [];
    sliceMembers(ranges, groups, [Buffer.from("abcdefg")], out);
    assert.deepEqual(out.map((b) => b.toString()), ["abcd", "g"]);
    assert.equal(await readCoalesced(ranges, 0, async () => null), null);
  });
});

describe("SizeBoundedLru", () => {
  test("evicts least recently used entries by total size", () => {
    const lru = new SizeBoundedLru<string, Buffer>(10, (b) => b.length);
    lru.set("a", Buffer.alloc(4));
    lru.set("b", Buffer.alloc(4));
    assert.ok(lru.get("a")); // a is now the most recent
    lru.set("c", Buffer.alloc(4)); // 12 > 10: b goes
    assert.equal(lru.has("b"), false);
    assert.equal(lru.has("a"), true);
    assert.equal(lru.size, 8);
    assert.equal(lru.set("huge", Buffer.alloc(11)), false);
    assert.equal(lru.has("huge"), false);
    lru.set("a", Buffer.alloc(1)); // replacing updates the size
    assert.equal(lru.size, 5);
    assert.equal(lru.count, 2);
    assert.equal(lru.get("zzz"), undefined);
    assert.equal(lru.misses, 1);
    lru.clear();
    assert.equal(lru.size, 0);
  });
});

describe("ConcurrencyLimiter", () => {
  test("runs at most N at once, in FIFO order, and frees slots on failure", async () => {
    const limiter = new ConcurrencyLimiter(3);
    let running = 0;
    let peak = 0;
    const started: number[] = [];
    const releases: (() => void)[] = [];
    const tasks = Array.from({ length: 10 }, (_, i) =>
      limiter.run(async () => {
        started.push(i);
        running++;
        peak = Math.max(peak, running);
        await new Promise<void>((resolve) => releases.push(resolve));
        running--;
        if (i % 4 === 0) throw new Error(`task ${i}`);
        return i;
      }),
    );
    const settled = Promise.allSettled(tasks);
    // Release tasks one at a time as they start; each release lets exactly one waiter in.
    let released = 0;
    for (let spins = 0; released < 10 && spins < 10_000; spins++) {
      await new Promise((r) => setImmediate(r));
      const next = releases.shift();
      if (next) {
        next();
        released++;
      }
    }
    assert.equal(released, 10);
    assert.equal(peak, 3);
    assert.equal(limiter.peak, 3);
    assert.deepEqual(started, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.equal((await settled).filter((s) => s.status === "rejected").length, 3);
    assert.equal(limiter.active, 0);
    assert.equal(limiter.queued, 0);
    assert.deepEqual(await mapWithConcurrency([3, 1, 2], 2, async (x) => x * 2), [6, 2, 4]);
    assert.throws(() => new ConcurrencyLimiter(0), RangeError);
  });
});
