/** Builds the executable schema from the resolver classes. */
import "reflect-metadata";
import { buildSchema } from "type-graphql";
import { createPubSub } from "@graphql-yoga/subscription";
import { lexicographicSortSchema, printSchema, type GraphQLSchema } from "graphql";
import { CollectionResolver, TrialResolver } from "./resolvers/trial.resolver.js";
import { TensorResolver } from "./resolvers/tensor.resolver.js";
import { RuleSummaryResolver, TrainingJobResolver } from "./resolvers/job.resolver.js";
import { RuleResolver } from "./resolvers/rule.resolver.js";
import { SubscriptionResolver } from "./resolvers/subscription.resolver.js";

let built: Promise<GraphQLSchema> | null = null;

/** One schema per process: type-graphql's metadata is global, and the schema never changes. */
export function createSchema(): Promise<GraphQLSchema> {
  built ??= buildSchema({
    resolvers: [TrialResolver, CollectionResolver, TensorResolver, TrainingJobResolver, RuleSummaryResolver, RuleResolver, SubscriptionResolver],
    validate: false,
    // Every subscription brings its own `subscribe` (over the EventBus); type-graphql still wants a PubSub.
    pubSub: createPubSub(),
  });
  return built;
}

/** The SDL committed at schema/schema.graphql. */
export async function printSchemaSdl(): Promise<string> {
  return printSchema(lexicographicSortSchema(await createSchema())) + "\n";
}
