import { Arg, Resolver, Root, Subscription } from "type-graphql";
import type { Context } from "../context.js";
import { RuleStatusChange, RuleSummary, TrainingJob, TrainingJobStatusChange } from "../types/job.types.js";
import { StepsAdded } from "../types/trial.types.js";
import { onClose } from "../../events/iterators.js";
import { LastSeen, openLive } from "../../events/live.js";
import { trialSteps, type StepsItem } from "../../events/trial-steps.js";
import { encodeCursor, type FeedItem, type JobProgressEvent, type JobStatusEvent, type RuleStatusEvent } from "../../events/event-bus.js";
import type { RuleSummaryRecord, TrainingJobRecord } from "../../jobs/types.js";
import { TERMINAL_JOB_STATUSES } from "../../jobs/types.js";
import { TrialgraphError } from "../../errors.js";

type Logged<T> = T & { eventId: string };

async function requireJob(ctx: Context, jobName: string | null | undefined): Promise<TrainingJobRecord | null> {
  if (!jobName) return null;
  const job = await ctx.services.jobs.describe(jobName);
  if (!job) throw new TrialgraphError("NOT_FOUND", `no training job named ${jobName}`, { field: "jobName" });
  return job;
}

/** Subscribing to a job asks the job watcher to keep it watched while anyone listens. */
function watchJob(ctx: Context, jobName: string | null | undefined): () => void {
  return jobName && ctx.services.watchJob ? ctx.services.watchJob(jobName) : () => {};
}

/** A job's rules as its page shows them: SageMaker's own, then the service's (which win on a name). */
async function currentRules(ctx: Context, job: TrainingJobRecord): Promise<RuleSummaryRecord[]> {
  const service = (await ctx.services.rules.summaries([job.name])).get(job.name) ?? [];
  const names = new Set(service.map((r) => r.ruleConfigurationName));
  return [...job.ruleSummaries.filter((r) => !names.has(r.ruleConfigurationName)), ...service];
}

const id = (item: FeedItem) => encodeCursor(item.id);

/** What a job update says that a client sees change (progress only forward). */
function jobIsNewer(a: TrainingJobRecord, b: TrainingJobRecord): boolean {
  if (a.status !== b.status || a.secondaryStatus !== b.secondaryStatus || a.failureReason !== b.failureReason) return true;
  if ((a.endedAt?.getTime() ?? null) !== (b.endedAt?.getTime() ?? null)) return true;
  if (!b.progress) return false;
  return !a.progress || b.progress.current > a.progress.current || b.progress.total !== a.progress.total;
}

@Resolver()
export class SubscriptionResolver {
  @Subscription(() => RuleStatusChange, {
    description: "Rule status changes of one job (or of every job). By name, without after, the rules' current state comes first (previousStatus null); with after: eventId, every change after that event",
    subscribe: async ({ args, context }) => {
      const ctx = context as Context;
      const job = await requireJob(ctx, args.jobName);
      // Each rule reports a status once: a repeat (a live event the snapshot already shows) is dropped.
      const seen = new LastSeen<string>((a, b) => a !== b);
      const events = await openLive(ctx.services.events, {
        filter: { topics: ["ruleStatus"], jobName: args.jobName ?? null },
        after: args.after,
        snapshot: job ? async () => (await currentRules(ctx, job)).map((rule) => ({ topic: "ruleStatus" as const, data: { jobName: job.name, rule, previousStatus: null } })) : undefined,
        map: (item): Logged<RuleStatusEvent> | undefined => {
          const e = item.data as RuleStatusEvent;
          if (!seen.accept(`${e.jobName}\0${e.rule.ruleConfigurationName}`, e.rule.status)) return undefined;
          return { ...e, eventId: id(item) };
        },
      });
      return onClose(events, watchJob(ctx, args.jobName));
    },
  })
  ruleStatusChanged(
    @Root() e: Logged<RuleStatusEvent>,
    @Arg("jobName", () => String, { nullable: true }) _jobName: string | null,
    @Arg("after", () => String, { nullable: true, description: "An eventId received before: resume after it" }) _after: string | null,
  ): RuleStatusChange {
    return { jobName: e.jobName, rule: new RuleSummary(e.jobName, e.rule), previousStatus: e.previousStatus, eventId: e.eventId };
  }

