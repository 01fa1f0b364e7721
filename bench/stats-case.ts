/** One measured case of bench/stats.ts, run in its own process; prints one JSON line. */
import pino from "pino";
// The compiled service (npm run build), as `npm start` runs it.
import { LocalSource } from "../dist/src/storage/local-source.js";
import { openTrial } from "../dist/src/trials/trial.js";
import { createValueCache } from "../dist/src/trials/value-cache.js";
import { BENCH_DATA } from "./trials.js";
import { DL_TRIAL } from "./stats.js";

const peakRssMb = () => process.resourceUsage().maxRSS / 1024;

async function main(name: string): Promise<{ ms: number; warmMs?: number; detail?: string }> {
  if (name === "raw" || name === "stats") {
    const trial = (await openTrial(new LocalSource(DL_TRIAL), "dl-trial", { cache: createValueCache(128 << 20) }))!;
    const names = trial.tensorNames();
    if (name === "raw") {
      // Step by step, as a client paging through the values would (all at once would not fit the budget).
      const t0 = performance.now();
      let elements = 0;
      for (const step of trial.steps()) {
        for (const v of await trial.values(names.map((n) => ({ name: n, step })))) {
          if (v instanceof Error) throw v;
          elements += v.values!.length;
        }
      }
      return { ms: performance.now() - t0, detail: `${(elements / 1e6).toFixed(1)} M elements of ${names.length} tensors × ${trial.steps().length} steps decoded` };
    }
    const run = async () => {
      const t0 = performance.now();
      const series = await trial.statsSeries(names.map((n) => ({ name: n })));
      const failed = series.find((s) => s instanceof Error);
      if (failed) throw failed;
      return performance.now() - t0;
    };
    const ms = await run();
    const warmMs = Math.min(await run(), await run(), await run());
    return { ms, warmMs, detail: `${names.length} tensors × ${trial.steps().length} steps; warm: cached statistics (best of 3)` };
  }
  const { loadConfig } = await import("../dist/src/config.js");
  const { startServer } = await import("../dist/src/server.js");
  const config = loadConfig({ PORT: "0", LOG_LEVEL: "silent", TRIALGRAPH_DATA_DIR: BENCH_DATA });
  const server = await startServer(config, pino({ level: "silent" }));
  try {
    const post = async (query: string) => {
      const res = await fetch(server.url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query }) });
      const text = await res.text();
      const body = JSON.parse(text);
      if (body.errors) throw new Error(JSON.stringify(body.errors).slice(0, 500));
      return text.length;
    };
    await post(`{ trial(path: "dl-trial") { steps } }`); // open outside the timing
    const q = `{ trial(path: "dl-trial") { tensors { name statsSeries { steps min max mean std l2 } } } }`;
    let t0 = performance.now();
    const bytes = await post(q);
    const ms = performance.now() - t0;
    let warmMs = Infinity;
    for (let i = 0; i < 3; i++) {
      t0 = performance.now();
      await post(q);
      warmMs = Math.min(warmMs, performance.now() - t0);
    }
    return { ms, warmMs, detail: `${(bytes / 1024).toFixed(1)} KB of JSON; warm: best of 3` };
  } finally {
    await server.close();
  }
}

main(process.argv[2]).then(
  (r) => { console.log(JSON.stringify({ ...r, rssMb: peakRssMb() })); process.exit(0); },
  (e) => { console.error(e); process.exit(1); },
);
