// review.js — the QA lead's review page: synced side-by-side viewers (the workspace's
// viewer, imported read-only), a comparison overlay, the per-cell table, and the review
// actions posted to images/<id>/review/ with the session's CSRF token.

import { ApiClient, ApiError } from "../annotator/api.js";
import { LabelMap } from "../annotator/labelmap.js";
import { ImageLayer, MaskLayer, View } from "../annotator/viewer.js";
import { cellRows } from "./cells.js";
import { el, readConfig } from "./common.js";
import { ComparisonLayer, FLAG_COLOURS } from "./overlay.js";

const cfg = readConfig("qa-review-config");
const api = new ApiClient({ csrfToken: cfg.csrfToken });
const $ = (id) => document.getElementById(id);
const root = $("review");
const status = (text, kind = "") => { const s = $("status"); s.textContent = text; s.className = `qa-msg ${kind}`; s.hidden = !text; };

const state = { views: [], overlay: null, layer: null, masks: [], maps: {}, review: null, blinkTimer: null };

function syncFrom(source) {
  // Every viewer shows the same part of the image: zoom scales with the canvas size (the
  // overlay is larger than the side-by-side viewers, so one zoom would crop them).
  const [cx, cy] = source.toImage(...centreClient(source));
  const span = Math.min(source.canvas.width, source.canvas.height);
  for (const v of state.views) {
    if (v !== source) v.centreOn(cx, cy, source.zoom * (Math.min(v.canvas.width, v.canvas.height) / span));
    v.redraw();
  }
}

function centreClient(view) {
  const r = view.canvas.getBoundingClientRect();
  return [r.left + r.width / 2, r.top + r.height / 2];
}

function wireNavigation(view) {
  const c = view.canvas;
  c.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    view.zoomAt(ev.clientX, ev.clientY, Math.exp(-ev.deltaY * 0.0015));
    syncFrom(view);
  }, { passive: false });
  let drag = null;
  c.addEventListener("pointerdown", (ev) => { drag = [ev.clientX, ev.clientY]; c.setPointerCapture(ev.pointerId); });
  c.addEventListener("pointermove", (ev) => {
    if (!drag) return;
    view.tx += (ev.clientX - drag[0]) * view.dpr; view.ty += (ev.clientY - drag[1]) * view.dpr;
    drag = [ev.clientX, ev.clientY];
    syncFrom(view);
  });
  c.addEventListener("pointerup", () => { drag = null; });
}

function addView(canvas, image, mask) {
  const view = new View(canvas, image, mask);
  view.opacity = 0.7;
  state.views.push(view);
  wireNavigation(view);
  return view;
}

function zoomTo(box) {
  if (!box) return;
  const cx = (box.x0 + box.x1 + 1) / 2, cy = (box.y0 + box.y1 + 1) / 2;
  const size = Math.max(box.x1 - box.x0 + 1, box.y1 - box.y0 + 1, 8);
  for (const v of state.views) {
    const zoom = (Math.min(v.canvas.width, v.canvas.height) * 0.5) / size;
    v.centreOn(cx, cy, Math.min(64, zoom));
    v.redraw();
  }
}

function legend() {
  const box = $("legend");
  for (const [kind, [r, g, b]] of Object.entries(FLAG_COLOURS)) {
    const sw = el("span", { class: "qa-swatch" });
    sw.style.background = `rgb(${r}, ${g}, ${b})`;
    box.append(el("span", {}, sw, kind));
  }
  const d = el("span", { class: "qa-swatch" });
  d.style.background = "linear-gradient(90deg, rgb(255,160,51), rgb(255,0,255))";
  box.append(el("span", {}, d, "disagreement (few → most drew it)"));
  for (const sw of document.querySelectorAll("[data-swatch]")) {
    const [r, g, b] = state.layer.colourOf(sw.dataset.swatch);
    sw.style.background = `rgb(${r}, ${g}, ${b})`;
    sw.style.outline = "1px solid #999";
  }
}

function redrawOverlay() { state.layer.render(); state.overlay.redraw(); }

