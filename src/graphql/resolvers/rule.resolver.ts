import { Arg, Ctx, Query, Resolver } from "type-graphql";
import type { Context } from "../context.js";
import { RuleDefinition, RuleEvaluation, RuleFinding } from "../types/rule.types.js";
import { RuleInput } from "../inputs.js";

@Resolver()
export class RuleResolver {
  @Query(() => [RuleDefinition], { description: "Every built-in rule, with its parameters and defaults" })
  builtinRules(@Ctx() ctx: Context): RuleDefinition[] {
    return ctx.services.rules.builtinRules();
  }

  @Query(() => [RuleEvaluation], { description: "The service's rule engine, run now over the whole trial as it stands. Reports only: a firing rule's actions (webhooks, stop training) never run from a query" })
  async evaluateRules(
    @Arg("path", () => String) path: string,
    @Arg("rules", () => [RuleInput]) rules: RuleInput[],
    @Ctx() ctx: Context,
  ): Promise<RuleEvaluation[]> {
    const results = await ctx.services.rules.evaluate(path, rules, { signal: ctx.signal });
    return results.map((r) => ({ ...r, findings: r.findings.map((f) => new RuleFinding(f)) }));
  }
}
