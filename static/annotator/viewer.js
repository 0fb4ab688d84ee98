// viewer.js — draws a multi-channel 8/16-bit/float image with per-channel window/level and
// colour, and a label map as filled colours and/or outlines, with zoom and pan.
//
// Two full-resolution layers live in off-screen canvases: the image composite (redrawn
// when a window/level or colour changes) and the mask (redrawn only inside the dirty
// rectangle of each edit). The visible canvas is a view: both layers drawn with one
// transform, so a brush frame costs the dirty rectangle plus one composite.

export const COLOURS = {
  grey: [255, 255, 255], red: [255, 0, 0], green: [0, 255, 0], blue: [0, 0, 255],
  cyan: [0, 255, 255], magenta: [255, 0, 255], yellow: [255, 255, 0],
};
const DEFAULT_ORDER = { 1: ["grey"], 2: ["green", "magenta"], 3: ["red", "green", "blue"] };

function makeCanvas(w, h) {
  const c = document.createElement("canvas");
  c.width = w; c.height = h;
  return c;
}

/** Percentiles of one channel: a histogram for 8/16-bit, a strided sample otherwise. */
export function percentiles(plane, dtype, lowP, highP) {
  if (dtype === "uint8" || dtype === "uint16") {
    const hist = new Uint32Array(dtype === "uint8" ? 256 : 65536);
    for (let i = 0; i < plane.length; i++) hist[plane[i]]++;
    const lowN = (lowP / 100) * (plane.length - 1), highN = (highP / 100) * (plane.length - 1);
    let acc = 0, lo = 0, hi = hist.length - 1, haveLo = false;
    for (let v = 0; v < hist.length; v++) {
      acc += hist[v];
      if (!haveLo && acc > lowN) { lo = v; haveLo = true; }
      if (acc > highN) { hi = v; break; }
    }
    return [lo, hi];
  }
  const step = Math.max(1, Math.floor(plane.length / 200000));
  const sample = [];
  for (let i = 0; i < plane.length; i += step) if (Number.isFinite(plane[i])) sample.push(plane[i]);
  sample.sort((a, b) => a - b);
  if (!sample.length) return [0, 1];
  const at = (p) => sample[Math.min(sample.length - 1, Math.round((p / 100) * (sample.length - 1)))];
  return [at(lowP), at(highP)];
}

function dtypeRange(dtype) {
  return { uint8: [0, 255], int8: [-128, 127], uint16: [0, 65535], int16: [-32768, 32767] }[dtype] || null;
}

export class ImageLayer {
  constructor(raw) {
    this.dtype = raw.dtype;
    this.width = raw.width;
    this.height = raw.height;
    this.planes = raw.planes;
    this.range = dtypeRange(raw.dtype);
    const order = DEFAULT_ORDER[raw.channels] || raw.planes.map((_, c) => Object.keys(COLOURS)[(c % 6) + 1]);
    this.channels = raw.planes.map((_, c) => ({ visible: true, colour: order[c], min: 0, max: 1 }));
    this.canvas = makeCanvas(this.width, this.height);
    this.ctx = this.canvas.getContext("2d");
    this.imageData = this.ctx.createImageData(this.width, this.height);
    this.autoContrast();
  }

  autoContrast(lowP = 0.5, highP = 99.5) {
    this.planes.forEach((plane, c) => {
      let [lo, hi] = percentiles(plane, this.dtype, lowP, highP);
      if (hi <= lo) hi = lo + 1;
      this.channels[c].min = lo;
      this.channels[c].max = hi;
    });
  }

  /** Display value 0..255 of sample v under channel c's window (the maths tests check). */
  scale(c, v) {
    const { min, max } = this.channels[c];
    const t = (v - min) / (max - min);
    return t <= 0 ? 0 : t >= 1 ? 255 : Math.round(t * 255);
  }

  _lut(c) {
    const [lo, hi] = this.range;
    const { min, max } = this.channels[c];
    const lut = new Uint8Array(hi - lo + 1);
    const k = 255 / (max - min);
    for (let v = lo; v <= hi; v++) {
      const t = (v - min) * k;
      lut[v - lo] = t <= 0 ? 0 : t >= 255 ? 255 : Math.round(t);
    }
    return { lut, offset: -lo };
  }

