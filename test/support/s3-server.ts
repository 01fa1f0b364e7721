/**
 * A real S3-protocol server for tests and benchmarks: s3rver in a child process (it needs
 * --openssl-legacy-provider on Node 20 for paginated listings), behind an in-process HTTP proxy that logs
 * every request (method, path, query, Range), tracks how many are in flight, and can inject faults
 * (error statuses, broken or stalled bodies) that s3rver cannot produce itself.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { promises as fs } from "node:fs";
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import os from "node:os";
import path from "node:path";
import { CreateBucketCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { createS3Client, type S3ClientOptions } from "../../src/storage/s3-client.js";

export interface RequestLogEntry {
  method: string;
  /** Decoded path: /bucket/key. */
  path: string;
  bucket: string;
  /** Decoded object key ("" for bucket-level requests). */
  key: string;
  query: Record<string, string>;
  /** The Range header, when sent. */
  range?: string;
  /** ListObjectsV2, GetObject, HeadObject, PutObject, CreateBucket, ... */
  operation: string;
  /** HTTP status sent back (0 while in flight or when the connection was cut). */
  status: number;
  /** Whether the proxy answered (or broke) this request itself. */
  injected: boolean;
}

export interface InjectedFault {
  /** Which requests: all of these that are given must match. */
  method?: string;
  operation?: string;
  bucket?: string;
  /** The key starts with this. */
  keyPrefix?: string;
  /** How many matching requests to hit (default: every one). */
  times?: number;
  /** Answer with this status and an S3 error document with this code. */
  status?: number;
  code?: string;
  /** Forward to s3rver, then cut the connection after this many body bytes. */
  truncateBodyAfter?: number;
  /** Forward to s3rver, send the headers and this many body bytes, then go silent until the server closes. */
  stallBodyAfter?: number;
  /** Never answer at all (the client's request timeout must fire). */
  stallHeaders?: boolean;
}

export interface S3TestServer {
  /** The counting proxy; point clients here. */
  endpoint: string;
  /** s3rver itself, bypassing the proxy. */
  directEndpoint: string;
  /** s3rver's storage folder. */
  directory: string;
  requestLog: RequestLogEntry[];
  /** Requests currently between arrival at the proxy and the end of their response. */
  readonly inFlight: number;
  /** Highest `inFlight` since the last reset. */
  readonly maxInFlight: number;
  /** Delay before each forwarded request (lets concurrent requests overlap visibly). */
  responseDelayMs: number;
  resetLog(): void;
  inject(fault: InjectedFault): void;
  clearFaults(): void;
  /** Log entries matching a filter. */
  requests(filter?: { operation?: string; method?: string; bucket?: string; keyPrefix?: string }): RequestLogEntry[];
  close(): Promise<void>;
}

/** s3rver's built-in account; it checks SigV4 signatures against it. */
export const S3RVER_CREDENTIALS = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };

