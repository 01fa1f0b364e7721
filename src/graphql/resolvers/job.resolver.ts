import { Arg, Ctx, FieldResolver, Int, Mutation, Query, Resolver, Root } from "type-graphql";
import type { Context } from "../context.js";
import { RuleHistoryConnection, RuleSummary, TrainingJob, TrainingJobConnection } from "../types/job.types.js";
import { Trial } from "../types/trial.types.js";
import { Backend, TrainingJobStatus } from "../enums.js";
import { RuleInput, StartTrainingJobInput } from "../inputs.js";
import { requireRole } from "../auth.js";
import { TrialgraphError } from "../../errors.js";
import type { Backend as BackendName, TrainingJobStatus as StatusName } from "../../jobs/types.js";

@Resolver(() => TrainingJob)
export class TrainingJobResolver {
  @Query(() => TrainingJob, { nullable: true })
  async trainingJob(@Arg("name", () => String) name: string, @Ctx() ctx: Context): Promise<TrainingJob | null> {
    const job = await ctx.services.jobs.describe(name);
    return job && new TrainingJob(job);
  }

  @Query(() => TrainingJobConnection)
  async trainingJobs(
    @Arg("first", () => Int, { nullable: true }) first: number | null,
    @Arg("after", () => String, { nullable: true }) after: string | null,
    @Arg("status", () => TrainingJobStatus, { nullable: true }) status: StatusName | null,
    @Arg("nameContains", () => String, { nullable: true }) nameContains: string | null,
    @Arg("backend", () => Backend, { nullable: true }) backend: BackendName | null,
    @Ctx() ctx: Context,
  ): Promise<TrainingJobConnection> {
    const size = first ?? 20;
    if (size < 1 || size > 100) throw new TrialgraphError("BAD_USER_INPUT", "first must be between 1 and 100", { field: "first" });
    const page = await ctx.services.jobs.list({ first: size, after, status, nameContains, backend });
    return { nodes: page.nodes.map((j) => new TrainingJob(j)), pageInfo: { endCursor: page.endCursor, hasNextPage: page.hasNextPage } };
  }

  @Mutation(() => TrainingJob)
  async startTrainingJob(@Arg("input", () => StartTrainingJobInput) input: StartTrainingJobInput, @Ctx() ctx: Context): Promise<TrainingJob> {
    requireRole(ctx, "operator");
    return new TrainingJob(await ctx.services.jobs.start(input));
  }

  @Mutation(() => TrainingJob, { description: "Stops a running job; it moves to STOPPING, then STOPPED" })
  async stopTrainingJob(@Arg("name", () => String) name: string, @Ctx() ctx: Context): Promise<TrainingJob> {
    requireRole(ctx, "operator");
    return new TrainingJob(await ctx.services.jobs.stop(name));
  }

  @Mutation(() => TrainingJob, {
    description: "Has the service's rule engine watch a running job's trial; summaries appear with evaluator SERVICE",
  })
  async attachRules(
    @Arg("jobName", () => String) jobName: string,
    @Arg("rules", () => [RuleInput]) rules: RuleInput[],
    @Ctx() ctx: Context,
  ): Promise<TrainingJob> {
    requireRole(ctx, "operator");
    return new TrainingJob(await ctx.services.rules.attach(jobName, rules));
  }

  @FieldResolver(() => [RuleSummary], {
    description: "Its rules: SageMaker's own (evaluator SAGEMAKER) as SageMaker reports them, and the service's (SERVICE) from its database",
  })
  async ruleSummaries(@Root() job: TrainingJob, @Ctx() ctx: Context): Promise<RuleSummary[]> {
    const service = await ctx.ruleSummaries.load(job.name);
    const names = new Set(service.map((r) => r.ruleConfigurationName));
    return [...job.record.ruleSummaries.filter((r) => !names.has(r.ruleConfigurationName)), ...service].map((r) => new RuleSummary(job.name, r));
  }

  @FieldResolver(() => Trial, { nullable: true, description: "The job's smdebug trial, once it has one" })
  async trial(@Root() job: TrainingJob, @Ctx() ctx: Context): Promise<Trial | null> {
    if (!job.debugOutputPath) return null;
    const trial = await ctx.services.trials.resolve(job.debugOutputPath);
    return trial && new Trial(trial);
  }
}

@Resolver(() => RuleSummary)
export class RuleSummaryResolver {
  @FieldResolver(() => RuleHistoryConnection, {
    description: "The rule's evaluation history, oldest first: every evaluated step with its status and message (older steps of long jobs are compacted: status changes are always kept). Empty for rules SageMaker evaluates",
  })
  async evaluations(
    @Root() rule: RuleSummary,
    @Arg("first", () => Int, { nullable: true, description: "At most 100; default 20" }) first: number | null,
    @Arg("after", () => String, { nullable: true }) after: string | null,
    @Ctx() ctx: Context,
  ): Promise<RuleHistoryConnection> {
    const size = first ?? 20;
    if (!Number.isInteger(size) || size < 1 || size > 100) throw new TrialgraphError("BAD_USER_INPUT", "first must be between 1 and 100", { field: "first" });
    if (rule.evaluator !== "SERVICE") return { nodes: [], pageInfo: { endCursor: null, hasNextPage: false } };
    const page = await ctx.services.rules.evaluations(rule.jobName, rule.ruleConfigurationName, { first: size, after });
    return { nodes: page.nodes, pageInfo: { endCursor: page.endCursor, hasNextPage: page.hasNextPage } };
  }
}
