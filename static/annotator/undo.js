// undo.js — per-stroke undo/redo over label-map diffs (changed pixels only, never full copies).

export class UndoStack {
  constructor({ limit = 200, maxBytes = 256 * 1024 * 1024 } = {}) {
    this.limit = limit;
    this.maxBytes = maxBytes;
    this.done = [];
    this.undone = [];
    this.bytes = 0;
  }

  static size(diff) { return diff.indices.byteLength * 3; }

  push(diff, label = "edit") {
    if (!diff) return;
    diff.label = label;
    this.done.push(diff);
    this.bytes += UndoStack.size(diff);
    for (const d of this.undone) this.bytes -= UndoStack.size(d);
    this.undone = [];
    while (this.done.length > this.limit || (this.bytes > this.maxBytes && this.done.length > 1)) {
      this.bytes -= UndoStack.size(this.done.shift());
    }
  }

  get canUndo() { return this.done.length > 0; }
  get canRedo() { return this.undone.length > 0; }

  undo(labels) {
    const diff = this.done.pop();
    if (!diff) return null;
    labels.applyDiff(diff, "before");
    this.undone.push(diff);
    return diff;
  }

  redo(labels) {
    const diff = this.undone.pop();
    if (!diff) return null;
    labels.applyDiff(diff, "after");
    this.done.push(diff);
    return diff;
  }
}
