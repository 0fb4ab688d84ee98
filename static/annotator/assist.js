// assist.js — SAM assist in the editor. The annotator drags a box around a cell and may add
// points (Shift+click: inside the cell, Alt+click: outside); each change of the prompt asks
// the assist endpoint for one cell's mask. The answer is a proposal drawn over the image,
// with the method that answered (SAM, or the classical fallback when the server has no SAM
// weights); Accept (Enter) writes it into the label map as a new cell in one undo step,
// respecting "don't paint over other cells"; Reject (Esc) drops it.

import { ApiError } from "./api.js";

/** Decode the endpoint's run lengths (row-major, starting with a background run). */
export function decodeRle(rle) {
  const [height, width] = rle.size;
  const mask = new Uint8Array(width * height);
  let pos = 0, on = false;
  for (const n of rle.counts) {
    if (on) mask.fill(1, pos, pos + n);
    pos += n;
    on = !on;
  }
  if (pos !== mask.length) throw new Error(`assist mask has ${pos} pixels, expected ${mask.length}`);
  return { mask, width, height };
}

/** A proposal's pixels as a small canvas (its bounding box), fill plus a brighter outline. */
function proposalCanvas(mask, width, [x0, y0, x1, y1]) {
  const w = x1 - x0 + 1, h = y1 - y0 + 1;
  const canvas = document.createElement("canvas");
  canvas.width = w; canvas.height = h;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(w, h);
  const out = new Uint32Array(img.data.buffer);
  const at = (x, y) => x >= x0 && x <= x1 && y >= y0 && y <= y1 && mask[y * width + x] === 1;
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      if (!at(x, y)) continue;
      const edge = !at(x - 1, y) || !at(x + 1, y) || !at(x, y - 1) || !at(x, y + 1);
      // ABGR (little-endian RGBA): cyan fill, opaque yellow outline.
      out[(y - y0) * w + (x - x0)] = edge ? 0xff00ffff : 0x88ffff00;
    }
  }
  ctx.putImageData(img, 0, 0);
  return canvas;
}

export class Assist {
  /**
   * @param {object} o
   * @param {ApiClient} o.api
   * @param {string} o.url            the image's assist endpoint
   * @param {Editor} o.editor         owns the label map, undo and the view
   * @param {object} o.ui             {panel, method, accept, reject}
   * @param {(text: string, kind?: string) => void} o.notify
   */
  constructor({ api, url, editor, ui, notify }) {
    this.api = api;
    this.url = url;
    this.editor = editor;
    this.ui = ui;
    this.notify = notify;
    this.box = null;         // [x0, y0, x1, y1] in image pixels
    this.points = [];        // [[x, y], ...]
    this.pointLabels = [];   // 1 inside, 0 outside
    this.drag = null;
    this.proposal = null;    // {mask, bbox, area, method, score, canvas}
    this.pending = 0;        // sequence number of the newest request
    this.answered = 0;       // ... and of the newest answered one
    this.requests = 0;
    this.lastMethod = null;
    ui.accept.addEventListener("click", () => this.accept());
    ui.reject.addEventListener("click", () => this.reject());
    this.show();
  }

  get state() {
    const p = this.proposal;
    return {
      box: this.box, points: this.points.map((pt, k) => [...pt, this.pointLabels[k]]),
      busy: this.busy, requests: this.requests, lastMethod: this.lastMethod,
      proposal: p ? { area: p.area, bbox: p.bbox, method: p.method, score: p.score } : null,
    };
  }

  get busy() { return this.pending !== this.answered; }

  // ------------------------------------------------------------- pointer (tool handler)

  down(x, y, e) {
    if (e.shiftKey || e.altKey) {
      this.points.push([x, y]);
      this.pointLabels.push(e.altKey ? 0 : 1);
      this.ask();
      return;
    }
    this.drag = { x0: x, y0: y, x1: x, y1: y };
  }

  move(x, y) {
    if (!this.drag) return;
    this.drag.x1 = x; this.drag.y1 = y;
  }

  up() {
    const d = this.drag;
    if (!d) return;
    this.drag = null;
    const x0 = Math.min(d.x0, d.x1), x1 = Math.max(d.x0, d.x1);
    const y0 = Math.min(d.y0, d.y1), y1 = Math.max(d.y0, d.y1);
    if ((x1 - x0) * this.editor.view.zoom < 4 || (y1 - y0) * this.editor.view.zoom < 4) {
      // A click, not a drag: a positive point.
      this.points.push([d.x0, d.y0]);
      this.pointLabels.push(1);
    } else {
      const { width, height } = this.editor.labels;
      this.box = [Math.max(0, x0), Math.max(0, y0), Math.min(width - 1, x1), Math.min(height - 1, y1)];
      this.points = []; this.pointLabels = [];   // a new box starts a new prompt
    }
    this.ask();
  }

