// api.js — the workspace's client of the CellCurate REST API (session auth + CSRF token).

import { decodeLabelPng } from "./png.js";

export class ApiError extends Error {
  constructor(status, body, message) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

/** Flatten a DRF error body ({"field": ["msg"], "detail": "..."}) into one readable line. */
export function errorMessage(body, status) {
  if (!body || typeof body !== "object") return `HTTP ${status}`;
  if (typeof body.detail === "string") return body.detail;
  const parts = [];
  for (const [key, value] of Object.entries(body)) {
    if (key === "code") continue;
    const text = Array.isArray(value) ? value.join(" ") : typeof value === "string" ? value : JSON.stringify(value);
    parts.push(`${key}: ${text}`);
  }
  return parts.join("; ") || `HTTP ${status}`;
}

const TYPED = {
  uint8: Uint8Array, int8: Int8Array, uint16: Uint16Array, int16: Int16Array,
  uint32: Uint32Array, int32: Int32Array, float32: Float32Array, float64: Float64Array,
};

export class ApiClient {
  constructor({ csrfToken }) {
    this.csrfToken = csrfToken;
  }

  async request(url, { method = "GET", body, headers = { Accept: "application/json" } } = {}) {
    const init = { method, headers: { ...headers }, credentials: "same-origin" };
    if (method !== "GET" && method !== "HEAD") init.headers["X-CSRFToken"] = this.csrfToken;
    if (body !== undefined) init.body = body;
    const response = await fetch(url, init);
    if (!response.ok) {
      let data = null;
      try { data = await response.json(); } catch { data = null; }
      throw new ApiError(response.status, data, errorMessage(data, response.status));
    }
    return response;
  }

  async json(url, options = {}) {
    const response = await this.request(url, { ...options, headers: { Accept: "application/json", ...(options.headers || {}) } });
    if (response.status === 204) return null;
    return response.json();
  }

  /** A raw array endpoint: planar little-endian samples plus X-Array-Dtype / X-Array-Shape. */
  async rawArray(url) {
    // No custom headers: the page preloads this URL (<link rel=preload as=fetch>) and a
    // plain GET is what lets the browser reuse that response.
    const response = await this.request(url, { headers: {} });
    const dtype = response.headers.get("X-Array-Dtype");
    const shape = (response.headers.get("X-Array-Shape") || "").split(",").map(Number);
    const Typed = TYPED[dtype];
    if (!Typed || shape.length !== 3) throw new Error(`unexpected raw array: dtype ${dtype}, shape ${shape}`);
    const buffer = await response.arrayBuffer();
    const [channels, height, width] = shape;
    const plane = width * height;
    // A stored label PNG passed through as it is (?encoding=png): inflated here.
    const all = response.headers.get("X-Array-Encoding") === "png" ? (await decodeLabelPng(buffer)).ids : new Typed(buffer);
    if (all.length !== plane * channels) throw new Error(`raw array has ${all.length} samples, expected ${plane * channels}`);
    const planes = [];
    for (let c = 0; c < channels; c++) planes.push(all.subarray(c * plane, (c + 1) * plane));
    return { dtype, channels, height, width, planes };
  }
}
