// #/job?name=...: one training job, live: status, progress, rules, and its trial's panels.
import { onConnected, subscribe } from "../api.js";
import { h, clear, badge, errorBox, formatTime, duration, progressBar, showGlobalError, testidPart } from "../dom.js";
import {
  gqlWithJobFields,
  jobFields,
  jobStatusSubscription,
  mergeRule,
  ruleStatusSubscription,
  type JobStatusEvent,
  type RuleStatusEvent,
  type TrainingJob,
} from "../queries.js";
import type { View } from "../router.js";
import { stopJob } from "./jobs.js";
import { TrialPanels } from "./trial.js";

const jobQuery = () => `query Job($name: String!) { trainingJob(name: $name) { ${jobFields()} } }`;

export function jobView(root: HTMLElement, params: URLSearchParams): View {
  const name = params.get("name") ?? "";
  const id = testidPart(name);
  let job: TrainingJob | null = null;
  let panels: TrialPanels | undefined;
  let destroyed = false;
  const unsubs: (() => void)[] = [];

  const header = h("div", { class: "job-header" });
  const errors = h("div", {});
  const rulesBox = h("div", { class: "card", "data-testid": "job-rules" });
  const hyperBox = h("div", { class: "card" });
  const trialHost = h("div", {});

  const renderJob = () => {
    if (!job) {
      clear(header, h("p", { class: "empty", "data-testid": "job-missing" }, `No training job named "${name}".`));
      return;
    }
    const j = job;
    const stopButton = h(
      "button",
      {
        type: "button",
        class: "danger",
        "data-testid": "job-stop",
        disabled: j.status !== "IN_PROGRESS",
        onclick: async () => {
          stopButton.disabled = true;
          try {
            apply(await stopJob(j.name));
          } catch (err) {
            showGlobalError(err);
            stopButton.disabled = false;
          }
        },
      },
      "Stop job",
    );
    clear(
      header,
      h("div", { class: "job-title-row" }, badge(j.status, "job-status"), j.secondaryStatus ? h("span", { class: "muted", "data-testid": "job-secondary" }, j.secondaryStatus) : null, h("span", { class: "spacer" }), stopButton),
      h(
        "dl",
        { class: "facts" },
        h("div", {}, h("dt", {}, "Backend"), h("dd", {}, j.backend)),
        h("div", {}, h("dt", {}, "Progress"), h("dd", {}, progressBar(j.progress?.current, j.progress?.total, "job-progress"))),
        h("div", {}, h("dt", {}, "Created"), h("dd", {}, formatTime(j.createdAt))),
        h("div", {}, h("dt", {}, "Duration"), h("dd", {}, duration(j.startedAt ?? j.createdAt, j.endedAt))),
        h("div", {}, h("dt", {}, "Debug output"), h("dd", {}, h("code", {}, j.debugOutputPath ?? "—"))),
        j.trial ? h("div", {}, h("dt", {}, "Trial"), h("dd", {}, h("a", { href: `#/trial?path=${encodeURIComponent(j.trial.path)}` }, j.trial.path))) : null,
      ),
      j.failureReason ? h("div", { class: "error-box", role: "alert", "data-testid": "job-failure" }, h("strong", {}, "Failure: "), j.failureReason) : null,
    );
    clear(
      rulesBox,
      h("div", { class: "card-head" }, h("h2", {}, "Rules")),
      j.ruleSummaries.length
        ? h(
            "table",
            { class: "data-table" },
            h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Rule"), h("th", { scope: "col" }, "Status"), h("th", { scope: "col" }, "Evaluator"), h("th", { scope: "col" }, "Details"), h("th", { scope: "col" }, "Updated"))),
            h(
              "tbody",
              {},
              j.ruleSummaries.map((r) =>
                h(
                  "tr",
                  {},
                  h("td", {}, r.ruleConfigurationName),
                  h("td", {}, badge(r.ruleEvaluationStatus, `rule-status-${id}-${testidPart(r.ruleConfigurationName)}`)),
                  h("td", {}, r.evaluator ?? "—"),
                  h("td", { class: "details" }, r.statusDetails ?? "—"),
                  h("td", {}, formatTime(r.lastModifiedTime)),
                ),
              ),
            ),
          )
        : h("p", { class: "muted" }, "No rules configured."),
    );
    const hp = Object.entries(j.hyperparameters ?? {});
    clear(
      hyperBox,
      h("div", { class: "card-head" }, h("h2", {}, "Hyperparameters")),
      hp.length ? h("dl", { class: "facts compact" }, hp.map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, h("code", {}, String(v)))))) : h("p", { class: "muted" }, "None."),
    );
    ensurePanels();
  };

  // The trial path is the job's trial, or its debug output path until the trial exists.
  const ensurePanels = () => {
    const path = job?.trial?.path ?? job?.debugOutputPath ?? null;
    if (!path || panels?.path === path) return;
    panels?.destroy();
    panels = new TrialPanels(path, { onStepsAdded: () => scheduleJobRefresh() });
    clear(trialHost, h("h2", { class: "section-title" }, "Trial"), panels.element);
    void panels.start();
  };

  const apply = (next: TrainingJob) => {
    const wasRunning = job?.status === "IN_PROGRESS";
    job = { ...job, ...next };
    renderJob();
    // The last steps and training_job_end may land just as the job ends: refresh the panels once more.
    if (wasRunning && next.status !== "IN_PROGRESS") panels?.scheduleRefresh();
  };

  const load = async () => {
    try {
      const r = await gqlWithJobFields<{ trainingJob: TrainingJob | null }>(jobQuery, { name });
      if (destroyed) return;
      errors.replaceChildren();
      job = r.trainingJob;
      renderJob();
    } catch (err) {
      if (!destroyed) clear(errors, errorBox(err, "job-error"));
    }
  };

  // Progress moves with steps; refetch the job at most about once a second while steps arrive.
  let jobTimer: number | undefined;
  const scheduleJobRefresh = () => {
    if (jobTimer !== undefined) return;
    jobTimer = window.setTimeout(() => {
      jobTimer = undefined;
      void load();
    }, 1000);
  };

  clear(
    root,
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/jobs" }, "Jobs & trials"), " / ", h("span", {}, "Job")),
    h("h1", { "data-testid": "page-title" }, "Job ", h("code", {}, name)),
    errors,
    h("section", { class: "card", "aria-label": "Job status" }, header),
    h("div", { class: "grid-2" }, rulesBox, hyperBox),
    trialHost,
  );

  void load().then(() => {
    if (destroyed) return;
    unsubs.push(
      subscribe<JobStatusEvent>(jobStatusSubscription(), { jobName: name }, (ev) => {
        if (ev.trainingJobStatusChanged.job.name === name) apply(ev.trainingJobStatusChanged.job);
      }, showGlobalError),
      subscribe<RuleStatusEvent>(ruleStatusSubscription, { jobName: name }, (ev) => {
        if (!job || ev.ruleStatusChanged.jobName !== name) return;
        job = { ...job, ruleSummaries: mergeRule(job.ruleSummaries, ev.ruleStatusChanged.rule) };
        renderJob();
      }, showGlobalError),
      onConnected(() => void load()),
    );
  });

  return {
    destroy: () => {
      destroyed = true;
      clearTimeout(jobTimer);
      for (const u of unsubs) u();
      panels?.destroy();
    },
  };
}
