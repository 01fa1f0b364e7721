/** Builds the executable schema from the resolver classes. */
import "reflect-metadata";
import { buildSchema, getMetadataStorage } from "type-graphql";
import { createPubSub } from "@graphql-yoga/subscription";
import { isObjectType, lexicographicSortSchema, printSchema, type GraphQLSchema } from "graphql";
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
  }).then(readFieldsDirectly);
  return built;
}

/**
 * type-graphql wraps every field, even a plain property or an argument-less getter, in a resolver
 * that builds a resolver-data object, converts its parent and dispatches middlewares (none here):
 * about a microsecond per field, per value, which a bulk read pays 281,275 times a field. Such
 * fields get the default resolver instead (a property read, which runs the getter), so graphql-jit
 * compiles them to a plain property access. Methods with arguments and fields of resolver classes
 * keep their resolvers. (Getters are only on classes whose objects the resolvers construct.)
 */
function readFieldsDirectly(schema: GraphQLSchema): GraphQLSchema {
  const storage = getMetadataStorage();
  const external = new Set<string>();
  for (const r of storage.fieldResolvers) {
    if (r.kind === "external" && r.getObjectType) external.add(`${r.getObjectType().name}.${r.methodName}`);
  }
  for (const meta of storage.objectTypes) {
    const type = schema.getType(meta.name);
    if (!isObjectType(type)) continue;
    const fields = type.getFields();
    for (const f of meta.fields ?? []) {
      const field = fields[f.schemaName];
      if (!field || f.schemaName !== f.name || field.args.length || f.params?.length || f.middlewares?.length || f.roles?.length) continue;
      if (external.has(`${meta.target.name}.${f.name}`)) continue;
      if (typeof methodOf(meta.target.prototype, f.name) === "function") continue;
      field.resolve = undefined;
    }
  }
  return schema;
}

/** The method (not getter) named `name` on a prototype chain, if any. */
function methodOf(proto: object | null, name: string): unknown {
  for (let p = proto; p && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
    const d = Object.getOwnPropertyDescriptor(p, name);
    if (d) return d.get ? undefined : d.value;
  }
  return undefined;
}

/** The SDL committed at schema/schema.graphql. */
export async function printSchemaSdl(): Promise<string> {
  return printSchema(lexicographicSortSchema(await createSchema())) + "\n";
}
