/**
 * S3 benchmark (issue: S3 trials): perf-synth uploaded to a local S3-protocol server (s3rver behind a
 * counting proxy); GET counts and times with coalescing versus one GET per tensor-step, the every-value
 * read straight to s3rver against a floor (the same GETs from a bare node:http client, with each
 * side's CPU) and against the same GETs through S3Source without decoding, and the same reads from local disk.
 */
import { readdirSync, readFileSync } from "node:fs";
import http from "node:http";
import { LocalSource } from "../dist/src/storage/local-source.js";
import { S3Source } from "../dist/src/storage/s3-source.js";
import { openTrial, mapLimit, type Trial } from "../dist/src/trials/trial.js";
import { createBucket, createTestClient, start, uploadDirectory } from "../test/support/s3-server.js";
import { ensurePerfTrial, median } from "./trials.js";

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
    const everyValueGets = server.requests({ operation: "GetObject" }).map((e) => ({ path: e.path, range: e.range }));
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
    // The counting proxy opens a connection per request; time the same read straight to s3rver too,
    // against a floor in the same run: the very GETs our reader sent (keys and ranges, from the log
    // of the (c) run above) made by a bare node:http client, unsigned, with as many sockets. s3rver
    // runs on the same cores, so the CPU of each side is printed too: what the server costs is not ours.
    const directSockets = 8;
    const direct = createTestClient({ endpoint: server.directEndpoint }, { maxAttempts: 3, maxSockets: directSockets });
    const s3rver = childPid("--openssl-legacy-provider");
    // Between the two, the same GETs through S3Source (the SDK client, signed) with the bodies read but not
    // decoded: splits ours/floor into the request path's share and the decoding's.
    // Each round times all four (and the local read) back to back, and every ratio is the median of the
    // rounds' own ratios: the machine's speed drifts (other work shares the 2 cores), a round's cases share it.
    const rounds = 5;
    const ours: Sample[] = [];
    const sdkOnly: Sample[] = [];
    const floor: Sample[] = [];
    const localMs: number[] = [];
    const local = (await openTrial(new LocalSource(dir), "perf-trial"))!;
    for (let i = 0; i < rounds; i++) {
      const t5 = (await openTrial(new S3Source({ client: direct, bucket: BUCKET, prefix: "perf/debug-output" }), `s3://${BUCKET}/perf/debug-output`))!;
      ours.push(await timed(s3rver, () => t5.scalarSeries(names.map((name) => ({ name })))));
      const source = new S3Source({ client: direct, bucket: BUCKET, prefix: "perf/debug-output" });
      sdkOnly.push(await timed(s3rver, () => sourceGets(source, `/${BUCKET}/perf/debug-output/`, everyValueGets, directSockets)));
      floor.push(await timed(s3rver, () => bareGets(server.directEndpoint, everyValueGets, directSockets)));
      t0 = performance.now();
      await local.scalarSeries(names.map((name) => ({ name })));
      localMs.push(performance.now() - t0);
    }
    direct.destroy();
    const ratio = (a: number[], b: number[]) => median(a.map((x, i) => x / b[i]));
    const ms = (xs: Sample[]) => xs.map((x) => x.ms);
    const s3Ms = median(ms(ours));
    const sdkMs = median(ms(sdkOnly));
    const floorMs = median(ms(floor));
    const lMs = median(localMs);
    const s3Local = ratio(ms(ours), localMs);
    rows.push({
      case: "(c) every value (281,275)", reads: "coalesced, no proxy", "GET requests": everyValueGets.length, "event files touched": steps.length, ms: s3Ms.toFixed(0),
      note: `s3rver directly, ${directSockets} sockets, median of ${rounds}; CPU: ours ${median(ours.map((x) => x.cpuMs)).toFixed(0)} ms, s3rver ${median(ours.map((x) => x.serverCpuMs)).toFixed(0)} ms`,
    });
    rows.push({
      case: "(c) every value (281,275)", reads: "the same GETs through S3Source, not decoded", "GET requests": everyValueGets.length, "event files touched": steps.length, ms: sdkMs.toFixed(0),
      note: `ours/this = ${ratio(ms(ours), ms(sdkOnly)).toFixed(2)}×, this/floor = ${ratio(ms(sdkOnly), ms(floor)).toFixed(2)}×; CPU: ours ${median(sdkOnly.map((x) => x.cpuMs)).toFixed(0)} ms, s3rver ${median(sdkOnly.map((x) => x.serverCpuMs)).toFixed(0)} ms`,
    });
    rows.push({
      case: "(c) every value (281,275)", reads: "floor: the same GETs, bare node:http, unsigned", "GET requests": everyValueGets.length, "event files touched": steps.length, ms: floorMs.toFixed(0),
      note: `ours/floor = ${ratio(ms(ours), ms(floor)).toFixed(2)}×; CPU: client ${median(floor.map((x) => x.cpuMs)).toFixed(0)} ms, s3rver ${median(floor.map((x) => x.serverCpuMs)).toFixed(0)} ms; floor/local = ${ratio(ms(floor), localMs).toFixed(2)}×`,
    });
    rows.push({ case: "(c) every value (281,275)", reads: "local disk", "GET requests": 0, "event files touched": steps.length, ms: lMs.toFixed(0), note: `S3 (no proxy) / local = ${s3Local.toFixed(2)}× (target ≤ 2×: ${s3Local <= 2 ? "pass" : "FAIL"}; s3rver shares the 2 cores); median of ${rounds}, ratios: medians of the rounds' own` });
    // Why ≤ 2× local cannot be met against s3rver here: the server alone spends more CPU on these GETs
    // than 2× the local read takes, on the same cores as the client.
    const serverCpuMs = median(floor.map((x) => x.serverCpuMs));
    rows.push({
      case: "(c) every value (281,275)", reads: "s3rver's own CPU for the same GETs (floor runs)", "GET requests": everyValueGets.length, "event files touched": steps.length, ms: serverCpuMs.toFixed(0),
      note: `= ${(serverCpuMs / lMs).toFixed(2)}× local; 2× local = ${(2 * lMs).toFixed(0)} ms: ${serverCpuMs > 2 * lMs ? "s3rver alone is over 2× local before any client work" : "s3rver alone is within 2× local"}; median of ${rounds}`,
    });
  } finally {
    client.destroy();
    await server.close();
  }
  return rows;
}

