// classes.js — per-cell classes. When the project defines cell classes, a picker (or the
// keys 1–9) sets the selected cell's class; classed cells take their class's colour and a
// legend counts them. Names are only ever written as text. Classes ride with the draft
// state and with the submission, as a COCO document: the submit API's format that carries
// a class per instance (a label-image PNG carries none).

const COLOURS = [
  [255, 159, 10], [48, 209, 88], [10, 132, 255], [255, 55, 95],
  [191, 90, 242], [100, 210, 255], [255, 214, 10], [172, 142, 104],
];

export class CellClasses {
  /**
   * @param {object} o
   * @param {string[]} o.names         the project's cell classes
   * @param {object} o.initial          {"<id>": "<class>"} from the draft or the revision
   * @param {LabelMap} o.labels
   * @param {MaskLayer} o.mask
   * @param {object} o.ui               {picker, legend, note}
   * @param {() => void} o.onChange     a class changed (autosave, redraw)
   * @param {string} [o.disabledNote]   what to say when there are no classes to pick
   */
  constructor({ names, initial, labels, mask, ui, onChange, disabledNote }) {
    this.names = names;
    this.disabledNote = disabledNote || "This project defines no cell classes: cells are not classified.";
    this.labels = labels;
    this.mask = mask;
    this.ui = ui;
    this.onChange = onChange;
    this.of = new Map();
    for (const [id, name] of Object.entries(initial || {})) {
      if (names.includes(name)) this.of.set(Number(id), name);
    }
    this.selected = 0;
    this.build();
    for (const [id, name] of this.of) this.mask.setColour(id, this.colour(name));
    if (this.of.size) labels.markDirty(0, 0, labels.width - 1, labels.height - 1);
    this.legend();
  }

  get enabled() { return this.names.length > 0; }

  colour(name) { return COLOURS[this.names.indexOf(name) % COLOURS.length]; }

  build() {
    const { picker, note } = this.ui;
    if (!this.enabled) {
      picker.hidden = true;
      note.textContent = this.disabledNote;
      return;
    }
    const none = document.createElement("option");
    none.value = ""; none.textContent = "(no class)";
    picker.append(none);
    this.names.forEach((name, k) => {
      const option = document.createElement("option");
      option.value = name;
      option.textContent = k < 9 ? `${k + 1} · ${name}` : name;
      picker.append(option);
    });
    picker.addEventListener("change", () => this.set(this.selected, picker.value || null));
    document.addEventListener("keydown", (e) => {
      const tag = e.target && e.target.tagName;
      if (["INPUT", "SELECT", "TEXTAREA"].includes(tag) || e.ctrlKey || e.metaKey || e.altKey) return;
      if (document.querySelector("dialog[open]")) return;
      const k = Number(e.key);
      if (Number.isInteger(k) && k >= 1 && k <= Math.min(9, this.names.length) && this.selected) {
        this.set(this.selected, this.names[k - 1]);
        e.preventDefault();
      }
    });
    this.select(0);
  }

  /** The editor's selection changed. */
  select(id) {
    this.selected = id;
    if (!this.enabled) return;
    const { picker, note } = this.ui;
    picker.disabled = !id;
    picker.value = (id && this.of.get(id)) || "";
    note.textContent = id ? `Class of cell ${id}:` : "Select a cell (S) to set its class.";
  }

  set(id, name) {
    if (!id || !this.labels.areas.has(id)) return;
    if (name && !this.names.includes(name)) return;
    if (name) this.of.set(id, name); else this.of.delete(id);
    this.mask.setColour(id, name ? this.colour(name) : null);
    const box = this.labels.bbox(id);
    this.labels.markDirty(box.x0, box.y0, box.x1, box.y1);
    this.select(id);
    this.legend();
    this.onChange();
  }

  /** After an edit: cells that no longer exist lose their class (their id may be reused). */
  prune() {
    let changed = false;
    for (const id of [...this.of.keys()]) {
      if (this.labels.areas.has(id)) continue;
      this.of.delete(id);
      this.mask.setColour(id, null);
      changed = true;
    }
    if (changed) this.legend();
  }

  /** {"<id>": "<class>"} of the cells that still exist. */
  present() {
    const out = {};
    for (const [id, name] of this.of) if (this.labels.areas.has(id)) out[id] = name;
    return out;
  }

  /** The legend: each class's colour and how many existing cells have it. */
  legend() {
    const { legend } = this.ui;
    legend.replaceChildren();
    if (!this.enabled) return;
    const counts = new Map(this.names.map((n) => [n, 0]));
    for (const [id, name] of this.of) if (this.labels.areas.has(id)) counts.set(name, counts.get(name) + 1);
    for (const [name, n] of counts) {
      const item = document.createElement("li");
      const swatch = document.createElement("span");
      swatch.className = "ws-swatch";
      swatch.style.background = `rgb(${this.colour(name).join(",")})`;
      const text = document.createElement("span");
      text.textContent = `${name}: ${n}`;
      item.append(swatch, text);
      legend.append(item);
    }
  }
}

/**
 * The label map as a COCO document: one annotation per id, its mask as an uncompressed
 * run-length encoding (column-major, starting with background), its class as category.
 */
export function cocoDocument(labels, classOf, names, fileName = "workspace.png") {
  const { width: w, height: h, data } = labels;
  const boxes = new Map();
  for (let y = 0, i = 0; y < h; y++) {
    for (let x = 0; x < w; x++, i++) {
      const id = data[i];
      if (!id) continue;
      const b = boxes.get(id);
      if (!b) boxes.set(id, [x, y, x, y]);
      else {
        if (x < b[0]) b[0] = x; if (x > b[2]) b[2] = x;
        if (y > b[3]) b[3] = y;
      }
    }
  }
  const categories = names.map((name, k) => ({ id: k + 1, name }));
  const annotations = [];
  for (const [id, [x0, y0, x1, y1]] of [...boxes.entries()].sort((a, b) => a[0] - b[0])) {
    const counts = [];
    let end = 0, runStart = -1, runEnd = -1;
    for (let x = x0; x <= x1; x++) {
      for (let y = y0; y <= y1; y++) {
        if (data[y * w + x] !== id) continue;
        const p = x * h + y;
        if (p === runEnd) { runEnd++; continue; }
        if (runStart >= 0) { counts.push(runStart - end, runEnd - runStart); end = runEnd; }
        runStart = p; runEnd = p + 1;
      }
    }
    counts.push(runStart - end, runEnd - runStart, w * h - runEnd);
    const name = classOf[id];
    annotations.push({
      id: annotations.length + 1, image_id: 1, iscrowd: 0,
      category_id: name ? names.indexOf(name) + 1 : null,
      segmentation: { size: [h, w], counts },
    });
  }
  return { images: [{ id: 1, file_name: fileName, width: w, height: h }], categories, annotations };
}
