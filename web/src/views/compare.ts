// #/compare?paths=a,b&jobs=x,y&collection=metrics&tensors=t1,t2
// Overlays the same tensors of several trials or jobs; all runs come back in ONE request,
// one alias per run (t0: trial(path: $p0) …, j0: trainingJob(name: $j0) { trial … }).
import { gql, onConnected, subscribe } from "../api.js";
import { DASHES, LineChart, paletteColor, type LineSeriesInput, type StepRange } from "../chart.js";
import { h, clear, errorBox, formatNumber, showGlobalError, testidPart } from "../dom.js";
import { seriesFields, stepsAddedSubscription, type CollectionSeries, type StepsAddedEvent } from "../queries.js";
import type { View } from "../router.js";
import { OVERVIEW_POINTS, ZOOM_POINTS } from "./trial.js";

interface RunTrial {
  path: string;
  collections: { name: string }[];
  collection: CollectionSeries | null;
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
    .map((r) => (r.kind === "trial" ? `${r.alias}: trial(path: $${r.alias}) { id ${trialSel} }` : `${r.alias}: trainingJob(name: $${r.alias}) { id name trial { id ${trialSel} } }`))
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
  const summary = h("div", { class: "table-wrap" });

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
      const raw = data[r.alias] as RunTrial | { name: string; trial: RunTrial | null } | null;
      const trial = r.kind === "trial" ? (raw as RunTrial | null) : ((raw as { trial: RunTrial | null } | null)?.trial ?? null);
      return { run: r, label: r.key, trial, missing: raw == null };
    });
    // Live: follow every run's trial.
    for (const x of resolved) {
      const path = x.trial?.path;
      if (!path || subscribedPaths.has(path)) continue;
      subscribedPaths.add(path);
      unsubs.push(subscribe<StepsAddedEvent>(stepsAddedSubscription, { path }, () => scheduleLoad(), showGlobalError));
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

    const lines: LineSeriesInput[] = [];
    let sampled = false;
    let nonFiniteCount = 0;
    const rows: HTMLElement[] = [];
    resolved.forEach((x, runIndex) => {
      for (const t of x.trial?.collection?.tensors ?? []) {
        if (!shown.includes(t.name)) continue;
        lines.push({ label: `${x.label} · ${t.name}`, steps: t.series.steps, values: t.series.values, color: paletteColor(allTensorNames.indexOf(t.name)), dash: DASHES[runIndex % DASHES.length] });
        sampled ||= t.series.sampled;
        nonFiniteCount += t.series.nonFinite.length;
        const n = t.series.steps.length;
        rows.push(h("tr", {}, h("td", {}, x.label), h("td", {}, t.name), h("td", {}, n ? String(t.series.steps[n - 1]) : "—"), h("td", {}, n ? formatNumber(t.series.values[n - 1]) : "—")));
      }
    });
    chart.setData(lines, { sampled, nonFiniteCount });
    const missing = resolved.filter((x) => !x.trial);
    clear(
      summary,
      missing.length ? h("p", { class: "muted", "data-testid": "compare-missing" }, `No trial (yet) for: ${missing.map((x) => x.label).join(", ")}`) : null,
      rows.length
        ? h(
            "table",
            { class: "data-table", "data-testid": "compare-summary" },
            h("caption", {}, range ? `Last value in steps ${range.from}–${range.to}` : "Last value"),
            h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Run"), h("th", { scope: "col" }, "Tensor"), h("th", { scope: "col" }, "Step"), h("th", { scope: "col" }, "Value"))),
            h("tbody", {}, rows),
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
