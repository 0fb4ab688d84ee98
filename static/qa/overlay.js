// overlay.js — the review page's comparison layer, drawn into one off-screen canvas:
// outlines of the consensus and of each annotation toggled on, flagged cells filled in the
// colour of their kind, a per-pixel disagreement map, or one mask filled (for blinking).

export const FLAG_COLOURS = {
  missed: [207, 34, 46], spurious: [130, 80, 223], merged: [191, 135, 0],
  split: [10, 126, 164], boundary: [26, 127, 55],
};
export const LAYER_COLOURS = [[255, 255, 255], [255, 90, 90], [90, 200, 255], [255, 214, 0], [120, 255, 120], [255, 120, 255]];

/** Mark the outline pixels of every object in labels (4-neighbourhood) with rgba. */
function outline(out32, labels, width, height, rgba) {
  for (let y = 0; y < height; y++) {
    for (let x = 0, i = y * width; x < width; x++, i++) {
      const id = labels[i];
      if (id === 0) continue;
      if (x === 0 || y === 0 || x === width - 1 || y === height - 1 ||
          labels[i - 1] !== id || labels[i + 1] !== id || labels[i - width] !== id || labels[i + width] !== id) {
        out32[i] = rgba;
      }
    }
  }
}

function pack([r, g, b], a = 255) { return ((a << 24) | (b << 16) | (g << 8) | r) >>> 0; }

/** Pixels where the annotations disagree on foreground: the share that drew it, 0..1 (NaN = all agree). */
export function disagreement(annotations, n) {
  const k = annotations.length;
  const share = new Float32Array(n).fill(NaN);
  if (k < 2) return share;
  for (let i = 0; i < n; i++) {
    let c = 0;
    for (let a = 0; a < k; a++) if (annotations[a][i] !== 0) c++;
    if (c > 0 && c < k) share[i] = c / k;
  }
  return share;
}

/** Golden-angle colour per id, as in the workspace's mask layer. */
function idRgb(id) {
  const h = (id * 137.508) % 360, s = 0.75, l = 0.55;
  const k = (m) => (m + h / 30) % 12;
  const a = s * Math.min(l, 1 - l);
  const f = (m) => Math.round(255 * (l - a * Math.max(-1, Math.min(k(m) - 3, Math.min(9 - k(m), 1)))));
  return [f(0), f(8), f(4)];
}

export class ComparisonLayer {
  /**
   * @param {number} width, height  image size
   * @param {{key: string, labels: Uint32Array|Uint16Array}[]} masks  consensus first, then annotations
   * @param {object[]} flags  the QA run's flags (annotation id, labels, kind, others)
   */
  constructor(width, height, masks, flags) {
    this.width = width; this.height = height;
    this.masks = masks;
    this.flags = flags;
    this.canvas = document.createElement("canvas");
    this.canvas.width = width; this.canvas.height = height;
    this.ctx = this.canvas.getContext("2d");
    this.imageData = this.ctx.createImageData(width, height);
    this.out32 = new Uint32Array(this.imageData.data.buffer);
    this.visible = new Set(["consensus"]);
    this.showFlags = true;
    this.showDisagreement = false;
    this.blink = null;         // key of the one mask shown filled while blinking
    this.selected = null;      // {key, id}: drawn white
    this._share = null;
    // What View expects of a mask layer.
    this.labels = { takeDirty: () => null };
    this.mode = "both";
  }

  byKey(key) { return this.masks.find((m) => m.key === String(key)); }

  colourOf(key) { return LAYER_COLOURS[Math.max(0, this.masks.findIndex((m) => m.key === String(key))) % LAYER_COLOURS.length]; }

  render() {
    const { width, height, out32 } = this;
    const n = width * height;
    out32.fill(0);
    if (this.blink) {
      const m = this.byKey(this.blink);
      for (let i = 0; i < n; i++) if (m.labels[i]) out32[i] = pack(idRgb(m.labels[i]), 150);
      outline(out32, m.labels, width, height, pack([255, 255, 255]));
    } else {
      if (this.showDisagreement) {
        if (!this._share) this._share = disagreement(this.masks.slice(1).map((m) => m.labels), n);
        const s = this._share;
        for (let i = 0; i < n; i++) {
          const v = s[i];
          if (v === v) out32[i] = pack([255, Math.round(200 * (1 - v)), Math.round(255 * v)], 200);
        }
      }
      if (this.showFlags) this._fillFlags();
      for (const m of this.masks) {
        if (this.visible.has(m.key)) outline(out32, m.labels, width, height, pack(this.colourOf(m.key)));
      }
    }
    if (this.selected) {
      const m = this.byKey(this.selected.key);
      const id = this.selected.id;
      if (m) for (let i = 0; i < n; i++) if (m.labels[i] === id) out32[i] = pack([255, 255, 255], 170);
    }
    this.ctx.putImageData(this.imageData, 0, 0);
  }

  _fillFlags() {
    const n = this.width * this.height;
    for (const f of this.flags) {
      const colour = pack(FLAG_COLOURS[f.kind] || [200, 200, 200], 140);
      // A flagged object of the flagged annotation, or (missed) the others' objects it left out.
      const targets = f.labels && f.labels.length ? [[f.annotation, f.labels]] : (f.others || []).map(([a, l]) => [a, [l]]);
      for (const [annotation, ids] of targets) {
        const m = this.byKey(annotation);
        if (!m) continue;
        const want = new Set(ids);
        for (let i = 0; i < n; i++) if (want.has(m.labels[i])) this.out32[i] = colour;
      }
    }
  }

  drawTo(ctx) { ctx.drawImage(this.canvas, 0, 0); }
}
