/**
 * What kind of trial a job wrote, from its collections and modes: the dashboard (web/src/views) and
 * the job report choose their panels by it. No I/O, no DOM.
 */

export type TrainingMode = "TRAIN" | "EVAL" | "PREDICT";

/** Modes in the order panels show them. */
export const MODE_ORDER: readonly TrainingMode[] = ["TRAIN", "EVAL", "PREDICT"];

export interface TrialShape {
  modes: readonly string[];
  workers: readonly string[];
  collections: readonly { name: string; tensorNames: readonly string[] }[];
}

/** Collections shown per layer, in this order; then every `*activations` collection. */
const LAYER_COLLECTIONS = ["weights", "gradients", "biases"];

export function hasTensors(shape: TrialShape, collection: string): boolean {
  return shape.collections.some((c) => c.name === collection && c.tensorNames.length > 0);
}

/** The collections that get per-layer panels, in display order. */
export function layerCollections(shape: TrialShape): string[] {
  const activations = shape.collections
    .filter((c) => /activations$/.test(c.name) && c.tensorNames.length > 0)
    .map((c) => c.name)
    .sort();
  return [...LAYER_COLLECTIONS.filter((c) => hasTensors(shape, c)), ...activations];
}

/** The trial's modes other than GLOBAL, in display order. */
export function trainingModes(shape: TrialShape): TrainingMode[] {
  return MODE_ORDER.filter((m) => shape.modes.includes(m));
}

/**
 * A trial a deep-learning hook wrote: it has weights, gradients, biases or activations, or steps in
 * TRAIN/EVAL/PREDICT mode. (A losses collection alone is not enough: XGBoost's hook writes one.)
 */
export function isDeepLearningTrial(shape: TrialShape): boolean {
  return layerCollections(shape).length > 0 || trainingModes(shape).length > 0;
}
