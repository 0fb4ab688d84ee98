// ml.js — the ML engineer's page: snapshots (create, export with progress, download) and
// training runs (start, live progress, loss curves), all through the REST API.

import { ApiClient, ApiError } from "../annotator/api.js";
import uPlot from "../vendor/uplot-1.6.31/uPlot.esm.js";
import { el, readConfig } from "../qa/common.js";

const cfg = readConfig("ml-config");
const api = new ApiClient({ csrfToken: cfg.csrfToken });
const $ = (id) => document.getElementById(id);
const TINY_HYPER = { learning_rate: 0.02, batch_size: 4, tile_size: 64, seed: 1, save_every: 1, warmup_epochs: 0, images_per_epoch: 4 };
const TINY_OPTIONS = { nbase: [8, 16, 32], min_train_masks: 1, diam_mean: 12.0 };
const exports = new Map();   // id -> {snapshot, data}
let selectedRun = null, chart = null;

const list = (data) => (Array.isArray(data) ? data : data.results || []);
function say(text, ok = true) {
  const s = $("ml-status");
  s.hidden = !text; s.textContent = text; s.className = `qa-msg ${ok ? "qa-msg-ok" : "qa-msg-err"}`;
  announced = null;
}

// The export or training run the status line last said was started: when it ends, the
// line says how (instead of "started" long after it finished).
let announced = null;
function sayEnded(kind, id, status, text, error) {
  if (!announced || announced.kind !== kind || announced.id !== id) return;
  if (status === "succeeded") say(text);
  else if (status === "failed" || status === "cancelled") say(`${kind === "export" ? "Export" : "Training run"} ${id} ${status}${error ? `: ${error}` : "."}`, false);
}
const fail = (err) => say(err instanceof ApiError ? err.message : `Network error: ${err.message}`, false);
const post = (url, body) => api.json(url, { method: "POST", body: JSON.stringify(body), headers: { "Content-Type": "application/json" } });

function bar(fraction) {
  const p = el("progress", { max: "1", value: String(fraction ?? 0) });
  return el("span", {}, p, ` ${Math.round((fraction ?? 0) * 100)} %`);
}

async function loadSnapshots() {
  const snaps = list(await api.json(cfg.urls.snapshots));
  const body = $("snapshots").tBodies[0];
  const select = $("run-snapshot");
  body.replaceChildren(); select.replaceChildren();
  for (const s of snaps) {
    const fmt = el("select", { "aria-label": `export format of ${s.name} v${s.version}` }, ...cfg.exportFormats.map((f) => el("option", { text: f })));
    const go = el("button", { class: "btn btn-quiet", type: "button", text: "Export" });
    go.addEventListener("click", () => startExport(s, fmt.value).catch(fail));
    const counts = s.split_counts || {};
    const split = ["train", "val", "test"].map((k) => (counts[k] && typeof counts[k] === "object" ? counts[k].images ?? counts[k].items ?? "?" : counts[k] ?? 0)).join(" / ");
    body.append(el("tr", { dataset: { snapshot: String(s.id) } },
      el("td", {}, el("a", { href: `${cfg.urls.snapshotPage}${s.id}/` }, el("strong", { text: `${s.name} v${s.version}` })), el("br"), el("span", { class: "muted", text: s.content_hash.slice(0, 12) })),
      el("td", { text: String(s.n_items) }), el("td", { text: String(s.n_cells) }), el("td", { text: split }),
      el("td", { text: new Date(s.created_at).toLocaleString() }), el("td", {}, fmt, " ", go)));
    select.append(el("option", { value: String(s.id), text: `${s.name} v${s.version} (${s.n_items} images)` }));
  }
  if (!snaps.length) body.append(el("tr", {}, el("td", { colspan: "6", text: "No snapshot yet: create one from the approved masks." })));
  await loadExports(snaps);
}

/** The exports of the newest snapshots (made on this page or before), unfinished ones followed. */
async function loadExports(snaps) {
  const recent = snaps.slice(0, 20);
  const lists = await Promise.all(recent.map((s) => api.json(`${cfg.urls.snapshots}${s.id}/exports/`).then(list).catch(() => [])));
  recent.forEach((s, i) => {
    for (const d of lists[i]) exports.set(d.id, { url: `${cfg.urls.snapshots}${s.id}/exports/${d.id}/`, snapshot: s, data: d });
  });
  renderExports();
  pollExports();
}

