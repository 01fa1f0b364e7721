import "./styles.css";
import { apiToken, onAuthRequired, onConnectionState, resetConnection, setApiToken } from "./api.js";
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
  // While reconnecting, subscriptions wait to resume where they stopped (after: their last eventId).
  connection.textContent = state === "idle" ? "live: idle" : state === "reconnecting" ? "live: reconnecting…" : `live: ${state}`;
});

const router = startRouter(
  document.getElementById("app")!,
  { jobs: jobsView, job: jobView, trial: trialView, compare: compareView },
  (root) => {
    clear(root, h("h1", {}, "Not found"), h("p", {}, "No such page. ", h("a", { href: "#/jobs" }, "Go to jobs")));
    return { destroy: () => undefined };
  },
);

// ---- API token: one prompt when the service wants one, a dialog to enter it, then everything again.

const tokenButton = document.querySelector<HTMLButtonElement>("[data-testid=token-button]");
const labelTokenButton = () => {
  if (tokenButton) tokenButton.textContent = apiToken() ? "API token ✓" : "API token";
};
labelTokenButton();

const tokenInput = h("input", { type: "password", id: "token-input", autocomplete: "off", spellcheck: "false", "data-testid": "token-input" });
const tokenProblem = h("p", { class: "token-problem", "data-testid": "token-problem", hidden: true });
const tokenDialog = h(
  "dialog",
  { class: "dialog", "data-testid": "token-dialog", "aria-labelledby": "token-title" },
  h(
    "form",
    {
      method: "dialog",
      onsubmit: (e: Event) => {
        e.preventDefault();
        applyToken(tokenInput.value.trim() || null);
      },
    },
    h("h2", { id: "token-title" }, "API token"),
    tokenProblem,
    h("label", { class: "field", for: "token-input" }, h("span", {}, "Bearer token for this service (TRIALGRAPH_API_TOKENS). Kept in this browser's localStorage."), tokenInput),
    h(
      "div",
      { class: "dialog-actions" },
      h("button", { type: "button", "data-testid": "token-clear", onclick: () => applyToken(null) }, "Clear token"),
      h("span", { class: "spacer" }),
      h("button", { type: "button", onclick: () => tokenDialog.close() }, "Cancel"),
      h("button", { type: "submit", class: "primary", "data-testid": "token-save" }, "Save and reconnect"),
    ),
  ),
);
document.body.appendChild(tokenDialog);

function openTokenDialog(): void {
  tokenInput.value = apiToken() ?? "";
  tokenProblem.hidden = !authPrompt.isConnected;
  tokenProblem.textContent = lastAuthMessage ? `The service said: ${lastAuthMessage}` : "";
  if (!tokenDialog.open) tokenDialog.showModal();
  tokenInput.focus();
}

// The one prompt, above the page, however many requests were refused.
let lastAuthMessage = "";
const authMessage = h("span", { "data-testid": "auth-prompt-message" });
const authPrompt = h(
  "div",
  { class: "auth-prompt", role: "alert", "data-testid": "auth-prompt" },
  h("strong", {}, "This service needs an API token. "),
  authMessage,
  h("button", { type: "button", class: "primary small", "data-testid": "auth-prompt-open", onclick: () => openTokenDialog() }, "Enter API token"),
);

onAuthRequired((message) => {
  lastAuthMessage = message;
  authMessage.textContent = apiToken() ? "The saved token was not accepted. " : "Queries and live updates are refused until you enter one. ";
  if (!authPrompt.isConnected) document.querySelector(".topbar")?.after(authPrompt);
  tokenButton?.classList.add("attention");
});

function applyToken(token: string | null): void {
  setApiToken(token);
  labelTokenButton();
  if (tokenDialog.open) tokenDialog.close();
  authPrompt.remove();
  tokenButton?.classList.remove("attention");
  // Queries send the token from now on; the socket sends it when it connects: start the view over on a new one.
  router.restart(() => resetConnection());
}

tokenButton?.addEventListener("click", () => openTokenDialog());
