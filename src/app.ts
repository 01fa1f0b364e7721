/**
 * Assembles the long-lived services from the configuration: trials, events, jobs, rules.
 * Everything with a lifetime is closed by `close()`.
 */
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { Config } from "./config.js";
import { checkS3Bucket, TrialRegistry } from "./trials/trial-registry.js";
import { TrialPaths } from "./trials/trial-paths.js";
import { ensureExampleTrial, EXAMPLE_TRIAL_PATH } from "./trials/example-trial.js";
import { EventBus } from "./events/event-bus.js";
import { TrialFollower } from "./events/trial-follower.js";
import { JobService } from "./jobs/job-service.js";
import { JobWatcher, watchJobsStartedBy } from "./jobs/job-watcher.js";
import type { Backend, TrainingJobBackend } from "./jobs/types.js";
import type { SageMakerBackend } from "./jobs/sagemaker/backend.js";
import { LocalBackend, type LocalJobEvent } from "./jobs/local/local-backend.js";
import { importDataFolderJobs } from "./jobs/local/import-data-folder.js";
import { InstanceMonitor } from "./jobs/instance-monitor.js";
import { Store } from "./store/index.js";
import type { SageMakerClient } from "@aws-sdk/client-sagemaker";
import { JobRules } from "./jobs/job-rules.js";
import { RuleRegistry } from "./rules/index.js";
import { createS3Client, LazyS3Client, parseS3Uri, s3Sdk } from "./storage/s3-client.js";
import { S3Source } from "./storage/s3-source.js";
import type { Services } from "./graphql/context.js";
import { checkDataDirWritable, redactUrl } from "./startup.js";
import { MemoryPool } from "./trials/budget.js";

export interface App {
  services: Services;
  /** The service's database (job records, rules, history, instances, leases). */
  store: Store;
  /** This instance's id among those sharing the database. */
  instanceId: string;
  /** The shared clients, for readiness checks and metrics middleware (server.ts). */
  clients: { s3: LazyS3Client; sagemaker: SageMakerClient | null };
  close(): Promise<void>;
}

export async function createApp(config: Config, log: Logger): Promise<App> {
  await checkDataDirWritable(config.dataDir);
  try {
    if (await ensureExampleTrial(config.dataDir)) log.info({ path: EXAMPLE_TRIAL_PATH }, "wrote the example trial");
  } catch (e) {
    log.warn({ err: e }, "the example trial was not written");
  }
  // The database comes first: without it the service cannot keep what it is asked to do (a StartupError).
  const store = await Store.open({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, log });
  try {
    return await assemble(config, log, store);
  } catch (e) {
    await store.close().catch(() => undefined);
    throw e;
  }
}

