/**
 * S3 benchmark (issue: S3 trials): perf-synth uploaded to a local S3-protocol server (s3rver behind a
 * counting proxy); GET counts and times with coalescing versus one GET per tensor-step, and the
 * same reads from local disk.
 */
import { LocalSource } from "../dist/src/storage/local-source.js";
import { S3Source } from "../dist/src/storage/s3-source.js";
import { openTrial, mapLimit, type Trial } from "../dist/src/trials/trial.js";
import { createBucket, createTestClient, start, uploadDirectory } from "../test/support/s3-server.js";
import { ensurePerfTrial } from "./trials.js";

type Row = Record<string, string | number>;
const BUCKET = "trialgraph-bench";

export async function runS3Bench(): Promise<Row[]> {
  const dir = ensurePerfTrial();
  const server = await start();
  const client = createTestClient(server, { maxAttempts: 3, maxSockets: 32 });
  const rows: Row[] = [];
  try {
    await createBucket(client, BUCKET);
    const uploaded = await uploadDirectory(client, BUCKET, "perf/debug-output", dir);
    const fresh = async (): Promise<Trial> => {
      const source = new S3Source({ client, bucket: BUCKET, prefix: "perf/debug-output", objectCacheBytes: 64 << 20 });
      return (await openTrial(source, `s3://${BUCKET}/perf/debug-output`))!;
    };
    const measure = async (label: string, baseline: string, fn: () => Promise<unknown>, touchedFiles: number, expected: string) => {
      server.resetLog();
      const t0 = performance.now();
      await fn();
      const ms = performance.now() - t0;
      const gets = server.requests({ operation: "GetObject" }).length;
      rows.push({ case: label, reads: baseline, "GET requests": gets, "event files touched": touchedFiles, "ms": ms.toFixed(0), note: expected });
    };

    server.resetLog();
    let t0 = performance.now();
    const trial = await fresh();
    const openMs = performance.now() - t0;
    rows.push({
      case: "open + tensor names", reads: "index + collections, once",
      "GET requests": server.requests({ operation: "GetObject" }).length, "event files touched": 0, ms: openMs.toFixed(0),
      note: `${uploaded.length} objects uploaded; ${server.requests({ operation: "ListObjectsV2" }).length} LIST requests`,
    });
    const names = trial.tensorNames();
    const steps = trial.steps();
    const mid = steps[Math.floor(steps.length / 2)];

    // (a) every tensor at one step
    await measure("(a) every tensor at one step", "coalesced", () => trial.values(names.map((name) => ({ name, step: mid }))), 1, "target: 1 GET");
    await measure("(a) every tensor at one step", "one GET per tensor-step", async () => {
      const t = await fresh();
      server.resetLog();
      await oneGetPerValue(t, names.map((name) => ({ name, step: mid })));
    }, 1, `${names.length} GETs expected`);

    // (b) one series over 500 steps
    const t2 = await fresh();
    await measure("(b) one series (validation-rmse), 500 steps", "coalesced", () => t2.scalarSeries([{ name: "validation-rmse" }]), steps.length, "one GET per event file");

    // (c) every value of every tensor
    const t3 = await fresh();
    await measure("(c) every value (281,275)", "coalesced", () => t3.scalarSeries(names.map((name) => ({ name }))), steps.length, "target: GETs = event files touched");
    const sample = steps.slice(0, 10);
    const t4 = await fresh();
    server.resetLog();
    t0 = performance.now();
    await oneGetPerValue(t4, sample.flatMap((step) => names.map((name) => ({ name, step }))));
    const sampleMs = performance.now() - t0;
    const sampleGets = server.requests({ operation: "GetObject" }).length;
    rows.push({
      case: "(c) every value (281,275)", reads: "one GET per tensor-step",
      "GET requests": `${sampleGets * (steps.length / sample.length)} (extrapolated)`, "event files touched": steps.length,
      ms: `${((sampleMs * steps.length) / sample.length).toFixed(0)} (extrapolated)`,
      note: `measured on ${sample.length} steps: ${sampleGets} GETs in ${sampleMs.toFixed(0)} ms`,
    });
    // The counting proxy opens a connection per request; time the same read straight to s3rver too.
    const direct = createTestClient({ endpoint: server.directEndpoint }, { maxAttempts: 3, maxSockets: 8 });
    const t5 = (await openTrial(new S3Source({ client: direct, bucket: BUCKET, prefix: "perf/debug-output" }), `s3://${BUCKET}/perf/debug-output`))!;
    t0 = performance.now();
    await t5.scalarSeries(names.map((name) => ({ name })));
    const directMs = performance.now() - t0;
    direct.destroy();
    rows.push({ case: "(c) every value (281,275)", reads: "coalesced, no proxy", "GET requests": "(as above)", "event files touched": steps.length, ms: directMs.toFixed(0), note: "s3rver directly, 8 sockets" });
    const local = (await openTrial(new LocalSource(dir), "perf-trial"))!;
    t0 = performance.now();
    await local.scalarSeries(names.map((name) => ({ name })));
    const localMs = performance.now() - t0;
    const s3Ms = directMs;
    rows.push({ case: "(c) every value (281,275)", reads: "local disk", "GET requests": 0, "event files touched": steps.length, ms: localMs.toFixed(0), note: `S3 (no proxy) / local = ${(s3Ms / localMs).toFixed(2)}× (target ≤ 2×: ${s3Ms / localMs <= 2 ? "pass" : "FAIL"}; s3rver shares the 2 cores)` });
  } finally {
    client.destroy();
    await server.close();
  }
  return rows;
}

/** The naive reader: every (tensor, step) value as its own ranged GET, 32 in flight. */
async function oneGetPerValue(trial: Trial, requests: { name: string; step: number }[]): Promise<void> {
  await mapLimit(requests, 32, (r) => trial.values([r]));
}
