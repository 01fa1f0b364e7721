import type { Plugin } from "vite";
import { promises as fs } from "node:fs";
import path from "node:path";
import zlib from "node:zlib";
import { promisify } from "node:util";

const brotli = promisify(zlib.brotliCompress);
const gzip = promisify(zlib.gzip);

/** Assets worth compressing: text, and uncompressed fonts (woff/woff2 and images already are compressed). */
const COMPRESSIBLE = /\.(js|mjs|css|html|svg|json|txt|map|wasm|ttf|otf)$/;
/** Below this, a compressed copy saves less than the headers cost. */
const MIN_BYTES = 1024;

/**
 * Writes `<file>.br` (quality 11) and `<file>.gz` (level 9) next to every text asset once the bundle
 * is written, when a copy is smaller than the original. The server sends them as they are
 * (Content-Encoding), so compressing costs build time once and never a request's time.
 */
export function precompress(): Plugin {
  let outDir = "";
  return {
    name: "trialgraph-precompress",
    apply: "build",
    configResolved(config) {
      outDir = path.resolve(config.root, config.build.outDir);
    },
    async closeBundle() {
      const files = (await fs.readdir(outDir, { recursive: true, withFileTypes: true }))
        .filter((e) => e.isFile() && COMPRESSIBLE.test(e.name))
        .map((e) => path.join(e.parentPath, e.name));
      await Promise.all(files.map(async (file) => {
        const body = await fs.readFile(file);
        if (body.length < MIN_BYTES) return;
        const [br, gz] = await Promise.all([
          brotli(body, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: body.length } }),
          gzip(body, { level: 9 }),
        ]);
        if (br.length < body.length) await fs.writeFile(`${file}.br`, br);
        if (gz.length < body.length) await fs.writeFile(`${file}.gz`, gz);
      }));
    },
  };
}
