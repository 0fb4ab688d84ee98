// manage.js — the manager's page: drag-and-drop upload of many images with per-file progress
// and result, assignment generation (a job, followed) and QA settings, through the REST API
// (CSRF header). The progress section is swapped in fresh from the server after each.

import { ApiClient, ApiError } from "../annotator/api.js";
import { el, followJob, readConfig } from "../qa/common.js";

const cfg = readConfig("manage-config");
const api = new ApiClient({ csrfToken: cfg.csrfToken });
const $ = (id) => document.getElementById(id);
const PARALLEL = Math.max(1, Number(cfg.uploadParallel) || 2);
const RETRIES = 4;   // a busy server (503, e.g. SQLite locked) or throttling (429) is retried

function sizeText(n) { return n > 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${Math.max(1, Math.round(n / 1e3))} kB`; }

function errorText(body, status) {
  if (Array.isArray(body) && body[0]?.error) return body[0].error;
  if (body && typeof body === "object") {
    if (typeof body.detail === "string") return body.detail;
    return Object.entries(body).map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(" ") : typeof v === "string" ? v : JSON.stringify(v)}`).join("; ");
  }
  return `HTTP ${status}`;
}

/** Upload one file with XHR (fetch has no upload progress); resolves with the file's result. */
async function uploadOne(file, row) {
  for (let attempt = 1; ; attempt++) {
    const wait = await uploadAttempt(file, row);
    if (wait === null || attempt >= RETRIES) return;
    row.result.textContent = `server busy, retrying in ${wait} s…`;
    await new Promise((r) => setTimeout(r, wait * 1000));
  }
}

/** One try; resolves with null when done, or the seconds to wait before trying again. */
function uploadAttempt(file, row) {
  return new Promise((resolve) => {
    const form = new FormData();
    form.append("file", file, file.name);
    for (const [k, v] of new FormData($("upload-meta")).entries()) if (String(v).trim()) form.append(k, String(v).trim());
    const xhr = new XMLHttpRequest();
    xhr.open("POST", cfg.urls.images);
    xhr.setRequestHeader("X-CSRFToken", cfg.csrfToken);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (ev) => { if (ev.lengthComputable) row.progress.value = ev.loaded / ev.total; });
    xhr.addEventListener("load", () => {
      if (xhr.status === 503 || xhr.status === 429) {
        resolve(Math.min(10, Number(xhr.getResponseHeader("Retry-After")) || 1));
        return;
      }
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { body = null; }
      const entry = Array.isArray(body) ? body[0] : null;
      row.progress.value = 1;
      if (entry && entry.image) {
        const what = entry.created ? "added" : "already in the project";
        row.result.className = "mg-ok";
        row.result.textContent = `${what}: image #${entry.image.id}, ${entry.image.width}×${entry.image.height}, ${entry.image.channels} ch ${entry.image.dtype}`;
        row.tr.dataset.result = entry.created ? "created" : "existing";
      } else {
        row.result.className = "mg-err";
        row.result.textContent = errorText(body, xhr.status);
        row.tr.dataset.result = "error";
      }
      resolve(null);
    });
    xhr.addEventListener("error", () => { row.result.className = "mg-err"; row.result.textContent = "network error"; row.tr.dataset.result = "error"; resolve(null); });
    xhr.send(form);
  });
}

/** Swap in the progress section as the server renders it now (images, states, assignments). */
async function refreshProgress() {
  try {
    const response = await fetch(cfg.urls.page, { credentials: "same-origin", headers: { Accept: "text/html" } });
    if (!response.ok) return;
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html").getElementById("progress");
    if (fresh) $("progress").replaceWith(document.importNode(fresh, true));
  } catch { /* the numbers stay as they were; the next action refreshes them */ }
}

async function uploadAll(files) {
  const body = $("uploads").tBodies[0];
  const rows = [...files].map((file) => {
    const progress = el("progress", { max: "1", value: "0" });
    const result = el("span", { class: "muted", text: "waiting" });
    const tr = el("tr", { dataset: { file: file.name } }, el("td", { text: file.name }), el("td", { text: sizeText(file.size) }), el("td", {}, progress), el("td", {}, result));
    body.prepend(tr);
    return { file, tr, progress, result };
  });
  let next = 0;
  const worker = async () => { while (next < rows.length) { const r = rows[next++]; r.result.textContent = "uploading…"; await uploadOne(r.file, r); } };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, rows.length) }, worker));
  await refreshProgress();
}

