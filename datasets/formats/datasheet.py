"""The datasheet of a snapshot: counts, QA statistics and provenance, in JSON and Markdown.

After "Datasheets for Datasets" (Gebru et al., 2021), reduced to what a cell-segmentation
training set needs: what is in each split, how much annotators agreed, how the gate
decided, who drew the masks under which guideline, and the licence and citation the
project manager filled in.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from datasets.enums import SPLITS

__all__ = ["datasheet_build", "datasheet_markdown"]


def _summary(values: list[float]) -> dict[str, Any]:
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return {"n": 0, "mean": None, "median": None, "min": None, "max": None}
    return {
        "n": len(values),
        "mean": round(statistics.fmean(values), 4),
        "median": round(statistics.median(values), 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
    }


def datasheet_build(snapshot: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> dict:
    """The datasheet of a snapshot.

    Parameters
    ----------
    snapshot : mapping
        Snapshot fields: ``name``, ``version``, ``content_hash``, ``created_at``,
        ``created_by``, ``description``, ``licence``, ``citation``, ``selection``,
        ``split`` (options), ``leak_check``, ``policy_version``, ``warnings``.
    rows : sequence of mapping
        Manifest rows (see ``datasets.services.manifests``): ``split``, ``mask``
        (``n_cells``, ``source``), ``cell_classes``, ``ignore_cells``, ``provenance``.

    Returns
    -------
    dict
        JSON-able; ``splits`` has every split, empty ones with zero counts.
    """
    splits: dict[str, dict[str, Any]] = {
        s.value: {"images": 0, "cells": 0, "ignored_cells": 0, "gold_images": 0, "classes": Counter()}
        for s in SPLITS
    }
    agreement: list[float] = []
    gate: Counter = Counter()
    reviews: Counter = Counter()
    sources: Counter = Counter()
    annotators: Counter = Counter()
    guidelines: set[int] = set()
    algorithms: set[str] = set()
    default_class = snapshot.get("default_class") or "cell"
    for row in rows:
        part = splits[row["split"]]
        n_cells = int(row["mask"]["n_cells"])
        part["images"] += 1
        part["cells"] += n_cells
        part["ignored_cells"] += len(row.get("ignore_cells") or [])
        part["gold_images"] += int(bool(row["image"].get("is_gold")))
        classes = row.get("cell_classes") or {}
        part["classes"].update(classes.values())
        unclassified = n_cells - len(classes)
        if unclassified > 0:
            part["classes"][default_class] += unclassified
        sources[row["mask"].get("source") or "unknown"] += 1
        prov = row.get("provenance") or {}
        qa_run = prov.get("qa_run") or {}
        if qa_run.get("mean_agreement") is not None:
            agreement.append(float(qa_run["mean_agreement"]))
        if qa_run.get("algorithm_version"):
            algorithms.add(str(qa_run["algorithm_version"]))
        decision = prov.get("decision") or {}
        if decision.get("kind") == "gate":
            gate[decision.get("outcome") or "unknown"] += 1
        elif decision.get("kind") == "review":
            reviews[decision.get("action") or "unknown"] += 1
        for ann in prov.get("annotations") or []:
            if ann.get("annotator"):
                annotators[ann["annotator"]] += 1
            if ann.get("guideline_version") is not None:
                guidelines.add(int(ann["guideline_version"]))
    all_classes: Counter = Counter()
    for part in splits.values():
        all_classes.update(part["classes"])
        part["classes"] = dict(sorted(part["classes"].items()))
    return {
        "name": snapshot.get("name"),
        "version": snapshot.get("version"),
        "content_hash": snapshot.get("content_hash"),
        "created_at": snapshot.get("created_at"),
        "created_by": snapshot.get("created_by"),
        "description": snapshot.get("description", ""),
        "licence": snapshot.get("licence", ""),
        "citation": snapshot.get("citation", ""),
        "project": snapshot.get("project"),
        "selection": snapshot.get("selection", {}),
        "split_options": snapshot.get("split", {}),
        "policy_version": snapshot.get("policy_version"),
        "leak_check": snapshot.get("leak_check", {}),
        "warnings": list(snapshot.get("warnings", [])),
        "totals": {
            "images": sum(p["images"] for p in splits.values()),
            "cells": sum(p["cells"] for p in splits.values()),
            "ignored_cells": sum(p["ignored_cells"] for p in splits.values()),
        },
        "splits": splits,
        "classes": dict(sorted(all_classes.items())),
        "agreement": _summary(agreement),
        "gate_outcomes": dict(sorted(gate.items())),
        "review_actions": dict(sorted(reviews.items())),
        "mask_sources": dict(sorted(sources.items())),
        "annotators": [{"name": n, "annotations": c} for n, c in sorted(annotators.items())],
        "guideline_versions": sorted(guidelines),
        "qa_algorithm_versions": sorted(algorithms),
    }


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "—"
    return str(value).replace("|", "\\|").replace("\n", " ")


def datasheet_markdown(sheet: Mapping[str, Any]) -> str:
    """The datasheet as Markdown for people (same facts as the JSON)."""
    lines = [
        f"# Datasheet: {_cell(sheet.get('name'))} v{_cell(sheet.get('version'))}",
        "",
        f"- Project: {_cell(sheet.get('project'))}",
        f"- Content hash: `{_cell(sheet.get('content_hash'))}`",
        f"- Created: {_cell(sheet.get('created_at'))} by {_cell(sheet.get('created_by'))}",
        f"- Gating policy version: {_cell(sheet.get('policy_version'))}",
        f"- Guideline versions: {_cell(', '.join(map(str, sheet.get('guideline_versions') or [])))}",
        f"- QA algorithm versions: {_cell(', '.join(sheet.get('qa_algorithm_versions') or []))}",
        f"- Licence: {_cell(sheet.get('licence'))}",
        f"- Citation: {_cell(sheet.get('citation'))}",
        "",
    ]
    if sheet.get("description"):
        lines += [str(sheet["description"]), ""]
    lines += ["## Splits", "", "| split | images | cells | ignored cells | gold images | classes |",
              "|---|---:|---:|---:|---:|---|"]
    for name, part in sheet["splits"].items():
        classes = ", ".join(f"{k}: {v}" for k, v in part["classes"].items())
        lines.append(f"| {name} | {part['images']} | {part['cells']} | {part['ignored_cells']} | "
                     f"{part['gold_images']} | {_cell(classes)} |")
    totals = sheet["totals"]
    lines += ["", f"Total: {totals['images']} images, {totals['cells']} cells "
              f"({totals['ignored_cells']} marked ignore).", ""]
    leak = sheet.get("leak_check") or {}
    opts = sheet.get("split_options") or {}
    lines += ["## Split method", "",
              f"Grouped by `{_cell(opts.get('group_by'))}`, stratified by "
              f"`{_cell(opts.get('stratify_by'))}`, fractions {_cell(opts.get('fractions'))}, "
              f"seed {_cell(opts.get('seed'))}. Leak check: "
              + ("**passed** (no group in two splits)." if leak.get("ok") else
                 f"**FAILED**: {_cell(', '.join(leak.get('leaked_groups') or []))}."), ""]
    for w in sheet.get("warnings") or []:
        lines.append(f"- Warning: {_cell(w)}")
    agreement = sheet["agreement"]
    lines += ["", "## Quality", "",
              f"Inter-annotator agreement (mean pairwise F1 at IoU 0.5, per image): mean "
              f"{_cell(agreement['mean'])}, median {_cell(agreement['median'])}, min "
              f"{_cell(agreement['min'])}, max {_cell(agreement['max'])} over {agreement['n']} images.",
              "", "| gate outcome | images |", "|---|---:|"]
    lines += [f"| {k} | {v} |" for k, v in sheet["gate_outcomes"].items()] or ["| — | 0 |"]
    lines += ["", "| review action | images |", "|---|---:|"]
    lines += [f"| {k} | {v} |" for k, v in sheet["review_actions"].items()] or ["| — | 0 |"]
    lines += ["", "| mask source | images |", "|---|---:|"]
    lines += [f"| {k} | {v} |" for k, v in sheet["mask_sources"].items()]
    lines += ["", "## Annotators", "", "| annotator | annotations used |", "|---|---:|"]
    lines += [f"| {_cell(a['name'])} | {a['annotations']} |" for a in sheet["annotators"]] or ["| — | 0 |"]
    lines.append("")
    return "\n".join(lines)
