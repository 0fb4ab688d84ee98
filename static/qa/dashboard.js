// dashboard.js — the QA dashboard: heat-map colours, the pair panel swapped in without a page
// load, per-annotator trend charts (uPlot, vendored) and gate decisions per day.

import uPlot from "../vendor/uplot-1.6.31/uPlot.esm.js";
import { ApiClient } from "../annotator/api.js";
import { SERIES_COLOURS, agreementColour, followJob, inkFor, readConfig, sparkline } from "./common.js";

const cfg = readConfig("qa-dashboard-config");

function paintHeat() {
  for (const td of document.querySelectorAll("[data-f1]")) {
    const v = Number(td.dataset.f1);
    if (!Number.isFinite(v)) continue;
    td.style.background = agreementColour(v);
    td.style.color = inkFor(v);
    for (const a of td.querySelectorAll("a")) a.style.color = inkFor(v);
  }
}

async function showPair(link) {
  const url = new URL(cfg.pairUrl, window.location.href);
  url.searchParams.set("a", link.dataset.a);
  url.searchParams.set("b", link.dataset.b);
  const panel = document.getElementById("pair");
  panel.setAttribute("aria-busy", "true");
  try {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    // The fragment is rendered (and escaped) by Django's templates, from our own origin.
    panel.innerHTML = await response.text();
    for (const td of document.querySelectorAll("#agreement-matrix td")) td.classList.remove("qa-heat-active");
    link.closest("td").classList.add("qa-heat-active");
    const page = new URL(window.location.href);
    page.searchParams.set("a", link.dataset.a); page.searchParams.set("b", link.dataset.b);
    history.replaceState(null, "", page);
  } catch (err) {
    panel.textContent = `Could not load the pair's images: ${err.message}`;
  } finally {
    panel.removeAttribute("aria-busy");
  }
}

function wirePairs() {
  document.getElementById("agreement-matrix")?.addEventListener("click", (ev) => {
    const link = ev.target.closest("a[data-a]");
    if (!link) return;
    ev.preventDefault();
    showPair(link);
  });
}

function sparklines() {
  const byName = new Map(cfg.annotators.map((a) => [a.annotator, a.history]));
  document.querySelectorAll(".qa-spark").forEach((box, i) => {
    const history = byName.get(box.dataset.annotator) || [];
    box.append(sparkline(history.map((p) => p.quality), { colour: SERIES_COLOURS[i % SERIES_COLOURS.length] }));
    box.title = history.length ? `${history.length} points, last quality ${Number(history.at(-1).quality).toFixed(2)}` : "no history";
  });
}

function width(el) { return Math.max(280, el.getBoundingClientRect().width - 8); }

function trendChart() {
  const box = document.getElementById("trend-chart");
  const series = cfg.annotators.filter((a) => a.history.length);
  if (!series.length) { box.textContent = "No reliability history yet."; return; }
  // One x step per QA run (runs come in bursts: a time axis would squeeze a burst into a
  // point); the legend shows when each run happened.
  const times = [...new Set(series.flatMap((a) => a.history.map((p) => Date.parse(p.at))))].sort((a, b) => a - b);
  const index = new Map(times.map((t, i) => [t, i]));
  const data = [times.map((_, i) => i + 1)];
  for (const a of series) {
    const ys = new Array(times.length).fill(null);
    for (const p of a.history) ys[index.get(Date.parse(p.at))] = p.quality;
    data.push(ys);
  }
  const opts = {
    width: width(box), height: 220, title: "Quality after each QA run",
    scales: { x: { time: false }, y: { range: [0, 1] } },
    series: [{
      label: "run",
      value: (u, v) => (v == null ? "--" : `${v} · ${new Date(times[v - 1]).toLocaleString()}`),
    }, ...series.map((a, i) => ({
      label: a.annotator, stroke: SERIES_COLOURS[i % SERIES_COLOURS.length], width: 2, spanGaps: true,
      points: { size: 5 },
    }))],
    axes: [{ label: "QA run, oldest first", incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] }, { label: "quality" }],
  };
  box.chart = new uPlot(opts, data, box);
}

