import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { crc32c, FOOTER_MAGIC, maskedCrc32c } from "../src/format/crc32c.js";
import { frameRecord, readRecord, RecordError } from "../src/format/tfrecord.js";
import { decodeEvent, encodeEvent, EventDecodeError } from "../src/format/event.js";
import { ProtoWriter } from "../src/format/protobuf.js";
import { EntryColumns, EntryNames, parseIndexFile } from "../src/format/index-file.js";
import { compilePythonRegex, PythonRegexError } from "../src/format/python-regex.js";
import { parseIndexKey } from "../src/format/locations.js";
import { ABALONE_TRIAL } from "./support/fixtures.js";

const le64 = (n: number) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(n)); return b; };

test("CRC-32C check value and TFRecord masks (spec test vectors)", () => {
  assert.equal(crc32c(Buffer.from("123456789")), 0xe3069283);
  assert.equal(maskedCrc32c(le64(0)), 0x07980329);
  assert.equal(maskedCrc32c(le64(84)), 0x8745515f);
  assert.equal(maskedCrc32c(le64(100)), 0xdf1c5f43);
  assert.equal(FOOTER_MAGIC, 0x062dc0b3);
});

test("framing round-trips; the footer may be the magic constant or the real payload CRC", () => {
  const payload = Buffer.from("hello smdebug");
  for (const real of [false, true]) {
    const rec = frameRecord(payload, real);
    const span = readRecord(rec, 0);
    assert.equal(rec.subarray(span.start, span.end).toString(), "hello smdebug");
    assert.equal(span.next, rec.length);
  }
});

test("framing errors: bad length CRC, bad footer, truncation — each with its offset", () => {
  const rec = frameRecord(Buffer.from("abc"));
  const badLen = Buffer.from(rec); badLen[9] ^= 1;
  assert.throws(() => readRecord(badLen, 0), (e: any) => e instanceof RecordError && /length CRC/.test(e.message) && e.offset === 0);
  const badFooter = Buffer.from(rec); badFooter[badFooter.length - 1] ^= 1;
  assert.throws(() => readRecord(badFooter, 0), /payload CRC/);
  const twice = Buffer.concat([rec, rec.subarray(0, rec.length - 2)]);
  assert.equal(readRecord(twice, 0).next, rec.length);
  assert.throws(() => readRecord(twice, rec.length), (e: any) => /truncated/.test(e.message) && e.offset === rec.length);
  assert.throws(() => readRecord(rec.subarray(0, 5), 0), /truncated record header/);
});

test("our encoder writes byte-identical records to smdebug's (every record of two steps)", () => {
  for (const step of ["000000000000", "000000000035"]) {
    const bytes = readFileSync(path.join(ABALONE_TRIAL, `events/${step}/${step}_worker_0.tfevents`));
    let offset = 0;
    let records = 0;
    while (offset < bytes.length) {
      const span = readRecord(bytes, offset);
      const original = decodeEvent(bytes, span.start, span.end)!;
      const mine = encodeEvent({ name: original.name, dtype: original.dtype, shape: original.shape, values: original.values! }, original.step, original.mode, original.modeStep, original.wallTime);
      assert.deepEqual(Buffer.from(mine), bytes.subarray(span.start, span.end), `${original.name} at ${step}`);
      assert.deepEqual(frameRecord(mine), bytes.subarray(offset, span.next));
      offset = span.next;
      records++;
    }
    assert.ok(records > 30, "metrics, feature importance and SHAP records");
  }
});

test("every dtype round-trips through tensor_content; strings use dtype 0 + string_val", () => {
  const cases: [any, number[]][] = [
    ["float64", [1.5, -2, 1e300]], ["float32", [0.25, -3]], ["int8", [-128, 127]], ["uint8", [0, 255]],
    ["int16", [-32768, 5]], ["uint16", [65535]], ["int32", [-5, 2 ** 31 - 1]], ["uint32", [2 ** 32 - 1]],
    ["int64", [-(2 ** 53), 7]], ["uint64", [2 ** 53]], ["bool", [1, 0, 1]],
  ];
  for (const [dtype, values] of cases) {
    const payload = encodeEvent({ name: `t/${dtype}`, dtype, shape: [values.length], values }, 7, "TRAIN", 3, 1);
    const rec = decodeEvent(payload, 0, payload.length)!;
    assert.equal(rec.dtype, dtype);
    assert.deepEqual([...rec.values!], values, dtype);
    assert.deepEqual([rec.step, rec.mode, rec.modeStep], [7, "TRAIN", 3]);
  }
  const s = encodeEvent({ name: "trees/Feature", dtype: "string", shape: [2], strings: ["f1", "Leaf ✓"] }, 0, "GLOBAL", 0, 1);
  const rec = decodeEvent(s, 0, s.length)!;
  assert.deepEqual([rec.dtype, rec.shape, rec.strings], ["string", [2], ["f1", "Leaf ✓"]]);
});

