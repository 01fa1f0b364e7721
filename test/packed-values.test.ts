/**
 * Tensor.values answered as a packed list (src/graphql/packed-values.ts) writes byte for byte what
 * item-by-item completion writes: every fixture trial, the perf trial, and a written trial with
 * modes, two workers, strings, NaN/±Infinity and non-scalar values, under every selection the
 * packed path takes (aliases, __typename, fragments, @include/@skip with variables, step ranges,
 * mode and worker) and some it leaves to completion. The reference is graphql-js execution (a
 * server with jit off: it completes each value), against the default server (jit, packed).
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { parse, type FieldNode, type FragmentDefinitionNode, type GraphQLResolveInfo, type OperationDefinitionNode } from "graphql";
import { startTestServer, type TestServer } from "./support/server.js";
import { ABALONE_TRIAL, DIGITS_TRIAL, installPerfTrial } from "./support/fixtures.js";
import { writeTrialTo } from "./support/write-trial.js";
import { packedSelection } from "../src/graphql/packed-values.js";

let packed: TestServer;
let generic: TestServer;

before(async () => {
  packed = await startTestServer();
  generic = await startTestServer({ TRIALGRAPH_GRAPHQL_JIT: "false", TRIALGRAPH_DATA_DIR: packed.dataDir });
  await fs.cp(ABALONE_TRIAL, path.join(packed.dataDir, "trials/abalone"), { recursive: true });
  await fs.cp(DIGITS_TRIAL, path.join(packed.dataDir, "trials/digits"), { recursive: true });
  installPerfTrial(packed.dataDir, "trials/perf");
  const steps = [];
  for (let step = 0; step < 12; step++) {
    const mode = step < 8 ? "TRAIN" as const : "EVAL" as const;
    for (const worker of step % 3 === 0 ? ["worker_0", "worker_1"] : ["worker_0"]) {
      steps.push({
        step, mode, modeStep: mode === "TRAIN" ? step : step - 8, worker,
        tensors: {
          loss: { dtype: "float64" as const, shape: [1], values: [step === 2 ? NaN : step === 4 ? -Infinity : step === 5 ? Infinity : step === 6 ? -0 : 1 / (step + 3)] },
          rank0: { dtype: "float32" as const, shape: [], values: [step - 2.5] },
          count: { dtype: "int64" as const, shape: [1, 1], values: [step * 1_000_000_007] },
          // A scalar at some steps, a vector with non-finite elements at others.
          mixed: step % 2 ? { dtype: "float64" as const, shape: [3], values: [step, NaN, -Infinity] } : { dtype: "float64" as const, shape: [1], values: [step / 7] },
          label: { dtype: "string" as const, shape: [2], strings: [`step ${step}`, "é\u2028\"\\"] },
        },
      });
    }
  }
  await writeTrialTo(path.join(packed.dataDir, "trials/written"), steps, { workers: ["worker_0", "worker_1"] });
});

after(async () => {
  await generic?.close();
  await packed?.close();
});

/** The response's bytes as the client reads them. */
async function answer(server: TestServer, query: string, variables?: Record<string, unknown>): Promise<string> {
  const res = await fetch(server.url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query, variables }) });
  return res.text();
}

async function assertSameAnswer(query: string, variables?: Record<string, unknown>): Promise<string> {
  const ours = await answer(packed, query, variables);
  const reference = await answer(generic, query, variables);
  if (ours !== reference) {
    let at = 0;
    while (ours[at] === reference[at]) at++;
    assert.fail(`${query} ${JSON.stringify(variables ?? {})}: differs at ${at}: ${ours.slice(at - 80, at + 80)} | ${reference.slice(at - 80, at + 80)}`);
  }
  assert.equal(JSON.parse(ours).errors, undefined, ours.slice(0, 500));
  return ours;
}

const ALL_LEAVES = "__typename s: step step mode modeStep worker dtype shape data scalar size strings d: data";

const SELECTIONS: { selection: string; variables?: Record<string, unknown>; fragments?: string }[] = [
  { selection: "step data" },
  { selection: ALL_LEAVES },
  { selection: "data step data s: step __typename" },
  { selection: "...V ... on TensorValue { size mode ...W } ... { modeStep }", fragments: "fragment V on TensorValue { step ...W data } fragment W on TensorValue { dtype step }" },
  ...[true, false].flatMap((inc) => [true, false].map((skip) => ({
    selection: "step @include(if: $inc) data @skip(if: $skip) ... @include(if: $inc) { worker } scalar @skip(if: true) size @include(if: false) dtype",
    variables: { inc, skip },
  }))),
  // Left to completion item by item, and mixed with packed lists in one answer.
  { selection: "step nonFinite { index value } data" },
  { selection: "step stats { min max } histogram(bins: 2) { counts }" },
];

function queryOf(trial: string, args: string, s: (typeof SELECTIONS)[number]): string {
  const variables = s.variables ? `query ($inc: Boolean!, $skip: Boolean!)` : "";
  return `${variables} { trial(path: "${trial}") { tensors { name values${args} { ${s.selection} } } } } ${s.fragments ?? ""}`;
}

