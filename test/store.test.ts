/**
 * The store's contract, run against both engines in every run: the embedded SQLite (node:sqlite) and
 * PostgreSQL (a database made and dropped by this run). Migrations, job records and name reservation,
 * rule attachments, summaries and history (paging, compaction, the lease fence), leases, instances,
 * and outages.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { sql } from "kysely";
import { Database, Store, SQLITE_FILE } from "../src/store/index.js";
import type { NewRule } from "../src/store/index.js";
import { MIGRATIONS, type Migration } from "../src/store/migrations.js";
import { openNodeSqlite } from "../src/store/node-sqlite.js";
import type { TrainingJobRecord } from "../src/store/records.js";
import { StartupError } from "../src/startup.js";
import { createTestDatabase, POSTGRES_ADMIN_URL, tcpProxy, type TestDatabase } from "./support/database.js";
import { expectError } from "./support/assertions.js";
import { freePort } from "./support/net.js";
import { sleep } from "./support/ws-events.js";

function job(name: string, over: Partial<TrainingJobRecord> = {}): TrainingJobRecord {
  return {
    name,
    arn: null,
    backend: "LOCAL",
    status: "IN_PROGRESS",
    secondaryStatus: "Starting",
    failureReason: null,
    createdAt: new Date("2026-01-01T00:00:00.000Z"),
    startedAt: null,
    endedAt: null,
    hyperparameters: { num_round: "10", eta: "0.2" },
    debugOutputPath: `jobs/${name}/debug-output`,
    ruleSummaries: [],
    progress: { current: 0, total: 10 },
    ...over,
  };
}

const rule = (name: string, at = new Date("2026-01-01T00:00:01.000Z")): NewRule => ({
  name, spec: { builtin: name, parameters: { num_steps: "10" } }, evaluator: "SERVICE", attachedAt: at, status: "IN_PROGRESS", statusDetails: "waiting",
});

interface Engine {
  name: "sqlite" | "postgres";
  /** A fresh, empty database's options (a new file, or a new PostgreSQL database). */
  fresh(): Promise<{ url: string | null; dataDir: string }>;
}

const cleanups: (() => Promise<void>)[] = [];

/**
 * Runs `body` (an async function body with Database and MIGRATIONS in scope) in `n` separate
 * processes started together, as several service instances would; resolves with each one's result.
 */
async function inProcesses(n: number, body: string): Promise<unknown[]> {
  const database = path.resolve(__dirname, "../src/store/database.ts");
  const migrations = path.resolve(__dirname, "../src/store/migrations.ts");
  const script = `
    const { Database } = require(${JSON.stringify(database)});
    const { MIGRATIONS } = require(${JSON.stringify(migrations)});
    (async () => { ${body} })().then((r) => { process.stdout.write(JSON.stringify(r ?? null)); process.exit(0); },
      (e) => { process.stderr.write(String(e && e.stack || e)); process.exit(1); });`;
  return Promise.all(Array.from({ length: n }, () => new Promise<unknown>((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "-e", script], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d));
    child.stderr.on("data", (d: Buffer) => (err += d));
    child.on("exit", (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`child exited ${code}: ${err}`))));
  })));
}
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

