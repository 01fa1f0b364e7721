/**
 * One front for every place jobs run: picks the backend of a new job, finds a job by name on
 * whichever backend knows it, and lists across backends.
 */
import { TrialgraphError } from "../errors.js";
import type { NewRule } from "../store/index.js";
import type {
  Backend, JobPage, ListJobsQuery, RuleSpec, StartTrainingJobSpec, TrainingJobBackend, TrainingJobRecord,
} from "./types.js";

/** The service's own rule evaluation, as the job service needs it. */
export interface ServiceRules {
  /** Validates the rules (BAD_USER_INPUT naming the parameter at fault) and returns their attachments. */
  newRules(specs: RuleSpec[]): NewRule[];
  /** The job was started with these rules (already recorded with it): evaluate them from its first step. */
  follow(job: TrainingJobRecord, rules: readonly NewRule[]): Promise<void>;
}

export class JobService {
  private rules: ServiceRules | null = null;

  constructor(
    private readonly backends: Partial<Record<Backend, TrainingJobBackend>>,
    readonly defaultBackend: Backend,
  ) {}

  useRules(rules: ServiceRules): void {
    this.rules = rules;
  }

  private backend(b: Backend): TrainingJobBackend {
    const found = this.backends[b];
    if (!found) {
      const hint = b === "SAGEMAKER"
        ? "set TRIALGRAPH_SAGEMAKER_ENDPOINT or AWS credentials to enable it"
        : "the local backend is not available on this instance";
      throw new TrialgraphError("BACKEND_UNAVAILABLE", `backend ${b} is not configured: ${hint}`, { field: "backend" });
    }
    return found;
  }

  configured(): Backend[] {
    return (Object.keys(this.backends) as Backend[]).filter((b) => this.backends[b]);
  }

  /**
   * Starts a job. Rules the service evaluates (all rules of a local job; evaluator SERVICE on
   * SageMaker) are validated before anything starts, recorded with the job, and followed from the
   * first step. Their summaries are not on the backend's record: they are read from the database
   * (RuleService.summaries) wherever the job is shown.
   */
  async start(spec: StartTrainingJobSpec): Promise<TrainingJobRecord> {
    const backend = this.backend(spec.backend ?? this.defaultBackend);
    const serviceRules = (spec.rules ?? []).filter((r) => backend.backend === "LOCAL" || r.evaluator === "SERVICE");
    let rules: NewRule[] = [];
    if (serviceRules.length) {
      if (!this.rules) throw new TrialgraphError("BACKEND_UNAVAILABLE", "the rule engine is not available", { field: "rules" });
      rules = this.rules.newRules(serviceRules);
    }
    const job = await backend.start(spec, { rules });
    if (rules.length) await this.rules!.follow(job, rules);
    return job;
  }

  /** The job, from the first backend that knows it (local first: it answers from the database). */
  async describe(name: string): Promise<TrainingJobRecord | null> {
    for (const b of this.order()) {
      const job = await this.backends[b]!.describe(name);
      if (job) return job;
    }
    return null;
  }

  async stop(name: string): Promise<TrainingJobRecord> {
    for (const b of this.order()) {
      const job = await this.backends[b]!.describe(name);
      if (job) return this.backends[b]!.stop(name);
    }
    throw new TrialgraphError("NOT_FOUND", `no training job named ${name}`, { field: "name" });
  }

  /**
   * Pages through one backend, or all of them in turn: the cursor remembers which backend and
   * that backend's own cursor.
   */
  async list(query: ListJobsQuery & { backend?: Backend | null }): Promise<JobPage> {
    const order = query.backend ? [query.backend] : this.order();
    if (query.backend) this.backend(query.backend);
    let start = 0;
    let inner: string | null = null;
    if (query.after) {
      const m = /^([A-Z]+):(.*)$/s.exec(Buffer.from(query.after, "base64url").toString("utf8"));
      const at = m ? order.indexOf(m[1] as Backend) : -1;
      if (!m || at < 0) throw new TrialgraphError("BAD_USER_INPUT", "invalid cursor", { field: "after" });
      start = at;
      inner = m[2] || null;
    }
    const nodes: TrainingJobRecord[] = [];
    for (let i = start; i < order.length && nodes.length < query.first; i++) {
      const b = order[i];
      const page = await this.backends[b]!.list({ ...query, first: query.first - nodes.length, after: i === start ? inner : null });
      nodes.push(...page.nodes);
      const cursor = (c: string | null) => Buffer.from(`${b}:${c ?? ""}`).toString("base64url");
      if (page.hasNextPage) return { nodes, endCursor: cursor(page.endCursor), hasNextPage: true };
      if (nodes.length >= query.first && i + 1 < order.length) {
        return { nodes, endCursor: Buffer.from(`${order[i + 1]}:`).toString("base64url"), hasNextPage: true };
      }
    }
    return { nodes, endCursor: null, hasNextPage: false };
  }

  private order(): Backend[] {
    return (["LOCAL", "SAGEMAKER"] as Backend[]).filter((b) => this.backends[b]);
  }
}
