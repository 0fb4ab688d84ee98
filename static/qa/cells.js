// cells.js — the per-cell table of the review page, from the QA run's cells and flags:
// one row per consensus cell (support, confidence, agreement, which annotation drew it,
// matched / missed by / split / merged / boundary) and one per spurious object.

const fmt = (v, d = 2) => (v === null || v === undefined ? "—" : Number(v).toFixed(d));

/** Rows for the table: {key (mask), id (label in that mask), label, kinds[], values[]}. */
export function cellRows(qa, annotations) {
  const n = annotations.length;
  const names = Object.fromEntries(annotations.map((a) => [String(a.id), a.annotator]));
  const cells = qa.consensus.cells || [];
  const flags = qa.flags || [];
  // (annotation, label) -> consensus cell id
  const owner = new Map();
  for (const c of cells) for (const [a, l] of Object.entries(c.members || {})) owner.set(`${a}:${l}`, c.id);
  const kinds = new Map(cells.map((c) => [c.id, new Set()]));
  const spurious = [];
  for (const f of flags) {
    const who = names[String(f.annotation)] || f.annotator;
    if (f.kind === "spurious") { spurious.push(f); continue; }
    if (f.kind === "missed") {
      for (const [a, l] of f.others || []) {
        const id = owner.get(`${a}:${l}`);
        if (id !== undefined) kinds.get(id).add(`missed by ${who}`);
      }
      continue;
    }
    for (const l of f.labels || []) {
      const id = owner.get(`${f.annotation}:${l}`);
      if (id !== undefined) kinds.get(id).add(`${f.kind} by ${who}`);
    }
    for (const [a, l] of f.others || []) {
      const id = owner.get(`${a}:${l}`);
      if (id !== undefined) kinds.get(id).add(`${f.kind} by ${who}`);
    }
  }
  const head = ["drop", "cell", "status", "support", "confidence", "agreement", ...annotations.map((a) => a.annotator)];
  const rows = cells.map((c) => {
    const k = [...kinds.get(c.id)];
    if (!k.length) k.push(c.support >= n ? "matched" : "partly matched");
    return {
      key: "consensus", id: c.id, label: `#${c.id}`, kinds: k,
      values: [`${c.support}/${n}`, fmt(c.confidence), fmt(c.agreement),
        ...annotations.map((a) => (c.members && c.members[String(a.id)] !== undefined ? `#${c.members[String(a.id)]}` : "—"))],
    };
  });
  rows.sort((a, b) => Number(a.values[1]) - Number(b.values[1]) || a.id - b.id);
  for (const f of spurious) {
    for (const l of f.labels || [f.cell]) {
      rows.push({
        key: String(f.annotation), id: l, label: `${names[String(f.annotation)] || f.annotator} #${l}`,
        kinds: [`spurious by ${names[String(f.annotation)] || f.annotator}`],
        values: ["—", fmt(f.score), "—", ...annotations.map((a) => (String(a.id) === String(f.annotation) ? `#${l}` : "—"))],
      });
    }
  }
  return { head, rows };
}
