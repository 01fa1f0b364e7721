// #/compare?paths=a,b&jobs=x,y&collection=metrics&tensors=t1,t2
// Overlays the same tensors of several trials or jobs; all runs come back in ONE request,
// one alias per run (t0: trial(path: $p0) …, j0: trainingJob(name: $j0) { trial … }).
import { gql, onConnected, subscribe } from "../api.js";
import { LineChart, lineSwatch, type LineSeriesInput, type StepRange } from "../chart.js";
import { axisLabel, higherIsBetterTensor, runSeriesStyle } from "../../../src/report/plot-style.js";
import { h, clear, errorBox, formatNumber, showGlobalError, testidPart } from "../dom.js";
import { OVERVIEW_POINTS, ZOOM_POINTS, seriesFields, stepsAddedSubscription, cursors, type CollectionSeries, type StepsAddedEvent } from "../queries.js";
import type { View } from "../router.js";

interface RunTrial {
  path: string;
  collections: { name: string }[];
  collection: CollectionSeries | null;
}

interface RunJob {
  name: string;
  hyperparameters: Record<string, unknown> | null;
  trial: RunTrial | null;
}

export interface RunIdentity {
  /** job name or trial path */
  key: string;
  /** null for a bare trial (no job, so no settings to compare) */
  hyperparameters: Record<string, string> | null;
}

export interface RunLabels {
  /** Short label per run: what differs (eta=0.2), else the job name or trial path. */
  labels: string[];
  /** Hyperparameters whose values differ between the jobs, sorted. */
  differing: string[];
  /** Hyperparameters every job has with the same value. */
  same: [string, string][];
}

const MAX_LABEL_KEYS = 3;

/** Labels runs by the hyperparameters that differ between them (job name on hover). */
export function runLabels(runs: readonly RunIdentity[]): RunLabels {
  const jobs = runs.filter((r) => r.hyperparameters);
  const keys = [...new Set(jobs.flatMap((r) => Object.keys(r.hyperparameters!)))].sort();
  const value = (r: RunIdentity, k: string) => r.hyperparameters?.[k] ?? "—";
  const differing = jobs.length > 1 ? keys.filter((k) => new Set(jobs.map((r) => value(r, k))).size > 1) : [];
  const same = jobs.length > 1 ? keys.filter((k) => !differing.includes(k) && jobs.every((r) => k in r.hyperparameters!)).map((k): [string, string] => [k, value(jobs[0], k)]) : [];
  let labels = runs.map((r) => {
    if (!r.hyperparameters || differing.length === 0) return r.key;
    const shown = differing.slice(0, MAX_LABEL_KEYS).map((k) => `${k}=${value(r, k)}`).join(", ");
    return differing.length > MAX_LABEL_KEYS ? `${shown}, …` : shown;
  });
  // Two runs with the same settings (or the same shown ones) are told apart by name.
  labels = labels.map((l, i) => (labels.indexOf(l) !== labels.lastIndexOf(l) && l !== runs[i].key ? `${l} (${runs[i].key})` : l));
  return { labels, differing, same };
}

function stringValues(hp: Record<string, unknown> | null | undefined): Record<string, string> | null {
  return hp ? Object.fromEntries(Object.entries(hp).map(([k, v]) => [k, String(v)])) : null;
}

/** "+0.0539 (+2.4%)" against the baseline run's value. */
function difference(v: number | null, base: number | null): string {
  if (v == null || base == null) return "—";
  const d = v - base;
  const pct = base !== 0 ? ` (${d >= 0 ? "+" : ""}${((d / Math.abs(base)) * 100).toFixed(1)}%)` : "";
  return `${d >= 0 ? "+" : ""}${formatNumber(d)}${pct}`;
}

interface Extremes {
  final: { step: number; value: number } | null;
  best: { step: number; value: number } | null;
}

/** The last finite value and the best one (smallest, or largest for AUC-like metrics). */
function extremes(name: string, steps: number[], values: (number | null)[]): Extremes {
  const higher = higherIsBetterTensor(name);
  let final: Extremes["final"] = null;
  let best: Extremes["best"] = null;
  values.forEach((v, i) => {
    if (v == null) return;
    final = { step: steps[i], value: v };
    if (!best || (higher ? v > best.value : v < best.value)) best = { step: steps[i], value: v };
  });
  return { final, best };
}

export interface CompareRun {
  /** alias in the request */
  alias: string;
  kind: "trial" | "job";
  key: string;
}

export function compareRuns(paths: string[], jobs: string[]): CompareRun[] {
  return [...paths.map((p, i) => ({ alias: `t${i}`, kind: "trial" as const, key: p })), ...jobs.map((j, i) => ({ alias: `j${i}`, kind: "job" as const, key: j }))];
}

