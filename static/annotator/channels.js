// channels.js — per-channel controls: on/off, colour, min/max (number + slider), auto-contrast.

import { COLOURS } from "./viewer.js";

function el(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v;
    else if (k === "className") node.className = v;
    else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

export class ChannelControls {
  /** Mount on `root`; `onChange({live})` after any change (the image must re-render;
   * `live` while a slider is dragged, when once per frame is enough). */
  constructor(root, image, onChange) {
    this.root = root;
    this.image = image;
    this.onChange = onChange;
    this.rows = [];
    this.build();
  }

  build() {
    this.root.replaceChildren();
    const [lo, hi] = this.image.range || [null, null];
    this.image.channels.forEach((ch, c) => {
      const visible = el("input", { type: "checkbox", id: `ch-${c}-on`, "aria-label": `Show channel ${c + 1}` });
      visible.checked = ch.visible;
      const colour = el("select", { id: `ch-${c}-colour`, "aria-label": `Colour of channel ${c + 1}` },
        Object.keys(COLOURS).map((name) => el("option", { value: name, text: name })));
      colour.value = ch.colour;
      const range = (which) => {
        const num = el("input", { type: "number", id: `ch-${c}-${which}`, "aria-label": `${which} of channel ${c + 1}`, step: "any" });
        const slider = el("input", { type: "range", id: `ch-${c}-${which}-slider`, "aria-label": `${which} slider of channel ${c + 1}` });
        if (lo !== null) { slider.min = lo; slider.max = hi; slider.step = 1; }
        return { num, slider };
      };
      const min = range("min"), max = range("max");
      const row = el("div", { className: "ws-channel", "data-channel": String(c) }, [
        el("div", { className: "ws-channel-head" }, [visible, el("span", { text: `Ch ${c + 1}` }), colour]),
        el("div", { className: "ws-channel-range" }, [el("span", { text: "min" }), min.slider, min.num]),
        el("div", { className: "ws-channel-range" }, [el("span", { text: "max" }), max.slider, max.num]),
      ]);
      this.root.append(row);
      this.rows.push({ visible, colour, min, max });
      visible.addEventListener("change", () => { ch.visible = visible.checked; this.onChange(); });
      colour.addEventListener("change", () => { ch.colour = colour.value; this.onChange(); });
      for (const [which, ctl] of [["min", min], ["max", max]]) {
        const apply = (value, live = false) => {
          const v = Number(value);
          if (!Number.isFinite(v)) return;
          ch[which] = v;
          if (ch.max <= ch.min) { if (which === "min") ch.max = ch.min + 1; else ch.min = ch.max - 1; }
          this.sync();
          this.onChange({ live });
        };
        ctl.num.addEventListener("change", () => apply(ctl.num.value));
        // Dragging a slider fires many events per frame: render once per frame meanwhile.
        ctl.slider.addEventListener("input", () => apply(ctl.slider.value, true));
        ctl.slider.addEventListener("change", () => apply(ctl.slider.value));
      }
    });
    this.sync();
  }

  /** Show the image's current channel settings in the controls. */
  sync() {
    this.image.channels.forEach((ch, c) => {
      const row = this.rows[c];
      row.visible.checked = ch.visible;
      row.colour.value = ch.colour;
      row.min.num.value = String(ch.min); row.max.num.value = String(ch.max);
      if (this.image.range) { row.min.slider.value = String(ch.min); row.max.slider.value = String(ch.max); }
    });
  }
}
