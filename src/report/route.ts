/**
 * GET /jobs/<name>/report.html: the job report, rendered from one GraphQL query executed in
 * process through the public schema with the caller's own context (same token, role and rate
 * limit as /graphql), so it shows exactly what the caller could query. `?download=1` makes it an
 * attachment. The page loads nothing: its CSP allows only its own inline stylesheet.
 */
import type { Request, RequestHandler, Response } from "express";
import { GraphQLError, execute, parse, type GraphQLSchema } from "graphql";
import type { Logger } from "pino";
import { TrialgraphError } from "../errors.js";
import type { Context } from "../graphql/context.js";
import { formatError, isExpectedError, logUnexpected, withRequestId } from "../graphql/errors.js";
import {
  JOB_REPORT_QUERY, REPORT_POINTS, deepLearningReportQuery,
  type JobReportData, type ReportDeepLearning, type ReportJob, type ReportLayer, type ReportLoss,
} from "./query.js";
import { isDeepLearningTrial, trainingModes, type TrainingMode } from "./trial-shape.js";
import { REPORT_STYLE_HASH, renderJobReport } from "./render.js";

export const REPORT_CSP = `default-src 'none'; style-src '${REPORT_STYLE_HASH}'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;

const STATUS: Record<string, number> = { UNAUTHENTICATED: 401, FORBIDDEN: 403, RATE_LIMITED: 429, NOT_FOUND: 404, BAD_USER_INPUT: 400, LIMIT_EXCEEDED: 400 };

const document = parse(JOB_REPORT_QUERY);
/** The deep-learning query by the trial's modes (a handful of documents at most). */
const deepLearningDocuments = new Map<string, ReturnType<typeof parse>>();

type RawLoss = { name: string } & Record<string, ReportLoss["byMode"][number]["series"] | string>;
interface RawDeepLearning {
  trainingJob: { trial: { losses: RawLoss[]; weights: ReportLayer[]; gradients: ReportLayer[] } | null } | null;
}

export interface JobReportRouteOptions {
  schema: GraphQLSchema;
  /** The request's context, built as for /graphql; throws when the caller may not ask. */
  context: (req: Request) => Context;
  log: Logger;
}

/** A file name that is safe in Content-Disposition whatever the job is called. */
export function reportFileName(jobName: string): string {
  return `${jobName.replace(/[^A-Za-z0-9._-]+/g, "_").slice(0, 120) || "job"}-report.html`;
}

/** The deep-learning query's answer as the report's data: each loss's series by mode (aliased by mode). */
function toDeepLearning(data: RawDeepLearning | null | undefined, modes: readonly TrainingMode[], mode: TrainingMode | null): ReportDeepLearning | null {
  const t = data?.trainingJob?.trial;
  if (!t) return null;
  const aliases = modes.length ? modes.map((m) => [m, m.toLowerCase()] as const) : ([["GLOBAL", "global"]] as const);
  return {
    mode,
    losses: t.losses.map((l) => ({
      name: l.name,
      byMode: aliases.map(([m, alias]) => ({ mode: m, series: l[alias] as ReportLoss["byMode"][number]["series"] })).filter((x) => x.series && x.series.steps.length > 0),
    })),
    weights: t.weights,
    gradients: t.gradients,
  };
}

function sendError(res: Response, code: string, message: string, extra: Record<string, unknown> = {}): void {
  res.status(STATUS[code] ?? 500).json({ errors: [{ message, extensions: { code, ...extra } }] });
}

export function jobReportHandler(opts: JobReportRouteOptions): RequestHandler {
  const format = formatError();
  return async (req, res) => {
    const name = String(req.params.name ?? "");
    let contextValue: Context;
    try {
      contextValue = opts.context(req);
    } catch (e) {
      if (e instanceof TrialgraphError) return sendError(res, e.code, e.message);
      if (e instanceof GraphQLError) {
        const { http: _http, code, ...rest } = e.extensions as Record<string, unknown>;
        return sendError(res, String(code ?? "BAD_REQUEST"), e.message, rest);
      }
      throw e;
    }
    let result;
    let dl: Awaited<ReturnType<typeof execute>> | undefined;
    let mode: TrainingMode | null = null;
    let modes: TrainingMode[] = [];
    try {
      result = await execute({ schema: opts.schema, document, contextValue, variableValues: { name, max: REPORT_POINTS } });
      // A deep-learning trial: losses and per-layer statistics, in a query of their own (its failure costs only that part).
      const trial = (result.data as { trainingJob: ReportJob | null } | null | undefined)?.trainingJob?.trial;
      if (trial && isDeepLearningTrial(trial)) {
        modes = trainingModes(trial);
        const key = modes.join(",");
        let dlDocument = deepLearningDocuments.get(key);
        if (!dlDocument) deepLearningDocuments.set(key, (dlDocument = parse(deepLearningReportQuery(modes))));
        mode = modes.includes("TRAIN") ? "TRAIN" : modes[0] ?? null;
        dl = await execute({ schema: opts.schema, document: dlDocument, contextValue, variableValues: { name, max: REPORT_POINTS, mode } });
      }
    } finally {
      contextValue.budget.release();
    }
    const failures = [...(result.errors ?? []), ...(dl?.errors ?? [])];
    for (const e of failures) if (!isExpectedError(e)) logUnexpected(opts.log, contextValue.requestId, e);
    const errors = withRequestId(failures.map((e) => format(e.toJSON(), e)), contextValue.requestId);
    const job = (result.data as { trainingJob: ReportJob | null } | null | undefined)?.trainingJob ?? null;
    if (!job) {
      const first = errors[0];
      if (first) return sendError(res, String(first.extensions?.code ?? "INTERNAL_SERVER_ERROR"), first.message);
      return sendError(res, "NOT_FOUND", `no training job named ${name}`, { field: "name" });
    }
    const deepLearning = dl ? toDeepLearning(dl.data as RawDeepLearning | null | undefined, modes, mode) : null;
    // A part that failed (e.g. the trial's storage) is reported in the page; the rest still renders.
    const data: JobReportData = {
      job,
      deepLearning,
      generatedAt: new Date(),
      problems: errors.map((e) => ({ path: (e.path ?? []).join("."), message: e.message, code: String(e.extensions?.code ?? "ERROR") })),
    };
    const body = renderJobReport(data);
    const disposition = req.query.download !== undefined && req.query.download !== "0" ? "attachment" : "inline";
    res
      .status(200)
      .set({
        "Content-Type": "text/html; charset=utf-8",
        "Content-Security-Policy": REPORT_CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "Content-Disposition": `${disposition}; filename="${reportFileName(job.name)}"`,
      })
      .send(body);
  };
}