async function startExport(snapshot, format) {
  const url = `${cfg.urls.snapshots}${snapshot.id}/exports/`;
  const data = await post(url, { format });
  exports.set(data.id, { url: `${url}${data.id}/`, snapshot, data });
  say(`Export ${data.id} (${format}) of ${snapshot.name} v${snapshot.version} started.`);
  announced = { kind: "export", id: data.id };
  exportEnded(exports.get(data.id));  // an embedded server may have finished it already
  renderExports();
  pollExports();
}

function exportEnded(e) {
  const d = e.data;
  sayEnded("export", d.id, d.status, `Export ${d.id} (${d.format}) of ${e.snapshot.name} v${e.snapshot.version} is ready: ${d.n_files} files, ${((d.total_bytes || 0) / 1e6).toFixed(2)} MB; download it below.`, d.error);
}

function renderExports() {
  const body = $("exports").tBodies[0];
  body.replaceChildren();
  for (const [id, e] of [...exports].sort((a, b) => b[0] - a[0])) {
    const d = e.data;
    const link = d.download ? el("a", { class: "btn", href: d.download, text: "Download zip", download: "" }) : "";
    const progress = d.status === "succeeded" ? 1 : d.job?.progress;
    body.append(el("tr", { dataset: { export: String(id), status: d.status } },
      el("td", { text: `#${id} · ${e.snapshot.name} v${e.snapshot.version}` }), el("td", { text: d.format }),
      el("td", { text: d.error ? `${d.status}: ${d.error}` : d.status }), el("td", {}, bar(progress)),
      el("td", { text: d.n_files ? `${d.n_files} files, ${(d.total_bytes / 1e6).toFixed(2)} MB` : "—" }), el("td", {}, link)));
  }
  if (!exports.size) body.append(el("tr", {}, el("td", { colspan: "6", text: "No export yet: pick a format next to a snapshot and export it." })));
}

let exportTimer = null;
function pollExports() {
  if (exportTimer) return;
  exportTimer = setInterval(async () => {
    const open = [...exports.values()].filter((e) => !["succeeded", "failed"].includes(e.data.status));
    if (!open.length) { clearInterval(exportTimer); exportTimer = null; return; }
    for (const e of open) {
      e.data = await api.json(e.url).catch(() => e.data);
      exportEnded(e);
    }
    renderExports();
  }, 1000);
}

function lossChart(run) {
  const box = $("loss-chart");
  const train = run.train_loss || [], val = run.val_loss || [];
  const n = Math.max(train.length, val.length);
  const xs = Array.from({ length: n }, (_, i) => i + 1);
  const value = (p) => (p === null || p === undefined ? null : typeof p === "object" ? p.loss ?? p.value ?? null : p);
  const data = [xs, xs.map((_, i) => value(train[i])), xs.map((_, i) => value(val[i]))];
  const title = `${run.name} · run ${run.id} · ${run.status}`;
  if (chart && chart.runId === run.id) { chart.setData(data); chart.root.querySelector(".u-title").textContent = title; return; }
  if (chart) chart.destroy();
  box.replaceChildren();
  chart = new uPlot({
    width: Math.max(300, box.getBoundingClientRect().width - 8), height: 240, title,
    scales: { x: { time: false } },
    series: [{ label: "epoch" }, { label: "train loss", stroke: "#1f6feb", width: 2, points: { size: 5 } },
      { label: "val loss", stroke: "#cf222e", width: 2, points: { size: 5 } }],
    axes: [{ label: "epoch", incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500] }, { label: "loss" }],
  }, data, box);
  chart.runId = run.id;
}

const last = (xs) => { const v = xs && xs.length ? xs[xs.length - 1] : null; return v === null ? "—" : Number(typeof v === "object" ? v.loss ?? v.value : v).toFixed(4); };

