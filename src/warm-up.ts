/**
 * The start-up warm-up. A fresh process runs its first request in V8's interpreter: the query
 * pipeline (Apollo, the compiled-query executor, resolvers, DataLoaders), the trial reader and the
 * response serializer are compiled while that request waits, and the heap left by loading the
 * modules is marked by its first full collection in the middle of it. Before the service takes
 * requests it answers one representative query (the example trial's series) the way a client's is
 * answered, then collects the heap once. Both are part of the start, logged with their time; a
 * warm-up that fails (no example trial) is logged and the start goes on.
 */
import v8 from "node:v8";
import vm from "node:vm";
import { HeaderMap, type ApolloServer } from "@apollo/server";
import type { Logger } from "pino";
import type { Context } from "./graphql/context.js";
import { EXAMPLE_TRIAL_PATH } from "./trials/example-trial.js";

/** Every tensor of the example trial as series but its hyperparameters (saved once, one is a string). */
const WARM_UP_QUERY = `query StartupWarmUp { trial(path: ${JSON.stringify(EXAMPLE_TRIAL_PATH)}) { tensors(regex: "^(?!hyperparameters/)") { name series { steps values } } } }`;

export async function warmUp(apollo: ApolloServer<Context>, context: () => Context, log: Logger): Promise<void> {
  const started = performance.now();
  let error: string | null = null;
  const ctx = context();
  try {
    const headers = new HeaderMap([["content-type", "application/json"]]);
    const response = await apollo.executeHTTPGraphQLRequest({
      httpGraphQLRequest: { method: "POST", headers, search: "", body: { query: WARM_UP_QUERY } },
      context: async () => ctx,
    });
    if (response.body.kind !== "complete") error = "unexpected streamed answer";
    else if (response.status !== undefined && response.status !== 200) error = `status ${response.status}: ${response.body.string.slice(0, 200)}`;
    else {
      const answer = JSON.parse(response.body.string) as { data?: { trial?: { tensors?: unknown[] } | null }; errors?: { message: string }[] };
      if (answer.errors?.length) error = answer.errors[0].message;
      else if (!answer.data?.trial?.tensors?.length) error = `no tensors at ${EXAMPLE_TRIAL_PATH}`;
    }
  } catch (e) {
    error = (e as Error).message;
  } finally {
    ctx.budget.release();
  }
  const answered = performance.now();
  collectGarbage();
  const fields = { query: WARM_UP_QUERY, answerMs: Math.round(answered - started), gcMs: Math.round(performance.now() - answered) };
  if (error) log.warn({ ...fields, error }, "start-up warm-up query failed (the service runs, its first request is slower)");
  else log.info(fields, "start-up warm-up: answered a query on the example trial and collected the heap");
}

/** A full collection. `gc` is only given to contexts made while --expose-gc is on; it is set just for that. */
function collectGarbage(): void {
  try {
    v8.setFlagsFromString("--expose-gc");
    const gc = vm.runInNewContext("gc") as () => void;
    v8.setFlagsFromString("--no-expose-gc");
    gc();
  } catch {
    // Only moves work out of the first request.
  }
}