function wireOverlayControls() {
  for (const box of document.querySelectorAll("[data-layer]")) {
    if (box.checked) state.layer.visible.add(box.dataset.layer);
    box.addEventListener("change", () => {
      if (box.checked) state.layer.visible.add(box.dataset.layer); else state.layer.visible.delete(box.dataset.layer);
      redrawOverlay();
    });
  }
  $("show-flags").addEventListener("change", (ev) => { state.layer.showFlags = ev.target.checked; redrawOverlay(); });
  $("show-disagreement").addEventListener("change", (ev) => { state.layer.showDisagreement = ev.target.checked; redrawOverlay(); });
  $("opacity").addEventListener("input", (ev) => { state.overlay.opacity = ev.target.value / 100; state.overlay.redraw(); });
  $("fit").addEventListener("click", () => { state.views.forEach((v) => v.fit()); syncFrom(state.overlay); });
  const [a, b] = [$("blink-a"), $("blink-b")];
  for (const m of state.masks) {
    a.append(el("option", { value: m.key, text: m.name }));
    b.append(el("option", { value: m.key, text: m.name }));
  }
  if (state.masks.length > 1) b.value = state.masks[1].key;
  $("blink").addEventListener("click", (ev) => {
    if (state.blinkTimer) {
      clearInterval(state.blinkTimer); state.blinkTimer = null;
      state.layer.blink = null; ev.target.textContent = "Blink"; $("overlay-label").textContent = "overlay";
      redrawOverlay();
      return;
    }
    let showA = true;
    const tick = () => {
      const key = showA ? a.value : b.value;
      state.layer.blink = key;
      $("overlay-label").textContent = state.masks.find((m) => m.key === key).name;
      redrawOverlay();
      showA = !showA;
    };
    tick();
    state.blinkTimer = setInterval(tick, 600);
    ev.target.textContent = "Stop blinking";
  });
}

function selectedCells() {
  return [...document.querySelectorAll("#cells-table input[type=checkbox]:checked")].map((c) => Number(c.value));
}

function cellTable() {
  const { head, rows } = cellRows(state.review.qa, cfg.annotations);
  const table = $("cells-table");
  table.tHead.append(el("tr", {}, ...head.map((h) => el("th", { text: h }))));
  const body = table.tBodies[0];
  for (const row of rows) {
    const tr = el("tr", { dataset: { key: row.key, id: String(row.id) } });
    const tick = row.key === "consensus" ? el("input", { type: "checkbox", value: row.id, "aria-label": `drop cell ${row.id}` }) : "";
    if (tick) tick.addEventListener("change", () => { $("drop-cells").value = selectedCells().join(", "); });
    tr.append(el("td", {}, tick));
    const kinds = el("td", {});
    for (const k of row.kinds) {
      const chip = el("span", { class: "qa-kind", text: k });
      const [r, g, b] = FLAG_COLOURS[k.split(" ")[0]] || [90, 90, 90];
      chip.style.background = `rgb(${r}, ${g}, ${b})`;
      kinds.append(chip);
    }
    tr.append(el("td", { text: row.label }), kinds, ...row.values.map((v) => el("td", { text: v })));
    tr.addEventListener("click", (ev) => {
      if (ev.target.tagName === "INPUT") return;
      body.querySelectorAll(".qa-selected").forEach((r) => r.classList.remove("qa-selected"));
      tr.classList.add("qa-selected");
      state.layer.selected = { key: row.key, id: row.id };
      redrawOverlay();
      zoomTo(state.maps[row.key].bbox(row.id));
    });
    body.append(tr);
  }
}

function formBody(form) {
  const body = { action: form.dataset.action };
  const data = new FormData(form);
  for (const [k, v] of data.entries()) {
    const text = String(v).trim();
    if (k === "cells") body.cells = text.split(/[\s,;]+/).filter(Boolean).map(Number);
    else if (k === "annotation") body.annotation = Number(text);
    else if (text || k === "reason" || k === "comment") body[k] = text;
  }
  return body;
}

/** The review POST of a form: multipart when it carries a file (a corrected mask), JSON otherwise. */
function requestOf(form) {
  if (form.querySelector("input[type=file]")) {
    const data = new FormData(form);  // the browser sets the multipart boundary
    data.append("action", form.dataset.action);
    return { method: "POST", body: data };
  }
  return { method: "POST", body: JSON.stringify(formBody(form)), headers: { "Content-Type": "application/json" } };
}

