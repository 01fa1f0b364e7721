// #/jobs: training jobs (live), the start-job form, and the trials the service knows.
import { gql, onConnected, subscribe } from "../api.js";
import { h, clear, badge, confirmDialog, errorBox, formatTime, duration, progressBar, showGlobalError, testidPart } from "../dom.js";
import {
  cursors,
  gqlWithJobFields,
  jobFields,
  jobUpdatedSubscription,
  mergeJob,
  mergeRule,
  ruleStatusSubscription,
  stopJobMutation,
  type JobUpdatedEvent,
  type RuleStatusEvent,
  type RuleSummary,
  type TrainingJob,
} from "../queries.js";
import type { View } from "../router.js";
import { startJobForm } from "./start-job.js";

interface TrialListItem {
  id: string;
  path: string;
  trainingEnded: boolean;
  steps: number[];
}

const PAGE_SIZE = 25;

const jobsQuery = () => `query Jobs($first: Int, $after: String, $status: TrainingJobStatus, $nameContains: String) {
  trainingJobs(first: $first, after: $after, status: $status, nameContains: $nameContains) {
    nodes { ${jobFields()} }
    pageInfo { endCursor hasNextPage }
  }
}`;
const trialsQuery = `query Trials { trials { id path trainingEnded steps } }`;

export function ruleBadges(jobName: string, rules: RuleSummary[]): HTMLElement {
  if (rules.length === 0) return h("span", { class: "muted" }, "—");
  return h(
    "ul",
    { class: "rule-list" },
    rules.map((r) =>
      h(
        "li",
        {},
        h("span", { class: "rule-name" }, r.ruleConfigurationName),
        " ",
        badge(r.ruleEvaluationStatus, `rule-status-${testidPart(jobName)}-${testidPart(r.ruleConfigurationName)}`, r.statusDetails ?? undefined),
      ),
    ),
  );
}

/** Stops a job once the user confirms; null when they did not. */
export async function confirmAndStopJob(name: string): Promise<TrainingJob | null> {
  const confirmed = await confirmDialog({
    title: `Stop ${name}?`,
    message: "Training stops after the current round and the job ends STOPPED; rules that have not finished end STOPPED too. A stopped job cannot be resumed.",
    confirm: "Stop job",
    danger: true,
    testid: "stop-confirm",
  });
  if (!confirmed) return null;
  const r = await gqlWithJobFields<{ stopTrainingJob: TrainingJob }>(stopJobMutation, { name });
  return r.stopTrainingJob;
}