/** Builds a TensorProto-bearing Event by hand, for fields our writer never emits. */
function eventWithTensor(tensor: ProtoWriter, extraValue?: (v: ProtoWriter) => void): Uint8Array {
  const value = new ProtoWriter().string(1, "x").message(8, tensor);
  extraValue?.(value);
  return new ProtoWriter().double(1, 1).varint(2, 12).message(5, new ProtoWriter().message(1, value)).finish();
}
const shape = (...dims: number[]) => { const s = new ProtoWriter(); for (const d of dims) s.message(2, new ProtoWriter().varint(1, d)); return s; };

test("protobuf edge cases: float16, typed *_val fields packed and unpacked, negative int64, 0-d tensors", () => {
  // float16 1.0 = 0x3c00, -2.0 = 0xc000, inf = 0x7c00
  const half = Buffer.from([0x00, 0x3c, 0x00, 0xc0, 0x00, 0x7c]);
  let p = eventWithTensor(new ProtoWriter().varint(1, 19).message(2, shape(3)).bytes(4, half));
  assert.deepEqual([...decodeEvent(p, 0, p.length)!.values!], [1, -2, Infinity]);
  // packed float_val
  const packed = Buffer.alloc(8); packed.writeFloatLE(1.5, 0); packed.writeFloatLE(2.5, 4);
  p = eventWithTensor(new ProtoWriter().varint(1, 1).message(2, shape(2)).bytes(5, packed));
  assert.deepEqual([...decodeEvent(p, 0, p.length)!.values!], [1.5, 2.5]);
  // unpacked int64_val with a negative value
  p = eventWithTensor(new ProtoWriter().varint(1, 9).message(2, shape(2)).varint(10, -3).varint(10, 4));
  const r = decodeEvent(p, 0, p.length)!;
  assert.deepEqual([...r.values!], [-3, 4]);
  assert.equal(r.step, 12);
  assert.equal(r.modeStep, 12, "mode_step defaults to the step when plugin data is absent");
  // a 0-d double
  const d = Buffer.alloc(8); d.writeDoubleLE(Math.PI);
  p = eventWithTensor(new ProtoWriter().varint(1, 2).bytes(4, d));
  assert.deepEqual(decodeEvent(p, 0, p.length)!.shape, []);
  // a simple_value summary is not a tensor
  const sv = new ProtoWriter().double(1, 1).message(5, new ProtoWriter().message(1, new ProtoWriter().string(1, "s").float(2, 0.5))).finish();
  assert.throws(() => decodeEvent(sv, 0, sv.length), /not a tensor/);
  // content that does not fit the shape
  p = eventWithTensor(new ProtoWriter().varint(1, 2).message(2, shape(3)).bytes(4, d));
  assert.throws(() => decodeEvent(p, 0, p.length), EventDecodeError);
  // truncated payload
  assert.throws(() => decodeEvent(p, 0, p.length - 3));
});

test("index files and keys: validation, worker names, step parsing", () => {
  assert.throws(() => parseIndexFile("{"), /Corrupt/);
  assert.throws(() => parseIndexFile('{"meta": {}, "tensor_payload": []}'), /meta/);
  const f = parseIndexFile('{"meta": {"mode": " TRAIN ", "mode_step": 4, "event_file_name": "events/x"}, "tensor_payload": [{"tensorname": "a", "start_idx": 0, "length": 29}]}');
  for (const bad of [[-1, 29], [0, 9], [0, 2 ** 60], [0.5, 29], [0, "29"]]) {
    assert.throws(() => parseIndexFile(JSON.stringify({ meta: { mode: "GLOBAL" }, tensor_payload: [{ tensorname: "a", start_idx: bad[0], length: bad[1] }] })), /malformed/, `entry ${bad}`);
  }
  assert.deepEqual([f.mode, f.modeStep, f.eventFile, f.to - f.from], ["TRAIN", 4, "events/x", 1]);
  assert.deepEqual(parseIndexKey("index/000000001/000000001230_worker_0.json"), { step: 1230, worker: "worker_0" });
  assert.deepEqual(parseIndexKey("index/000000000/000000000002__replica-0_task-0_device-GPU-0.json"), { step: 2, worker: "/replica:0/task:0/device:GPU:0" });
  assert.equal(parseIndexKey("index/000000000/000000000002_worker_0.json.tmp"), null);
});

