// tools.js — the editor: tool state, pointer strokes, keyboard shortcuts, on top of a
// LabelMap (the state), an UndoStack (per-stroke diffs) and a View (what is drawn).

const TOOLS = ["brush", "eraser", "fill", "polygon", "select", "merge", "split"];
const KEYS = { b: "brush", e: "eraser", f: "fill", p: "polygon", s: "select", m: "merge", x: "split" };

export class Editor {
  constructor({ stage, view, labels, undo, onEdit, onState, notify }) {
    this.stage = stage;
    this.view = view;
    this.labels = labels;
    this.undo = undo;
    this.onEdit = onEdit;
    this.onState = onState;
    this.notify = notify;
    this.tool = "brush";
    this.brushSize = 12;
    this.protect = true;
    this.activeId = labels.maxId() + 1;
    this.selected = 0;
    this.cursor = null;      // image coordinates of the pointer
    this.path = null;        // polygon / split points in progress
    this.stroking = false;
    this.panning = null;
    this.spaceDown = false;
    this.enabled = true;
    this.keys = { ...KEYS };
    this.strokeTimes = [];   // ms spent applying each pointer event of a stroke
    this.handlers = {};      // tools added by other modules (assist): name -> handler
    view.overlay = (ctx, v) => this.drawOverlay(ctx, v);
    this.bind();
  }

  get state() {
    return {
      tool: this.tool, brushSize: this.brushSize, protect: this.protect, activeId: this.activeId,
      selected: this.selected, canUndo: this.undo.canUndo, canRedo: this.undo.canRedo,
      undoDepth: this.undo.done.length, cellCount: this.labels.cellCount,
    };
  }

  /**
   * Add a tool implemented elsewhere. The handler gets down(x, y, event), move(x, y),
   * up(), key(event) -> handled?, and drawOverlay(ctx, view) (called whatever the tool).
   */
  registerTool(name, handler, key) {
    this.handlers[name] = handler;
    if (key) this.keys[key] = name;
  }

  setTool(tool) {
    if (!TOOLS.includes(tool) && !this.handlers[tool]) return;
    this.tool = tool;
    this.path = null;
    this.changed();
  }

  setBrushSize(size) { this.brushSize = Math.max(1, Math.min(120, Math.round(size))); this.changed(); }
  setProtect(on) { this.protect = !!on; this.changed(); }

  select(id) {
    this.selected = id;
    if (id) this.activeId = id;
    this.view.mask.selected = id;
    this.view.mask.updateAll();
    this.changed();
  }

  newCell() {
    this.activeId = Math.max(this.labels.maxId(), this.labels.areas.has(this.activeId) ? this.activeId : 0) + 1;
    this.selected = 0;
    this.view.mask.selected = 0;
    this.view.mask.updateAll();
    this.changed();
  }

  /** Run one edit as one undoable step. */
  edit(label, fn) {
    this.labels.beginStroke();
    let result;
    try { result = fn(); } finally {
      const diff = this.labels.endStroke();
      if (diff) { this.undo.push(diff, label); this.onEdit(label); }
    }
    this.view.redraw();
    this.changed();
    return result;
  }

  deleteCell(id = this.selected) {
    if (!id) { this.notify("Select a cell first (S, then click it)."); return; }
    this.edit("delete", () => this.labels.replace(id, 0));
    this.select(0);
  }

  merge(into, other) {
    if (!into || !other || into === other) return;
    this.edit("merge", () => this.labels.replace(other, into));
    this.select(into);
  }

  split(points) {
    const id = this.selected || this.idAlong(points);
    if (!id) { this.notify("Draw the split line across a cell (select it first)."); return; }
    const parts = this.edit("split", () => this.labels.split(id, points, () => this.labels.maxId() + 1));
    if (parts.length < 2) this.notify("The line did not cut the cell in two; draw it from edge to edge.");
    else this.notify(`Split cell ${id} into ${parts.length} cells.`);
  }

  idAlong(points) {
    for (const [x, y] of points) { const id = this.idAt(x, y); if (id) return id; }
    return 0;
  }

  idAt(x, y) {
    const ix = Math.floor(x), iy = Math.floor(y);
    if (ix < 0 || iy < 0 || ix >= this.labels.width || iy >= this.labels.height) return 0;
    return this.labels.data[iy * this.labels.width + ix];
  }

