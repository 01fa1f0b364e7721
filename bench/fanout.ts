/**
 * Fan-out: one job status change pushed to 1,000 concurrent WebSocket subscribers on one instance.
 *
 * The service runs in a child process (compiled build, with `npm start`'s node flags, and --expose-gc) with TRIALGRAPH_POLL_INTERVAL_MS=100
 * against the SageMaker-protocol test endpoint running here. Each of 1,000 graphql-ws clients (one
 * socket each) subscribes to trainingJobStatusChanged(jobName) for the same job. The job's timeline
 * advances only when the benchmark says so; the clock starts when the service's DescribeTrainingJob
 * call that will see the change reaches the endpoint (the answer is sent in the same tick), and stops
 * when each client has the event. Memory per subscriber is the service's RSS and heap growth, after
 * full GCs, between "job started, no clients" and "1,000 idle subscriptions", divided by 1,000.
 *
 * Targets: p99 <= 200 ms after the change is seen; <= 50 KB per idle subscriber.
 *
 * Then two figures of the event log (subscription cursors):
 * - throughput: a burst of BENCH_FANOUT_EVENTS progress events published in the service (an IPC
 *   command to its process), each appended to the log and pushed to the 1,000 subscribers; events
 *   per second (and deliveries per second) from the command until every subscriber has all of them;
 * - resume after a restart: every client disconnects, BENCH_FANOUT_MISSED more events are published,
 *   the service stops and a new one starts on the same data directory; the 1,000 clients subscribe
 *   again with `after:` their last eventId. Timed from the new service listening until every client
 *   has caught up (received the last missed event), with each client's own catch-up time.
 */
import { fork } from "node:child_process";
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { createClient, type Client } from "graphql-ws";
import WebSocket from "ws";
import { startSageMakerEndpoint, type JobStage } from "../test/support/sagemaker-endpoint.js";
import { startCommand } from "../test/support/service-process.js";

type Row = Record<string, string | number>;

const SUBSCRIBERS = Number(process.env.BENCH_FANOUT_SUBSCRIBERS ?? 1000);
const BURST = Number(process.env.BENCH_FANOUT_EVENTS ?? 200);
const MISSED = Number(process.env.BENCH_FANOUT_MISSED ?? 100);
const UPDATES_SUB = `subscription($j: String, $a: String) { trainingJobUpdated(jobName: $j, after: $a) { eventId name status secondaryStatus progress { current total } } }`;
const JOB = "fanout-bench-job";
/** Changes pushed: the first WARMUP warm the JIT and are reported apart. */
const WARMUP = 2;
const MEASURED = 8;
/** Starting, then secondary statuses that differ at every step (each step is one jobStatus event), then Completed. */
function benchTimeline(): JobStage[] {
  const cycle = ["Downloading", "Training", "Uploading", "Training"];
  const stages: JobStage[] = [{ status: "InProgress", secondaryStatus: "Starting" }];
  for (let i = 0; i < WARMUP + MEASURED - 1; i++) stages.push({ status: "InProgress", secondaryStatus: cycle[i % cycle.length] });
  stages.push({ status: "Completed", secondaryStatus: "Completed" });
  return stages;
}

