import { Arg, Ctx, FieldResolver, Int, Query, Resolver, Root } from "type-graphql";
import type { Context } from "../context.js";
import { badInput } from "../../errors.js";
import { Collection, Tensor, Trial } from "../types/trial.types.js";
import { Mode } from "../enums.js";
import type { Mode as ModeName } from "../../format/tensor.js";

@Resolver(() => Trial)
export class TrialResolver {
  @Query(() => Trial, {
    nullable: true,
    description: 's3://bucket/prefix, or a path relative to the data directory (e.g. "trials/example"). Null when nothing is there: trialPaths(near: path) lists the closest known paths',
  })
  async trial(@Arg("path", () => String) path: string, @Ctx() ctx: Context): Promise<Trial | null> {
    const trial = await ctx.services.trials.resolve(path);
    return trial && new Trial(trial);
  }

  @Query(() => [Trial], { description: "Trials under the data directory's trials/ and those of known jobs" })
  async trials(@Ctx() ctx: Context): Promise<Trial[]> {
    const paths = await ctx.services.trialPaths.list();
    const trials = await Promise.all(paths.map((p) => ctx.services.trials.resolve(p).catch(() => null)));
    return trials.filter((t) => t !== null).map((t) => new Trial(t!));
  }

  @Query(() => [String], {
    description: "Paths of the trials the service knows (as `trials` lists them), without opening them. With `near`, the closest to it first (edit distance): what a mistyped trial(path:) meant",
  })
  async trialPaths(
    @Ctx() ctx: Context,
    @Arg("near", () => String, { nullable: true }) near: string | null | undefined,
    @Arg("first", () => Int, { nullable: true, defaultValue: 20, description: "At most this many (1 to 1000)" }) first: number,
  ): Promise<string[]> {
    if (!Number.isInteger(first) || first < 1 || first > 1000) throw badInput("first must be from 1 to 1000", "first");
    return near == null ? (await ctx.services.trialPaths.list()).slice(0, first) : ctx.services.trialPaths.near(near, first);
  }

  @FieldResolver(() => [String], { description: "Sorted; regex uses search semantics, collection filters by membership" })
  tensorNames(
    @Root() t: Trial,
    @Arg("regex", () => String, { nullable: true }) regex: string | null,
    @Arg("collection", () => String, { nullable: true }) collection: string | null,
    @Arg("mode", () => Mode, { nullable: true }) mode: ModeName | null,
    @Arg("step", () => Int, { nullable: true }) step: number | null,
  ): string[] {
    return t.trial.tensorNames({ regex, collection, mode, step });
  }

  @FieldResolver(() => Tensor, { nullable: true })
  tensor(@Root() t: Trial, @Arg("name", () => String) name: string): Tensor | null {
    return t.trial.hasTensor(name) ? new Tensor(t.trial, name) : null;
  }

  @FieldResolver(() => [Tensor])
  tensors(
    @Root() t: Trial,
    @Arg("regex", () => String, { nullable: true }) regex: string | null,
    @Arg("collection", () => String, { nullable: true }) collection: string | null,
    @Arg("mode", () => Mode, { nullable: true }) mode: ModeName | null,
  ): Tensor[] {
    return t.trial.tensorNames({ regex, collection, mode }).map((n) => new Tensor(t.trial, n));
  }

  @FieldResolver(() => [Collection])
  collections(@Root() t: Trial): Collection[] {
    return t.trial.allCollections().map((c) => new Collection(t.trial, c));
  }

  @FieldResolver(() => Collection, { nullable: true })
  collection(@Root() t: Trial, @Arg("name", () => String) name: string): Collection | null {
    const c = t.trial.collection(name);
    return c && new Collection(t.trial, c);
  }

  @FieldResolver(() => [Int], { description: "Complete steps; mode steps for TRAIN, EVAL or PREDICT" })
  steps(@Root() t: Trial, @Arg("mode", () => Mode, { nullable: true }) mode: ModeName | null): number[] {
    return t.trial.steps(mode);
  }

  @FieldResolver(() => [Mode], { description: "Modes seen other than GLOBAL" })
  modes(@Root() t: Trial): string[] {
    return t.trial.modes();
  }

  @FieldResolver(() => [String])
  workers(@Root() t: Trial): string[] {
    return t.trial.workers;
  }

  @FieldResolver(() => Int, { nullable: true })
  lastCompleteStep(@Root() t: Trial): number | null {
    return t.trial.lastCompleteStep;
  }

  @FieldResolver(() => Boolean)
  trainingEnded(@Root() t: Trial): boolean {
    return t.trial.trainingEnded;
  }
}

@Resolver(() => Collection)
export class CollectionResolver {
  @FieldResolver(() => [String], { description: "Saved tensors that belong to the collection" })
  tensorNames(@Root() c: Collection): string[] {
    return c.trial.tensorNames({ collection: c.name });
  }

  @FieldResolver(() => [Tensor])
  tensors(@Root() c: Collection): Tensor[] {
    return c.trial.tensorNames({ collection: c.name }).map((n) => new Tensor(c.trial, n));
  }

  @FieldResolver(() => [String], { description: "Names listed in the collections file (may be incomplete)" })
  listedTensorNames(@Root() c: Collection): string[] {
    return c.info.tensorNames;
  }
}
