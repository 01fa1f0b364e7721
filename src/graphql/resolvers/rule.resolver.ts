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

  @Query(() => [RuleEvaluation], { description: "The service's rule engine, run now over the whole trial as it stands" })
  async evaluateRules(
    @Arg("path", () => String) path: string,
    @Arg("rules", () => [RuleInput]) rules: RuleInput[],
    @Ctx() ctx: Context,
  ): Promise<RuleEvaluation[]> {
    const results = await ctx.services.rules.evaluate(path, rules);
    return results.map((r) => ({ ...r, findings: r.findings.map((f) => new RuleFinding(f)) }));
  }
}
