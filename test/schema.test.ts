import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { buildSchema, isEnumType, isInputObjectType, isObjectType, isScalarType, getNamedType, type GraphQLNamedType } from "graphql";
import { printSchemaSdl } from "../src/graphql/schema.js";
import { FIXTURES } from "./support/fixtures.js";

const committed = readFileSync(path.resolve(__dirname, "../schema/schema.graphql"), "utf8");

test("schema/schema.graphql is what the code emits (run `npm run schema` after changing the API)", async () => {
  assert.equal(await printSchemaSdl(), committed);
});

test("the schema keeps every name of the public contract, with compatible types", () => {
  const contract = buildSchema(readFileSync(path.join(FIXTURES, "../spec/schema-contract.graphql"), "utf8"));
  const ours = buildSchema(committed);
  const typeString = (t: { toString(): string }) => t.toString();
  for (const type of Object.values(contract.getTypeMap())) {
    if (type.name.startsWith("__")) continue;
    const mine = ours.getType(type.name) as GraphQLNamedType | undefined;
    assert.ok(mine, `type ${type.name} is missing`);
    assert.equal(mine.constructor.name, type.constructor.name, `${type.name} is of the same kind`);
    if (isEnumType(type) && isEnumType(mine)) {
      for (const v of type.getValues()) assert.ok(mine.getValue(v.name), `enum ${type.name}.${v.name}`);
    }
    if ((isObjectType(type) && isObjectType(mine)) || (isInputObjectType(type) && isInputObjectType(mine))) {
      const myFields = mine.getFields() as Record<string, any>;
      for (const [name, field] of Object.entries(type.getFields() as Record<string, any>)) {
        const f = myFields[name];
        assert.ok(f, `field ${type.name}.${name} is missing`);
        assert.equal(typeString(f.type), typeString(field.type), `${type.name}.${name} has type ${field.type}`);
        for (const arg of field.args ?? []) {
          const a = f.args.find((x: any) => x.name === arg.name);
          assert.ok(a, `argument ${type.name}.${name}(${arg.name}) is missing`);
          assert.equal(typeString(a.type), typeString(arg.type), `${type.name}.${name}(${arg.name})`);
        }
      }
    }
    if (isScalarType(type)) assert.ok(isScalarType(getNamedType(mine)));
  }
});
