/**
 * Python `re` patterns (what smdebug users write: collections' include_regex, rules' tensor_regex,
 * tensor_names(regex=…)) run on RE2 (re2js): matching takes time linear in the text, whatever the
 * pattern, so no pattern from a user or a file can stall the service.
 *
 * Patterns are translated from Python's dialect and matched with `re.search` semantics (anywhere in
 * the text; smdebug uses re.search for every user pattern). What RE2 cannot run in linear time is
 * refused: backreferences, lookahead inside groups or more than once, atomic groups, conditionals,
 * possessive quantifiers and repetition counts above 1000. Lookbehind runs (re2js evaluates
 * captureless lookbehind in linear time), which keeps smdebug's XGBoost `losses` pattern
 * `^[a-zA-z]+-.+(?<!(auc|map))$` working; one lookahead at the top level runs by splitting the
 * pattern, which keeps smdebug's PyTorch/TF patterns (`^(?!gradient).*weight`,
 * `[Ll]oss_(?!input).*output`) working.
 *
 * Every place a user- or file-supplied pattern is compiled goes through compilePythonRegex.
 */
import { RE2JS } from "re2js";

export class PythonRegexError extends Error {
  constructor(readonly pattern: string, why: string) {
    super(why);
    this.name = "PythonRegexError";
  }
}

/** A compiled pattern: `test` is Python's `bool(re.search(pattern, text))`. */
export interface PatternMatcher {
  readonly source: string;
  test(text: string): boolean;
}

/** Patterns longer than this are refused (RE2 compiles in time and memory proportional to the pattern). */
export const MAX_PATTERN_LENGTH = 2000;
const MAX_REPEAT = 1000;

// Python 3's str patterns are Unicode-aware: \d is any decimal digit, \w any letter or digit or _,
// \s any Unicode space. RE2's classes are ASCII, so they are spelled out (inside a class: its items).
const DIGIT = "\\p{Nd}";
const WORD_ITEMS = "\\p{L}\\p{N}_";
const SPACE_ITEMS = "\\t\\n\\v\\f\\r \\x{1c}-\\x{1f}\\x{85}\\p{Z}";

interface Flags {
  i: boolean;
  m: boolean;
  s: boolean;
  ascii: boolean;
}

/**
 * One lookahead at the top level of the pattern, A(?=L)B or A(?!L)B: RE2 has none, so the pattern is
 * split and the lookahead checked at each position where A ends (see compilePythonRegex).
 */
interface Lookahead {
  negative: boolean;
  /** Offsets of the lookahead's body, "(?:…)", in the translated source. */
  start: number;
  end: number;
}

