// rules.js — the guideline's rule check before submit: POST the mask with dry_run=true and
// show the violations on the cells. Servers without the dry run are told apart by their
// "Unknown field" answer and said so, never silently skipped.

import { ApiError } from "./api.js";

export class RuleCheck {
  constructor({ api, url, list, note, onSelectCell }) {
    this.api = api;
    this.url = url;
    this.list = list;
    this.note = note;
    this.onSelectCell = onSelectCell;
    this.available = null;   // unknown until the first check
    this.violations = [];
  }

  get blocking() { return this.violations.filter((v) => v.severity === "blocking"); }

  /** Run the dry run with `form` (the submit body); returns the violations, or null if unavailable. */
  async check(form) {
    form.set("dry_run", "true");
    try {
      const body = await this.api.json(this.url, { method: "POST", body: form });
      this.available = true;
      this.show(Array.isArray(body?.violations) ? body.violations : []);
      return this.violations;
    } catch (err) {
      if (err instanceof ApiError && err.status === 400 && err.body && err.body.dry_run) {
        this.available = false;
        this.violations = [];
        this.list.replaceChildren();
        this.note.textContent = "Rule check is not available on this server: violations will only show when you submit.";
        this.note.className = "ws-small ws-note-warn";
        return null;
      }
      if (err instanceof ApiError && err.status === 400 && err.body && Array.isArray(err.body.violations)) {
        this.available = true;
        this.show(err.body.violations);
        return this.violations;
      }
      throw err;
    }
  }

  /** Show violations (also those a real submit was refused with). */
  show(violations) {
    this.violations = violations;
    this.list.replaceChildren();
    for (const v of violations) {
      const li = document.createElement("li");
      li.className = v.severity === "blocking" ? "blocking" : "warning";
      li.append(`${v.severity === "blocking" ? "Blocking" : "Warning"} · ${v.rule}: ${v.message} `);
      for (const id of (v.cells || []).slice(0, 20)) {
        const b = document.createElement("button");
        b.type = "button";
        b.textContent = `#${id}`;
        b.addEventListener("click", () => this.onSelectCell(id));
        li.append(b, " ");
      }
      this.list.append(li);
    }
    const nb = this.blocking.length;
    this.note.className = "ws-small " + (nb ? "ws-note-error" : "muted");
    this.note.textContent = violations.length
      ? `${nb} blocking, ${violations.length - nb} warning(s)${nb ? ": fix the cells in red before submitting." : "."}`
      : "No rule violations.";
  }

  /** Ids of every cell named by a violation (drawn in red). */
  flaggedCells() {
    const ids = new Set();
    for (const v of this.violations) for (const id of v.cells || []) ids.add(id);
    return ids;
  }
}
