import { Field, ID, Int, ObjectType } from "type-graphql";
import type { RuleSummaryRecord, TrainingJobRecord } from "../../jobs/types.js";
import { Backend, RuleEvaluationStatus, RuleEvaluator, TrainingJobStatus } from "../enums.js";
import { DateTimeScalar, JSONScalar } from "../scalars.js";
import { RuleFinding } from "./rule.types.js";

@ObjectType({ description: "How far a job's training got" })
export class JobProgress {
  @Field(() => Int, { description: "Boosting rounds done" })
  current!: number;

  @Field(() => Int)
  total!: number;
}

@ObjectType()
export class PageInfo {
  @Field(() => String, { nullable: true })
  endCursor!: string | null;

  @Field(() => Boolean)
  hasNextPage!: boolean;
}

@ObjectType({ description: "One entry of a rule's evaluation history: a step evaluated (or skipped), or the rule's conclusion" })
export class RuleHistoryEntry {
  @Field(() => Int, { nullable: true, description: "The evaluated global step; null for a conclusion not tied to a step" })
  step!: number | null;

  @Field(() => RuleEvaluationStatus, { description: "The rule's status after this evaluation" })
  status!: string;

  @Field(() => String)
  message!: string;

  @Field(() => DateTimeScalar)
  time!: Date;
}

@ObjectType({ description: "A page of a rule's evaluation history, oldest first" })
export class RuleHistoryConnection {
  @Field(() => [RuleHistoryEntry])
  nodes!: RuleHistoryEntry[];

  @Field(() => PageInfo)
  pageInfo!: PageInfo;
}

@ObjectType({ description: "The status of one rule on one job" })
export class RuleSummary {
  /** The job the rule belongs to (its history is looked up by job and rule). */
  readonly jobName: string;

  constructor(jobName: string, r: RuleSummaryRecord) {
    this.jobName = jobName;
    this.id = `${jobName}/${r.ruleConfigurationName}`;
    this.ruleConfigurationName = r.ruleConfigurationName;
    this.ruleEvaluationJobArn = r.ruleEvaluationJobArn;
    this.ruleEvaluationStatus = r.status;
    this.statusDetails = r.statusDetails;
    this.lastModifiedTime = r.lastModifiedTime;
    this.evaluator = r.evaluator;
    this.findings = (r.findings ?? []).map((f) => new RuleFinding(f));
  }

  @Field(() => ID, { description: "Job + rule configuration name" })
  id: string;

  @Field(() => String)
  ruleConfigurationName: string;

  @Field(() => String, { nullable: true })
  ruleEvaluationJobArn: string | null;

  @Field(() => RuleEvaluationStatus)
  ruleEvaluationStatus: string;

  @Field(() => String, { nullable: true })
  statusDetails: string | null;

  @Field(() => DateTimeScalar, { nullable: true })
  lastModifiedTime: Date | null;

  @Field(() => RuleEvaluator)
  evaluator: string;

  @Field(() => [RuleFinding], {
    description: "The first firings (at most 20) of the service's own evaluation, with step and tensors; empty for SageMaker rule jobs",
  })
  findings: RuleFinding[];
}

@ObjectType({ description: "A training job, on SageMaker or run locally by this service" })
export class TrainingJob {
  constructor(readonly record: TrainingJobRecord) {
    this.id = `${record.backend}:${record.name}`;
    this.name = record.name;
    this.arn = record.arn;
    this.backend = record.backend;
    this.status = record.status;
    this.secondaryStatus = record.secondaryStatus;
    this.failureReason = record.failureReason;
    this.createdAt = record.createdAt;
    this.startedAt = record.startedAt;
    this.endedAt = record.endedAt;
    this.hyperparameters = record.hyperparameters;
    this.debugOutputPath = record.debugOutputPath;
    this.progress = record.progress;
  }

  @Field(() => ID, { description: "Backend + job name" })
  id: string;

  @Field(() => String)
  name: string;

  @Field(() => String, { nullable: true })
  arn: string | null;

  @Field(() => Backend)
  backend: string;

  @Field(() => TrainingJobStatus)
  status: string;

  @Field(() => String, { nullable: true })
  secondaryStatus: string | null;

  @Field(() => String, { nullable: true })
  failureReason: string | null;

  @Field(() => DateTimeScalar)
  createdAt: Date;

  @Field(() => DateTimeScalar, { nullable: true })
  startedAt: Date | null;

  @Field(() => DateTimeScalar, { nullable: true })
  endedAt: Date | null;

  @Field(() => JSONScalar)
  hyperparameters: Record<string, string>;

  @Field(() => String, { nullable: true, description: "Where the job's trial is: s3://… or a data-dir path" })
  debugOutputPath: string | null;

  @Field(() => JobProgress, { nullable: true })
  progress: JobProgress | null;

  @Field(() => String, {
    nullable: true,
    description: "In trainingJobUpdated: the cursor of this event (pass it as after to resume); null in queries",
  })
  eventId: string | null = null;
}

@ObjectType()
export class TrainingJobConnection {
  @Field(() => [TrainingJob])
  nodes!: TrainingJob[];

  @Field(() => PageInfo)
  pageInfo!: PageInfo;
}

@ObjectType({ description: "A job's status changed" })
export class TrainingJobStatusChange {
  @Field(() => TrainingJob)
  job!: TrainingJob;

  @Field(() => TrainingJobStatus, { nullable: true, description: "Null on the first report (the current state a subscription starts with)" })
  previousStatus!: string | null;

  @Field(() => String, { description: "This event's cursor: subscribe again with after: eventId to get what followed it" })
  eventId!: string;
}

@ObjectType({ description: "A rule's status changed" })
export class RuleStatusChange {
  @Field(() => String)
  jobName!: string;

  @Field(() => RuleSummary)
  rule!: RuleSummary;

  @Field(() => RuleEvaluationStatus, { nullable: true, description: "Null on the first report (the current state a subscription starts with)" })
  previousStatus!: string | null;

  @Field(() => String, { description: "This event's cursor: subscribe again with after: eventId to get what followed it" })
  eventId!: string;
}
