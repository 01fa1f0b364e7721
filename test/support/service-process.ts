/**
 * The real service in its own process for signal tests and load benchmarks: `node --import tsx
 * src/server.ts`, or the compiled dist/src/server.js when asked and present. Waits for the
 * "listening" log line, keeps every JSON log line, and reports how the process ended.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { freePort } from "./net.js";
import path from "node:path";
import { serviceDatabase } from "./database.js";

export const PROJECT_ROOT = path.resolve(__dirname, "../..");

export interface ServiceProcess {
  proc: ChildProcess;
  pid: number;
  url: string;
  wsUrl: string;
  base: string;
  logs: any[];
  readonly stderr: string;
  /** Resolves with the exit code (or the signal's name) once the process has ended. */
  exited: Promise<number | string>;
  /** SIGTERM, then SIGKILL after `killAfterMs`; resolves with the exit code. */
  stop(killAfterMs?: number): Promise<number | string>;
}

export interface ServiceProcessOptions {
  env?: Record<string, string>;
  /** Run dist/src/server.js when it exists (benchmarks); default: tsx on the sources. */
  preferDist?: boolean;
  startTimeoutMs?: number;
}

/**
 * How `npm start` runs the service, read from package.json's "start" script: the environment it
 * sets, the node flags (heap and allocator settings) and the script. Every service process of the
 * tests and benchmarks runs with the same settings, so there is one place that defines them.
 */
export function startCommand(): { env: Record<string, string>; nodeFlags: string[]; script: string } {
  const start = (JSON.parse(readFileSync(path.join(PROJECT_ROOT, "package.json"), "utf8")) as { scripts: { start: string } }).scripts.start;
  const words = start.trim().split(/\s+/);
  const env: Record<string, string> = {};
  let i = 0;
  for (; i < words.length && /^\w+=/.test(words[i]); i++) {
    const eq = words[i].indexOf("=");
    env[words[i].slice(0, eq)] = words[i].slice(eq + 1);
  }
  if (words[i] !== "node") throw new Error(`package.json's start script does not run node: ${start}`);
  const nodeFlags: string[] = [];
  for (i++; i < words.length && words[i].startsWith("-"); i++) nodeFlags.push(words[i]);
  if (i !== words.length - 1) throw new Error(`package.json's start script is not \`[VAR=value …] node [flags …] script\`: ${start}`);
  return { env, nodeFlags, script: words[i] };
}

/** Node's arguments for the service: npm start's flags, then the compiled entry (preferDist, when built) or tsx on the sources. */
export function serviceCommand(preferDist = false): string[] {
  const { nodeFlags, script } = startCommand();
  const dist = path.join(PROJECT_ROOT, script);
  if (preferDist && existsSync(dist)) return [...nodeFlags, dist];
  return [...nodeFlags, "--import", "tsx", path.join(PROJECT_ROOT, "src/server.ts")];
}

/**
 * npm start's environment (allocator settings; NODE_ENV only for the compiled service: the sources
 * under tsx run as in development).
 */
function startEnv(compiled: boolean): Record<string, string> {
  const { env } = startCommand();
  if (!compiled) delete env.NODE_ENV;
  return env;
}

/**
 * Starts the service; rejects with "exited (<code>) before listening; stderr: …" when it refuses to start.
 * Ready when it logs "trialgraph listening: …" or, with LOG_LEVEL above info, when /healthz answers
 * (polled every 20 ms: the trials bench times a start to ready with it).
 */
