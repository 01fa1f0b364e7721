/**
 * Node's on-disk compile cache for the service's modules (graphql, type-graphql, the AWS SDK, …):
 * a start reads V8's code for them from node_modules/.cache instead of parsing and compiling them
 * again. Imported first by server.ts, so it covers every module loaded after it. Node checks each
 * entry against the module's source and its own version, and skips the cache when the folder
 * cannot be written (a read-only install): a stale or missing cache only costs the compile.
 * NODE_COMPILE_CACHE, when set, takes precedence (Node enables it before any code runs).
 */
import module from "node:module";
import path from "node:path";

/** The project root: dist/src/ when compiled, src/ under tsx. */
const ROOT = path.resolve(__dirname, __dirname.includes(`${path.sep}dist${path.sep}`) ? "../.." : "..");

export const COMPILE_CACHE_DIR = path.join(ROOT, "node_modules", ".cache", "trialgraph-compile");

try {
  module.enableCompileCache?.(COMPILE_CACHE_DIR);
} catch {
  // Only a start-up speed-up: the service runs the same without it.
}