function gateChart() {
  const box = document.getElementById("gate-chart");
  const g = cfg.gates;
  if (!g.days.length) { box.textContent = "No gate decisions yet."; return; }
  // A continuous run of days, one either side, so that a single day still reads as a day.
  const DAY = 86400;
  const given = new Map(g.days.map((d, i) => [Date.parse(d) / 1000, i]));
  const xs = [];
  for (let t = Math.min(...given.keys()) - DAY; t <= Math.max(...given.keys()) + DAY; t += DAY) xs.push(t);
  const colours = { approve: "#1a7f37", needs_review: "#bf8700", reject: "#cf222e" };
  const outcomes = Object.keys(colours);
  // Stacked bars: each series is drawn as the running total up to it, widest total first,
  // so every colour shows its own count; the legend shows the count itself.
  const counts = outcomes.map((o) => xs.map((t) => (given.has(t) ? g[o][given.get(t)] : 0)));
  const stacked = outcomes.map((_, k) => xs.map((_, i) => counts.slice(0, k + 1).reduce((sum, c) => sum + c[i], 0)));
  const bars = uPlot.paths.bars({ size: [0.6, 80] });
  const order = outcomes.map((_, k) => outcomes.length - 1 - k);
  const opts = {
    width: width(box), height: 220, title: "Gate decisions per day",
    series: [{
      label: "day",
      value: (u, v) => (v == null ? "--" : new Date(v * 1000).toLocaleDateString(undefined, { timeZone: "UTC" })),
    }, ...order.map((k) => ({
      label: outcomes[k].replace("_", " "), stroke: colours[outcomes[k]], fill: colours[outcomes[k]], width: 0,
      paths: bars, points: { show: false },
      value: (u, v, si, i) => (i == null ? "--" : String(counts[k][i])),
    }))],
    // Whole days on the axis (the days are UTC dates).
    axes: [{
      incrs: [DAY, 2 * DAY, 7 * DAY, 14 * DAY, 28 * DAY, 91 * DAY],
      values: (u, ticks) => ticks.map((t) => new Date(t * 1000).toLocaleDateString(undefined, { timeZone: "UTC", month: "short", day: "numeric" })),
    }, { label: "images" }],
    scales: {
      x: { time: true },
      y: { range: (u, lo, hi) => [0, Math.max(1, hi)] },
    },
  };
  const ys = order.map((k) => stacked[k]);
  box.chart = new uPlot(opts, [xs, ...ys], box);
}

// "Run QA again": a job on the server; its progress here, then the page reloads to show
// the new runs' numbers.
function wireRerun() {
  const button = document.getElementById("rerun");
  const out = document.getElementById("rerun-result");
  if (!button) return;
  const api = new ApiClient({ csrfToken: cfg.csrfToken });
  button.addEventListener("click", async () => {
    button.disabled = true;
    out.className = ""; out.textContent = "Queued…";
    try {
      const started = await api.json(cfg.rerunUrl, { method: "POST", body: "{}", headers: { "Content-Type": "application/json" } });
      const job = await followJob(api, cfg.jobsUrl, started.id, (j) => {
        const pct = j.progress == null ? "" : ` ${Math.round(j.progress * 100)} %`;
        out.textContent = `Job ${j.id}: ${j.status}${pct}…`;
      });
      const r = job.result || {};
      if (job.status !== "succeeded") throw new Error(`Job ${job.id} ${job.status}: ${job.error || job.message}`);
      out.className = "qa-msg qa-msg-ok";
      out.textContent = `Ran QA again on ${r.rerun} of ${r.images} images (${r.anchored_to_gold} anchored to gold truth); `
        + `${r.kept_decided} decided by a person kept theirs`
        + `${r.errors && r.errors.length ? `; ${r.errors.length} could not run` : ""}. Reloading…`;
      setTimeout(() => window.location.reload(), 1500);
    } catch (err) {
      out.className = "qa-msg qa-msg-err"; out.textContent = err.message;
    } finally { button.disabled = false; }
  });
}

paintHeat();
wirePairs();
wireRerun();
sparklines();
trendChart();
gateChart();
document.body.dataset.qaReady = "1";
