/**
 * Training data as SageMaker's XGBoost container takes it: LIBSVM (`<label>[:weight] <index>:<value> ...`,
 * indices 0-based as XGBoost reads them) or CSV (label in the first column, no header). Parsed into
 * CSR arrays for XGDMatrixCreateFromCSREx. Errors name the file and line.
 */
import fs from "node:fs/promises";
import path from "node:path";
import { TrialgraphError } from "../../errors.js";
import { confinedDir, confinement, openConfined, type FileLabel } from "../../storage/confine.js";

export type DataFormat = "libsvm" | "csv";

export interface ParsedData {
  /** Row offsets into indices/values, length rows + 1. */
  indptr: Float64Array;
  indices: Uint32Array;
  values: Float32Array;
  labels: Float32Array;
  /** Instance weights (LIBSVM `label:weight`), or null when no row has one. */
  weights: Float32Array | null;
  rows: number;
  /** Number of feature columns (max index + 1 for LIBSVM). */
  numCol: number;
}

/** Maps a channel ContentType to a format, as the container does ("text/x-libsvm" included). Null = unsupported. */
export function contentTypeToFormat(contentType: string | null | undefined): DataFormat | null {
  if (contentType == null || contentType === "") return "libsvm";
  const ct = contentType.toLowerCase().split(";")[0].trim();
  if (ct === "libsvm" || ct === "text/libsvm" || ct === "text/x-libsvm") return "libsvm";
  if (ct === "csv" || ct === "text/csv") return "csv";
  return null;
}

export class DataFormatError extends TrialgraphError {
  constructor(message: string, details: Record<string, unknown>) {
    super("BAD_USER_INPUT", message, details);
  }
}

const FLOAT_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const SPECIAL_RE = /^[+-]?(?:nan|inf|infinity)$/i;

/** Only called on tokens that passed isNumberToken. */
function parseNumber(token: string): number {
  if (FLOAT_RE.test(token)) return Number(token);
  if (SPECIAL_RE.test(token)) {
    const neg = token.startsWith("-");
    return /nan/i.test(token) ? Number.NaN : neg ? -Infinity : Infinity;
  }
  return Number.NaN;
}

function isNumberToken(token: string): boolean {
  return FLOAT_RE.test(token) || SPECIAL_RE.test(token);
}

class Builder {
  indptr: number[] = [0];
  indices: number[] = [];
  values: number[] = [];
  labels: number[] = [];
  weights: number[] = [];
  hasWeights = false;
  numCol = 0;

  build(): ParsedData {
    const rows = this.labels.length;
    return {
      indptr: Float64Array.from(this.indptr),
      indices: Uint32Array.from(this.indices),
      values: Float32Array.from(this.values),
      labels: Float32Array.from(this.labels),
      weights: this.hasWeights ? Float32Array.from(this.weights) : null,
      rows,
      numCol: this.numCol,
    };
  }
}

/** Splits text into lines, keeping 1-based line numbers; skips blank lines and `#` comments. */
function* lines(text: string): Generator<[number, string]> {
  let lineNo = 0;
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf("\n", start);
    if (end < 0) end = text.length;
    lineNo++;
    let line = text.slice(start, end);
    if (line.endsWith("\r")) line = line.slice(0, -1);
    start = end + 1;
    const hash = line.indexOf("#");
    if (hash >= 0) line = line.slice(0, hash);
    if (line.trim() !== "") yield [lineNo, line];
    if (end === text.length) break;
  }
}

function parseLibsvmInto(b: Builder, text: string, file: string): void {
  for (const [lineNo, line] of lines(text)) {
    const fail = (why: string) => {
      throw new DataFormatError(`${file} line ${lineNo}: malformed LIBSVM line (${why}): ${line.slice(0, 80)}`, {
        file, line: lineNo,
      });
    };
    const tokens = line.trim().split(/[ \t]+/);
    const head = tokens[0].split(":");
    if (head.length > 2 || !isNumberToken(head[0]) || (head.length === 2 && !isNumberToken(head[1]))) {
      fail(`bad label '${tokens[0]}'`);
    }
    b.labels.push(parseNumber(head[0]));
    if (head.length === 2) {
      b.hasWeights = true;
      b.weights.push(parseNumber(head[1]));
    } else {
      b.weights.push(1);
    }
    let previous = -1;
    for (let t = 1; t < tokens.length; t++) {
      const tok = tokens[t];
      const colon = tok.indexOf(":");
      if (colon <= 0 || colon === tok.length - 1) fail(`expected <index>:<value>, got '${tok}'`);
      const idxText = tok.slice(0, colon);
      const valText = tok.slice(colon + 1);
      if (idxText === "qid") fail("qid (ranking groups) is not supported by local jobs");
      if (!/^\d+$/.test(idxText)) fail(`bad feature index '${idxText}'`);
      if (!isNumberToken(valText)) fail(`bad feature value '${valText}'`);
      const idx = Number(idxText);
      if (idx > 0xfffffffe) fail(`feature index ${idx} is too large`);
      if (idx <= previous) fail(`feature indices must increase (${idx} after ${previous})`);
      previous = idx;
      b.indices.push(idx);
      b.values.push(parseNumber(valText));
      if (idx + 1 > b.numCol) b.numCol = idx + 1;
    }
    b.indptr.push(b.indices.length);
  }
}

