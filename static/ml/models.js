// models.js — model actions through the REST API: pre-annotation of images with a model (a
// job, polled with progress) and the active-learning ranking (read with GET; computed by a job
// that "Rank now" / "Rank again" POSTs and follows) with queueing of the chosen images for
// annotation (managers).

import { ApiClient, ApiError } from "../annotator/api.js";
import { el, followJob, readConfig } from "../qa/common.js";

const cfg = readConfig("models-config");
const api = new ApiClient({ csrfToken: cfg.csrfToken });
const $ = (id) => document.getElementById(id);
const post = (url, body) => api.json(url, { method: "POST", body: JSON.stringify(body), headers: { "Content-Type": "application/json" } });
const message = (err) => (err instanceof TypeError ? `Network error: ${err.message}` : err.message);
const ids = (text) => String(text || "").split(/[\s,;]+/).filter(Boolean).map(Number);

/** Show a message in element ``id``: ``ok`` true (success), false (error) or null (neutral). */
function say(id, text, ok = true) { const out = $(id); out.className = ok === null ? "qa-msg" : ok ? "qa-msg qa-msg-ok" : "qa-msg qa-msg-err"; out.textContent = text; }

/** Follow a job to its end, showing progress in the <p> with id ``box``; resolves with the job. */
function follow(jobId, box) {
  const p = $(box);
  p.hidden = false;
  return followJob(api, cfg.urls.jobs, jobId, (job) => {
    p.querySelector("progress").value = job.status === "succeeded" ? 1 : job.progress ?? 0;
    p.querySelector("span").textContent = `${job.status}${job.progress_total ? ` ${job.progress_done}/${job.progress_total}` : ""}`;
  });
}

function wirePredict() {
  const form = $("predict-form");
  if (!form) return;
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    const button = form.querySelector("button");
    const chosen = ids(f.get("images"));
    const filter = {};
    for (const key of ["plate", "batch", "modality", "stain"]) if (String(f.get(key)).trim()) filter[key] = String(f.get(key)).trim();
    button.disabled = true;
    try {
      const job = await follow((await post(cfg.urls.predict, chosen.length ? { images: chosen } : { filter })).id, "predict-progress");
      const r = job.result || {};
      if (job.status !== "succeeded") say("predict-result", `Pre-annotation ${job.status}: ${job.error || job.message}`, false);
      else say("predict-result", `Done: ${r.predicted} of ${r.images} images predicted, ${r.drafts_written} drafts written, ${r.drafts_kept} kept (already edited), ${r.no_open_assignment.length} without an open assignment${r.failed.length ? `, ${r.failed.length} failed` : ""}.`);
      $("predict-result").dataset.drafts = String(r.drafts_written ?? "");
    } catch (err) { say("predict-result", message(err), false); }
    button.disabled = false;
  });
}

function rankingRow(kind, r) {
  const tick = cfg.canQueue ? el("input", { type: "checkbox", value: String(r.image), "aria-label": `queue image ${r.image}` }) : "";
  const label = r.name ? `#${r.image} ${r.name}` : `#${r.image}`;
  const image = kind === "labelled" && cfg.canQueue ? el("a", { href: `${cfg.urls.review}images/${r.image}/`, text: label }) : label;
  const extra = kind === "labelled" ? el("td", { class: "ml-num", text: r.f1_50.toFixed(3) })
    : el("td", { class: "muted", text: Object.entries(r).filter(([k, v]) => !["image", "score", "name"].includes(k) && typeof v === "number").map(([k, v]) => `${k.replace(/_/g, " ")} ${Number.isInteger(v) ? v : v.toFixed(3)}`).join(", ") });
  return el("tr", { dataset: { image: String(r.image) } }, el("td", {}, tick), el("td", {}, image), el("td", { class: "ml-num", text: r.score.toFixed(3) }), extra);
}

/** Show the latest ranking (a GET reads only); resolves false when none has been computed yet. */
async function loadRanking() {
  let body;
  try {
    body = await api.json(`${cfg.urls.ranking}?model=${cfg.model}`);
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 404) throw err;
    say("al-result", "No ranking by this model yet: “Rank now” computes one (the model runs over every candidate image).", null);
    $("al-refresh").textContent = "Rank now";
    $("al").dataset.state = "empty";
    return false;
  }
  for (const kind of ["unlabelled", "labelled"]) {
    const rows = body[kind] || [];
    const tbody = $(`al-${kind}`).tBodies[0];
    tbody.replaceChildren(...rows.map((r) => rankingRow(kind, r)));
    if (!rows.length) tbody.append(el("tr", {}, el("td", { colspan: "4", text: `No ${kind} image.` })));
  }
  const chosen = document.querySelector("#al-model select[name=model] option:checked");
  const name = chosen && Number(chosen.value) === body.model_version ? chosen.textContent : `model #${body.model_version}`;
  say("al-result", `Ranked by ${name} at ${new Date(body.computed_at).toLocaleString()}.`);
  $("al-refresh").textContent = "Rank again";
  $("al").dataset.state = "ready";
  return true;
}

/** Start a ranking job (or join the one already running for this model), follow it, then show it. */
async function rank() {
  const button = $("al-refresh");
  button.disabled = true;
  $("al").dataset.state = "ranking";
  try {
    const job = await follow((await post(cfg.urls.ranking, { model: cfg.model })).id, "al-progress");
    if (job.status !== "succeeded") throw new Error(`ranking ${job.status}: ${job.error || job.message}`);
    await loadRanking();
  } finally { button.disabled = false; }
}

async function queue(body) {
  try {
    const r = await post(cfg.urls.queue, body);
    say("al-result", `Queued ${r.images.length} image${r.images.length === 1 ? "" : "s"}: ${r.raised} assignments moved up, ${r.created} added${r.no_free_annotator.length ? `, ${r.no_free_annotator.length} without a free annotator` : ""}.`);
    $("al-result").dataset.queued = r.images.join(",");
  } catch (err) { say("al-result", message(err), false); }
}

function wireRanking() {
  if (!$("al")) return;
  for (const b of document.querySelectorAll("[data-queue]")) {
    b.addEventListener("click", () => {
      const chosen = [...document.querySelectorAll(`#al-${b.dataset.queue} input:checked`)].map((c) => Number(c.value));
      if (!chosen.length) { say("al-result", "Tick the images to queue first.", false); return; }
      queue({ images: chosen });
    });
  }
  for (const b of document.querySelectorAll("[data-queue-top]")) {
    const kind = b.dataset.queueTop;
    b.addEventListener("click", () => queue({ model: cfg.model, kind, top: Number(document.querySelector(`[data-top=${kind}]`).value) }));
  }
  const failed = (err) => { say("al-result", message(err), false); $("al").dataset.state = "error"; };
  $("al-refresh").addEventListener("click", () => rank().catch(failed));
  loadRanking().catch(failed);
}

wirePredict();
wireRanking();
document.body.dataset.mlReady = "1";