async function tempDir(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "tg-store-"));
  cleanups.push(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

const engines: Engine[] = [
  { name: "sqlite", fresh: async () => ({ url: null, dataDir: await tempDir() }) },
  {
    name: "postgres",
    fresh: async () => {
      const db: TestDatabase = await createTestDatabase("store");
      cleanups.push(() => db.drop());
      return { url: db.url, dataDir: await tempDir() };
    },
  },
];

for (const engine of engines) {
  describe(`store on ${engine.name}`, () => {
    let store: Store;
    before(async () => {
      const o = await engine.fresh();
      store = await Store.open({ databaseUrl: o.url, dataDir: o.dataDir });
      cleanups.push(() => store.close());
    });

    test("migrations run once, also when several instances open the database at once; a newer schema is refused", async () => {
      const o = await engine.fresh();
      const options = { url: o.url, sqliteFile: path.join(o.dataDir, SQLITE_FILE) };
      // Three instances (processes) open the empty database at the same moment.
      const applied = await inProcesses(3, `return (await Database.open(${JSON.stringify(options)})).appliedMigrations;`);
      const versions = MIGRATIONS.map((m) => m.version);
      const latest = Math.max(...versions);
      assert.deepEqual(applied.map((a) => JSON.stringify(a)).sort(), [JSON.stringify(versions), "[]", "[]"]);
      const d = await Database.open(options);
      try {
        assert.equal(d.engine, engine.name);
        assert.deepEqual(d.appliedMigrations, []);
        assert.deepEqual((await d.db.selectFrom("schema_migrations").select("version").orderBy("version").execute()).map((r) => Number(r.version)), versions);
        await d.db.insertInto("meta").values({ key: "k", value: "v" }).execute();
      } finally {
        await d.close();
      }
      // A later migration is applied by exactly one of the instances that start with it; the data stays.
      const next = latest + 1;
      const extra = `{ version: ${next}, name: "test column", up: (db) => db.schema.alterTable("meta").addColumn("note", "text").execute() }`;
      const second = await inProcesses(2, `return (await Database.open({ ...${JSON.stringify(options)}, migrations: [...MIGRATIONS, ${extra}] })).appliedMigrations;`);
      assert.deepEqual(second.map((a) => JSON.stringify(a)).sort(), [`[${next}]`, "[]"]);
      // This build knows only up to `latest`: it refuses the newer schema with a clear message.
      await assert.rejects(Database.open(options),
        (e: Error) => e instanceof StartupError && new RegExp(`schema is at version ${next}, newer than this build knows \\(${latest}\\)`).test(e.message));
      const reread = await Database.open({ ...options, migrations: [...MIGRATIONS, { version: next, name: "test column", up: async () => {} }] });
      assert.equal((await reread.db.selectFrom("meta").selectAll().where("key", "=", "k").executeTakeFirst())?.value, "v");
      await reread.close();
    });

    test("a job record round-trips; its name is taken once, by exactly one of concurrent creators", async () => {
      const record = job("rt-1", {
        arn: "arn:x", startedAt: new Date("2026-01-01T00:00:02.500Z"), failureReason: "why", progress: null,
        hyperparameters: { a: "1", "b/c": "x y" },
      });
      await store.jobs.create(record, { spec: { backend: "LOCAL", name: "rt-1" }, instanceId: "inst-1" });
      const got = (await store.jobs.get("rt-1"))!;
      assert.deepEqual(got.record, record);
      assert.deepEqual(got.spec, { backend: "LOCAL", name: "rt-1" });
      assert.equal(got.instanceId, "inst-1");
      assert.equal(await store.jobs.get("nope"), null);
      await expectError(store.jobs.create(job("rt-1")), "JOB_NAME_IN_USE");

      const racers = await Promise.allSettled(Array.from({ length: 8 }, (_, i) =>
        store.jobs.create(job("race-1", { secondaryStatus: `racer ${i}` }), { rules: [rule("LossNotDecreasing")] })));
      const won = racers.filter((r) => r.status === "fulfilled");
      assert.equal(won.length, 1);
      for (const r of racers) if (r.status === "rejected") assert.equal((r.reason as { code?: string }).code, "JOB_NAME_IN_USE");
      // The loser's rules were not written either: one attachment.
      assert.equal((await store.rules.forJob("race-1")).length, 1);

      await store.jobs.remove("race-1");
      assert.equal(await store.jobs.get("race-1"), null);
      assert.deepEqual(await store.rules.forJob("race-1"), []);
      // adopt() records a job only when it is unknown.
      await store.jobs.adopt(job("rt-1", { backend: "SAGEMAKER", status: "COMPLETED" }));
      assert.equal((await store.jobs.get("rt-1"))!.record.backend, "LOCAL");
    });

    test("pages newest first with cursors; filters by status and by name, case-insensitively and literally", async () => {
      const base = Date.parse("2030-01-01T00:00:00Z");
      for (const [i, n] of ["pg-alpha-1", "pg-beta-2", "pg-alpha-3", "pg-x%_4"].entries()) {
        await store.jobs.create(job(n, { createdAt: new Date(base + i * 1000), backend: "SAGEMAKER", status: i === 1 ? "FAILED" : "IN_PROGRESS" }));
      }
      // Two jobs at the same instant are ordered by name.
      await store.jobs.create(job("pg-same-a", { createdAt: new Date(base + 10_000), backend: "SAGEMAKER" }));
      await store.jobs.create(job("pg-same-b", { createdAt: new Date(base + 10_000), backend: "SAGEMAKER" }));
      const names: string[] = [];
      let after: string | null = null;
      for (let pages = 0; pages < 10; pages++) {
        const page = await store.jobs.list({ backend: "SAGEMAKER", first: 2, after });
        names.push(...page.nodes.map((n) => n.name));
        if (!page.hasNextPage) break;
        after = page.endCursor;
      }
      assert.deepEqual(names, ["pg-same-b", "pg-same-a", "pg-x%_4", "pg-alpha-3", "pg-beta-2", "pg-alpha-1"]);
      assert.deepEqual((await store.jobs.list({ backend: "SAGEMAKER", first: 10, nameContains: "ALPHA" })).nodes.map((n) => n.name), ["pg-alpha-3", "pg-alpha-1"]);
      assert.deepEqual((await store.jobs.list({ backend: "SAGEMAKER", first: 10, nameContains: "%_" })).nodes.map((n) => n.name), ["pg-x%_4"]);
      assert.deepEqual((await store.jobs.list({ backend: "SAGEMAKER", first: 10, nameContains: "a_p" })).nodes, []);
      assert.deepEqual((await store.jobs.list({ backend: "SAGEMAKER", first: 10, status: "FAILED" })).nodes.map((n) => n.name), ["pg-beta-2"]);
      await expectError(store.jobs.list({ backend: "SAGEMAKER", first: 0 }), "BAD_USER_INPUT");
      await expectError(store.jobs.list({ backend: "SAGEMAKER", first: 101 }), "BAD_USER_INPUT");
      await expectError(store.jobs.list({ backend: "SAGEMAKER", first: 1, after: "garbage" }), "BAD_USER_INPUT");
    });

    test("updates apply only while their condition holds", async () => {
      await store.jobs.create(job("upd-1"), { instanceId: "owner-a" });
      const moved = await store.jobs.update("upd-1", { secondaryStatus: "Training", progress: { current: 3, total: 10 }, startedAt: new Date(5000) }, { statusIn: ["IN_PROGRESS"], instanceId: "owner-a" });
      assert.equal(moved?.secondaryStatus, "Training");
      assert.deepEqual(moved?.progress, { current: 3, total: 10 });
      assert.equal(await store.jobs.update("upd-1", { status: "COMPLETED" }, { instanceId: "owner-b" }), null, "another instance's job");
      assert.ok(await store.jobs.update("upd-1", { status: "STOPPING" }, { statusIn: ["IN_PROGRESS"] }));
      assert.equal(await store.jobs.update("upd-1", { status: "COMPLETED" }, { statusIn: ["IN_PROGRESS"] }), null, "a stale writer");
      const done = await store.jobs.update("upd-1", { status: "STOPPED", endedAt: new Date(9000), progress: null });
      assert.equal(done?.status, "STOPPED");
      assert.equal(done?.progress, null);
      assert.equal(await store.jobs.update("missing", { status: "FAILED" }), null);
      assert.deepEqual((await store.jobs.unfinishedOf("owner-a")).map((j) => j.name), []);
    });

    test("rules: attachments in order, summaries with extra fields, the lease fence, history paging and compaction", async () => {
      const leases = store.leases("holder", 60_000);
      const lease = "rules:rj-1";
      await store.jobs.create(job("rj-1", { debugOutputPath: "s3://b/rj-1/debug-output" }), { rules: [rule("LossNotDecreasing"), rule("Overfit")] });
      await store.rules.attach("rj-1", [rule("TreeDepth")]);
      await expectError(store.rules.attach("rj-1", [rule("Overfit")]), "BAD_USER_INPUT");
      const stored = await store.rules.forJob("rj-1");
      assert.deepEqual(stored.map((r) => r.summary.ruleConfigurationName), ["LossNotDecreasing", "Overfit", "TreeDepth"]);
      assert.deepEqual(stored[0].spec, { builtin: "LossNotDecreasing", parameters: { num_steps: "10" } });
      const open = (await store.rules.open()).filter((r) => r.jobName === "rj-1");
      assert.deepEqual(open.map((r) => [r.summary.ruleConfigurationName, r.backend, r.jobStatus, r.trialPath]),
        ["LossNotDecreasing", "Overfit", "TreeDepth"].map((n) => [n, "LOCAL", "IN_PROGRESS", "s3://b/rj-1/debug-output"]));

      const t = (s: number) => new Date(Date.parse("2026-02-01T00:00:00Z") + s * 1000);
      const fired = {
        ruleConfigurationName: "Overfit", ruleEvaluationJobArn: null, status: "ISSUES_FOUND" as const,
        statusDetails: "found at step 7", lastModifiedTime: t(7), evaluator: "SERVICE" as const,
        findings: [{ step: 7, mode: "GLOBAL" as const, modeStep: 7, tensorNames: ["train-rmse"], message: "m" }],
      };
      // Without the lease nothing is written.
      assert.equal(await store.rules.record("rj-1", { lease, owner: "holder" }, [{ summary: fired, finished: false }], []), false);
      assert.equal((await store.rules.forJob("rj-1"))[1].summary.status, "IN_PROGRESS");
      assert.equal(await leases.acquire(lease), true);
      const entries = Array.from({ length: 30 }, (_, s) => ({
        ruleName: "Overfit", step: s, status: (s >= 7 ? "ISSUES_FOUND" : "IN_PROGRESS") as "ISSUES_FOUND" | "IN_PROGRESS",
        message: s === 7 ? "found" : "no issue", time: t(s), statusChange: s === 0 || s === 7,
      }));
      assert.equal(await store.rules.record("rj-1", { lease, owner: "holder" }, [{ summary: fired, finished: false }], entries), true);
      const summaries = (await store.rules.summaries(["rj-1", "unknown"])).get("rj-1")!;
      assert.deepEqual(summaries[1], fired, "extra summary fields (findings) are kept whole");
      assert.equal((await store.rules.summaries(["unknown"])).size, 0);

      // Paging, oldest first.
      const seen: (number | null)[] = [];
      let after: string | null = null;
      for (;;) {
        const page = await store.rules.evaluations("rj-1", "Overfit", { first: 7, after });
        seen.push(...page.nodes.map((n) => n.step));
        if (!page.hasNextPage) break;
        after = page.endCursor;
      }
      assert.deepEqual(seen, Array.from({ length: 30 }, (_, s) => s));
      const first = (await store.rules.evaluations("rj-1", "Overfit", { first: 1 })).nodes[0];
      assert.deepEqual({ ...first, id: 0 }, { id: 0, step: 0, status: "IN_PROGRESS", message: "no issue", time: t(0) });
      await expectError(store.rules.evaluations("rj-1", "Overfit", { first: 1, after: "nope" }), "BAD_USER_INPUT");
      await expectError(store.rules.evaluations("rj-1", "Overfit", { first: 0 }), "BAD_USER_INPUT");
      assert.deepEqual(await store.rules.lastEvaluations("rj-1"), new Map([["Overfit", { step: 29, status: "ISSUES_FOUND" }]]));

      // Compaction keeps every status change plus the newest 5 entries.
      assert.equal(await store.rules.record("rj-1", { lease, owner: "holder" }, [], [], [{ ruleName: "Overfit", keep: 5 }]), true);
      const kept = (await store.rules.evaluations("rj-1", "Overfit", { first: 100 })).nodes.map((n) => n.step);
      assert.deepEqual(kept, [0, 7, 25, 26, 27, 28, 29]);

      // A finished rule is final: later writes do not change it, and it is no longer open.
      const final = { ...fired, statusDetails: "final" };
      await store.rules.record("rj-1", { lease, owner: "holder" }, [{ summary: final, finished: true }], []);
      await store.rules.record("rj-1", { lease, owner: "holder" }, [{ summary: { ...final, status: "ERROR" }, finished: true }], []);
      const after2 = await store.rules.forJob("rj-1");
      assert.equal(after2[1].summary.status, "ISSUES_FOUND");
      assert.equal(after2[1].finished, true);
      assert.deepEqual((await store.rules.open()).filter((r) => r.jobName === "rj-1").map((r) => r.summary.ruleConfigurationName), ["LossNotDecreasing", "TreeDepth"]);

      // Another owner, or an expired lease, fences writes out.
      await leases.release(lease);
      const other = store.leases("other", 60_000);
      assert.equal(await other.acquire(lease), true);
      assert.equal(await store.rules.record("rj-1", { lease, owner: "holder" }, [{ summary: { ...fired, ruleConfigurationName: "TreeDepth" }, finished: false }], []), false);
    });

    test("leases: one holder; renew and release by the owner only; free again after expiry (database clock)", async () => {
      const one = store.leases("one", 400);
      const two = store.leases("two", 400);
      const key = "test:lease-a";
      const results = await Promise.all([one.acquire(key), two.acquire(key), one.acquire(key), two.acquire(key)]);
      assert.equal(new Set([await one.holder(key)]).size, 1);
      const holder = await one.holder(key);
      const [mine, theirs] = holder === "one" ? [one, two] : [two, one];
      assert.ok(results.some(Boolean));
      assert.equal(await theirs.acquire(key), false);
      assert.equal(await theirs.renew(key), false);
      await theirs.release(key);
      assert.equal(await mine.holder(key), mine.owner, "a non-owner cannot release");
      assert.equal(await mine.renew(key), true);
      assert.deepEqual(await mine.renewAll("test:"), new Set([key]));
      assert.deepEqual(await theirs.renewAll("test:"), new Set());
      await mine.release(key);
      assert.equal(await mine.holder(key), null);
      assert.equal(await theirs.acquire(key), true);
      // Unrenewed, it expires and can be taken.
      await sleep(500);
      assert.equal(await theirs.holder(key), null);
      assert.equal(await mine.acquire(key), true);
      assert.equal(await theirs.renew(key), false);
    });

    test("instances: heartbeats, silence measured by the database, a dead one's work ended once", async () => {
      await store.instances.register("alive", "host-a", 111);
      await store.instances.register("dead", "host-b", 222);
      await store.jobs.create(job("dead-running"), { instanceId: "dead", rules: [rule("LossNotDecreasing"), rule("Overfit")] });
      await store.jobs.create(job("dead-stopping", { status: "STOPPING" }), { instanceId: "dead" });
      await store.jobs.create(job("dead-done", { status: "COMPLETED" }), { instanceId: "dead" });
      await store.jobs.create(job("alive-running"), { instanceId: "alive" });
      const deadLeases = store.leases("dead", 60_000);
      await deadLeases.acquire("rules:dead-running");
      // One rule had already fired: it keeps its status.
      await store.rules.record("dead-running", { lease: "rules:dead-running", owner: "dead" }, [{
        summary: { ruleConfigurationName: "Overfit", ruleEvaluationJobArn: null, status: "ISSUES_FOUND", statusDetails: "x", lastModifiedTime: new Date(), evaluator: "SERVICE", findings: [] },
        finished: false,
      }], []);
      await sleep(150);
      assert.equal(await store.instances.heartbeat("alive"), true);
      const listed = await store.instances.list();
      const byId = new Map(listed.map((i) => [i.id, i]));
      assert.ok(byId.get("dead")!.silentMs >= 100, JSON.stringify(listed));
      assert.ok(byId.get("alive")!.silentMs < byId.get("dead")!.silentMs);
      assert.equal(byId.get("dead")!.pid, 222);

      const now = new Date("2026-03-03T00:00:00Z");
      const ended = await store.instances.endInstance("dead", { failureReason: "its instance died", ruleDetails: "stopped: instance died" }, now);
      assert.deepEqual(ended.jobs.map((j) => [j.record.name, j.previousStatus, j.record.status, j.record.failureReason]).sort(), [
        ["dead-running", "IN_PROGRESS", "FAILED", "its instance died"],
        ["dead-stopping", "STOPPING", "STOPPED", null],
      ]);
      assert.deepEqual(ended.rules.map((r) => [r.jobName, r.summary.ruleConfigurationName, r.previousStatus, r.summary.status]), [["dead-running", "LossNotDecreasing", "IN_PROGRESS", "STOPPED"]]);
      assert.equal((await store.jobs.get("dead-running"))!.record.endedAt?.getTime(), now.getTime());
      const rules = await store.rules.forJob("dead-running");
      assert.deepEqual(rules.map((r) => [r.summary.status, r.finished]), [["STOPPED", true], ["ISSUES_FOUND", true]]);
      assert.equal(await deadLeases.holder("rules:dead-running"), null, "its leases are free");
      assert.equal(await store.instances.heartbeat("dead"), false, "it is no longer registered");
      assert.deepEqual(await store.instances.endInstance("dead", { failureReason: "again", ruleDetails: "again" }, now), { jobs: [], rules: [] });
      assert.equal((await store.jobs.get("alive-running"))!.record.status, "IN_PROGRESS");
      assert.equal((await store.jobs.get("dead-done"))!.record.status, "COMPLETED");
      await store.instances.deregister("alive");
      assert.deepEqual((await store.instances.list()).map((i) => i.id).filter((id) => id === "alive"), []);
    });

    test("old job records are imported once: added in one transaction, known jobs kept, a second import does nothing", async () => {
      await store.jobs.create(job("imp-known", { status: "COMPLETED", secondaryStatus: "Completed" }));
      const imported = [
        { record: job("imp-known", { status: "FAILED" }), rules: [] },
        {
          record: job("imp-new", { status: "COMPLETED" }),
          rules: [{ ruleConfigurationName: "LossNotDecreasing", ruleEvaluationJobArn: null, status: "ISSUES_FOUND" as const, statusDetails: "d", lastModifiedTime: new Date(1234), evaluator: "SERVICE" as const,
            findings: [{ step: 30, mode: "GLOBAL" as const, modeStep: 30, tensorNames: ["validation-rmse"], message: "m" }] }],
        },
      ];
      assert.equal(await store.jobs.importOnce("import:test", imported), 1);
      assert.equal((await store.jobs.get("imp-known"))!.record.status, "COMPLETED");
      const summaries = (await store.rules.summaries(["imp-new"])).get("imp-new")!;
      assert.deepEqual(summaries, imported[1].rules);
      assert.equal(await store.jobs.importOnce("import:test", [{ record: job("imp-later"), rules: [] }]), null);
      assert.equal(await store.jobs.get("imp-later"), null);
    });
  });
}

describe("node:sqlite as Kysely's SQLite driver", () => {
  test("binds booleans, undefined and dates; tells readers (RETURNING too) from writes; reuses statements", async () => {
    const dir = await tempDir();
    const db = openNodeSqlite(path.join(dir, "a.db"), { statementCacheSize: 2 });
    try {
      db.prepare("create table t (a integer, b text)").run([]);
      const insert = db.prepare("insert into t (a, b) values (?, ?)");
      assert.equal(insert.reader, false);
      assert.equal(Number(insert.run([true, undefined]).changes), 1);
      insert.run([new Date(42), "x"]);
      const returning = db.prepare("insert into t (a, b) values (?, ?) returning a");
      assert.equal(returning.reader, true);
      assert.deepEqual(returning.all([false, "y"]).map((r) => ({ ...(r as object) })), [{ a: 0 }]);
      assert.deepEqual(db.prepare("select a, b from t order by rowid").all([]).map((r) => ({ ...(r as object) })), [
        { a: 1, b: null }, { a: 42, b: "x" }, { a: 0, b: "y" },
      ]);
      assert.deepEqual([...db.prepare("select count(*) as n from t").iterate([])].map((r) => ({ ...(r as object) })), [{ n: 3 }]);
      // More statements than the cache holds still work.
      for (let i = 0; i < 5; i++) assert.equal((db.prepare(`select ${i} as v`).all([])[0] as { v: number }).v, i);
    } finally {
      db.close();
    }
  });

  test("two processes writing one file queue on the write lock instead of failing", async () => {
    const dir = await tempDir();
    const options = { url: null, sqliteFile: path.join(dir, SQLITE_FILE) };
    (await Database.open(options)).close();
    // Each process reads, waits, then writes in one transaction: BEGIN IMMEDIATE makes the other wait.
    const seen = await inProcesses(2, `
      const d = await Database.open(${JSON.stringify(options)});
      const n = await d.tx(async (db) => {
        const n = (await db.selectFrom("meta").selectAll().execute()).length;
        await new Promise((r) => setTimeout(r, 150));
        await db.insertInto("meta").values({ key: "k" + process.pid, value: String(n) }).execute();
        return n;
      });
      await d.close();
      return n;`);
    assert.deepEqual(seen.map(Number).sort(), [0, 1], "the second transaction saw the first one's row");
    const d = await Database.open(options);
    assert.equal((await sql<{ journal_mode: string }>`pragma journal_mode`.execute(d.db)).rows[0].journal_mode, "wal");
    await d.close();
  });
});

describe("outages and start-up", () => {
  test("PostgreSQL cut off: DATABASE_UNAVAILABLE, then it works again by itself", async () => {
    const db = await createTestDatabase("outage");
    cleanups.push(() => db.drop());
    const proxy = await tcpProxy(Number(new URL(POSTGRES_ADMIN_URL).port || 5432));
    cleanups.push(() => proxy.close());
    const store = await Store.open({ databaseUrl: proxy.url(db.url), dataDir: await tempDir() });
    try {
      await store.jobs.create(job("out-1"));
      proxy.cut();
      await expectError(store.jobs.get("out-1"), "DATABASE_UNAVAILABLE");
      await expectError(store.jobs.create(job("out-2")), "DATABASE_UNAVAILABLE");
      assert.equal(store.database.available, false);
      proxy.restore();
      assert.equal((await store.jobs.get("out-1"))!.record.name, "out-1");
      assert.equal(store.database.available, true);
      assert.equal(await store.jobs.get("out-2"), null, "the failed write did not happen");
    } finally {
      await store.close();
    }
  });

  test("SQLite locked by another connection beyond the busy timeout: DATABASE_UNAVAILABLE", async () => {
    const dir = await tempDir();
    const store = await Store.open({ databaseUrl: null, dataDir: dir });
    const blocker = openNodeSqlite(path.join(dir, SQLITE_FILE));
    try {
      const short = await Database.open({ url: null, sqliteFile: path.join(dir, SQLITE_FILE), connectTimeoutMs: 100 });
      blocker.raw.exec("begin immediate");
      await expectError(short.tx((db) => db.insertInto("meta").values({ key: "x", value: "y" }).execute()), "DATABASE_UNAVAILABLE");
      blocker.raw.exec("commit");
      await short.tx((db) => db.insertInto("meta").values({ key: "x", value: "y" }).execute());
      await short.close();
    } finally {
      blocker.close();
      await store.close();
    }
  });

  test("a database that cannot be reached at start is one line naming it, without the password", async () => {
    const port = await freePort();
    const url = `postgres://alice:s3cret-pw@127.0.0.1:${port}/trialgraph?sslpassword=alsosecret&application_name=x`;
    await assert.rejects(Store.open({ databaseUrl: url, dataDir: await tempDir() }), (e: Error) => {
      assert.ok(e instanceof StartupError, String(e));
      assert.doesNotMatch(e.message, /s3cret|alsosecret/);
      assert.match(e.message, new RegExp(`cannot reach the database at postgres://alice:\\*\\*\\*@127\\.0\\.0\\.1:${port}/trialgraph`));
      assert.match(e.message, /ECONNREFUSED/);
      assert.doesNotMatch(e.message, /\n/);
      return true;
    });
  });
});