  doUndo() { if (this.undo.undo(this.labels)) { this.onEdit("undo"); this.view.redraw(); this.changed(); } }
  doRedo() { if (this.undo.redo(this.labels)) { this.onEdit("redo"); this.view.redraw(); this.changed(); } }

  changed() { this.view.redraw(); this.onState(this.state); }

  // ------------------------------------------------------------------ strokes

  /** Brush/eraser: paint from (ax, ay) to (bx, by) in image coordinates. */
  paint(ax, ay, bx, by) {
    const value = this.tool === "eraser" ? 0 : this.activeId;
    this.labels.paintSegment(ax, ay, bx, by, this.brushSize / 2, value, { protect: this.protect, activeId: this.activeId });
  }

  beginStroke(x, y) {
    this.labels.beginStroke();
    this.stroking = true;
    this.last = [x, y];
    this.paint(x, y, x, y);
    this.view.redraw();
  }

  continueStroke(points) {
    const t0 = performance.now();
    for (const [x, y] of points) {
      this.paint(this.last[0], this.last[1], x, y);
      this.last = [x, y];
    }
    this.strokeTimes.push(performance.now() - t0);
    this.view.redraw();
  }

  endStroke() {
    if (!this.stroking) return;
    this.stroking = false;
    const diff = this.labels.endStroke();
    if (diff) { this.undo.push(diff, this.tool); this.onEdit(this.tool); }
    this.changed();
  }

  closePolygon() {
    const pts = this.path;
    this.path = null;
    if (!pts || pts.length < 3) { this.view.redraw(); return; }
    this.edit("polygon", () => this.labels.fillPolygon(pts, this.activeId, { protect: this.protect, activeId: this.activeId }));
  }

  // ------------------------------------------------------------------ events

  bind() {
    const canvas = this.view.canvas;
    canvas.addEventListener("pointerdown", (e) => this.pointerDown(e));
    canvas.addEventListener("pointermove", (e) => this.pointerMove(e));
    canvas.addEventListener("pointerup", () => this.pointerUp());
    canvas.addEventListener("pointercancel", () => this.pointerUp());
    canvas.addEventListener("pointerleave", () => { this.cursor = null; this.view.redraw(); });
    canvas.addEventListener("dblclick", () => { if (this.tool === "polygon") this.closePolygon(); });
    canvas.addEventListener("wheel", (e) => {
      e.preventDefault();
      this.view.zoomAt(e.clientX, e.clientY, Math.exp(-e.deltaY * 0.0015));
      this.view.redraw();
    }, { passive: false });
    canvas.addEventListener("contextmenu", (e) => e.preventDefault());
    document.addEventListener("keydown", (e) => this.keyDown(e));
    document.addEventListener("keyup", (e) => { if (e.key === " ") this.spaceDown = false; });
  }

  pointerDown(e) {
    if (!this.enabled) return;
    this.stage.focus({ preventScroll: true });
    const [x, y] = this.view.toImage(e.clientX, e.clientY);
    if (e.button === 1 || e.button === 2 || this.spaceDown) {
      this.panning = { sx: e.clientX, sy: e.clientY, tx: this.view.tx, ty: this.view.ty };
      this.view.canvas.setPointerCapture(e.pointerId);
      return;
    }
    if (e.button !== 0) return;
    this.view.canvas.setPointerCapture(e.pointerId);
    switch (this.tool) {
      case "brush": case "eraser": this.beginStroke(x, y); break;
      case "fill": {
        const out = this.edit("fill", () => this.labels.fillHole(Math.floor(x), Math.floor(y), this.activeId));
        if (out && !out.filled && out.reason) this.notify(`Fill: ${out.reason}.`);
        break;
      }
      case "select": this.select(this.idAt(x, y)); break;
      case "merge": {
        const other = this.idAt(x, y);
        if (!this.selected) { this.select(other); this.notify("Now click the cell to merge into it."); }
        else this.merge(this.selected, other);
        break;
      }
      case "polygon":
        if (this.path && this.path.length > 2) {
          const [fx, fy] = this.path[0];
          if (Math.hypot(fx - x, fy - y) * this.view.zoom < 8) { this.closePolygon(); break; }
        }
        this.path = this.path || [];
        this.path.push([x, y]);
        this.pathStart = this.path.length;
        this.dragging = true;
        break;
      case "split": this.path = [[x, y]]; this.dragging = true; break;
      default:
        if (this.handlers[this.tool]) { this.handlers[this.tool].down(x, y, e); this.view.redraw(); }
    }
  }

