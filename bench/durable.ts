/**
 * Durable state benchmark (issue: durable, shared state).
 *
 * Takeover: two instances on PostgreSQL + Redis evaluate a SageMaker job's SERVICE rule; the
 * evaluating one is killed with SIGKILL and the time until the survivor has resumed the evaluation
 * is measured (target: 3 lease periods). The killed instance runs in its own PID namespace, as on
 * another machine (the survivor can only notice its silence: the lease must expire); the same-machine
 * case, where the survivor sees the process is gone, is measured too.
 *
 * Write cost: the three rules of the rules benchmark over the whole perf trial through the job rule
 * evaluation (JobRules, database writes included), with the evaluation history on and off, in one
 * run: caught up in one advance (a takeover, or a job whose trial is complete), and live, one advance
 * per step as a local job's steps arrive. On the embedded database and on PostgreSQL.
 */
import { randomUUID } from "node:crypto";
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { Store } from "../dist/src/store/index.js";
import { JobRules } from "../dist/src/jobs/job-rules.js";
import { JobService } from "../dist/src/jobs/job-service.js";
import { EventBus } from "../dist/src/events/event-bus.js";
import { TrialRegistry } from "../dist/src/trials/trial-registry.js";
import { RuleRegistry } from "../dist/src/rules/index.js";
import type { TrainingJobRecord } from "../dist/src/jobs/types.js";
import { collectionsFileKey, DEFAULT_WORKER, eventFileKey, indexFileKey } from "../dist/src/format/locations.js";
import { labTimeline, startSageMakerEndpoint } from "../test/support/sagemaker-endpoint.js";
import { createBucket, createTestClient, start as startS3, S3RVER_CREDENTIALS } from "../test/support/s3-server.js";
import { startChildServer, type ChildServer } from "../test/support/child-server.js";
import { createTestDatabase } from "../test/support/database.js";
import { deleteKeys, SHARED_REDIS_URL } from "../test/support/redis-server.js";
import { BENCH_DATA, ensurePerfTrial, median } from "./trials.js";

type Row = Record<string, string | number>;

const RULES = [
  { builtin: "LossNotDecreasing" },
  { builtin: "FeatureImportanceOverweight" },
  { builtin: "AllZero", parameters: { tensor_regex: ".*" } },
];

export async function runDurableBench(): Promise<Row[]> {
  const rows: Row[] = [];
  const takeoverRuns = Number(process.env.BENCH_TAKEOVER_RUNS ?? 5);
  if (takeoverRuns > 0) rows.push(...(await takeoverRows(takeoverRuns)));
  rows.push(...(await writeCostRows()));
  return rows;
}

const until = async (check: () => Promise<boolean> | boolean, what: string, timeoutMs = 60_000, everyMs = 10) => {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
};