  key(e) {
    if (e.key === "Enter" && this.proposal) { this.accept(); return true; }
    if (e.key === "Escape" && (this.proposal || this.box || this.points.length)) { this.reject(); return true; }
    return false;
  }

  // ------------------------------------------------------------- the endpoint

  async ask() {
    const seq = ++this.pending;
    this.requests++;
    this.show("Asking…");
    this.editor.view.redraw();
    const body = { box: this.box, points: this.points, point_labels: this.points.length ? this.pointLabels : null };
    try {
      const answer = await this.api.json(this.url, {
        method: "POST", body: JSON.stringify(body), headers: { "Content-Type": "application/json" },
      });
      if (seq !== this.pending) return;      // a newer prompt is on its way
      this.answered = seq;
      this.lastMethod = answer.method;
      if (!answer.area || !answer.rle) {
        this.proposal = null;
        this.show(`${answer.method} found no cell here; draw another box or add points.`);
      } else {
        const { mask, width } = decodeRle(answer.rle);
        this.proposal = {
          mask, bbox: answer.bbox, area: answer.area, method: answer.method, score: answer.score,
          canvas: proposalCanvas(mask, width, answer.bbox),
        };
        this.show();
      }
    } catch (err) {
      if (seq !== this.pending) return;
      this.answered = seq;
      this.proposal = null;
      const why = err instanceof ApiError ? err.message : String(err.message || err);
      this.show(`Assist refused: ${why}`, true);
    }
    this.editor.view.redraw();
  }

  /** The proposal becomes a new cell: one undo step; protected pixels of other cells stay. */
  accept() {
    const p = this.proposal;
    if (!p) return;
    const editor = this.editor, labels = editor.labels;
    const id = labels.maxId() + 1;
    const painted = editor.edit("assist", () => labels.paintMask(p.mask, p.bbox, id, { protect: editor.protect }));
    this.clear();
    if (!painted) { this.notify("The proposal lies entirely on other cells; nothing was added."); return; }
    editor.select(id);
    const kept = p.area - painted;
    this.notify(kept ? `Added cell ${id} (${painted} px); ${kept} px of other cells were kept.` : `Added cell ${id} (${painted} px).`);
  }

  reject() { this.clear(); this.editor.view.redraw(); }

  clear() {
    this.proposal = null;
    this.box = null;
    this.points = []; this.pointLabels = [];
    this.pending++; this.answered = this.pending;   // drop answers still on their way
    this.show();
  }

  show(text = null, error = false) {
    const p = this.proposal, ui = this.ui;
    ui.panel.hidden = !(p || text);
    ui.accept.disabled = ui.reject.disabled = !p;
    ui.method.classList.toggle("ws-error-text", error);
    if (text) ui.method.textContent = text;
    else if (p) {
      const fallback = p.method.startsWith("sam") ? "" : " (no SAM weights on this server: classical fallback)";
      ui.method.textContent = `Proposal by ${p.method}${fallback}: ${p.area} px, score ${p.score.toFixed(2)}.`;
    } else ui.method.textContent = "";
  }

  // ------------------------------------------------------------- drawing (screen space)

  drawOverlay(ctx, view) {
    const p = this.proposal;
    if (p) {
      ctx.save();
      ctx.setTransform(view.zoom, 0, 0, view.zoom, view.tx, view.ty);
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(p.canvas, p.bbox[0], p.bbox[1]);
      ctx.restore();
    }
    const box = this.drag ? [this.drag.x0, this.drag.y0, this.drag.x1, this.drag.y1] : this.box;
    if (box) {
      const [ax, ay] = view.toScreen(box[0], box[1]), [bx, by] = view.toScreen(box[2], box[3]);
      ctx.save();
      ctx.setLineDash([6 * view.dpr, 4 * view.dpr]);
      ctx.strokeStyle = "#ffd60a";
      ctx.lineWidth = 1.5 * view.dpr;
      ctx.strokeRect(ax, ay, bx - ax, by - ay);
      ctx.restore();
    }
    this.points.forEach(([x, y], k) => {
      const [sx, sy] = view.toScreen(x, y), r = 5 * view.dpr;
      ctx.fillStyle = this.pointLabels[k] ? "#30d158" : "#ff453a";
      ctx.beginPath(); ctx.arc(sx, sy, r, 0, Math.PI * 2); ctx.fill();
    });
  }
}
