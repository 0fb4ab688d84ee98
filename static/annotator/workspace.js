// workspace.js — mounts the annotator's workspace: reads its configuration from the
// json_script block, loads the image (raw, real dtype) and the starting mask (draft, the
// revision being edited, or empty), and wires viewer, channel controls, editor, undo,
// autosave, rule check, timer and submit. Exposes window.__annotator for tests.
//
// With `mode: "review"` the same editor serves a QA lead: it starts from the consensus (or
// one annotation), keeps no draft and no timer, checks the guideline's rules through the
// review endpoint's dry run (advice, which the lead may override), and "submit" is the
// review action accept_edited.

import { ApiClient, ApiError } from "./api.js";
import { Assist } from "./assist.js";
import { Autosave } from "./autosave.js";
import { ChannelControls } from "./channels.js";
import { CellClasses, cocoDocument } from "./classes.js";
import { LabelMap } from "./labelmap.js";
import { compactIds, encodeLabelPng } from "./png.js";
import { RuleCheck } from "./rules.js";
import { Editor } from "./tools.js";
import { UndoStack } from "./undo.js";
import { ImageLayer, MaskLayer, View } from "./viewer.js";

const $ = (id) => document.getElementById(id);

function setStatus(text, kind = "info") {
  const node = $("status");
  node.textContent = text;
  node.className = "ws-note" + (kind === "error" ? " ws-note-error" : kind === "warn" ? " ws-note-warn" : "");
}

class ActiveTimer {
  constructor(node, start = 0) {
    this.seconds = start;
    this.node = node;
    this.last = performance.now();
    for (const type of ["pointerdown", "pointermove", "keydown", "wheel"]) {
      document.addEventListener(type, () => { this.last = performance.now(); }, { passive: true });
    }
    setInterval(() => this.tick(), 1000);
    this.show();
  }

  tick() {
    // Count a second only while the page is visible and the annotator did something lately.
    if (document.visibilityState === "visible" && performance.now() - this.last < 120000) {
      this.seconds += 1;
      this.show();
    }
  }

  show() {
    const s = Math.floor(this.seconds);
    this.node.textContent = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  }
}

async function loadStart(api, cfg) {
  if (cfg.mode === "review") {
    const raw = await api.rawArray(cfg.start.labels);
    return { labels: raw.planes[0], draft: null, note: `Editing ${cfg.start.label}: correct it, then accept it as the approved mask.` };
  }
  // The page says whether a draft exists and whether it edits the latest revision.
  const base = cfg.latest ? cfg.latest.revision : 0;
  const draft = cfg.draft;
  if (draft && draft.current) {
    const raw = await api.rawArray(cfg.urls.draftLabels);
    const note = draft.modelAssisted
      ? `Pre-annotated by model ${draft.model || "(removed)"}: correct its cells, then submit.`
      : `Restored your draft (saved ${new Date(draft.savedAt).toLocaleString()}).`;
    return { labels: raw.planes[0], draft, note };
  }
  let note = "";
  if (draft) note = `A draft based on revision ${draft.baseRevision} was not restored: revision ${base} is newer. `;
  if (cfg.latest) {
    const raw = await api.rawArray(cfg.urls.latestLabels);
    return { labels: raw.planes[0], draft: null, note: note + `Editing revision ${base}.` };
  }
  return { labels: null, draft: null, note };
}

/** Review mode: the consensus cells the annotators disputed, as a list that zooms to each and
 * (optionally) amber outlines. A cell deleted or merged away meanwhile says so. */
function wireDisputed(cells, { labels, mask, view, editor, zoomToCell }) {
  const list = $("disputed");
  const toggle = $("mark-disputed");
  const ids = new Set(cells.map((c) => c.id));
  const mark = () => { mask.marked = toggle.checked ? ids : new Set(); mask.updateAll(); view.redraw(); };
  for (const c of cells) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.cell = String(c.id);
    button.textContent = `Cell ${c.id}: drawn by ${c.support} of ${c.k}, confidence ${Number(c.confidence).toFixed(2)}`;
    button.addEventListener("click", () => {
      if (!labels.areas.has(c.id)) { setStatus(`Cell ${c.id} is no longer in the mask (deleted or merged).`, "warn"); return; }
      editor.select(c.id);
      zoomToCell(c.id);
    });
    item.append(button);
    list.append(item);
  }
  toggle.addEventListener("change", mark);
  mark();
}