async function takeoverRows(runs: number): Promise<Row[]> {
  const LEASE_MS = 1000;
  const sm = await startSageMakerEndpoint({ port: 0 });
  sm.script("*", { stages: labTimeline(), advanceOn: "manual" });
  const s3 = await startS3();
  const client = createTestClient(s3, { maxAttempts: 3 });
  const bucket = "durable-bench";
  await createBucket(client, bucket);
  const db = await createTestDatabase("bench");
  const prefix = `tg-bench-${randomUUID()}`;
  const store = await Store.open({ databaseUrl: db.url, dataDir: os.tmpdir() });
  const trial = path.resolve(__dirname, "../../shared/fixtures/trials/abalone-eta0.2");
  const env = {
    TRIALGRAPH_SAGEMAKER_ENDPOINT: sm.url, TRIALGRAPH_SAGEMAKER_ENABLED: "true", TRIALGRAPH_S3_ENDPOINT: s3.endpoint,
    AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey, AWS_REGION: "us-east-1",
    TRIALGRAPH_SAGEMAKER_ROLE_ARN: "arn:aws:iam::123456789012:role/x", TRIALGRAPH_SAGEMAKER_OUTPUT_PATH: `s3://${bucket}/out`,
    TRIALGRAPH_POLL_INTERVAL_MS: "500", TRIALGRAPH_LEASE_MS: String(LEASE_MS), LOG_LEVEL: "info",
    TRIALGRAPH_DATABASE_URL: db.url, TRIALGRAPH_REDIS_URL: SHARED_REDIS_URL, TRIALGRAPH_REDIS_PREFIX: prefix,
  };
  const rows: Row[] = [];
  const survivor = await startChildServer({ name: "survivor", env });
  try {
    for (const isolated of [true, false]) {
      const times: number[] = [];
      for (let run = 0; run < runs; run++) {
        const job = `takeover-${isolated ? "elsewhere" : "here"}-${run}`;
        const victim: ChildServer = await startChildServer({ name: "victim", env, isolatedPids: isolated });
        try {
          const victimId = (await victim.health()).instance as string;
          const { body } = await victim.gql(`mutation($i: StartTrainingJobInput!) { startTrainingJob(input: $i) { name } }`, {
            i: {
              backend: "SAGEMAKER", name: job, algorithm: { builtin: "xgboost", version: "1.7-1" }, hyperparameters: { num_round: 51 },
              inputs: [{ name: "train", uri: `s3://${bucket}/train/` }], instanceType: "ml.m5.xlarge",
              debugHookConfig: { s3OutputPath: `s3://${bucket}/out`, collectionConfigs: [{ name: "metrics", parameters: { save_interval: "5" } }] },
              rules: [{ builtin: "LossNotDecreasing", evaluator: "SERVICE", parameters: { collection_names: "metrics", num_steps: "10" } }],
            },
          });
          if (body.errors) throw new Error(JSON.stringify(body.errors));
          for (const step of [0, 5, 10]) {
            for (const key of [eventFileKey(step, DEFAULT_WORKER), indexFileKey(step, DEFAULT_WORKER)]) {
              await client.send(new PutObjectCommand({ Bucket: bucket, Key: `out/${job}/debug-output/${key}`, Body: await fs.readFile(path.join(trial, key)) }));
            }
          }
          await client.send(new PutObjectCommand({ Bucket: bucket, Key: `out/${job}/debug-output/${collectionsFileKey(DEFAULT_WORKER)}`, Body: await fs.readFile(path.join(trial, collectionsFileKey(DEFAULT_WORKER))) }));
          const holder = () => store.leases("bench", 1).holder(`rules:${job}`);
          await until(async () => (await holder()) === victimId, "the victim evaluating");
          await until(async () => (await store.rules.lastEvaluations(job)).get("LossNotDecreasing")?.step === 10, "steps evaluated", 30_000, 50);
          // Kill right after a renewal: the worst case for a survivor that must wait for the expiry.
          const killedAt = Date.now();
          await victim.kill();
          const resumed = () => survivor.logs.find((l) => l.msg === "rule evaluation resumed on this instance" && l.job === job);
          await until(() => resumed() !== undefined, "the survivor resuming", 10 * LEASE_MS + 20_000);
          times.push(resumed().time - killedAt);
          sm.finish(job);
        } finally {
          await victim.kill();
        }
      }
      rows.push({
        case: `takeover after SIGKILL, evaluator ${isolated ? "on another machine (own PID namespace): the lease expires" : "on the same machine: its process is seen gone"}`,
        "lease ms": LEASE_MS,
        "median ms": median(times),
        "max ms": Math.max(...times),
        "lease periods (max)": (Math.max(...times) / LEASE_MS).toFixed(2),
        target: isolated ? "≤ 3 lease periods" : "",
        detail: `${runs} runs: ${times.join(", ")} ms`,
      });
    }
  } finally {
    await survivor.kill();
    await store.close();
    await db.drop();
    await deleteKeys(SHARED_REDIS_URL, prefix);
    client.destroy();
    await s3.close();
    await sm.close();
  }
  return rows;
}

interface EvaluationRun {
  ms: number;
  steps: number;
  historyRows: number;
}

