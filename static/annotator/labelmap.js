// labelmap.js — the mask as state: one id per pixel (0 = background) in a Uint32Array.
// Cells cannot overlap by construction. Every write goes through set(), which records the
// pixel's first old value in the current stroke (for undo) and grows the dirty rectangle
// (for the renderer).

export class LabelMap {
  constructor(width, height, data = null) {
    this.width = width;
    this.height = height;
    this.data = new Uint32Array(width * height);
    if (data) this.data.set(data);
    this.areas = new Map();
    this._stamp = null;      // per-pixel stroke stamps, allocated on the first stroke
    this._strokeId = 0;
    this._recording = false;
    this._idx = []; this._before = [];
    this.dirty = null;
    this.recount();
  }

  /** Recompute the area of every id from the pixels (after loading or replacing them). */
  recount() {
    const d = this.data;
    let max = 0;
    for (let i = 0; i < d.length; i++) if (d[i] > max) max = d[i];
    const areas = new Map();
    if (max < (1 << 22)) {
      const counts = new Uint32Array(max + 1);
      for (let i = 0; i < d.length; i++) counts[d[i]]++;
      for (let id = 1; id <= max; id++) if (counts[id]) areas.set(id, counts[id]);
    } else {
      for (let i = 0; i < d.length; i++) if (d[i]) areas.set(d[i], (areas.get(d[i]) || 0) + 1);
    }
    this.areas = areas;
    this.markDirty(0, 0, this.width - 1, this.height - 1);
  }

  /** Replace every pixel (a loaded draft or revision); not undoable. */
  load(ids) {
    this.data.set(ids);
    this.recount();
  }

  get cellCount() { return this.areas.size; }

  maxId() {
    let m = 0;
    for (const id of this.areas.keys()) if (id > m) m = id;
    return m;
  }

  markDirty(x0, y0, x1, y1) {
    const d = this.dirty;
    if (!d) this.dirty = { x0, y0, x1, y1 };
    else {
      if (x0 < d.x0) d.x0 = x0; if (y0 < d.y0) d.y0 = y0;
      if (x1 > d.x1) d.x1 = x1; if (y1 > d.y1) d.y1 = y1;
    }
  }

  takeDirty() { const d = this.dirty; this.dirty = null; return d; }

  beginStroke() {
    if (!this._stamp) this._stamp = new Uint32Array(this.width * this.height);
    this._strokeId = (this._strokeId + 1) >>> 0 || 1;
    if (this._strokeId === 1) this._stamp.fill(0);
    this._recording = true;
    this._idx = []; this._before = [];
    this._box = null;
  }

  /** Finish the stroke: a diff {indices, before, after} of the pixels it changed, or null. */
  endStroke() {
    this._recording = false;
    const n = this._idx.length;
    if (n === 0) return null;
    const indices = Uint32Array.from(this._idx);
    const before = Uint32Array.from(this._before);
    const after = new Uint32Array(n);
    let changed = 0;
    for (let k = 0; k < n; k++) {
      after[k] = this.data[indices[k]];
      if (after[k] !== before[k]) changed++;
    }
    this._idx = []; this._before = [];
    if (changed === 0) return null;
    return { indices, before, after };
  }

  set(i, value) {
    const old = this.data[i];
    if (old === value) return;
    if (this._recording && this._stamp[i] !== this._strokeId) {
      this._stamp[i] = this._strokeId;
      this._idx.push(i); this._before.push(old);
    }
    this.data[i] = value;
    if (old !== 0) {
      const a = this.areas.get(old) - 1;
      if (a > 0) this.areas.set(old, a); else this.areas.delete(old);
    }
    if (value !== 0) this.areas.set(value, (this.areas.get(value) || 0) + 1);
  }

  /** Apply one side of a diff (undo: "before", redo: "after"). */
  applyDiff(diff, side) {
    const values = diff[side];
    const w = this.width;
    let x0 = Infinity, y0 = Infinity, x1 = -1, y1 = -1;
    for (let k = 0; k < diff.indices.length; k++) {
      const i = diff.indices[k];
      this.set(i, values[k]);
      const x = i % w, y = (i / w) | 0;
      if (x < x0) x0 = x; if (x > x1) x1 = x; if (y < y0) y0 = y; if (y > y1) y1 = y;
    }
    if (x1 >= 0) this.markDirty(x0, y0, x1, y1);
  }

  /** May `value` be written over pixel i? Protect mode keeps other cells intact. */
  static allowed(cur, value, protect, activeId) {
    if (!protect) return true;
    if (value === 0) return cur === activeId;       // protected eraser removes only the active cell
    return cur === 0 || cur === value;               // protected brush paints background only
  }