async function assemble(config: Config, log: Logger, store: Store): Promise<App> {
  const instanceId = randomUUID();
  const imported = await importDataFolderJobs(store.jobs, config.dataDir);
  if (imported) log.info({ jobs: imported, database: store.database.location }, "imported the data folder's job records into the database");

  const s3 = new LazyS3Client(() => createS3Client({ endpoint: config.s3Endpoint ?? undefined, region: config.region, maxSockets: config.s3MaxConcurrency, requestTimeoutMs: config.ops.s3TimeoutMs }));
  const trials = new TrialRegistry({
    dataDir: config.dataDir,
    valueCacheBytes: config.valueCacheBytes,
    s3AllowedBuckets: config.exposure.s3AllowedBuckets,
    s3Source: (uri) => {
      const loc = parseS3Uri(uri);
      return new S3Source({ client: s3.get(), bucket: loc.bucket, prefix: loc.prefix });
    },
  });

  // Redis away at start is not fatal (as when it drops later): one warning, and /readyz reports it.
  const redis = config.redisUrl ? redactUrl(config.redisUrl) : null;
  let redisSeen = false;
  // Job trials are known through the job service, made below.
  const trialPaths = new TrialPaths(trials, async () =>
    (await jobs.list({ first: 100, backend: "LOCAL" })).nodes.map((j) => j.debugOutputPath).filter((p): p is string => !!p));

  let appendErrorLogged = false;
  const events = new EventBus({
    redisUrl: config.redisUrl,
    prefix: config.redisPrefix,
    // The log is in the service's database: shared by every instance and durable (see store/event-log.ts).
    log: store.events,
    retention: { maxAgeMs: config.eventRetentionMs, maxEvents: config.eventRetentionCount },
    pollMs: Math.min(1000, config.pollIntervalMs),
    onForeignEvents: () => log.warn({ redis, prefix: config.redisPrefix }, "events from instances on another database arrive on this Redis prefix; they are ignored: instances that share Redis must share TRIALGRAPH_DATABASE_URL (or use their own TRIALGRAPH_REDIS_PREFIX)"),
    onAppendError: (e, waiting) => {
      if (appendErrorLogged) return;
      appendErrorLogged = true;
      log.warn({ err: e, waiting }, "events wait for the database (their log); they are delivered when it returns");
      setTimeout(() => (appendErrorLogged = false), 60_000).unref();
    },
    onRedisStateChange: (up, error) => {
      if (up) log.info({ redis }, "redis connected: events reach every instance");
      else if (redisSeen) log.warn({ redis, reason: error }, "redis unavailable: events reach this instance only until it returns");
      else log.warn({ redis }, `redis ${redis} is unreachable (${error ?? "no connection"}): started without it, events reach this instance only until it answers`);
      redisSeen ||= up;
    },
  });
  await events.start();
  const follower = new TrialFollower(events, Math.min(config.pollIntervalMs, 2000), (path, e) => log.warn({ path, err: e }, "refreshing a followed trial failed"));

  const backends: Partial<Record<Backend, TrainingJobBackend>> = {};
  // The SageMaker SDK (~50 MB of RSS, ~0.4 s to load) is loaded only when SageMaker is enabled.
  const sagemaker: SageMakerBackend | null = config.sagemakerEnabled
    ? new (await import("./jobs/sagemaker/backend.js")).SageMakerBackend({
        region: config.region,
        endpoint: config.sagemakerEndpoint ?? undefined,
        roleArn: config.sagemakerRoleArn ?? undefined,
        outputPath: config.sagemakerOutputPath ?? undefined,
        requestTimeoutMs: config.ops.sagemakerTimeoutMs,
        records: store.jobs,
      })
    : null;
  if (sagemaker) backends.SAGEMAKER = sagemaker;

  const ruleRegistry = await RuleRegistry.load(config.rulesDir, { evaluationTimeoutMs: config.rules.evaluationTimeoutMs, memoryMb: config.rules.memoryMb });
  for (const e of ruleRegistry.errors) log.warn({ rule: e }, "a custom rule failed to load");
  const rules: JobRules = new JobRules({
    trials,
    trialPaths,
    events,
    registry: ruleRegistry.registry,
    log,
    webhookUrl: config.webhookUrl,
    webhookAllowedHosts: config.exposure.webhookAllowedHosts,
    customRuleQueries: config.rules.queryWorkers,
    pollIntervalMs: config.pollIntervalMs,
    rules: store.rules,
    jobs: store.jobs,
    leases: store.leases(instanceId, config.leaseMs),
    historyLimit: config.ruleHistoryLimit,
    watchJob: (name) => watchJob?.(name) ?? (() => {}),
    trainsHere: (name) => local.runsHere(name),
  });

  const onLocalEvent = (e: LocalJobEvent) => {
    if (e.type === "status") events.publish("jobStatus", { job: e.job, previousStatus: e.previousStatus });
    else if (e.type === "progress") events.publish("jobProgress", { job: e.job });
    else if (e.type === "steps" || e.type === "ended") {
      follower.poke(e.trialPath);
      if (e.type === "steps") void rules.step(e.jobName);
    }
  };
  const local = new LocalBackend({
    dataDir: config.dataDir,
    store: store.jobs,
    instanceId,
    maxConcurrentJobs: config.maxLocalJobs,
    onEvent: (e) => onLocalEvent(e),
    xgboostLibPath: config.xgboostLib,
    log,
    checkS3Input: (uri, field) => checkS3Bucket(uri, config.exposure.s3AllowedBuckets, field),
    fetchS3Object: async (uri) => {
      checkS3Bucket(uri, config.exposure.s3AllowedBuckets, "inputs.uri");
      const loc = parseS3Uri(uri, "inputs.uri");
      const res = await s3.get().send(new (s3Sdk().GetObjectCommand)({ Bucket: loc.bucket, Key: loc.prefix.replace(/\/$/, "") }));
      return Buffer.from(await res.Body!.transformToByteArray());
    },
    putS3Object: async (uri, body) => {
      const loc = parseS3Uri(uri);
      await s3.get().send(new (s3Sdk().PutObjectCommand)({ Bucket: loc.bucket, Key: loc.prefix.replace(/\/$/, ""), Body: body }));
    },
  });
  // A stop request made on another instance reaches the one training the job as a STOPPING event.
  const stopRequests = events.subscribe("jobStatus");
  void (async () => {
    for await (const e of stopRequests) {
      if (e.job.backend === "LOCAL" && e.job.status === "STOPPING") local.noticeStopRequest(e.job.name);
    }
  })();
  const monitor = new InstanceMonitor({
    instances: store.instances,
    events,
    instanceId,
    leaseMs: config.leaseMs,
    log,
    onDeclaredDead: () => local.abandonAll(),
  });
  // Registers, and ends what a predecessor on this machine left running, before rules are supervised.
  await monitor.start();
  const xgboostProblem = local.libraryProblem();
  if (xgboostProblem) log.warn(`local jobs will fail: ${xgboostProblem}`);
  backends.LOCAL = local;
  const jobs = new JobService(backends, config.sagemakerEnabled ? "SAGEMAKER" : "LOCAL");
  rules.attachJobService(jobs);
  jobs.useRules(rules);
  // SageMaker jobs are polled (one poller per job across instances, via Redis leases); local jobs publish directly.
  const watcher: JobWatcher | null = sagemaker
    ? new JobWatcher({
        events,
        describe: (name) => sagemaker.describe(name),
        intervalMs: config.pollIntervalMs,
        redis: events.commandClient(),
        prefix: config.redisPrefix,
        owner: events.origin,
        log,
      })
    : null;
  if (watcher) watchJobsStartedBy(jobs, watcher);
  const watchJob: ((name: string) => () => void) | undefined = watcher
    ? (name: string) => {
        // A subscription to a local job needs no polling: the local backend publishes its events.
        let release: (() => void) | null = null;
        let released = false;
        void local.describe(name).then(
          (localJob) => { if (!localJob && !released) release = watcher.watch(name); },
          () => { if (!released) release = watcher.watch(name); },
        );
        return () => {
          released = true;
          release?.();
        };
      }
    : undefined;

  const services: Services = {
    config,
    trials,
    trialPaths,
    jobs,
    rules,
    events,
    log,
    memory: new MemoryPool(config.limits.maxInflightBytes),
    followTrial: (trial) => follower.follow(trial),
    jobForTrial: (p) => store.jobs.byTrialPath(p),
    watchJob,
  };
  return {
    services,
    store,
    instanceId,
    clients: { s3, sagemaker: sagemaker?.client ?? null },
    async close() {
      follower.close();
      // Evaluations write what they have and hand their leases back; local jobs end STOPPED; then
      // this instance leaves the registry.
      await rules.close();
      await local.close();
      await stopRequests.return?.();
      await watcher?.close();
      await monitor.close();
      await events.close();
      sagemaker?.close();
      s3.destroy();
      await store.close();
    },
  };
}
