"""Manifest rows of approved masks: what each snapshot item is, and where it came from.

A row is plain JSON (see ``docs/datasets.md``): the image (sha256, shape, metadata), the
approved mask (sha256, source, cells), the split and group, ignore marks, cell classes,
the QA properties of each cell, and the provenance from
:func:`qa.selectors.approved_mask_provenance`. Everything in a row is derived from
immutable rows, so the same data always gives the same row.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from annotation.models import Annotation, Image
from annotation.services.mask_export import image_file_stem
from datasets.enums import GroupBy
from datasets.formats.items import safe_stem
from qa.enums import ApprovedMaskSource, CellOutcome
from qa.models import ApprovedMask, GateDecision
from qa.selectors import approved_mask_provenance

#: Image metadata an ML engineer may filter a snapshot on.
FILTER_FIELDS = ("modality", "stain", "batch", "plate", "well", "site")

#: Keys of ``Image.metadata`` read as the physical pixel size in µm, in order.
PIXEL_SIZE_KEYS = ("pixel_size_um", "physical_pixel_size_um", "PhysicalSizeX")


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def image_pixel_size(image: Image) -> float | None:
    """The image's pixel size in µm from its metadata, or None."""
    for key in PIXEL_SIZE_KEYS:
        value = (image.metadata or {}).get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            return float(value)
    return None


def group_key(image: Image, group_by: str) -> str:
    """The split group of an image; images without the field are each their own group."""
    gb = GroupBy(group_by)
    own = f"image:{image.sha256[:16]}"
    if gb is GroupBy.IMAGE:
        return own
    if gb is GroupBy.BATCH:
        return f"batch:{image.batch}" if image.batch else own
    if not image.plate:
        return own
    if gb is GroupBy.PLATE:
        return f"plate:{image.plate}"
    if gb is GroupBy.WELL:
        return f"well:{image.plate}/{image.well}" if image.well else own
    return f"site:{image.plate}/{image.well}/{image.site}" if image.well and image.site else own


def _gate_for(am: ApprovedMask) -> GateDecision | None:
    if am.gate_decision_id:
        return am.gate_decision
    if am.qa_run_id:
        return GateDecision.objects.filter(qa_run_id=am.qa_run_id).order_by("-id").first()
    return None


def _cell_properties(am: ApprovedMask) -> dict[str, dict]:
    """QA numbers per cell id of the approved mask (consensus-derived masks only)."""
    if am.source != ApprovedMaskSource.CONSENSUS or am.qa_run is None:
        return {}
    gate = _gate_for(am)
    outcomes = {int(c["cell"]): c.get("outcome") for c in (gate.cells if gate else [])}
    ignore = {int(c) for c in am.ignore_cells or []}
    out = {}
    for cell in am.qa_run.cells or []:
        cid = int(cell["id"])
        outcome = outcomes.get(cid, CellOutcome.KEEP.value)
        if outcome == CellOutcome.DROP.value:
            continue
        out[str(cid)] = {
            "support": _finite(cell.get("support")),
            "confidence": _finite(cell.get("confidence")),
            "agreement": _finite(cell.get("agreement")),
            "gate": CellOutcome.IGNORE.value if cid in ignore else outcome,
        }
    return out


def _cell_classes(am: ApprovedMask, annotations: dict[int, Annotation]) -> dict[str, str]:
    """Class per cell: the annotation's own, or the majority of a consensus cell's members."""
    if am.source == ApprovedMaskSource.ANNOTATION and am.annotation_id:
        ann = annotations.get(am.annotation_id) or am.annotation
        return {str(k): v for k, v in sorted((ann.instance_classes or {}).items(), key=lambda kv: int(kv[0]))}
    if am.source != ApprovedMaskSource.CONSENSUS or am.qa_run is None:
        return {}
    out = {}
    for cell in am.qa_run.cells or []:
        votes: Counter = Counter()
        for ann_id, label in (cell.get("members") or {}).items():
            ann = annotations.get(int(ann_id))
            cls = (ann.instance_classes or {}).get(str(label)) if ann else None
            if cls:
                votes[cls] += 1
        if votes:
            # Ties go to the alphabetically first class, so the row is deterministic.
            best = sorted(votes.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
            out[str(int(cell["id"]))] = best
    return out


def manifest_row(am: ApprovedMask) -> dict:
    """The manifest row of one approved mask (split and group are set by the caller)."""
    image = am.image
    provenance = approved_mask_provenance(approved_mask=am)
    if am.qa_run is not None and provenance.get("qa_run") is not None:
        provenance["qa_run"]["mean_agreement"] = _finite(am.qa_run.mean_agreement)
        provenance["qa_run"]["n_cells"] = am.qa_run.n_cells
    member_ids = [a["id"] for a in provenance.get("annotations") or []]
    if am.annotation_id:
        member_ids.append(am.annotation_id)
    annotations = {a.pk: a for a in Annotation.objects.filter(pk__in=member_ids)}
    ext = image.file.name.rsplit(".", 1)[-1].lower() if "." in image.file.name else ""
    return {
        "name": safe_stem(image_file_stem(image)),
        "image": {
            "id": image.pk, "sha256": image.sha256, "file": image.file.name, "ext": ext,
            "original_name": image.original_name, "format": image.format,
            "width": image.width, "height": image.height, "channels": image.channels,
            "pages": image.pages, "dtype": image.dtype, "size_bytes": image.size_bytes,
            "is_gold": image.is_gold, "pixel_size_um": image_pixel_size(image),
            **{f: getattr(image, f) for f in FILTER_FIELDS},
        },
        "mask": {
            "approved_mask": am.pk, "sha256": am.sha256, "file": am.file.name,
            "n_cells": am.n_cells, "source": am.source, "height": am.height, "width": am.width,
        },
        "ignore_cells": sorted(int(c) for c in am.ignore_cells or []),
        "cell_classes": _cell_classes(am, annotations),
        "cells": _cell_properties(am),
        "provenance": provenance,
    }


def unique_names(rows: list[dict]) -> None:
    """Make ``row['name']`` unique (rows sorted by image sha256): clashes get a hash suffix."""
    counts = Counter(r["name"] for r in rows)
    for r in rows:
        if counts[r["name"]] > 1:
            r["name"] = f"{r['name']}-{r['image']['sha256'][:10]}"
