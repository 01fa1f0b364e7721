/**
 * Trial-reader benchmark (issue 16) on the perf-synth fixture, like for like:
 *   - cold rows start from a fresh process (the trial opened inside the measurement), and are set
 *     against smdebug's cold figures (create_trial in a fresh Python process);
 *   - warm rows run with the trial already open and caches warm, against smdebug's warm figures;
 *   - HTTP rows run the compiled service in its own process (as `npm start`), read by a client in
 *     this process, and are set against a floor measured in the same run: the very same response
 *     bytes served by a bare node:http server (bench/floor-server.ts) and read by the same client.
 * smdebug's figures are fixed numbers from ../shared/fixtures/README.md, printed with where they come
 * from; they were not measured in this run. Every row prints its median, its sample count and its
 * target with pass/fail.
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { startServiceProcess } from "../test/support/service-process.js";

export const BENCH_DATA = path.resolve(__dirname, ".data");
export const PERF_TRIAL = path.join(BENCH_DATA, "perf-trial");
const ARCHIVE = path.resolve(__dirname, "../../shared/fixtures/trials/perf-synth.tar.xz");

export function ensurePerfTrial(): string {
  if (!existsSync(PERF_TRIAL)) {
    mkdirSync(BENCH_DATA, { recursive: true });
    console.log(`unpacking ${ARCHIVE} into ${BENCH_DATA}`);
    execFileSync("tar", ["-xJf", ARCHIVE, "-C", BENCH_DATA]);
  }
  return PERF_TRIAL;
}

export interface CaseResult { ms: number; rssMb: number; detail?: string }

/** Runs one case of bench/trials-case.ts in a fresh Node process. */
export function runCase(name: string): CaseResult {
  const r = spawnSync(process.execPath, ["--import", "tsx", path.join(__dirname, "trials-case.ts"), name], {
    encoding: "utf8", env: { ...process.env, NODE_NO_WARNINGS: "1", NODE_ENV: "production" }, maxBuffer: 64 << 20,
  });
  const line = r.stdout.trim().split("\n").pop() ?? "";
  try {
    return JSON.parse(line);
  } catch {
    throw new Error(`case ${name} failed: ${r.stderr.slice(-2000)}`);
  }
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** smdebug 1.0.34's figures on perf-synth, from ../shared/fixtures/README.md (not measured here). */
const SMDEBUG = {
  coldOpen: { ms: 2010, text: "2,010 ms", from: "fixtures README: open + tensor_names(), fresh process, median of 5, 2 vCPU" },
  coldAll: { ms: 8260, text: "8,260 ms", from: "fixtures README: every value, fresh process, create_trial included" },
  coldOne: { ms: 2060, text: "2,060 ms", from: "fixtures README: one series, fresh process, create_trial included" },
  coldRss: { text: "438 MiB", from: "fixtures README: peak RSS reading every value" },
  warmAll: { ms: 6250, text: "≈6,250 ms quiet; 15,000 ms median under load", from: "fixtures README: trial open, second pass (8.26 − 2.01 s quiet)" },
  warmOne: { ms: 23, text: "22–24 ms", from: "fixtures README: trial open, measured 2026-12-04 interleaved, loaded machine" },
} as const;

const QUERIES = {
  seriesAll: `{ trial(path: "perf-trial") { tensors { name series { steps values } } } }`,
  valuesAll: `{ trial(path: "perf-trial") { tensors { name values { step data } } } }`,
  one: `{ trial(path: "perf-trial") { tensor(name: "validation-rmse") { series { steps values } } } }`,
};

/** One client request as every HTTP row makes it: POST, read the whole body, parse it. */
async function timedPost(url: string, query: string): Promise<{ ms: number; text: string }> {
  const t0 = performance.now();
  const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query }) });
  const text = await res.text();
  const body = JSON.parse(text);
  const ms = performance.now() - t0;
  if (!res.ok || body.errors) throw new Error(`${res.status}: ${text.slice(0, 500)}`);
  return { ms, text };
}

/**
 * Warm rows measure the steady state: before timing, each side (ours and the floor) answers the same
 * query this many times unmeasured, so neither is timed while V8 is still compiling the code that
 * answers it. The whole-trial queries are big enough to warm up in a few requests.
 */
const WARM_UP = { bulk: 2, one: 200 };

async function warmUp(url: string, query: string, times: number): Promise<void> {
  for (let i = 0; i < times; i++) await timedPost(url, query);
}

/** Posts `query` `runs` times, pushing each time into `into`; the last response's text (to size and replay it), "" after no run. */
async function timedRuns(url: string, query: string, runs: number, into: number[]): Promise<string> {
  let text = "";
  for (let i = 0; i < runs; i++) {
    const r = await timedPost(url, query);
    into.push(r.ms);
    text = r.text;
  }
  return text;
}

