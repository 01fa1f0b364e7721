/** Per-request DataLoaders: many tensor fields of one query become few reads. */
import DataLoader from "dataloader";
import type { Mode, TensorData } from "../format/tensor.js";
import type { Trial } from "../trials/trial.js";

export interface ValueKey {
  trial: Trial;
  name: string;
  /** Global step, or a mode step when mode is TRAIN/EVAL/PREDICT. */
  step: number;
  mode: Mode | null;
  worker: string | null;
}

export function createValueLoader(): DataLoader<ValueKey, TensorData, string> {
  return new DataLoader<ValueKey, TensorData, string>(
    async (keys) => {
      // One batch per trial; each trial turns its batch into one ranged read per event file.
      const byTrial = new Map<Trial, number[]>();
      keys.forEach((k, i) => {
        const list = byTrial.get(k.trial);
        if (list) list.push(i);
        else byTrial.set(k.trial, [i]);
      });
      const out = new Array<TensorData | Error>(keys.length);
      await Promise.all(
        [...byTrial].map(async ([trial, indexes]) => {
          const results = await trial.values(indexes.map((i) => keys[i]));
          indexes.forEach((keyIndex, j) => (out[keyIndex] = results[j]));
        }),
      );
      return out;
    },
    {
      cacheKeyFn: (k) => `${k.trial.path}\u0000${k.name}\u0000${k.step}\u0000${k.mode ?? "GLOBAL"}\u0000${k.worker ?? ""}`,
      maxBatchSize: 1_000_000,
    },
  );
}