/** Translates a Python pattern into RE2 syntax; throws PythonRegexError for what cannot run. */
export function translatePythonRegex(pattern: string): { source: string; flags: Flags; lookbehind: boolean; lookahead: Lookahead | null } {
  const fail = (why: string): never => {
    throw new PythonRegexError(pattern, why);
  };
  if (pattern.length > MAX_PATTERN_LENGTH) fail(`the pattern is longer than ${MAX_PATTERN_LENGTH} characters`);
  const flags: Flags = { i: false, m: false, s: false, ascii: false };
  let i = 0;
  // Global inline flags may only open the pattern (Python 3.11 rejects them elsewhere).
  for (let m; (m = /^\(\?([aiLmsux]+)\)/.exec(pattern.slice(i))); i += m[0].length) {
    for (const f of m[1]) {
      if (f === "x") fail("verbose patterns ((?x)) are not supported");
      if (f === "L") fail("the locale flag (?L) applies to bytes patterns only");
      if (f === "i") flags.i = true;
      if (f === "m") flags.m = true;
      if (f === "s") flags.s = true;
      if (f === "a") flags.ascii = true;
    }
  }
  let out = "";
  let lookbehind = false;
  let lookahead: Lookahead | null = null;
  /** Open groups, and the depth at which the lookahead's group closes. */
  let depth = 0;
  let lookaheadDepth = -1;
  let topLevelAlternation = false;
  const n = pattern.length;

  /** One escape at `pattern[i] === "\\"`; returns the RE2 text and advances i. */
  const escape = (inClass: boolean): string => {
    const c = pattern[i + 1];
    if (c === undefined) fail("the pattern ends with a lone backslash");
    i += 2;
    if (c >= "0" && c <= "9") {
      // \0oo and three octal digits are characters (in a class, any digits); anything else is a group reference.
      const rest = pattern.slice(i - 1);
      if (c === "0" || inClass || /^[0-7]{3}/.test(rest)) {
        const m = (c === "0" ? /^0[0-7]{0,2}/ : /^[0-7]{1,3}/).exec(rest);
        if (!m) return fail(`bad escape \\${c}`);
        const code = parseInt(m[0], 8);
        if (code > 0o377) fail(`octal escape \\${m[0]} out of range`);
        i += m[0].length - 1;
        return `\\x{${code.toString(16)}}`;
      }
      return fail(`backreferences (\\${c}) are not supported: they cannot run in linear time`);
    }
    switch (c) {
      case "A": return inClass ? fail("bad escape \\A in a character class") : "\\A";
      case "Z": return inClass ? fail("bad escape \\Z in a character class") : "\\z";
      case "b": return inClass ? "\\x{8}" : "\\b";
      case "B": return inClass ? fail("bad escape \\B in a character class") : "\\B";
      case "d": return flags.ascii ? "\\d" : DIGIT;
      case "D": return flags.ascii ? "\\D" : "\\P{Nd}";
      case "w": return flags.ascii ? "\\w" : inClass ? WORD_ITEMS : `[${WORD_ITEMS}]`;
      case "W": return flags.ascii || inClass ? "\\W" : `[^${WORD_ITEMS}]`;
      case "s": return flags.ascii ? "\\s" : inClass ? SPACE_ITEMS : `[${SPACE_ITEMS}]`;
      case "S": return flags.ascii || inClass ? "\\S" : `[^${SPACE_ITEMS}]`;
      case "a": case "f": case "n": case "r": case "t": case "v": return `\\${c}`;
      case "x": {
        const hex = /^[0-9a-fA-F]{2}/.exec(pattern.slice(i));
        if (!hex) fail("incomplete escape \\x");
        i += 2;
        return `\\x{${hex![0]}}`;
      }
      case "u": case "U": {
        const len = c === "u" ? 4 : 8;
        const hex = new RegExp(`^[0-9a-fA-F]{${len}}`).exec(pattern.slice(i));
        if (!hex) fail(`incomplete escape \\${c}`);
        i += len;
        return `\\x{${hex![0]}}`;
      }
      case "N": return fail("named characters (\\N{…}) are not supported");
      default:
        if (/[A-Za-z]/.test(c)) fail(`bad escape \\${c}`);
        // Escaped punctuation stays escaped; any other escaped character is itself.
        return /[!-/:-@[-`{-~]/.test(c) ? `\\${c}` : c;
    }
  };

  while (i < n) {
    const c = pattern[i];
    if (c === "\\") {
      out += escape(false);
      continue;
    }
    if (c === "[") {
      i++;
      out += "[";
      if (pattern[i] === "^") { out += "^"; i++; }
      // A "]" first in the class is a literal.
      if (pattern[i] === "]") { out += "\\]"; i++; }
      let closed = false;
      while (i < n) {
        const d = pattern[i];
        if (d === "]") { closed = true; i++; break; }
        if (d === "\\") { out += escape(true); continue; }
        // Python has no POSIX classes: "[" inside a class is a literal.
        out += d === "[" ? "\\[" : d;
        i++;
      }
      if (!closed) fail("unterminated character set");
      out += "]";
      continue;
    }
    if (c === "(") {
      const rest = pattern.slice(i, i + 4);
      if (rest.startsWith("(?#")) {
        const end = pattern.indexOf(")", i);
        if (end < 0) fail("unterminated comment");
        i = end + 1;
        continue;
      }
      if (rest.startsWith("(?=") || rest.startsWith("(?!")) {
        // smdebug's own collections use one, at the top level: "^(?!gradient).*weight", "[Ll]oss_(?!input).*output".
        if (depth > 0 || lookahead) fail("lookahead ((?=…), (?!…)) is supported once per pattern, outside groups: reword the pattern");
        lookahead = { negative: rest[2] === "!", start: out.length, end: -1 };
        lookaheadDepth = depth;
        depth++;
        out += "(?:";
        i += 3;
        continue;
      }
      if (rest.startsWith("(?<=") || rest.startsWith("(?<!")) {
        lookbehind = true;
        depth++;
        out += rest;
        i += 4;
        continue;
      }
      if (rest.startsWith("(?P=")) fail("backreferences ((?P=name)) are not supported: they cannot run in linear time");
      if (rest.startsWith("(?P<")) {
        const m = /^\(\?P<([A-Za-z_][A-Za-z0-9_]*)>/.exec(pattern.slice(i));
        if (!m) fail("bad group name");
        out += "(?:";
        depth++;
        i += m![0].length;
        continue;
      }
      if (rest.startsWith("(?:")) { out += "(?:"; depth++; i += 3; continue; }
      if (rest.startsWith("(?>")) fail("atomic groups ((?>…)) are not supported");
      if (rest.startsWith("(?(")) fail("conditional groups are not supported");
      if (rest.startsWith("(?")) {
        const m = /^\(\?([aiLmsux]*)(?:-([imsx]+))?:/.exec(pattern.slice(i));
        if (!m) {
          if (/^\(\?[aiLmsux]+\)/.test(pattern.slice(i))) fail("global flags must open the pattern");
          fail(`unknown extension ${pattern.slice(i, i + 3)}`);
        }
        if (/[axLu]/.test(m![1]) || (m![2] ?? "").includes("x")) fail(`scoped flags other than i, m and s are not supported (${m![0]})`);
        out += `(?${m![1]}${m![2] ? "-" + m![2] : ""}:`;
        depth++;
        i += m![0].length;
        continue;
      }
      // Groups do not capture: nothing refers to them, and lookbehind must be captureless.
      out += "(?:";
      depth++;
      i++;
      continue;
    }
    if (c === ")") {
      out += ")";
      i++;
      depth--;
      if (lookahead && depth === lookaheadDepth && lookahead.end < 0) {
        lookahead.end = out.length;
        // A quantified lookahead means nothing more than the lookahead itself.
        if (/^[*+?{]/.test(pattern.slice(i))) fail("a lookahead cannot be repeated");
      }
      continue;
    }
    if (c === "|" && depth === 0) topLevelAlternation = true;
    if (c === "$") {
      // Python's $ also matches before a final newline.
      out += flags.m ? "$" : "(?:\\n?\\z)";
      i++;
      continue;
    }
    if (c === "{") {
      const m = /^\{(\d*)(?:(,)(\d*))?\}/.exec(pattern.slice(i));
      if (!m || (m[1] === "" && !m[2])) {
        out += "\\{"; // not a repetition: Python takes it literally
        i++;
        continue;
      }
      const min = m[1] === "" ? 0 : Number(m[1]);
      const max = m[2] ? (m[3] === "" ? null : Number(m[3])) : min;
      if (min > MAX_REPEAT || (max !== null && max > MAX_REPEAT)) fail(`repetition counts above ${MAX_REPEAT} are not supported`);
      if (max !== null && max < min) fail("min repeat greater than max repeat");
      out += m[2] ? `{${min},${max ?? ""}}` : `{${min}}`;
      i += m[0].length;
      continue;
    }
    if (c === "}") { out += "\\}"; i++; continue; }
    out += c;
    i++;
  }
  if (lookahead && topLevelAlternation) fail("a lookahead beside a top-level alternation (|) is not supported: put the alternation in a group");
  if (lookahead && lookahead.end < 0) fail("missing ), unterminated subpattern");
  return { source: out, flags, lookbehind, lookahead };
}

function compileRe2(source: string, flags: number, pattern: string): RE2JS {
  try {
    return RE2JS.compile(source, flags);
  } catch (e) {
    const why = String((e as Error).message ?? e).replace(/^error parsing regexp: /, "").replace(/: `[\s\S]*`$/, "");
    throw new PythonRegexError(pattern, why);
  }
}

/** Compiles a Python pattern for `re.search`-style tests; throws PythonRegexError when it cannot run. */
export function compilePythonRegex(pattern: string): PatternMatcher {
  const t = translatePythonRegex(String(pattern));
  let flags = 0;
  if (t.flags.i) flags |= RE2JS.CASE_INSENSITIVE;
  if (t.flags.m) flags |= RE2JS.MULTILINE;
  if (t.flags.s) flags |= RE2JS.DOTALL;
  // Lookbehind takes re2js off its DFA, so it is only asked for when the pattern has one.
  if (t.lookbehind) flags |= RE2JS.LOOKBEHINDS;
  const la = t.lookahead;
  if (!la) {
    const re = compileRe2(t.source, flags, pattern);
    return { source: pattern, test: (text: string) => re.test(text) };
  }
  // A(?!L)B: some position p where A ends, L does (not) match from p, and B matches from p. Each
  // check is one linear RE2 run, so a name of n characters costs O(n²) at worst, never exponential;
  // A followed by B is tested first and rules out most names at once.
  const a = t.source.slice(0, la.start);
  const l = t.source.slice(la.start, la.end);
  const b = t.source.slice(la.end);
  const both = compileRe2(a + b, flags, pattern);
  const endsA = a === "" ? null : compileRe2(`(?:${a})\\z`, flags, pattern);
  const onlyAtStart = !t.flags.m && (a === "^" || a === "\\A");
  const startsL = compileRe2(`\\A${l}`, flags, pattern);
  const startsB = compileRe2(`\\A(?:${b})`, flags, pattern);
  return {
    source: pattern,
    test(text: string): boolean {
      if (!both.test(text)) return false;
      const last = onlyAtStart ? 0 : text.length;
      for (let p = 0; p <= last; p++) {
        const code = text.charCodeAt(p);
        if (p > 0 && code >= 0xdc00 && code <= 0xdfff) continue; // inside a surrogate pair
        if (endsA && !onlyAtStart && !endsA.test(text.slice(0, p))) continue;
        const rest = text.slice(p);
        if (startsL.test(rest) === la.negative) continue;
        if (startsB.test(rest)) return true;
      }
      return false;
    },
  };
}

/** Compiled patterns: queries and rules ask for the same few patterns over and over. */
const compiled = new Map<string, PatternMatcher | PythonRegexError>();

/** compilePythonRegex, cached (failures too). */
export function cachedPythonRegex(pattern: string): PatternMatcher {
  let r = compiled.get(pattern);
  if (r === undefined) {
    try {
      r = compilePythonRegex(pattern);
    } catch (e) {
      if (!(e instanceof PythonRegexError)) throw e;
      r = e;
    }
    if (compiled.size >= 1000) compiled.delete(compiled.keys().next().value!);
    compiled.set(pattern, r);
  }
  if (r instanceof PythonRegexError) throw r;
  return r;
}
