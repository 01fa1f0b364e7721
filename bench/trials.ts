/**
 * Trial-reader benchmark (issue: trials graph) on the perf-synth fixture: open + names, every value
 * in process and through GraphQL over HTTP, one warm series; each case in a fresh process,
 * median of several runs, peak RSS per process.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";

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
  return s[Math.floor(s.length / 2)];
}

export function runTrialBench(runs = 5): Record<string, string | number>[] {
  ensurePerfTrial();
  const cases: [string, string, number | null, number | null][] = [
    ["open", "open + tensor names", 2010, null],
    ["values-inprocess", "every value (281,275), in process: trial.values()", 8260, 300],
    ["series-inprocess", "every value (281,275), in process: trial.scalarSeries()", 8260, 300],
    ["values-graphql", "every value through GraphQL over HTTP (values { step data })", 8260, 800],
    ["series-graphql", "every tensor as a series through GraphQL over HTTP", 8260, 800],
    ["series-warm", "one series (validation-rmse), warm, GraphQL over HTTP", 2060, 50],
  ];
  const rows: Record<string, string | number>[] = [];
  for (const [id, label, smdebug, target] of cases) {
    const results = Array.from({ length: runs }, () => runCase(id));
    const ms = median(results.map((r) => r.ms));
    rows.push({
      case: label,
      "trialgraph ms (median)": ms.toFixed(1),
      "smdebug ms": smdebug ?? "",
      "speedup": smdebug ? `${(smdebug / ms).toFixed(1)}×` : "",
      "target ms": target ?? "",
      "peak RSS MB": Math.max(...results.map((r) => r.rssMb)).toFixed(0),
      detail: results[0].detail ?? "",
    });
  }
  return rows;
}
