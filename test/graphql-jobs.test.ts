import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import path from "node:path";
import { startTestServer, type TestServer } from "./support/server.js";
import { ABALONE_TRIAL, FIXTURES, flattenGolden, goldenNumber, loadGolden } from "./support/fixtures.js";
import { startSageMakerEndpoint, type SageMakerEndpoint } from "./support/sagemaker-endpoint.js";

const golden = loadGolden();
let server: TestServer;

const LAB_INPUT = (eta: string, name: string) => ({
  backend: "LOCAL",
  name,
  algorithm: { builtin: "xgboost", version: "1.7-1" },
  hyperparameters: { max_depth: "5", eta, gamma: "4", min_child_weight: "6", subsample: "0.7", objective: "reg:squarederror", num_round: "51" },
  inputs: [
    { name: "train", uri: "lab/abalone.train.libsvm", contentType: "libsvm" },
    { name: "validation", uri: "lab/abalone.validation.libsvm", contentType: "libsvm" },
  ],
  debugHookConfig: {
    collectionConfigs: ["metrics", "feature_importance", "average_shap"].map((name) => ({ name, parameters: { save_interval: "5" } })),
  },
  rules: [{ builtin: "LossNotDecreasing", parameters: { collection_names: "metrics", num_steps: "10" } }],
});

const JOB_FIELDS = `name backend status secondaryStatus failureReason debugOutputPath progress { current total }
  ruleSummaries { ruleConfigurationName ruleEvaluationStatus statusDetails evaluator findings { step mode modeStep tensorNames message } }`;