/** What an index file parses to (or the error it is refused with), names spelled out. */
function parsedForm(parse: () => ReturnType<typeof parseIndexFile>, names: EntryNames): unknown {
  try {
    const f = parse();
    const entries = [];
    for (let k = f.from; k < f.to; k++) entries.push([names.list[f.entries.nameId[k]], f.entries.start[k], f.entries.length[k]]);
    return { mode: f.mode, modeStep: f.modeStep, eventFile: f.eventFile, shapes: f.shapes, entries };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

test("index files read from bytes (payloads equal to a recent file's are not parsed again) parse exactly as a whole JSON parse", () => {
  const entry = (name: string, start: number, length = 20) => ({ tensorname: name, start_idx: start, length });
  const payload = [entry("loss", 0), entry("acc", 20, 24), entry("smdebug/reductions/max/w", 44)];
  const file = (meta: object, extra = "", tensors: unknown = payload) =>
    `{"meta": ${JSON.stringify(meta)}, "tensor_payload": ${JSON.stringify(tensors, null, 1)}${extra}}`;
  const meta = (step: number, mode = "TRAIN") => ({ mode, mode_step: step, event_file_name: `events/${step}/x.tfevents` });
  const texts = [
    file(meta(0), ', "shape_payload": []'),
    file(meta(1), ', "shape_payload": []'), // the same payload bytes: a recent one
    file(meta(2, "EVAL")),
    file(meta(3), ', "shape_payload": [{"tensorname": "w", "shape": [2, 3]}]'),
    file(meta(4), ', "tensor_payload": []'), // a later duplicate key wins, as in JSON.parse
    file(meta(5), ', "tensor_payload": [{"tensorname": "z", "start_idx": 0, "length": 99}]'),
    `{"meta": {"mode": "TRAIN", "tensor_payload": ${JSON.stringify(payload, null, 1)}}, "shape_payload": []}`, // nested key only
    file({ mode: "TRAIN", mode_step: 6, event_file_name: "events/\u0036/x" }), // an escape outside the payload
    file(meta(7), "", [entry("a\"b", 0), entry("\u00e9t\u00e9", 20)]), // escapes inside it
    file(meta(8), "", [entry("shape_payload", 0), entry("x]", 20)]),
    file(meta(9), ', "x": [1], "shape_payload": []'),
    file(meta(10), "", [entry("loss", 0, 9)]), // malformed entry
    file(meta(11)).slice(0, -40), // half-written
    `\ufeff${file(meta(12))}`, // a byte order mark
    file({ mode: "TRAIN", mode_step: 13, event_file_name: "events/13/\u00e9" }, ', "shape_payload": []'),
    file({}, ', "shape_payload": []'),
    `{"meta": ${JSON.stringify(meta(14))}, "tensor_payload" : ${JSON.stringify(payload)} , "shape_payload": [] }`,
    file(meta(15), ', "shape_payload": []'), // back to the first payload
    "{}",
    "",
  ];
  const names = new EntryNames();
  const into = new EntryColumns();
  for (const text of texts) {
    const whole = new EntryNames();
    const wholeInto = new EntryColumns();
    const expected = parsedForm(() => parseIndexFile(text, whole, wholeInto), whole);
    const got = parsedForm(() => parseIndexFile(Buffer.from(text), names, into), names);
    assert.deepEqual(got, expected, text);
  }
  // The last payload read was the first one again: found among the recent ones, not parsed again.
  assert.equal(names.recent[0].bytes.toString(), JSON.stringify(payload, null, 1));
});

test("Python regexes from collections files behave as re.search", () => {
  const losses = compilePythonRegex("^[a-zA-z]+-.+(?<!(auc|map))$");
  assert.ok(losses.test("validation-rmse"));
  assert.ok(!losses.test("validation-auc"));
  const avgShap = compilePythonRegex("^average_shap/.*[^/bias]$");
  assert.ok(avgShap.test("average_shap/f1"));
  assert.ok(!avgShap.test("average_shap/bias"), "[^/bias] is a character class: names ending in s are excluded");
  assert.ok(compilePythonRegex("rmse").test("train-rmse"), "search, not match");
});

test("Python patterns run on RE2: re.search semantics, Unicode classes, $ before a final newline", () => {
  const cases: [string, string, boolean][] = [
    ["rmse", "train-rmse", true],
    ["^rmse", "train-rmse", false],
    ["(?i)RMSE$", "train-rmse", true],
    ["rmse$", "train-rmse\n", true],
    ["rmse\\Z", "train-rmse\n", false],
    ["^\\d+$", "٣٤", true],
    ["^\\w+$", "gewicht_ü", true],
    ["^\\w+$", "a-b", false],
    ["^[\\w/]+$", "feature_importance/gain/f1", true],
    ["\\s", "a\u00a0b", true],
    ["(?P<kind>gain|weight)/f\\d", "feature_importance/gain/f3", true],
    ["a{2,}", "baab", true],
    ["a{,1}b", "b", true],
    ["x{y}", "x{y}", true],
    ["[]a]", "]", true],
    ["\\x41\\u0042\\101", "ABA", true],
    ["(?<=gain/)f1", "feature_importance/gain/f1", true],
    ["(?<=weight/)f1", "feature_importance/gain/f1", false],
    ["(?#a comment)rmse", "rmse", true],
    // smdebug's PyTorch/TF collections: one top-level lookahead
    ["^(?!gradient).*weight", "MLP_fc1.weight", true],
    ["^(?!gradient).*weight", "gradient/MLP_fc1.weight", false],
    ["[Ll]oss_(?!input).*output", "CrossEntropyLoss_output_0", true],
    ["[Ll]oss_(?!input).*output", "CrossEntropyLoss_input_0", false],
    ["[Ll]oss_(?!input).*output", "Loss_input_then_loss_x_output", true],
    ["foo(?=bar)", "foobar", true],
    ["foo(?=bar)", "foobaz", false],
  ];
  for (const [pattern, text, expected] of cases) {
    assert.equal(compilePythonRegex(pattern).test(text), expected, `${pattern} on ${JSON.stringify(text)}`);
  }
});

test("patterns RE2 cannot run in linear time are refused with a reason; nested quantifiers run in linear time", () => {
  for (const [pattern, why] of [
    ["(a)\\1", /backreference/],
    ["(?P<x>a)(?P=x)", /backreference/],
    ["(foo(?=bar))", /lookahead .* outside groups/],
    ["a(?!b)c(?!d)", /lookahead .* once per pattern/],
    ["x|a(?!b)", /top-level alternation/],
    ["(?>a)", /atomic/],
    ["a{1001}", /above 1000/],
    ["a*+", /nested repetition/],
    ["(?x) a", /verbose/],
    ["[a-", /unterminated/],
    ["(", /missing|paren/i],
    ["\\q", /bad escape/],
    ["x".repeat(2001), /longer than/],
  ] as const) {
    assert.throws(() => compilePythonRegex(pattern), (e: unknown) => e instanceof PythonRegexError && why.test(e.message), pattern.slice(0, 40));
  }
  // Catastrophic for a backtracking engine (2^n paths); RE2 scans each name once.
  // (A backtracking engine would not finish this loop in our lifetime.)
  const evil = compilePythonRegex("^(a+)+$");
  for (let i = 0; i < 1000; i++) assert.equal(evil.test("a".repeat(40) + "!"), false);
});

test("a bad length CRC is caught right after a good record of the same length, and a good one after it reads", () => {
  const good = frameRecord(Buffer.from("same length"));
  const bad = Buffer.from(good);
  bad[8] ^= 0x01;
  assert.equal(readRecord(good, 0).end, 12 + 11);
  assert.throws(() => readRecord(bad, 0), (e: any) => e instanceof RecordError && /length CRC/.test(e.message));
  assert.equal(readRecord(Buffer.concat([good, good]), good.length).end, good.length + 12 + 11);
  // A header whose length bytes changed (and not its CRC) is checked anew.
  const longer = Buffer.from(good);
  longer[0] += 1;
  assert.throws(() => readRecord(longer, 0), (e: any) => e instanceof RecordError && /length CRC/.test(e.message));
});
