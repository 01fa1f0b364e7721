import "./styles.css";
import { apiToken, onConnectionState, setApiToken } from "./api.js";
import { h, clear } from "./dom.js";
import { startRouter } from "./router.js";
import { compareView } from "./views/compare.js";
import { jobView } from "./views/job.js";
import { jobsView } from "./views/jobs.js";
import { trialView } from "./views/trial.js";

const connection = document.querySelector<HTMLElement>("[data-testid=ws-status]");
onConnectionState((state) => {
  if (!connection) return;
  connection.dataset.state = state;
  connection.textContent = state === "idle" ? "live: idle" : `live: ${state}`;
});

const tokenButton = document.querySelector<HTMLButtonElement>("[data-testid=token-button]");
if (tokenButton) {
  const label = () => (tokenButton.textContent = apiToken() ? "API token ✓" : "API token");
  label();
  tokenButton.addEventListener("click", () => {
    const next = window.prompt("Bearer token for this service (empty to clear). Kept in this browser's localStorage.", apiToken() ?? "");
    if (next === null) return;
    setApiToken(next.trim() || null);
    // The WebSocket sends its token when it connects: start over with the new one.
    location.reload();
  });
}

startRouter(
  document.getElementById("app")!,
  { jobs: jobsView, job: jobView, trial: trialView, compare: compareView },
  (root) => {
    clear(root, h("h1", {}, "Not found"), h("p", {}, "No such page. ", h("a", { href: "#/jobs" }, "Go to jobs")));
    return { destroy: () => undefined };
  },
);
