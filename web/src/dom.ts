// A tiny DOM builder and the shared widgets (badges, error boxes, progress bars).
import { GraphQLRequestError, isAuthError } from "./api.js";

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: (Child | Child[])[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value == null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = String(value);
    // CSSOM, not a style attribute, so a strict Content-Security-Policy (no 'unsafe-inline') allows it.
    else if (key === "style") el.style.cssText = String(value);
    else if (key === "value" && "value" in el) (el as HTMLInputElement).value = String(value);
    else if (key === "checked" && "checked" in el) (el as HTMLInputElement).checked = Boolean(value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el: Node, children: (Child | Child[])[]): void {
  for (const c of children) {
    if (Array.isArray(c)) append(el, c);
    else if (c == null || c === false) continue;
    else el.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
  }
}

export function clear(el: Element, ...children: (Child | Child[])[]): void {
  el.replaceChildren();
  append(el, children);
}

/** A status badge; its data-status is the raw enum value so tests and CSS can match on it. */
export function badge(status: string | null | undefined, testid?: string, title?: string): HTMLSpanElement {
  const value = status ?? "UNKNOWN";
  return h("span", { class: `badge badge-${value.toLowerCase().replace(/_/g, "-")}`, "data-status": value, "data-testid": testid, title: title ?? undefined }, value.replace(/_/g, " "));
}

/** Renders an error as message + extensions.code for each GraphQL error. */
export function errorBox(err: unknown, testid = "error"): HTMLElement {
  // A missing token is asked for once, at the top of the page (main.ts); panels just wait.
  if (isAuthError(err)) return h("p", { class: "muted auth-wait", "data-testid": `${testid}-auth` }, "Waiting for an API token.");
  const errors =
    err instanceof GraphQLRequestError
      ? err.errors
      : [{ message: err instanceof Error ? err.message : String(err), extensions: { code: "CLIENT_ERROR" } }];
  return h(
    "div",
    { class: "error-box", role: "alert", "data-testid": testid },
    errors.map((e) =>
      h("div", { class: "error-line" }, e.extensions?.code ? h("code", { class: "error-code", "data-testid": "error-code" }, String(e.extensions.code)) : null, " ", h("span", { "data-testid": "error-message" }, e.message)),
    ),
  );
}

/** Global, dismissible error toasts (for events that don't belong to a panel). */
export function showGlobalError(err: unknown): void {
  const host = document.getElementById("errors");
  if (!host || isAuthError(err)) return;
  const box = errorBox(err, "global-error");
  const close = h("button", { class: "link-button", "aria-label": "Dismiss error", onclick: () => box.remove() }, "×");
  box.prepend(close);
  host.appendChild(box);
  while (host.children.length > 4) host.firstElementChild?.remove();
}

export function progressBar(current: number | null | undefined, total: number | null | undefined, testid?: string): HTMLElement {
  if (current == null) return h("span", { class: "muted", "data-testid": testid }, "—");
  const pct = total ? Math.min(100, Math.round((current / total) * 100)) : null;
  return h(
    "div",
    { class: "progress", "data-testid": testid, role: "progressbar", "aria-valuemin": 0, "aria-valuemax": total ?? undefined, "aria-valuenow": current, "aria-label": "Training progress" },
    h("div", { class: "progress-fill", style: `width:${pct ?? 100}%` }), // set through CSSOM by h()
    h("span", { class: "progress-label" }, total ? `${current} / ${total}` : `${current}`),
  );
}

export function formatTime(iso: string | null | undefined): string {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

export function duration(fromIso: string | null | undefined, toIso: string | null | undefined): string {
  if (!fromIso) return "—";
  const ms = (toIso ? new Date(toIso).getTime() : Date.now()) - new Date(fromIso).getTime();
  if (!Number.isFinite(ms) || ms < 0) return "—";
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m ${s % 60}s`;
}

/** One number format for the dashboard and the job report. */
export { formatNumber } from "../../src/report/plot-style.js";

/** Turn any string into a token usable inside a data-testid. */
export function testidPart(s: string): string {
  return s.replace(/[^A-Za-z0-9_.-]+/g, "_");
}

/**
 * Asks before doing something that cannot be undone; resolves true when confirmed. A modal
 * <dialog> (focus stays inside, Escape cancels), removed again when answered.
 */
export function confirmDialog(opts: { title: string; message: string; confirm: string; danger?: boolean; testid?: string }): Promise<boolean> {
  return new Promise((resolve) => {
    const dialog = h("dialog", { class: "dialog", "data-testid": opts.testid ?? "confirm-dialog", "aria-labelledby": "confirm-title" });
    const answer = (yes: boolean) => {
      dialog.close();
      dialog.remove();
      resolve(yes);
    };
    clear(
      dialog,
      h("h2", { id: "confirm-title" }, opts.title),
      h("p", {}, opts.message),
      h(
        "div",
        { class: "dialog-actions" },
        h("button", { type: "button", "data-testid": "confirm-cancel", onclick: () => answer(false) }, "Cancel"),
        h("button", { type: "button", class: opts.danger ? "danger-solid" : "primary", "data-testid": "confirm-ok", onclick: () => answer(true) }, opts.confirm),
      ),
    );
    dialog.addEventListener("cancel", (e) => {
      e.preventDefault();
      answer(false);
    });
    document.body.appendChild(dialog);
    dialog.showModal();
    dialog.querySelector<HTMLButtonElement>("[data-testid=confirm-cancel]")?.focus();
  });
}
