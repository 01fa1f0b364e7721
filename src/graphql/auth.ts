/** Roles: readers query and subscribe; operators may also start and stop jobs. */
import { TrialgraphError } from "../errors.js";
import type { Context } from "./context.js";

export function requireRole(ctx: Context, role: "operator"): void {
  if (ctx.caller.role !== role) {
    throw new TrialgraphError("FORBIDDEN", `${ctx.caller.name} may not do this: it needs the ${role} role`);
  }
}
