// A small timeline per rule, from its evaluation history (RuleSummary.evaluations): a strip over
// the evaluated steps coloured by the rule's status, with each status change marked and named
// ("IN_PROGRESS → ISSUES_FOUND at step 30").
import { gql } from "../api.js";
import { h, testidPart } from "../dom.js";
import type { RuleEvaluationStatus } from "../queries.js";

export interface HistoryEntry {
  step: number | null;
  status: RuleEvaluationStatus;
  time: string;
  message: string;
}

/** One status held over a range of steps. */
export interface Segment {
  status: RuleEvaluationStatus;
  fromStep: number;
  toStep: number;
}

/** A status change: where the history's status differs from the entry before it. */
export interface Change {
  from: RuleEvaluationStatus | null;
  to: RuleEvaluationStatus;
  step: number | null;
  time: string;
}

/** Pages through a rule's history (oldest first); the history is compacted, so it stays small. */
const PAGE = 100;
const MAX_PAGES = 20;
const historyQuery = `query RuleHistory($name: String!, $first: Int, $after: String) {
  trainingJob(name: $name) { ruleSummaries { ruleConfigurationName evaluations(first: $first, after: $after) { nodes { step status time message } pageInfo { endCursor hasNextPage } } } }
}`;

type HistoryAnswer = {
  trainingJob: { ruleSummaries: { ruleConfigurationName: string; evaluations: { nodes: HistoryEntry[]; pageInfo: { endCursor: string | null; hasNextPage: boolean } } }[] } | null;
};

/**
 * Every rule's history of one job: the first page of all rules in one request; a rule with more
 * pages then pages on with its own cursor (a cursor means "after this entry of this rule", so the
 * other rules' answers to that request are ignored).
 */
export async function loadHistories(jobName: string): Promise<Map<string, HistoryEntry[]>> {
  const out = new Map<string, HistoryEntry[]>();
  const first = await gql<HistoryAnswer>(historyQuery, { name: jobName, first: PAGE, after: null });
  if (!first.trainingJob) return out;
  const more: [string, string][] = [];
  for (const rule of first.trainingJob.ruleSummaries) {
    out.set(rule.ruleConfigurationName, rule.evaluations.nodes.slice());
    if (rule.evaluations.pageInfo.hasNextPage && rule.evaluations.pageInfo.endCursor) more.push([rule.ruleConfigurationName, rule.evaluations.pageInfo.endCursor]);
  }
  for (const [ruleName, cursor] of more) {
    let after: string | null = cursor;
    for (let page = 1; after && page < MAX_PAGES; page++) {
      const r: HistoryAnswer = await gql<HistoryAnswer>(historyQuery, { name: jobName, first: PAGE, after });
      const rule = r.trainingJob?.ruleSummaries.find((x) => x.ruleConfigurationName === ruleName);
      if (!rule) break;
      out.get(ruleName)!.push(...rule.evaluations.nodes);
      after = rule.evaluations.pageInfo.hasNextPage ? rule.evaluations.pageInfo.endCursor : null;
    }
  }
  return out;
}

/** Status changes and the segments between them, from a history (oldest first). */
export function timelineOf(history: readonly HistoryEntry[]): { segments: Segment[]; changes: Change[]; lastStep: number } {
  const segments: Segment[] = [];
  const changes: Change[] = [];
  let previous: RuleEvaluationStatus | null = null;
  let lastStep = 0;
  for (const e of history) {
    const step = e.step ?? lastStep;
    if (e.step !== null) lastStep = Math.max(lastStep, e.step);
    if (e.status !== previous) {
      changes.push({ from: previous, to: e.status, step: e.step, time: e.time });
      segments.push({ status: e.status, fromStep: step, toStep: step });
      previous = e.status;
    } else if (segments.length) segments[segments.length - 1].toStep = Math.max(segments[segments.length - 1].toStep, step);
  }
  return { segments, changes, lastStep };
}

const statusClass = (s: string) => `tl-${s.toLowerCase().replace(/_/g, "-")}`;

/** The strip of one rule. */
export function ruleTimeline(jobName: string, ruleName: string, history: readonly HistoryEntry[]): HTMLElement {
  const rid = `${testidPart(jobName)}-${testidPart(ruleName)}`;
  const { segments, changes, lastStep } = timelineOf(history);
  const span = Math.max(1, lastStep);
  const described = changes.map((c) => `${c.from ?? "start"} → ${c.to}${c.step !== null ? ` at step ${c.step}` : ""}`);
  return h(
    "div",
    { class: "rule-timeline", "data-testid": `rule-timeline-${rid}`, "data-changes": changes.map((c) => `${c.from ?? ""}>${c.to}@${c.step ?? ""}`).join("|") },
    h("div", { class: "tl-name" }, ruleName),
    history.length
      ? h(
          "div",
          { class: "tl-strip", role: "img", "aria-label": `${ruleName}: ${described.join(", ")}` },
          segments.map((s, i) => {
            // Each status holds from its first step to the next change (the last one to the end).
            const end = i + 1 < segments.length ? segments[i + 1].fromStep : lastStep;
            const width = Math.max(1.5, ((end - s.fromStep) / span) * 100);
            return h("div", { class: `tl-seg ${statusClass(s.status)}`, style: `width:${width}%`, title: `${s.status}: steps ${s.fromStep}–${end}` });
          }),
        )
      : h("div", { class: "tl-strip tl-empty muted small-text" }, "no evaluations yet"),
    h(
      "ol",
      { class: "tl-changes small-text", "data-testid": `rule-timeline-changes-${rid}` },
      changes.map((c) => h("li", {}, h("span", { class: `tl-dot ${statusClass(c.to)}` }), c.from ? `${c.from} → ${c.to}` : c.to, c.step !== null ? ` at step ${c.step}` : "")),
    ),
    h("div", { class: "tl-axis muted small-text" }, h("span", {}, "step 0"), h("span", {}, `step ${lastStep}`)),
  );
}
