/**
 * The event log behind subscription cursors, on both engines: ids are consecutive and commit in
 * order even when several writers (separate connection pools, as separate instances) append at once,
 * so a reader that sees id N has seen every id below it; retention prunes by count and by age; and an
 * EventBus on the log delivers every event once, in id order, to subscribers on another "instance"
 * that hears of nothing through Redis (it reads the log).
 */
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Store } from "../src/store/index.js";
import { EventBus } from "../src/events/event-bus.js";
import type { TrainingJobRecord } from "../src/store/records.js";
import { createTestDatabase } from "./support/database.js";
import { eventually, sleep } from "./support/ws-events.js";

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

const engines = [
  { name: "sqlite", fresh: async () => ({ url: null as string | null, dataDir: await fs.mkdtemp(path.join(os.tmpdir(), "tg-eventlog-")) }) },
  {
    name: "postgres",
    fresh: async () => {
      const db = await createTestDatabase("eventlog");
      cleanups.push(() => db.drop());
      return { url: db.url as string | null, dataDir: await fs.mkdtemp(path.join(os.tmpdir(), "tg-eventlog-")) };
    },
  },
];

const job = (name: string, current: number): TrainingJobRecord => ({
  name, arn: null, backend: "LOCAL", status: "IN_PROGRESS", secondaryStatus: "Training", failureReason: null,
  createdAt: new Date("2026-01-01T00:00:00.000Z"), startedAt: null, endedAt: null, hyperparameters: {},
  debugOutputPath: null, ruleSummaries: [], progress: { current, total: 1000 },
});

for (const engine of engines) {
  describe(`event log on ${engine.name}`, () => {
    test("concurrent writers: ids consecutive, in commit order; a reader never sees a hole", async () => {
      const o = await engine.fresh();
      // PostgreSQL: two stores = two connection pools, as two instances sharing the database. SQLite:
      // one store (one process holds the file's connection; its statements are synchronous, so a
      // second connection in the same process would wait on the lock while blocking the first).
      const a = await Store.open({ databaseUrl: o.url, dataDir: o.dataDir });
      const b = engine.name === "postgres" ? await Store.open({ databaseUrl: o.url, dataDir: o.dataDir }) : a;
      cleanups.push(() => a.close());
      if (b !== a) cleanups.push(() => b.close());
      let writing = true;
      const holes: string[] = [];
      let seen = 0;
      // A reader polling as fast as it can while the writers run.
      const reader = (async () => {
        while (writing) {
          const rows = await a.events.read({ after: seen, limit: 10_000 });
          rows.forEach((r, i) => {
            if (r.id !== seen + 1 + i) holes.push(`after ${seen}: got ${rows.map((x) => x.id).slice(0, 5).join(",")}…`);
          });
          if (rows.length) seen = rows[rows.length - 1].id;
          await sleep(0);
        }
      })();
      const write = async (store: Store, who: string) => {
        const batches: number[][] = [];
        for (let i = 0; i < 60; i++) {
          const n = 1 + (i % 4);
          const rows = await store.events.append(Array.from({ length: n }, (_, k) => ({ topic: "jobProgress", jobName: who, payload: JSON.stringify({ who, i, k }) })));
          batches.push(rows.map((r) => r.id));
        }
        return batches;
      };
      const [fromA, fromB] = await Promise.all([write(a, "a"), write(b, "b")]);
      writing = false;
      await reader;
      assert.deepEqual(holes, [], "a reader saw an id before a smaller one was visible");
      const all = [...fromA, ...fromB];
      for (const batch of all) for (let i = 1; i < batch.length; i++) assert.equal(batch[i], batch[i - 1] + 1, "one append's ids are consecutive");
      const ids = all.flat().sort((x, y) => x - y);
      assert.deepEqual(ids, Array.from({ length: ids.length }, (_, i) => i + 1), "every id once, no hole");
      assert.equal(await a.events.last(), ids.length);
      // Reading one job's events keeps their order.
      const onlyB = await b.events.read({ after: 0, jobName: "b", limit: 10_000 });
      assert.deepEqual(onlyB.map((r) => r.id), fromB.flat());
    });

    test("retention prunes by count and by age; what is left starts right after what was pruned", async () => {
      const o = await engine.fresh();
      const store = await Store.open({ databaseUrl: o.url, dataDir: o.dataDir });
      cleanups.push(() => store.close());
      await store.events.append(Array.from({ length: 250 }, (_, i) => ({ topic: "jobStatus", jobName: "j", payload: String(i) })));
      assert.equal(await store.events.prunedThrough(), 0);
      assert.equal(await store.events.prune({ maxAgeMs: 3_600_000, maxEvents: 100 }), 150);
      assert.equal(await store.events.prunedThrough(), 150);
      assert.equal((await store.events.read({ after: 0, limit: 1 }))[0].id, 151);
      await sleep(50);
      assert.equal(await store.events.prune({ maxAgeMs: 10, maxEvents: 1000 }), 100, "older than the age bound");
      assert.equal(await store.events.prunedThrough(), 250, "nothing left: every id up to the newest is gone");
      const [next] = await store.events.append([{ topic: "jobStatus", jobName: "j", payload: "after" }]);
      assert.equal(next.id, 251, "ids go on after a prune (cursors never repeat)");
    });

    test("an instance that hears nothing through Redis still delivers every event once, in order, from the log", async () => {
      const o = await engine.fresh();
      const sa = await Store.open({ databaseUrl: o.url, dataDir: o.dataDir });
      const sb = engine.name === "postgres" ? await Store.open({ databaseUrl: o.url, dataDir: o.dataDir }) : sa;
      cleanups.push(() => sa.close());
      if (sb !== sa) cleanups.push(() => sb.close());
      const a = new EventBus({ log: sa.events, pollMs: 50 });
      const b = new EventBus({ log: sb.events, pollMs: 50 });
      await Promise.all([a.start(), b.start()]);
      cleanups.push(() => a.close(), () => b.close());
      const got: number[] = [];
      const ids: number[] = [];
      const feed = b.watch({ topics: ["jobProgress"], jobName: null });
      feed.release(0);
      void (async () => {
        for await (const item of feed) {
          got.push((item.data as { job: TrainingJobRecord }).job.progress!.current);
          ids.push(item.id);
        }
      })();
      // Both publish, interleaved; b only learns of a's events from the log.
      for (let i = 1; i <= 200; i++) (i % 3 ? a : b).publish("jobProgress", { job: job("j", i) });
      await Promise.all([a.flush(), b.flush()]);
      await eventually(() => got.length >= 200, "every event on b", 20_000);
      await sleep(200);
      assert.equal(got.length, 200, "no event twice");
      assert.deepEqual([...got].sort((x, y) => x - y), Array.from({ length: 200 }, (_, i) => i + 1), "every event once");
      assert.deepEqual(ids, Array.from({ length: 200 }, (_, i) => i + 1), "in id order, without a hole");
      await feed.return();
    });
  });
}
