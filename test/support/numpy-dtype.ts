/** numpy's dtype.str for a value as smdebug's reader returns it (the goldens speak numpy). */
import type { TensorData } from "../../src/format/tensor.js";

const NUMPY: Record<string, string> = {
  float16: "<f2", float32: "<f4", float64: "<f8", int8: "|i1", int16: "<i2", int32: "<i4", int64: "<i8",
  uint8: "|u1", uint16: "<u2", uint32: "<u4", uint64: "<u8", bool: "|b1", complex64: "<c8", complex128: "<c16", bfloat16: "<V2",
};

export function numpyDtype(v: TensorData): string {
  if (v.strings) return `<U${Math.max(1, ...v.strings.map((s) => [...s].length))}`;
  return NUMPY[v.dtype];
}
