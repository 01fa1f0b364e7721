/**
 * A local SageMaker endpoint speaking AWS JSON 1.1 the way @aws-sdk/client-sagemaker calls it
 * (POST /, X-Amz-Target: SageMaker.<Operation>, application/x-amz-json-1.1), for
 * CreateTrainingJob, DescribeTrainingJob, StopTrainingJob and ListTrainingJobs.
 *
 * Jobs follow a scripted timeline of stages. By default a job moves one stage per DescribeTrainingJob
 * call for that job (the n-th describe, counted from 0, shows stage floor(n / describesPerStage)), or
 * only when the test calls advance(). The default timeline is the lab's: the job goes
 * Starting → Downloading → Training → Uploading → Completed while its rules are still InProgress, and
 * one stage later every rule reports IssuesFound.
 *
 * Faults (errors, slow answers) are queued with fail() and consumed by matching requests, so retries by
 * the SDK are visible in `requests`.
 *
 *   const sm = await startSageMakerEndpoint({ port: 0 });
 *   const client = new SageMakerClient({ endpoint: sm.url, region: "us-east-1", credentials: sm.credentials });
 *   sm.fail({ operation: "DescribeTrainingJob", type: "ThrottlingException", times: 2 });
 *   sm.count("DescribeTrainingJob", "my-job");
 *   await sm.close();
 */
import { createHash, randomUUID } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export type JobStatus = "InProgress" | "Completed" | "Failed" | "Stopping" | "Stopped";
export type RuleStatus = "InProgress" | "NoIssuesFound" | "IssuesFound" | "Error" | "Stopping" | "Stopped";

export interface JobStage {
  status: JobStatus;
  secondaryStatus: string;
  failureReason?: string;
  /** Rule evaluation status by RuleConfigurationName; "*" applies to every rule not named. Omitted: unchanged. */
  rules?: Record<string, RuleStatus>;
  /** StatusDetails by rule name ("*" for all); defaults describe the status. */
  ruleDetails?: Record<string, string>;
}

export interface JobScript {
  stages: JobStage[];
  /** "describe" (default): advance every `describesPerStage` describes of the job. "manual": only advance(). */
  advanceOn?: "describe" | "manual";
  describesPerStage?: number;
}

export interface Fault {
  /** Operation name, e.g. "DescribeTrainingJob"; any operation when absent. */
  operation?: string;
  /** Only requests naming this job (TrainingJobName). */
  jobName?: string;
  /** How many matching requests this fault answers (default 1; Infinity for all). */
  times?: number;
  /** Wait this long before answering (for client timeouts). */
  delayMs?: number;
  /** Error `__type` to answer with; without it the request is served normally after the delay. */
  type?: string;
  /** HTTP status for the error (default 400, or 500 for InternalFailure/ServiceUnavailable types). */
  status?: number;
  message?: string;
}

export interface RecordedRequest {
  operation: string;
  target: string;
  body: any;
  headers: IncomingHttpHeaders;
  /** What the endpoint answered: HTTP status and error type (if any). */
  answer?: { status: number; errorType?: string };
}

export interface SeedJob {
  name: string;
  status?: JobStatus;
  secondaryStatus?: string;
  creationTime?: Date;
  failureReason?: string;
  /** Extra CreateTrainingJob request fields to echo (HyperParameters, DebugHookConfig, ...). */
  request?: Record<string, any>;
  /** Rule statuses for the seeded job's DebugRuleConfigurations. */
  rules?: Record<string, RuleStatus>;
}

interface JobState {
  name: string;
  arn: string;
  region: string;
  request: Record<string, any>;
  script: Required<JobScript>;
  stageIndex: number;
  describesInStage: number;
  creationTime: Date;
  trainingStartTime?: Date;
  trainingEndTime?: Date;
  lastModifiedTime: Date;
  transitions: { Status: string; StartTime: Date; EndTime?: Date; StatusMessage?: string }[];
  ruleStatuses: Map<string, { status: RuleStatus; details?: string; lastModified: Date }>;
}

