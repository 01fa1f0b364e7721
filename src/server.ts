/**
 * The HTTP + WebSocket server: GraphQL over POST /graphql and graphql-ws on the same path, the
 * offline playground at GET /graphql, the dashboard at /, health at /healthz.
 */
import "reflect-metadata";
import http from "node:http";
import path from "node:path";
import { existsSync } from "node:fs";
import { randomUUID } from "node:crypto";
import express, { type NextFunction, type Request, type Response } from "express";
import { ApolloServer } from "@apollo/server";
import { expressMiddleware } from "@as-integrations/express5";
import { ApolloServerPluginDrainHttpServer } from "@apollo/server/plugin/drainHttpServer";
import { ApolloServerPluginLandingPageDisabled } from "@apollo/server/plugin/disabled";
import depthLimit from "graphql-depth-limit";
import pino, { type Logger } from "pino";
import { ConfigError, loadConfig, type Config } from "./config.js";
import { createApp } from "./app.js";
import { createSchema } from "./graphql/schema.js";
import { createContext, type Context } from "./graphql/context.js";
import { formatError, toGraphQLError } from "./graphql/errors.js";
import { playgroundHtml } from "./graphql/playground.js";
import { attachWebSocketServer } from "./graphql/ws.js";
import { authenticate } from "./graphql/http-auth.js";
import { TrialgraphError } from "./errors.js";

export interface RunningServer {
  url: string;
  port: number;
  config: Config;
  log: Logger;
  close(): Promise<void>;
}

const WEB_ROOT = path.resolve(__dirname, __dirname.includes(`${path.sep}dist${path.sep}`) ? "../web" : "../dist/web");

export async function startServer(config: Config, log: Logger = pino({ level: config.logLevel })): Promise<RunningServer> {
  const app = await createApp(config, log);
  const { services } = app;
  const schema = await createSchema();
  const validationRules = [depthLimit(config.limits.maxDepth)];

  const expressApp = express();
  expressApp.disable("x-powered-by");
  const httpServer = http.createServer(expressApp);
  const ws = attachWebSocketServer(httpServer, schema, services, validationRules);

  const apollo = new ApolloServer<Context>({
    schema,
    introspection: config.introspection,
    includeStacktraceInErrorResponses: false,
    validationRules,
    parseOptions: { maxTokens: config.limits.maxTokens },
    formatError: formatError(log),
    plugins: [
      ApolloServerPluginDrainHttpServer({ httpServer }),
      ApolloServerPluginLandingPageDisabled(),
      { async serverWillStart() { return { async drainServer() { await ws.dispose(); } }; } },
    ],
  });
  await apollo.start();

  expressApp.get("/healthz", (_req, res) => {
    res.json({ status: "ok", events: services.events.health() });
  });
  expressApp.get("/graphql", (req, res, next) => {
    if (req.accepts(["application/json", "application/graphql-response+json", "text/html"]) === "text/html") {
      res.type("html").send(playgroundHtml());
    } else next();
  });
  expressApp.use(
    "/graphql",
    express.json({ limit: config.limits.maxBodyBytes }),
    expressMiddleware(apollo, {
      context: async ({ req }) => {
        const requestId = (req.headers["x-request-id"] as string) || randomUUID();
        try {
          return createContext(services, authenticate(config, req.headers.authorization), requestId);
        } catch (e) {
          throw e instanceof TrialgraphError ? toGraphQLError(e) : e;
        }
      },
    }),
  );
  if (existsSync(WEB_ROOT)) {
    expressApp.use(express.static(WEB_ROOT, { index: "index.html", maxAge: "1h" }));
  }
  // Body-parser and other middleware errors: JSON, never Express's HTML page.
  expressApp.use((err: any, _req: Request, res: Response, _next: NextFunction) => {
    const status = typeof err?.status === "number" && err.status >= 400 && err.status < 600 ? err.status : 500;
    const code = status === 413 ? "LIMIT_EXCEEDED" : status < 500 ? "BAD_REQUEST" : "INTERNAL_SERVER_ERROR";
    const message = status === 413 ? `request body larger than ${config.limits.maxBodyBytes} bytes` : status < 500 ? "malformed request" : "internal error";
    if (status >= 500) log.error({ err }, "request failed");
    res.status(status).json({ errors: [{ message, extensions: { code } }] });
  });

  await new Promise<void>((resolve, reject) => {
    httpServer.once("error", reject);
    httpServer.listen(config.port, config.host, () => resolve());
  });
  const address = httpServer.address() as import("node:net").AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}/graphql`;
  log.info({ url, dataDir: config.dataDir, backends: services.jobs.configured(), auth: config.apiTokens.length ? "tokens" : "none (loopback only)" }, "trialgraph listening");

  let closing: Promise<void> | null = null;
  return {
    url,
    port: address.port,
    config,
    log,
    close() {
      closing ??= (async () => {
        await apollo.stop();
        await app.close();
      })();
      return closing;
    },
  };
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(e.message);
      process.exit(2);
    }
    throw e;
  }
  const log = pino({ level: config.logLevel });
  const server = await startServer(config, log);
  const shutdown = (signal: string) => {
    log.info({ signal }, "shutting down");
    void server.close().then(() => process.exit(0), (err) => {
      log.error({ err }, "shutdown failed");
      process.exit(1);
    });
  };
  process.once("SIGTERM", () => shutdown("SIGTERM"));
  process.once("SIGINT", () => shutdown("SIGINT"));
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
