/**
 * The floor for the HTTP cases (bench/trials.ts): a bare node:http server in its own process that
 * answers every POST to /<name> with the bytes in <dir>/<name>.json, exactly as trialgraph answered
 * it. Timing the same client against it measures what the network, HTTP and the client's JSON
 * parsing cost for that answer, so trialgraph's time can be printed as a multiple of it.
 */
import http from "node:http";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";

const dir = process.argv[2];
const bodies = new Map<string, Buffer>();
for (const f of readdirSync(dir)) if (f.endsWith(".json")) bodies.set(`/${f.slice(0, -5)}`, readFileSync(path.join(dir, f)));

const server = http.createServer((req, res) => {
  // Read the request body first, as a GraphQL server must.
  req.on("data", () => {});
  req.on("end", () => {
    const body = bodies.get(req.url ?? "");
    if (!body) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": "application/json; charset=utf-8", "content-length": body.length }).end(body);
  });
});
server.listen(0, "127.0.0.1", () => {
  console.log(JSON.stringify({ port: (server.address() as { port: number }).port }));
});
