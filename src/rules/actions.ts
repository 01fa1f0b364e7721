/**
 * Rule actions (spec §8.1, smdebug's action_json): stop the training job, and, instead of SNS
 * email/SMS, a webhook POST of the rule summary. Delivery never blocks rule evaluation.
 */
import type { RuleAction } from "./types.js";
import { paramError } from "./params.js";

/**
 * Parses action_json: a JSON object or a list of them. smdebug lower-cases the whole string; here
 * only keys and action names are compared case-insensitively, so URLs and job-name prefixes keep
 * their case. Unknown action names are ignored, as smdebug does.
 */
export function parseActionJson(rule: string, text: string): RuleAction[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw paramError(rule, "action_json", `is not valid JSON: ${(e as Error).message}`);
  }
  const items = Array.isArray(parsed) ? parsed : [parsed];
  const out: RuleAction[] = [];
  for (const item of items) {
    if (!item || typeof item !== "object" || Array.isArray(item)) {
      throw paramError(rule, "action_json", "must be an object or a list of objects");
    }
    const o: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(item)) o[k.toLowerCase()] = v;
    const str = (k: string): string | null => (typeof o[k] === "string" && (o[k] as string).trim() ? (o[k] as string).trim() : null);
    const name = str("name")?.toLowerCase();
    if (!name) throw paramError(rule, "action_json", 'has an action without a "name"');
    if (name === "stoptraining") {
      out.push({ kind: "stoptraining", prefix: str("training_job_prefix") });
    } else if (name === "email" || name === "sms" || name === "webhook") {
      const url = str("url") ?? str("webhook_url");
      if (url && !/^https?:\/\//i.test(url)) throw paramError(rule, "action_json", `has a webhook url that is not http(s): ${url}`);
      out.push({ kind: "notify", channel: name, endpoint: str("endpoint"), url });
    }
  }
  return out;
}

export interface WebhookOptions {
  /** Per attempt. */
  timeoutMs?: number;
  /** Attempts after the first. */
  retries?: number;
  /** Base delay between attempts (doubles each time). */
  backoffMs?: number;
}

export interface WebhookOutcome {
  url: string;
  ok: boolean;
  attempts: number;
  status: number | null;
  error: string | null;
}

/** POSTs JSON; retries network errors, timeouts, 429 and 5xx. Never throws. */
export async function postWebhook(url: string, body: unknown, opts: WebhookOptions = {}): Promise<WebhookOutcome> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const retries = opts.retries ?? 3;
  const backoffMs = opts.backoffMs ?? 500;
  const payload = JSON.stringify(body);
  let attempts = 0;
  let status: number | null = null;
  let error: string | null = null;
  for (let i = 0; i <= retries; i++) {
    attempts++;
    try {
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", "user-agent": "trialgraph-rules" },
        body: payload,
        signal: AbortSignal.timeout(timeoutMs),
      });
      status = res.status;
      await res.arrayBuffer().catch(() => undefined);
      if (res.ok) return { url, ok: true, attempts, status, error: null };
      error = `HTTP ${res.status}`;
      if (res.status !== 429 && res.status < 500) break; // the receiver rejected it: retrying will not help
    } catch (e) {
      error = (e as Error).name === "TimeoutError" ? `timed out after ${timeoutMs} ms` : (e as Error).message;
    }
    if (i < retries) await new Promise((r) => setTimeout(r, backoffMs * 2 ** i).unref?.());
  }
  return { url, ok: false, attempts, status, error };
}
