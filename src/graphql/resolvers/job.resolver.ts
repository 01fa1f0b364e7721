import { Arg, Ctx, FieldResolver, Int, Mutation, Query, Resolver, Root } from "type-graphql";
import type { Context } from "../context.js";
import { TrainingJob, TrainingJobConnection } from "../types/job.types.js";
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

  @FieldResolver(() => Trial, { nullable: true, description: "The job's smdebug trial, once it has one" })
  async trial(@Root() job: TrainingJob, @Ctx() ctx: Context): Promise<Trial | null> {
    if (!job.debugOutputPath) return null;
    const trial = await ctx.services.trials.resolve(job.debugOutputPath);
    return trial && new Trial(trial);
  }
}
