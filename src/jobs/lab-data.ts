/**
 * The SageMaker Debugger XGBoost lab's data set: Abalone from the LIBSVM site, split 80/20 the way
 * the lab's `load_abalone()` does (Python's `random.seed(42)` + `random.shuffle` over line numbers,
 * the first int(n * 0.8) shuffled indices go to train, lines keep their file order), written to
 * <data dir>/lab/abalone.train.libsvm and abalone.validation.libsvm. `npm run lab:data` runs it
 * (src/cli/lab-data.ts); the local backend names these files when a lab input is missing.
 */
import fs from "node:fs/promises";
import path from "node:path";

export const ABALONE_URL = "https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/regression/abalone";
/** Where the lab's inputs live, relative to the data directory, and their file names. */
export const LAB_DIR = "lab";
export const LAB_FILES = { train: "abalone.train.libsvm", validation: "abalone.validation.libsvm" } as const;
const SEED = 42;
const TRAIN_FRACTION = 0.8;

/** MT19937 as CPython's random module uses it (seeded with init_by_array). */
export class PythonRandom {
  private readonly mt = new Uint32Array(624);
  private mti = 625;

  /** random.seed(n) for a non-negative integer n below 2^32. */
  constructor(seed: number) {
    this.initByArray([seed >>> 0]);
  }

  private initGenrand(s: number): void {
    const mt = this.mt;
    mt[0] = s >>> 0;
    for (let i = 1; i < 624; i++) {
      const prev = mt[i - 1] ^ (mt[i - 1] >>> 30);
      mt[i] = (Math.imul(1812433253, prev) + i) >>> 0;
    }
    this.mti = 624;
  }

  private initByArray(key: number[]): void {
    const mt = this.mt;
    this.initGenrand(19650218);
    let i = 1, j = 0;
    for (let k = Math.max(624, key.length); k > 0; k--) {
      const prev = mt[i - 1] ^ (mt[i - 1] >>> 30);
      mt[i] = ((mt[i] ^ Math.imul(prev, 1664525)) + key[j] + j) >>> 0;
      i++; j++;
      if (i >= 624) { mt[0] = mt[623]; i = 1; }
      if (j >= key.length) j = 0;
    }
    for (let k = 623; k > 0; k--) {
      const prev = mt[i - 1] ^ (mt[i - 1] >>> 30);
      mt[i] = ((mt[i] ^ Math.imul(prev, 1566083941)) - i) >>> 0;
      i++;
      if (i >= 624) { mt[0] = mt[623]; i = 1; }
    }
    mt[0] = 0x80000000;
  }

  /** genrand_uint32. */
  nextUint32(): number {
    const mt = this.mt;
    if (this.mti >= 624) {
      for (let kk = 0; kk < 624; kk++) {
        const y = (mt[kk] & 0x80000000) | (mt[(kk + 1) % 624] & 0x7fffffff);
        mt[kk] = mt[(kk + 397) % 624] ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
      }
      this.mti = 0;
    }
    let y = mt[this.mti++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** random._randbelow(n) for 0 < n < 2^32 (getrandbits with rejection). */
  randbelow(n: number): number {
    const k = Math.floor(Math.log2(n)) + 1; // n.bit_length()
    for (;;) {
      const r = this.nextUint32() >>> (32 - k);
      if (r < n) return r;
    }
  }

  /** random.shuffle (Fisher-Yates from the end). */
  shuffle<T>(x: T[]): void {
    for (let i = x.length - 1; i > 0; i--) {
      const j = this.randbelow(i + 1);
      [x[i], x[j]] = [x[j], x[i]];
    }
  }
}

/** The lab's split of the downloaded text: [train lines, validation lines], each in file order. */
export function splitLikeLab(text: string): { train: string[]; validation: string[] } {
  const lines = text.trim().split("\n");
  const n = lines.length;
  const indices = Array.from({ length: n }, (_, i) => i);
  new PythonRandom(SEED).shuffle(indices);
  const trainSet = new Set(indices.slice(0, Math.floor(n * TRAIN_FRACTION)));
  const train: string[] = [], validation: string[] = [];
  lines.forEach((line, i) => (trainSet.has(i) ? train : validation).push(line));
  return { train, validation };
}

/** Thrown when the download fails: says what to do offline. */
export class LabDataUnavailable extends Error {}

/** "copy any LIBSVM train/validation pair to …": the offline way to the same files. */
export function offlineHint(dataDir: string): string {
  const dir = path.join(dataDir, LAB_DIR);
  return `any LIBSVM train/validation pair works: copy them to ${path.join(dir, LAB_FILES.train)} and ${path.join(dir, LAB_FILES.validation)}`;
}

async function download(url: string, dataDir: string): Promise<string> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(60_000) });
  } catch (e) {
    const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message;
    throw new LabDataUnavailable(`could not download ${url} (${cause}): this needs internet access. Offline, ${offlineHint(dataDir)}`);
  }
  if (!res.ok) throw new LabDataUnavailable(`downloading ${url} failed (HTTP ${res.status} ${res.statusText}). Instead, ${offlineHint(dataDir)}`);
  return res.text();
}

/** Downloads and splits the data set into <dataDir>/lab/; resolves with the row counts and the folder. */
export async function writeLabData(dataDir: string, url = ABALONE_URL): Promise<{ dir: string; train: number; validation: number }> {
  const text = await download(url, dataDir);
  const { train, validation } = splitLikeLab(text);
  if (train.length === 0 || validation.length === 0 || !/^\S+( \d+:\S+)+$/.test(train[0])) {
    throw new LabDataUnavailable(`the downloaded file does not look like the LIBSVM abalone data set (${JSON.stringify(text.slice(0, 60))}…). Instead, ${offlineHint(dataDir)}`);
  }
  const dir = path.join(dataDir, LAB_DIR);
  await fs.mkdir(dir, { recursive: true });
  for (const [name, lines] of [[LAB_FILES.train, train], [LAB_FILES.validation, validation]] as const) {
    const file = path.join(dir, name);
    await fs.writeFile(`${file}.tmp`, lines.join("\n") + "\n");
    await fs.rename(`${file}.tmp`, file);
  }
  return { dir, train: train.length, validation: validation.length };
}