function vmHwmMb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

interface HttpSamples {
  ready: number[];
  cold: number[];
  second: number[];
  seriesWarm: number[];
  valuesFirst: number[];
  valuesWarm: number[];
  oneWarm: number[];
  rssSeries: number[];
  rssValues: number[];
  floorSeries: number[];
  floorValues: number[];
  floorOne: number[];
  bytes: { seriesAll: number; valuesAll: number; one: number };
}

/** Fresh service per run: a cold read first, then warm repeats; then the floor on the same bytes. */
async function runHttp(runs: number, repeats: number): Promise<HttpSamples> {
  const s: HttpSamples = {
    ready: [], cold: [], second: [], seriesWarm: [], valuesFirst: [], valuesWarm: [], oneWarm: [], rssSeries: [], rssValues: [],
    floorSeries: [], floorValues: [], floorOne: [], bytes: { seriesAll: 0, valuesAll: 0, one: 0 },
  };
  const bodiesDir = mkdtempSync(path.join(os.tmpdir(), "tg-bench-floor-"));
  try {
    for (let r = 0; r < runs; r++) {
      const started = performance.now();
      const service = await startServiceProcess({ preferDist: true, env: { TRIALGRAPH_DATA_DIR: BENCH_DATA, LOG_LEVEL: "warn", NODE_ENV: "production", TRIALGRAPH_RATE_LIMIT_PER_MINUTE: "0" } });
      try {
        s.ready.push(performance.now() - started);
        // Cold: the service has not opened the trial; the first query opens it and reads everything.
        const cold = await timedPost(service.url, QUERIES.seriesAll);
        s.cold.push(cold.ms);
        // The first of the unmeasured warm-up requests is timed as its own row: the request after a cold one.
        s.second.push((await timedPost(service.url, QUERIES.seriesAll)).ms);
        await warmUp(service.url, QUERIES.seriesAll, WARM_UP.bulk - 1);
        let last = (await timedRuns(service.url, QUERIES.seriesAll, repeats, s.seriesWarm)) || cold.text;
        s.rssSeries.push(vmHwmMb(service.pid));
        writeFileSync(path.join(bodiesDir, "series-all.json"), last);
        s.bytes.seriesAll = Buffer.byteLength(last);
        const first = await timedPost(service.url, QUERIES.valuesAll);
        s.valuesFirst.push(first.ms);
        await warmUp(service.url, QUERIES.valuesAll, WARM_UP.bulk);
        last = (await timedRuns(service.url, QUERIES.valuesAll, repeats, s.valuesWarm)) || first.text;
        s.rssValues.push(vmHwmMb(service.pid));
        writeFileSync(path.join(bodiesDir, "values-all.json"), last);
        s.bytes.valuesAll = Buffer.byteLength(last);
        const oneFirst = await timedPost(service.url, QUERIES.one);
        await warmUp(service.url, QUERIES.one, WARM_UP.one);
        last = (await timedRuns(service.url, QUERIES.one, 5 * repeats, s.oneWarm)) || oneFirst.text;
        writeFileSync(path.join(bodiesDir, "one.json"), last);
        s.bytes.one = Buffer.byteLength(last);
      } finally {
        await service.stop(10_000);
      }
      // The floor, right after: same bytes, same client, a bare node:http server in its own process.
      const floor = spawn(process.execPath, ["--import", "tsx", path.join(__dirname, "floor-server.ts"), bodiesDir], { stdio: ["ignore", "pipe", "inherit"] });
      try {
        const port = await new Promise<number>((resolve, reject) => {
          floor.stdout!.once("data", (c: Buffer) => resolve(JSON.parse(c.toString()).port));
          floor.once("exit", (code) => reject(new Error(`floor server exited (${code})`)));
        });
        const at = (name: string) => `http://127.0.0.1:${port}/${name}`;
        await warmUp(at("series-all"), QUERIES.seriesAll, 1 + WARM_UP.bulk);
        await timedRuns(at("series-all"), QUERIES.seriesAll, repeats, s.floorSeries);
        await warmUp(at("values-all"), QUERIES.valuesAll, 1 + WARM_UP.bulk);
        await timedRuns(at("values-all"), QUERIES.valuesAll, repeats, s.floorValues);
        await warmUp(at("one"), QUERIES.one, 1 + WARM_UP.one);
        await timedRuns(at("one"), QUERIES.one, 5 * repeats, s.floorOne);
      } finally {
        floor.kill();
      }
    }
  } finally {
    rmSync(bodiesDir, { recursive: true, force: true });
  }
  return s;
}