  pointerMove(e) {
    const [x, y] = this.view.toImage(e.clientX, e.clientY);
    this.cursor = [x, y];
    if (this.panning) {
      const p = this.panning, dpr = this.view.dpr;
      this.view.tx = p.tx + (e.clientX - p.sx) * dpr;
      this.view.ty = p.ty + (e.clientY - p.sy) * dpr;
      this.view.redraw();
      return;
    }
    if (this.stroking) {
      const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [];
      const pts = (events.length ? events : [e]).map((ev) => this.view.toImage(ev.clientX, ev.clientY));
      this.continueStroke(pts);
      return;
    }
    if (this.handlers[this.tool]) this.handlers[this.tool].move(x, y);
    if (this.dragging && this.path) {
      const [lx, ly] = this.path[this.path.length - 1];
      if (Math.hypot(lx - x, ly - y) * this.view.zoom >= 3) this.path.push([x, y]);
    }
    this.view.redraw();
  }

  pointerUp() {
    if (this.panning) { this.panning = null; return; }
    if (this.stroking) { this.endStroke(); return; }
    if (this.handlers[this.tool]) { this.handlers[this.tool].up(); this.view.redraw(); return; }
    if (!this.dragging) return;
    this.dragging = false;
    if (this.tool === "split" && this.path) {
      const pts = this.path; this.path = null;
      if (pts.length >= 2) this.split(pts);
      this.view.redraw();
    } else if (this.tool === "polygon" && this.path && this.path.length - this.pathStart >= 4) {
      this.closePolygon();   // dragged: a lasso, closed on release
    }
  }

  keyDown(e) {
    const target = e.target;
    if (target && ["INPUT", "SELECT", "TEXTAREA"].includes(target.tagName)) return;
    if (document.querySelector("dialog[open]") && e.key !== "Escape") return;
    const key = e.key.toLowerCase();
    if ((e.ctrlKey || e.metaKey) && key === "z") { e.preventDefault(); if (e.shiftKey) this.doRedo(); else this.doUndo(); return; }
    if ((e.ctrlKey || e.metaKey) && key === "y") { e.preventDefault(); this.doRedo(); return; }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === " ") { this.spaceDown = true; e.preventDefault(); return; }
    const handler = this.handlers[this.tool];
    if (handler && handler.key(e)) { e.preventDefault(); return; }
    if (this.keys[key]) { this.setTool(this.keys[key]); return; }
    switch (e.key) {
      case "n": case "N": this.newCell(); break;
      case "Delete": case "Backspace": this.deleteCell(); break;
      case "[": this.setBrushSize(this.brushSize / 1.25); break;
      case "]": this.setBrushSize(this.brushSize * 1.25 + 1); break;
      case "d": case "D": this.setProtect(!this.protect); break;
      case "Enter": if (this.tool === "polygon") this.closePolygon(); break;
      case "Escape": this.path = null; this.view.redraw(); break;
      case "0": this.view.fit(); this.view.redraw(); break;
      default: return;
    }
    e.preventDefault();
  }

  drawOverlay(ctx, view) {
    for (const handler of Object.values(this.handlers)) handler.drawOverlay(ctx, view);
    ctx.lineWidth = 1.5 * view.dpr;
    if (this.path && this.path.length) {
      ctx.strokeStyle = this.tool === "split" ? "#ff5050" : "#ffffff";
      ctx.beginPath();
      this.path.forEach(([x, y], k) => { const [sx, sy] = view.toScreen(x, y); if (k) ctx.lineTo(sx, sy); else ctx.moveTo(sx, sy); });
      if (this.cursor && this.tool === "polygon" && !this.dragging) ctx.lineTo(...view.toScreen(...this.cursor));
      ctx.stroke();
    }
    if (this.cursor && (this.tool === "brush" || this.tool === "eraser")) {
      const [sx, sy] = view.toScreen(...this.cursor);
      ctx.strokeStyle = this.tool === "eraser" ? "#ffb020" : "#ffffff";
      ctx.beginPath();
      ctx.arc(sx, sy, Math.max(1, (this.brushSize / 2) * view.zoom), 0, Math.PI * 2);
      ctx.stroke();
    }
  }
}
