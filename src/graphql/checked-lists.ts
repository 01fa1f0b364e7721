/**
 * Number lists answered as they are.
 *
 * graphql-jit completes every list element by element, through the scalar's serializer, into a new
 * array: for a whole trial's series that is ~600,000 elements (boxed doubles) and ~15 ms a request,
 * redone each time for the same cached arrays. A list registered here was checked once, when it
 * was made: each element is exactly what completing it would give (null or a finite number for
 * [Float]; 32-bit integers, which are also valid Floats, for [Int]). Completion returns such a
 * list itself (jit.ts), and since it is the same array from one request to the next, the response
 * serializer finds its JSON bytes by identity instead of by content (json.ts).
 *
 * Only lists that a [Float] or [Int] field returns may be registered (Series' steps and values),
 * and they must never be modified afterwards.
 */
const checked = new WeakSet<readonly unknown[]>();

const MIN_INT = -2147483648;
const MAX_INT = 2147483647;

/** Registers `list` when every element is valid for a [Float] list (null or finite). */
export function checkedFloatList<T extends readonly (number | null)[]>(list: T): T {
  for (let i = 0; i < list.length; i++) {
    const v = list[i];
    if (v !== null && !(typeof v === "number" && Number.isFinite(v))) return list;
  }
  checked.add(list);
  return list;
}

/** Registers `list` when every element is valid for an [Int] list (and so for [Float]): 32-bit integers. */
export function checkedIntList<T extends readonly number[]>(list: T): T {
  for (let i = 0; i < list.length; i++) {
    const v = list[i];
    if (!(typeof v === "number" && Number.isInteger(v) && v >= MIN_INT && v <= MAX_INT)) return list;
  }
  checked.add(list);
  return list;
}

/** Whether `value` is a registered list (immutable, elements already complete). */
export function isCheckedList(value: unknown): value is readonly (number | null)[] {
  return typeof value === "object" && value !== null && checked.has(value as readonly unknown[]);
}
