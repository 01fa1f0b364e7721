/**
 * Apollo's store of parsed documents, bounded by the text of the queries it keeps. Each document kept
 * also keeps its compiled query (jit.ts caches them by document), its tokens and its cost check:
 * ~60 KB of heap for a query of ~190 characters. Apollo's default store is bounded by the documents'
 * JSON (30 MiB): 3,000 distinct small queries kept ~170 MB of heap. 128 K characters keep ~300
 * such queries (~20 MB), or a few dozen of the largest the token limit lets through.
 */
import type { DocumentStore as ApolloDocumentStore } from "@apollo/server";
import type { DocumentNode } from "graphql";
import { SizeBoundedLru } from "../storage/lru.js";

/** Query text kept (characters), each document counted with a fixed share for what does not grow with its text. */
export const DOCUMENT_STORE_CHARS = 128 * 1024;
const PER_DOCUMENT_CHARS = 256;

/** Documents by key, bounded by their text (the WebSocket keeps its validated documents in one too). */
export function boundedDocuments(maxChars = DOCUMENT_STORE_CHARS): SizeBoundedLru<string, DocumentNode> {
  return new SizeBoundedLru(maxChars, (document) => (document.loc?.source.body.length ?? 0) + PER_DOCUMENT_CHARS);
}

export class DocumentStore implements ApolloDocumentStore {
  private readonly lru: SizeBoundedLru<string, DocumentNode>;

  constructor(maxChars = DOCUMENT_STORE_CHARS) {
    this.lru = boundedDocuments(maxChars);
  }

  get count(): number {
    return this.lru.count;
  }

  async get(key: string): Promise<DocumentNode | undefined> {
    return this.lru.get(key);
  }

  async set(key: string, document: DocumentNode): Promise<void> {
    this.lru.set(key, document);
  }

  async delete(key: string): Promise<boolean> {
    return this.lru.delete(key);
  }
}