test("every selection of every fixture trial: the packed answer is the completed answer, byte for byte", async () => {
  for (const trial of ["trials/abalone", "trials/digits", "trials/written"]) {
    const worker = trial === "trials/written" ? "worker_1" : "worker_0";
    for (const args of ["", "(fromStep: 3, toStep: 7)", "(mode: TRAIN)", "(mode: EVAL, fromStep: 1)", "(mode: GLOBAL, toStep: 5)", `(worker: "${worker}")`]) {
      for (const s of SELECTIONS) {
        const text = await assertSameAnswer(queryOf(trial, args, s), s.variables);
        if (trial === "trials/written" && args === "" && s.selection === ALL_LEAVES) {
          // What the written trial holds reaches the answer: non-finite, strings, modes, workers.
          const body = JSON.parse(text);
          const byName = Object.fromEntries(body.data.trial.tensors.map((t: { name: string; values: unknown[] }) => [t.name, t.values]));
          assert.deepEqual(byName.loss[2].data, [null]);
          assert.equal(byName.loss[6].data[0], 0);
          assert.deepEqual(byName.mixed[1].data, [1, null, null]);
          assert.deepEqual(byName.label[0].strings, ["step 0", "é\u2028\"\\"]);
          assert.equal(byName.label[0].data, null);
          assert.equal(byName.loss[9].mode, "EVAL");
          assert.equal(byName.loss[9].modeStep, 1);
        }
      }
    }
  }
});

test("the whole perf trial as values { step data }, and a range of it with every leaf: byte for byte", async () => {
  await assertSameAnswer(`{ trial(path: "trials/perf") { tensors { name values { step data } } } }`);
  // Again: the columns now come from the value cache, their text from the serializer's.
  await assertSameAnswer(`{ trial(path: "trials/perf") { tensors { name values { step data } } } }`);
  await assertSameAnswer(`{ trial(path: "trials/perf") { tensors { name values { data step } } } }`);
  await assertSameAnswer(`{ trial(path: "trials/perf") { tensors { name values { step data } } } }`);
  await assertSameAnswer(queryOf("trials/perf", "(fromStep: 100, toStep: 140)", { selection: ALL_LEAVES }));
  await assertSameAnswer(`{ trial(path: "trials/perf") { a: tensor(name: "validation-rmse") { values { step } } b: tensor(name: "validation-rmse") { values { data } } } }`);
});

test("a values field selected in several places (under @include/@skip, or in a conditional fragment) answers as completion does", async () => {
  for (const inc of [true, false]) {
    await assertSameAnswer(
      `query ($inc: Boolean!) { trial(path: "trials/written") { tensors { name values { step } values @include(if: $inc) { data mode } values @skip(if: $inc) { worker } } } }`,
      { inc },
    );
    await assertSameAnswer(
      `query ($inc: Boolean!) { trial(path: "trials/written") { tensors { name ... @include(if: $inc) { values { data } } values { step } } } }`,
      { inc },
    );
  }
});

/** packedSelection for the `values` field of `query`, as execution would pass it. */
function selectionOf(query: string, variables: Record<string, unknown> = {}): string[] | null {
  const doc = parse(query);
  const operation = doc.definitions.find((d): d is OperationDefinitionNode => d.kind === "OperationDefinition")!;
  const fragments = Object.fromEntries(doc.definitions.filter((d): d is FragmentDefinitionNode => d.kind === "FragmentDefinition").map((f) => [f.name.value, f]));
  const find = (nodes: readonly FieldNode[]): FieldNode[] => nodes.flatMap((n) => (n.name.value === "values" ? [n] : find((n.selectionSet?.selections ?? []) as FieldNode[])));
  const fieldNodes = find(operation.selectionSet.selections as FieldNode[]);
  const info = { fieldNodes, fragments, variableValues: variables } as unknown as GraphQLResolveInfo;
  return packedSelection(info)?.fields.map((f) => f.key) ?? null;
}

test("the packed path takes selections of leaf fields only, its keys in the order execution collects them", () => {
  assert.deepEqual(selectionOf("{ t { values { step data } } }"), ["step", "data"]);
  assert.deepEqual(selectionOf("{ t { values { data a: step data __typename } } }"), ["data", "a", "__typename"]);
  assert.deepEqual(selectionOf("query ($x: Boolean!) { t { values { step @include(if: $x) data } } }", { x: false }), ["data"]);
  assert.deepEqual(selectionOf("query ($x: Boolean!) { t { values { step @skip(if: $x) ...F } } } fragment F on TensorValue { mode step }", { x: true }), ["mode", "step"]);
  assert.equal(selectionOf("{ t { values { step nonFinite { index } } } }"), null);
  assert.equal(selectionOf("{ t { values { stats { min } } } }"), null);
  assert.equal(selectionOf("{ t { values { histogram { counts } } } }"), null);
  assert.equal(selectionOf("{ t { values { step @other } } }"), null);
  assert.equal(selectionOf("{ t { values { ... on Other { step } } } }"), null);
  assert.equal(selectionOf("{ t { values { step } values { data } } }"), null);
});