/** The CSV delimiter: the first of , ; tab | that appears on the first line (Python's csv.Sniffer picks among these in practice). */
function sniffDelimiter(firstLine: string): string {
  for (const d of [",", "\t", ";", "|"]) if (firstLine.includes(d)) return d;
  return ",";
}

function parseCsvInto(b: Builder, text: string, file: string, expectedCols: { n: number | null }): void {
  let delimiter: string | null = null;
  for (const [lineNo, line] of lines(text)) {
    if (delimiter === null) delimiter = sniffDelimiter(line);
    const fields = line.split(delimiter);
    if (expectedCols.n === null) expectedCols.n = fields.length;
    if (fields.length !== expectedCols.n) {
      throw new DataFormatError(
        `${file} line ${lineNo}: expected ${expectedCols.n} CSV columns, found ${fields.length}`,
        { file, line: lineNo },
      );
    }
    const labelText = fields[0].trim();
    if (!isNumberToken(labelText)) {
      throw new DataFormatError(
        `${file} line ${lineNo}: the label (first column) '${labelText.slice(0, 30)}' is not a number (CSV input must have no header)`,
        { file, line: lineNo },
      );
    }
    b.labels.push(parseNumber(labelText));
    b.weights.push(1);
    for (let c = 1; c < fields.length; c++) {
      const f = fields[c].trim();
      if (f === "") continue; // missing value
      if (!isNumberToken(f)) {
        throw new DataFormatError(`${file} line ${lineNo}: column ${c + 1} '${f.slice(0, 30)}' is not a number`, {
          file, line: lineNo,
        });
      }
      const v = parseNumber(f);
      if (Number.isNaN(v)) continue;
      b.indices.push(c - 1);
      b.values.push(v);
    }
    b.indptr.push(b.indices.length);
  }
  if (expectedCols.n !== null) b.numCol = Math.max(b.numCol, expectedCols.n - 1);
}

/** Parses in-memory text (one file). `file` is only used in messages. */
export function parseData(text: string, format: DataFormat, file = "<data>"): ParsedData {
  const b = new Builder();
  if (format === "libsvm") parseLibsvmInto(b, text, file);
  else parseCsvInto(b, text, file, { n: null });
  return b.build();
}

/**
 * Reads a file, or every data file of a folder (names not starting with '.' or '_', sorted), as the
 * container does for a channel. `displayName` is what error messages call the input. Every file
 * must resolve inside `confineTo` and be a regular file (see storage/confine.ts): a link out of the
 * data directory is refused before a byte of it is read, so its content never reaches a message.
 */
export async function readDataPath(absPath: string, format: DataFormat, displayName: string, confineTo: string): Promise<ParsedData> {
  const c = confinement(confineTo);
  const base = path.resolve(confineTo);
  const keyOf = (p: string) => path.relative(base, p).split(path.sep).join("/");
  const label = (key: string): FileLabel => ({ baseDir: base, key, where: `input ${displayName}` });
  let files: string[];
  let stat;
  try {
    stat = await fs.lstat(absPath).then((st) => (st.isSymbolicLink() ? fs.stat(absPath) : st));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new DataFormatError(
      code === "ENOENT" ? `input ${displayName} does not exist` : `input ${displayName} cannot be read (${code})`,
      { file: displayName },
    );
  }
  if (stat.isDirectory()) {
    const real = await confinedDir(absPath, c, label(keyOf(absPath)));
    if (!real) throw new DataFormatError(`input ${displayName} does not exist`, { file: displayName });
    const names = (await fs.readdir(real)).filter((n) => !n.startsWith(".") && !n.startsWith("_")).sort();
    files = [];
    for (const n of names) {
      const s = await fs.stat(path.join(real, n)).catch(() => null);
      if (s?.isFile()) files.push(path.join(absPath, n));
    }
    if (files.length === 0) throw new DataFormatError(`input folder ${displayName} has no data files`, { file: displayName });
  } else {
    files = [absPath];
  }
  const b = new Builder();
  const csvCols = { n: null as number | null };
  for (const file of files) {
    const shown = files.length === 1 ? displayName : `${displayName}/${path.basename(file)}`;
    const opened = await openConfined(file, c, label(keyOf(file)));
    if (!opened) throw new DataFormatError(`input ${shown} does not exist`, { file: displayName });
    let text: string;
    try {
      text = await opened.handle.readFile("utf8");
    } catch (e) {
      throw new DataFormatError(`input ${displayName} cannot be read (${(e as NodeJS.ErrnoException).code})`, {
        file: displayName,
      });
    } finally {
      await opened.handle.close();
    }
    if (format === "libsvm") parseLibsvmInto(b, text, shown);
    else parseCsvInto(b, text, shown, csvCols);
  }
  const data = b.build();
  if (data.rows === 0) throw new DataFormatError(`input ${displayName} has no rows`, { file: displayName });
  return data;
}
