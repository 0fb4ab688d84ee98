"""Use cases: set the truth mask of a gold image; score annotations against it.

A QA lead or manager uploads a truth mask or promotes the image's approved mask. Each
truth is an immutable :class:`~qa.models.GoldTruth` row (the latest is current); setting
one re-runs QA of the image so its annotations are scored against the truth, and those
scores feed the annotators' reliability and qualification.
"""

from __future__ import annotations

import numpy as np
from django.core.files import File

from annotation.access import check_project_role
from annotation.models import Image
from annotation.services.storage import staged_files
from config.errors import Conflict, InvalidInput
from qa.consensus import gold_outline_offsets
from qa.enums import AuditKind, GoldSource, QaTrigger
from qa.metrics import match_instances
from qa.models import ApprovedMask, GoldTruth
from qa.noise.compare import compare_labels
from qa.services.audit import audit_record
from qa.services.masks import mask_encode, mask_read, mask_upload_read
from qa.services.policies import ACTING_ROLES


def gold_current(*, image: Image) -> GoldTruth | None:
    """The image's current truth mask, if it has one."""
    return GoldTruth.objects.filter(image=image).order_by("-id").first()


def gold_scores(truth: np.ndarray, masks: list[np.ndarray], *, iou_threshold: float = 0.5) -> list[dict]:
    """Each mask against the truth: F1 at IoU 0.5, mean matched IoU, and cell error counts.

    ``quality`` is ``f1 * mean_iou`` (detection times outline accuracy) and is what
    reliability counts for gold images. ``outline_bias`` is the median outline offset in
    px (+ = drawn larger) over the ``outline_cells`` cells matched to a true cell (None
    when none is): what anchors the consensus outlines of the project's other images.
    """
    offsets = gold_outline_offsets([masks], [truth], iou_threshold=iou_threshold) if masks else []
    out = []
    for m, cells in zip(masks, offsets, strict=True):
        match = match_instances(truth, m, iou_threshold=iou_threshold)
        cmp = compare_labels(truth, m, iou_threshold=iou_threshold)
        out.append({
            "f1": round(float(match.f1), 6),
            "mean_iou": round(float(match.mean_matched_iou), 6),
            "quality": round(float(match.f1 * match.mean_matched_iou), 6),
            "missed": int(cmp.missed.size), "spurious": int(cmp.spurious.size),
            "merged": len(cmp.merged), "split": len(cmp.split),
            "n_truth": int(match.n_reference), "n_cells": int(match.n_candidate),
            "outline_bias": round(float(np.median(cells)), 4) if cells.size else None,
            "outline_cells": int(cells.size),
        })
    return out


def gold_set(*, actor, image: Image, mask: bytes | File | None = None,
             approved_mask: ApprovedMask | None = None, comment: str = "") -> GoldTruth:
    """Set the truth of a gold image from an upload or from one of its approved masks.

    Preconditions: QA lead or manager; the image is marked gold; exactly one of ``mask``
    and ``approved_mask`` (which must belong to the image).
    """
    project = image.project
    check_project_role(user=actor, project=project, roles=ACTING_ROLES)
    if not image.is_gold:
        raise Conflict(f"image {image.pk} is not a gold image; mark it gold first", code="not_gold")
    if (mask is None) == (approved_mask is None):
        raise InvalidInput("send either a mask file or an approved_mask id", field="mask")
    if approved_mask is not None:
        if approved_mask.image_id != image.pk:
            raise InvalidInput(f"approved mask {approved_mask.pk} is not of image {image.pk}",
                               field="approved_mask")
        labels, source = mask_read(approved_mask.file.name), GoldSource.APPROVED_MASK
    else:
        labels, source = mask_upload_read(mask, image=image), GoldSource.UPLOAD
    encoded = mask_encode(labels)
    with staged_files() as staged:
        name = staged.save(
            f"projects/{project.pk}/gold/{image.pk}/truth-{encoded.sha256[:16]}.{encoded.ext}",
            encoded.content,
        )
        truth = GoldTruth.objects.create(
            image=image, file=name, sha256=encoded.sha256, n_cells=encoded.n_cells, source=source,
            approved_mask=approved_mask, set_by=actor, comment=comment,
        )
        audit_record(
            project=project, kind=AuditKind.TRUTH_SET, actor=actor, image=image,
            summary=f"gold truth of image {image.pk} set ({source}, {encoded.n_cells} cells)",
            reason=comment,
            links={"gold_truth": truth.pk, "approved_mask": approved_mask.pk if approved_mask else None,
                   "sha256": encoded.sha256},
        )
        from qa.services.hooks import qa_run_enqueue

        qa_run_enqueue(image=image, trigger=QaTrigger.RECOMPUTE, only_if_annotated=True)
    return truth