export async function startServiceProcess(opts: ServiceProcessOptions = {}): Promise<ServiceProcess> {
  const port = await freePort();
  const database = opts.env?.TRIALGRAPH_DATABASE_URL ? null : await serviceDatabase();
  const command = serviceCommand(opts.preferDist);
  const compiled = command[command.length - 1].endsWith(".js");
  const env: Record<string, string> = { ...(process.env as Record<string, string>), HOST: "127.0.0.1", LOG_LEVEL: "info", ...startEnv(compiled), ...database?.env, ...opts.env, PORT: String(port) };
  delete env.NODE_TEST_CONTEXT;
  delete env.NODE_OPTIONS;
  const proc = spawn(process.execPath, command, { cwd: PROJECT_ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  const logs: any[] = [];
  let stderr = "";
  const exited = new Promise<number | string>((resolve) => proc.once("exit", (code, signal) => resolve(code ?? signal ?? -1)));
  void exited.then(() => database?.release()).catch(() => undefined);
  const timeoutMs = opts.startTimeoutMs ?? 30_000;
  return new Promise<ServiceProcess>((resolve, reject) => {
    let buffered = "";
    let started = false;
    // The listening line comes after the start's other log lines: a service that writes it as JSON is
    // ready when it does (a /healthz answer could overtake those lines on their way through the pipe).
    const logsListening = ["trace", "debug", "info"].includes(env.LOG_LEVEL) && env.LOG_FORMAT !== "pretty";
    const probe = setInterval(() => {
      if (logsListening) return;
      fetch(`http://127.0.0.1:${port}/healthz`).then((r) => (r.ok ? ready(`http://127.0.0.1:${port}/graphql`) : undefined), () => undefined);
    }, 20);
    const ready = (url: string) => {
      clearInterval(probe);
      if (started) return;
      started = true;
      clearTimeout(timer);
      resolve({
        proc,
        pid: proc.pid!,
        url,
        wsUrl: url.replace(/^http/, "ws"),
        base: url.replace(/\/graphql$/, ""),
        logs,
        get stderr() {
          return stderr;
        },
        exited,
        async stop(killAfterMs = 20_000) {
          if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGTERM");
          const t = setTimeout(() => proc.kill("SIGKILL"), killAfterMs);
          const code = await exited;
          clearTimeout(t);
          return code;
        },
      });
    };
    const timer = setTimeout(() => {
      clearInterval(probe);
      proc.kill("SIGKILL");
      reject(new Error(`service did not start within ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    proc.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));
    proc.stdout!.on("data", (c: Buffer) => {
      buffered += c.toString();
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        let entry: any;
        try {
          entry = JSON.parse(line);
        } catch {
          continue;
        }
        logs.push(entry);
        if (String(entry.msg).startsWith("trialgraph listening")) ready(entry.url);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      clearInterval(probe);
      if (!started) reject(new Error(`service exited (${code}) before listening; stderr: ${stderr}`));
    });
  });
}

/** POSTs a GraphQL request; the body is parsed JSON, or { raw } when it is not JSON. */
export async function gqlAt(url: string, query: string, variables?: Record<string, unknown>, headers: Record<string, string> = {}): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify({ query, variables }) });
  const text = await res.text();
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    body = { raw: text };
  }
  return { status: res.status, body, headers: res.headers };
}

/**
 * Runs the service with this environment on top of the test's (PORT and HOST included, so a taken
 * port can be named) until it exits on its own, for start-up failures. Kills it after `timeoutMs`.
 */
export async function runServiceUntilExit(env: Record<string, string>, timeoutMs = 30_000): Promise<{ code: number | string; stdout: string; stderr: string }> {
  const fullEnv: Record<string, string> = { ...(process.env as Record<string, string>), HOST: "127.0.0.1", LOG_LEVEL: "info", ...startEnv(false), ...env };
  delete fullEnv.NODE_TEST_CONTEXT;
  delete fullEnv.NODE_OPTIONS;
  const proc = spawn(process.execPath, serviceCommand(), { cwd: PROJECT_ROOT, env: fullEnv, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  proc.stdout!.on("data", (c: Buffer) => (stdout += c.toString()));
  proc.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));
  const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
  // "close" comes after the output is read to its end.
  const code = await new Promise<number | string>((resolve) => proc.once("close", (c, signal) => resolve(c ?? signal ?? -1)));
  clearTimeout(timer);
  return { code, stdout, stderr };
}