export function jobsView(root: HTMLElement): View {
  const jobs = new Map<string, TrainingJob>();
  let order: string[] = [];
  let endCursor: string | null = null;
  let hasNextPage = false;
  const selectedJobs = new Set<string>();
  const selectedTrials = new Set<string>();
  const unsubs: (() => void)[] = [];
  let destroyed = false;

  const statusFilter = h(
    "select",
    { "aria-label": "Filter by status", "data-testid": "jobs-status-filter" },
    h("option", { value: "" }, "All statuses"),
    ["IN_PROGRESS", "COMPLETED", "FAILED", "STOPPING", "STOPPED"].map((s) => h("option", { value: s }, s.replace(/_/g, " "))),
  );
  const nameFilter = h("input", { type: "search", placeholder: "Name contains…", "aria-label": "Filter by name", "data-testid": "jobs-name-filter" });
  const jobsError = h("div", {});
  const jobsBody = h("tbody", { "data-testid": "jobs-body" });
  const moreButton = h("button", { type: "button", class: "small", hidden: true, onclick: () => void loadJobs(true) }, "Load more");
  const trialsBody = h("tbody", { "data-testid": "trials-body" });
  const trialsError = h("div", {});
  const compareButton = h("button", { type: "button", class: "primary small", "data-testid": "compare-selected", disabled: true, onclick: () => openCompare() }, "Compare selected");

  const matchesFilter = (job: TrainingJob): boolean =>
    (!statusFilter.value || job.status === statusFilter.value) && (!nameFilter.value || job.name.includes(nameFilter.value));

  const updateCompareButton = () => {
    compareButton.disabled = selectedJobs.size + selectedTrials.size < 1;
  };

  const openCompare = () => {
    const params = new URLSearchParams();
    if (selectedTrials.size) params.set("paths", [...selectedTrials].join(","));
    if (selectedJobs.size) params.set("jobs", [...selectedJobs].join(","));
    location.hash = `#/compare?${params.toString()}`;
  };

  const jobRow = (job: TrainingJob): HTMLTableRowElement => {
    const id = testidPart(job.name);
    const canStop = job.status === "IN_PROGRESS";
    const stopButton = h(
      "button",
      {
        type: "button",
        class: "small danger",
        "data-testid": `job-stop-${id}`,
        "aria-label": `Stop ${job.name}`,
        disabled: !canStop,
        onclick: async () => {
          stopButton.disabled = true;
          try {
            const stopped = await confirmAndStopJob(job.name);
            if (stopped) upsert(stopped);
            else stopButton.disabled = false;
          } catch (err) {
            showGlobalError(err);
            stopButton.disabled = false;
          }
        },
      },
      "Stop",
    );
    const check = h("input", {
      type: "checkbox",
      "aria-label": `Select ${job.name} for comparison`,
      checked: selectedJobs.has(job.name),
      onchange: () => {
        if (check.checked) selectedJobs.add(job.name);
        else selectedJobs.delete(job.name);
        updateCompareButton();
      },
    });
    return h(
      "tr",
      { "data-testid": `job-row-${id}`, "data-job-name": job.name, "data-status": job.status },
      h("td", {}, check),
      h("td", {}, h("a", { href: `#/job?name=${encodeURIComponent(job.name)}`, "data-testid": `job-link-${id}` }, job.name), h("div", { class: "muted small-text" }, job.backend)),
      h("td", {}, badge(job.status, `job-status-${id}`, job.failureReason ?? undefined), job.secondaryStatus ? h("div", { class: "muted small-text", "data-testid": `job-secondary-${id}` }, job.secondaryStatus) : null),
      h("td", {}, progressBar(job.progress?.current, job.progress?.total, `job-progress-${id}`)),
      h("td", { "data-testid": `job-rules-${id}` }, ruleBadges(job.name, job.ruleSummaries)),
      h("td", {}, formatTime(job.createdAt), h("div", { class: "muted small-text", "data-testid": `job-duration-${id}` }, duration(job.startedAt ?? job.createdAt, job.endedAt))),
      h("td", {}, stopButton),
    );
  };

  const renderJobs = () => {
    const visible = order.map((n) => jobs.get(n)!).filter(matchesFilter);
    clear(jobsBody, visible.length ? visible.map(jobRow) : h("tr", {}, h("td", { colspan: 7, class: "empty" }, "No training jobs yet. Start one above.")));
    moreButton.hidden = !hasNextPage;
  };

  const upsert = (job: TrainingJob) => {
    if (!jobs.has(job.name)) order.unshift(job.name);
    jobs.set(job.name, mergeJob(jobs.get(job.name), job));
    scheduleRender();
  };
  // A running job's duration moves even between its events (a SageMaker job reports no rounds).
  const clock = window.setInterval(() => {
    if ([...jobs.values()].some((j) => j.status === "IN_PROGRESS" || j.status === "STOPPING")) scheduleRender();
  }, 1000);
  // Running jobs report every round: draw the table at most once a frame.
  let renderFrame: number | undefined;
  const scheduleRender = () => {
    if (renderFrame !== undefined) return;
    renderFrame = requestAnimationFrame(() => {
      renderFrame = undefined;
      if (!destroyed) renderJobs();
    });
  };

  const loadJobs = async (more = false) => {
    try {
      const r = await gqlWithJobFields<{ trainingJobs: { nodes: TrainingJob[]; pageInfo: { endCursor: string | null; hasNextPage: boolean } } }>(jobsQuery, {
        first: PAGE_SIZE,
        after: more ? endCursor : null,
        status: statusFilter.value || null,
        nameContains: nameFilter.value || null,
      });
      if (destroyed) return;
      if (!more) {
        jobs.clear();
        order = [];
      }
      for (const job of r.trainingJobs.nodes) {
        if (!jobs.has(job.name)) order.push(job.name);
        jobs.set(job.name, job);
      }
      endCursor = r.trainingJobs.pageInfo.endCursor;
      hasNextPage = r.trainingJobs.pageInfo.hasNextPage;
      jobsError.replaceChildren();
      renderJobs();
    } catch (err) {
      if (!destroyed) clear(jobsError, errorBox(err, "jobs-error"));
    }
  };

  /** Trial paths the list shows: a running job whose trial is not among them yet makes it reload. */
  let listedTrials = new Set<string>();
  let trialsTimer: number | undefined;
  /** At most one trials reload a second, however many job updates ask for one. */
  const scheduleLoadTrials = () => {
    if (trialsTimer !== undefined) return;
    trialsTimer = window.setTimeout(() => {
      trialsTimer = undefined;
      void loadTrials();
    }, 1000);
  };
  const loadTrials = async () => {
    try {
      const r = await gql<{ trials: TrialListItem[] }>(trialsQuery);
      if (destroyed) return;
      listedTrials = new Set(r.trials.map((t) => t.path));
      trialsError.replaceChildren();
      clear(
        trialsBody,
        r.trials.length
          ? r.trials.map((t) => {
              const check = h("input", {
                type: "checkbox",
                "aria-label": `Select trial ${t.path} for comparison`,
                checked: selectedTrials.has(t.path),
                onchange: () => {
                  if (check.checked) selectedTrials.add(t.path);
                  else selectedTrials.delete(t.path);
                  updateCompareButton();
                },
              });
              return h(
                "tr",
                { "data-testid": `trial-row-${testidPart(t.path)}` },
                h("td", {}, check),
                h("td", {}, h("a", { href: `#/trial?path=${encodeURIComponent(t.path)}`, "data-testid": `trial-link-${testidPart(t.path)}` }, t.path)),
                h("td", {}, String(t.steps.length), t.steps.length ? h("span", { class: "muted" }, ` (last ${t.steps[t.steps.length - 1]})`) : null),
                h("td", {}, badge(t.trainingEnded ? "ENDED" : "RUNNING")),
              );
            })
          : h("tr", {}, h("td", { colspan: 4, class: "empty" }, "No trials yet.")),
      );
    } catch (err) {
      if (!destroyed) clear(trialsError, errorBox(err, "trials-error"));
    }
  };

  statusFilter.addEventListener("change", () => void loadJobs());
  let nameTimer: number | undefined;
  nameFilter.addEventListener("input", () => {
    clearTimeout(nameTimer);
    nameTimer = window.setTimeout(() => void loadJobs(), 250);
  });

  clear(
    root,
    h("h1", { "data-testid": "page-title" }, "Training jobs"),
    h(
      "details",
      { class: "card", "data-testid": "start-job-panel" },
      h("summary", { "data-testid": "start-job-toggle" }, h("strong", {}, "Start a training job"), h("span", { class: "muted" }, " — prefilled with the XGBoost lab's defaults")),
      startJobForm((job) => {
        upsert(job);
        void loadTrials();
      }),
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "jobs-heading" },
      h("div", { class: "card-head" }, h("h2", { id: "jobs-heading" }, "Jobs"), h("div", { class: "toolbar" }, statusFilter, nameFilter, compareButton)),
      jobsError,
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "data-table", "data-testid": "jobs-table" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              h("th", { scope: "col" }, h("span", { class: "sr-only" }, "Select")),
              h("th", { scope: "col" }, "Name"),
              h("th", { scope: "col" }, "Status"),
              h("th", { scope: "col" }, "Progress"),
              h("th", { scope: "col" }, "Rules"),
              h("th", { scope: "col" }, "Created"),
              h("th", { scope: "col" }, h("span", { class: "sr-only" }, "Actions")),
            ),
          ),
          jobsBody,
        ),
      ),
      moreButton,
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "trials-heading" },
      h("div", { class: "card-head" }, h("h2", { id: "trials-heading" }, "Trials"), h("button", { type: "button", class: "small", onclick: () => void loadTrials() }, "Refresh")),
      trialsError,
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "data-table", "data-testid": "trials-table" },
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, h("span", { class: "sr-only" }, "Select")), h("th", { scope: "col" }, "Path"), h("th", { scope: "col" }, "Steps"), h("th", { scope: "col" }, "Training"))),
          trialsBody,
        ),
      ),
    ),
  );

  void loadJobs().then(() => {
    if (destroyed) return;
    // Subscribe after the first query so the job selection matches what the schema supports.
    unsubs.push(
      // Every move of every job: status, secondary status, and progress as rounds finish (the
      // progress bar and the duration move with it).
      subscribe<JobUpdatedEvent>(jobUpdatedSubscription(), {}, (ev) => {
        const { eventId: _cursor, ...job } = ev.trainingJobUpdated;
        const before = jobs.get(job.name);
        upsert(job);
        // A new job's trial appears once its first step is written; an ended job's trial is complete.
        const trialMissing = job.debugOutputPath && !listedTrials.has(job.trial?.path ?? job.debugOutputPath);
        if (trialMissing || (before && before.status !== job.status)) scheduleLoadTrials();
      }, showGlobalError, { cursor: cursors.jobUpdated }),
      subscribe<RuleStatusEvent>(ruleStatusSubscription, {}, (ev) => {
        const { jobName, rule } = ev.ruleStatusChanged;
        const job = jobs.get(jobName);
        if (!job) return;
        jobs.set(jobName, { ...job, ruleSummaries: mergeRule(job.ruleSummaries, rule) });
        renderJobs();
      }, showGlobalError, { cursor: cursors.ruleStatus }),
      // Subscriptions resume after their last event; one that had none yet (nothing happened since
      // the page loaded) has no cursor, so the list is fetched again on a reconnect as well.
      onConnected(() => void loadJobs()),
    );
  });
  void loadTrials();

  return {
    destroy: () => {
      destroyed = true;
      clearTimeout(nameTimer);
      clearTimeout(trialsTimer);
      clearInterval(clock);
      if (renderFrame !== undefined) cancelAnimationFrame(renderFrame);
      for (const u of unsubs) u();
    },
  };
}
