"""Annotator reliability across many images."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from qa.consensus import estimate_boundary_bias
from qa.metrics import instance_overlaps
from qa.noise.compare import compare_labels
from qa.noise.expectation import PARTS as _PARTS
from qa.noise.expectation import AnnotatorExpectation
from qa.noise.inputs import require_iou_threshold, require_label_image
from qa.noise.reference import MIN_RELIABILITY
from qa.noise.scores import registration_offset, score_annotations

#: A gold image (known truth) counts this many times as much as an image judged only
#: against the other annotators.
GOLD_WEIGHT = 4.0


@dataclass(frozen=True)
class AnnotatorReliability:
    """Reliability of each annotator, estimated over many images.

    ``k`` is the number of annotators, ``n`` the number of images.

    Attributes
    ----------
    reliability : ndarray of float64, shape (k,)
        Weighted mean annotation quality of each annotator, 0..1 (NaN for an annotator
        with no annotation); usable as ``weights`` for :func:`score_annotations`,
        :func:`flag_instances` and :func:`qa.consensus.fuse`.
    ranking : ndarray of int64, shape (k,)
        Annotator indices from most to least reliable (annotators without annotations last).
    sensitivity : ndarray of float64, shape (k,)
        Mean share of the cells others agree on (or of the gold cells) that the annotator drew.
    precision : ndarray of float64, shape (k,)
        Mean share of the annotator's cells confirmed by someone else (or by the gold truth).
    mean_iou : ndarray of float64, shape (k,)
        Mean IoU of the annotator's matched cells.
    quality : ndarray of float64, shape (n, k)
        Per-image quality of each annotation in the last iteration (NaN where the
        annotator did not annotate the image).
    gold : ndarray of bool, shape (n,)
        Which images were judged against known truth.
    n_iterations : int
        EM iterations run.
    expected : AnnotatorExpectation
        What is typical of each annotator: the median over its images (the non-gold ones
        when there are any) of each part of ``quality`` and of its outline shift; pass it
        (or this object) as ``expected`` to :func:`score_annotations`.
    relative_quality : ndarray of float64, shape (n, k)
        Per-image quality of each annotation relative to its annotator's typical level
        (see :func:`score_annotations`; NaN where absent). A value far below 1 is the
        signature of one badly damaged annotation, whoever made it; ``quality`` instead
        says how good the annotation is, which also reflects how good its annotator is.
    boundary_bias : ndarray of float64, shape (k,)
        Each annotator's absolute outline bias in px against the gold truth (> 0 = draws
        cells too large; :func:`qa.consensus.estimate_boundary_bias` over the gold images),
        NaN without gold images or with fewer than 5 matched gold cells. Pass it to
        :func:`qa.consensus.fuse` as ``boundary_bias=`` to anchor consensus outlines to the
        truth.
    """

    reliability: np.ndarray
    ranking: np.ndarray
    sensitivity: np.ndarray
    precision: np.ndarray
    mean_iou: np.ndarray
    quality: np.ndarray
    gold: np.ndarray
    n_iterations: int
    expected: AnnotatorExpectation | None = None
    relative_quality: np.ndarray | None = None
    boundary_bias: np.ndarray | None = None


def annotator_reliability(
    per_image_masks: Sequence[Sequence[np.ndarray | None]],
    *,
    gold: Sequence[np.ndarray | None] | None = None,
    iou_threshold: float = 0.5,
    max_iter: int = 5,
    tol: float = 1e-3,
) -> AnnotatorReliability:
    """Estimate every annotator's reliability from many images (EM over the consensus).

    Parameters
    ----------
    per_image_masks : sequence of sequence of (ndarray of int, shape (H, W)) or None
        For each image, one label image per annotator, always in the same annotator order
        (so every inner sequence has the same length k >= 2); ``None`` where an annotator
        did not annotate that image. Shapes may differ between images.
    gold : sequence of (ndarray of int) or None, keyword-only, optional
        For each image, its known true label image (a gold image), or ``None``.
    iou_threshold : float, keyword-only
        IoU for matching and clustering, in [0.5, 1).
    max_iter : int, keyword-only
        Maximum EM iterations (>= 1).
    tol : float, keyword-only
        Stop when no reliability moves by more than this.

    Returns
    -------
    AnnotatorReliability

    Raises
    ------
    TypeError, ValueError
        On malformed inputs: no images, inner sequences of different lengths, fewer than
        two annotations on a non-gold image, shapes that differ within an image, or out of
        range options.

    Notes
    -----
    An EM in the spirit of Dawid & Skene (1979) and STAPLE (Warfield et al. 2004), with
    whole annotations as the unit: starting from equal reliabilities,

    - *E-step*: each annotation is scored against the consensus of the other annotations
      of its image, fused and weighted with the current reliabilities
      (:func:`score_annotations`); on a gold image it is scored against the truth with the
      same formula (every gold cell is a sure cell);
    - *M-step*: an annotator's reliability is the mean of its annotations' ``quality``,
      gold images counting :data:`GOLD_WEIGHT` times.

    Gold images also give each annotator's absolute outline bias (``boundary_bias``).

    Better reliabilities make better leave-one-out references, which sharpen the scores;
    the loop stops after ``max_iter`` rounds or when nothing moves by more than ``tol``.

    After the loop, each annotator's typical level (``expected``: medians over its images
    of the parts of ``quality`` and of its outline shift) gives every annotation a
    ``relative_quality`` (see :func:`score_annotations`): the detector of a single badly
    damaged annotation, for any annotator.
    """
    images, truths, k = _check(per_image_masks, gold)
    require_iou_threshold(iou_threshold)
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"max_iter must be an int >= 1, got {max_iter!r}")
    if not isinstance(tol, (int, float)) or not tol >= 0:
        raise ValueError(f"tol must be a number >= 0, got {tol!r}")

    n = len(images)
    is_gold = np.array([t is not None for t in truths])
    # Gold images are scored against the truth once; they do not depend on the weights.
    gold_scores = np.full((n, k, 1 + len(_PARTS)), np.nan)
    for m in np.flatnonzero(is_gold):
        for j, mask in enumerate(images[m]):
            if mask is not None:
                gold_scores[m, j] = _score_against_truth(truths[m], mask, iou_threshold)

    w = np.ones(k)
    scores = gold_scores.copy()
    iterations = 0
    while iterations < max_iter:
        iterations += 1
        for m in np.flatnonzero(~is_gold):
            present = [j for j, mask in enumerate(images[m]) if mask is not None]
            for s in score_annotations([images[m][j] for j in present], weights=w[present],
                                       iou_threshold=iou_threshold):
                scores[m, present[s.annotator]] = [s.quality] + [getattr(s, name)
                                                                 for name in _PARTS]
        new = _weighted_mean(scores[:, :, 0], is_gold)
        moved = np.nanmax(np.abs(new - w), initial=0.0)
        w = np.where(np.isnan(new), MIN_RELIABILITY, np.clip(new, MIN_RELIABILITY, 1.0))
        if moved <= tol:
            break

    reliability = _weighted_mean(scores[:, :, 0], is_gold)
    parts = scores[:, :, 1:]
    expected = AnnotatorExpectation.from_table(parts[~is_gold] if (~is_gold).any() else parts)
    relative = np.full((n, k), np.nan)
    for m in range(n):
        present = np.flatnonzero(~np.isnan(scores[m, :, 0]))
        relative[m, present] = expected.relative_quality(present, parts[m, present])
    ranking = np.argsort(np.where(np.isnan(reliability), -np.inf, -reliability), kind="stable")
    if is_gold.any():
        gold_idx = np.flatnonzero(is_gold)
        boundary_bias = estimate_boundary_bias([images[m] for m in gold_idx],
                                               [truths[m] for m in gold_idx],
                                               iou_threshold=iou_threshold)
    else:
        boundary_bias = np.full(k, np.nan)
    return AnnotatorReliability(
        reliability=reliability,
        ranking=ranking.astype(np.int64),
        sensitivity=_weighted_mean(scores[:, :, 1], is_gold),
        precision=_weighted_mean(scores[:, :, 2], is_gold),
        mean_iou=_weighted_mean(scores[:, :, 3], is_gold),
        quality=scores[:, :, 0],
        gold=is_gold,
        n_iterations=iterations,
        expected=expected,
        relative_quality=relative,
        boundary_bias=boundary_bias,
    )


def _weighted_mean(values: np.ndarray, is_gold: np.ndarray) -> np.ndarray:
    weight = np.where(is_gold, GOLD_WEIGHT, 1.0)[:, None] * ~np.isnan(values)
    total = weight.sum(axis=0)
    summed = np.nansum(values * weight, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, summed / np.where(total > 0, total, 1.0), np.nan)


def _score_against_truth(
    truth: np.ndarray, mask: np.ndarray, iou_threshold: float
) -> tuple[float, ...]:
    """(quality, recall, plausible, iou, registration, shift) of ``mask`` against the truth,
    every truth cell a sure cell."""
    cmp = compare_labels(truth, mask, iou_threshold=iou_threshold)
    found = (cmp.matched.shape[0] + cmp.poor.shape[0] + len(cmp.split)
             + sum(len(refs) for _, refs in cmp.merged))
    recall = found / cmp.n_reference if cmp.n_reference else 1.0
    ov = instance_overlaps(truth, mask)
    plausible = np.unique(ov.pairs[:, 1]).size / cmp.n_candidate if cmp.n_candidate else 1.0
    if cmp.n_reference == 0:
        iou = 1.0
    else:
        iou = float(cmp.matched_ious.mean()) if cmp.matched_ious.size else 0.0
    offset, radius = registration_offset(truth, mask, ov, ov.labels_a)
    registration = max(0.0, 1.0 - offset / radius) if radius > 0 else 1.0
    shift = float(np.median(cmp.matched_shifts)) if cmp.matched_shifts.size else 0.0
    return recall * plausible * iou * registration, recall, plausible, iou, registration, shift


def _check(per_image_masks, gold):
    if isinstance(per_image_masks, np.ndarray) or not isinstance(per_image_masks, Sequence):
        raise TypeError(
            "per_image_masks must be a sequence (one entry per image) of sequences of label "
            f"images, got {type(per_image_masks).__name__}"
        )
    if len(per_image_masks) == 0:
        raise ValueError("per_image_masks must hold at least one image, got none")
    n = len(per_image_masks)
    if gold is None:
        truths = [None] * n
    else:
        if isinstance(gold, np.ndarray) or not isinstance(gold, Sequence) or len(gold) != n:
            raise ValueError(f"gold must be a sequence with one entry (array or None) per "
                             f"image ({n})")
        truths = list(gold)
    images = []
    k = None
    for m, entry in enumerate(per_image_masks):
        if isinstance(entry, np.ndarray) or not isinstance(entry, Sequence):
            raise TypeError(f"per_image_masks[{m}] must be a sequence of label images, "
                            f"got {type(entry).__name__}")
        if k is None:
            k = len(entry)
            if k < 2:
                raise ValueError(f"need at least two annotators, per_image_masks[0] has {k}")
        elif len(entry) != k:
            raise ValueError(f"per_image_masks[{m}] has {len(entry)} entries, expected {k} "
                             "(one per annotator, None where absent)")
        masks = [None if x is None else require_label_image(x, f"per_image_masks[{m}][{j}]")
                 for j, x in enumerate(entry)]
        present = [x for x in masks if x is not None]
        if truths[m] is not None:
            truths[m] = require_label_image(truths[m], f"gold[{m}]")
            present.append(truths[m])
        elif len(present) < 2:
            raise ValueError(f"per_image_masks[{m}] needs at least two annotations (or a gold "
                             f"truth), got {len(present)}")
        if len({x.shape for x in present}) > 1:
            raise ValueError(f"per_image_masks[{m}] (and gold[{m}]) must share one shape, got "
                             f"{sorted({x.shape for x in present})}")
        images.append(masks)
    return images, truths, k
