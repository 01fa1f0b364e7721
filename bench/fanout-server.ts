/**
 * The service for the fan-out benchmark, in its own process (so the clients' memory is not
 * counted), from the compiled build. Answers IPC "memory" requests with memoryUsage() after a full GC.
 * Run with --expose-gc.
 */
import pino from "pino";
import { loadConfig } from "../dist/src/config.js";
import { startServer } from "../dist/src/server.js";

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const server = await startServer(config, pino({ level: "warn" }));
  process.on("message", async (m: any) => {
    if (m?.type === "memory") {
      const gc = (globalThis as any).gc as (() => void) | undefined;
      for (let i = 0; i < 3; i++) {
        gc?.();
        await new Promise((r) => setTimeout(r, 50));
      }
      process.send!({ type: "memory", usage: process.memoryUsage(), gc: Boolean(gc) });
    } else if (m?.type === "publish") {
      // A burst of progress events for one job, as a local job's rounds publish them; answered once
      // every one is in the event log (and so on its way to the subscribers).
      const job = await server.services.jobs.describe(m.job);
      if (!job) throw new Error(`fan-out bench: no job ${m.job}`);
      for (let i = 0; i < m.count; i++) {
        server.services.events.publish("jobProgress", { job: { ...job, progress: { current: m.from + i + 1, total: m.total } } });
      }
      await server.services.events.flush();
      process.send!({ type: "published", last: await server.services.events.lastId() });
    } else if (m?.type === "stop") {
      await server.close();
      process.exit(0);
    }
  });
  process.send!({ type: "listening", url: server.url });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