/** Builds the single aliased query for every run. */
export function buildCompareQuery(runs: CompareRun[]): string {
  const vars = runs.map((r) => `$${r.alias}: String!`).join(", ");
  const trialSel = `path collections { name } collection(name: $collection) { name tensors { name series(fromStep: $from, toStep: $to, maxPoints: $max) { ${seriesFields} } } }`;
  const fields = runs
    .map((r) => (r.kind === "trial" ? `${r.alias}: trial(path: $${r.alias}) { id ${trialSel} }` : `${r.alias}: trainingJob(name: $${r.alias}) { id name hyperparameters trial { id ${trialSel} } }`))
    .join("\n  ");
  return `query Compare($collection: String!, $from: Int, $to: Int, $max: Int${vars ? `, ${vars}` : ""}) {\n  ${fields}\n}`;
}

const listQuery = `query CompareChoices { trials { id path } trainingJobs(first: 100) { nodes { id name status trial { id path } } } }`;

function splitList(v: string | null): string[] {
  return (v ?? "").split(",").map((s) => s.trim()).filter(Boolean);
}

export function compareView(root: HTMLElement, params: URLSearchParams): View {
  const paths = splitList(params.get("paths"));
  const jobNames = splitList(params.get("jobs"));
  const collectionName = params.get("collection") || "metrics";
  const tensorFilter = new Set(splitList(params.get("tensors")));
  const runs = compareRuns(paths, jobNames);
  let range: StepRange | null = null;
  let destroyed = false;
  const unsubs: (() => void)[] = [];
  const subscribedPaths = new Set<string>();

  const setParams = (next: { paths?: string[]; jobs?: string[]; collection?: string; tensors?: string[] }) => {
    const p = new URLSearchParams();
    const np = next.paths ?? paths;
    const nj = next.jobs ?? jobNames;
    const nt = next.tensors ?? [...tensorFilter];
    if (np.length) p.set("paths", np.join(","));
    if (nj.length) p.set("jobs", nj.join(","));
    p.set("collection", next.collection ?? collectionName);
    if (nt.length) p.set("tensors", nt.join(","));
    location.hash = `#/compare?${p.toString()}`;
  };

  const chart = new LineChart({
    title: `Compare: ${collectionName}`,
    testid: "compare-chart",
    height: 340,
    onZoom: (r) => {
      range = r;
      void load();
    },
    emptyText: runs.length ? "No matching series." : "Pick two or more runs above.",
  });
  const errors = h("div", {});
  const picker = h("div", { class: "compare-picker", "data-testid": "compare-picker" });
  const controls = h("div", { class: "compare-controls" });
  const summary = h("div", { class: "compare-summary" });

  const renderPicker = async () => {
    try {
      const r = await gql<{ trials: { path: string }[]; trainingJobs: { nodes: { name: string; status: string; trial: { path: string } | null }[] } }>(listQuery);
      if (destroyed) return;
      const trialBoxes = r.trials.map((t) =>
        h(
          "label",
          { class: "inline chip" },
          h("input", {
            type: "checkbox",
            checked: paths.includes(t.path),
            "data-testid": `compare-pick-trial-${testidPart(t.path)}`,
            onchange: (e: Event) => setParams({ paths: (e.target as HTMLInputElement).checked ? [...paths, t.path] : paths.filter((p) => p !== t.path) }),
          }),
          " ",
          t.path,
        ),
      );
      const jobBoxes = r.trainingJobs.nodes.map((j) =>
        h(
          "label",
          { class: "inline chip" },
          h("input", {
            type: "checkbox",
            checked: jobNames.includes(j.name),
            "data-testid": `compare-pick-job-${testidPart(j.name)}`,
            onchange: (e: Event) => setParams({ jobs: (e.target as HTMLInputElement).checked ? [...jobNames, j.name] : jobNames.filter((n) => n !== j.name) }),
          }),
          " ",
          j.name,
          h("span", { class: "muted" }, ` (${j.status.toLowerCase().replace(/_/g, " ")})`),
        ),
      );
      clear(
        picker,
        h("fieldset", {}, h("legend", {}, "Trials"), trialBoxes.length ? trialBoxes : h("span", { class: "muted" }, "none")),
        h("fieldset", {}, h("legend", {}, "Jobs"), jobBoxes.length ? jobBoxes : h("span", { class: "muted" }, "none")),
      );
    } catch (err) {
      if (!destroyed) clear(picker, errorBox(err, "compare-picker-error"));
    }
  };

  const load = async () => {
    if (runs.length === 0) {
      chart.setData([], { sampled: false, nonFiniteCount: 0 });
      return;
    }
    const variables: Record<string, unknown> = {
      collection: collectionName,
      from: range?.from ?? null,
      to: range?.to ?? null,
      max: range ? ZOOM_POINTS : OVERVIEW_POINTS,
    };
    for (const r of runs) variables[r.alias] = r.key;
    try {
      const data = await gql<Record<string, unknown>>(buildCompareQuery(runs), variables);
      if (destroyed) return;
      errors.replaceChildren();
      render(data);
    } catch (err) {
      if (!destroyed) clear(errors, errorBox(err, "compare-error"));
    }
  };

  let timer: number | undefined;
  const scheduleLoad = () => {
    if (timer !== undefined) return;
    timer = window.setTimeout(() => {
      timer = undefined;
      void load();
    }, 750);
  };

  const render = (data: Record<string, unknown>) => {
    const resolved = runs.map((r) => {
      const raw = data[r.alias] as RunTrial | RunJob | null;
      const job = r.kind === "job" ? (raw as RunJob | null) : null;
      const trial = r.kind === "trial" ? (raw as RunTrial | null) : (job?.trial ?? null);
      return { run: r, trial, hyperparameters: job ? stringValues(job.hyperparameters) : null, missing: raw == null };
    });
    const { labels, differing, same } = runLabels(resolved.map((x) => ({ key: x.run.key, hyperparameters: x.hyperparameters })));
    // Live: follow every run's trial.
    for (const x of resolved) {
      const path = x.trial?.path;
      if (!path || subscribedPaths.has(path)) continue;
      subscribedPaths.add(path);
      unsubs.push(subscribe<StepsAddedEvent>(stepsAddedSubscription, { path }, () => scheduleLoad(), showGlobalError, { cursor: cursors.stepsAdded }));
    }
    const allTensorNames = [...new Set(resolved.flatMap((x) => x.trial?.collection?.tensors.map((t) => t.name) ?? []))].sort();
    const shown = tensorFilter.size ? allTensorNames.filter((n) => tensorFilter.has(n)) : allTensorNames;
    const collections = [...new Set(resolved.flatMap((x) => x.trial?.collections.map((c) => c.name) ?? []))].sort();
    if (!collections.includes(collectionName)) collections.unshift(collectionName);

    const collectionSelect = h(
      "select",
      { "aria-label": "Collection", "data-testid": "compare-collection", onchange: (e: Event) => setParams({ collection: (e.target as HTMLSelectElement).value, tensors: [] }) },
      collections.map((c) => h("option", { value: c }, c)),
    );
    collectionSelect.value = collectionName;
    clear(
      controls,
      h("label", {}, "Collection ", collectionSelect),
      h(
        "fieldset",
        { class: "tensor-picks" },
        h("legend", {}, "Tensors"),
        allTensorNames.map((n) =>
          h(
            "label",
            { class: "inline chip" },
            h("input", {
              type: "checkbox",
              checked: shown.includes(n),
              "data-testid": `compare-tensor-${testidPart(n)}`,
              onchange: (e: Event) => {
                const next = new Set(shown);
                if ((e.target as HTMLInputElement).checked) next.add(n);
                else next.delete(n);
                setParams({ tensors: next.size === allTensorNames.length ? [] : [...next] });
              },
            }),
            " ",
            n,
          ),
        ),
      ),
    );

    // Each run is one colour family; each tensor keeps its line style across runs.
    const lines: LineSeriesInput[] = [];
    let sampled = false;
    let nonFiniteCount = 0;
    const stats: { run: number; tensor: string; style: ReturnType<typeof runSeriesStyle>; ex: Extremes }[] = [];
    resolved.forEach((x, runIndex) => {
      for (const t of x.trial?.collection?.tensors ?? []) {
        if (!shown.includes(t.name)) continue;
        const style = runSeriesStyle(runIndex, allTensorNames.indexOf(t.name));
        lines.push({ label: `${labels[runIndex]} · ${t.name}`, title: `${x.run.key} · ${t.name}`, tensor: t.name, steps: t.series.steps, values: t.series.values, color: style.color, dash: style.dash });
        sampled ||= t.series.sampled;
        nonFiniteCount += t.series.nonFinite.length;
        stats.push({ run: runIndex, tensor: t.name, style, ex: extremes(t.name, t.series.steps, t.series.values) });
      }
    });
    chart.setYLabel(axisLabel(collectionName, shown));
    chart.setData(lines, { sampled, nonFiniteCount });

    const runCell = (runIndex: number, style?: ReturnType<typeof runSeriesStyle>) =>
      h("td", { title: resolved[runIndex].run.key, class: "run-cell" }, lineSwatch(style?.color ?? runSeriesStyle(runIndex, 0).color, style?.dash ?? []), " ", labels[runIndex]);
    const missing = resolved.filter((x) => !x.trial);
    const jobsWithSettings = resolved.map((x, i) => ({ x, i })).filter(({ x }) => x.hyperparameters);
    // Final and best per run and tensor, each against the first run's.
    const metricsCollection = collectionName === "metrics";
    const baseline = (tensor: string) => stats.find((s) => s.tensor === tensor);
    const statRows = shown.flatMap((tensor) =>
      stats
        .filter((s) => s.tensor === tensor)
        .map((s) => {
          const base = baseline(tensor)!;
          const isBase = base === s;
          const delta = (p: { value: number } | null, q: { value: number } | null) => (p && q ? p.value - q.value : "");
          const at = (p: { step: number; value: number } | null) => (p ? [formatNumber(p.value), h("span", { class: "muted small-text" }, ` @ ${p.step}`)] : "—");
          return h(
            "tr",
            { "data-testid": `compare-stat-${s.run}-${testidPart(tensor)}` },
            runCell(s.run, s.style),
            h("td", {}, h("code", {}, tensor)),
            h("td", { class: "num", "data-final": s.ex.final?.value ?? "" }, at(s.ex.final)),
            h("td", { class: "num muted", "data-delta-final": delta(s.ex.final, base.ex.final) }, isBase ? "baseline" : difference(s.ex.final?.value ?? null, base.ex.final?.value ?? null)),
            metricsCollection ? h("td", { class: "num", "data-best": s.ex.best?.value ?? "" }, at(s.ex.best)) : null,
            metricsCollection ? h("td", { class: "num muted", "data-delta-best": delta(s.ex.best, base.ex.best) }, isBase ? "baseline" : difference(s.ex.best?.value ?? null, base.ex.best?.value ?? null)) : null,
          );
        }),
    );
    clear(
      summary,
      missing.length ? h("p", { class: "muted", "data-testid": "compare-missing" }, `No trial (yet) for: ${missing.map((x) => x.run.key).join(", ")}`) : null,
      differing.length
        ? h(
            "div",
            { class: "table-wrap" },
            h(
              "table",
              { class: "data-table compact-table", "data-testid": "compare-hyperparameters" },
              h("caption", {}, "Hyperparameters that differ"),
              h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Run"), differing.map((k) => h("th", { scope: "col" }, k)))),
              h(
                "tbody",
                {},
                jobsWithSettings.map(({ x, i }) => h("tr", {}, runCell(i), differing.map((k) => h("td", { "data-key": k }, h("code", {}, x.hyperparameters![k] ?? "—"))))),
              ),
            ),
            same.length ? h("p", { class: "muted small-text", "data-testid": "compare-same" }, "Same in every job: ", same.map(([k, v]) => `${k}=${v}`).join(", ")) : null,
          )
        : null,
      statRows.length
        ? h(
            "div",
            { class: "table-wrap" },
            h(
              "table",
              { class: "data-table compact-table", "data-testid": "compare-summary" },
              h("caption", {}, `${range ? `Steps ${range.from}–${range.to}` : "Whole run"}: final${metricsCollection ? " and best" : ""} value per run, and the difference to ${labels[0]}`),
              h(
                "thead",
                {},
                h(
                  "tr",
                  {},
                  h("th", { scope: "col" }, "Run"),
                  h("th", { scope: "col" }, "Tensor"),
                  h("th", { scope: "col" }, "Final"),
                  h("th", { scope: "col" }, "Δ final"),
                  metricsCollection ? h("th", { scope: "col" }, "Best") : null,
                  metricsCollection ? h("th", { scope: "col" }, "Δ best") : null,
                ),
              ),
              h("tbody", {}, statRows),
            ),
          )
        : null,
    );
  };

  clear(
    root,
    h("h1", { "data-testid": "page-title" }, "Compare runs"),
    h("section", { class: "card", "aria-label": "Runs to compare" }, h("div", { class: "card-head" }, h("h2", {}, "Runs")), picker),
    errors,
    h("section", { class: "card", "aria-label": "Overlay" }, controls, chart.element, summary),
  );
  void renderPicker();
  void load();
  unsubs.push(onConnected(() => scheduleLoad()));

  return {
    destroy: () => {
      destroyed = true;
      clearTimeout(timer);
      for (const u of unsubs) u();
      chart.destroy();
    },
  };
}
