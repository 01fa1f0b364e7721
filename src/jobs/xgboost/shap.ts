/**
 * SHAP contributions of the training data (XGBoost's pred_contribs) as the model grows, for the hook's
 * full_shap and average_shap collections.
 *
 * smdebug predicts them with the whole model at every saved round, so a run costs O(rounds²) tree
 * passes over the data (the lab's 51 rounds saved every 5: 286 passes). TreeSHAP is additive over
 * trees: for gbtree, each row's contributions are the sum of each tree's. So only the rounds added
 * since the last save are predicted, one round (a one-tree slice of the model) at a time, and added
 * to running sums in float32 in round order: the same additions XGBoost's own loop over the trees
 * makes, so the values are bit for bit smdebug's (51 passes in all for the lab). The bias column is
 * not summed: it is the same for every row (the base score plus each tree's mean value, what XGBoost
 * adds when it is given no base margin), and is read from a one-row prediction of the whole model.
 *
 * With several trees a round (num_parallel_tree > 1) a round's trees are summed from zero first, so
 * values may differ from XGBoost's in the last float32 bit. dart (tree weights change as trees are
 * dropped), gblinear and process_type=update (existing trees rewritten) are not additive this way:
 * they predict with the whole model every time, as smdebug does.
 */
import type { Booster, DMatrix, Prediction, XGBoostLib } from "./libxgboost.js";

export class ShapContributions {
  /** Per row (and output group), the summed contributions of the rounds [0, rounds); bias column unused. */
  private sums: Float32Array | null = null;
  private shape: number[] = [];
  private rounds = 0;
  /** One row of missing values: its bias column is every row's. */
  private probe: DMatrix | null = null;

  constructor(
    private readonly lib: XGBoostLib,
    private readonly train: DMatrix,
    private readonly additive: boolean,
  ) {}

  /** Whether a booster trained with these settings grows by adding trees that stay as they are. */
  static isAdditive(booster: string, processType: string | null): boolean {
    return booster === "gbtree" && (processType === null || processType === "default");
  }

  /** The contributions of `model`, which has `rounds` boosting rounds (rounds only grow between calls). */
  of(model: Booster, rounds: number): Prediction {
    if (!this.additive || rounds <= this.rounds) return model.predict(this.train, { type: 2 });
    // Round by round, in order, in float32: the sums XGBoost's own loop over the trees makes.
    for (let round = this.rounds; round < rounds; round++) {
      const slice = model.slice(round, round + 1);
      let added: Prediction;
      try {
        added = slice.predict(this.train, { type: 2 });
      } finally {
        slice.free();
      }
      if (this.sums === null) {
        this.sums = added.values;
        this.shape = added.shape;
      } else {
        const sums = this.sums;
        const values = added.values;
        for (let i = 0; i < sums.length; i++) sums[i] = Math.fround(sums[i] + values[i]);
      }
    }
    this.rounds = rounds;
    const bias = this.biasColumn(model);
    const cols = this.shape[this.shape.length - 1];
    const out = this.sums!.slice();
    // One bias per output group; rows × groups blocks of `cols` values, the bias last in each.
    const groups = bias.length;
    for (let block = 0, at = cols - 1; at < out.length; block++, at += cols) out[at] = bias[block % groups];
    return { shape: this.shape, values: out };
  }

  /** The bias of each output group, from the whole model's contributions for one row. */
  private biasColumn(model: Booster): Float32Array {
    this.probe ??= this.lib.dmatrixFromDense({ values: new Float32Array(this.train.numCol()).fill(Number.NaN), rows: 1, cols: this.train.numCol() });
    const one = model.predict(this.probe, { type: 2 });
    const cols = one.shape[one.shape.length - 1];
    const bias = new Float32Array(one.values.length / cols);
    for (let g = 0; g < bias.length; g++) bias[g] = one.values[g * cols + cols - 1];
    return bias;
  }

  free(): void {
    this.probe?.free();
    this.probe = null;
  }
}
