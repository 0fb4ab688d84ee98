"""Leave-one-out scores of whole annotations."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from qa.metrics import instance_overlaps
from qa.noise.compare import Comparison, compare_labels
from qa.noise.inputs import require_iou_threshold, require_masks, require_weights
from qa.noise.reference import Reference, first_pass_reliability, leave_one_out

#: A reference cell is *sure* when at least this reliability-weighted share of the
#: other annotators drew it (with two equally reliable others: both).
SURE_SHARE = 0.75

#: A matched cell counts as boundary-shifted when its IoU with the reference is below this.
BOUNDARY_IOU = 0.7


@dataclass(frozen=True)
class AnnotationScore:
    """One annotation judged against the consensus of the *other* annotations.

    The reference is the fused annotations of the others (:mod:`qa.noise.reference`);
    its cells are those a reliability-weighted share of at least 1/2 of the others drew.

    Attributes
    ----------
    annotator : int
        Index of the annotation in the ``masks`` passed in.
    quality : float
        Overall quality in 0..1 (1 = indistinguishable from the others' consensus):
        ``recall_sure * plausible * iou_sure``. See :func:`score_annotations`.
    f1 : float
        F1 of one-to-one IoU >= 0.5 matching against the reference; 1.0 when both are empty.
    mean_iou : float
        Mean IoU of the matched cells; 0.0 when none matched.
    n_cells : int
        Cells in this annotation.
    n_reference : int
        Cells in the reference.
    missed : int
        Reference cells this annotation has nothing for.
    spurious : int
        Cells of this annotation with no counterpart in the reference.
    merged : int
        Cells of this annotation that each hold more than half of two or more reference cells.
    split : int
        Reference cells of which more than half of each of two or more cells of this
        annotation lie inside.
    boundary : int
        Cells drawn with a shifted outline: matched with IoU below 0.7, or paired
        with the same reference cell but below the matching threshold.
    recall_sure : float
        Share of the *sure* reference cells (drawn by a weighted share >= 0.75 of the
        others) that this annotation drew as a cell of their own (matched, or paired with
        a shifted outline; not merged or split); 1.0 when there are none.
    plausible : float
        Share of this annotation's cells that touch some cell of another annotator;
        1.0 when it has no cells.
    iou_sure : float
        Mean IoU of this annotation's matches to sure reference cells; 1.0 when there are
        no sure cells, 0.0 when there are some but none is matched.
    """

    annotator: int
    quality: float
    f1: float
    mean_iou: float
    n_cells: int
    n_reference: int
    missed: int
    spurious: int
    merged: int
    split: int
    boundary: int
    recall_sure: float
    plausible: float
    iou_sure: float


def score_annotations(
    masks: Sequence[np.ndarray],
    *,
    weights: Sequence[float] | np.ndarray | None = None,
    iou_threshold: float = 0.5,
) -> list[AnnotationScore]:
    """Score every annotation of one image against the consensus of the others.

    Parameters
    ----------
    masks : sequence of ndarray of int, shape (H, W)
        k >= 2 instance label images of the same image, one per annotator; 0 is
        background, ids need not be contiguous.
    weights : array_like of float, shape (k,), keyword-only, optional
        Per-annotator reliabilities in (0, 1], e.g. from :func:`annotator_reliability`.
        By default each annotator's mean F1 against every other annotator on this image
        (a first-pass reliability) is used.
    iou_threshold : float, keyword-only
        IoU for matching and clustering, in [0.5, 1).

    Returns
    -------
    list of AnnotationScore
        One per annotation, in the order of ``masks``.

    Raises
    ------
    TypeError, ValueError
        If ``masks`` is not a sequence of at least two 2-D integer label images of one
        shape, or ``weights`` or ``iou_threshold`` are out of range.

    Notes
    -----
    For annotation ``i`` the other annotations are fused (every cluster kept) and each
    fused cell gets the share ``s`` of the others, weighted by reliability, who drew it.
    Cells with ``s >= 1/2`` form the reference behind ``f1``, ``mean_iou`` and the
    counts. ``quality`` multiplies three rates chosen so that each kind of gross damage
    shows up in one of them while ordinary disagreement about faint or ambiguous cells
    (which the others do not agree on either) does not:

    - ``recall_sure``: share of the cells the others agree on (``s >= 0.75``) drawn as
      cells of their own; catches cells left out, merged or split;
    - ``plausible``: share of the annotation's cells that overlap any cell of any other
      annotator; catches invented cells;
    - ``iou_sure``: mean IoU on the sure cells; catches shifted or sloppy outlines.

    Judging against a strict majority of the others is too harsh with three annotators
    (two others must both agree); weighting by reliability keeps a cell that the more
    reliable of two others drew.

    References
    ----------
    Warfield, Zou & Wells (2004), STAPLE, IEEE TMI 23(7) 903-921.
    """
    masks = require_masks(masks)
    k = len(masks)
    require_iou_threshold(iou_threshold)
    if weights is None:
        w = first_pass_reliability(masks, iou_threshold=iou_threshold)
    else:
        w = require_weights(weights, k)
    return [
        _score_one(i, masks[i], leave_one_out(masks, i, w, iou_threshold=iou_threshold),
                   iou_threshold=iou_threshold)
        for i in range(k)
    ]


def boundary_count(cmp: Comparison) -> int:
    """Matched pairs below :data:`BOUNDARY_IOU` plus poor pairs."""
    return int(np.count_nonzero(cmp.matched_ious < BOUNDARY_IOU) + cmp.poor.shape[0])


def _score_one(
    i: int, mask: np.ndarray, ref: Reference, *, iou_threshold: float
) -> AnnotationScore:
    hard = compare_labels(ref.certain(), mask, iou_threshold=iou_threshold)
    full = compare_labels(ref.labels, mask, iou_threshold=iou_threshold)

    sure = ref.ids[ref.share >= SURE_SHARE]
    # Only cells drawn as a cell of their own count: merged and split ones do not.
    found = np.concatenate([full.matched[:, 0], full.poor[:, 0]])
    recall_sure = float(np.isin(sure, found).mean()) if sure.size else 1.0
    on_sure = np.isin(full.matched[:, 0], sure)
    if sure.size == 0:
        iou_sure = 1.0
    else:
        iou_sure = float(full.matched_ious[on_sure].mean()) if on_sure.any() else 0.0

    ov = instance_overlaps(ref.labels, mask)
    n_cells = int(ov.labels_b.size)
    touched = np.unique(ov.pairs[:, 1]).size
    plausible = touched / n_cells if n_cells else 1.0

    return AnnotationScore(
        annotator=i,
        quality=float(np.clip(recall_sure * plausible * iou_sure, 0.0, 1.0)),
        f1=hard.f1,
        mean_iou=float(hard.matched_ious.mean()) if hard.matched_ious.size else 0.0,
        n_cells=n_cells,
        n_reference=hard.n_reference,
        missed=int(hard.missed.size),
        spurious=int(hard.spurious.size),
        merged=len(hard.merged),
        split=len(hard.split),
        boundary=boundary_count(hard),
        recall_sure=recall_sure,
        plausible=float(plausible),
        iou_sure=iou_sure,
    )
