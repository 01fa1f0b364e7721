/** Which way XGBoost eval metrics improve. Pure and import-free: the dashboard bundles it too. */

/** Metrics where larger is better (XGBoost eval metric names). */
export function higherIsBetter(metric: string): boolean {
  return /^(auc|aucpr|map|ndcg|pre|accuracy|acc)(@.*)?$/i.test(metric);
}
