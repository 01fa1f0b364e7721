import { defineConfig } from "vite";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { precompress } from "./precompress.mts";
import { preloadDynamicImports } from "./preload.mts";

// Built by `npx vite build --config web/vite.config.mts` from the project root; the server serves dist/web at "/".
const webRoot = path.dirname(fileURLToPath(import.meta.url));
// `npx vite --config web/vite.config.mts` proxies the API to a running server (default port 4000).
const apiTarget = process.env.TRIALGRAPH_URL ?? "http://127.0.0.1:4000";

export default defineConfig({
  root: webRoot,
  base: "/",
  plugins: [
    // GraphiQL imports its editor once React has rendered: fetch it alongside the page's own script.
    preloadDynamicImports({ "playground.html": ["monaco-graphql/esm/monaco-editor.js", "monaco-graphql/esm/lite.js"] }),
    precompress(),
  ],
  build: {
    outDir: path.resolve(webRoot, "../dist/web"),
    emptyOutDir: true,
    target: "es2022",
    sourcemap: false,
    // Two pages: the dashboard ("/") and the GraphiQL playground (served at GET /graphql). Assets
    // are content-hashed under assets/; Monaco's workers are same-origin module files there too.
    rolldownOptions: {
      input: {
        dashboard: path.resolve(webRoot, "index.html"),
        playground: path.resolve(webRoot, "playground.html"),
      },
      // React libraries mark modules "use client" for server-component bundlers; in a browser bundle it means nothing.
      onwarn(warning, warn) {
        if (warning.code !== "MODULE_LEVEL_DIRECTIVE") warn(warning);
      },
    },
    // GraphiQL's editor (Monaco) is one large chunk by nature; it is precompressed and cached for good.
    chunkSizeWarningLimit: 5000,
  },
  worker: { format: "es" },
  server: {
    proxy: {
      // The service refuses foreign origins: the dev server speaks as the service's own origin.
      "/graphql": { target: apiTarget, ws: true, changeOrigin: true, headers: { origin: new URL(apiTarget).origin } },
    },
  },
});
