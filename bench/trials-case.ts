/** One measured case of bench/trials.ts, run in its own process; prints one JSON line. */
import pino from "pino";
// The compiled service (npm run build), as `npm start` runs it: tsx's dev transforms cost time.
import { LocalSource } from "../dist/src/storage/local-source.js";
import { openTrial } from "../dist/src/trials/trial.js";
import { createValueCache } from "../dist/src/trials/value-cache.js";
import { BENCH_DATA, PERF_TRIAL } from "./trials.js";

const peakRssMb = () => process.resourceUsage().maxRSS / 1024;

async function post(url: string, query: string): Promise<any> {
  const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query }) });
  const body = (await res.json()) as any;
  if (body.errors) throw new Error(JSON.stringify(body.errors).slice(0, 500));
  return body.data;
}

async function main(name: string): Promise<{ ms: number; detail?: string }> {
  if (name === "open" || name === "values-inprocess" || name === "series-inprocess") {
    const t0 = performance.now();
    const trial = (await openTrial(new LocalSource(PERF_TRIAL), "perf-trial", { cache: createValueCache(128 << 20) }))!;
    const names = trial.tensorNames();
    if (name === "open") return { ms: performance.now() - t0, detail: `${names.length} tensors, ${trial.steps().length} steps` };
    const t1 = performance.now();
    if (name === "series-inprocess") {
      const series = await trial.scalarSeries(names.map((n) => ({ name: n })));
      const count = series.reduce((a, s) => a + (s instanceof Error ? 0 : s.values.length), 0);
      return { ms: performance.now() - t1, detail: `${count} values as ${series.length} series (open excluded)` };
    }
    const values = await trial.values(names.flatMap((n) => trial.tensorSteps(n).map((step) => ({ name: n, step }))));
    const bad = values.filter((v) => v instanceof Error).length;
    return { ms: performance.now() - t1, detail: `${values.length} values, ${bad} errors (open excluded)` };
  }
  // The server is loaded only for the GraphQL cases, so in-process cases measure the reader alone.
  const { loadConfig } = await import("../dist/src/config.js");
  const { startServer } = await import("../dist/src/server.js");
  const config = loadConfig({ PORT: "0", LOG_LEVEL: "silent", TRIALGRAPH_DATA_DIR: BENCH_DATA });
  const server = await startServer(config, pino({ level: "silent" }));
  try {
    if (name === "series-warm") {
      const q = `{ trial(path: "perf-trial") { tensor(name: "validation-rmse") { series { steps values } } } }`;
      await post(server.url, q);
      const t0 = performance.now();
      const d = await post(server.url, q);
      return { ms: performance.now() - t0, detail: `${d.trial.tensor.series.steps.length} points` };
    }
    await post(server.url, `{ trial(path: "perf-trial") { steps } }`); // open outside the timing, as in process
    const query = name === "values-graphql"
      ? `{ trial(path: "perf-trial") { tensors { name values { step data } } } }`
      : `{ trial(path: "perf-trial") { tensors { name series { steps values } } } }`;
    const t0 = performance.now();
    const d = await post(server.url, query);
    const ms = performance.now() - t0;
    const count = d.trial.tensors.reduce((a: number, t: any) => a + (t.values ? t.values.length : t.series.values.length), 0);
    return { ms, detail: `${count} values` };
  } finally {
    await server.close();
  }
}

main(process.argv[2]).then(
  (r) => { console.log(JSON.stringify({ ...r, rssMb: peakRssMb() })); process.exit(0); },
  (e) => { console.error(e); process.exit(1); },
);