/** Review mode: cells one annotator drew that the consensus left out; "Add" copies one from
 * its annotation into the mask as a new cell, in one undo step, keeping the other cells. */
function wireLeftOut(cells, { api, labels, editor, zoomToCell }) {
  const list = $("left-out");
  const planes = new Map();   // labels URL -> the annotation's label plane, fetched once
  const plane = async (url) => {
    if (!planes.has(url)) planes.set(url, api.rawArray(url).then((raw) => raw.planes[0]));
    return planes.get(url);
  };
  for (const c of cells) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.annotation = String(c.annotation);
    button.dataset.label = String(c.label);
    button.textContent = `Add ${c.annotator}'s cell ${c.label} (flag score ${Number(c.score).toFixed(2)})`;
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        const source = await plane(c.labels);
        const w = labels.width, mask = new Uint8Array(source.length);
        let x0 = w, y0 = labels.height, x1 = -1, y1 = -1;
        for (let i = 0; i < source.length; i++) {
          if (source[i] !== c.label) continue;
          mask[i] = 1;
          const x = i % w, y = (i / w) | 0;
          if (x < x0) x0 = x; if (x > x1) x1 = x; if (y < y0) y0 = y; if (y > y1) y1 = y;
        }
        if (x1 < 0) { setStatus(`${c.annotator}'s annotation has no cell ${c.label}.`, "warn"); return; }
        const id = labels.maxId() + 1;
        const painted = editor.edit("add from annotation", () => labels.paintMask(mask, [x0, y0, x1, y1], id, { protect: true }));
        if (!painted) { setStatus(`${c.annotator}'s cell ${c.label} lies entirely on other cells; nothing was added.`, "warn"); return; }
        editor.select(id);
        zoomToCell(id);
        button.textContent = `Added as cell ${id} (${painted} px) from ${c.annotator}'s cell ${c.label}; add again`;
        setStatus(`Added cell ${id} from ${c.annotator}'s cell ${c.label}.`);
      } catch (err) {
        setStatus(`Could not add the cell: ${err.message}`, "error");
      } finally {
        button.disabled = false;
      }
    });
    item.append(button);
    list.append(item);
  }
}

