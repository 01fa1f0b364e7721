/**
 * The SAGEMAKER training-job backend: CreateTrainingJob / StopTrainingJob / DescribeTrainingJob /
 * ListTrainingJobs through @aws-sdk/client-sagemaker, mapped onto the shared TrainingJobRecord.
 */
import {
  CreateTrainingJobCommand,
  DescribeTrainingJobCommand,
  ListTrainingJobsCommand,
  SageMakerClient,
  StopTrainingJobCommand,
  type ListTrainingJobsRequest,
  type SageMakerClientConfig,
  type TrainingJobSummary,
} from "@aws-sdk/client-sagemaker";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { badInput, TrialgraphError } from "../../errors.js";
import type {
  JobPage, ListJobsQuery, StartTrainingJobSpec, TrainingJobBackend, TrainingJobRecord, TrainingJobStatus,
} from "../types.js";
import { TERMINAL_JOB_STATUSES } from "../types.js";
import { isNotFound, toTrialgraphError, type SageMakerOperation } from "./errors.js";
import { mapJobStatus, recordFromDescribe, recordFromSummary } from "./mapping.js";
import { isValidJobName } from "./names.js";
import { buildCreateTrainingJobRequest, type BuiltCreateRequest } from "./request.js";

export interface SageMakerBackendOptions {
  /** AWS_REGION. */
  region: string;
  /** TRIALGRAPH_SAGEMAKER_ENDPOINT: an endpoint override (a local test endpoint, a VPC endpoint). */
  endpoint?: string;
  /** Static credentials or a provider; default: the SDK's credential chain. */
  credentials?: SageMakerClientConfig["credentials"];
  /** Defaults for specs without roleArn / outputPath (TRIALGRAPH_SAGEMAKER_ROLE_ARN / _OUTPUT_PATH). */
  roleArn?: string;
  outputPath?: string;
  /** Attempts per call including retries (SDK default 3). */
  maxAttempts?: number;
  /** Per-attempt limit on a request and its response (default 30 s); a breach is retried, then SAGEMAKER_UNAVAILABLE. */
  requestTimeoutMs?: number;
  /** Limit on opening the connection (default 5 s). */
  connectionTimeoutMs?: number;
  /**
   * How list() fills records: "describe" (default) calls DescribeTrainingJob per listed job so records are
   * complete (hyperparameters, debugOutputPath, rules); "summary" returns ListTrainingJobs data only.
   */
  listDetails?: "describe" | "summary";
  /** Tags put on every job this backend creates, e.g. {"created-by": "trialgraph"}. */
  tags?: Record<string, string>;
  /** Clock for generated job names. */
  now?: () => Date;
  /** Use this client instead of building one (the options above that configure a client are then ignored). */
  client?: SageMakerClient;
}

const STATUS_TO_SAGEMAKER: Readonly<Record<TrainingJobStatus, NonNullable<ListTrainingJobsRequest["StatusEquals"]>>> = {
  IN_PROGRESS: "InProgress", COMPLETED: "Completed", FAILED: "Failed", STOPPING: "Stopping", STOPPED: "Stopped",
};
const MAX_PAGE_SIZE = 100;
/** ListTrainingJobs calls one list() may make while skipping short or empty filtered pages. */
const MAX_LIST_REQUESTS = 20;
const DESCRIBE_CONCURRENCY = 4;
const CURSOR_PREFIX = "sm1.";

interface CursorState { token: string; status: string | null; nameContains: string | null }

function encodeCursor(state: CursorState): string {
  return CURSOR_PREFIX + Buffer.from(JSON.stringify(state)).toString("base64url");
}

function decodeCursor(cursor: string): CursorState {
  if (cursor.startsWith(CURSOR_PREFIX)) {
    try {
      const state = JSON.parse(Buffer.from(cursor.slice(CURSOR_PREFIX.length), "base64url").toString("utf8"));
      if (state && typeof state.token === "string") return state as CursorState;
    } catch { /* fall through to the error below */ }
  }
  throw badInput("after is not a cursor from a previous trainingJobs page", "after");
}

