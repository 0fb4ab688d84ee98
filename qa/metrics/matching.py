"""One-to-one matching of the instances of two label images by IoU.

The definitions follow StarDist's ``stardist.matching.matching`` (criterion ``'iou'``) and
Cellpose's ``cellpose.metrics.average_precision`` exactly, so that numbers reported by
CellCurate can be compared with published benchmarks, but the work is done on the sparse
overlap table (:func:`qa.metrics.instance_overlaps`) computed once for all thresholds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import min_weight_full_bipartite_matching

from qa.metrics.overlaps import Overlaps, _overlaps_unchecked
from qa.metrics.validation import (
    require_iou_threshold,
    require_label_image,
    require_same_shape,
    require_thresholds,
)

__all__ = [
    "DEFAULT_THRESHOLDS",
    "MatchResult",
    "average_precision",
    "f1_scores",
    "match_at_thresholds",
    "match_instances",
    "match_overlaps",
]

#: IoU thresholds 0.50, 0.55, ..., 0.95 (the COCO / Cellpose / DSB range), as exact decimals.
DEFAULT_THRESHOLDS: tuple[float, ...] = tuple(round(0.5 + 0.05 * k, 2) for k in range(10))


@dataclass(frozen=True)
class MatchResult:
    """Outcome of matching a candidate label image against a reference at one IoU threshold.

    Attributes
    ----------
    pairs : ndarray of int64, shape (tp, 2)
        Matched ``(reference id, candidate id)`` pairs (true positives), sorted by reference id.
    ious : ndarray of float64, shape (tp,)
        IoU of each matched pair, each ``>= iou_threshold``.
    tp, fp, fn : int
        Matched pairs; candidate instances left unmatched; reference instances left unmatched.
    precision, recall, f1 : float
        ``tp / (tp + fp)``, ``tp / (tp + fn)``, ``2 tp / (2 tp + fp + fn)``.
    ap : float
        ``tp / (tp + fp + fn)``: the "average precision" of Cellpose and the 2018 Data Science
        Bowl at one threshold (StarDist calls it ``accuracy``).
    mean_matched_iou : float
        Mean IoU of the matched pairs (StarDist's ``mean_matched_score``).
    panoptic_quality : float
        ``sum(ious) / (tp + fp / 2 + fn / 2)`` (Kirillov et al. 2019, Eq. 1).
    iou_threshold : float
        The threshold used.
    n_reference, n_candidate : int
        Number of instances (distinct non-zero ids) in each image.

    Notes
    -----
    Empty cases: when ``tp == 0`` every ratio is 0.0 (as in StarDist and Cellpose) -- except
    when *both* images hold no instance at all, where the two annotations agree perfectly and
    every ratio is 1.0 (StarDist reports 0.0 there and Cellpose NaN).
    """

    pairs: np.ndarray
    ious: np.ndarray
    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float
    ap: float
    mean_matched_iou: float
    panoptic_quality: float
    iou_threshold: float
    n_reference: int
    n_candidate: int


def match_instances(
    reference: np.ndarray, candidate: np.ndarray, *, iou_threshold: float = 0.5
) -> MatchResult:
    """Pair the cells of two label images one-to-one by IoU and score the match.

    Parameters
    ----------
    reference, candidate : ndarray of int, shape (H, W)
        Instance label images of the same shape; 0 is background, ids need not be contiguous,
        sequential or equal between the images.
    iou_threshold : float, default 0.5
        A pair counts as a true positive when its IoU is ``>= iou_threshold``; in (0, 1].

    Returns
    -------
    MatchResult
        Matched pairs, counts and scores; see :class:`MatchResult` for the empty cases.

    Raises
    ------
    TypeError
        If an image is not an integer ndarray (bool and float are refused), or the threshold
        is not a number.
    ValueError
        If an image is not 2-D or has negative ids, the shapes differ, or the threshold is
        outside (0, 1].

    See Also
    --------
    match_at_thresholds : the same at several thresholds from one overlap computation.
    match_overlaps : the same from a precomputed :class:`~qa.metrics.Overlaps` table.

    Notes
    -----
    The matching is the one StarDist and Cellpose compute with a dense
    ``linear_sum_assignment``: among all one-to-one assignments it maximises first the number
    of pairs with ``IoU >= t`` and then the total IoU of all assigned pairs (cost
    ``-[IoU >= t] - IoU / (2 min(n_ref, n_cand))``). For ``t > 0.5`` every cell has at most
    one partner with ``IoU >= t`` (two disjoint cells cannot both cover more than half of the
    union with a third), so the true positives are simply all such pairs and no assignment
    problem is solved. For ``t <= 0.5`` the assignment is solved only when some cell has
    several partners above the threshold, on the sparse graph of overlapping pairs
    (LAPJVsp, :func:`scipy.sparse.csgraph.min_weight_full_bipartite_matching`), which gives
    the same optimum as the dense problem. Ties between equally good assignments (e.g. a cell
    cut into two exact halves at ``t = 0.5``) may be broken differently from StarDist's
    ``matched_pairs``, but never change any count or score.

    IoUs are ratios of integer pixel counts evaluated in float64 and compared with the
    threshold as given, so ``IoU == t`` matches, exactly as Cellpose compares. Note that
    ``np.arange(0.5, 1.0, 0.05)`` holds 0.6000000000000001 and the like, which then miss a
    pair of IoU exactly 3/5 (in Cellpose too); :data:`DEFAULT_THRESHOLDS` holds the exact
    decimals. StarDist compares in float32, which gives the same true positives for every
    threshold with two decimals as long as each pair's union is below ~80,000 pixels (two
    distinct fractions ``i / u`` and ``p / 100`` differ by at least ``1 / (100 u)``).

    References
    ----------
    .. [1] U. Schmidt, M. Weigert, C. Broaddus, G. Myers, "Cell Detection with Star-convex
       Polygons", MICCAI 2018 (``stardist.matching``).
    .. [2] C. Stringer, T. Wang, M. Michaelos, M. Pachitariu, "Cellpose: a generalist
       algorithm for cellular segmentation", Nature Methods 18, 2021 (``cellpose.metrics``).
    .. [3] A. Kirillov, K. He, R. Girshick, C. Rother, P. Dollar, "Panoptic Segmentation",
       CVPR 2019.

    Examples
    --------
    >>> ref = np.array([[1, 1, 0, 2, 2]])
    >>> cand = np.array([[7, 7, 7, 0, 9]])
    >>> r = match_instances(ref, cand, iou_threshold=0.5)
    >>> r.pairs.tolist(), r.tp, r.fp, r.fn, r.ap
    ([[1, 7], [2, 9]], 2, 0, 0, 1.0)
    """
    threshold = require_iou_threshold(iou_threshold)
    overlaps = _checked_overlaps(reference, candidate)
    return _match(overlaps, threshold)


def match_at_thresholds(
    reference: np.ndarray,
    candidate: np.ndarray,
    *,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
) -> tuple[MatchResult, ...]:
    """Match two label images at several IoU thresholds from one overlap computation.

    Parameters
    ----------
    reference, candidate : ndarray of int, shape (H, W)
        Instance label images of the same shape (see :func:`match_instances`).
    thresholds : sequence of float, default (0.5, 0.55, ..., 0.95)
        IoU thresholds, each in (0, 1], in any order.

    Returns
    -------
    tuple of MatchResult, length len(thresholds)
        One result per threshold, in the order given.

    Raises
    ------
    TypeError, ValueError
        As :func:`match_instances`, for the images and for every threshold.
    """
    values = require_thresholds(thresholds)
    overlaps = _checked_overlaps(reference, candidate)
    return tuple(_match(overlaps, t) for t in values)


def match_overlaps(overlaps: Overlaps, *, iou_threshold: float = 0.5) -> MatchResult:
    """Match instances from a precomputed overlap table (``a`` is the reference).

    Parameters
    ----------
    overlaps : Overlaps
        Table from :func:`qa.metrics.instance_overlaps` (``reference`` as ``a``); reuse one
        table for several thresholds or for matching and consensus on the same pair.
    iou_threshold : float, default 0.5
        As in :func:`match_instances`.

    Returns
    -------
    MatchResult
        Identical to ``match_instances(a, b, iou_threshold=iou_threshold)``.
    """
    if not isinstance(overlaps, Overlaps):
        raise TypeError(
            f"overlaps must be an Overlaps table from instance_overlaps, got "
            f"{type(overlaps).__name__}"
        )
    return _match(overlaps, require_iou_threshold(iou_threshold))


def average_precision(
    reference: np.ndarray,
    candidate: np.ndarray,
    *,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
) -> np.ndarray:
    """Cellpose/DSB average precision ``TP / (TP + FP + FN)`` at several IoU thresholds.

    Parameters
    ----------
    reference, candidate : ndarray of int, shape (H, W)
        Instance label images of the same shape (see :func:`match_instances`).
    thresholds : sequence of float, default (0.5, 0.55, ..., 0.95)
        IoU thresholds, each in (0, 1].

    Returns
    -------
    ndarray of float64, shape (len(thresholds),)
        AP at each threshold; 1.0 everywhere when both images are empty.

    Notes
    -----
    Equals ``cellpose.metrics.average_precision(reference, candidate, threshold=thresholds)``
    on sequentially labelled images (Cellpose counts ``max(id)`` instances, so gaps in the
    ids count as missed cells there) but in float64 rather than float32.
    """
    return np.array(
        [r.ap for r in match_at_thresholds(reference, candidate, thresholds=thresholds)],
        dtype=np.float64,
    )


def f1_scores(
    reference: np.ndarray,
    candidate: np.ndarray,
    *,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
) -> np.ndarray:
    """Instance F1 ``2 TP / (2 TP + FP + FN)`` at several IoU thresholds.

    Parameters
    ----------
    reference, candidate : ndarray of int, shape (H, W)
        Instance label images of the same shape (see :func:`match_instances`).
    thresholds : sequence of float, default (0.5, 0.55, ..., 0.95)
        IoU thresholds, each in (0, 1].

    Returns
    -------
    ndarray of float64, shape (len(thresholds),)
        F1 at each threshold; 1.0 everywhere when both images are empty.
    """
    return np.array(
        [r.f1 for r in match_at_thresholds(reference, candidate, thresholds=thresholds)],
        dtype=np.float64,
    )


def _checked_overlaps(reference: np.ndarray, candidate: np.ndarray) -> Overlaps:
    require_label_image(reference, "reference")
    require_label_image(candidate, "candidate")
    require_same_shape(reference, candidate, "reference", "candidate")
    return _overlaps_unchecked(reference, candidate)


def _match(overlaps: Overlaps, threshold: float) -> MatchResult:
    edges = _true_positive_edges(overlaps, threshold)
    ia = overlaps.pairs[edges, 0]
    ib = overlaps.pairs[edges, 1]
    ious = overlaps.ious[edges]
    order = np.argsort(ia, kind="stable")
    pairs = np.stack([overlaps.labels_a[ia[order]], overlaps.labels_b[ib[order]]], axis=1)
    ious = np.ascontiguousarray(ious[order])
    pairs = pairs.reshape(-1, 2).astype(np.int64, copy=False)
    pairs.flags.writeable = False
    ious.flags.writeable = False
    n_ref, n_cand = overlaps.n_a, overlaps.n_b
    tp = int(edges.size)
    fp = n_cand - tp
    fn = n_ref - tp
    scores = _scores(tp, fp, fn, math.fsum(ious.tolist()), both_empty=(n_ref == 0 and n_cand == 0))
    return MatchResult(
        pairs=pairs,
        ious=ious,
        tp=tp,
        fp=fp,
        fn=fn,
        iou_threshold=threshold,
        n_reference=n_ref,
        n_candidate=n_cand,
        **scores,
    )


def _scores(tp: int, fp: int, fn: int, iou_sum: float, *, both_empty: bool) -> dict[str, float]:
    if both_empty:
        return dict.fromkeys(
            ("precision", "recall", "f1", "ap", "mean_matched_iou", "panoptic_quality"), 1.0
        )
    if tp == 0:
        return dict.fromkeys(
            ("precision", "recall", "f1", "ap", "mean_matched_iou", "panoptic_quality"), 0.0
        )
    return {
        "precision": tp / (tp + fp),
        "recall": tp / (tp + fn),
        "f1": 2 * tp / (2 * tp + fp + fn),
        "ap": tp / (tp + fp + fn),
        "mean_matched_iou": iou_sum / tp,
        "panoptic_quality": iou_sum / (tp + fp / 2 + fn / 2),
    }


def _true_positive_edges(overlaps: Overlaps, threshold: float) -> np.ndarray:
    """Indices into ``overlaps.pairs`` of the matched pairs with IoU >= threshold."""
    above = np.flatnonzero(overlaps.ious >= threshold)
    if above.size == 0:
        return above
    ia = overlaps.pairs[above, 0]
    ib = overlaps.pairs[above, 1]
    if np.bincount(ia).max() <= 1 and np.bincount(ib).max() <= 1:
        # the candidate graph is already a matching: every maximum assignment takes it whole
        return above
    return _solve_assignment(overlaps, threshold)


def _solve_assignment(overlaps: Overlaps, threshold: float) -> np.ndarray:
    """StarDist's assignment objective, solved on the sparse graph of overlapping pairs.

    Maximises ``sum([IoU >= t] + IoU / (2 n_min))`` over matchings; pairs without overlap
    have weight 0 and never change the optimum, so only overlapping pairs are edges. Every
    reference cell also gets a private dummy column so that a full matching always exists,
    and weights are turned into strictly positive costs ``2 - w`` (LAPJVsp needs non-zero
    entries; a constant shift does not move the optimum of a full matching).
    """
    n_a, n_b = overlaps.n_a, overlaps.n_b
    n_min = min(n_a, n_b)
    ious = overlaps.ious
    weights = (ious >= threshold).astype(np.float64) + ious / (2 * n_min)
    rows = np.concatenate([overlaps.pairs[:, 0], np.arange(n_a)])
    cols = np.concatenate([overlaps.pairs[:, 1], n_b + np.arange(n_a)])
    costs = np.concatenate([2.0 - weights, np.full(n_a, 2.0)])
    graph = csr_matrix((costs, (rows, cols)), shape=(n_a, n_b + n_a))
    row_ind, col_ind = min_weight_full_bipartite_matching(graph)
    real = col_ind < n_b
    keys = row_ind[real].astype(np.int64) * n_b + col_ind[real]
    edge_keys = overlaps.pairs[:, 0] * n_b + overlaps.pairs[:, 1]
    matched = np.searchsorted(edge_keys, keys)
    return np.sort(matched[ious[matched] >= threshold])
