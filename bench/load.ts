/**
 * Load: autocannon in this process against the service in a child process on loopback (compiled
 * dist/src/server.js when built, else tsx), 100 concurrent clients on a mix of series and value
 * queries over the example trial. Reports throughput, p50/p99 latency, errors, and the server's
 * RSS sampled every 5 s (warm-up vs end: it should stay flat).
 *
 *   BENCH_LOAD_DURATION_S (default 60), BENCH_LOAD_CONNECTIONS (default 100), BENCH_LOAD_WARMUP_S (default 10)
 */
import { promises as fs, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import autocannon from "autocannon";
import { startServiceProcess } from "../test/support/service-process.js";

type Rows = Record<string, string | number>[];

/** Resident set size of a process in bytes (Linux /proc). */
function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(status);
  return m ? Number(m[1]) * 1024 : NaN;
}

const MB = (b: number) => Math.round((b / 1024 / 1024) * 10) / 10;

/** The mix: whole series (the dashboard's charts), step ranges, and single values at varying steps. */
function requestMix(): { method: "POST"; path: string; headers: Record<string, string>; body: string }[] {
  const body = (query: string, variables: Record<string, unknown> = {}) => JSON.stringify({ query, variables });
  const bodies = [
    body(`query Charts { trial(path: "trials/example") { tensors(collection: "metrics") { name series { steps values } } } }`),
    body(`query Sampled { trial(path: "trials/example") { tensor(name: "validation-rmse") { series(maxPoints: 20) { steps values sampled } } } }`),
    body(`query Range($f: Int, $t: Int) { trial(path: "trials/example") { tensor(name: "train-rmse") { values(fromStep: $f, toStep: $t) { step scalar } } } }`, { f: 10, t: 40 }),
  ];
  for (const step of [0, 17, 33, 50, 66, 99]) {
    bodies.push(body(`query Value($s: Int!) { trial(path: "trials/example") { tensor(name: "train-rmse") { value(step: $s) { step scalar dtype shape } } } }`, { s: step }));
  }
  return bodies.map((b) => ({ method: "POST", path: "/graphql", headers: { "content-type": "application/json" }, body: b }));
}

/**
 * What of the RSS is V8's heap, read from the service's /metrics: what the heap uses, what it has
 * reserved (the young generation's semi-spaces are reserved whole), and memory outside it.
 */
async function heapAt(base: string): Promise<string> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const bytes = (name: string, label = "") => {
    const m = new RegExp(`^trialgraph_${name}${label.replace(/[{}]/g, "\\$&")} ([0-9.e+]+)`, "m").exec(text);
    return m ? Number(m[1]) : NaN;
  };
  const total = bytes("nodejs_heap_size_total_bytes");
  const young = bytes("nodejs_heap_space_size_total_bytes", '{space="new"}');
  const old = bytes("nodejs_heap_space_size_total_bytes", '{space="old"}');
  return `${MB(bytes("nodejs_heap_size_used_bytes"))} / ${MB(total)} (${MB(young)} + ${MB(old)} + ${MB(total - young - old)}) / ${MB(bytes("nodejs_external_memory_bytes"))}`;
}

export async function runLoadBench(): Promise<Rows> {
  const durationS = Number(process.env.BENCH_LOAD_DURATION_S ?? 60);
  const connections = Number(process.env.BENCH_LOAD_CONNECTIONS ?? 100);
  const warmupS = Math.min(Number(process.env.BENCH_LOAD_WARMUP_S ?? 10), Math.max(1, Math.floor(durationS / 3)));
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), "tg-bench-load-"));
  const server = await startServiceProcess({ preferDist: true, env: { TRIALGRAPH_DATA_DIR: dataDir, LOG_LEVEL: "warn", TRIALGRAPH_RATE_LIMIT_PER_MINUTE: "0" } });
  try {
    const rssStart = rssOf(server.pid);
    const samples: { t: number; rss: number }[] = [{ t: 0, rss: rssStart }];
    const started = Date.now();
    const sampler = setInterval(() => samples.push({ t: (Date.now() - started) / 1000, rss: rssOf(server.pid) }), 5_000);
    let warmupRss = NaN;
    const warmupTimer = setTimeout(() => (warmupRss = rssOf(server.pid)), warmupS * 1000);
    const result = await autocannon({
      url: server.base,
      connections,
      duration: durationS,
      requests: requestMix(),
    });
    clearInterval(sampler);
    clearTimeout(warmupTimer);
    const rssEnd = rssOf(server.pid);
    const heap = await heapAt(server.base);
    samples.push({ t: (Date.now() - started) / 1000, rss: rssEnd });
    const non2xx = result.non2xx ?? 0;
    const afterWarmup = samples.filter((s) => s.t >= warmupS).map((s) => s.rss);
    return [
      { metric: "server", value: server.proc.spawnargs.slice(1).join(" ").replace(/^.*?\/(dist|src)\//, "$1/") },
      { metric: "connections", value: connections },
      { metric: "duration (s)", value: durationS },
      { metric: "requests", value: result.requests.total },
      { metric: "throughput (req/s)", value: Math.round(result.requests.average) },
      { metric: "latency p50 (ms)", value: result.latency.p50 },
      { metric: "latency p99 (ms)", value: result.latency.p99 },
      { metric: "latency max (ms)", value: result.latency.max },
      { metric: "errors (socket + timeouts + non-2xx)", value: result.errors + result.timeouts + non2xx },
      { metric: "RSS at start (MB)", value: MB(rssStart) },
      { metric: `RSS after ${warmupS} s warm-up (MB)`, value: MB(warmupRss) },
      { metric: "RSS at end (MB)", value: MB(rssEnd) },
      { metric: "RSS growth after warm-up (MB)", value: MB(rssEnd - warmupRss) },
      { metric: "RSS min..max after warm-up (MB)", value: afterWarmup.length ? `${MB(Math.min(...afterWarmup))}..${MB(Math.max(...afterWarmup))}` : "n/a" },
      {
        metric: "RSS plateau (max after warm-up), default settings: target ≤ 350 MB",
        value: afterWarmup.length ? `${MB(Math.max(...afterWarmup))} MB: ${Math.max(...afterWarmup) <= 350 * 2 ** 20 ? "pass" : "FAIL"}` : "n/a",
      },
      { metric: "RSS samples every 5 s (MB)", value: samples.map((s) => MB(s.rss)).join(" ") },
      { metric: "V8 heap at end (MB): used / reserved (new space + old space + rest) / external", value: heap },
    ];
  } finally {
    await server.stop(10_000);
    await fs.rm(dataDir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  runLoadBench().then(
    (rows) => {
      console.table(rows);
      process.exit(0);
    },
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