/** The job status named in "…the training job is in status Completed." */
function statusInMessage(message: string): TrainingJobStatus | null {
  const match = /in status\s+"?([A-Za-z]+)/i.exec(message);
  return match ? mapJobStatus(match[1]) : null;
}

async function mapLimited<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

export class SageMakerBackend implements TrainingJobBackend {
  readonly backend = "SAGEMAKER" as const;
  readonly client: SageMakerClient;
  private readonly ownsClient: boolean;
  private readonly now: () => Date;

  constructor(private readonly options: SageMakerBackendOptions) {
    if (!options.region) throw new TrialgraphError("SAGEMAKER_UNAVAILABLE", "no AWS region configured (AWS_REGION)");
    this.now = options.now ?? (() => new Date());
    this.ownsClient = options.client == null;
    this.client = options.client ?? new SageMakerClient({
      region: options.region,
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      ...(options.credentials ? { credentials: options.credentials } : {}),
      ...(options.maxAttempts != null ? { maxAttempts: options.maxAttempts } : {}),
      requestHandler: new NodeHttpHandler({
        connectionTimeout: options.connectionTimeoutMs ?? 5_000,
        requestTimeout: options.requestTimeoutMs ?? 30_000,
        throwOnRequestTimeout: true,
      }),
    });
  }

  /** The request start() would send, without sending it (validation included). */
  buildRequest(spec: StartTrainingJobSpec, now: Date = this.now()): BuiltCreateRequest {
    return buildCreateTrainingJobRequest(spec, {
      region: this.options.region,
      roleArn: this.options.roleArn,
      outputPath: this.options.outputPath,
      now,
      tags: this.options.tags,
    });
  }

  async start(spec: StartTrainingJobSpec): Promise<TrainingJobRecord> {
    const createdAt = this.now();
    const built = this.buildRequest(spec, createdAt);
    const response = await this.call("CreateTrainingJob", () => this.client.send(new CreateTrainingJobCommand(built.request)));
    const request = built.request;
    // CreateTrainingJob answers only the ARN; the record is what SageMaker reports for a job just created,
    // which saves a DescribeTrainingJob call (and any read-after-create lag).
    return {
      name: request.TrainingJobName!,
      arn: response.TrainingJobArn ?? null,
      backend: "SAGEMAKER",
      status: "IN_PROGRESS",
      secondaryStatus: "Starting",
      failureReason: null,
      createdAt,
      startedAt: null,
      endedAt: null,
      hyperparameters: { ...(request.HyperParameters ?? {}) },
      debugOutputPath: built.debugOutputPath,
      ruleSummaries: (request.DebugRuleConfigurations ?? []).map((rule) => ({
        ruleConfigurationName: rule.RuleConfigurationName!,
        ruleEvaluationJobArn: null,
        status: "IN_PROGRESS",
        statusDetails: null,
        lastModifiedTime: null,
        evaluator: "SAGEMAKER",
        findings: [],
      })),
      progress: null,
    };
  }

  async describe(name: string): Promise<TrainingJobRecord | null> {
    // A name SageMaker could never have accepted cannot name a job.
    if (typeof name !== "string" || !isValidJobName(name)) return null;
    try {
      const job = await this.client.send(new DescribeTrainingJobCommand({ TrainingJobName: name }));
      return recordFromDescribe(job);
    } catch (error) {
      if (isNotFound(error as { name?: string })) return null;
      throw toTrialgraphError(error, "DescribeTrainingJob");
    }
  }

