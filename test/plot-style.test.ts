/**
 * The series palette and axis labels shared by the dashboard and the job report: colours people can
 * tell apart (CIEDE2000, computed here independently), and no two series of a chart alike.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  DASH_PATTERNS, DISTINCT_SERIES_STYLES, RUN_FAMILIES, SERIES_COLORS, axisLabel, higherIsBetterTensor, runSeriesStyle, seriesStyle,
} from "../src/report/plot-style.js";

function linear(hex: string): [number, number, number] {
  const c = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255);
  return c.map((v) => (v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4)) as [number, number, number];
}

function lab(hex: string): [number, number, number] {
  const [r, g, b] = linear(hex);
  const x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047;
  const y = 0.2126 * r + 0.7152 * g + 0.0722 * b;
  const z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883;
  const f = (t: number) => (t > 0.008856 ? Math.cbrt(t) : 7.787 * t + 16 / 116);
  return [116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))];
}

const rad = (d: number) => (d * Math.PI) / 180;
const deg = (r: number) => (r * 180) / Math.PI;

/** CIEDE2000 colour difference (Sharma, Wu, Dalal 2005). */
function deltaE2000(c1: string, c2: string): number {
  const [L1, a1, b1] = lab(c1);
  const [L2, a2, b2] = lab(c2);
  const Cb = (Math.hypot(a1, b1) + Math.hypot(a2, b2)) / 2;
  const G = 0.5 * (1 - Math.sqrt(Cb ** 7 / (Cb ** 7 + 25 ** 7)));
  const a1p = (1 + G) * a1;
  const a2p = (1 + G) * a2;
  const C1p = Math.hypot(a1p, b1);
  const C2p = Math.hypot(a2p, b2);
  const h1p = (deg(Math.atan2(b1, a1p)) + 360) % 360;
  const h2p = (deg(Math.atan2(b2, a2p)) + 360) % 360;
  let dh = h2p - h1p;
  if (C1p * C2p === 0) dh = 0;
  else if (dh > 180) dh -= 360;
  else if (dh < -180) dh += 360;
  const dLp = L2 - L1;
  const dCp = C2p - C1p;
  const dHp = 2 * Math.sqrt(C1p * C2p) * Math.sin(rad(dh / 2));
  const Lbp = (L1 + L2) / 2;
  const Cbp = (C1p + C2p) / 2;
  let hbp = h1p + h2p;
  if (C1p * C2p !== 0) hbp = Math.abs(h1p - h2p) <= 180 ? hbp / 2 : hbp < 360 ? (hbp + 360) / 2 : (hbp - 360) / 2;
  const T = 1 - 0.17 * Math.cos(rad(hbp - 30)) + 0.24 * Math.cos(rad(2 * hbp)) + 0.32 * Math.cos(rad(3 * hbp + 6)) - 0.2 * Math.cos(rad(4 * hbp - 63));
  const dTheta = 30 * Math.exp(-(((hbp - 275) / 25) ** 2));
  const Rc = 2 * Math.sqrt(Cbp ** 7 / (Cbp ** 7 + 25 ** 7));
  const Sl = 1 + (0.015 * (Lbp - 50) ** 2) / Math.sqrt(20 + (Lbp - 50) ** 2);
  const Sc = 1 + 0.045 * Cbp;
  const Sh = 1 + 0.015 * Cbp * T;
  const Rt = -Math.sin(rad(2 * dTheta)) * Rc;
  return Math.sqrt((dLp / Sl) ** 2 + (dCp / Sc) ** 2 + (dHp / Sh) ** 2 + Rt * (dCp / Sc) * (dHp / Sh));
}

function contrastOnWhite(hex: string): number {
  const [r, g, b] = linear(hex);
  return 1.05 / (0.2126 * r + 0.7152 * g + 0.0722 * b + 0.05);
}

