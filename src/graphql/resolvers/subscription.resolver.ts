import { Arg, Resolver, Root, Subscription } from "type-graphql";
import type { Context } from "../context.js";
import { RuleStatusChange, RuleSummary, TrainingJob, TrainingJobStatusChange } from "../types/job.types.js";
import { StepsAdded } from "../types/trial.types.js";
import { filterMap, mergeIterators, onClose } from "../../events/iterators.js";
import type { TrainingJobRecord } from "../../jobs/types.js";
import type { JobStatusEvent, RuleStatusEvent, StepsAddedEvent } from "../../events/event-bus.js";
import { TrialgraphError } from "../../errors.js";

async function requireJob(ctx: Context, jobName: string | null | undefined): Promise<void> {
  if (jobName && !(await ctx.services.jobs.describe(jobName))) {
    throw new TrialgraphError("NOT_FOUND", `no training job named ${jobName}`, { field: "jobName" });
  }
}

/** Subscribing to a job asks the job watcher to keep it watched while anyone listens. */
function watchJob(ctx: Context, jobName: string | null | undefined): () => void {
  return jobName && ctx.services.watchJob ? ctx.services.watchJob(jobName) : () => {};
}

@Resolver()
export class SubscriptionResolver {
  @Subscription(() => RuleStatusChange, {
    description: "Rule status changes of one job (or of every job)",
    subscribe: async ({ args, context }) => {
      const ctx = context as Context;
      await requireJob(ctx, args.jobName);
      const events = filterMap(ctx.services.events.subscribe("ruleStatus"), (e) => (!args.jobName || e.jobName === args.jobName ? e : undefined));
      return onClose(events, watchJob(ctx, args.jobName));
    },
  })
  ruleStatusChanged(@Root() e: RuleStatusEvent, @Arg("jobName", () => String, { nullable: true }) _jobName: string | null): RuleStatusChange {
    return { jobName: e.jobName, rule: new RuleSummary(e.jobName, e.rule), previousStatus: e.previousStatus };
  }

  @Subscription(() => TrainingJobStatusChange, {
    description: "Status changes of one job, or of every job when jobName is omitted",
    subscribe: async ({ args, context }) => {
      const ctx = context as Context;
      await requireJob(ctx, args.jobName);
      const events = filterMap(ctx.services.events.subscribe("jobStatus"), (e) => (!args.jobName || e.job.name === args.jobName ? e : undefined));
      return onClose(events, watchJob(ctx, args.jobName));
    },
  })
  trainingJobStatusChanged(@Root() e: JobStatusEvent, @Arg("jobName", () => String, { nullable: true }) _jobName: string | null): TrainingJobStatusChange {
    return { job: new TrainingJob(e.job), previousStatus: e.previousStatus };
  }

  @Subscription(() => TrainingJob, {
    description: "A job as it changes: every status change and every progress step (one job, or all jobs)",
    subscribe: async ({ args, context }) => {
      const ctx = context as Context;
      await requireJob(ctx, args.jobName);
      const pick = (job: TrainingJobRecord) => (!args.jobName || job.name === args.jobName ? job : undefined);
      const statuses = filterMap(ctx.services.events.subscribe("jobStatus"), (e) => pick(e.job));
      const progress = filterMap(ctx.services.events.subscribe("jobProgress"), (e) => pick(e.job));
      return onClose(mergeIterators([statuses, progress]), watchJob(ctx, args.jobName));
    },
  })
  trainingJobUpdated(@Root() job: TrainingJobRecord, @Arg("jobName", () => String, { nullable: true }) _jobName: string | null): TrainingJob {
    return new TrainingJob(job);
  }

  @Subscription(() => StepsAdded, {
    description: "New complete steps of a trial as it grows (local or S3)",
    subscribe: async ({ args, context }) => {
      const ctx = context as Context;
      const trial = await ctx.services.trials.resolve(args.path);
      if (!trial) throw await ctx.services.trialPaths.notFound(args.path);
      const events = filterMap(ctx.services.events.subscribe("stepsAdded"), (e) => (e.path === trial.path ? e : undefined));
      return onClose(events, ctx.services.followTrial(trial));
    },
  })
  trialStepsAdded(@Root() e: StepsAddedEvent, @Arg("path", () => String) _path: string): StepsAdded {
    return e;
  }
}