function describe(d) {
  const what = d.action.replace(/_/g, " ");
  const mask = d.approved_mask ? ` → approved mask with ${d.approved_mask.n_cells} cells` : "";
  const who = d.annotator ? ` (${d.annotator})` : "";
  return `${what}${who}${mask}`;
}

function wireActions() {
  for (const form of document.querySelectorAll("#actions form")) {
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const result = $("action-result");
      const button = form.querySelector("button");
      button.disabled = true;
      try {
        const decision = await api.json(cfg.urls.review, requestOf(form));
        const after = await api.json(cfg.urls.review);
        $("image-status").textContent = after.status;
        result.replaceChildren(el("p", { class: "qa-msg qa-msg-ok", id: "decision-done", text: `Done: ${describe(decision)}.` }));
        if (cfg.urls.next) result.append(el("a", { class: "btn", href: cfg.urls.next, text: "Next image in the queue →" }));
        const history = $("history");
        history.querySelector(".muted")?.remove();
        history.prepend(el("li", {}, el("strong", { text: decision.action }), ` by ${decision.reviewer}${decision.comment ? `: ${decision.comment}` : ""}`));
        root.dataset.state = "decided";
        form.reset();
      } catch (err) {
        const message = err instanceof ApiError ? err.message : `Network error: ${err.message}`;
        result.replaceChildren(el("p", { class: "qa-msg qa-msg-err", text: message }));
      } finally {
        button.disabled = false;
      }
    });
  }
}

async function start() {
  const labelsOf = (url) => api.rawArray(url).then((raw) => raw.planes[0]);
  const [review, pixels, consensus, ...annotations] = await Promise.all([
    api.json(cfg.urls.review), api.rawArray(cfg.urls.pixels), labelsOf(cfg.urls.consensusLabels),
    ...cfg.annotations.map((a) => labelsOf(a.labels)),
  ]);
  state.review = review;
  const image = new ImageLayer(pixels);
  image.render();
  const { width, height } = pixels;
  state.masks = [
    { key: "consensus", name: "consensus", labels: consensus },
    ...cfg.annotations.map((a, i) => ({ key: String(a.id), name: `${a.annotator} r${a.revision}`, labels: annotations[i] })),
  ];
  state.layer = new ComparisonLayer(width, height, state.masks, review.qa.flags || []);
  state.overlay = addView($("overlay-canvas"), image, state.layer);
  const sides = $("sides");
  for (const m of state.masks) {
    const map = new LabelMap(width, height, m.labels);
    state.maps[m.key] = map;
    const mask = new MaskLayer(map);
    mask.flagged = new Set((review.qa.flags || []).filter((f) => String(f.annotation) === m.key).flatMap((f) => f.labels || []));
    const canvas = el("canvas");
    const stage = el("div", { class: "qa-stage", dataset: { mask: m.key } }, canvas, el("span", { class: "qa-stage-label", text: m.name }));
    sides.append(stage);
    addView(canvas, image, mask);
  }
  if (cfg.urls.modelReferenceLabels) {
    // The reference model's prediction, beside the annotators: never part of the consensus.
    const map = new LabelMap(width, height, await labelsOf(cfg.urls.modelReferenceLabels));
    state.maps.model = map;
    const canvas = el("canvas");
    sides.append(el("div", { class: "qa-stage qa-stage-model", dataset: { mask: "model" } }, canvas,
      el("span", { class: "qa-stage-label", text: `model ${cfg.modelReference.name} (reference)` })));
    addView(canvas, image, new MaskLayer(map));
  }
  legend();
  wireOverlayControls();
  redrawOverlay();
  cellTable();
  window.qaReview = { state, masks: state.masks.map((m) => m.name) };
  // The grid settles only once every viewer is in it: fit each viewer to its final size
  // then (a viewer sized earlier would keep an offset from the smaller canvas it had).
  requestAnimationFrame(() => {
    for (const v of state.views) { v.resize(); v.fit(); }
    syncFrom(state.overlay);
    status("");
    root.dataset.state = "ready";
  });
}

wireActions();
start().catch((err) => {
  status(`Could not load the review: ${err.message}`, "qa-msg-err");
  root.dataset.state = "error";
});
