/** One in-process case of bench/trials.ts (open, reads), run in its own process; prints one JSON line. */
// The compiled service (npm run build), as `npm start` runs it: tsx's dev transforms cost time.
import { LocalSource } from "../dist/src/storage/local-source.js";
import { openTrial } from "../dist/src/trials/trial.js";
import { createValueCache } from "../dist/src/trials/value-cache.js";
import { PERF_TRIAL } from "./trials.js";

const peakRssMb = () => process.resourceUsage().maxRSS / 1024;

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
  throw new Error(`unknown case ${name}`);
}

main(process.argv[2]).then(
  (r) => { console.log(JSON.stringify({ ...r, rssMb: peakRssMb() })); process.exit(0); },
  (e) => { console.error(e); process.exit(1); },
);
