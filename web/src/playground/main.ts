// The GraphiQL playground served at GET /graphql: built from `graphiql` by the same Vite build as the
// dashboard (a second page), so it is offline, content-hashed, precompressed and needs no inline script.
import "graphiql/setup-workers/vite";
import "@graphiql/react/style.css";
import "graphiql/graphiql.css";
import "./playground.css";
import { createElement } from "react";
import { createRoot } from "react-dom/client";
import { GraphiQL } from "graphiql";
import { fetcher } from "./fetcher";

const DEFAULT_QUERY = `# The example trial: metrics as plot-ready series
query Example {
  trial(path: "trials/example") {
    steps
    collection(name: "metrics") {
      tensors { name series(maxPoints: 100) { steps values } }
    }
  }
}
`;

createRoot(document.getElementById("graphiql")!).render(createElement(GraphiQL, { fetcher, defaultQuery: DEFAULT_QUERY }));
