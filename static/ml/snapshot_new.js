// snapshot_new.js — create the snapshot the preview showed: the form's selection goes to the
// REST API (POST datasets/), then the page of the new snapshot opens.

import { ApiClient, ApiError } from "../annotator/api.js";
import { readConfig } from "../qa/common.js";

const cfg = readConfig("snapshot-new-config");
const api = new ApiClient({ csrfToken: cfg.csrfToken });
const form = document.getElementById("snapshot-form");
const out = document.getElementById("snapshot-result");
const FILTERS = ["modality", "stain", "batch", "plate", "well", "site"];

function body() {
  const f = new FormData(form);
  const filters = {};
  for (const key of FILTERS) {
    const values = String(f.get(key) || "").split(",").map((v) => v.trim()).filter(Boolean);
    if (values.length) filters[key] = values;
  }
  const data = {
    name: f.get("name"), description: f.get("description") || "", group_by: f.get("group_by"),
    stratify_by: f.get("stratify_by") || null, include_gold: f.get("include_gold") === "on", filters,
    fractions: { train: Number(f.get("train")), val: Number(f.get("val")), test: Number(f.get("test")) },
  };
  if (f.get("seed") !== "") data.seed = Number(f.get("seed"));
  return data;
}

document.getElementById("create").addEventListener("click", async (ev) => {
  const button = ev.currentTarget;
  if (!form.reportValidity()) return;
  button.disabled = true;
  try {
    const s = await api.json(cfg.urls.snapshots, { method: "POST", body: JSON.stringify(body()), headers: { "Content-Type": "application/json" } });
    out.hidden = false; out.className = "qa-msg qa-msg-ok";
    out.textContent = `Snapshot ${s.name} v${s.version}: ${s.n_items} images, ${s.n_cells} cells.`;
    window.location.assign(`${cfg.urls.page}${s.id}/`);
  } catch (err) {
    out.hidden = false; out.className = "qa-msg qa-msg-err";
    out.textContent = err instanceof ApiError ? err.message : `Network error: ${err.message}`;
    button.disabled = false;
  }
});
document.body.dataset.mlReady = "1";
