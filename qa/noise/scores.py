"""Leave-one-out scores of whole annotations."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from qa.consensus import PreparedMasks, prepare_masks
from qa.consensus.prepared import shared_overlaps
from qa.metrics import instance_overlaps
from qa.noise.compare import (
    Comparison,
    compare_labels,
    id_counts,
    perimeters,
    restrict_reference,
    sequential_labels,
)
from qa.noise.expectation import PARTS as _PARTS
from qa.noise.expectation import AnnotatorExpectation
from qa.noise.inputs import (
    require_iou_threshold,
    require_masks,
    require_prepared,
    require_weights,
)
from qa.noise.reference import Reference, leave_one_out, pairwise_overlaps, panel_weights

#: A reference cell is *sure* when at least this reliability-weighted share of the
#: other annotators drew it (with two equally reliable others: both).
SURE_SHARE = 0.75

#: A matched cell counts as boundary-shifted when its IoU with the reference is below this.
BOUNDARY_IOU = 0.7

@dataclass(frozen=True)
class AnnotationScore:
    """One annotation judged against the consensus of the *other* annotations.

    The reference is the fused annotations of the others (:mod:`qa.noise.reference`);
    its cells are those a reliability-weighted share ``s >= 1/2`` of the others drew, and
    its *sure* cells those with ``s >= 0.75`` (with two equally reliable others: both;
    when the others agree on no cell, the reference cells stand in).

    Attributes
    ----------
    annotator : int
        Index of the annotation in the ``masks`` passed in.
    quality : float
        Overall quality in 0..1, 1 = indistinguishable from the others' consensus:
        ``recall_sure * plausible * iou_sure * registration``.
    f1 : float
        F1 of one-to-one IoU >= threshold matching against the reference; 1.0 when both
        are empty.
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
        Cells drawn with a shifted outline: matched with IoU below 0.7, or paired with the
        same reference cell below the matching threshold.
    recall_sure : float
        Share of the sure cells this annotation drew in any form (matched, with a shifted
        outline, merged or split); 1.0 when there are none.
    plausible : float
        Share of this annotation's cells that overlap some cell of another annotator;
        1.0 when it has no cells.
    iou_sure : float
        Mean IoU of this annotation's one-to-one pairs with sure cells (matched ones and
        poor pairs below the threshold, so a grossly grown outline counts with its low
        IoU); 1.0 when there are no sure cells, 0.0 when there are some but none is paired.
    offset_px : float
        Length in px of the median displacement between the centroids of the sure cells
        and of this annotation's cell overlapping each most (0.0 with fewer than three
        such pairs): a whole mask drawn or uploaded out of register.
    registration : float
        ``max(0, 1 - offset_px / r)`` with ``r`` the median equivalent radius of the sure
        cells; 1.0 when there are none.
    shift_px : float
        Median outline displacement in px of this annotation's cells matched one-to-one to
        sure cells, (area - reference area) / reference perimeter: positive when drawn
        larger than the others draw them; 0.0 when none matched. Not part of ``quality``
        (a steady bias is a habit of the annotator, see ``relative_quality``).
    relative_quality : float or None
        Quality relative to what is expected of this annotator (``expected`` argument of
        :func:`score_annotations`), in 0..1; ``None`` when no expectation was given.
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
    offset_px: float
    registration: float
    shift_px: float = 0.0
    relative_quality: float | None = None