  @Subscription(() => TrainingJobStatusChange, {
    description: "Changes of a job's status (not of its secondary status: see trainingJobUpdated), of one job or of every job. By name, without after, the current state comes first (previousStatus null); with after: eventId, every change after that event",
    subscribe: async ({ args, context }) => {
      const ctx = context as Context;
      const job = await requireJob(ctx, args.jobName);
      const seen = new LastSeen<string>((a, b) => a !== b);
      const events = await openLive(ctx.services.events, {
        filter: { topics: ["jobStatus"], jobName: args.jobName ?? null },
        after: args.after,
        snapshot: job ? async () => [{ topic: "jobStatus" as const, data: { job, previousStatus: null } }] : undefined,
        map: (item): Logged<JobStatusEvent> | undefined => {
          const e = item.data as JobStatusEvent;
          // Secondary-status moves (Starting -> Training) are not status changes.
          if (e.previousStatus !== null && e.previousStatus === e.job.status) return undefined;
          if (!seen.accept(e.job.name, e.job.status)) return undefined;
          return { ...e, eventId: id(item) };
        },
      });
      return onClose(events, watchJob(ctx, args.jobName));
    },
  })
  trainingJobStatusChanged(
    @Root() e: Logged<JobStatusEvent>,
    @Arg("jobName", () => String, { nullable: true }) _jobName: string | null,
    @Arg("after", () => String, { nullable: true, description: "An eventId received before: resume after it" }) _after: string | null,
  ): TrainingJobStatusChange {
    return { job: new TrainingJob(e.job), previousStatus: e.previousStatus, eventId: e.eventId };
  }

  @Subscription(() => TrainingJob, {
    description: "A job as it changes: every status and secondary-status change and every progress step (one job, or all jobs). By name, without after, the job as it stands comes first; with after: eventId, every update after that event",
    subscribe: async ({ args, context }) => {
      const ctx = context as Context;
      const job = await requireJob(ctx, args.jobName);
      const seen = new LastSeen<TrainingJobRecord>(jobIsNewer);
      const events = await openLive(ctx.services.events, {
        filter: { topics: ["jobStatus", "jobProgress"], jobName: args.jobName ?? null },
        after: args.after,
        snapshot: job ? async () => [{ topic: "jobProgress" as const, data: { job } }] : undefined,
        map: (item): Logged<{ job: TrainingJobRecord }> | undefined => {
          const e = item.data as JobStatusEvent | JobProgressEvent;
          if (!seen.accept(e.job.name, e.job)) return undefined;
          return { job: e.job, eventId: id(item) };
        },
      });
      return onClose(events, watchJob(ctx, args.jobName));
    },
  })
  trainingJobUpdated(
    @Root() e: Logged<{ job: TrainingJobRecord }>,
    @Arg("jobName", () => String, { nullable: true }) _jobName: string | null,
    @Arg("after", () => String, { nullable: true, description: "An eventId received before: resume after it" }) _after: string | null,
  ): TrainingJob {
    const job = new TrainingJob(e.job);
    job.eventId = e.eventId;
    return job;
  }

  @Subscription(() => StepsAdded, {
    description: "A trial's complete steps: those it has first (after the after cursor, if given), then each new one, then the end of training, after which the subscription completes. The trial of a known job that has not written a step yet is waited for",
    subscribe: async ({ args, context }) => {
      const ctx = context as Context;
      const { services } = ctx;
      const path = services.trials.normalize(args.path);
      const trial = await services.trials.resolve(path);
      if (!trial && !(await services.jobForTrial?.(path))) throw await services.trialPaths.notFound(args.path);
      return trialSteps({
        bus: services.events,
        path: trial?.path ?? path,
        resolve: async () => trial ?? (await services.trials.resolve(path)),
        jobEnded: async () => {
          const job = await services.jobForTrial?.(path);
          return !job || TERMINAL_JOB_STATUSES.has(job.status);
        },
        follow: (t) => services.followTrial(t),
        after: args.after,
        waitMs: Math.min(services.config.pollIntervalMs, 1000),
      });
    },
  })
  trialStepsAdded(
    @Root() e: StepsItem,
    @Arg("path", () => String) _path: string,
    @Arg("after", () => String, { nullable: true, description: "An eventId received before: the steps after it" }) _after: string | null,
  ): StepsAdded {
    return e;
  }
}
