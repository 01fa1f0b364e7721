/**
 * Subscription flood: BENCH_FLOOD_SOCKETS sockets each subscribe 99 times (the per-socket cap is 100),
 * complete those 99, and send a `{ __typename }` query whose answer paces the next round, for
 * BENCH_FLOOD_SECONDS. The service (compiled, `npm start`'s flags) is measured from outside: its CPU time
 * (/proc) per subscribe, and its peak RSS (VmHWM). The floor is the same client against a bare `ws`
 * server (bench/ws-floor-server.ts); runs of the two alternate, medians are printed.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import WebSocket from "ws";
import { startServiceProcess } from "../test/support/service-process.js";
import { median } from "./trials.js";

const SECONDS = Number(process.env.BENCH_FLOOD_SECONDS ?? 10);
const SOCKETS = Number(process.env.BENCH_FLOOD_SOCKETS ?? 4);
const RUNS = Number(process.env.BENCH_FLOOD_RUNS ?? 3);
const PER_ROUND = 99;
const SUBSCRIPTION = "subscription { trainingJobStatusChanged { previousStatus job { name status } } }";

function status(pid: number, field: string): number {
  const m = new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** User + system CPU of a process, in ms (clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** One socket's rounds until `until`; counts the subscribes sent and the errors answered. */
function floodSocket(url: string, until: number, counts: { subscribes: number; errors: number }): Promise<void> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, "graphql-transport-ws");
    let round = 0;
    const next = () => {
      if (Date.now() > until) {
        ws.close();
        resolve();
        return;
      }
      round++;
      for (let i = 0; i < PER_ROUND; i++) ws.send(JSON.stringify({ id: `r${round}-${i}`, type: "subscribe", payload: { query: SUBSCRIPTION } }));
      for (let i = 0; i < PER_ROUND; i++) ws.send(JSON.stringify({ id: `r${round}-${i}`, type: "complete" }));
      counts.subscribes += PER_ROUND;
      // The server handles a socket's messages in order: its answer to this query ends the round.
      ws.send(JSON.stringify({ id: `p${round}`, type: "subscribe", payload: { query: "{ __typename }" } }));
    };
    ws.once("open", () => ws.send(JSON.stringify({ type: "connection_init" })));
    ws.on("message", (data) => {
      const msg = JSON.parse(String(data)) as { type: string; id?: string };
      if (msg.type === "connection_ack") next();
      else if (msg.type === "error") {
        counts.errors++;
        if (msg.id?.startsWith("p")) setTimeout(next, 5);
      } else if (msg.type === "complete" && msg.id?.startsWith("p")) next();
    });
    ws.once("error", () => resolve());
    setTimeout(() => { ws.terminate(); resolve(); }, (SECONDS + 10) * 1000).unref();
  });
}

interface FloodRun { perSecond: number; cpuUsPerSubscribe: number; peakRssMb: number; errors: number }

async function flood(url: string, pid: number): Promise<FloodRun> {
  const counts = { subscribes: 0, errors: 0 };
  const cpu0 = cpuMs(pid);
  const started = Date.now();
  await Promise.all(Array.from({ length: SOCKETS }, () => floodSocket(url, started + SECONDS * 1000, counts)));
  const seconds = (Date.now() - started) / 1000;
  return {
    perSecond: counts.subscribes / seconds,
    cpuUsPerSubscribe: ((cpuMs(pid) - cpu0) * 1000) / counts.subscribes,
    peakRssMb: status(pid, "VmHWM"),
    errors: counts.errors,
  };
}

async function floorServer(): Promise<{ url: string; pid: number; stop(): void }> {
  const proc = spawn(process.execPath, ["--import", "tsx", path.join(__dirname, "ws-floor-server.ts")], { stdio: ["ignore", "pipe", "inherit"] });
  const port = await new Promise<number>((resolve, reject) => {
    proc.stdout!.once("data", (d) => resolve((JSON.parse(String(d)) as { port: number }).port));
    proc.once("exit", () => reject(new Error("the floor server exited")));
  });
  return { url: `ws://127.0.0.1:${port}/graphql`, pid: proc.pid!, stop: () => proc.kill() };
}

export async function runSubscribeBench(): Promise<Record<string, string | number>[]> {
  const ours: FloodRun[] = [];
  const floor: FloodRun[] = [];
  for (let i = 0; i < RUNS; i++) {
    // A fresh process each run, both sides: peak RSS is the run's own.
    const f = await floorServer();
    try {
      floor.push(await flood(f.url, f.pid));
    } finally {
      f.stop();
    }
    const service = await startServiceProcess({ preferDist: true });
    try {
      ours.push(await flood(service.wsUrl, service.pid));
    } finally {
      await service.stop();
    }
  }
  const row = (label: string, runs: FloodRun[], note: string) => ({
    case: label,
    N: runs.length,
    "subscribes/s": Math.round(median(runs.map((r) => r.perSecond))),
    "CPU µs per subscribe": median(runs.map((r) => r.cpuUsPerSubscribe)).toFixed(1),
    "ours/floor (CPU)": label.startsWith("trialgraph") ? `${(median(ours.map((r) => r.cpuUsPerSubscribe)) / median(floor.map((r) => r.cpuUsPerSubscribe))).toFixed(2)}×` : "",
    "peak RSS (MB)": median(runs.map((r) => r.peakRssMb)).toFixed(1),
    errors: runs.reduce((n, r) => n + r.errors, 0),
    note,
  });
  return [
    row("trialgraph: subscribe + complete, 4 sockets", ours, `${SECONDS} s per run, ${PER_ROUND} subscribes per round trip; service CPU and VmHWM from /proc`),
    row("floor: bare ws server, same client", floor, "parses every message, keeps ids until complete; no GraphQL"),
  ];
}