export interface SageMakerEndpoint {
  url: string;
  port: number;
  /** Fake static credentials for the SDK client (the endpoint does not verify signatures). */
  credentials: { accessKeyId: string; secretAccessKey: string };
  requests: RecordedRequest[];
  /** Requests for an operation (and job), retries included. */
  count(operation: string, jobName?: string): number;
  /** Timeline for jobs created later whose name matches (exact string, RegExp, or "*" for all); the last match wins. */
  script(match: string | RegExp, script: JobScript): void;
  /** Queue a fault for matching requests. */
  fail(fault: Fault): void;
  /** Drop queued faults that have not fired. */
  clearFaults(): void;
  /** Move a job `steps` stages on (bounded by its last stage). */
  advance(jobName: string, steps?: number): void;
  /** Jump a job to the last stage of its timeline. */
  finish(jobName: string): void;
  /** Add a job without CreateTrainingJob (for listing). */
  seed(job: SeedJob): void;
  /** A job's current stage and the CreateTrainingJob request it was made with. */
  job(jobName: string): { stage: JobStage; stageIndex: number; request: Record<string, any> } | null;
  jobNames(): string[];
  close(): Promise<void>;
}

export interface EndpointOptions {
  port?: number;
  host?: string;
  /** Timeline for jobs no script() matches. */
  defaultScript?: JobScript;
  accountId?: string;
}

/** The lab's timeline: the job completes while rules still run; rules then find issues. */
export function labTimeline(finalRuleStatus: RuleStatus = "IssuesFound"): JobStage[] {
  return [
    { status: "InProgress", secondaryStatus: "Starting", rules: { "*": "InProgress" } },
    { status: "InProgress", secondaryStatus: "Downloading" },
    { status: "InProgress", secondaryStatus: "Training" },
    { status: "InProgress", secondaryStatus: "Uploading" },
    { status: "Completed", secondaryStatus: "Completed" },
    { status: "Completed", secondaryStatus: "Completed", rules: { "*": finalRuleStatus } },
  ];
}

const JOB_NAME = /^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/;
const TERMINAL: ReadonlySet<string> = new Set(["Completed", "Failed", "Stopped"]);
const epochSeconds = (d: Date | undefined) => (d ? d.getTime() / 1000 : undefined);

class AwsError extends Error {
  constructor(readonly type: string, message: string, readonly status = 400) { super(message); }
}

function defaultRuleDetails(rule: string, status: RuleStatus): string | undefined {
  if (status === "IssuesFound") {
    return `RuleEvaluationConditionMet: Evaluation of the rule ${rule} at step 10 resulted in the condition being met\n`;
  }
  if (status === "Error") return "ClientError: No debugging data was saved by the training job.";
  return undefined;
}