  /** Recompute the composite (additive colours, clamped). */
  render() {
    const n = this.width * this.height;
    const out32 = new Uint32Array(this.imageData.data.buffer);
    const visible = this.channels.map((ch, c) => c).filter((c) => this.channels[c].visible);
    if (visible.length === 1 && this.range) {
      // One channel: a packed-colour LUT, one lookup per pixel.
      const c = visible[0];
      const { lut, offset } = this._lut(c);
      const [r, g, b] = COLOURS[this.channels[c].colour];
      const packed = new Uint32Array(lut.length);
      for (let k = 0; k < lut.length; k++) {
        const v = lut[k];
        packed[k] = (255 << 24) | (Math.round((b * v) / 255) << 16) | (Math.round((g * v) / 255) << 8) | Math.round((r * v) / 255);
      }
      const plane = this.planes[c];
      if (offset === 0) for (let i = 0; i < n; i++) out32[i] = packed[plane[i]];
      else for (let i = 0; i < n; i++) out32[i] = packed[plane[i] + offset];
    } else {
      const acc = new Uint16Array(n * 3);
      for (const c of visible) {
        const [r, g, b] = COLOURS[this.channels[c].colour];
        const plane = this.planes[c];
        if (this.range) {
          // Per-channel colour LUTs: the channel's display value times its colour, /255.
          const { lut, offset } = this._lut(c);
          const lr = new Uint8Array(lut.length), lg = new Uint8Array(lut.length), lb = new Uint8Array(lut.length);
          for (let k = 0; k < lut.length; k++) {
            lr[k] = Math.round((r * lut[k]) / 255); lg[k] = Math.round((g * lut[k]) / 255); lb[k] = Math.round((b * lut[k]) / 255);
          }
          for (let i = 0, j = 0; i < n; i++, j += 3) {
            const k = plane[i] + offset;
            acc[j] += lr[k]; acc[j + 1] += lg[k]; acc[j + 2] += lb[k];
          }
        } else {
          for (let i = 0, j = 0; i < n; i++, j += 3) {
            const v = this.scale(c, plane[i]);
            acc[j] += Math.round((r * v) / 255); acc[j + 1] += Math.round((g * v) / 255); acc[j + 2] += Math.round((b * v) / 255);
          }
        }
      }
      const out = this.imageData.data;
      for (let i = 0, j = 0, o = 0; i < n; i++, j += 3, o += 4) {
        out[o] = acc[j] > 255 ? 255 : acc[j];
        out[o + 1] = acc[j + 1] > 255 ? 255 : acc[j + 1];
        out[o + 2] = acc[j + 2] > 255 ? 255 : acc[j + 2];
        out[o + 3] = 255;
      }
    }
    this.ctx.putImageData(this.imageData, 0, 0);
  }

  /** RGBA of the composite at (x, y). */
  pixel(x, y) {
    const o = (y * this.width + x) * 4, d = this.imageData.data;
    return [d[o], d[o + 1], d[o + 2], d[o + 3]];
  }
}

/** A stable, well-spread colour per id (golden-angle hue). */
function idColour(id) {
  const h = (id * 137.508) % 360, s = 0.75, l = 0.55;
  const k = (n) => (n + h / 30) % 12;
  const a = s * Math.min(l, 1 - l);
  const f = (n) => Math.round(255 * (l - a * Math.max(-1, Math.min(k(n) - 3, Math.min(9 - k(n), 1)))));
  return [f(0), f(8), f(4)];
}

// The mask is drawn in tiles: a brush frame re-uploads only the one or two tiles it
// touched, where one 2048 x 2048 canvas would be copied whole by the compositor each frame.
const TILE = 256;