def score_annotations(
    masks: Sequence[np.ndarray],
    *,
    weights: Sequence[float] | np.ndarray | None = None,
    iou_threshold: float = 0.5,
    expected: object | None = None,
    prepared: PreparedMasks | None = None,
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
        (a first-pass reliability) is used. The reference for annotation ``i`` is always
        fused from the other masks only; with the default weights ``i`` still sways how
        much each of the others counts (through its F1 with them), so pass weights
        estimated elsewhere to make the reference fully independent of ``i``.
    iou_threshold : float, keyword-only
        IoU for matching and clustering, in [0.5, 1).
    expected : AnnotatorReliability or AnnotatorExpectation, keyword-only, optional
        What is typical of each of the ``k`` annotators, in the order of ``masks``
        (``annotator_reliability(...)`` over earlier or the same images, or its
        ``expected``; ``.subset(...)`` picks the annotators of this image). When given,
        every score gets ``relative_quality``.
    prepared : PreparedMasks, keyword-only, optional
        :func:`qa.consensus.prepare_masks` of these ``masks``, when the caller fuses them
        too (the consensus): the leave-one-out fusions then reuse its per-annotation work.
        Same result.

    Returns
    -------
    list of AnnotationScore
        One per annotation, in the order of ``masks``.

    Raises
    ------
    TypeError, ValueError
        If ``masks`` is not a sequence of at least two 2-D integer label images of one
        shape, ``weights`` or ``iou_threshold`` are out of range, or ``expected`` is not an
        expectation for exactly ``k`` annotators.

    Notes
    -----
    For annotation ``i`` the other annotations are fused (every cluster kept) and each
    fused cell gets the share ``s`` of the others, weighted by reliability, who drew it.
    Others that are outliers on this image (they agree with nobody while the rest agree,
    or most of their cells overlap nobody's: a shifted, smeared or blob-filled upload;
    :func:`qa.noise.reference.outlier_annotations`) are left out of that fusion, so one
    damaged annotation does not drag the others' scores down with it.
    Cells with ``s >= 1/2`` form the reference behind ``f1``, ``mean_iou`` and the
    counts. ``quality`` multiplies four rates, each chosen so that one kind of gross
    damage shows in it while ordinary disagreement about faint or ambiguous cells (which
    the others do not agree on either) does not:

    - ``recall_sure``: share of the cells the others agree on that were drawn at all;
      catches cells left out (a partial upload, a forgotten region);
    - ``plausible``: share of the annotation's cells that overlap any cell of any other
      annotator; catches invented cells;
    - ``iou_sure``: mean IoU on the cells the others agree on, pairs below the
      matching threshold included; catches sloppy or grossly grown or shrunk outlines;
    - ``registration``: one minus the whole-mask displacement as a share of the typical
      cell radius; catches a mask out of register with its image.

    ``relative_quality`` judges an annotation against its own annotator's habits: each of
    the four rates divided by the annotator's median rate, then by the median of the
    same ratio over the other annotations of this image when that is below 1 (a hard
    image lowers everyone), capped at 1; their product times
    ``max(0, 1 - |shift_px - typical shift_px| / 4 px)``. Heavy damage to one annotation
    (a dropped region, invented blobs, a smeared or shifted mask) is a drop far below the
    annotator's usual level, while a careless annotator's ordinary work is not; an
    absolute ``quality`` cannot tell the two apart when the careless annotator's clean
    work is worse than the expert's damaged work. Smearing (outlines grown by a few px)
    shows mostly in ``shift_px`` against the annotator's usual bias: an annotator who
    usually draws 1 px inside the others and now draws on them is as suspect as one who
    now draws 3 px outside.

    Merges and splits lower ``f1`` and are counted, but do not lower ``quality``: the
    cells are there, and a careful annotator's merge of two touching cells is common.

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
    prepared = require_prepared(prepared, masks)
    if prepared is None:
        overlaps = pairwise_overlaps(masks)
        prepared = prepare_masks(masks, overlaps=overlaps)
    else:
        overlaps = shared_overlaps(prepared)
    w, outliers = panel_weights(
        masks, None if weights is None else require_weights(weights, k),
        iou_threshold=iou_threshold, overlaps=overlaps,
    )
    expectation = _require_expected(expected, k)
    # the k leave-one-out fusions share each annotation's distance maps and overlap tables
    scores = [
        _score_one(i, masks[i],
                   leave_one_out(masks, i, w, iou_threshold=iou_threshold, outliers=outliers,
                                 prepared=prepared),
                   iou_threshold=iou_threshold)
        for i in range(k)
    ]
    if expectation is None:
        return scores
    relative = expectation.relative_quality(
        range(k), [[getattr(sc, name) for name in _PARTS] for sc in scores]
    )
    return [
        replace(sc, relative_quality=float(v)) for sc, v in zip(scores, relative, strict=True)
    ]


def _require_expected(expected: object, k: int) -> AnnotatorExpectation | None:
    if expected is None:
        return None
    expectation = getattr(expected, "expected", expected)
    if not isinstance(expectation, AnnotatorExpectation):
        raise TypeError(
            "expected must be an AnnotatorReliability or AnnotatorExpectation, "
            f"got {type(expected).__name__}"
        )
    if expectation.n_annotators != k:
        raise ValueError(
            f"expected describes {expectation.n_annotators} annotators, masks has {k} "
            "(use .subset(...) for the annotators of this image)"
        )
    return expectation


def boundary_count(cmp: Comparison) -> int:
    """Matched pairs below :data:`BOUNDARY_IOU` plus poor pairs."""
    return int(np.count_nonzero(cmp.matched_ious < BOUNDARY_IOU) + cmp.poor.shape[0])


def _score_one(
    i: int, mask: np.ndarray, ref: Reference, *, iou_threshold: float
) -> AnnotationScore:
    # one overlap table and one outline count serve both comparisons
    ov = instance_overlaps(ref.labels, mask)
    outline = perimeters(ref.labels)
    hard = compare_labels(ref.labels, mask, iou_threshold=iou_threshold, perimeter=outline,
                          overlaps=restrict_reference(ov, ref.ids[ref.share >= 0.5]))
    full = compare_labels(ref.labels, mask, iou_threshold=iou_threshold, overlaps=ov,
                          perimeter=outline)

    sure = ref.ids[ref.share >= SURE_SHARE]
    if sure.size == 0:  # the others agree on no cell: the plain reference stands in
        sure = ref.ids[ref.share >= 0.5]
    drawn = np.concatenate(
        [full.matched[:, 0], full.poor[:, 0], np.asarray([r for r, _ in full.split], np.int64)]
        + [np.asarray(rs, np.int64) for _, rs in full.merged]
    )
    recall_sure = float(np.isin(sure, drawn).mean()) if sure.size else 1.0
    on_sure = np.isin(full.matched[:, 0], sure)
    pair_ious = np.concatenate([full.matched_ious[on_sure],
                                full.poor_ious[np.isin(full.poor[:, 0], sure)]])
    if sure.size == 0:
        iou_sure = 1.0
    else:
        iou_sure = float(pair_ious.mean()) if pair_ious.size else 0.0
    n_cells = int(ov.labels_b.size)
    plausible = np.unique(ov.pairs[:, 1]).size / n_cells if n_cells else 1.0
    shift_px = float(np.median(full.matched_shifts[on_sure])) if on_sure.any() else 0.0
    offset_px, radius = registration_offset(ref.labels, mask, ov, sure)
    registration = max(0.0, 1.0 - offset_px / radius) if radius > 0 else 1.0

    return AnnotationScore(
        annotator=i,
        quality=float(np.clip(recall_sure * plausible * iou_sure * registration, 0.0, 1.0)),
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
        offset_px=offset_px,
        registration=float(registration),
        shift_px=shift_px,
    )


def centroids(labels: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """(row, col) centroid of each given id, shape (n, 2) float64 (ids must be present)."""
    counts = id_counts(labels)
    if counts is None:  # ids too sparse for a table: renumber first
        seq, present = sequential_labels(labels)
        k = np.searchsorted(present, np.asarray(ids, dtype=np.int64)) + 1
    else:
        seq, k = labels, np.asarray(ids, dtype=np.int64)
    rows, cols = np.nonzero(seq != 0)  # the cells' pixels only, in row-major order
    which = seq[rows, cols].astype(np.intp, copy=False)
    top = int(which.max(initial=0)) + 1
    area = np.bincount(which, minlength=top).astype(float)
    cy = np.bincount(which, weights=rows, minlength=top)
    cx = np.bincount(which, weights=cols, minlength=top)
    return np.stack([cy[k] / area[k], cx[k] / area[k]], axis=1)


def registration_offset(
    reference: np.ndarray, mask: np.ndarray, ov, sure: np.ndarray
) -> tuple[float, float]:
    """Length of the median centroid displacement from sure reference cells to their best
    overlapping cell of ``mask``, and the median equivalent radius of the sure cells (px)."""
    if sure.size == 0 or ov.pairs.shape[0] == 0:
        return 0.0, 0.0
    ids_r = ov.labels_a
    radius = float(np.sqrt(np.median(ov.areas_a[np.isin(ids_r, sure)]) / np.pi))
    best: dict[int, tuple[int, int]] = {}
    for (a, b), inter in zip(ov.pairs, ov.intersections, strict=True):
        if int(ids_r[a]) in best and best[int(ids_r[a])][1] >= inter:
            continue
        best[int(ids_r[a])] = (int(ov.labels_b[b]), int(inter))
    rs = np.asarray([r for r in sure.tolist() if r in best], dtype=np.int64)
    if rs.size < 3:
        return 0.0, radius
    cs = np.asarray([best[int(r)][0] for r in rs], dtype=np.int64)
    d = centroids(mask, cs) - centroids(reference, rs)
    return float(np.hypot(*np.median(d, axis=0))), radius