  /** Paint a capsule (segment with radius r) — one brush/eraser step, without gaps. */
  paintSegment(ax, ay, bx, by, r, value, { protect = false, activeId = value } = {}) {
    const w = this.width, h = this.height;
    const x0 = Math.max(0, Math.floor(Math.min(ax, bx) - r)), x1 = Math.min(w - 1, Math.ceil(Math.max(ax, bx) + r));
    const y0 = Math.max(0, Math.floor(Math.min(ay, by) - r)), y1 = Math.min(h - 1, Math.ceil(Math.max(ay, by) + r));
    if (x0 > x1 || y0 > y1) return;
    const dx = bx - ax, dy = by - ay, len2 = dx * dx + dy * dy, r2 = r * r;
    const d = this.data;
    for (let y = y0; y <= y1; y++) {
      const py = y + 0.5;
      for (let x = x0; x <= x1; x++) {
        const px = x + 0.5;
        let t = len2 > 0 ? ((px - ax) * dx + (py - ay) * dy) / len2 : 0;
        t = t < 0 ? 0 : t > 1 ? 1 : t;
        const ex = px - (ax + t * dx), ey = py - (ay + t * dy);
        if (ex * ex + ey * ey > r2) continue;
        const i = y * w + x;
        const cur = d[i];
        if (cur === value || !LabelMap.allowed(cur, value, protect, activeId)) continue;
        this.set(i, value);
      }
    }
    this.markDirty(x0, y0, x1, y1);
  }

  /** Fill the 4-connected background region at (x, y) if it does not reach the image border. */
  fillHole(x, y, value, { maxArea = Infinity } = {}) {
    const w = this.width, h = this.height, d = this.data;
    const start = y * w + x;
    if (d[start] !== 0) return { filled: 0, reason: "click inside a hole or an enclosed background region" };
    const seen = new Uint8Array(w * h);
    const stack = [start];
    const region = [];
    seen[start] = 1;
    let border = false;
    while (stack.length) {
      const i = stack.pop();
      region.push(i);
      if (region.length > maxArea) return { filled: 0, reason: "the region is too large to fill" };
      const px = i % w, py = (i / w) | 0;
      if (px === 0 || py === 0 || px === w - 1 || py === h - 1) border = true;
      if (px > 0 && !seen[i - 1] && d[i - 1] === 0) { seen[i - 1] = 1; stack.push(i - 1); }
      if (px < w - 1 && !seen[i + 1] && d[i + 1] === 0) { seen[i + 1] = 1; stack.push(i + 1); }
      if (py > 0 && !seen[i - w] && d[i - w] === 0) { seen[i - w] = 1; stack.push(i - w); }
      if (py < h - 1 && !seen[i + w] && d[i + w] === 0) { seen[i + w] = 1; stack.push(i + w); }
      if (border) return { filled: 0, reason: "this background region reaches the image border; fill only closes holes" };
    }
    let x0 = w, y0 = h, x1 = 0, y1 = 0;
    for (const i of region) {
      this.set(i, value);
      const px = i % w, py = (i / w) | 0;
      if (px < x0) x0 = px; if (px > x1) x1 = px; if (py < y0) y0 = py; if (py > y1) y1 = py;
    }
    this.markDirty(x0, y0, x1, y1);
    return { filled: region.length };
  }

  /** Fill a polygon (image coordinates, even-odd rule at pixel centres). */
  fillPolygon(points, value, { protect = false, activeId = value } = {}) {
    if (points.length < 3) return 0;
    const w = this.width, h = this.height, d = this.data;
    let ymin = Infinity, ymax = -Infinity;
    for (const [, y] of points) { if (y < ymin) ymin = y; if (y > ymax) ymax = y; }
    const y0 = Math.max(0, Math.floor(ymin)), y1 = Math.min(h - 1, Math.ceil(ymax));
    let painted = 0, bx0 = w, bx1 = -1;
    const xs = [];
    for (let y = y0; y <= y1; y++) {
      const py = y + 0.5;
      xs.length = 0;
      for (let k = 0, j = points.length - 1; k < points.length; j = k++) {
        const [xa, ya] = points[j], [xb, yb] = points[k];
        if ((ya <= py && yb > py) || (yb <= py && ya > py)) xs.push(xa + ((py - ya) / (yb - ya)) * (xb - xa));
      }
      xs.sort((a, b) => a - b);
      for (let k = 0; k + 1 < xs.length; k += 2) {
        const xa = Math.max(0, Math.ceil(xs[k] - 0.5)), xb = Math.min(w - 1, Math.floor(xs[k + 1] - 0.5));
        for (let x = xa; x <= xb; x++) {
          const i = y * w + x, cur = d[i];
          if (cur === value || !LabelMap.allowed(cur, value, protect, activeId)) continue;
          this.set(i, value);
          painted++;
          if (x < bx0) bx0 = x; if (x > bx1) bx1 = x;
        }
      }
    }
    if (painted) this.markDirty(bx0, y0, bx1, y1);
    return painted;
  }

  /**
   * Write `value` where a full-size 0/1 `mask` is set, inside its inclusive bbox
   * [x0, y0, x1, y1] (an assist proposal). Protect mode keeps other cells' pixels.
   * Returns the pixels written.
   */
  paintMask(mask, [x0, y0, x1, y1], value, { protect = false } = {}) {
    const w = this.width, d = this.data;
    x0 = Math.max(0, x0); y0 = Math.max(0, y0);
    x1 = Math.min(w - 1, x1); y1 = Math.min(this.height - 1, y1);
    let painted = 0;
    for (let y = y0; y <= y1; y++) {
      for (let x = x0, i = y * w + x0; x <= x1; x++, i++) {
        if (!mask[i] || d[i] === value || !LabelMap.allowed(d[i], value, protect, value)) continue;
        this.set(i, value);
        painted++;
      }
    }
    if (painted) this.markDirty(x0, y0, x1, y1);
    return painted;
  }