export async function startSageMakerEndpoint(options: EndpointOptions = {}): Promise<SageMakerEndpoint> {
  const accountId = options.accountId ?? "123456789012";
  const jobs = new Map<string, JobState>();
  const requests: RecordedRequest[] = [];
  const scripts: { match: string | RegExp; script: JobScript }[] = [];
  let faults: (Fault & { remaining: number })[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const defaultScript: JobScript = options.defaultScript ?? { stages: labTimeline() };

  const scriptFor = (name: string): Required<JobScript> => {
    let chosen = defaultScript;
    for (const { match, script } of scripts) {
      if (match === "*" || (typeof match === "string" ? match === name : match.test(name))) chosen = script;
    }
    if (chosen.stages.length === 0) throw new Error("a job script needs at least one stage");
    return {
      stages: chosen.stages.map((s) => ({ ...s })),
      advanceOn: chosen.advanceOn ?? "describe",
      describesPerStage: chosen.describesPerStage ?? 1,
    };
  };

  const ruleNames = (job: JobState): string[] =>
    (job.request.DebugRuleConfigurations ?? []).map((r: any) => r.RuleConfigurationName as string);

  /** Apply stage `index` to the job's derived state (timestamps, transitions, rule statuses). */
  const enterStage = (job: JobState, index: number, now = new Date()) => {
    job.stageIndex = index;
    job.describesInStage = 0;
    const stage = job.script.stages[index];
    const last = job.transitions[job.transitions.length - 1];
    if (!last || last.Status !== stage.secondaryStatus) {
      if (last) last.EndTime = now;
      job.transitions.push({ Status: stage.secondaryStatus, StartTime: now });
      job.lastModifiedTime = now;
    }
    if (stage.secondaryStatus === "Training" && !job.trainingStartTime) job.trainingStartTime = now;
    if (TERMINAL.has(stage.status) && !job.trainingEndTime) {
      job.trainingEndTime = now;
      job.transitions[job.transitions.length - 1].EndTime = now;
    }
    if (stage.rules) {
      for (const rule of ruleNames(job)) {
        const status = stage.rules[rule] ?? stage.rules["*"];
        if (!status) continue;
        const previous = job.ruleStatuses.get(rule);
        const details = stage.ruleDetails?.[rule] ?? stage.ruleDetails?.["*"] ?? defaultRuleDetails(rule, status);
        if (!previous || previous.status !== status) job.ruleStatuses.set(rule, { status, details, lastModified: now });
      }
    }
  };

  const advanceJob = (job: JobState, steps: number) => {
    const target = Math.min(job.stageIndex + steps, job.script.stages.length - 1);
    for (let i = job.stageIndex + 1; i <= target; i++) enterStage(job, i);
  };

  const addJob = (name: string, region: string, request: Record<string, any>, script: Required<JobScript>, created: Date) => {
    const job: JobState = {
      name, region, request, script,
      arn: `arn:aws:sagemaker:${region}:${accountId}:training-job/${name.toLowerCase()}`,
      stageIndex: 0, describesInStage: 0, creationTime: created, lastModifiedTime: created,
      transitions: [], ruleStatuses: new Map(),
    };
    for (const rule of ruleNames(job)) job.ruleStatuses.set(rule, { status: "InProgress", lastModified: created });
    jobs.set(name, job);
    enterStage(job, 0, created);
    return job;
  };

  const ruleJobArn = (job: JobState, rule: string) => {
    const hex = createHash("sha256").update(`${job.name}/${rule}`).digest("hex").slice(0, 8);
    return `arn:aws:sagemaker:${job.region}:${accountId}:processing-job/` +
      `${job.name.slice(0, 26)}-${rule.toLowerCase().slice(0, 26)}-${hex}`;
  };

  const describe = (job: JobState) => {
    const stage = job.script.stages[job.stageIndex];
    const r = job.request;
    const outputPath: string | undefined = r.OutputDataConfig?.S3OutputPath;
    return {
      TrainingJobName: job.name,
      TrainingJobArn: job.arn,
      ModelArtifacts: {
        S3ModelArtifacts: stage.status === "Completed" && outputPath
          ? `${outputPath.replace(/\/+$/, "")}/${job.name}/output/model.tar.gz` : "",
      },
      TrainingJobStatus: stage.status,
      SecondaryStatus: stage.secondaryStatus,
      ...(stage.failureReason ? { FailureReason: stage.failureReason } : {}),
      HyperParameters: r.HyperParameters ?? {},
      AlgorithmSpecification: r.AlgorithmSpecification ? { ...r.AlgorithmSpecification, EnableSageMakerMetricsTimeSeries: false } : undefined,
      RoleArn: r.RoleArn,
      InputDataConfig: r.InputDataConfig,
      OutputDataConfig: r.OutputDataConfig,
      ResourceConfig: r.ResourceConfig,
      StoppingCondition: r.StoppingCondition ?? { MaxRuntimeInSeconds: 86400 },
      CreationTime: epochSeconds(job.creationTime),
      TrainingStartTime: epochSeconds(job.trainingStartTime),
      TrainingEndTime: epochSeconds(job.trainingEndTime),
      LastModifiedTime: epochSeconds(job.lastModifiedTime),
      SecondaryStatusTransitions: job.transitions.map((t) => ({
        Status: t.Status, StartTime: epochSeconds(t.StartTime), EndTime: epochSeconds(t.EndTime),
        ...(t.StatusMessage ? { StatusMessage: t.StatusMessage } : {}),
      })),
      EnableNetworkIsolation: false,
      EnableInterContainerTrafficEncryption: false,
      EnableManagedSpotTraining: false,
      ...(r.DebugHookConfig ? { DebugHookConfig: r.DebugHookConfig } : {}),
      ...(r.DebugRuleConfigurations ? { DebugRuleConfigurations: r.DebugRuleConfigurations } : {}),
      ...(r.DebugRuleConfigurations ? {
        DebugRuleEvaluationStatuses: ruleNames(job).map((rule) => {
          const s = job.ruleStatuses.get(rule)!;
          return {
            RuleConfigurationName: rule,
            RuleEvaluationJobArn: ruleJobArn(job, rule),
            RuleEvaluationStatus: s.status,
            ...(s.details ? { StatusDetails: s.details } : {}),
            LastModifiedTime: epochSeconds(s.lastModified),
          };
        }),
      } : {}),
    };
  };

  const requireJob = (name: unknown): JobState => {
    const job = typeof name === "string" ? jobs.get(name) : undefined;
    if (!job) throw new AwsError("ValidationException", "Requested resource not found.");
    return job;
  };

  const operations: Record<string, (body: any, region: string) => unknown> = {
    CreateTrainingJob(body, region) {
      const name = body.TrainingJobName;
      if (typeof name !== "string" || !JOB_NAME.test(name)) {
        throw new AwsError("ValidationException",
          `1 validation error detected: Value '${name}' at 'trainingJobName' failed to satisfy constraint: ` +
          "Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}");
      }
      if (!body.RoleArn) throw new AwsError("ValidationException", "1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null");
      if (!body.OutputDataConfig?.S3OutputPath) throw new AwsError("ValidationException", "1 validation error detected: Value null at 'outputDataConfig' failed to satisfy constraint: Member must not be null");
      if ((body.DebugRuleConfigurations ?? []).length > 20) {
        throw new AwsError("ValidationException", "1 validation error detected: Value at 'debugRuleConfigurations' failed to satisfy constraint: Member must have length less than or equal to 20");
      }
      if (jobs.has(name)) {
        throw new AwsError("ResourceInUse",
          `Training job names must be unique within an AWS account and region, and a training job with this name already exists (${jobs.get(name)!.arn})`);
      }
      const job = addJob(name, region, body, scriptFor(name), new Date());
      return { TrainingJobArn: job.arn };
    },
    DescribeTrainingJob(body) {
      const job = requireJob(body.TrainingJobName);
      const answer = describe(job);
      if (job.script.advanceOn === "describe") {
        job.describesInStage++;
        if (job.describesInStage >= job.script.describesPerStage) {
          if (job.stageIndex < job.script.stages.length - 1) advanceJob(job, 1);
          else job.describesInStage = 0;
        }
      }
      return answer;
    },
    StopTrainingJob(body) {
      const job = requireJob(body.TrainingJobName);
      const stage = job.script.stages[job.stageIndex];
      if (stage.status !== "InProgress") {
        throw new AwsError("ValidationException", `The request was rejected because the training job is in status ${stage.status}.`);
      }
      // Replace the rest of the timeline: Stopping now, Stopped (rules stopped too) on the next advance.
      const rulesNow = Object.fromEntries(ruleNames(job).map((rule) => [rule, job.ruleStatuses.get(rule)!.status]));
      const stopRules = Object.fromEntries(Object.entries(rulesNow)
        .map(([rule, s]) => [rule, s === "InProgress" || s === "Stopping" ? "Stopped" : s])) as Record<string, RuleStatus>;
      job.script.stages = [
        ...job.script.stages.slice(0, job.stageIndex + 1),
        { status: "Stopping", secondaryStatus: "Stopping" },
        { status: "Stopped", secondaryStatus: "Stopped", rules: stopRules },
      ];
      enterStage(job, job.stageIndex + 1);
      return {};
    },
    ListTrainingJobs(body) {
      const max = body.MaxResults ?? 10;
      if (!Number.isInteger(max) || max < 1 || max > 100) {
        throw new AwsError("ValidationException", "1 validation error detected: Value at 'maxResults' failed to satisfy constraint: Member must have value between 1 and 100");
      }
      let offset = 0;
      if (body.NextToken != null) {
        const decoded = /^tok-(\d+)$/.exec(Buffer.from(String(body.NextToken), "base64").toString("utf8"));
        if (!decoded) throw new AwsError("ValidationException", "Invalid pagination token");
        offset = Number(decoded[1]);
      }
      const after = body.CreationTimeAfter != null ? body.CreationTimeAfter * 1000 : -Infinity;
      const before = body.CreationTimeBefore != null ? body.CreationTimeBefore * 1000 : Infinity;
      const candidates = [...jobs.values()]
        .filter((j) => !body.NameContains || j.name.toLowerCase().includes(String(body.NameContains).toLowerCase()))
        .filter((j) => j.creationTime.getTime() > after && j.creationTime.getTime() < before);
      const sortBy = body.SortBy ?? "CreationTime";
      const key = (j: JobState): string | number => sortBy === "Name" ? j.name
        : sortBy === "Status" ? j.script.stages[j.stageIndex].status : j.creationTime.getTime();
      candidates.sort((a, b) => {
        const ka = key(a), kb = key(b);
        const c = ka < kb ? -1 : ka > kb ? 1 : a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
        return body.SortOrder === "Descending" ? -c : c;
      });
      // SageMaker's quirk: take MaxResults jobs of any status, then apply StatusEquals to that window.
      const window = candidates.slice(offset, offset + max);
      const summaries = window
        .filter((j) => !body.StatusEquals || j.script.stages[j.stageIndex].status === body.StatusEquals)
        .map((j) => {
          const stage = j.script.stages[j.stageIndex];
          return {
            TrainingJobName: j.name, TrainingJobArn: j.arn, CreationTime: epochSeconds(j.creationTime),
            TrainingEndTime: epochSeconds(j.trainingEndTime), LastModifiedTime: epochSeconds(j.lastModifiedTime),
            TrainingJobStatus: stage.status, SecondaryStatus: stage.secondaryStatus,
          };
        });
      const next = offset + max < candidates.length ? Buffer.from(`tok-${offset + max}`).toString("base64") : undefined;
      return { TrainingJobSummaries: summaries, ...(next ? { NextToken: next } : {}) };
    },
  };

  const send = (res: ServerResponse, status: number, body: unknown, errorType?: string) => {
    if (res.destroyed || res.writableEnded) return;
    const text = JSON.stringify(body);
    res.writeHead(status, {
      "content-type": "application/x-amz-json-1.1",
      "content-length": Buffer.byteLength(text),
      "x-amzn-requestid": randomUUID(),
      ...(errorType ? { "x-amzn-errortype": errorType } : {}),
    });
    res.end(text);
  };
  const sendError = (res: ServerResponse, record: RecordedRequest, e: AwsError) => {
    record.answer = { status: e.status, errorType: e.type };
    send(res, e.status, { __type: e.type, message: e.message }, e.type);
  };

  const delay = (ms: number) => new Promise<void>((resolve) => {
    const t = setTimeout(() => { timers.delete(t); resolve(); }, ms);
    timers.add(t);
  });

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const target = String(req.headers["x-amz-target"] ?? "");
    const operation = target.startsWith("SageMaker.") ? target.slice("SageMaker.".length) : target;
    let body: any = {};
    const record: RecordedRequest = { operation, target, body, headers: req.headers };
    requests.push(record);
    try {
      if (req.method !== "POST") throw new AwsError("UnknownOperationException", "only POST is supported");
      if (!String(req.headers["content-type"] ?? "").startsWith("application/x-amz-json-1.1")) {
        throw new AwsError("SerializationException", "expected application/x-amz-json-1.1");
      }
      if (!String(req.headers.authorization ?? "").startsWith("AWS4-HMAC-SHA256 ")) {
        throw new AwsError("MissingAuthenticationTokenException", "Missing Authentication Token", 403);
      }
      const text = Buffer.concat(chunks).toString("utf8");
      body = text ? JSON.parse(text) : {};
      record.body = body;
      const handler = operations[operation];
      if (!handler) throw new AwsError("UnknownOperationException", `operation ${target} is not served here`);

      const fault = faults.find((f) => f.remaining > 0 && (!f.operation || f.operation === operation) &&
        (!f.jobName || f.jobName === body.TrainingJobName));
      if (fault) {
        fault.remaining--;
        if (fault.delayMs) await delay(fault.delayMs);
        if (fault.type) {
          const serverSide = /InternalFailure|InternalServerError|ServiceUnavailable/.test(fault.type);
          throw new AwsError(fault.type, fault.message ?? `${fault.type} injected by the test endpoint`,
            fault.status ?? (serverSide ? 500 : 400));
        }
      }
      if (res.destroyed) return; // the client gave up while we were slow
      const region = /Credential=[^/]+\/\d{8}\/([^/]+)\//.exec(String(req.headers.authorization))?.[1] ?? "us-east-1";
      const answer = handler(body, region);
      record.answer = { status: 200 };
      send(res, 200, answer);
    } catch (e) {
      if (e instanceof AwsError) sendError(res, record, e);
      else sendError(res, record, new AwsError("SerializationException", (e as Error).message));
    }
  };

  const server = createServer((req, res) => { void handle(req, res); });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    credentials: { accessKeyId: "AKIDTESTENDPOINT", secretAccessKey: "test-endpoint-secret" },
    requests,
    count: (operation, jobName) => requests.filter((r) => r.operation === operation &&
      (jobName == null || r.body?.TrainingJobName === jobName)).length,
    script: (match, script) => { scripts.push({ match, script }); },
    fail: (fault) => { faults.push({ ...fault, remaining: fault.times ?? 1 }); },
    clearFaults: () => { faults = []; },
    advance: (name, steps = 1) => advanceJob(requireKnown(name), steps),
    finish: (name) => { const job = requireKnown(name); advanceJob(job, job.script.stages.length); },
    seed: (seed) => {
      const request = { ...(seed.request ?? {}) };
      const rules = seed.rules ?? {};
      if (Object.keys(rules).length > 0 && !request.DebugRuleConfigurations) {
        request.DebugRuleConfigurations = Object.keys(rules).map((rule) => ({
          RuleConfigurationName: rule, RuleEvaluatorImage: "rules:latest", RuleParameters: { rule_to_invoke: rule },
        }));
      }
      const status = seed.status ?? "Completed";
      const stage: JobStage = {
        status, secondaryStatus: seed.secondaryStatus ?? (status === "InProgress" ? "Training" : status),
        ...(seed.failureReason ? { failureReason: seed.failureReason } : {}),
        rules,
      };
      addJob(seed.name, "us-east-1", request, { stages: [stage], advanceOn: "manual", describesPerStage: 1 },
        seed.creationTime ?? new Date());
    },
    job: (name) => {
      const job = jobs.get(name);
      return job ? { stage: job.script.stages[job.stageIndex], stageIndex: job.stageIndex, request: job.request } : null;
    },
    jobNames: () => [...jobs.keys()],
    close: async () => {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };

  function requireKnown(name: string): JobState {
    const job = jobs.get(name);
    if (!job) throw new Error(`the test endpoint has no job named ${name}`);
    return job;
  }
}

/** Short alias: `start({ port: 0 })`. */
export const start = startSageMakerEndpoint;
