/** The collections file (spec §4): which tensors belong to which collection, and how they were saved. */

export interface SaveConfigMode {
  save_interval: number;
  save_steps: number[];
  start_step: number;
  end_step: number | null;
}

export interface CollectionInfo {
  name: string;
  /** Python regexes, matched with search semantics. */
  includeRegex: string[];
  /** Names assigned before the file was exported (often incomplete: always combine with includeRegex). */
  tensorNames: string[];
  /** Per mode (TRAIN, EVAL, PREDICT, GLOBAL), as written. */
  saveConfig: Record<string, SaveConfigMode | null> | null;
  reductionConfig: { save_raw_tensor: boolean; reductions: string; save_shape: boolean } | null;
  saveHistogram: boolean;
}

export interface CollectionsFile {
  collections: CollectionInfo[];
  numWorkers: number;
}

export class CollectionsFileError extends Error {}

export function parseCollectionsFile(text: string): CollectionsFile {
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    throw new CollectionsFileError("collections file is not valid JSON");
  }
  if (!json || typeof json !== "object" || typeof json.collections !== "object") {
    throw new CollectionsFileError("collections file has no collections");
  }
  const collections: CollectionInfo[] = Object.entries<any>(json.collections).map(([key, c]) => ({
    name: typeof c?.name === "string" ? c.name : key,
    includeRegex: Array.isArray(c?.include_regex) ? c.include_regex.map(String) : [],
    tensorNames: Array.isArray(c?.tensor_names) ? c.tensor_names.map(String) : [],
    saveConfig: c?.save_config && typeof c.save_config === "object" ? c.save_config : null,
    reductionConfig: c?.reduction_config ?? null,
    saveHistogram: Boolean(c?.save_histogram),
  }));
  const numWorkers = Number(json._meta?.num_workers ?? 1);
  return { collections, numWorkers: Number.isInteger(numWorkers) && numWorkers > 0 ? numWorkers : 1 };
}

/** Serializes in smdebug's key order, so files look the same as the Python hook's. */
export function serializeCollectionsFile(f: CollectionsFile): string {
  const collections: Record<string, unknown> = {};
  for (const c of f.collections) {
    collections[c.name] = {
      name: c.name,
      include_regex: c.includeRegex,
      tensor_names: [...c.tensorNames].sort(),
      reduction_config: c.reductionConfig ?? { save_raw_tensor: true, reductions: "", save_shape: false },
      save_config: c.saveConfig,
      save_histogram: c.saveHistogram,
    };
  }
  return JSON.stringify({ collections, _meta: { num_workers: f.numWorkers } });
}
