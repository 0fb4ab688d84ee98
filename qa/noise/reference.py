"""Leave-one-out references: the consensus of the *other* annotators, with a certainty per cell.

An annotation is never judged against a consensus it took part in. For annotator ``i``
the other annotations are fused with :func:`qa.consensus.fuse` keeping every cluster
(``min_support=1``), and each fused cell gets the reliability-weighted share of the
other annotators who drew it. Cells with a share of at least one half form the
reference behind F1 and the error counts; cells most of the others agree on carry
``quality``; the shares themselves score the instance flags.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from qa.consensus import PreparedMasks, fuse
from qa.metrics import Overlaps, instance_overlaps
from qa.noise.compare import label_areas, overlap_f1, present_ids

#: Floor for first-pass reliabilities, so that one annotation that agrees with nobody
#: still counts a little (a zero weight would make its cells vanish from every vote).
MIN_RELIABILITY = 0.05

#: An annotation whose best agreement (F1) with any other annotation on the image is
#: below this share of the best agreement any pair reaches is an outlier on that image
#: and is left out of the references of the others (its cells count as not drawn): a
#: mask shifted out of register or smeared over its neighbours would otherwise form
#: clusters of its own whose overlaps cut the good annotators' cells apart.
OUTLIER_AGREEMENT = 0.5

#: An annotation of which fewer than this share of the cells overlap any cell of any
#: other annotation is an outlier as well: invented blobs all over an image would
#: otherwise stand as cells everyone else "missed".
CONFIRMED = 0.6


@dataclass(frozen=True)
class Reference:
    """The fused cells of the other annotators, each with its weighted support.

    Attributes
    ----------
    labels : ndarray of int32, shape (H, W)
        Fused label image of the other annotators, every cluster kept; 0 is background.
    ids : ndarray of int64, shape (n,)
        Ids of the fused cells, ascending.
    share : ndarray of float64, shape (n,)
        Reliability-weighted share of the other annotators who drew each cell, in [0, 1].
    members : ndarray of int64, shape (n, k)
        For each cell, the label id every annotator contributed (0 for none); the column
        of the annotator being judged is all zeros.
    voters : ndarray of float64, shape (k,)
        Reliability of each annotator whose cells went into the reference; 0 for the
        annotator being judged and for others left out as outliers.
    """

    labels: np.ndarray
    ids: np.ndarray
    share: np.ndarray
    members: np.ndarray
    voters: np.ndarray

    def certain(self) -> np.ndarray:
        """Label image of the cells with a share of at least 1/2 (the reference proper)."""
        lut = np.zeros(int(self.labels.max(initial=0)) + 1, dtype=self.labels.dtype)
        keep = self.ids[self.share >= 0.5]
        lut[keep] = keep
        return lut[self.labels]

    @cached_property
    def areas(self) -> np.ndarray:
        """Pixel count of each cell, in the order of ``ids`` (int64; computed once)."""
        return label_areas(self.labels, self.ids)

    def area_of(self, ids: np.ndarray) -> np.ndarray:
        """Pixel count of each given reference id (ids must be present)."""
        return self.areas[np.searchsorted(self.ids, np.asarray(ids, dtype=np.int64))]

    def share_of(self, ids: np.ndarray) -> np.ndarray:
        """Share of each given reference id (ids must be present)."""
        return self.share[np.searchsorted(self.ids, np.asarray(ids, dtype=np.int64))]

    def evidence(self, ids: object) -> tuple[tuple[int, int], ...]:
        """(annotator, label id) of every other annotator's cell behind the given reference ids."""
        rows = self.members[np.searchsorted(self.ids, np.asarray(ids, dtype=np.int64))]
        rows = rows.reshape(-1, self.members.shape[1])
        return tuple(
            sorted({(int(j), int(v)) for row in rows for j, v in enumerate(row) if v != 0})
        )


def pairwise_overlaps(masks: Sequence[np.ndarray]) -> dict[tuple[int, int], Overlaps]:
    """:func:`qa.metrics.instance_overlaps` of every pair ``(a, b)``, ``a < b``, of annotations."""
    k = len(masks)
    return {(a, b): instance_overlaps(masks[a], masks[b])
            for a in range(k) for b in range(a + 1, k)}


