/** Tensor values as the reader and writer exchange them: flat, row-major, typed by a dtype name. */

export type Mode = "TRAIN" | "EVAL" | "PREDICT" | "GLOBAL";
export const MODES: readonly Mode[] = ["TRAIN", "EVAL", "PREDICT", "GLOBAL"];
/** smdebug's ModeKeys numbering, used in the event's plugin data. */
export const MODE_NUMBER: Record<Mode, number> = { TRAIN: 1, EVAL: 2, PREDICT: 3, GLOBAL: 4 };

export type DType =
  | "float16" | "bfloat16" | "float32" | "float64"
  | "int8" | "int16" | "int32" | "int64"
  | "uint8" | "uint16" | "uint32" | "uint64"
  | "bool" | "string" | "complex64" | "complex128";

export interface TensorData {
  dtype: DType;
  /** One entry per axis; smdebug stores scalars as [1]. */
  shape: number[];
  /** Numeric elements, flattened row-major, widened to float64 (complex: interleaved re, im). Null for strings. */
  values: Float64Array | null;
  /** String elements (UTF-8 decoded). Null for numeric tensors. */
  strings: string[] | null;
}

/** One decoded event record: a tensor at a step. */
export interface TensorRecord extends TensorData {
  name: string;
  step: number;
  wallTime: number;
  mode: Mode;
  modeStep: number;
}

/** What a writer needs to encode one tensor. */
export interface TensorInput {
  name: string;
  dtype: DType;
  shape: number[];
  values?: ArrayLike<number>;
  strings?: string[];
}
