// #/job?name=...: one training job, live: status, progress, rules, and its trial's panels.
import { apiToken, fetchAuthorized, reportPath, subscribe } from "../api.js";
import { h, clear, badge, errorBox, formatTime, duration, progressBar, showGlobalError, testidPart } from "../dom.js";
import {
  cursors,
  gqlWithJobFields,
  jobFields,
  jobUpdatedSubscription,
  mergeJob,
  mergeRule,
  ruleStatusSubscription,
  type JobUpdatedEvent,
  type RuleStatusEvent,
  type RuleSummary,
  type TrainingJob,
} from "../queries.js";
import type { View } from "../router.js";
import { confirmAndStopJob } from "./jobs.js";
import { TrialPanels } from "./trial.js";
import { loadHistories, ruleTimeline } from "./rule-timeline.js";

const jobQuery = () => `query Job($name: String!) { trainingJob(name: $name) { ${jobFields()} } }`;

/** What a rule found, in one line: the first finding, else the status details. */
function oneLine(r: RuleSummary): string {
  const first = r.findings?.[0];
  return (first?.message ?? r.statusDetails ?? "—").replace(/\s+/g, " ");
}

/**
 * The rules: status, where the rule fired (step, tensor), and one line of what it saw; the full
 * details and every finding open on demand. Stacks into cards on narrow screens (styles.css).
 */
export function rulesTable(jobName: string, rules: readonly RuleSummary[]): HTMLElement {
  if (!rules.length) return h("p", { class: "muted" }, "No rules configured.");
  const id = testidPart(jobName);
  return h(
    "table",
    { class: "data-table rules-table", "data-testid": "rules-table" },
    h(
      "thead",
      {},
      h("tr", {}, ["Rule", "Status", "Step", "Tensor", "Finding"].map((c) => h("th", { scope: "col", class: `col-${c.toLowerCase()}` }, c))),
    ),
    h(
      "tbody",
      {},
      rules.map((r) => {
        const findings = r.findings ?? [];
        const first = findings[0];
        const rid = `${id}-${testidPart(r.ruleConfigurationName)}`;
        return h(
          "tr",
          { "data-testid": `rule-row-${rid}`, "data-rule": r.ruleConfigurationName },
          h("td", { "data-label": "Rule" }, h("span", { class: "rule-name" }, r.ruleConfigurationName), h("div", { class: "muted small-text" }, r.evaluator ?? "")),
          h("td", { "data-label": "Status" }, badge(r.ruleEvaluationStatus, `rule-status-${rid}`)),
          h(
            "td",
            { "data-label": "Step", "data-testid": `rule-step-${rid}`, title: findings.length > 1 ? `Fired at steps ${findings.map((f) => f.step).join(", ")}` : null },
            first ? String(first.step) : "—",
            findings.length > 1 ? h("span", { class: "muted small-text" }, ` +${findings.length - 1}`) : null,
          ),
          h("td", { "data-label": "Tensor", "data-testid": `rule-tensor-${rid}` }, first?.tensorNames.length ? h("code", {}, first.tensorNames.join(", ")) : "—"),
          h(
            "td",
            { "data-label": "Finding", class: "rule-finding" },
            h(
              "details",
              { "data-testid": `rule-details-${rid}` },
              h("summary", { class: "one-line", title: oneLine(r) }, oneLine(r)),
              h(
                "div",
                { class: "rule-detail" },
                h("p", { "data-testid": `rule-status-details-${rid}` }, r.statusDetails ?? "No details."),
                findings.length
                  ? h(
                      "ol",
                      { class: "findings" },
                      findings.map((f) =>
                        h("li", {}, h("strong", {}, `step ${f.step}`), f.mode !== "GLOBAL" ? ` (${f.mode} ${f.modeStep})` : "", f.tensorNames.length ? [" · ", h("code", {}, f.tensorNames.join(", "))] : null, ": ", f.message),
                      ),
                    )
                  : null,
                h("p", { class: "muted small-text" }, `Updated ${formatTime(r.lastModifiedTime)}`),
              ),
            ),
          ),
        );
      }),
    ),
  );
}