def pairwise_f1(masks: Sequence[np.ndarray], *, iou_threshold: float,
                overlaps: dict[tuple[int, int], Overlaps] | None = None) -> np.ndarray:
    """F1 of one-to-one IoU matching between every pair of annotations, shape (k, k), 1 on
    the diagonal (``compare_labels(a, b).f1``); ``overlaps`` from :func:`pairwise_overlaps`
    when already computed."""
    k = len(masks)
    if overlaps is None:
        overlaps = pairwise_overlaps(masks)
    f1 = np.eye(k)
    for (a, b), ov in overlaps.items():
        f1[a, b] = f1[b, a] = overlap_f1(ov, iou_threshold)
    return f1


def first_pass_reliability(
    masks: Sequence[np.ndarray], *, iou_threshold: float, f1: np.ndarray | None = None
) -> np.ndarray:
    """Each annotator's mean F1 against every other annotator, floored at MIN_RELIABILITY.

    Parameters
    ----------
    masks : sequence of ndarray of int, shape (H, W)
        k >= 2 validated label images.
    iou_threshold : float
        Matching threshold (>= 0.5).
    f1 : ndarray, shape (k, k), optional
        :func:`pairwise_f1` of ``masks``, when already computed.

    Returns
    -------
    ndarray of float64, shape (k,)
        In [MIN_RELIABILITY, 1].
    """
    k = len(masks)
    if f1 is None:
        f1 = pairwise_f1(masks, iou_threshold=iou_threshold)
    mean = (f1.sum(axis=1) - 1.0) / (k - 1)
    return np.clip(mean, MIN_RELIABILITY, 1.0)


def outlier_annotations(masks: Sequence[np.ndarray], f1: np.ndarray, *,
                        overlaps: dict[tuple[int, int], Overlaps] | None = None) -> np.ndarray:
    """Which annotations of one image are too damaged to stand in anyone's reference.

    An annotation is an outlier when its best F1 with any other annotation is below
    :data:`OUTLIER_AGREEMENT` times the best F1 of any pair (it agrees with nobody while
    others agree with each other), or when fewer than :data:`CONFIRMED` of its cells
    overlap a cell of another annotation (:func:`confirmed_share`). With two annotations
    nobody is an outlier: there is no majority to tell which one is off.

    Returns
    -------
    ndarray of bool, shape (k,)
    """
    k = len(masks)
    if k < 3:
        return np.zeros(k, dtype=bool)
    best = np.where(np.eye(k, dtype=bool), -np.inf, f1).max(axis=1)
    disagreeing = best < OUTLIER_AGREEMENT * best.max()
    unconfirmed = np.array([confirmed_share(masks, j, overlaps=overlaps) < CONFIRMED
                            for j in range(k)])
    return disagreeing | unconfirmed


def confirmed_share(masks: Sequence[np.ndarray], j: int, *,
                    overlaps: dict[tuple[int, int], Overlaps] | None = None) -> float:
    """Share of the cells of ``masks[j]`` that overlap a cell of any other mask (1.0 if none).

    ``overlaps`` (:func:`pairwise_overlaps` of ``masks``) saves the pixel passes: a cell
    overlaps another mask exactly when it has a pair in their overlap table.
    """
    if overlaps is not None and len(masks) > 1:
        seen, n_cells = [], 0
        for (a, b), ov in overlaps.items():
            if j in (a, b):
                n_cells = ov.n_a if a == j else ov.n_b
                seen.append(ov.pairs[:, 0 if a == j else 1])
        if n_cells == 0:
            return 1.0
        return float(np.unique(np.concatenate(seen)).size / n_cells)
    cells = present_ids(masks[j])
    if cells.size == 0:
        return 1.0
    drawn = np.zeros(masks[j].shape, dtype=bool)
    for n, m in enumerate(masks):
        if n != j:
            drawn |= m != 0
    return float(present_ids(np.where(drawn, masks[j], 0)).size / cells.size)


