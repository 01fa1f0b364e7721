/**
 * The built web UI (dist/web: the dashboard and the GraphiQL playground) over HTTP. The build
 * writes Brotli and gzip copies next to each text asset (web/precompress.mts); they are sent as they
 * are when the client accepts them, so no request pays for compression. Content-hashed files under
 * assets/ are cached for a year; pages are revalidated on every load (ETag), so a new build shows at once.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import type { NextFunction, Request, Response } from "express";

const IMMUTABLE = "public, max-age=31536000, immutable";
const REVALIDATE = "no-cache";
const ENCODINGS = [
  { name: "br", suffix: ".br" },
  { name: "gzip", suffix: ".gz" },
] as const;

export interface WebAssets {
  /** Whether the UI is built (dist/web/index.html exists). */
  built(): Promise<boolean>;
  /** Serves the file at the request's path ("/" = index.html), or calls next() when there is none. */
  serve(req: Request, res: Response, next: NextFunction): void;
  /** Sends one page of the build (e.g. "playground.html"); next() when it is not built. */
  sendPage(file: string, req: Request, res: Response, next: NextFunction): void;
}

export function webAssets(root: string): WebAssets {
  const base = path.resolve(root);

  const isFile = (p: string) => fs.stat(p).then((s) => s.isFile(), () => false);

  /** The file for a URL path, only inside the build and never a dotfile or a precompressed copy. */
  const resolve = (urlPath: string): string | null => {
    let decoded: string;
    try {
      decoded = decodeURIComponent(urlPath);
    } catch {
      return null;
    }
    if (decoded.includes("\0")) return null;
    const rel = decoded === "/" ? "index.html" : decoded.replace(/^\/+/, "");
    const file = path.resolve(base, rel);
    if (!file.startsWith(base + path.sep)) return null;
    if (path.relative(base, file).split(path.sep).some((part) => part.startsWith("."))) return null;
    if (/\.(br|gz)$/.test(file)) return null;
    return file;
  };

  const send = async (file: string, req: Request, res: Response, next: NextFunction) => {
    if (!(await isFile(file))) return next();
    const hashed = path.relative(base, file).startsWith(`assets${path.sep}`);
    res.vary("Accept-Encoding");
    res.setHeader("Cache-Control", hashed ? IMMUTABLE : REVALIDATE);
    // The type is the original file's; send() keeps a Content-Type that is already set.
    res.type(path.extname(file));
    // Ours is the better-compressing choice among what the client accepts (browsers list gzip first).
    let body = file;
    for (const encoding of ENCODINGS) {
      if (req.acceptsEncodings(encoding.name) !== encoding.name || !(await isFile(file + encoding.suffix))) continue;
      body = file + encoding.suffix;
      res.setHeader("Content-Encoding", encoding.name);
      break;
    }
    res.sendFile(body, { cacheControl: false, dotfiles: "allow" }, (err) => {
      if (err && !res.headersSent) next(err);
    });
  };

  return {
    built: () => isFile(path.join(base, "index.html")),
    serve(req, res, next) {
      if (req.method !== "GET" && req.method !== "HEAD") return next();
      const file = resolve(req.path);
      if (!file) return next();
      send(file, req, res, next).catch(next);
    },
    sendPage(file, req, res, next) {
      send(path.join(base, file), req, res, next).catch(next);
    },
  };
}
