"""What changed between two snapshots, and why. Pure: compares manifest rows.

Items are matched by image content (``image.sha256``), so a re-uploaded identical image
is the same item. An item is *changed* when its mask, split, ignore marks or classes
differ; the reasons name the provenance that moved (a new review decision, a new gating
policy version, a new annotation revision, a new QA run).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SnapshotDiff", "diff_rows"]


@dataclass(frozen=True)
class SnapshotDiff:
    """Rows added, removed and changed from snapshot ``a`` to snapshot ``b``.

    Attributes
    ----------
    added, removed : tuple of dict
        ``{"image": {...}, "mask_sha256", "split", "reasons": [str]}`` per item.
    changed : tuple of dict
        ``{"image", "changes": [field names], "before", "after", "reasons": [str]}``.
    unchanged : int
        Items identical in both.
    """

    added: tuple[dict, ...] = field(default=())
    removed: tuple[dict, ...] = field(default=())
    changed: tuple[dict, ...] = field(default=())
    unchanged: int = 0

    def as_dict(self) -> dict:
        return {
            "summary": {"added": len(self.added), "removed": len(self.removed),
                        "changed": len(self.changed), "unchanged": self.unchanged},
            "added": list(self.added),
            "removed": list(self.removed),
            "changed": list(self.changed),
        }


def _image_ref(row: Mapping[str, Any]) -> dict:
    img = row["image"]
    return {"id": img.get("id"), "sha256": img["sha256"], "name": img.get("original_name", "")}


def _state(row: Mapping[str, Any]) -> dict:
    return {
        "mask_sha256": row["mask"]["sha256"],
        "split": row["split"],
        "ignore_cells": sorted(row.get("ignore_cells") or []),
        "cell_classes": dict(sorted((row.get("cell_classes") or {}).items())),
    }


def _annotations(prov: Mapping[str, Any]) -> dict[Any, Mapping[str, Any]]:
    # One annotation per annotator and image: match revisions by who drew them.
    return {a.get("annotator", a.get("id")): a for a in prov.get("annotations") or []}


def _reasons(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    pa, pb = a.get("provenance") or {}, b.get("provenance") or {}
    out: list[str] = []
    if pa.get("policy_version") != pb.get("policy_version"):
        out.append(f"gating policy v{pa.get('policy_version')} -> v{pb.get('policy_version')}")
    da, db = pa.get("decision") or {}, pb.get("decision") or {}
    if (da.get("kind"), da.get("id")) != (db.get("kind"), db.get("id")) and db:
        if db.get("kind") == "review":
            who = f" by {db['by']}" if db.get("by") else ""
            out.append(f"new review decision {db.get('id')} ({db.get('action')}{who})")
        else:
            out.append(f"new gate decision {db.get('id')} ({db.get('outcome')})")
    aa, ab = _annotations(pa), _annotations(pb)
    for key in sorted(set(aa) | set(ab), key=str):
        x, y = aa.get(key), ab.get(key)
        who = (y or x or {}).get("annotator", "?")
        if x is None:
            out.append(f"annotation by {who} added (revision {y.get('revision')})")
        elif y is None:
            out.append(f"annotation by {who} no longer used")
        elif x.get("revision") != y.get("revision") or x.get("id") != y.get("id"):
            out.append(f"annotation by {who}: revision {x.get('revision')} -> {y.get('revision')}")
    qa, qb = pa.get("qa_run") or {}, pb.get("qa_run") or {}
    if qa.get("id") != qb.get("id") and qb:
        if qa.get("algorithm_version") != qb.get("algorithm_version"):
            out.append(f"QA algorithm {qa.get('algorithm_version')} -> {qb.get('algorithm_version')}")
        elif qa.get("params") != qb.get("params"):
            out.append("QA parameters changed")
        else:
            out.append(f"new QA run {qb.get('id')}")
    if a["split"] != b["split"]:
        out.append(f"moved from {a['split']} to {b['split']} (split options or groups changed)")
    return out


def diff_rows(rows_a: Sequence[Mapping[str, Any]], rows_b: Sequence[Mapping[str, Any]]) -> SnapshotDiff:
    """Compare the manifest rows of snapshot ``a`` (older) and ``b`` (newer).

    Parameters
    ----------
    rows_a, rows_b : sequence of mapping
        Manifest rows: ``image`` (with ``sha256``), ``mask`` (with ``sha256``), ``split``,
        ``ignore_cells``, ``cell_classes``, ``provenance``.

    Returns
    -------
    SnapshotDiff
        Entries sorted by image sha256.
    """
    by_a = {r["image"]["sha256"]: r for r in rows_a}
    by_b = {r["image"]["sha256"]: r for r in rows_b}
    if len(by_a) != len(rows_a) or len(by_b) != len(rows_b):
        raise ValueError("a snapshot lists the same image twice")
    added = tuple(
        {"image": _image_ref(by_b[k]), "mask_sha256": by_b[k]["mask"]["sha256"],
         "split": by_b[k]["split"], "reasons": ["approved in b, not in a (new approval or selection)"]}
        for k in sorted(set(by_b) - set(by_a))
    )
    removed = tuple(
        {"image": _image_ref(by_a[k]), "mask_sha256": by_a[k]["mask"]["sha256"],
         "split": by_a[k]["split"], "reasons": ["not in b (no longer approved, excluded, or filtered out)"]}
        for k in sorted(set(by_a) - set(by_b))
    )
    changed, unchanged = [], 0
    for k in sorted(set(by_a) & set(by_b)):
        sa, sb = _state(by_a[k]), _state(by_b[k])
        if sa == sb:
            unchanged += 1
            continue
        fields = [f for f in sa if sa[f] != sb[f]]
        reasons = _reasons(by_a[k], by_b[k]) or ["content changed without a recorded cause"]
        changed.append({"image": _image_ref(by_b[k]), "changes": fields,
                        "before": {f: sa[f] for f in fields}, "after": {f: sb[f] for f in fields},
                        "reasons": reasons})
    return SnapshotDiff(added, removed, tuple(changed), unchanged)