interface Sample { ms: number; cpuMs: number; serverCpuMs: number }

/** Wall time, this process's CPU and the server process's CPU while `fn` runs. */
async function timed(serverPid: number, fn: () => Promise<unknown>): Promise<Sample> {
  const server0 = processCpuMs(serverPid);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await fn();
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { ms, cpuMs: (cpu.user + cpu.system) / 1000, serverCpuMs: processCpuMs(serverPid) - server0 };
}

/** User + system CPU of a process, from /proc (clock ticks of 10 ms). */
function processCpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** The child process of this one whose command line contains `marker` (s3rver's). */
function childPid(marker: string): number {
  for (const entry of readdirSync("/proc")) {
    if (!/^[0-9]+$/.test(entry)) continue;
    try {
      const ppid = Number(readFileSync(`/proc/${entry}/stat`, "utf8").split(") ")[1].split(" ")[1]);
      if (ppid === process.pid && readFileSync(`/proc/${entry}/cmdline`, "utf8").includes(marker)) return Number(entry);
    } catch {
      // gone meanwhile
    }
  }
  throw new Error(`no child process with ${marker}`);
}

/** The floor: these GETs (path and Range) with a bare node:http client, unsigned, `sockets` at a time, bodies read whole. */
async function bareGets(endpoint: string, gets: { path: string; range?: string }[], sockets: number): Promise<void> {
  const url = new URL(endpoint);
  const agent = new http.Agent({ keepAlive: true, maxSockets: sockets });
  let next = 0;
  try {
    await Promise.all(Array.from({ length: sockets }, async () => {
      while (next < gets.length) {
        const get = gets[next++];
        await new Promise<void>((resolve, reject) => {
          const path = get.path.split("/").map(encodeURIComponent).join("/");
          http.get({ host: url.hostname, port: url.port, path, headers: get.range ? { range: get.range } : {}, agent }, (res) => {
            const chunks: Buffer[] = [];
            res.on("data", (c: Buffer) => chunks.push(c));
            res.on("end", () => {
              Buffer.concat(chunks);
              if ((res.statusCode ?? 0) >= 300) reject(new Error(`floor GET ${get.path}: HTTP ${res.statusCode}`));
              else resolve();
            });
            res.on("error", reject);
          }).on("error", reject);
        });
      }
    }));
  } finally {
    agent.destroy();
  }
}

/** These GETs (path and Range, as logged) through `source`, `concurrency` at a time, bodies read whole and dropped. */
async function sourceGets(source: S3Source, pathPrefix: string, gets: { path: string; range?: string }[], concurrency: number): Promise<void> {
  await mapLimit(gets, concurrency, async (get) => {
    if (!get.path.startsWith(pathPrefix)) throw new Error(`GET outside the trial: ${get.path}`);
    const key = get.path.slice(pathPrefix.length);
    const m = get.range ? /^bytes=(\d+)-(\d+)$/.exec(get.range) : null;
    if (get.range && !m) throw new Error(`unexpected Range ${get.range}`);
    const data = m ? await source.readRanges(key, [{ start: Number(m[1]), length: Number(m[2]) - Number(m[1]) + 1 }]) : await source.read(key);
    if (!data) throw new Error(`GET ${get.path}: missing`);
  });
}

/** The naive reader: every (tensor, step) value as its own ranged GET, 32 in flight. */
async function oneGetPerValue(trial: Trial, requests: { name: string; step: number }[]): Promise<void> {
  await mapLimit(requests, 32, (r) => trial.values([r]));
}
