import { Field, Int, ObjectType } from "type-graphql";
import { RuleEvaluationStatus } from "../enums.js";

@ObjectType()
export class RuleParameter {
  @Field(() => String)
  name!: string;

  @Field(() => String, { nullable: true })
  default!: string | null;

  @Field(() => String, { nullable: true })
  description!: string | null;

  @Field(() => Boolean, { description: "Whether the rule cannot run without it" })
  required!: boolean;

  @Field(() => [String], {
    nullable: true,
    description: "Alternatives: the parameters (this one included) of which at least one must be given, e.g. collection_names and tensor_regex; null when the parameter is in no such group",
  })
  requiredOneOf!: string[] | null;
}

@ObjectType({ description: "A built-in rule, with SageMaker Debugger's name, parameters and defaults" })
export class RuleDefinition {
  @Field(() => String, { description: 'e.g. "LossNotDecreasing"' })
  name!: string;

  @Field(() => Boolean)
  appliesToXgboost!: boolean;

  @Field(() => [RuleParameter])
  parameters!: RuleParameter[];

  @Field(() => String, { nullable: true })
  description!: string | null;
}

@ObjectType({ description: "One rule run over a whole trial as it stands" })
export class RuleEvaluation {
  @Field(() => String)
  ruleConfigurationName!: string;

  @Field(() => RuleEvaluationStatus, { description: "ISSUES_FOUND if the condition held at any evaluated step" })
  status!: string;

  @Field(() => [Int])
  triggeredSteps!: number[];

  @Field(() => Int)
  evaluatedSteps!: number;

  @Field(() => String, { nullable: true })
  statusDetails!: string | null;
}
