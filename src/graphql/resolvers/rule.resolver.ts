import { Arg, Ctx, Query, Resolver } from "type-graphql";
import type { Context } from "../context.js";
import { RuleDefinition, RuleEvaluation } from "../types/rule.types.js";
import { RuleInput } from "../inputs.js";

@Resolver()
export class RuleResolver {
  @Query(() => [RuleDefinition], { description: "Every built-in rule, with its parameters and defaults" })
  builtinRules(@Ctx() ctx: Context): RuleDefinition[] {
    return ctx.services.rules.builtinRules();
  }

  @Query(() => [RuleEvaluation], { description: "The service's rule engine, run now over the whole trial as it stands. Reports only: a firing rule's actions (webhooks, stop training) never run from a query" })
  evaluateRules(
    @Arg("path", () => String) path: string,
    @Arg("rules", () => [RuleInput]) rules: RuleInput[],
    @Ctx() ctx: Context,
  ): Promise<RuleEvaluation[]> {
    return ctx.services.rules.evaluate(path, rules, { signal: ctx.signal });
  }
}
