/**
 * HTML built from templates where every interpolated value is escaped unless it is already
 * SafeHtml (made by this same tag). Job names, hyperparameters, tensor names and rule details come
 * from users: the only way to put them in a report is through here.
 */

export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** Escapes text for element content and quoted attribute values alike. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

function part(v: unknown): string {
  if (v == null || v === false) return "";
  if (v instanceof SafeHtml) return v.value;
  if (Array.isArray(v)) return v.map(part).join("");
  return escapeHtml(String(v));
}

/** `html\`<td>${name}</td>\`` escapes `name`; nested html`` results and arrays of them stay as they are. */
export function html(strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += part(values[i]) + strings[i + 1];
  return new SafeHtml(out);
}

/** Markup this module did not build, trusted by the caller (a constant, or generated numbers only). */
export function trusted(markup: string): SafeHtml {
  return new SafeHtml(markup);
}
