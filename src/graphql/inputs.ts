import { ArgsType, Field, InputType, Int } from "type-graphql";
import { Backend, Mode, RuleEvaluator } from "./enums.js";
import type { Mode as ModeName } from "../format/tensor.js";
import { JSONScalar } from "./scalars.js";

@InputType()
export class AlgorithmInput {
  @Field(() => String, { nullable: true, description: '"xgboost"' })
  builtin?: string | null;

  @Field(() => String, { nullable: true, description: 'e.g. "0.90-2", "1.7-1"' })
  version?: string | null;

  @Field(() => String, { nullable: true, description: "A full training image URI instead of builtin" })
  image?: string | null;
}

@InputType()
export class ChannelInput {
  @Field(() => String, { description: '"train", "validation"' })
  name!: string;

  @Field(() => String, { description: "s3://… or a path relative to the data directory" })
  uri!: string;

  @Field(() => String, { nullable: true, description: '"libsvm", "text/csv"' })
  contentType?: string | null;
}

@InputType()
export class CollectionConfigInput {
  @Field(() => String)
  name!: string;

  @Field(() => JSONScalar, { nullable: true, description: 'e.g. {"save_interval": "5"}' })
  parameters?: Record<string, string | number | boolean> | null;
}

@InputType()
export class DebugHookConfigInput {
  @Field(() => String, { nullable: true })
  s3OutputPath?: string | null;

  @Field(() => JSONScalar, { nullable: true })
  hookParameters?: Record<string, string | number | boolean> | null;

  @Field(() => [CollectionConfigInput], { nullable: true })
  collectionConfigs?: CollectionConfigInput[] | null;
}

@InputType()
export class RuleInput {
  @Field(() => String, { nullable: true, description: 'A built-in rule name, e.g. "LossNotDecreasing"' })
  builtin?: string | null;

  @Field(() => String, { nullable: true, description: "RuleConfigurationName; defaults to the builtin name" })
  name?: string | null;

  @Field(() => JSONScalar, { nullable: true, description: 'e.g. {"collection_names": "metrics", "num_steps": "10"}' })
  parameters?: Record<string, string | number | boolean> | null;

  @Field(() => RuleEvaluator, { nullable: true })
  evaluator?: "SAGEMAKER" | "SERVICE" | null;

  @Field(() => String, { nullable: true })
  instanceType?: string | null;

  @Field(() => Int, { nullable: true })
  volumeSizeInGB?: number | null;

  @Field(() => String, { nullable: true, description: "Custom SageMaker rules: the rule evaluator image" })
  image?: string | null;

  @Field(() => String, { nullable: true, description: "Custom SageMaker rules: the rule source (s3://…)" })
  ruleSourceS3Uri?: string | null;
}

@InputType()
export class StartTrainingJobInput {
  @Field(() => Backend, { nullable: true })
  backend?: "LOCAL" | "SAGEMAKER" | null;

  @Field(() => String, { nullable: true, description: "Exact job name; or give baseJobName" })
  name?: string | null;

  @Field(() => String, { nullable: true })
  baseJobName?: string | null;

  @Field(() => AlgorithmInput)
  algorithm!: AlgorithmInput;

  @Field(() => JSONScalar, { nullable: true, description: "Object of string, number or boolean values" })
  hyperparameters?: Record<string, string | number | boolean> | null;

  @Field(() => [ChannelInput])
  inputs!: ChannelInput[];

  @Field(() => String, { nullable: true })
  outputPath?: string | null;

  @Field(() => String, { nullable: true })
  instanceType?: string | null;

  @Field(() => Int, { nullable: true })
  instanceCount?: number | null;

  @Field(() => Int, { nullable: true })
  volumeSizeInGB?: number | null;

  @Field(() => Int, { nullable: true })
  maxRuntimeSeconds?: number | null;

  @Field(() => String, { nullable: true })
  roleArn?: string | null;

  @Field(() => DebugHookConfigInput, { nullable: true })
  debugHookConfig?: DebugHookConfigInput | null;

  @Field(() => [RuleInput], { nullable: true })
  rules?: RuleInput[] | null;
}

// ---- arguments shared by a tensor's step-ranged fields (values, series, statistics, histograms)

@ArgsType()
export class StepRangeArgs {
  @Field(() => Int, { nullable: true, description: "First step (inclusive); steps of `mode` when it is given" })
  fromStep?: number | null;

  @Field(() => Int, { nullable: true, description: "Last step (inclusive)" })
  toStep?: number | null;

  @Field(() => Mode, { nullable: true, description: "Steps of this mode only, numbered by mode step; GLOBAL steps otherwise" })
  mode?: ModeName | null;
}

@ArgsType()
export class WorkerStepsArgs extends StepRangeArgs {
  @Field(() => String, { nullable: true, description: "One worker's values (the steps it wrote)" })
  worker?: string | null;
}

@ArgsType()
export class SeriesArgs extends WorkerStepsArgs {
  @Field(() => Int, { nullable: true, description: "At most this many points (2 or more): the first, the last and each bucket's extremes" })
  maxPoints?: number | null;
}
