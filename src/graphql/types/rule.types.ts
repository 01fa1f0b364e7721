import { Field, Int, ObjectType } from "type-graphql";
import type { RuleFinding as RuleFindingRecord } from "../../jobs/types.js";
import { Mode, RuleEvaluationStatus } from "../enums.js";

@ObjectType({ description: "One step at which a rule found an issue, with the tensors that met its condition" })
export class RuleFinding {
  constructor(f: RuleFindingRecord) {
    this.step = f.step;
    this.mode = f.mode;
    this.modeStep = f.modeStep;
    this.tensorNames = f.tensorNames;
    this.message = f.message;
  }

  @Field(() => Int, { description: "Global step" })
  step: number;

  @Field(() => Mode)
  mode: string;

  @Field(() => Int, { description: "The step within mode (the global step for GLOBAL)" })
  modeStep: number;

  @Field(() => [String], { description: "The tensors that met the condition; empty for rules about the run itself (a stall)" })
  tensorNames: string[];

  @Field(() => String, { description: "What the rule saw at this step" })
  message: string;
}

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

  @Field(() => [RuleFinding], { description: "The first firings (at most 20), with step and tensors" })
  findings!: RuleFinding[];
}
