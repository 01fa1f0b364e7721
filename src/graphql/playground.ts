/** An offline GraphiQL page (no CDN): the whole app is inlined, built once and cached. */
import { renderGraphiQL } from "@graphql-yoga/render-graphiql";

let page: string | null = null;

export function playgroundHtml(): string {
  page ??= renderGraphiQL({
    endpoint: "/graphql",
    subscriptionsProtocol: "WS",
    title: "trialgraph playground",
    defaultQuery: `# The example trial: metrics as plot-ready series
query Example {
  trial(path: "trials/example") {
    steps
    collection(name: "metrics") {
      tensors { name series(maxPoints: 100) { steps values } }
    }
  }
}
`,
  } as any);
  return page;
}
