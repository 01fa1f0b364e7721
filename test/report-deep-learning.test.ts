/**
 * The job report of a deep-learning job, through the route: a SageMaker PyTorch job (the local
 * SageMaker-protocol endpoint) whose debug output in S3 (s3rver) is the digits-mlp fixture. The
 * report shows its losses by mode and per-layer statistics, equal to the golden, and leaves out the
 * XGBoost sections it has no data for.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { startTestServer, type TestServer } from "./support/server.js";
import { startSageMakerEndpoint, type SageMakerEndpoint } from "./support/sagemaker-endpoint.js";
import { createBucket, createTestClient, start as startS3, uploadDirectory, S3RVER_CREDENTIALS, type S3TestServer } from "./support/s3-server.js";
import { DIGITS_TRIAL, loadDigitsGolden } from "./support/fixtures.js";
import { formatNumber } from "../src/report/plot-style.js";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";

const ARTIFACTS = path.resolve(__dirname, "..", "test-artifacts");

const golden = loadDigitsGolden();
const JOB = "digits-mlp-pytorch";
let sm: SageMakerEndpoint;
let s3: S3TestServer;
let server: TestServer;

before(async () => {
  sm = await startSageMakerEndpoint({ port: 0 });
  s3 = await startS3();
  process.env.AWS_ACCESS_KEY_ID = S3RVER_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = S3RVER_CREDENTIALS.secretAccessKey;
  server = await startTestServer({
    TRIALGRAPH_SAGEMAKER_ENDPOINT: sm.url, TRIALGRAPH_SAGEMAKER_ENABLED: "true", AWS_REGION: "us-east-1",
    TRIALGRAPH_SAGEMAKER_ROLE_ARN: "arn:aws:iam::123456789012:role/dl", TRIALGRAPH_SAGEMAKER_OUTPUT_PATH: "s3://dl-debug/model",
    TRIALGRAPH_S3_ENDPOINT: s3.endpoint,
  });
  const client = createTestClient(s3);
  try {
    await createBucket(client, "dl-debug");
    await uploadDirectory(client, "dl-debug", `debug/${JOB}/debug-output/`, DIGITS_TRIAL);
  } finally {
    client.destroy();
  }
  const { body } = await server.gql(`mutation($input: StartTrainingJobInput!) { startTrainingJob(input: $input) { name debugOutputPath } }`, {
    input: {
      backend: "SAGEMAKER", name: JOB,
      algorithm: { image: "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.0.1-cpu-py310" },
      hyperparameters: { epochs: "5" }, inputs: [{ name: "train", uri: "s3://dl-debug/train/" }], instanceType: "ml.m5.xlarge",
      debugHookConfig: { s3OutputPath: "s3://dl-debug/debug/", collectionConfigs: ["weights", "gradients", "losses"].map((name) => ({ name, parameters: { save_interval: "5" } })) },
    },
  });
  assert.equal(body.errors, undefined, JSON.stringify(body.errors));
  assert.equal(body.data.startTrainingJob.debugOutputPath, `s3://dl-debug/debug/${JOB}/debug-output`);
});

after(async () => {
  await server?.close();
  await s3?.close();
  await sm?.close();
});

function cells(html: string, rowStart: RegExp): string[] {
  const row = html.split("<tr>").find((r) => rowStart.test(r)) ?? "";
  return [...row.matchAll(/<td[^>]*>(.*?)<\/td>/g)].map((m) => m[1].replace(/<[^>]+>/g, "").replace(/\s+/g, " ").trim());
}

test("a deep-learning job's report: losses by mode, a band chart per weight and gradient, no empty XGBoost sections", async () => {
  const res = await fetch(`${server.url.replace(/\/graphql$/, "")}/jobs/${JOB}/report.html`);
  assert.equal(res.status, 200);
  const html = await res.text();
  mkdirSync(ARTIFACTS, { recursive: true });
  writeFileSync(path.join(ARTIFACTS, "deep-learning-report.html"), html);
  assert.doesNotMatch(html, /data-testid="report-problems"/, "every part of the trial was read");
  for (const id of ["settings", "rules", "losses", "weights", "gradients"]) assert.match(html, new RegExp(`<section id="${id}">`));
  for (const id of ["metrics", "importance", "shap"]) assert.doesNotMatch(html, new RegExp(`<section id="${id}">`), `no ${id} section without its data`);

  // Final and lowest loss per mode, at global steps, as the golden has them.
  const loss = golden.tensors.CrossEntropyLoss_output_0;
  const at = (step: number) => (loss.values[String(step)].data as number[])[0];
  for (const mode of ["TRAIN", "EVAL"]) {
    const steps = Object.values(loss.mode_steps[mode]).sort((a, b) => a - b);
    const last = steps.at(-1)!;
    const lowest = steps.reduce((a, b) => (at(b) < at(a) ? b : a));
    assert.deepEqual(cells(html, new RegExp(`<td>${mode}</td>`)).slice(1), [mode, `${formatNumber(at(last))} @ ${last}`, `${formatNumber(at(lowest))} @ ${lowest}`]);
  }
  assert.match(html, />global step<\/text>/, "losses over global steps, said on the axis");

  // One chart per weight and gradient (TRAIN steps), each a band under max, mean and min lines.
  const layers = [...html.matchAll(/<div data-layer="([^"]+)">/g)].map((m) => m[1]);
  assert.deepEqual(layers, [...golden.collections.weights.tensor_names, ...golden.collections.gradients.tensor_names]);
  assert.equal(html.match(/<path class="band" /g)?.length, layers.length);
  assert.equal(html.match(/>TRAIN step<\/text>/g)?.length, layers.length);
  // Each layer states its statistics at the last TRAIN step: the golden's.
  const api = (await server.gql(`{ trainingJob(name: "${JOB}") { trial { tensors(regex: "weight$") { name statsSeries(mode: TRAIN) { mean } } } } }`)).body.data.trainingJob.trial.tensors;
  for (const name of layers.filter((n) => n.endsWith("weight"))) {
    const t = golden.tensors[name];
    const g = t.values[String(t.mode_steps.TRAIN["65"])].stats!;
    const mean = api.find((x: { name: string }) => x.name === name).statsSeries.mean.at(-1);
    assert.ok(Math.abs(mean - g.mean) < 1e-9, `${name}: mean ${mean} vs ${g.mean}`);
    const part = html.slice(html.indexOf(`<div data-layer="${name}">`));
    assert.match(part, new RegExp(`^<div data-layer="[^"]+"><h3><code>[^<]+</code></h3><p class="note" data-last-stats>TRAIN step 65: min ${formatNumber(g.min)}, mean ${formatNumber(mean)}, max ${formatNumber(g.max)}</p>`));
  }
  const section = html.slice(html.indexOf('<div data-layer="MLP_fc1.weight">'), html.indexOf('<div data-layer="MLP_fc2.weight">'));
  assert.match(section, /<title>MLP_fc1.weight: min, mean and max over TRAIN steps<\/title>/);
  // Every y tick lies within the band's range (so the axis fits the statistics, not something else).
  const ticks = [...section.matchAll(/<text class="tick" x="\d+(?:\.\d+)?" y="[\d.]+" text-anchor="end">([^<]+)<\/text>/g)].map((m) => Number(m[1]));
  const all = Object.values(golden.tensors["MLP_fc1.weight"].mode_steps.TRAIN).map((s) => golden.tensors["MLP_fc1.weight"].values[String(s)].stats!);
  const [lo, hi] = [Math.min(...all.map((s) => s.min)), Math.max(...all.map((s) => s.max))];
  assert.ok(ticks.length >= 2 && ticks.every((t) => t >= lo - (hi - lo) * 0.1 && t <= hi + (hi - lo) * 0.1), `ticks ${ticks} within [${lo}, ${hi}]`);
});
