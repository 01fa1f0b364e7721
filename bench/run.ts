/** `npm run bench`: every benchmark, printed as tables. `npm run bench -- trials` runs one section. */
import { execFileSync } from "node:child_process";
import { runTrialBench } from "./trials.js";

const sections: Record<string, () => Promise<Record<string, string | number>[]> | Record<string, string | number>[]> = {
  trials: () => runTrialBench(Number(process.env.BENCH_RUNS ?? 5)),
};

async function main(): Promise<void> {
  // Benchmarks measure the compiled service, as `npm start` runs it.
  execFileSync("npx", ["tsc", "-p", "tsconfig.json"], { stdio: "inherit" });
  const wanted = process.argv.slice(2);
  for (const [name, run] of Object.entries(sections)) {
    if (wanted.length && !wanted.includes(name)) continue;
    console.log(`\n## ${name}`);
    console.table(await run());
  }
}

void main();