test("the CIEDE2000 used here behaves as expected on known pairs", () => {
  assert.equal(deltaE2000("#1f5fd0", "#1f5fd0"), 0);
  assert.ok(deltaE2000("#000000", "#ffffff") > 99 && deltaE2000("#000000", "#ffffff") < 101);
  // The two purples the old palette gave SHAP f4 and f8: hardly distinguishable.
  assert.ok(deltaE2000("#7c3aed", "#9333ea") < 5);
});

test("20 series colours, each pair clearly apart and visible on white", () => {
  assert.equal(SERIES_COLORS.length, 20);
  assert.equal(new Set(SERIES_COLORS).size, 20);
  let min = Infinity;
  let pair = "";
  for (let i = 0; i < SERIES_COLORS.length; i++) {
    for (let j = i + 1; j < SERIES_COLORS.length; j++) {
      const d = deltaE2000(SERIES_COLORS[i], SERIES_COLORS[j]);
      if (d < min) [min, pair] = [d, `${SERIES_COLORS[i]}/${SERIES_COLORS[j]}`];
    }
  }
  assert.ok(min >= 14, `closest pair ${pair}: ΔE2000 ${min.toFixed(1)}`);
  for (const c of SERIES_COLORS) assert.ok(contrastOnWhite(c) >= 2.4, `${c} contrast ${contrastOnWhite(c).toFixed(2)}`);
});

test("seriesStyle gives every series of a chart its own colour and line style, dashes after 20 colours", () => {
  const seen = new Set<string>();
  for (let i = 0; i < DISTINCT_SERIES_STYLES; i++) {
    const s = seriesStyle(i);
    const key = `${s.color}|${s.dash.join(",")}`;
    assert.ok(!seen.has(key), `series ${i} repeats ${key}`);
    seen.add(key);
  }
  assert.equal(DISTINCT_SERIES_STYLES, 20 * DASH_PATTERNS.length);
  assert.deepEqual(seriesStyle(0).dash, []);
  assert.deepEqual(seriesStyle(20), { color: SERIES_COLORS[0], dash: DASH_PATTERNS[1] });
});

test("runSeriesStyle: one colour family per run, tensors by line style, unique for 8 runs × 18 tensors", () => {
  const seen = new Set<string>();
  for (let r = 0; r < 8; r++) {
    for (let t = 0; t < 18; t++) {
      const s = runSeriesStyle(r, t);
      assert.ok(RUN_FAMILIES[r].includes(s.color), `run ${r} tensor ${t} stays in its family`);
      const key = `${s.color}|${s.dash.join(",")}`;
      assert.ok(!seen.has(key), `run ${r} tensor ${t} repeats ${key}`);
      seen.add(key);
    }
  }
  // The same tensor has the same line style in every run; runs differ in hue.
  assert.deepEqual(runSeriesStyle(0, 1).dash, runSeriesStyle(1, 1).dash);
  assert.ok(deltaE2000(runSeriesStyle(0, 0).color, runSeriesStyle(1, 0).color) > 20);
});

test("axis labels name the metric and its unit, the importance type, SHAP's unit", () => {
  assert.equal(axisLabel("metrics", ["train-rmse", "validation-rmse"]), "rmse (label units)");
  assert.equal(axisLabel("metrics", ["train-auc", "validation-logloss"]), "metric value");
  assert.equal(axisLabel("metrics", ["validation-ndcg@5"]), "ndcg@5");
  assert.equal(axisLabel("feature_importance", ["feature_importance/gain/f1"], "gain"), "gain (share of total)");
  assert.equal(axisLabel("average_shap", ["average_shap/f1"]), "mean SHAP value (label units)");
  assert.equal(axisLabel("weights", ["fc1.weight"]), "fc1.weight");
  assert.equal(axisLabel("weights", ["a", "b"]), "weights");
  assert.equal(higherIsBetterTensor("validation-auc"), true);
  assert.equal(higherIsBetterTensor("validation-rmse"), false);
});