function quantile(sorted: number[], q: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

const round1 = (n: number) => Math.round(n * 10) / 10;

async function waitUntil(check: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`fan-out bench: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export async function runFanoutBench(): Promise<Row[]> {
  const sm = await startSageMakerEndpoint({ port: 0 });
  sm.script(JOB, { stages: benchTimeline(), advanceOn: "manual" });
  // Arrival time of every request the endpoint logs (it answers in the same tick).
  const arrivals: number[] = [];
  const push = sm.requests.push.bind(sm.requests);
  (sm.requests as any).push = (...items: any[]) => {
    for (let i = 0; i < items.length; i++) arrivals.push(performance.now());
    return push(...items);
  };

  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), "tg-fanout-"));
  const startService = () => {
    const child = fork(path.join(__dirname, "fanout-server.ts"), [], {
      execArgv: [...startCommand().nodeFlags, "--import", "tsx", "--expose-gc"],
      env: {
        ...process.env,
        PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "warn", NODE_ENV: "production",
        TRIALGRAPH_DATA_DIR: dataDir,
        TRIALGRAPH_SAGEMAKER_ENDPOINT: sm.url, TRIALGRAPH_SAGEMAKER_ENABLED: "true",
        AWS_ACCESS_KEY_ID: "AKIDFAKE", AWS_SECRET_ACCESS_KEY: "fake", AWS_REGION: "us-east-1",
        TRIALGRAPH_SAGEMAKER_ROLE_ARN: "arn:aws:iam::123456789012:role/x", TRIALGRAPH_SAGEMAKER_OUTPUT_PATH: "s3://bucket/out",
        TRIALGRAPH_POLL_INTERVAL_MS: "100",
        TRIALGRAPH_REDIS_URL: "",
        // The bench's own limits: 1,000 subscriptions from one address.
        TRIALGRAPH_MAX_SUBSCRIPTIONS_PER_CALLER: "100000",
      },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    const messages: any[] = [];
    child.on("message", (m) => messages.push(m));
    const nextMessage = async (type: string, timeoutMs = 60_000) => {
      await waitUntil(() => messages.some((m) => m.type === type), `the service's "${type}" message`, timeoutMs);
      return messages.splice(messages.findIndex((m) => m.type === type), 1)[0];
    };
    const stop = async () => {
      if (child.exitCode !== null) return;
      child.send({ type: "stop" });
      await Promise.race([new Promise((r) => child.once("exit", r)), new Promise((r) => setTimeout(r, 20_000))]);
      if (child.exitCode === null) child.kill("SIGKILL");
    };
    return { child, nextMessage, stop };
  };
  let service = startService();
  let { child, nextMessage } = service;
  const memory = async () => {
    child.send({ type: "memory" });
    return (await nextMessage("memory")) as { usage: NodeJS.MemoryUsage; gc: boolean };
  };

  const clients: Client[] = [];
  try {
    const { url } = await nextMessage("listening");
    const res = await fetch(url, {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({
        query: `mutation($i: StartTrainingJobInput!) { startTrainingJob(input: $i) { name } }`,
        variables: { i: { backend: "SAGEMAKER", name: JOB, algorithm: { builtin: "xgboost", version: "1.7-1" }, hyperparameters: { num_round: 51 }, inputs: [{ name: "train", uri: "s3://bucket/train/" }], instanceType: "ml.m5.xlarge" } },
      }),
    });
    const started = (await res.json()) as any;
    if (started.errors) throw new Error(`fan-out bench: could not start the job: ${JSON.stringify(started.errors)}`);
    await new Promise((r) => setTimeout(r, 500));
    const base = await memory();

    // 1,000 clients, one socket each, all on the same job.
    /** Per client: when it received its k-th event. */
    const received: number[][] = [];
    const wsUrl = url.replace(/^http/, "ws");
    let connected = 0;
    /** Per client: the progress values of the burst it received, and its last eventId. */
    const progress: number[][] = [];
    const lastIds: string[] = [];
    for (let i = 0; i < SUBSCRIBERS; i++) {
      const seen: number[] = [];
      const got: number[] = [];
      received.push(seen);
      progress.push(got);
      lastIds.push("");
      const client = createClient({ url: wsUrl, webSocketImpl: WebSocket, retryAttempts: 0, lazy: true, on: { connected: () => connected++ } });
      clients.push(client);
      let snapshot = true;
      client.subscribe({ query: UPDATES_SUB, variables: { j: JOB } }, {
        next: (r: any) => {
          const job = r.data?.trainingJobUpdated;
          if (!job) return;
          lastIds[i] = job.eventId;
          // By name, the job as it stands comes first: not a change.
          if (snapshot) {
            snapshot = false;
            return;
          }
          if (job.progress) got.push(job.progress.current);
          else seen.push(performance.now());
        },
        error: (e) => { throw new Error(`fan-out bench: a subscription failed: ${JSON.stringify(e)}`); },
        complete: () => {},
      });
      if (i % 100 === 99) await new Promise((r) => setTimeout(r, 20));
    }
    await waitUntil(() => connected === SUBSCRIBERS, "every client connected");
    // Each subscription checks the job exists (one DescribeTrainingJob each) and then sends where it stands.
    await waitUntil(() => lastIds.every((id) => id !== ""), "every subscription live");
    await new Promise((r) => setTimeout(r, 1000));
    const loaded = await memory();

    const timeline = benchTimeline();
    const latencies: number[] = [];
    const perRound: Row[] = [];
    for (let round = 0; round < WARMUP + MEASURED; round++) {
      const from = sm.requests.length;
      sm.advance(JOB);
      await waitUntil(() => received.every((times) => times.length > round), `every subscriber receiving change ${round + 1}`);
      const seenAt = sm.requests.findIndex((r, i) => i >= from && r.operation === "DescribeTrainingJob" && r.body?.TrainingJobName === JOB);
      const t0 = arrivals[seenAt];
      const lat = received.map((times) => times[round] - t0).sort((a, b) => a - b);
      if (round >= WARMUP) latencies.push(...lat);
      const change = `${timeline[round].secondaryStatus} -> ${timeline[round + 1].secondaryStatus}${round < WARMUP ? " (warm-up)" : ""}`;
      perRound.push({ change, median: round1(quantile(lat, 0.5)), p99: round1(quantile(lat, 0.99)), max: round1(lat.at(-1)!) });
      await new Promise((r) => setTimeout(r, 300));
    }
    // ---- throughput: a burst through the event log to every subscriber ----
    const total = BURST + MISSED;
    const t0 = performance.now();
    child.send({ type: "publish", job: JOB, count: BURST, from: 0, total });
    const burst = await nextMessage("published");
    await waitUntil(() => progress.every((p) => p.length >= BURST), "every subscriber receiving the burst", 300_000);
    const burstMs = performance.now() - t0;
    const complete = progress.every((p) => p.length === BURST && p.every((v, k) => v === k + 1));

    // ---- resume after a restart: the clients miss MISSED events, the service restarts, they resume ----
    await Promise.all(clients.map((c) => c.dispose()));
    clients.length = 0;
    child.send({ type: "publish", job: JOB, count: MISSED, from: BURST, total });
    const missed = await nextMessage("published");
    await service.stop();
    const restartAt = performance.now();
    service = startService();
    ({ child, nextMessage } = service);
    const { url: url2 } = await nextMessage("listening");
    const listeningAt = performance.now();
    const wsUrl2 = url2.replace(/^http/, "ws");
    const caughtUp: number[] = new Array(SUBSCRIBERS).fill(0);
    const replayed: number[][] = [];
    for (let i = 0; i < SUBSCRIBERS; i++) {
      const got: number[] = [];
      replayed.push(got);
      const client = createClient({ url: wsUrl2, webSocketImpl: WebSocket, retryAttempts: 0, lazy: true });
      clients.push(client);
      client.subscribe({ query: UPDATES_SUB, variables: { j: JOB, a: lastIds[i] } }, {
        next: (r: any) => {
          const job = r.data?.trainingJobUpdated;
          if (!job?.progress) return;
          got.push(job.progress.current);
          if (job.eventId === String(missed.last)) caughtUp[i] = performance.now() - listeningAt;
        },
        error: (e) => { throw new Error(`fan-out bench: a resumed subscription failed: ${JSON.stringify(e)}`); },
        complete: () => {},
      });
      if (i % 100 === 99) await new Promise((r) => setTimeout(r, 20));
    }
    await waitUntil(() => caughtUp.every((t) => t > 0), "every client catching up after the restart", 300_000);
    const allCaughtUpMs = Math.max(...caughtUp);
    const resumedExactly = replayed.every((p) => p.length === MISSED && p.every((v, k) => v === BURST + k + 1));
    const catchUp = caughtUp.slice().sort((a, b) => a - b);

    latencies.sort((a, b) => a - b);
    const kb = (bytes: number) => round1(bytes / 1024 / SUBSCRIBERS);
    const p99 = quantile(latencies, 0.99);
    const rssPer = kb(loaded.usage.rss - base.usage.rss);
    const heapPer = kb(loaded.usage.heapUsed - base.usage.heapUsed);
    const rows: Row[] = [
      { metric: "subscribers (one socket each)", value: SUBSCRIBERS, target: "", verdict: "" },
      { metric: "status changes measured (after warm-up)", value: MEASURED, target: "", verdict: "" },
      { metric: "latency median (ms, from the describe that saw the change)", value: round1(quantile(latencies, 0.5)), target: "", verdict: "" },
      { metric: "latency p99 (ms)", value: round1(p99), target: "<= 200", verdict: p99 <= 200 ? "ok" : "MISSED" },
      { metric: "latency max (ms)", value: round1(latencies.at(-1)!), target: "", verdict: "" },
      { metric: "RSS per idle subscriber (KB, after GC)", value: rssPer, target: "<= 50", verdict: rssPer <= 50 ? "ok" : "MISSED" },
      { metric: "heap per idle subscriber (KB, after GC)", value: heapPer, target: "<= 50", verdict: heapPer <= 50 ? "ok" : "MISSED" },
      { metric: "service RSS idle / with subscribers (MB)", value: `${round1(base.usage.rss / 2 ** 20)} / ${round1(loaded.usage.rss / 2 ** 20)}`, target: "", verdict: loaded.gc ? "" : "no --expose-gc" },
      // What V8 keeps reserved after the collections: most of the RSS that is not live heap.
      { metric: "V8 heap reserved idle / with subscribers (MB)", value: `${round1(base.usage.heapTotal / 2 ** 20)} / ${round1(loaded.usage.heapTotal / 2 ** 20)}`, target: "", verdict: "" },
    ];
    rows.push(
      { metric: `throughput: ${BURST} events x ${SUBSCRIBERS} subscribers (s)`, value: round1(burstMs / 1000), target: "", verdict: complete ? "" : "EVENTS MISSING" },
      { metric: "  events per second (each appended to the log, pushed to every subscriber)", value: Math.round(BURST / (burstMs / 1000)), target: "", verdict: "" },
      { metric: "  deliveries per second (events x subscribers)", value: Math.round((BURST * SUBSCRIBERS) / (burstMs / 1000)), target: "", verdict: "" },
      { metric: `  log ids of the burst`, value: `${burst.last - BURST + 1}..${burst.last}`, target: "", verdict: "" },
      { metric: `resume after a restart: ${SUBSCRIBERS} clients, ${MISSED} missed events each`, value: "", target: "", verdict: resumedExactly ? "no gap, no repeat" : "GAP OR REPEAT" },
      { metric: "  service restart (stop + start until listening, s)", value: round1((listeningAt - restartAt) / 1000), target: "", verdict: "" },
      { metric: "  all caught up, from listening (s)", value: round1(allCaughtUpMs / 1000), target: "", verdict: "" },
      { metric: "  per client caught up: median / p99 (s)", value: `${round1(quantile(catchUp, 0.5) / 1000)} / ${round1(quantile(catchUp, 0.99) / 1000)}`, target: "", verdict: "" },
    );
    for (const r of perRound) rows.push({ metric: `  ${r.change}: median / p99 / max (ms)`, value: `${r.median} / ${r.p99} / ${r.max}`, target: "", verdict: "" });
    return rows;
  } finally {
    await Promise.all(clients.map((c) => c.dispose()));
    await service.stop();
    await sm.close();
    await fs.rm(dataDir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  runFanoutBench().then((rows) => {
    console.table(rows);
    process.exit(0);
  }, (e) => {
    console.error(e);
    process.exit(1);
  });
}