function wireDrop() {
  const zone = $("dropzone");
  for (const type of ["dragenter", "dragover"]) zone.addEventListener(type, (ev) => { ev.preventDefault(); zone.classList.add("mg-over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("mg-over"));
  zone.addEventListener("drop", (ev) => {
    ev.preventDefault();
    zone.classList.remove("mg-over");
    if (ev.dataTransfer?.files?.length) uploadAll(ev.dataTransfer.files);
  });
  $("file-input").addEventListener("change", (ev) => { if (ev.target.files.length) uploadAll(ev.target.files); ev.target.value = ""; });
  zone.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); $("file-input").click(); } });
}

const send = (url, method, body) => api.json(url, { method, body: body === undefined ? undefined : JSON.stringify(body), headers: { "Content-Type": "application/json", Accept: "application/json" } });

function say(id, text, ok) { const out = $(id); out.className = ok ? "mg-ok" : "mg-err"; out.textContent = text; }

/** Members: change a role (PATCH), remove (DELETE), add by username (POST); the table is the page's. */
function wireMembers() {
  const memberUrl = (tr) => `${cfg.urls.members}${tr.dataset.member}/`;
  $("members").addEventListener("change", async (ev) => {
    const tr = ev.target.closest("tr[data-member]");
    if (!tr || !ev.target.matches("[data-role]")) return;
    try {
      const m = await send(memberUrl(tr), "PATCH", { role: ev.target.value });
      say("member-result", `${m.username} is now ${m.role}.`, true);
    } catch (err) { say("member-result", err.message, false); }
  });
  $("members").addEventListener("click", async (ev) => {
    const tr = ev.target.closest("tr[data-member]");
    if (!tr || !ev.target.matches("[data-remove]")) return;
    try {
      await api.request(memberUrl(tr), { method: "DELETE" });
      say("member-result", `${tr.dataset.username} removed.`, true);
      tr.remove();
    } catch (err) { say("member-result", err.message, false); }
  });
  $("member-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    try {
      const m = await send(cfg.urls.members, "POST", { username: String(f.get("username")).trim(), role: f.get("role") });
      say("member-result", `${m.username} added as ${m.role}.`, true);
      window.setTimeout(() => window.location.reload(), 300);
    } catch (err) { say("member-result", err.message, false); }
  });
}

function wireForms() {
  $("generate").addEventListener("click", async () => {
    const out = $("generate-result");
    out.textContent = "Generating…";
    const button = $("generate");
    button.disabled = true;
    try {
      const started = await api.json(cfg.urls.generate, { method: "POST", body: "{}", headers: { "Content-Type": "application/json" } });
      // A worker runs it: follow the job until it ends, with its progress.
      const job = await followJob(api, cfg.urls.jobs, started.id, (j) => {
        if (j.status === "succeeded" || j.status === "failed") return;
        const pct = j.progress == null ? "" : ` ${Math.round(j.progress * 100)} %`;
        out.textContent = `Job ${j.id}: ${j.status}${pct}${j.message ? ` (${j.message})` : ""}…`;
      });
      const r = job.result || {};
      out.className = job.status === "succeeded" ? "mg-ok" : "mg-err";
      out.textContent = job.status === "succeeded"
        ? `Done: ${Object.entries(r).map(([k, v]) => `${k.replace(/_/g, " ")} ${typeof v === "object" ? JSON.stringify(v) : v}`).join(", ") || "nothing to do"}.`
        : `Job ${job.id} ${job.status}: ${job.error || job.message}`;
      await refreshProgress();
    } catch (err) { out.className = "mg-err"; out.textContent = err.message; } finally { button.disabled = false; }
  });
  let kMin = Number($("settings-form").elements.annotators_per_image.value);
  $("settings-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const out = $("settings-result");
    const bodies = { project: {}, settings: {} };
    for (const input of ev.target.querySelectorAll("[data-api]")) bodies[input.dataset.api][input.name] = input.value === "" ? null : Number(input.value);
    // QA settings check k max against the stored k min: raise k min after k max, lower it before.
    const order = bodies.project.annotators_per_image > kMin ? ["settings", "project"] : ["project", "settings"];
    try {
      for (const which of order) await send(cfg.urls[which], "PATCH", bodies[which]);
      kMin = bodies.project.annotators_per_image;
      out.className = "mg-ok"; out.textContent = "Saved.";
    } catch (err) { out.className = "mg-err"; out.textContent = err.message; }
  });
  wireMembers();
}

wireDrop();
wireForms();
$("manage").dataset.state = "ready";