def panel_weights(
    masks: Sequence[np.ndarray], weights: np.ndarray | None, *, iou_threshold: float,
    overlaps: dict[tuple[int, int], Overlaps] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Reliabilities and outliers of the annotations of one image.

    Parameters
    ----------
    masks : sequence of ndarray of int, shape (H, W)
        k >= 2 validated label images.
    weights : ndarray of float64, shape (k,), or None
        Validated reliabilities; None for :func:`first_pass_reliability`.
    iou_threshold : float
        Matching threshold (>= 0.5).
    overlaps : dict, optional
        :func:`pairwise_overlaps` of ``masks`` when already computed.

    Returns
    -------
    weights : ndarray of float64, shape (k,)
    outliers : ndarray of bool, shape (k,)
        From :func:`outlier_annotations`, on the same pairwise F1 as the first pass.
    """
    if overlaps is None:
        overlaps = pairwise_overlaps(masks)
    f1 = pairwise_f1(masks, iou_threshold=iou_threshold, overlaps=overlaps)
    if weights is None:
        weights = first_pass_reliability(masks, iou_threshold=iou_threshold, f1=f1)
    return weights, outlier_annotations(masks, f1, overlaps=overlaps)


def leave_one_out(
    masks: Sequence[np.ndarray], annotator: int, weights: np.ndarray, *, iou_threshold: float,
    outliers: np.ndarray | None = None, prepared: PreparedMasks | None = None,
) -> Reference:
    """Fuse every annotation except ``masks[annotator]`` and the outliers among the others.

    Outliers (:func:`outlier_annotations`) are not fused and have no say in the shares:
    the reference is what it would be had they not annotated the image (their
    reliability may be anything: high from a global estimate, low on this image). When
    every other annotation is an outlier, the most reliable one is kept.

    Parameters
    ----------
    masks : sequence of ndarray of int, shape (H, W)
        k >= 2 validated label images.
    annotator : int
        Index of the annotation to leave out.
    weights : ndarray of float64, shape (k,)
        Per-annotator reliabilities in (0, 1].
    iou_threshold : float
        Clustering threshold passed to :func:`qa.consensus.fuse`.
    outliers : ndarray of bool, shape (k,), optional
        Annotations to leave out of the reference (default: none).
    prepared : PreparedMasks, optional
        :func:`qa.consensus.prepare_masks` of ``masks``: the leave-one-out fusions of one
        image then share each annotation's distance maps and each pair's overlap table
        (same result).

    Returns
    -------
    Reference
    """
    k = len(masks)
    others = [j for j in range(k) if j != annotator]
    keep = [j for j in others if outliers is None or not outliers[j]]
    if not keep:
        keep = [max(others, key=lambda j: weights[j])]
    cons = fuse(
        [masks[j] for j in keep] if prepared is None else prepared.subset(keep),
        iou_threshold=iou_threshold, min_support=1, weights=weights[keep],
    )
    members = np.zeros((cons.members.shape[0], k), dtype=np.int64)
    members[:, keep] = cons.members
    voters = np.zeros(k)
    voters[keep] = weights[keep]
    return reference_from_consensus(cons.labels, members, voters, annotator=annotator)


def reference_from_consensus(
    labels: np.ndarray, members: np.ndarray, weights: np.ndarray, *, annotator: int
) -> Reference:
    """Leave-one-out support of every cell of a consensus, from its members table.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        Consensus label image; instance ``n`` (row ``n`` of ``members``) has id ``n + 1``.
    members : ndarray of int, shape (n, k)
        Label id each of the ``k`` annotators contributed to each instance, or 0.
    weights : ndarray of float64, shape (k,)
        Reliabilities of the ``k`` annotators; 0 for annotators that have no say.
    annotator : int
        The annotator being judged: its column is ignored (and zeroed).

    Returns
    -------
    Reference
        Only instances present in ``labels`` are kept.
    """
    k = weights.size
    members = np.array(members, dtype=np.int64).reshape(-1, k)
    members[:, annotator] = 0
    others = np.ones(k, dtype=bool)
    others[annotator] = False
    share = (members[:, others] != 0) @ weights[others] / weights[others].sum()
    present = present_ids(labels)
    present = present[present <= members.shape[0]]
    return Reference(
        labels=labels.astype(np.int32, copy=False),
        ids=present,
        share=share[present - 1],
        members=members[present - 1],
        voters=np.where(others, weights, 0.0),
    )