export class MaskLayer {
  constructor(labels) {
    this.labels = labels;
    this.out32 = new Uint32Array(labels.width * labels.height);
    this.tiles = [];
    for (let y = 0; y < labels.height; y += TILE) {
      for (let x = 0; x < labels.width; x += TILE) {
        const w = Math.min(TILE, labels.width - x), h = Math.min(TILE, labels.height - y);
        const canvas = makeCanvas(w, h);
        const ctx = canvas.getContext("2d");
        const imageData = ctx.createImageData(w, h);
        this.tiles.push({ x, y, w, h, canvas, ctx, imageData, data32: new Uint32Array(imageData.data.buffer) });
      }
    }
    this.mode = "both";
    this.selected = 0;
    this.flagged = new Set();
    this.marked = new Set();   // cells to look at (a reviewer's disputed cells): amber outlines
    this._pal = new Uint32Array(4096);
  }

  /** RGB of an id (computed once, kept in a typed array indexed by id). */
  rgb(id) {
    if (id >= this._pal.length) {
      const grown = new Uint32Array(Math.max(id + 1, this._pal.length * 2));
      grown.set(this._pal);
      this._pal = grown;
    }
    let c = this._pal[id];
    if (c === 0) {
      const [r, g, b] = idColour(id);
      c = 0x1000000 | (b << 16) | (g << 8) | r;   // bit 24 marks "computed"
      this._pal[id] = c;
    }
    return c & 0xffffff;
  }

  /** Give an id a fixed colour (its cell class), or its own colour back with null. */
  setColour(id, rgb) {
    this.rgb(id);   // grows the palette to hold id
    this._pal[id] = rgb ? 0x1000000 | (rgb[2] << 16) | (rgb[1] << 8) | rgb[0] : 0;
  }

  /** Redraw the rectangle (inclusive), grown by one pixel for outlines. */
  update(rect) {
    if (!rect) return;
    const w = this.labels.width, h = this.labels.height, d = this.labels.data, out = this.out32;
    const x0 = Math.max(0, rect.x0 - 1), y0 = Math.max(0, rect.y0 - 1);
    const x1 = Math.min(w - 1, rect.x1 + 1), y1 = Math.min(h - 1, rect.y1 + 1);
    const off = this.mode === "off";
    const fillA = (this.mode === "fill" ? 255 : this.mode === "both" ? 110 : 0) << 24;
    const lineA = (off ? 0 : 255) << 24;
    const sel = this.selected, flagged = this.flagged, anyFlag = flagged.size > 0;
    const marked = this.marked, anyMark = marked.size > 0;
    let lastId = -1, lastRgb = 0;
    for (let y = y0; y <= y1; y++) {
      const rowEdge = y === 0 || y === h - 1;
      for (let x = x0, i = y * w + x0; x <= x1; x++, i++) {
        const id = d[i];
        if (id === 0 || off) { out[i] = 0; continue; }
        if (id !== lastId) { lastId = id; lastRgb = this.rgb(id); }
        const edge = rowEdge || x === 0 || x === w - 1 ||
          d[i - 1] !== id || d[i + 1] !== id || d[i - w] !== id || d[i + w] !== id;
        if (!edge) { out[i] = fillA ? (fillA | lastRgb) >>> 0 : 0; continue; }
        if (id === sel) out[i] = 0xffffffff;                        // selected: white outline
        else if (anyFlag && flagged.has(id)) out[i] = 0xff2020ff;   // rule violation: red
        else if (anyMark && marked.has(id)) out[i] = 0xff00b4ff;    // marked for a look: amber
        else out[i] = (lineA | lastRgb) >>> 0;
      }
    }
    this._upload(x0, y0, x1, y1);
  }

  _upload(x0, y0, x1, y1) {
    const w = this.labels.width, out = this.out32;
    for (const t of this.tiles) {
      const ax = Math.max(x0, t.x), bx = Math.min(x1, t.x + t.w - 1);
      const ay = Math.max(y0, t.y), by = Math.min(y1, t.y + t.h - 1);
      if (ax > bx || ay > by) continue;
      for (let y = ay; y <= by; y++) {
        t.data32.set(out.subarray(y * w + ax, y * w + bx + 1), (y - t.y) * t.w + (ax - t.x));
      }
      t.ctx.putImageData(t.imageData, 0, 0, ax - t.x, ay - t.y, bx - ax + 1, by - ay + 1);
    }
  }

  /** RGBA of the mask layer at (x, y) (before the view's opacity). */
  pixel(x, y) {
    const v = this.out32[y * this.labels.width + x];
    return [v & 255, (v >>> 8) & 255, (v >>> 16) & 255, v >>> 24];
  }