type Row = Record<string, string | number>;

const fmtMs = (ms: number) => (ms < 10 ? ms.toFixed(2) : ms < 100 ? ms.toFixed(1) : ms.toFixed(0));

function row(o: {
  kind: "cold" | "warm" | "in process"; label: string; samples: number[]; floor?: number[]; target?: number; unit?: "ms" | "MB";
  smdebug?: { text: string; from: string }; note?: string;
}): Row {
  const unit = o.unit ?? "ms";
  const m = median(o.samples);
  const floor = o.floor?.length ? median(o.floor) : null;
  return {
    case: o.label,
    kind: o.kind,
    N: o.samples.length,
    [`median`]: unit === "ms" ? `${fmtMs(m)} ms` : `${m.toFixed(0)} MB`,
    floor: floor === null ? "" : `${fmtMs(floor)} ms`,
    "ours/floor": floor === null ? "" : `${(m / floor).toFixed(2)}×`,
    target: o.target === undefined ? "" : `≤ ${o.target} ${unit}`,
    result: o.target === undefined ? "" : m <= o.target ? "pass" : "FAIL",
    "smdebug (fixed figure)": o.smdebug?.text ?? "",
    "smdebug provenance": o.smdebug?.from ?? "",
    note: o.note ?? "",
  };
}

export async function runTrialBench(runs = 5): Promise<Row[]> {
  ensurePerfTrial();
  const rows: Row[] = [];
  const inProcess = (id: string) => Array.from({ length: runs }, () => runCase(id));
  const open = inProcess("open");
  rows.push(row({ kind: "cold", label: "open + tensor names, fresh process", samples: open.map((r) => r.ms), target: 300, smdebug: SMDEBUG.coldOpen, note: open[0].detail }));

  const repeats = Number(process.env.BENCH_REPEATS ?? 3);
  const h = await runHttp(runs, repeats);
  rows.push(row({ kind: "cold", label: "fresh service: start to ready (process spawned to /healthz answering)", samples: h.ready, note: "everything the service does before it takes requests" }));
  rows.push(row({ kind: "cold", label: "first full series query on a fresh service (open included), HTTP", samples: h.cold, target: 500, smdebug: SMDEBUG.coldAll, note: `${(h.bytes.seriesAll / 1e6).toFixed(1)} MB of JSON` }));
  rows.push(row({ kind: "warm", label: "the full series query again, right after the cold one, HTTP", samples: h.second, note: "the first of the unmeasured requests below" }));
  rows.push(row({ kind: "warm", label: "every tensor as series { steps values }, HTTP", samples: h.seriesWarm, floor: h.floorSeries, target: 150, smdebug: SMDEBUG.warmAll, note: `after ${WARM_UP.bulk} unmeasured requests (floor too)` }));
  rows.push(row({ kind: "warm", label: "every value as values { step data }, first pass after open, HTTP", samples: h.valuesFirst, floor: h.floorValues, smdebug: SMDEBUG.warmAll, note: "trial open, values not read before" }));
  rows.push(row({ kind: "warm", label: "every value as values { step data }, HTTP", samples: h.valuesWarm, floor: h.floorValues, target: 600, smdebug: SMDEBUG.warmAll, note: `${(h.bytes.valuesAll / 1e6).toFixed(1)} MB of JSON; after ${WARM_UP.bulk} unmeasured requests (floor too)` }));
  rows.push(row({ kind: "warm", label: "one series (validation-rmse, 500 steps), HTTP", samples: h.oneWarm, floor: h.floorOne, target: 2, smdebug: SMDEBUG.warmOne, note: `after ${WARM_UP.one} unmeasured requests (floor too)` }));
  rows.push(row({ kind: "warm", label: "service peak RSS after the series reads", samples: h.rssSeries, unit: "MB", target: 250, smdebug: SMDEBUG.coldRss, note: "VmHWM of the service process" }));
  rows.push(row({ kind: "warm", label: "service peak RSS after every value as values { step data }", samples: h.rssValues, unit: "MB", target: 250, smdebug: SMDEBUG.coldRss, note: "VmHWM of the service process" }));

  for (const [id, label] of [
    ["series-inprocess", "every value in process: trial.scalarSeries() (open excluded)"],
    ["values-inprocess", "every value in process: trial.values() (open excluded)"],
  ] as const) {
    const rs = inProcess(id);
    rows.push(row({ kind: "in process", label, samples: rs.map((r) => r.ms), smdebug: SMDEBUG.warmAll, note: `peak RSS ${Math.max(...rs.map((r) => r.rssMb)).toFixed(0)} MB; ${rs[0].detail}` }));
  }
  return rows;
}
