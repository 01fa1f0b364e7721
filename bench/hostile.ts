/**
 * The service's memory under hostile traffic (issue 16: RSS plateau with default settings): runs
 * test/hostile.test.ts (the compiled service in its own process, default memory settings, four clients sending
 * the seeded hostile mix with ordinary reads) for BENCH_HOSTILE_SECONDS (default 120) and reports
 * the peak RSS it prints.
 */
import { spawnSync } from "node:child_process";
import path from "node:path";

export function runHostileBench(): Record<string, string | number>[] {
  const seconds = Number(process.env.BENCH_HOSTILE_SECONDS ?? 120);
  const r = spawnSync(process.execPath, ["--import", "tsx", "--test", path.join(__dirname, "../test/hostile.test.ts")], {
    encoding: "utf8", env: { ...process.env, HOSTILE_SECONDS: String(seconds), HOSTILE_PREFER_DIST: "1" }, maxBuffer: 64 << 20,
  });
  const line = /# hostile traffic: (\d+) requests in (\d+) s by (\d+) clients; peak RSS (\d+) MB \(VmHWM\), highest sampled (\d+) MB over (\d+) samples/.exec(r.stdout);
  if (!line) throw new Error(`hostile run printed no figures (exit ${r.status}): ${(r.stdout + r.stderr).slice(-2000)}`);
  const passed = /^# fail 0/m.test(r.stdout) || /ℹ fail 0/.test(r.stdout);
  const peak = Number(line[4]);
  return [
    { metric: "requests / seconds / clients", value: `${line[1]} / ${line[2]} / ${line[3]}`, target: "", result: passed ? "test passed" : "TEST FAILED" },
    { metric: "service peak RSS (VmHWM, MB)", value: peak, target: "≤ 350", result: peak <= 350 ? "pass" : "FAIL" },
    { metric: `highest sampled RSS (MB, ${line[6]} samples)`, value: Number(line[5]), target: "≤ 350", result: Number(line[5]) <= 350 ? "pass" : "FAIL" },
  ];
}