/** Evaluates RULES over the perf trial as a local job's rules, with the job's records in `databaseUrl` (or SQLite). */
async function evaluateAsJob(databaseUrl: string | null, historyLimit: number, live: boolean): Promise<EvaluationRun> {
  ensurePerfTrial();
  const dataDir = await fs.mkdtemp(path.join(BENCH_DATA, "durable-"));
  const store = await Store.open({ databaseUrl, dataDir });
  const owner = randomUUID();
  const events = new EventBus();
  const trials = new TrialRegistry({ dataDir: BENCH_DATA, valueCacheBytes: 128 << 20 });
  const registry = await RuleRegistry.load(null);
  const rules = new JobRules({
    trials, events, registry: registry.registry, log: pino({ level: "silent" }), webhookUrl: null, pollIntervalMs: 60_000,
    rules: store.rules, jobs: store.jobs, leases: store.leases(owner, 60_000), historyLimit, trainsHere: () => live,
  });
  rules.attachJobService(new JobService({}, "LOCAL"));
  const name = `bench-${randomUUID().slice(0, 8)}`;
  const source = path.join(BENCH_DATA, "perf-trial");
  const trialDir = live ? path.join(dataDir, "trial") : source;
  const job: TrainingJobRecord = {
    name, arn: null, backend: "LOCAL", status: live ? "IN_PROGRESS" : "COMPLETED", secondaryStatus: null, failureReason: null,
    createdAt: new Date(), startedAt: null, endedAt: null, hyperparameters: {}, debugOutputPath: path.relative(BENCH_DATA, trialDir),
    ruleSummaries: [], progress: null,
  };
  const newRules = rules.newRules(RULES);
  await store.jobs.create(job, { instanceId: owner, rules: newRules });
  const steps = (await fs.readdir(path.join(source, "index", "000000000"))).filter((f) => f.endsWith(".json")).map((f) => Number(f.split("_")[0])).sort((a, b) => a - b);
  const finished = async () => (await store.rules.forJob(name)).every((r) => r.finished);
  let t0: number;
  if (!live) {
    t0 = performance.now();
    await rules.follow(job, newRules);
    await until(finished, "the rules finished", 600_000, 5);
  } else {
    // The trial grows a step at a time, as a local job writes it; the rules advance after each step.
    await fs.mkdir(path.join(trialDir, "index", "000000000"), { recursive: true });
    await fs.cp(path.join(source, "collections"), path.join(trialDir, "collections"), { recursive: true });
    t0 = performance.now();
    await rules.follow(job, newRules);
    for (const step of steps) {
      await fs.mkdir(path.dirname(path.join(trialDir, eventFileKey(step, DEFAULT_WORKER))), { recursive: true });
      await fs.copyFile(path.join(source, eventFileKey(step, DEFAULT_WORKER)), path.join(trialDir, eventFileKey(step, DEFAULT_WORKER)));
      await fs.copyFile(path.join(source, indexFileKey(step, DEFAULT_WORKER)), path.join(trialDir, indexFileKey(step, DEFAULT_WORKER)));
      await rules.step(name);
    }
    await fs.writeFile(path.join(trialDir, "training_job_end.ts"), "");
    await rules.step(name);
    await until(finished, "the rules finished", 600_000, 5);
  }
  const ms = performance.now() - t0;
  let historyRows = 0;
  for (const r of await store.rules.forJob(name)) {
    let after: string | null = null;
    for (;;) {
      const page = await store.rules.evaluations(name, r.summary.ruleConfigurationName, { first: 100, after });
      historyRows += page.nodes.length;
      if (!page.hasNextPage) break;
      after = page.endCursor;
    }
  }
  await rules.close();
  await events.close();
  await store.close();
  await fs.rm(dataDir, { recursive: true, force: true });
  return { ms, steps: steps.length, historyRows };
}

async function writeCostRows(): Promise<Row[]> {
  const rows: Row[] = [];
  const runs = Number(process.env.BENCH_RUNS ?? 3);
  for (const engine of ["sqlite", "postgres"] as const) {
    for (const live of [false, true]) {
      const on: number[] = [];
      const off: number[] = [];
      let last: EvaluationRun | null = null;
      // One run first to warm up (JIT, page cache), not counted; then interleaved, alternating which
      // goes first, so drift in the machine's load hits both alike.
      await evaluateAsJob(null, 0, live);
      for (let i = 0; i < runs; i++) {
        for (const limit of i % 2 ? [0, 1000] : [1000, 0]) {
          const db = engine === "postgres" ? await createTestDatabase("benchw") : null;
          try {
            const r = await evaluateAsJob(db?.url ?? null, limit, live);
            (limit ? on : off).push(r.ms);
            if (limit) last = r;
          } finally {
            await db?.drop();
          }
        }
      }
      const evaluated = last!.steps * RULES.length;
      const extra = median(on) - median(off);
      rows.push({
        case: `${RULES.length} rules over perf-synth (${last!.steps} steps) on ${engine}, ${live ? "live: one advance per step" : "caught up: one advance"}`,
        "history off ms": median(off).toFixed(0),
        "history on ms": median(on).toFixed(0),
        "on/off": (median(on) / median(off)).toFixed(2),
        "write cost per evaluated step": `${((extra * 1000) / evaluated).toFixed(0)} µs${extra < 0 ? " (below the noise)" : ""}`,
        detail: `median of ${runs}; ${last!.historyRows} history rows kept (limit 1000 per rule)`,
      });
    }
  }
  return rows;
}
