import type { HtmlTagDescriptor, Plugin } from "vite";

/**
 * Adds <link rel="modulepreload"> to a page for modules that its code imports dynamically at start
 * (and their static imports), so the browser fetches and compiles them while the entry runs instead
 * of after it. GraphiQL loads its editor (Monaco) with import() once React has rendered; preloading
 * it takes that download and compile off the critical path.
 */
export function preloadDynamicImports(pages: Record<string, string[]>): Plugin {
  return {
    name: "trialgraph-preload-dynamic-imports",
    apply: "build",
    transformIndexHtml: {
      order: "post",
      handler(_html, ctx) {
        const wanted = pages[ctx.path.replace(/^\//, "")];
        if (!wanted || !ctx.bundle) return;
        const chunks = Object.values(ctx.bundle).filter((c) => c.type === "chunk");
        const byFile = new Map(chunks.map((c) => [c.fileName, c]));
        const files = new Set<string>();
        const add = (fileName: string) => {
          if (files.has(fileName)) return;
          files.add(fileName);
          for (const dep of byFile.get(fileName)?.imports ?? []) add(dep);
        };
        for (const id of wanted) {
          const chunk = chunks.find((c) => c.moduleIds.some((m) => m.replaceAll("\\", "/").endsWith(`/node_modules/${id}`)));
          if (!chunk) throw new Error(`preload: no chunk holds ${id}`);
          add(chunk.fileName);
        }
        // The entry and what Vite already preloads need no second link.
        if (ctx.chunk) {
          files.delete(ctx.chunk.fileName);
          for (const dep of ctx.chunk.imports) files.delete(dep);
        }
        return [...files].map((file): HtmlTagDescriptor => ({
          tag: "link",
          attrs: { rel: "modulepreload", crossorigin: true, href: `/${file}` },
          injectTo: "head",
        }));
      },
    },
  };
}