export async function start(opts: { port?: number; directory?: string } = {}): Promise<S3TestServer> {
  const ownDirectory = opts.directory === undefined;
  const directory = opts.directory ?? (await fs.mkdtemp(path.join(os.tmpdir(), "trialgraph-s3rver-")));
  const child = await startS3rverChild(directory);
  const upstreamPort = child.port;
  // A fresh connection per forwarded request: reusing idle keep-alive sockets races s3rver closing them
  // (ECONNRESET), which would show up as spurious 502s.
  const upstreamAgent = new http.Agent({ keepAlive: false });

  const requestLog: RequestLogEntry[] = [];
  let faults: (InjectedFault & { remaining: number })[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const sockets = new Set<Socket>();
  const upstreamRequests = new Set<http.ClientRequest>();

  const proxy = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? "/", "http://proxy");
    const segments = url.pathname.split("/").slice(1);
    const bucket = decodeURIComponent(segments[0] ?? "");
    const key = segments.slice(1).map(decodeURIComponent).join("/");
    const query = Object.fromEntries(url.searchParams.entries());
    const method = req.method ?? "GET";
    const entry: RequestLogEntry = {
      method,
      path: decodeURIComponent(url.pathname),
      bucket,
      key,
      query,
      range: req.headers.range,
      operation: operationOf(method, key, query),
      status: 0,
      injected: false,
    };
    requestLog.push(entry);
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    let counted = true;
    const done = () => {
      if (counted) {
        counted = false;
        inFlight--;
      }
    };
    res.on("close", done);

    const fault = faults.find(
      (f) =>
        f.remaining > 0 &&
        (f.method === undefined || f.method === method) &&
        (f.operation === undefined || f.operation === entry.operation) &&
        (f.bucket === undefined || f.bucket === bucket) &&
        (f.keyPrefix === undefined || key.startsWith(f.keyPrefix)),
    );
    if (fault) fault.remaining--;

    if (fault && fault.status !== undefined) {
      entry.injected = true;
      await drain(req);
      entry.status = fault.status;
      const body =
        method === "HEAD"
          ? ""
          : `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${fault.code ?? "InternalError"}</Code>` +
            `<Message>injected by the test proxy</Message><Resource>${escapeXml(entry.path)}</Resource>` +
            `<RequestId>INJECTED</RequestId></Error>`;
      res.writeHead(fault.status, { "content-type": "application/xml", "content-length": Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    if (fault?.stallHeaders) {
      entry.injected = true;
      await drain(req);
      return; // never answered; the socket is destroyed when the proxy closes or the client gives up
    }

    if (server.responseDelayMs > 0) await new Promise((r) => setTimeout(r, server.responseDelayMs));
    const upstream = http.request(
      { host: "127.0.0.1", port: upstreamPort, method, path: req.url, headers: withoutHopByHop(req.headers), agent: upstreamAgent },
      (up) => {
        entry.status = up.statusCode ?? 0;
        const cutAfter = fault?.truncateBodyAfter ?? fault?.stallBodyAfter;
        if (fault && cutAfter !== undefined) {
          entry.injected = true;
          res.writeHead(up.statusCode ?? 502, withoutHopByHop(up.headers));
          collect(up).then((full) => {
            res.write(full.subarray(0, cutAfter));
            if (fault.truncateBodyAfter !== undefined) res.socket?.destroy();
            // stallBodyAfter: leave the response open and silent.
          });
          return;
        }
        res.writeHead(up.statusCode ?? 502, withoutHopByHop(up.headers));
        up.pipe(res);
      },
    );
    upstreamRequests.add(upstream);
    upstream.on("close", () => upstreamRequests.delete(upstream));
    upstream.on("error", () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(upstream);
  });
  proxy.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => proxy.listen(opts.port ?? 0, "127.0.0.1", resolve));
  const proxyPort = (proxy.address() as AddressInfo).port;

  const server: S3TestServer = {
    endpoint: `http://127.0.0.1:${proxyPort}`,
    directEndpoint: `http://127.0.0.1:${upstreamPort}`,
    directory,
    requestLog,
    get inFlight() {
      return inFlight;
    },
    get maxInFlight() {
      return maxInFlight;
    },
    responseDelayMs: 0,
    resetLog() {
      requestLog.length = 0;
      maxInFlight = inFlight;
    },
    inject(fault) {
      faults.push({ ...fault, remaining: fault.times ?? Infinity });
    },
    clearFaults() {
      faults = [];
    },
    requests(filter = {}) {
      return requestLog.filter(
        (e) =>
          (filter.operation === undefined || e.operation === filter.operation) &&
          (filter.method === undefined || e.method === filter.method) &&
          (filter.bucket === undefined || e.bucket === filter.bucket) &&
          (filter.keyPrefix === undefined || e.key.startsWith(filter.keyPrefix)),
      );
    },
    async close() {
      for (const r of upstreamRequests) r.destroy();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
      upstreamAgent.destroy();
      await child.stop();
      if (ownDirectory) await fs.rm(directory, { recursive: true, force: true });
    },
  };
  return server;
}

/** A client of the project's own factory, pointed at the test server, with s3rver's credentials. */
export function createTestClient(server: Pick<S3TestServer, "endpoint">, opts: Partial<S3ClientOptions> = {}): S3Client {
  return createS3Client({ region: "us-east-1", endpoint: server.endpoint, credentials: S3RVER_CREDENTIALS, maxAttempts: 1, ...opts });
}

export async function createBucket(client: S3Client, bucket: string): Promise<void> {
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
}

/**
 * Uploads every file under `dir` to `bucket` as `prefix + relative path` ("/"-separated), reading the files
 * in place. Returns the uploaded keys, sorted.
 */
export async function uploadDirectory(client: S3Client, bucket: string, prefix: string, dir: string): Promise<string[]> {
  const normalized = prefix && !prefix.endsWith("/") ? `${prefix}/` : prefix;
  const files = await walk(dir);
  const keys = files.map((rel) => normalized + rel.split(path.sep).join("/"));
  let next = 0;
  const worker = async () => {
    while (next < files.length) {
      const i = next++;
      const body = await fs.readFile(path.join(dir, files[i]));
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: keys[i], Body: body }));
    }
  };
  await Promise.all(Array.from({ length: Math.min(8, files.length) }, worker));
  return keys.sort();
}

