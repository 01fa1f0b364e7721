/**
 * Apollo's document store (and with it the compiled queries kept per document) is bounded by the text
 * of the queries it keeps, least recently used first out; the service answers queries it evicted.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { parse } from "graphql";
import { DocumentStore } from "../src/graphql/document-store.js";
import { startTestServer } from "./support/server.js";

const query = (i: number) => `{ t${i}: trial(path: "trials/example") { steps } }`;

test("keeps documents up to its budget of query text, evicting the least recently used", async () => {
  const one = query(10).length + 256;
  const store = new DocumentStore(one * 3);
  for (const i of [10, 11, 12]) await store.set(`k${i}`, parse(query(i)));
  assert.equal(store.count, 3);
  assert.ok(await store.get("k10"), "k10 used: k11 is now the least recently used");
  await store.set("k13", parse(query(13)));
  assert.equal(store.count, 3);
  assert.equal(await store.get("k11"), undefined);
  for (const k of ["k10", "k12", "k13"]) assert.ok(await store.get(k), k);
  assert.equal(await store.delete("k12"), true);
  assert.equal(store.count, 2);
});

test("a document larger than the whole budget is not kept", async () => {
  const store = new DocumentStore(100);
  await store.set("big", parse(query(1)));
  assert.equal(store.count, 0);
});

test("the service answers thousands of distinct queries, and again the first ones once they were evicted", async () => {
  const server = await startTestServer();
  try {
    for (let i = 0; i < 2_000; i++) {
      const { body } = await server.gql(query(i));
      assert.equal(body.data[`t${i}`].steps.length, 100, JSON.stringify(body).slice(0, 300));
    }
    const { body } = await server.gql(query(0));
    assert.equal(body.data.t0.steps.length, 100);
  } finally {
    await server.close();
  }
});
