/** Assertions shared by tests. */
import assert from "node:assert/strict";
import { TrialgraphError } from "../../src/errors.js";

/** Awaits a rejection that must be a TrialgraphError with this code; returns it for further checks. */
export async function expectError(promise: Promise<unknown>, code: string): Promise<TrialgraphError> {
  let caught: unknown;
  await assert.rejects(promise, (e) => { caught = e; return true; });
  assert.ok(caught instanceof TrialgraphError, `expected TrialgraphError, got ${caught}`);
  assert.equal(caught.code, code, caught.message);
  return caught;
}