  /** Bounding box {x0, y0, x1, y1} of one id, or null when absent. */
  bbox(id) {
    if (!this.areas.has(id)) return null;
    const w = this.width, d = this.data;
    let x0 = w, y0 = this.height, x1 = -1, y1 = -1;
    for (let i = 0; i < d.length; i++) {
      if (d[i] !== id) continue;
      const x = i % w, y = (i / w) | 0;
      if (x < x0) x0 = x; if (x > x1) x1 = x; if (y < y0) y0 = y; if (y > y1) y1 = y;
    }
    return { x0, y0, x1, y1 };
  }

  /** Rewrite every pixel of id `from` (within its bbox) to `to`; returns pixels changed. */
  replace(from, to) {
    const box = this.bbox(from);
    if (!box) return 0;
    const w = this.width, d = this.data;
    let n = 0;
    for (let y = box.y0; y <= box.y1; y++) {
      for (let x = box.x0, i = y * w + box.x0; x <= box.x1; x++, i++) {
        if (d[i] === from) { this.set(i, to); n++; }
      }
    }
    this.markDirty(box.x0, box.y0, box.x1, box.y1);
    return n;
  }

  /**
   * Split cell `id` along a polyline: the line's pixels (4-connected, so the parts are
   * separate under 4- and 8-connectivity) become background. Of the pieces the line
   * touches, the largest keeps `id` and each other gets a new id (the first from
   * `newId()`, then consecutive); pieces the line does not touch keep `id`. Returns the
   * ids of the pieces the line touches.
   */
  split(id, points, newId) {
    const box = this.bbox(id);
    if (!box || points.length < 2) return [];
    const w = this.width, d = this.data;
    const bw = box.x1 - box.x0 + 1, bh = box.y1 - box.y0 + 1;
    const cutMask = new Uint8Array(bw * bh);
    const cut = (x, y) => {
      if (x < box.x0 || y < box.y0 || x > box.x1 || y > box.y1 || d[y * w + x] !== id) return;
      this.set(y * w + x, 0);
      cutMask[(y - box.y0) * bw + (x - box.x0)] = 1;
    };
    for (let k = 1; k < points.length; k++) {
      let [x, y] = points[k - 1].map(Math.floor);
      const [xe, ye] = points[k].map(Math.floor);
      const sx = Math.sign(xe - x), sy = Math.sign(ye - y);
      const dx = Math.abs(xe - x), dy = Math.abs(ye - y);
      cut(x, y);
      // 4-connected walk (never a diagonal move), so the parts cannot touch diagonally.
      for (let ix = 0, iy = 0; ix < dx || iy < dy;) {
        if ((0.5 + ix) / dx < (0.5 + iy) / dy) { x += sx; ix++; } else { y += sy; iy++; }
        cut(x, y);
      }
    }
    // 4-connected components of what is left of the cell, inside its bbox; note which
    // ones border the cut.
    const comp = new Int32Array(bw * bh).fill(-1);
    const sizes = [], touches = [];
    const stack = [];
    const at = (b) => d[(box.y0 + ((b / bw) | 0)) * w + box.x0 + (b % bw)];
    for (let b0 = 0; b0 < comp.length; b0++) {
      if (comp[b0] !== -1 || at(b0) !== id) continue;
      const c = sizes.length; sizes.push(0); touches.push(false);
      comp[b0] = c; stack.push(b0);
      while (stack.length) {
        const q = stack.pop(); sizes[c]++;
        const qx = q % bw, qy = (q / bw) | 0;
        const nbrs = [qx > 0 ? q - 1 : -1, qx < bw - 1 ? q + 1 : -1, qy > 0 ? q - bw : -1, qy < bh - 1 ? q + bw : -1];
        for (const nb of nbrs) {
          if (nb < 0) continue;
          if (cutMask[nb]) { touches[c] = true; continue; }
          if (comp[nb] !== -1 || at(nb) !== id) continue;
          comp[nb] = c; stack.push(nb);
        }
      }
    }
    const cutParts = sizes.map((_, c) => c).filter((c) => touches[c]);
    this.markDirty(box.x0, box.y0, box.x1, box.y1);
    if (cutParts.length <= 1) return cutParts.length ? [id] : [];
    const keep = cutParts.reduce((a, c) => (sizes[c] > sizes[a] ? c : a), cutParts[0]);
    const ids = new Map();
    let next = newId();
    for (const c of cutParts) ids.set(c, c === keep ? id : next++);
    for (let b = 0; b < comp.length; b++) {
      const c = comp[b];
      if (c < 0 || c === keep || !ids.has(c)) continue;
      this.set((box.y0 + ((b / bw) | 0)) * w + box.x0 + (b % bw), ids.get(c));
    }
    return [...ids.values()];
  }
}
