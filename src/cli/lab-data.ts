/**
 * `npm run lab:data [-- --data-dir <dir>] [--url <url>]`: downloads the lab's Abalone data set into
 * <data dir>/lab/ (default: TRIALGRAPH_DATA_DIR, else ./data), from the LIBSVM site or a mirror. Compiled with the service, so the Docker image runs it
 * too (`docker compose exec trialgraph npm run lab:data`). Offline it says what to copy where, and
 * exits with code 1.
 */
import path from "node:path";
import { ABALONE_URL, LAB_DIR, LAB_FILES, LabDataUnavailable, writeLabData } from "../jobs/lab-data.js";

function option(argv: string[], name: string): string | null {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] ? argv[i + 1] : null;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const dataDir = path.resolve(option(argv, "--data-dir") ?? (process.env.TRIALGRAPH_DATA_DIR?.trim() || "data"));
  const { dir, train, validation } = await writeLabData(dataDir, option(argv, "--url") ?? ABALONE_URL);
  console.log(`wrote ${train} training and ${validation} validation rows to ${dir}`);
  console.log(`start a local job with inputs ${LAB_DIR}/${LAB_FILES.train} (train) and ${LAB_DIR}/${LAB_FILES.validation} (validation)`);
}

main().catch((e) => {
  console.error(`lab:data: ${(e as Error).message}`);
  process.exit(e instanceof LabDataUnavailable ? 1 : 2);
});