  /** Draw the tiles that fall inside the view (ctx carries the image->screen transform). */
  drawTo(ctx, view) {
    const [ix0, iy0] = [-view.tx / view.zoom, -view.ty / view.zoom];
    const ix1 = ix0 + view.canvas.width / view.zoom, iy1 = iy0 + view.canvas.height / view.zoom;
    for (const t of this.tiles) {
      if (t.x > ix1 || t.y > iy1 || t.x + t.w < ix0 || t.y + t.h < iy0) continue;
      ctx.drawImage(t.canvas, t.x, t.y);
    }
  }

  updateAll() { this.update({ x0: 0, y0: 0, x1: this.labels.width - 1, y1: this.labels.height - 1 }); }
}

export class View {
  constructor(canvas, image, mask) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d", { alpha: false });
    this.image = image;
    this.mask = mask;
    this.zoom = 1; this.tx = 0; this.ty = 0;
    this.opacity = 0.45;
    this.overlay = null; // (ctx, view) => void, screen-space drawing
    this._pending = false;
    this.lastFrameMs = 0;
    this.frames = 0;
    new ResizeObserver(() => { this.resize(); this.redraw(); }).observe(canvas.parentElement);
    this.resize();
    this.fit();
  }

  resize() {
    const r = this.canvas.parentElement.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    this.canvas.width = Math.max(1, Math.round(r.width * dpr));
    this.canvas.height = Math.max(1, Math.round(r.height * dpr));
    this.dpr = dpr;
  }

  fit() {
    const w = this.canvas.width, h = this.canvas.height;
    this.zoom = Math.min(w / this.image.width, h / this.image.height) * 0.98;
    this.tx = (w - this.image.width * this.zoom) / 2;
    this.ty = (h - this.image.height * this.zoom) / 2;
  }

  /** Centre image point (cx, cy) at the given zoom (device pixels per image pixel). */
  centreOn(cx, cy, zoom = this.zoom) {
    this.zoom = zoom;
    this.tx = this.canvas.width / 2 - cx * zoom;
    this.ty = this.canvas.height / 2 - cy * zoom;
  }

  toImage(clientX, clientY) {
    const r = this.canvas.getBoundingClientRect();
    const sx = (clientX - r.left) * this.dpr, sy = (clientY - r.top) * this.dpr;
    return [(sx - this.tx) / this.zoom, (sy - this.ty) / this.zoom];
  }

  toScreen(x, y) { return [x * this.zoom + this.tx, y * this.zoom + this.ty]; }

  zoomAt(clientX, clientY, factor) {
    const [ix, iy] = this.toImage(clientX, clientY);
    const zoom = Math.min(64, Math.max(0.02, this.zoom * factor));
    const r = this.canvas.getBoundingClientRect();
    this.zoom = zoom;
    this.tx = (clientX - r.left) * this.dpr - ix * zoom;
    this.ty = (clientY - r.top) * this.dpr - iy * zoom;
  }

  /** Draw on the next animation frame (several requests in one frame draw once). */
  redraw() {
    this._needed = true;
    if (this._pending) return;
    this._pending = true;
    requestAnimationFrame(() => { this._pending = false; if (this._needed) this.draw(); });
  }

  draw() {
    this._needed = false;   // a frame already requested need not draw again
    const t0 = performance.now();
    const dirty = this.mask ? this.mask.labels.takeDirty() : null;
    if (dirty) this.mask.update(dirty);
    const ctx = this.ctx;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#111";
    ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    ctx.setTransform(this.zoom, 0, 0, this.zoom, this.tx, this.ty);
    ctx.imageSmoothingEnabled = this.zoom < 1;
    ctx.drawImage(this.image.canvas, 0, 0);
    if (this.mask && this.mask.mode !== "off" && this.opacity > 0) {
      ctx.imageSmoothingEnabled = false;
      ctx.globalAlpha = this.opacity;
      this.mask.drawTo(ctx, this);
      ctx.globalAlpha = 1;
    }
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    if (this.overlay) this.overlay(ctx, this);
    this.lastFrameMs = performance.now() - t0;
    this.frames++;
  }
}
