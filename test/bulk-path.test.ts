/**
 * The bulk read path of issue 16 answers exactly what the general path answers: Tensor.values
 * (packed columns) against Tensor.value (full decode) for every step, with graphql-jit and with
 * graphql-js execution; and the response serializer writes byte for byte what JSON.stringify writes.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { startTestServer, type TestServer } from "./support/server.js";
import { TrialWriter } from "../src/trials/trial-writer.js";
import { JsonStringifier } from "../src/graphql/json.js";
import { checkedFloatList, checkedIntList, isCheckedList } from "../src/graphql/checked-lists.js";

let jit: TestServer;
let plain: TestServer;

before(async () => {
  jit = await startTestServer();
  plain = await startTestServer({ TRIALGRAPH_GRAPHQL_JIT: "false", TRIALGRAPH_DATA_DIR: jit.dataDir });
  const w = new TrialWriter(path.join(jit.dataDir, "trials/mixed"));
  for (let step = 0; step < 6; step++) {
    await w.writeStep(step, [
      { name: "f32", dtype: "float32", shape: [1], values: [step / 3] },
      { name: "f64", dtype: "float64", shape: [1], values: [step === 2 ? NaN : step === 4 ? -Infinity : step * 1.25] },
      { name: "i64", dtype: "int64", shape: [1], values: [step * 1000] },
      { name: "rank0", dtype: "float64", shape: [], values: [step - 2.5] },
      { name: "rank2", dtype: "float32", shape: [1, 1], values: [step] },
      // Scalar at some steps, a vector at others: one column holds both kinds.
      step % 2
        ? { name: "mixed", dtype: "float64", shape: [3], values: [step, NaN, -step] }
        : { name: "mixed", dtype: "float64", shape: [1], values: [step] },
    ]);
  }
  await w.end();
  // Long enough for the serializer's number-list path (64 elements or more).
  const long = new TrialWriter(path.join(jit.dataDir, "trials/long"));
  for (let step = 0; step < 100; step++) {
    await long.writeStep(step * 10, [{ name: "loss", dtype: "float64", shape: [1], values: [step === 7 ? NaN : step === 50 ? Infinity : 1 / (step + 1)] }]);
  }
  await long.end();
});

after(async () => {
  await plain?.close();
  await jit?.close();
});

const FIELDS = "step dtype shape data scalar size strings nonFinite { index value } mode modeStep worker";

test("Tensor.values (packed columns) answers what Tensor.value answers at each step, with jit and with graphql-js", async () => {
  const names = ["f32", "f64", "i64", "rank0", "rank2", "mixed"];
  for (const server of [jit, plain]) {
    const bulk = await server.gql(`{ trial(path: "trials/mixed") { ${names.map((n) => `${n}: tensor(name: "${n}") { values { ${FIELDS} } }`).join(" ")} } }`);
    assert.equal(bulk.body.errors, undefined, JSON.stringify(bulk.body.errors));
    const single = await server.gql(`{ trial(path: "trials/mixed") { ${names.flatMap((n) => [0, 1, 2, 3, 4, 5].map((s) => `${n}_${s}: tensor(name: "${n}") { value(step: ${s}) { ${FIELDS} } }`)).join(" ")} } }`);
    assert.equal(single.body.errors, undefined, JSON.stringify(single.body.errors));
    for (const n of names) {
      const values = bulk.body.data.trial[n].values;
      assert.equal(values.length, 6);
      values.forEach((v: unknown, s: number) => assert.deepEqual(v, single.body.data.trial[`${n}_${s}`].value, `${n} at step ${s}`));
    }
    // Spot checks of what both paths agree on.
    assert.deepEqual(bulk.body.data.trial.f64.values[2].nonFinite, [{ index: 0, value: "NaN" }]);
    assert.deepEqual(bulk.body.data.trial.rank0.values[0].shape, []);
    assert.deepEqual(bulk.body.data.trial.rank2.values[3].shape, [1, 1]);
    assert.equal(bulk.body.data.trial.i64.values[5].dtype, "int64");
    assert.deepEqual(bulk.body.data.trial.mixed.values[1].data, [1, null, -1]);
  }
  // Answered again from the cached columns: the same.
  const again = await jit.gql(`{ trial(path: "trials/mixed") { tensor(name: "f64") { values { ${FIELDS} } } } }`);
  const first = await plain.gql(`{ trial(path: "trials/mixed") { tensor(name: "f64") { values { ${FIELDS} } } } }`);
  assert.deepEqual(again.body, first.body);
});

test("errors keep their codes under jit: one refusal per cause, a missing step is TENSOR_UNAVAILABLE_FOR_STEP", async () => {
  const r = await jit.gql(`{ trial(path: "trials/mixed") { tensor(name: "f32") { value(step: 99) { scalar } } } }`);
  assert.equal(r.body.errors?.[0]?.extensions.code, "TENSOR_UNAVAILABLE_FOR_STEP", JSON.stringify(r.body));
  const bad = await jit.gql(`{ trial(path: "../x") { id } }`);
  assert.equal(bad.body.errors?.[0]?.extensions.code, "FORBIDDEN_PATH", JSON.stringify(bad.body));
});

test("the response serializer writes what JSON.stringify writes, long number lists included, cached or not", () => {
  const json = new JsonStringifier();
  const list = (n: number, f: (i: number) => number | null) => Array.from({ length: n }, (_, i) => f(i));
  const value = {
    data: {
      series: [
        { steps: list(100, (i) => i), values: list(100, (i) => (i % 9 ? i / 7 : null)) },
        { steps: list(100, (i) => i), values: list(100, (i) => -i * 1e-300) },
        { steps: list(63, (i) => i), values: list(63, () => 0.1) },
      ],
      mixed: [...list(80, (i) => i), "text"],
      negativeZero: list(70, () => -0),
      // A string that looks like a marker cannot be mistaken for one (the marker's nonce is random).
      strings: ["\u0000tgjson0:0", '"quoted"', "\\"],
      nested: { deeper: { numbers: list(200, (i) => Math.sin(i)) } },
    },
    errors: undefined,
  };
  const expected = JSON.stringify(value) + "\n";
  assert.equal(json.stringify(value), expected);
  assert.equal(json.stringify(value), expected, "the second time, from the cache");
  assert.ok(json.hits > 0, "long lists were served from the cache the second time");
  // The answer object is left as it was.
  assert.equal(JSON.stringify(value) + "\n", expected);
  // Same numbers in another list of the same length: same text; different numbers: their own.
  const other = { a: list(100, (i) => i), b: list(100, (i) => i + 1) };
  assert.equal(json.stringify(other), JSON.stringify(other) + "\n");
});

test("series are answered alike by jit (cached lists answered as they are) and graphql-js, the first time and again", async () => {
  const q = (trial: string, tensor: string) =>
    `{ trial(path: "${trial}") { tensor(name: "${tensor}") { all: series { steps globalSteps values nonFinite { index value } totalPoints } ` +
    `part: series(fromStep: 100, toStep: 500) { steps values } few: series(maxPoints: 10) { steps values sampled } } } }`;
  for (const [trial, tensor] of [["trials/long", "loss"], ["trials/mixed", "f64"]]) {
    const expected = await plain.gql(q(trial, tensor));
    assert.equal(expected.body.errors, undefined, JSON.stringify(expected.body.errors));
    for (let i = 0; i < 3; i++) {
      const got = await jit.gql(q(trial, tensor));
      assert.deepEqual(got.body, expected.body, `${trial} (${i})`);
    }
  }
  const long = (await jit.gql(q("trials/long", "loss"))).body.data.trial.tensor.all;
  assert.equal(long.steps.length, 100);
  assert.equal(long.values[7], null);
  assert.deepEqual(long.nonFinite, [{ index: 7, value: "NaN" }, { index: 50, value: "Infinity" }]);
});

test("only lists whose every element completes to itself are registered to be answered as they are", () => {
  assert.ok(isCheckedList(checkedFloatList([1.5, null, -0, 3])));
  assert.ok(!isCheckedList(checkedFloatList([1.5, NaN])), "NaN is not a Float");
  assert.ok(!isCheckedList(checkedFloatList([1, Infinity])), "Infinity is not a Float");
  assert.ok(isCheckedList(checkedIntList([0, -5, 2147483647, -2147483648])));
  assert.ok(!isCheckedList(checkedIntList([2147483648])), "beyond 32 bits is not an Int");
  assert.ok(!isCheckedList(checkedIntList([1.5])), "a fraction is not an Int");
  assert.ok(!isCheckedList([1, 2, 3]), "unregistered");
});