async function waitForJob(name: string, done: (job: any) => boolean, timeoutMs = 120_000): Promise<any> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const { body } = await server.gql(`query($n: String!) { trainingJob(name: $n) { ${JOB_FIELDS} } }`, { n: name });
    const job = body.data?.trainingJob;
    if (job && done(job)) return job;
    if (Date.now() > until) throw new Error(`job ${name} did not finish: ${JSON.stringify(job)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Waits until every rule's evaluation history ends with its conclusion (its evaluation is over). */
async function waitForRuleConclusions(name: string, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const { body } = await server.gql(`query($n: String!) { trainingJob(name: $n) { ruleSummaries { evaluations(first: 100) { nodes { step message } } } } }`, { n: name });
    const histories = body.data?.trainingJob?.ruleSummaries.map((r: any) => r.evaluations.nodes) ?? [];
    if (histories.length && histories.every((h: any[]) => h.length && /^evaluation finished|^no issues found|^required tensors absent/.test(h[h.length - 1].message))) return;
    if (Date.now() > until) throw new Error(`the rules of ${name} did not conclude: ${JSON.stringify(histories).slice(0, 1000)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

before(async () => {
  server = await startTestServer();
  await fs.mkdir(path.join(server.dataDir, "lab"), { recursive: true });
  for (const f of ["abalone.train.libsvm", "abalone.validation.libsvm"]) {
    await fs.copyFile(path.join(FIXTURES, "data", f), path.join(server.dataDir, "lab", f));
  }
});
after(async () => server.close());

test("the lab on the local backend: eta 0.2 completes and LossNotDecreasing reports ISSUES_FOUND; its trial equals smdebug's golden", async () => {
  const { body } = await server.gql(`mutation($i: StartTrainingJobInput!) { startTrainingJob(input: $i) { ${JOB_FIELDS} } }`, { i: LAB_INPUT("0.2", "lab-eta-02") });
  assert.equal(body.errors, undefined, JSON.stringify(body.errors));
  assert.equal(body.data.startTrainingJob.status, "IN_PROGRESS");
  await waitForJob("lab-eta-02", (j) => j.status !== "IN_PROGRESS" && j.ruleSummaries.every((r: any) => r.ruleEvaluationStatus !== "IN_PROGRESS"));
  // ISSUES_FOUND comes at step 30; the rule still evaluates the steps after it (more findings) until
  // its history ends with its conclusion.
  await waitForRuleConclusions("lab-eta-02");
  const job = await waitForJob("lab-eta-02", () => true);
  assert.equal(job.status, "COMPLETED", job.failureReason);
  assert.deepEqual(job.progress, { current: 51, total: 51 });
  const [rule] = job.ruleSummaries;
  assert.deepEqual([rule.ruleConfigurationName, rule.ruleEvaluationStatus, rule.evaluator], ["LossNotDecreasing", "ISSUES_FOUND", "SERVICE"]);
  assert.match(rule.statusDetails, /step 30/);
  assert.match(rule.statusDetails, /validation-rmse/);
  // The same facts, structured: where the rule fired and on which tensor.
  assert.deepEqual(rule.findings[0], {
    step: 30, mode: "GLOBAL", modeStep: 30, tensorNames: ["validation-rmse"],
    message: rule.statusDetails.replace(/^LossNotDecreasing found an issue at step 30 \(tensor validation-rmse\): /, ""),
  });
  assert.deepEqual(rule.findings.map((f: any) => f.step), [30, 40, 50]);

  const t = await server.gql(`query($n: String!) { trainingJob(name: $n) { trial { steps tensorNames
    tensors { name values { step data } } } } }`, { n: "lab-eta-02" });
  const trial = t.body.data.trainingJob.trial;
  assert.deepEqual(trial.steps, golden.steps);
  const compared = ["train-rmse", "validation-rmse"].concat(golden.tensor_names.filter((n) => /^(feature_importance|average_shap)\//.test(n)));
  for (const name of compared) {
    const mine = trial.tensors.find((x: any) => x.name === name);
    assert.ok(mine, `tensor ${name}`);
    for (const v of mine.values) {
      const g = flattenGolden(golden.tensors[name].values[String(v.step)].value).map(goldenNumber);
      v.data.forEach((x: number, i: number) => assert.ok(Math.abs(x - g[i]) <= 1e-6 * Math.max(1, Math.abs(g[i])), `${name}@${v.step}: ${x} vs ${g[i]}`));
    }
  }
});

test("the lab with eta 0.05: LossNotDecreasing reports NO_ISSUES_FOUND", async () => {
  await server.gql(`mutation($i: StartTrainingJobInput!) { startTrainingJob(input: $i) { name } }`, { i: LAB_INPUT("0.05", "lab-eta-005") });
  const job = await waitForJob("lab-eta-005", (j) => j.status !== "IN_PROGRESS" && j.ruleSummaries.every((r: any) => r.ruleEvaluationStatus !== "IN_PROGRESS"));
  assert.equal(job.status, "COMPLETED");
  assert.equal(job.ruleSummaries[0].ruleEvaluationStatus, "NO_ISSUES_FOUND");
});

test("bad rule parameters and bad hyperparameters are BAD_USER_INPUT before anything starts", async () => {
  const bad = LAB_INPUT("0.2", "lab-bad-rule");
  bad.rules = [{ builtin: "LossNotDecreasing", parameters: { num_steps: "ten" } as any }];
  let r = await server.gql(`mutation($i: StartTrainingJobInput!) { startTrainingJob(input: $i) { name } }`, { i: bad });
  assert.equal(r.body.errors?.[0].extensions.code, "BAD_USER_INPUT");
  assert.match(r.body.errors[0].message, /num_steps/);
  const badHp = LAB_INPUT("0.2", "lab-bad-hp");
  (badHp.hyperparameters as any).learning_speed = "3";
  r = await server.gql(`mutation($i: StartTrainingJobInput!) { startTrainingJob(input: $i) { name } }`, { i: badHp });
  assert.equal(r.body.errors?.[0].extensions.code, "BAD_USER_INPUT");
  r = await server.gql(`{ trainingJob(name: "lab-bad-rule") { name } }`);
  assert.equal(r.body.data.trainingJob, null, "nothing was started");
});

test("evaluateRules over a trial as it stands, and builtinRules with SageMaker's defaults", async () => {
  await fs.cp(ABALONE_TRIAL, path.join(server.dataDir, "trials/abalone"), { recursive: true });
  const { body } = await server.gql(`{ evaluateRules(path: "trials/abalone", rules: [
      { builtin: "LossNotDecreasing", parameters: { collection_names: "metrics", num_steps: "10" } },
      { builtin: "FeatureImportanceOverweight", name: "fio", parameters: { threshold: "0.99" } }]) {
      ruleConfigurationName status triggeredSteps evaluatedSteps statusDetails findings { step tensorNames } }
    builtinRules { name appliesToXgboost parameters { name default required requiredOneOf } } }`);
  assert.equal(body.errors, undefined, JSON.stringify(body.errors));
  const [lnd, fio] = body.data.evaluateRules;
  assert.deepEqual([lnd.ruleConfigurationName, lnd.status, lnd.triggeredSteps], ["LossNotDecreasing", "ISSUES_FOUND", [30, 40, 50]]);
  assert.deepEqual(lnd.findings[0], { step: 30, tensorNames: ["validation-rmse"] });
  assert.deepEqual(fio.findings, []);
  assert.equal(fio.ruleConfigurationName, "fio");
  assert.equal(fio.status, "NO_ISSUES_FOUND");
  assert.ok(fio.evaluatedSteps >= 11);
  const lndDef = body.data.builtinRules.find((r: any) => r.name === "LossNotDecreasing");
  assert.equal(lndDef.parameters.find((p: any) => p.name === "num_steps").default, "10");
  assert.equal(body.data.builtinRules.length, 20);
  // The deep-learning rules are listed too, not for XGBoost, with SageMaker's string defaults.
  const sat = body.data.builtinRules.find((r: any) => r.name === "SaturatedActivation");
  assert.equal(sat.appliesToXgboost, false);
  assert.equal(sat.parameters.find((p: any) => p.name === "threshold_tanh").default, "(-9.4999, 9.4999)");
  const allZero = body.data.builtinRules.find((r: any) => r.name === "AllZero");
  assert.deepEqual(allZero.parameters.map((p: any) => [p.name, p.required, p.requiredOneOf]), [
    ["collection_names", false, ["collection_names", "tensor_regex"]],
    ["tensor_regex", false, ["collection_names", "tensor_regex"]],
    ["threshold", false, null],
  ]);
});

test("attachRules has the engine follow an existing job; summaries appear with evaluator SERVICE", async () => {
  const { body } = await server.gql(`mutation { attachRules(jobName: "lab-eta-02", rules: [{ builtin: "Overfit", name: "overfit" }]) { ruleSummaries { ruleConfigurationName evaluator } } }`);
  assert.equal(body.errors, undefined, JSON.stringify(body.errors));
  assert.ok(body.data.attachRules.ruleSummaries.some((r: any) => r.ruleConfigurationName === "overfit" && r.evaluator === "SERVICE"));
  const job = await waitForJob("lab-eta-02", (j) => j.ruleSummaries.every((r: any) => r.ruleEvaluationStatus !== "IN_PROGRESS"));
  assert.equal(job.ruleSummaries.find((r: any) => r.ruleConfigurationName === "overfit").ruleEvaluationStatus, "ISSUES_FOUND");
  const r = await server.gql(`mutation { attachRules(jobName: "no-such-job", rules: [{ builtin: "Overfit" }]) { name } }`);
  assert.equal(r.body.errors?.[0].extensions.code, "NOT_FOUND");
});

let sm: SageMakerEndpoint;
let smServer: TestServer;

test("the SageMaker backend through the graph: the lab's request, status and rule mapping, paging", async (t) => {
  sm = await startSageMakerEndpoint({ port: 0 });
  // The SDK's standard credential chain reads the environment.
  Object.assign(process.env, { AWS_ACCESS_KEY_ID: "AKIDTEST", AWS_SECRET_ACCESS_KEY: "secret" });
  smServer = await startTestServer({
    TRIALGRAPH_SAGEMAKER_ENDPOINT: sm.url, TRIALGRAPH_SAGEMAKER_ENABLED: "true", AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: "AKIDTEST", AWS_SECRET_ACCESS_KEY: "secret",
    TRIALGRAPH_SAGEMAKER_ROLE_ARN: "arn:aws:iam::123456789012:role/lab", TRIALGRAPH_SAGEMAKER_OUTPUT_PATH: "s3://sagemaker-us-east-1-123456789012",
  });
  t.after(async () => { await smServer.close(); await sm.close(); });
  const input = { ...LAB_INPUT("0.2", "unused"), backend: "SAGEMAKER", name: null, baseJobName: "xgboost-lab", instanceType: "ml.m5.xlarge",
    inputs: [{ name: "train", uri: "s3://bucket/abalone/train", contentType: "libsvm" }, { name: "validation", uri: "s3://bucket/abalone/validation", contentType: "libsvm" }] };
  const { body } = await smServer.gql(`mutation($i: StartTrainingJobInput!) { startTrainingJob(input: $i) { ${JOB_FIELDS} } }`, { i: input });
  assert.equal(body.errors, undefined, JSON.stringify(body.errors));
  const name = body.data.startTrainingJob.name;
  assert.match(name, /^xgboost-lab-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-\d{3}$/);
  const create = sm.requests.find((r: any) => r.operation === "CreateTrainingJob")!.body as any;
  assert.equal(create.AlgorithmSpecification.TrainingImage, "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1");
  assert.equal(create.HyperParameters.eta, "0.2");
  assert.equal(create.DebugRuleConfigurations[0].RuleParameters.rule_to_invoke, "LossNotDecreasing");
  assert.equal(create.DebugRuleConfigurations[0].RuleEvaluatorImage, "503895931360.dkr.ecr.us-east-1.amazonaws.com/sagemaker-debugger-rules:latest");
  assert.equal(body.data.startTrainingJob.debugOutputPath, `s3://sagemaker-us-east-1-123456789012/${name}/debug-output`);

  let job: any;
  for (let i = 0; i < 20; i++) {
    job = (await smServer.gql(`query($n: String!) { trainingJob(name: $n) { ${JOB_FIELDS} } }`, { n: name })).body.data.trainingJob;
    if (job.status === "COMPLETED" && job.ruleSummaries[0].ruleEvaluationStatus !== "IN_PROGRESS") break;
  }
  assert.equal(job.status, "COMPLETED");
  assert.deepEqual([job.ruleSummaries[0].ruleEvaluationStatus, job.ruleSummaries[0].evaluator], ["ISSUES_FOUND", "SAGEMAKER"]);
  assert.deepEqual(job.ruleSummaries[0].findings, [], "SageMaker's rule jobs report no structured findings");

  const list = await smServer.gql(`{ trainingJobs(backend: SAGEMAKER, first: 10) { nodes { name status } pageInfo { hasNextPage } } }`);
  assert.ok(list.body.data.trainingJobs.nodes.some((n: any) => n.name === name));
  const missing = await smServer.gql(`{ trainingJob(name: "never-started") { name } }`);
  assert.deepEqual(missing.body, { data: { trainingJob: null } });
});
