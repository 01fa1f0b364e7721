/**
 * smdebug's reduction tensors (spec §4.3): a hook may save, instead of or next to a tensor, scalar
 * reductions of it as tensors of their own, named
 * `smdebug/reductions/` + (`abs_` if over absolute values) + reduction + `/` + tensor name.
 * The reader attaches them to the base tensor; they are not tensor names of the trial.
 */

export const REDUCTIONS_PREFIX = "smdebug/reductions/";

/** smdebug's ALLOWED_REDUCTIONS and ALLOWED_NORMS (reduction_config.py), the names reduction_value takes. */
export const REDUCTION_NAMES = ["min", "max", "mean", "std", "variance", "sum", "prod", "l1", "l2"] as const;
export type ReductionName = (typeof REDUCTION_NAMES)[number];

export interface ReductionRef {
  /** The tensor the reduction is of. */
  tensor: string;
  reduction: ReductionName;
  abs: boolean;
}

export function isReductionName(name: string): name is ReductionName {
  return (REDUCTION_NAMES as readonly string[]).includes(name);
}

/**
 * The base tensor, reduction and abs flag of a reduction tensor name, or null for other names.
 * As smdebug's reverse_reduction_tensor_name: split after the prefix at the first "/".
 */
export function parseReductionTensorName(name: string): ReductionRef | null {
  const at = name.indexOf(REDUCTIONS_PREFIX);
  if (at < 0) return null;
  const rest = name.slice(at + REDUCTIONS_PREFIX.length);
  const slash = rest.indexOf("/");
  if (slash <= 0 || slash === rest.length - 1) return null;
  let reduction = rest.slice(0, slash);
  const abs = reduction.startsWith("abs_");
  if (abs) reduction = reduction.slice(4);
  if (!isReductionName(reduction)) return null;
  return { tensor: rest.slice(slash + 1), reduction, abs };
}

/** The name a hook gives the reduction tensor (smdebug's get_reduction_tensor_name: ":N" suffixes dropped). */
export function reductionTensorName(tensor: string, reduction: ReductionName, abs: boolean): string {
  return `${REDUCTIONS_PREFIX}${abs ? "abs_" : ""}${reduction}/${tensor.replace(/:\d+/g, "")}`;
}