/** Opens or downloads the job report; with a token the request carries it (a plain link cannot). */
async function openReport(jobName: string, download: boolean, pending: Window | null): Promise<void> {
  try {
    const response = await fetchAuthorized(reportPath(jobName));
    if (!response.ok) throw new Error(`the report could not be made: HTTP ${response.status} ${(await response.text()).slice(0, 200)}`);
    const url = URL.createObjectURL(await response.blob());
    if (download) {
      const a = h("a", { href: url, download: `${jobName}-report.html` });
      document.body.appendChild(a);
      a.click();
      a.remove();
    } else if (pending) pending.location.href = url;
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  } catch (err) {
    pending?.close();
    showGlobalError(err);
  }
}
export function jobView(root: HTMLElement, params: URLSearchParams): View {
  const name = params.get("name") ?? "";
  let job: TrainingJob | null = null;
  let panels: TrialPanels | undefined;
  let destroyed = false;
  const unsubs: (() => void)[] = [];

  const header = h("div", { class: "job-header" });
  const errors = h("div", {});
  const rulesBox = h("div", { class: "card rules-card", "data-testid": "job-rules" });
  const hyperBox = h("div", { class: "card" });
  const timelinesBox = h("div", { class: "card", "data-testid": "rule-timelines", hidden: true });
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
            const stopped = await confirmAndStopJob(j.name);
            if (stopped) apply(stopped);
            else stopButton.disabled = false;
          } catch (err) {
            showGlobalError(err);
            stopButton.disabled = false;
          }
        },
      },
      "Stop job",
    );
    const reportLink = h(
      "a",
      {
        class: "button-link",
        href: reportPath(j.name),
        target: "_blank",
        rel: "noopener",
        "data-testid": "job-report-link",
        onclick: (e: Event) => {
          if (!apiToken()) return; // the plain link works without a token
          e.preventDefault();
          void openReport(j.name, false, window.open("about:blank", "_blank"));
        },
      },
      "Report",
    );
    const downloadButton = h("button", { type: "button", "data-testid": "job-report-download", onclick: () => void openReport(j.name, true, null) }, "Download report");
    clear(
      header,
      h("div", { class: "job-title-row" }, badge(j.status, "job-status"), j.secondaryStatus ? h("span", { class: "muted", "data-testid": "job-secondary" }, j.secondaryStatus) : null, h("span", { class: "spacer" }), reportLink, downloadButton, stopButton),
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
    // Progress arrives every round: the rules and hyperparameters are drawn again only when they
    // changed (a rule's open details stay open while the job trains).
    const rulesKey = JSON.stringify(j.ruleSummaries);
    if (rulesKey !== renderedRules) {
      renderedRules = rulesKey;
      clear(
        rulesBox,
        h("div", { class: "card-head" }, h("h2", {}, "Rules")),
        h("div", { class: "table-wrap" }, rulesTable(j.name, j.ruleSummaries)),
      );
      panels?.setRuleFindings(j.ruleSummaries);
    }
    const hp = Object.entries(j.hyperparameters ?? {});
    const hpKey = JSON.stringify(hp);
    if (hpKey !== renderedHyper) {
      renderedHyper = hpKey;
      clear(
        hyperBox,
        h("div", { class: "card-head" }, h("h2", {}, "Hyperparameters")),
        hp.length ? h("dl", { class: "facts compact" }, hp.map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, h("code", {}, String(v)))))) : h("p", { class: "muted" }, "None."),
      );
    }
    if (ensurePanels()) panels?.setRuleFindings(j.ruleSummaries);
  };
  let renderedRules = "";
  let renderedHyper = "";

  // The trial path is the job's trial, or its debug output path until the trial exists.
  /** True when it made new panels. */
  const ensurePanels = (): boolean => {
    const path = job?.trial?.path ?? job?.debugOutputPath ?? null;
    if (!path || panels?.path === path) return false;
    panels?.destroy();
    panels = new TrialPanels(path, { onStepsAdded: () => { scheduleJobRefresh(); scheduleTimelines(); } });
    clear(trialHost, h("h2", { class: "section-title" }, "Trial"), panels.element);
    void panels.start();
    return true;
  };

  const apply = (next: TrainingJob) => {
    const wasRunning = job?.status === "IN_PROGRESS";
    const statusBefore = job?.status;
    job = mergeJob(job, next);
    renderJob();
    if (statusBefore !== job.status) scheduleTimelines();
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

  // Rule timelines come from the rules' evaluation histories: read again (at most every 2 s) when a
  // rule's status changes, the job's status changes, or new steps were evaluated.
  let timelineTimer: number | undefined;
  const renderTimelines = async () => {
    try {
      const histories = await loadHistories(name);
      if (destroyed) return;
      timelinesBox.hidden = histories.size === 0;
      clear(
        timelinesBox,
        h("div", { class: "card-head" }, h("h2", {}, "Rule timelines"), h("span", { class: "muted small-text" }, "status over the evaluated steps")),
        h("div", { class: "rule-timelines" }, [...histories].map(([rule, history]) => ruleTimeline(name, rule, history))),
      );
    } catch {
      // The rules table already shows where each rule stands; the timeline waits for the next change.
    }
  };
  const scheduleTimelines = () => {
    if (timelineTimer !== undefined) return;
    timelineTimer = window.setTimeout(() => {
      timelineTimer = undefined;
      void renderTimelines();
    }, 2000);
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
    rulesBox,
    timelinesBox,
    hyperBox,
    trialHost,
  );

  void load().then(() => {
    if (destroyed) return;
    void renderTimelines();
    unsubs.push(
      // By name, each subscription starts with the current state, and resumes after its last
      // eventId on a reconnect: nothing to fetch again.
      subscribe<JobUpdatedEvent>(jobUpdatedSubscription(), { jobName: name }, (ev) => {
        const { eventId: _cursor, ...next } = ev.trainingJobUpdated;
        if (next.name === name) apply(next);
      }, showGlobalError, { cursor: cursors.jobUpdated }),
      subscribe<RuleStatusEvent>(ruleStatusSubscription, { jobName: name }, (ev) => {
        if (!job || ev.ruleStatusChanged.jobName !== name) return;
        job = { ...job, ruleSummaries: mergeRule(job.ruleSummaries, ev.ruleStatusChanged.rule) };
        renderJob();
        // A status change is a new entry in the rule's evaluation history: its timeline follows.
        scheduleTimelines();
      }, showGlobalError, { cursor: cursors.ruleStatus }),
    );
  });

  return {
    destroy: () => {
      destroyed = true;
      clearTimeout(jobTimer);
      clearTimeout(timelineTimer);
      for (const u of unsubs) u();
      panels?.destroy();
    },
  };
}