  async stop(name: string): Promise<TrainingJobRecord> {
    const notFound = () => new TrialgraphError("NOT_FOUND", `no SageMaker training job named "${name}"`, { field: "name" });
    if (typeof name !== "string" || !isValidJobName(name)) throw notFound();
    try {
      await this.client.send(new StopTrainingJobCommand({ TrainingJobName: name }));
    } catch (error) {
      const e = error as { name?: string; message?: string };
      if (isNotFound(e)) throw notFound();
      if (e.name !== "ValidationException") throw toTrialgraphError(error, "StopTrainingJob");
      // SageMaker refuses to stop a job that is not InProgress ("…is in status Completed.").
      let status = statusInMessage(e.message ?? "");
      let current: TrainingJobRecord | null = null;
      if (status == null) {
        current = await this.describe(name);
        if (current == null) throw notFound();
        status = current.status;
      }
      if (TERMINAL_JOB_STATUSES.has(status)) {
        throw new TrialgraphError("JOB_NOT_STOPPABLE",
          `training job "${name}" has already finished (${status}); only a running job can be stopped`,
          { field: "name", status });
      }
      if (status !== "STOPPING") throw toTrialgraphError(error, "StopTrainingJob");
      // Already stopping: stopping again is a no-op, answer with the job as it is.
      if (current) return current;
    }
    const job = await this.describe(name);
    if (job == null) throw notFound();
    return job;
  }

  async list(query: ListJobsQuery): Promise<JobPage> {
    const first = query.first;
    if (!Number.isInteger(first) || first < 1 || first > MAX_PAGE_SIZE) {
      throw badInput(`first must be an integer from 1 to ${MAX_PAGE_SIZE}`, "first");
    }
    const nameContains = query.nameContains ?? null;
    if (nameContains != null && (nameContains.length > 63 || !/^[a-zA-Z0-9-]+$/.test(nameContains))) {
      throw badInput("nameContains may hold only letters, digits and hyphens (at most 63)", "nameContains");
    }
    const status = query.status ?? null;
    if (status != null && !(status in STATUS_TO_SAGEMAKER)) throw badInput(`unknown status "${status}"`, "status");
    let token: string | undefined;
    if (query.after != null) {
      const cursor = decodeCursor(query.after);
      if (cursor.status !== status || cursor.nameContains !== nameContains) {
        throw badInput("after belongs to a trainingJobs query with other filters", "after");
      }
      token = cursor.token;
    }

    // With StatusEquals, SageMaker filters after taking MaxResults jobs, so pages come back short or empty
    // while NextToken is still set: keep asking until the page is full or the token runs out.
    const summaries: TrainingJobSummary[] = [];
    for (let calls = 0; summaries.length < first && calls < MAX_LIST_REQUESTS; calls++) {
      const input: ListTrainingJobsRequest = {
        MaxResults: first - summaries.length,
        SortBy: "CreationTime",
        SortOrder: "Descending",
        ...(token ? { NextToken: token } : {}),
        ...(status ? { StatusEquals: STATUS_TO_SAGEMAKER[status] } : {}),
        ...(nameContains ? { NameContains: nameContains } : {}),
      };
      let page;
      try {
        page = await this.client.send(new ListTrainingJobsCommand(input));
      } catch (error) {
        const mapped = toTrialgraphError(error, "ListTrainingJobs");
        // A token SageMaker no longer accepts comes from the cursor the client sent.
        if (mapped.code === "BAD_USER_INPUT" && token) mapped.details.field = "after";
        throw mapped;
      }
      summaries.push(...(page.TrainingJobSummaries ?? []).slice(0, first - summaries.length));
      token = page.NextToken || undefined;
      if (!token) break;
    }

    const nodes = this.options.listDetails === "summary"
      ? summaries.map(recordFromSummary)
      : await mapLimited(summaries, DESCRIBE_CONCURRENCY,
        async (summary) => (await this.describe(summary.TrainingJobName ?? "")) ?? recordFromSummary(summary));
    return {
      nodes,
      endCursor: token ? encodeCursor({ token, status, nameContains }) : null,
      hasNextPage: token != null,
    };
  }

  /** Releases the HTTP client's sockets when this backend built its own client. */
  close(): void {
    if (this.ownsClient) this.client.destroy();
  }

  private async call<T>(operation: SageMakerOperation, send: () => Promise<T>): Promise<T> {
    try {
      return await send();
    } catch (error) {
      throw toTrialgraphError(error, operation);
    }
  }
}
