/** `npm run bench`: every benchmark, printed as tables. `npm run bench -- trials rules` runs some sections. */
import { execFileSync } from "node:child_process";
import os from "node:os";

type Rows = Record<string, string | number>[];

// Sections load lazily: they import the compiled service, which is built first.
const sections: Record<string, () => Promise<Rows>> = {
  trials: async () => (await import("./trials.js")).runTrialBench(Number(process.env.BENCH_RUNS ?? 5)),
  s3: async () => (await import("./s3.js")).runS3Bench(),
  rules: async () => (await import("./rules.js")).runRulesBench(),
  stats: async () => (await import("./stats.js")).runStatsBench(),
  hook: async () => (await import("./hook.js")).runHookBench(),
  fanout: async () => (await import("./fanout.js")).runFanoutBench(),
  subscribe: async () => (await import("./subscribe.js")).runSubscribeBench(),
  load: async () => (await import("./load.js")).runLoadBench(),
  playground: async () => (await import("./playground.js")).runPlaygroundBench(Number(process.env.BENCH_RUNS ?? 5)),
  durable: async () => (await import("./durable.js")).runDurableBench(),
  hostile: async () => (await import("./hostile.js")).runHostileBench(),
};

/** The machine and how busy it is: every table says under what conditions it was measured. */
function conditions(): string {
  const load = os.loadavg().map((l) => l.toFixed(2)).join(" / ");
  return `${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC, ${os.availableParallelism()} cores (${os.cpus()[0]?.model.trim() ?? "?"}), load average ${load} (1 / 5 / 15 min)`;
}

/** The rows as a Markdown table (what the README's figures are copied from). */
function markdown(rows: Rows): string {
  if (rows.length === 0) return "";
  const cols = Object.keys(rows[0]);
  const cell = (v: unknown) => String(v ?? "").replace(/\|/g, "\\|");
  return [`| ${cols.join(" | ")} |`, `|${cols.map(() => "---").join("|")}|`, ...rows.map((r) => `| ${cols.map((c) => cell(r[c])).join(" | ")} |`)].join("\n");
}

async function main(): Promise<void> {
  const wanted = process.argv.slice(2);
  // Benchmarks measure the compiled service, as `npm start` runs it.
  execFileSync("npx", ["tsc", "-p", "tsconfig.json"], { stdio: "inherit" });
  for (const [name, run] of Object.entries(sections)) {
    if (wanted.length && !wanted.includes(name)) continue;
    console.log(`\n## ${name}`);
    const before = conditions();
    const rows = await run();
    console.table(rows);
    console.log(`\nstarted ${before}\nended ${conditions()}\n\n${markdown(rows)}`);
  }
  process.exit(0);
}

void main();
