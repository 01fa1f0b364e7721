/** `npm run bench`: every benchmark, printed as tables. `npm run bench -- trials` runs one section. */
import { runTrialBench } from "./trials.js";

const sections: Record<string, () => Promise<Record<string, string | number>[]> | Record<string, string | number>[]> = {
  trials: () => runTrialBench(Number(process.env.BENCH_RUNS ?? 5)),
};

async function main(): Promise<void> {
  const wanted = process.argv.slice(2);
  for (const [name, run] of Object.entries(sections)) {
    if (wanted.length && !wanted.includes(name)) continue;
    console.log(`\n## ${name}`);
    console.table(await run());
  }
}

void main();
