// autosave.js — keep the server's draft of this assignment current: save a little after
// the last edit (one request in flight at a time). The page restores it after a reload.

import { ApiError } from "./api.js";

export class Autosave {
  /**
   * @param {object} o
   * @param {ApiClient} o.api
   * @param {string} o.url            the draft endpoint (GET/PUT/DELETE)
   * @param {() => Promise<FormData>} o.payload  builds the PUT body
   * @param {(text: string, kind?: string) => void} o.status
   */
  constructor({ api, url, payload, status, delayMs = 1500 }) {
    this.api = api;
    this.url = url;
    this.payload = payload;
    this.status = status;
    this.delayMs = delayMs;
    this.dirty = false;
    this.inFlight = null;
    this.timer = null;
    this.saves = 0;
    this.lastError = null;
    this.stopped = false;
    window.addEventListener("beforeunload", (e) => {
      if (this.dirty || this.inFlight) { e.preventDefault(); e.returnValue = ""; }
    });
  }

  /** Something changed: save after `delayMs` without further changes. */
  touch() {
    if (this.stopped) return;
    this.dirty = true;
    this.status("unsaved changes", "muted");
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.flush(), this.delayMs);
  }

  /** Save now if there is anything unsaved; resolves when the server has it. */
  async flush() {
    clearTimeout(this.timer);
    if (this.inFlight) { await this.inFlight; }
    if (!this.dirty || this.stopped) return;
    this.dirty = false;
    this.status("saving…", "muted");
    this.inFlight = (async () => {
      try {
        const body = await this.payload();
        await this.api.json(this.url, { method: "PUT", body });
        this.saves++;
        this.lastError = null;
        this.status(`draft saved ${new Date().toLocaleTimeString()}`, "ok");
      } catch (err) {
        this.dirty = true;
        this.lastError = err;
        if (err instanceof ApiError && err.status === 409) {
          this.stopped = true;
          this.status(`not saved: ${err.message}`, "error");
        } else {
          this.status(`draft not saved (${err.message}); retrying`, "error");
          this.timer = setTimeout(() => this.flush(), 5000);
        }
      } finally {
        this.inFlight = null;
      }
    })();
    await this.inFlight;
  }

  async discard() {
    clearTimeout(this.timer);
    this.dirty = false;
    this.stopped = true;
    try { await this.api.json(this.url, { method: "DELETE" }); } catch { /* a stale draft is harmless */ }
  }
}
