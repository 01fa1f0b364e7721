/** Training job names and SDK-style string conversion. */

export const MAX_JOB_NAME_LENGTH = 63;
/** SageMaker's TrainingJobName pattern: letters/digits, hyphens only between them. */
export const JOB_NAME_PATTERN = /^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/;

export const isValidJobName = (name: string) => name.length <= MAX_JOB_NAME_LENGTH && JOB_NAME_PATTERN.test(name);

/** The Python SDK's `sagemaker_timestamp()`: UTC `YYYY-MM-DD-HH-MM-SS-mmm` (23 characters). */
export function sagemakerTimestamp(now: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${now.getUTCFullYear()}-${p(now.getUTCMonth() + 1)}-${p(now.getUTCDate())}-` +
    `${p(now.getUTCHours())}-${p(now.getUTCMinutes())}-${p(now.getUTCSeconds())}-${p(now.getUTCMilliseconds(), 3)}`;
}

/**
 * The SDK's `name_from_base`: the base cut so that `<base>-<timestamp>` fits in 63 characters.
 * A cut can leave the base ending in hyphens; the result still matches the pattern
 * because repeated hyphens are allowed between alphanumerics.
 */
export function nameFromBase(base: string, now: Date): string {
  const stamp = sagemakerTimestamp(now);
  return `${base.slice(0, MAX_JOB_NAME_LENGTH - stamp.length - 1)}-${stamp}`;
}

/** The SDK's `base_name_from_image`: the repository name of an image URI ("sagemaker-xgboost"). */
export function baseNameFromImage(image: string): string {
  const lastPart = image.split("/").pop() ?? image;
  const repo = lastPart.split("@")[0].split(":")[0];
  // Keep only what a job name accepts so an odd repository name cannot break the generated name.
  const cleaned = repo.replace(/[^a-zA-Z0-9-]+/g, "-").replace(/^-+|-+$/g, "");
  return cleaned || "training-job";
}

/**
 * A value as Python's `str()` prints it, which is how the SDK stringifies hyperparameters:
 * booleans "True"/"False", integers without a fraction, floats in Python's repr
 * (exponent form below 1e-4 and from 1e16, with at least two exponent digits).
 */
export function pythonStr(value: string | number | boolean): string {
  if (typeof value === "string") return value;
  if (typeof value === "boolean") return value ? "True" : "False";
  if (!Number.isFinite(value)) return Number.isNaN(value) ? "nan" : value > 0 ? "inf" : "-inf";
  // JSON cannot tell 5 from 5.0; whole numbers a double holds exactly print as Python ints.
  if (Number.isSafeInteger(value)) return String(value);
  // toExponential() without an argument gives the shortest round-tripping digits, as repr does.
  const [mantissa, expText] = value.toExponential().split("e");
  const exp = Number(expText);
  const negative = mantissa.startsWith("-");
  const digits = mantissa.replace("-", "").replace(".", "");
  let text: string;
  if (exp < -4 || exp >= 16) {
    const mant = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    text = `${mant}e${exp < 0 ? "-" : "+"}${String(Math.abs(exp)).padStart(2, "0")}`;
  } else if (exp < 0) {
    text = `0.${"0".repeat(-exp - 1)}${digits}`;
  } else if (digits.length > exp + 1) {
    text = `${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
  } else {
    text = `${digits}${"0".repeat(exp + 1 - digits.length)}.0`;
  }
  return negative ? `-${text}` : text;
}
