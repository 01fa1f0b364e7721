/**
 * `npm run lab:data`: downloads the Abalone data set from the LIBSVM site and splits it 80/20 the way
 * the SageMaker Debugger XGBoost lab's `load_abalone()` does (Python's `random.seed(42)` +
 * `random.shuffle` over line numbers, the first int(n * 0.8) shuffled indices go to train, lines keep
 * their file order), writing <data dir>/lab/abalone.train.libsvm and abalone.validation.libsvm.
 *
 * Usage: tsx scripts/lab-data.ts [--data-dir <dir>]   (default: env TRIALGRAPH_DATA_DIR, else ./data)
 * Needs internet access; offline it stops with a message and exit code 1.
 */
import fs from "node:fs/promises";
import path from "node:path";

export const ABALONE_URL = "https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/regression/abalone";
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

function dataDirFromArgs(argv: string[]): string {
  const i = argv.indexOf("--data-dir");
  if (i >= 0 && argv[i + 1]) return path.resolve(argv[i + 1]);
  return path.resolve(process.env.TRIALGRAPH_DATA_DIR ?? "data");
}

async function download(url: string): Promise<string> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(60_000) });
  } catch (e) {
    const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message;
    throw new Error(`could not download ${url} (${cause}). This command needs internet access; ` +
      "tests do not need it (they use ../shared/fixtures/data).");
  }
  if (!res.ok) throw new Error(`downloading ${url} failed: HTTP ${res.status} ${res.statusText}`);
  return res.text();
}

async function main(): Promise<void> {
  const dataDir = dataDirFromArgs(process.argv.slice(2));
  const text = await download(ABALONE_URL);
  const { train, validation } = splitLikeLab(text);
  if (train.length === 0 || validation.length === 0 || !/^\S+( \d+:\S+)+$/.test(train[0])) {
    throw new Error(`the downloaded file does not look like the LIBSVM abalone data set (${text.slice(0, 60)}...)`);
  }
  const outDir = path.join(dataDir, "lab");
  await fs.mkdir(outDir, { recursive: true });
  for (const [name, lines] of [["abalone.train.libsvm", train], ["abalone.validation.libsvm", validation]] as const) {
    const file = path.join(outDir, name);
    await fs.writeFile(`${file}.tmp`, lines.join("\n") + "\n");
    await fs.rename(`${file}.tmp`, file);
  }
  console.log(`wrote ${train.length} training and ${validation.length} validation rows to ${outDir}`);
  console.log("start a local job with inputs lab/abalone.train.libsvm (train) and lab/abalone.validation.libsvm (validation)");
}

if (require.main === module) {
  main().catch((e) => {
    console.error(`lab:data: ${(e as Error).message}`);
    process.exit(1);
  });
}
