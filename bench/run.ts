/** `npm run bench`: every benchmark, printed as tables. `npm run bench -- trials rules` runs some sections. */
import { execFileSync } from "node:child_process";

type Rows = Record<string, string | number>[];

// Sections load lazily: they import the compiled service, which is built first.
const sections: Record<string, () => Promise<Rows>> = {
  trials: async () => (await import("./trials.js")).runTrialBench(Number(process.env.BENCH_RUNS ?? 5)),
  s3: async () => (await import("./s3.js")).runS3Bench(),
  rules: async () => (await import("./rules.js")).runRulesBench(),
  stats: async () => (await import("./stats.js")).runStatsBench(),
  hook: async () => (await import("./hook.js")).runHookBench(),
  fanout: async () => (await import("./fanout.js")).runFanoutBench(),
  load: async () => (await import("./load.js")).runLoadBench(),
  playground: async () => (await import("./playground.js")).runPlaygroundBench(Number(process.env.BENCH_RUNS ?? 5)),
  durable: async () => (await import("./durable.js")).runDurableBench(),
};

async function main(): Promise<void> {
  const wanted = process.argv.slice(2);
  // Benchmarks measure the compiled service, as `npm start` runs it.
  execFileSync("npx", ["tsc", "-p", "tsconfig.json"], { stdio: "inherit" });
  for (const [name, run] of Object.entries(sections)) {
    if (wanted.length && !wanted.includes(name)) continue;
    console.log(`\n## ${name}`);
    console.table(await run());
  }
  process.exit(0);
}

void main();