async function main() {
  const cfg = JSON.parse($("workspace-config").textContent);
  const root = $("workspace");
  const api = new ApiClient({ csrfToken: cfg.csrfToken });
  const reviewing = cfg.mode === "review";
  const hook = { ready: false, config: cfg, errors: [], mode: reviewing ? "review" : "annotate" };
  window.__annotator = hook;

  const saveStatus = (text, kind) => { const n = $("save-status"); n.textContent = text; n.dataset.kind = kind || ""; };
  let labels = null, editor = null, timer = null, classes = null;
  // A model's pre-annotation stays the origin of every revision made from it.
  const modelAssisted = !!(cfg.draft && cfg.draft.current && cfg.draft.modelAssisted);
  const reviewForm = async () => {
    const body = new FormData();
    body.set("action", "accept_edited");
    body.set("mask", await encodeLabelPng(compactIds(labels.data), labels.width, labels.height), "mask.png");
    body.set("reason", $("review-reason").value);
    return body;
  };
  const form = async () => {
    if (reviewing) return reviewForm();
    const body = new FormData();
    body.set("assignment", String(cfg.assignment.id));
    const classOf = classes.present();
    if (Object.keys(classOf).length) {
      // Classes travel in a COCO document (a PNG label image has no place for them).
      const doc = cocoDocument(labels, classOf, classes.names);
      body.set("mask", new Blob([JSON.stringify(doc)], { type: "application/json" }), "mask.json");
      body.set("mask_format", "coco");
      body.set("source", "manual");
    } else {
      body.set("mask", await encodeLabelPng(compactIds(labels.data), labels.width, labels.height), "mask.png");
    }
    body.set("base_revision", String(cfg.latest ? cfg.latest.revision : 0));
    body.set("time_spent_s", String(Math.round(timer.seconds)));
    if (modelAssisted) body.set("source", "model_assisted");
    return body;
  };
  // A reviewer's edit is one decision, not a draft: nothing is saved until it is accepted.
  const autosave = reviewing ? null : new Autosave({
    api, url: cfg.urls.draft, status: saveStatus,
    payload: async () => {
      const body = new FormData();
      body.set("labels", await encodeLabelPng(compactIds(labels.data), labels.width, labels.height), "draft.png");
      body.set("base_revision", String(cfg.latest ? cfg.latest.revision : 0));
      body.set("state", JSON.stringify({ timeSpentS: Math.round(timer.seconds), activeId: editor.activeId, classes: classes.present() }));
      return body;
    },
  });

  // The image is drawn as soon as its samples arrive; the starting mask (draft or the
  // revision being edited) follows, and editing is enabled once both are in.
  const timings = { start: performance.now() };
  hook.timings = timings;
  const startPromise = loadStart(api, cfg).then((r) => { timings.labels = performance.now(); return r; });
  const raw = await api.rawArray(cfg.urls.pixels);
  timings.pixels = performance.now();
  const image = new ImageLayer(raw);
  timings.contrast = performance.now();
  const view = new View($("view"), image, null);
  image.render();
  view.draw();
  hook.imageShownMs = timings.image = performance.now();
  setStatus("Loading the mask…");
  const start = await startPromise;
  labels = new LabelMap(raw.width, raw.height, start.labels);
  timings.labelMap = performance.now();
  const mask = new MaskLayer(labels);
  timings.maskTiles = performance.now();
  view.mask = mask;
  mask.updateAll();
  labels.takeDirty();
  timings.maskPainted = performance.now();
  view.draw();
  hook.openMs = timings.mask = performance.now();
  if (!reviewing) timer = new ActiveTimer($("time-spent"), start.draft?.state?.timeSpentS || 0);

  const undo = new UndoStack({ limit: 200 });
  const rules = new RuleCheck({
    api, url: reviewing ? cfg.urls.review : cfg.urls.annotations, list: $("violations"), note: $("rules-note"),
    onSelectCell: (id) => { editor.select(id); zoomToCell(id); },
  });
  let submitKey = null, overrideRules = false;
  hook.dirty = false;
  const onEdit = () => {
    submitKey = null; overrideRules = false; hook.dirty = true;
    if (classes) classes.prune();
    if (autosave) autosave.touch();
  };
  if (reviewing) {
    // Nothing is saved before the decision: say so before the page is left with edits.
    window.addEventListener("beforeunload", (e) => { if (hook.dirty) { e.preventDefault(); e.returnValue = ""; } });
  }
  const onState = (state) => {
    if (classes && classes.selected !== state.selected) classes.select(state.selected);
    for (const b of document.querySelectorAll("[data-tool]")) b.setAttribute("aria-pressed", String(b.dataset.tool === state.tool));
    $("brush-size").value = String(state.brushSize);
    $("brush-size-value").textContent = String(state.brushSize);
    $("protect").checked = state.protect;
    $("cell-count").textContent = String(state.cellCount);
    $("active-cell").textContent = String(state.activeId);
    document.querySelector('[data-action="undo"]').disabled = !state.canUndo;
    document.querySelector('[data-action="redo"]').disabled = !state.canRedo;
  };
  editor = new Editor({
    stage: $("stage"), view, labels, undo, onEdit, onState,
    notify: (text) => setStatus(text, "warn"),
  });
  if (start.draft?.state?.activeId) editor.activeId = start.draft.state.activeId;
  classes = new CellClasses({
    names: cfg.project.cellClasses, labels, mask,
    initial: start.draft ? start.draft.state?.classes : cfg.latest?.instanceClasses,
    ui: { picker: $("cell-class"), legend: $("class-legend"), note: $("cell-class-note") },
    onChange: () => { onEdit(); view.redraw(); },
    disabledNote: reviewing ? "An approved mask is a label image: it carries no cell classes." : null,
  });

  const zoomToCell = (id) => {
    const box = labels.bbox(id);
    if (!box) return;
    const span = Math.max(box.x1 - box.x0, box.y1 - box.y0, 16) * 3;
    view.centreOn((box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2, Math.min(view.canvas.width, view.canvas.height) / span);
    view.redraw();
  };
  let renderQueued = false;
  const renderImage = ({ live = false } = {}) => {
    if (live) {
      if (!renderQueued) { renderQueued = true; requestAnimationFrame(() => { renderQueued = false; renderImage(); }); }
      return;
    }
    const t0 = performance.now();
    image.render();
    view.draw();
    hook.lastRenderMs = performance.now() - t0;
  };
  const channels = new ChannelControls($("channels"), image, renderImage);

  // ---- controls
  for (const b of document.querySelectorAll("[data-tool]")) b.addEventListener("click", () => editor.setTool(b.dataset.tool));
  const actions = {
    "new-cell": () => editor.newCell(), "delete-cell": () => editor.deleteCell(),
    undo: () => editor.doUndo(), redo: () => editor.doRedo(), help: () => $("help").showModal(),
  };
  for (const b of document.querySelectorAll("[data-action]")) b.addEventListener("click", () => actions[b.dataset.action]());
  $("brush-size").addEventListener("input", (e) => editor.setBrushSize(Number(e.target.value)));
  $("protect").addEventListener("change", (e) => editor.setProtect(e.target.checked));
  $("mask-mode").addEventListener("change", (e) => { mask.mode = e.target.value; mask.updateAll(); view.redraw(); });
  $("mask-opacity").addEventListener("input", (e) => {
    view.opacity = Number(e.target.value);
    $("mask-opacity-value").textContent = e.target.value;
    view.redraw();
  });
  $("auto-contrast").addEventListener("click", () => { image.autoContrast(); channels.sync(); renderImage(); });
  document.addEventListener("keydown", (e) => {
    const tag = e.target && e.target.tagName;
    if (["INPUT", "SELECT", "TEXTAREA"].includes(tag) || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === "?") { $("help").open ? $("help").close() : $("help").showModal(); e.preventDefault(); }
    else if (e.key === "a" || e.key === "A") { image.autoContrast(); channels.sync(); renderImage(); }
    else if (e.key === "o" || e.key === "O") {
      const modes = ["fill", "outline", "both", "off"];
      mask.mode = modes[(modes.indexOf(mask.mode) + 1) % modes.length];
      $("mask-mode").value = mask.mode; mask.updateAll(); view.redraw();
    }
  });
  let assist = null;
  if (cfg.assist.url) {
    assist = new Assist({
      api, url: cfg.assist.url, editor, notify: (text) => setStatus(text),
      ui: { panel: $("assist-panel"), method: $("assist-method"), accept: $("assist-accept"), reject: $("assist-reject") },
    });
    editor.registerTool("assist", assist, "i");
    $("assist").disabled = false;
  } else {
    $("assist-note").textContent = cfg.assist.note;
  }

  if (reviewing && cfg.disputed && cfg.disputed.length) wireDisputed(cfg.disputed, { labels, mask, view, editor, zoomToCell });
  if (reviewing && cfg.leftOut && cfg.leftOut.length) wireLeftOut(cfg.leftOut, { api, labels, editor, zoomToCell });

  const showViolations = () => { mask.flagged = rules.flaggedCells(); mask.updateAll(); view.redraw(); };
  $("check-rules").addEventListener("click", async () => {
    try { await rules.check(await form()); showViolations(); } catch (err) { setStatus(`Rule check failed: ${err.message}`, "error"); }
  });

  const submitButton = $("submit");
  const acceptEdited = async () => {
    setStatus("Checking the guideline's rules…");
    const found = rules.available === false ? null : await rules.check(await form());
    showViolations();
    if (found && rules.blocking.length && !overrideRules) {
      // The guideline binds annotators; a QA lead may accept anyway, but not by accident.
      overrideRules = true;
      setStatus(`${rules.blocking.length} blocking rule violation(s), outlined in red. Fix them, or click "Accept edited mask" again to accept anyway (say why in the reason).`, "warn");
      return;
    }
    setStatus("Accepting…");
    const decision = await api.json(cfg.urls.review, { method: "POST", body: await form() });
    hook.dirty = false;
    hook.submitted = decision;
    root.dataset.state = "submitted";
    const approved = decision.approved_mask;
    setStatus(`Accepted with edits (decision ${decision.id}): approved mask ${approved ? approved.id : "?"} with ${approved ? approved.n_cells : labels.areas.size} cells is now this image's training mask.`);
    $("after-submit").hidden = false;
    submitButton.disabled = true;
  };
  submitButton.addEventListener("click", async () => {
    if (reviewing) {
      submitButton.disabled = true;
      try { await acceptEdited(); } catch (err) {
        setStatus(`Not accepted: ${err.message}`, "error");
      } finally {
        if (root.dataset.state !== "submitted") submitButton.disabled = false;
      }
      return;
    }
    submitButton.disabled = true;
    try {
      setStatus("Checking the guideline's rules…");
      const found = rules.available === false ? null : await rules.check(await form());
      showViolations();
      if (found && rules.blocking.length) {
        setStatus(`Not submitted: ${rules.blocking.length} blocking rule violation(s). Fix the cells outlined in red.`, "error");
        return;
      }
      setStatus("Submitting…");
      submitKey = submitKey || (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random());
      const body = await form();
      const annotation = await api.json(cfg.urls.annotations, { method: "POST", body, headers: { "Idempotency-Key": submitKey } });
      await autosave.discard();
      autosave.stopped = false;   // further edits become the draft of the next revision
      cfg.latest = { id: annotation.id, revision: annotation.revision };
      hook.submitted = annotation;
      root.dataset.state = "submitted";
      setStatus(`Submitted revision ${annotation.revision} with ${annotation.instance_count} cells in ${Math.round(timer.seconds)} s of work. Further edits become revision ${annotation.revision + 1}.`);
      $("after-submit").hidden = false;
      saveStatus("submitted", "ok");
    } catch (err) {
      if (err instanceof ApiError && err.body && Array.isArray(err.body.violations)) { rules.show(err.body.violations); showViolations(); }
      setStatus(`Not submitted: ${err.message}`, "error");
    } finally {
      submitButton.disabled = false;
    }
  });

  Object.assign(hook, {
    ready: true, labels, image, mask, view, editor, undo, autosave, rules, timer, channels, assist, classes,
    /** {"<id>": "<class>"} of the cells that exist. */
    classOf: () => classes.present(),
    /** Ids and their areas, e.g. {"1": 812, "2": 640}. */
    areas: () => Object.fromEntries([...labels.areas.entries()].sort((a, b) => a[0] - b[0])),
    idAt: (x, y) => labels.data[y * labels.width + x],
    /** Composite RGBA of the image layer at image pixel (x, y). */
    displayed: (x, y) => image.pixel(x, y),
    /** RGBA of the visible canvas where image pixel (x, y) is drawn. */
    screenPixel: (x, y) => {
      view.draw();
      const [sx, sy] = view.toScreen(x + 0.5, y + 0.5);
      return [...view.ctx.getImageData(Math.floor(sx), Math.floor(sy), 1, 1).data];
    },
    /** Client (CSS px) coordinates of image point (x, y), for driving the mouse. */
    clientPoint: (x, y) => {
      const r = view.canvas.getBoundingClientRect();
      const [sx, sy] = view.toScreen(x, y);
      return [r.left + sx / view.dpr, r.top + sy / view.dpr];
    },
    setView: ({ zoom, x, y }) => { view.centreOn(x, y, zoom * view.dpr); view.draw(); },
  });
  // A live getter (Object.assign would copy a snapshot).
  Object.defineProperty(hook, "state", { get: () => editor.state, enumerable: true });
  onState(editor.state);
  submitButton.disabled = false;
  root.dataset.state = "ready";
  setStatus(start.note || `Ready. Draw with the brush (B); N starts a new cell; ? shows every shortcut.`, start.note.startsWith("A draft") ? "warn" : "info");
}

main().catch((err) => {
  setStatus(`The workspace could not start: ${err.message}`, "error");
  if (window.__annotator) window.__annotator.errors.push(String(err));
  document.getElementById("workspace").dataset.state = "error";
});
