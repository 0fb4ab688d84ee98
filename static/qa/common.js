// common.js — small helpers shared by the QA pages: config from json_script, colours, SVG.

/** The page's configuration, written by the server with json_script (never inline script). */
export function readConfig(id) {
  return JSON.parse(document.getElementById(id).textContent);
}

/** Agreement 0..1 -> a red (0) .. amber .. green (1) background, as "rgb(r, g, b)". */
export function agreementColour(v) {
  const t = Math.max(0, Math.min(1, v));
  const stops = [[0, [203, 36, 49]], [0.5, [245, 166, 35]], [0.75, [250, 219, 95]], [1, [46, 160, 67]]];
  for (let k = 1; k < stops.length; k++) {
    const [t1, c1] = stops[k];
    const [t0, c0] = stops[k - 1];
    if (t <= t1) {
      const u = (t - t0) / (t1 - t0);
      return `rgb(${c0.map((c, i) => Math.round(c + (c1[i] - c) * u)).join(", ")})`;
    }
  }
  return "rgb(46, 160, 67)";
}

/** Dark text on light backgrounds, white on dark ones. */
export function inkFor(v) { return v < 0.35 ? "#fff" : "#1d2330"; }

const SVG = "http://www.w3.org/2000/svg";

/** A small line chart (values 0..1) as an SVG element; null values leave a gap. */
export function sparkline(values, { width = 120, height = 28, colour = "#1f6feb" } = {}) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("width", width); svg.setAttribute("height", height);
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("role", "img");
  const pts = values.map((v, i) => [values.length > 1 ? (i / (values.length - 1)) * (width - 4) + 2 : width / 2, v]);
  let d = "", pen = false;
  for (const [x, v] of pts) {
    if (v === null || v === undefined) { pen = false; continue; }
    const y = height - 2 - Math.max(0, Math.min(1, v)) * (height - 4);
    d += `${pen ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`;
    pen = true;
  }
  const path = document.createElementNS(SVG, "path");
  path.setAttribute("d", d); path.setAttribute("fill", "none");
  path.setAttribute("stroke", colour); path.setAttribute("stroke-width", "1.5");
  svg.appendChild(path);
  return svg;
}

/** An element with text content only (never innerHTML with data). */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k === "dataset") Object.assign(e.dataset, v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) e.append(c);
  return e;
}

export const SERIES_COLOURS = ["#1f6feb", "#d1242f", "#1a7f37", "#8250df", "#bf8700", "#0a7ea4", "#cf222e", "#57606a"];

/** Poll ``jobs/<id>/`` until the job ends, calling ``onUpdate(job)`` each time; resolves with the job. */
export async function followJob(api, jobsUrl, jobId, onUpdate, { everyMs = 700 } = {}) {
  for (;;) {
    const job = await api.json(`${jobsUrl}${jobId}/`);
    onUpdate(job);
    if (["succeeded", "failed", "cancelled"].includes(job.status)) return job;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