async function loadRuns() {
  if (!cfg.urls.runs) return false;
  const runs = list(await api.json(cfg.urls.runs));
  const body = $("runs").tBodies[0];
  body.replaceChildren();
  for (const r of runs) {
    const tr = el("tr", { dataset: { run: String(r.id), status: r.status } },
      el("td", { text: `#${r.id} ${r.name}` }), el("td", { text: `#${r.snapshot}` }),
      el("td", { text: r.error ? `${r.status}: ${r.error}` : `${r.status}${r.phase ? ` (${r.phase})` : ""}` }),
      el("td", {}, bar(r.status === "succeeded" ? 1 : r.progress), ` ${r.epochs_done}/${r.epochs_total}`),
      el("td", { text: last(r.train_loss) }), el("td", { text: last(r.val_loss) }),
      el("td", { text: r.model_version ? `model #${r.model_version}` : "—" }));
    tr.style.cursor = "pointer";
    tr.addEventListener("click", () => { selectedRun = r.id; lossChart(r); });
    body.append(tr);
  }
  if (!runs.length) {
    body.append(el("tr", {}, el("td", { colspan: "7", text: "No training run yet." })));
    $("loss-chart").replaceChildren(el("p", { class: "muted", text: "The loss curves of a run show here, live, once it starts." }));
  }
  for (const r of runs) sayEnded("run", r.id, r.status, `Training run ${r.id} finished${r.model_version ? `: model #${r.model_version} registered` : ""}.`, r.error);
  const shown = runs.find((r) => r.id === selectedRun) || runs[0];
  if (shown) { selectedRun = shown.id; lossChart(shown); }
  return runs.some((r) => r.status === "queued" || r.status === "running");
}

function metricsText(metrics) {
  const flat = [];
  const walk = (prefix, v) => {
    if (v && typeof v === "object" && !Array.isArray(v)) for (const [k, x] of Object.entries(v)) walk(prefix ? `${prefix}.${k}` : k, x);
    else if (typeof v === "number") flat.push(`${prefix} ${Number.isInteger(v) ? v : v.toFixed(3)}`);
  };
  walk("", metrics || {});
  return flat.slice(0, 6).join(", ") || "—";
}

async function loadModels() {
  if (!cfg.urls.models) return;
  const models = list(await api.json(cfg.urls.models));
  const body = $("models").tBodies[0];
  body.replaceChildren();
  for (const m of models) {
    body.append(el("tr", { dataset: { model: String(m.id) } },
      el("td", {}, el("a", { href: `${cfg.urls.modelPage}${m.id}/` }, el("strong", { text: `${m.name} v${m.version}` })), el("span", { class: "muted", text: ` #${m.id}` })),
      el("td", { text: m.backbone }), el("td", { text: `#${m.snapshot}` }), el("td", { text: metricsText(m.metrics) }),
      el("td", { class: "muted", text: (m.weights_sha256 || "").slice(0, 12) }), el("td", { text: new Date(m.created_at).toLocaleString() })));
  }
  if (!models.length) body.append(el("tr", {}, el("td", { colspan: "6", text: "No model yet: a succeeded run registers one." })));
}

let runTimer = null;
function pollRuns() {
  if (runTimer) return;
  runTimer = setInterval(async () => {
    const busy = await loadRuns().catch(() => true);
    if (!busy) { clearInterval(runTimer); runTimer = null; loadModels().catch(fail); }
  }, 1500);
}

function wireForms() {
  $("snapshot-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    try {
      const s = await post(cfg.urls.snapshots, {
        name: f.get("name"), description: f.get("description") || "", group_by: f.get("group_by"),
        include_gold: f.get("include_gold") === "on",
      });
      say(`Snapshot ${s.name} v${s.version}: ${s.n_items} images, ${s.n_cells} cells.`);
      await loadSnapshots();
    } catch (err) { fail(err); }
  });
  $("run-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    const tiny = f.get("tiny") === "on";
    try {
      const run = await post(cfg.urls.runs, {
        name: f.get("name"), snapshot: Number(f.get("snapshot")),
        hyperparameters: { ...(tiny ? TINY_HYPER : {}), epochs: Number(f.get("epochs")) },
        options: tiny ? TINY_OPTIONS : {},
      });
      selectedRun = run.id;
      say(`Training run ${run.id} started.`);
      announced = { kind: "run", id: run.id };
      if (await loadRuns()) pollRuns(); else await loadModels();
    } catch (err) { fail(err); }
  });
  if (!cfg.urls.runs) $("run-form").replaceChildren(el("p", { class: "muted", text: "Training is not installed on this server." }));
}

async function start() {
  wireForms();
  await loadSnapshots();
  if (await loadRuns()) pollRuns();
  await loadModels();
  $("ml").dataset.state = "ready";
}

start().catch((err) => { fail(err); $("ml").dataset.state = "error"; });
