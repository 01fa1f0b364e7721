import { defineConfig } from "vite";
import { fileURLToPath } from "node:url";
import path from "node:path";

// Built by `npx vite build --config web/vite.config.mts` from the project root; the server serves dist/web at "/".
const webRoot = path.dirname(fileURLToPath(import.meta.url));
// `npx vite --config web/vite.config.mts` proxies the API to a running server (default port 4000).
const apiTarget = process.env.TRIALGRAPH_URL ?? "http://127.0.0.1:4000";

export default defineConfig({
  root: webRoot,
  base: "/",
  build: {
    outDir: path.resolve(webRoot, "../dist/web"),
    emptyOutDir: true,
    target: "es2022",
    sourcemap: false,
  },
  server: {
    proxy: {
      // The service refuses foreign origins: the dev server speaks as the service's own origin.
      "/graphql": { target: apiTarget, ws: true, changeOrigin: true, headers: { origin: new URL(apiTarget).origin } },
    },
  },
});
