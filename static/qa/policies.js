// policies.js — save the thresholds as a draft gating policy and publish it (REST API + CSRF).

import { ApiClient, ApiError } from "../annotator/api.js";
import { readConfig } from "./common.js";

const cfg = readConfig("qa-policies-config");
const api = new ApiClient({ csrfToken: cfg.csrfToken });
const form = document.getElementById("policy-form");
const out = document.getElementById("policy-result");

function thresholds() {
  const body = {};
  for (const [k, v] of new FormData(form).entries()) body[k] = k === "flagged_cells" ? v : Number(v);
  return body;
}

async function act(fn) {
  try { await fn(); } catch (err) {
    out.className = "qa-msg qa-msg-err";
    out.textContent = err instanceof ApiError ? err.message : `Network error: ${err.message}`;
  }
}

const send = (url, method, body) => api.json(url, { method, body: JSON.stringify(body), headers: { "Content-Type": "application/json" } });

document.getElementById("save-draft").addEventListener("click", () => act(async () => {
  const policy = cfg.draft
    ? await send(`${cfg.urls.policies}${cfg.draft}/`, "PATCH", thresholds())
    : await send(cfg.urls.policies, "POST", thresholds());
  window.location.assign(`${window.location.pathname}?saved=${policy.version}`);
}));

document.getElementById("publish").addEventListener("click", () => act(async () => {
  if (!cfg.draft) return;
  await send(`${cfg.urls.policies}${cfg.draft}/publish/`, "POST", {});
  out.className = "qa-msg qa-msg-ok";
  out.textContent = `Published v${cfg.draft}: every image is gated again under it (a job).`;
  window.setTimeout(() => window.location.assign(window.location.pathname), 800);
}));
document.body.dataset.qaReady = "1";
