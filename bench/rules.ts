/** Rule-engine benchmark (issue: rule engine): three rules over the whole perf-synth trial through evaluateRules. */
import { LocalSource } from "../dist/src/storage/local-source.js";
import { openTrial } from "../dist/src/trials/trial.js";
import { evaluateRules } from "../dist/src/rules/index.js";
import { ensurePerfTrial, median } from "./trials.js";

export async function runRulesBench(runs = Number(process.env.BENCH_RUNS ?? 5)): Promise<Record<string, string | number>[]> {
  const dir = ensurePerfTrial();
  const rules = [
    { builtin: "LossNotDecreasing" },
    { builtin: "FeatureImportanceOverweight" },
    { builtin: "AllZero", parameters: { tensor_regex: ".*" } },
  ];
  const times: number[] = [];
  let detail = "";
  for (let i = 0; i < runs; i++) {
    const trial = (await openTrial(new LocalSource(dir), "perf-trial"))!;
    const t0 = performance.now();
    const results = await evaluateRules(trial, rules);
    times.push(performance.now() - t0);
    detail = results.map((r) => `${r.ruleConfigurationName}: ${r.status} (${r.evaluatedSteps} steps)`).join("; ");
  }
  return [{ case: "LossNotDecreasing + FeatureImportanceOverweight + AllZero(.*), 500 steps × 587 tensors", "ms (median)": median(times).toFixed(0), "target ms": 1000, detail }];
}