async function walk(dir: string, rel = ""): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? path.join(rel, e.name) : e.name;
    if (e.isDirectory()) out.push(...(await walk(dir, r)));
    else if (e.isFile()) out.push(r);
  }
  return out;
}

function operationOf(method: string, key: string, query: Record<string, string>): string {
  const objectLevel = key !== "";
  switch (method) {
    case "GET":
      if (objectLevel) return "GetObject";
      return query["list-type"] === "2" ? "ListObjectsV2" : "ListObjects";
    case "HEAD":
      return objectLevel ? "HeadObject" : "HeadBucket";
    case "PUT":
      return objectLevel ? "PutObject" : "CreateBucket";
    case "DELETE":
      return objectLevel ? "DeleteObject" : "DeleteBucket";
    case "POST":
      return objectLevel ? "PostObject" : "PostBucket";
    default:
      return method;
  }
}

/** Connection management headers belong to one hop; the proxy's two connections each have their own. */
function withoutHopByHop(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = { ...headers };
  for (const h of ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"]) delete out[h];
  return out;
}

function drain(req: http.IncomingMessage): Promise<void> {
  return new Promise((resolve) => {
    req.on("end", resolve);
    req.on("error", () => resolve());
    req.resume();
  });
}

function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("end", () => resolve(Buffer.concat(chunks)));
    stream.on("error", reject);
  });
}

function escapeXml(s: string): string {
  return s.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** s3rver in its own Node process; it exits when our end of its stdin closes (also if we die). */
async function startS3rverChild(directory: string): Promise<{ port: number; stop(): Promise<void> }> {
  const s3rverPath = require.resolve("s3rver");
  const script = `
    const S3rver = require(${JSON.stringify(s3rverPath)});
    const server = new S3rver({ port: 0, address: "127.0.0.1", silent: true, directory: ${JSON.stringify(directory)} });
    server.run().then(
      (addr) => process.stdout.write(JSON.stringify({ port: addr.port }) + "\\n"),
      (err) => { console.error(err); process.exit(1); },
    );
    process.stdin.on("end", () => process.exit(0));
    process.stdin.resume();
  `;
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  delete env.NODE_TEST_CONTEXT;
  const proc: ChildProcess = spawn(process.execPath, ["--openssl-legacy-provider", "-e", script], {
    stdio: ["pipe", "pipe", "inherit"],
    env,
  });
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    proc.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const line = out.split("\n")[0];
      if (out.includes("\n")) {
        try {
          resolve(JSON.parse(line).port);
        } catch (e) {
          reject(new Error(`s3rver child printed ${JSON.stringify(line)}`));
        }
      }
    });
    proc.once("exit", (code) => reject(new Error(`s3rver child exited with code ${code} before listening`)));
    proc.once("error", reject);
  });
  return {
    port,
    async stop() {
      proc.stdin!.end();
      const timer = setTimeout(() => proc.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}
