// guidelines.js — publish a draft guideline version (managers) and re-run the re-check of the
// published one (QA leads, managers) through the REST API; the re-check job is polled to its end.

import { ApiClient, ApiError } from "../annotator/api.js";
import { followJob, readConfig } from "../qa/common.js";

const cfg = readConfig("guideline-config");
const api = new ApiClient({ csrfToken: cfg.csrfToken });
const out = document.getElementById("guideline-result");
const post = (url) => api.json(url, { method: "POST", body: "{}", headers: { "Content-Type": "application/json" } });

function say(text, ok = true) {
  out.hidden = false;
  out.className = `qa-msg ${ok ? "qa-msg-ok" : "qa-msg-err"}`;
  out.textContent = text;
}

async function act(button, fn) {
  button.disabled = true;
  try { await fn(); } catch (err) {
    say(err instanceof ApiError ? err.message : `Network error: ${err.message}`, false);
    button.disabled = false;
  }
}

/** Follow a job to its end, showing its progress in the status line. */
const follow = (jobId, what) => followJob(api, cfg.urls.jobs, jobId, (job) => {
  say(`${what}: ${job.status}${job.progress_total ? ` ${job.progress_done}/${job.progress_total}` : ""}`);
});

for (const button of document.querySelectorAll("[data-publish]")) {
  button.addEventListener("click", () => act(button, async () => {
    const n = button.dataset.publish;
    const version = await post(`${cfg.urls.versions}${n}/publish/`);
    const job = version.recheck_job;
    say(`Published v${n}.`);
    if (job) await follow(job, `Re-check of older annotations against v${n}`);
    window.location.assign(`${cfg.urls.page}${n}/#recheck`);
  }));
}

const rerun = document.getElementById("recheck-run");
if (rerun) {
  rerun.addEventListener("click", () => act(rerun, async () => {
    const job = await post(`${cfg.urls.versions}${cfg.version}/rechecks/`);
    await follow(job.id, `Re-check against v${cfg.version}`);
    window.location.assign(`${window.location.pathname}#recheck`);
    window.location.reload();
  }));
}
document.body.dataset.guidelineReady = "1";
