"""Fusion of several annotators' instance masks of one image into a consensus."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral

import numpy as np
from scipy import ndimage as ndi

from qa.metrics.validation import require_iou_threshold

from .alignment import box_centres, estimate_translations, translate
from .anchoring import check_boundary_bias
from .clustering import Foreground, cluster_instances, foreground_overlaps
from .maps import cluster_maps, moved_foreground
from .prepared import PreparedMasks, check_masks, prepare_masks
from .reliability import anchor_biases, detection_em, size_evidence, solve_outlines
from .voting import instance_summary, outline_stats, vote_and_resolve


@dataclass(frozen=True, eq=False)
class Consensus:
    """The fused label image and what stands behind each consensus instance.

    ``N`` is the number of consensus instances, ``K`` the number of annotators, ``R`` the
    number of clusters that were not kept.

    Attributes
    ----------
    labels : ndarray of uint16 (uint32 above 65,535 instances), shape (H, W)
        Consensus instances 1..N, numbered in raster order of their first pixel;
        0 = background.
    support : ndarray of int64, shape (N,)
        How many annotators drew instance ``i + 1`` (members that are non-zero).
    confidence : ndarray of float64, shape (N,)
        Posterior probability (0..1) that instance ``i + 1`` is a real cell under the
        per-image detection model (see Notes of :func:`fuse`).
    members : ndarray of int64, shape (N, K)
        The label id annotator ``j`` contributed to instance ``i + 1`` (ids of the input
        masks, as given), or 0.
    agreement : ndarray of float64, shape (N,)
        Mean IoU between instance ``i + 1`` and its members.
    rejected : ndarray of int64, shape (R, K)
        Members of the clusters not kept: those judged spurious (posterior <= 0.5, mostly
        instances one annotator drew alone) and rescued ones dropped as explained by
        better-supported instances (split fragments, merged blobs; posterior > 0.5).
    rejected_confidence : ndarray of float64, shape (R,)
        Posterior of those clusters being real.
    sensitivity : ndarray of float64, shape (K,)
        Estimated probability that annotator ``j`` draws a real cell (NaN with one mask or
        no instances at all).
    false_positive_rate : ndarray of float64, shape (K,)
        Estimated share of the spurious clusters that annotator ``j`` drew (NaN likewise).
    boundary_bias : ndarray of float64, shape (K,)
        Estimated systematic outline offset of annotator ``j`` in px (positive = draws
        cells too large), corrected for before the pixel vote: relative to the other
        annotators, at the level the gold biases (``boundary_bias=`` of :func:`fuse`) set
        when given.
    boundary_noise : ndarray of float64, shape (K,)
        Estimated standard deviation (px) of annotator ``j``'s outlines around its biased
        mean outline; pixel votes are weighted by
        ``weights * outline_trust / boundary_noise**2``.
    weights : ndarray of float64, shape (K,)
        The weights used (all ones when none were given).
    iou_threshold : float
    min_support : int
    outline_trust : ndarray of float64, shape (K,)
        0..1 per annotator: how well its outlines on this image fit the others' (or its
        gold bias): 0 for an annotation whose outlines sit 3 px or more off (a smear),
        which then has no say in the outlines.
    anchored : bool
        Whether gold biases set the level of ``boundary_bias`` (else the annotators' robust
        outlier-trimmed mean defines "no bias").
    translation : ndarray of int64, shape (K, 2)
        ``(dy, dx)`` px annotation ``j`` was moved by before fusing: zeros but for a
        mis-registered annotation (every cell displaced by one common offset of 2 px or
        more while the others agree; :func:`qa.consensus.alignment.estimate_translations`).
        ``members`` still give the ids as drawn.
    """

    labels: np.ndarray
    support: np.ndarray
    confidence: np.ndarray
    members: np.ndarray
    agreement: np.ndarray
    rejected: np.ndarray
    rejected_confidence: np.ndarray
    sensitivity: np.ndarray
    false_positive_rate: np.ndarray
    boundary_bias: np.ndarray
    boundary_noise: np.ndarray
    weights: np.ndarray
    iou_threshold: float
    min_support: int
    outline_trust: np.ndarray | None = None
    anchored: bool = False
    translation: np.ndarray | None = None

    @property
    def n_instances(self) -> int:
        return int(self.support.shape[0])


def _check_weights(weights, k: int) -> np.ndarray:
    if weights is None:
        return np.ones(k)
    w = np.asarray(weights, dtype=np.float64) if not isinstance(weights, str) else None
    if w is None or w.ndim != 1 or w.shape[0] != k:
        raise ValueError(f"weights must be a 1-D sequence of {k} numbers (one per mask), "
                         f"got {weights!r}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError(f"weights must be finite and >= 0, got {w.tolist()}")
    if w.sum() <= 0:
        raise ValueError("weights must not all be zero")
    return w


def _check_min_support(min_support, k: int, name: str = "min_support") -> int:
    if min_support is None:
        return k // 2 + 1
    if isinstance(min_support, bool) or not isinstance(min_support, Integral):
        raise TypeError(f"{name} must be an int, got {min_support!r}")
    if not 1 <= int(min_support) <= k:
        raise ValueError(f"{name} must be in 1..{k} (the number of masks), got {min_support}")
    return int(min_support)


def _cluster_and_judge(seqs, keys, areas, iou_threshold, min_support, rescue, overlaps=None):
    k = len(seqs)
    members = cluster_instances(seqs, keys, iou_threshold=iou_threshold, overlaps=overlaps)
    drawn = members > 0
    support = drawn.sum(axis=1)
    log_area = np.zeros(members.shape[0])
    for j in range(k):
        nz = drawn[:, j]
        log_area[nz] += np.log(areas[j][members[nz, j] - 1])
    log_area /= np.maximum(support, 1)
    if members.shape[0] == 0:
        posterior = np.zeros(0)
        sens = fpr = np.full(k, np.nan)
    elif k == 1:
        posterior = np.ones(members.shape[0])
        sens = fpr = np.full(1, np.nan)
    else:
        initial = np.where(support >= min_support, 0.95, 0.3)
        evidence = size_evidence(log_area, support >= min_support)
        posterior, sens, fpr, _ = detection_em(drawn, initial=initial, evidence=evidence)
    keep = support >= min_support
    if rescue:
        keep |= posterior > 0.5
    return members, support, posterior, sens, fpr, keep


def _label_dtype(n: int):
    return np.uint16 if n <= np.iinfo(np.uint16).max else np.uint32


def fuse(masks: Sequence[np.ndarray], *, iou_threshold: float = 0.5,
         min_support: int | None = None, weights: Sequence[float] | None = None,
         rescue: bool = True,
         boundary_bias: Sequence[float] | None = None) -> Consensus:
    """Fuse K annotators' instance masks of one image into one consensus label image.

    Parameters
    ----------
    masks : sequence of ndarray of int, shape (H, W), or PreparedMasks
        One instance label image per annotator (0 = background, ids need not be
        sequential); or one (K, H, W) integer array. At least one. Or
        :func:`qa.consensus.prepare_masks` of them (or a ``.subset``), which shares the
        per-annotator work between several fusions of the same annotations.
    iou_threshold : float
        Smallest IoU for two annotators' instances to be the same cell, in (0, 1].
    min_support : int, optional
        Clusters drawn by at least this many annotators are always kept. Default: a strict
        majority, ``K // 2 + 1``.
    weights : sequence of float, optional
        Per-annotator reliability learnt across images, e.g. each annotator's mean F1
        against the consensus (>= 0, not all 0; only ratios matter, equal weights are the
        same as none). They scale each annotator's pixel votes (together with its outline
        precision estimated from the image). They do not move where "no bias" lies
        (agreement-based reliabilities favour the majority's outline habit), nor which
        clusters are kept:
        with three or more annotators the image itself estimates who to trust, and
        weights that move the detection model made the consensus worse in simulation
        (see :mod:`qa.consensus.reliability`), which weighting must never do.
    rescue : bool
        Keep clusters below ``min_support`` whose posterior of being real is above 0.5.
        ``False`` gives plain support thresholding.
    boundary_bias : sequence of float, optional
        Each annotator's absolute outline bias in px (positive = draws cells too large; NaN
        = unknown), measured against gold truth with
        :func:`qa.consensus.estimate_boundary_bias`. The image still estimates how the
        annotators' outlines differ; these set where the true outline lies (the median of
        what the known annotators say), so a consensus of mostly dilating annotators is
        not too large. Values beyond +-2.5 px are corrected by 2.5 px. Without it "no bias"
        is the annotators' outlier-trimmed mean.

    Returns
    -------
    Consensus
        Label image, per-instance support, confidence, members and agreement, the rejected
        clusters, and the per-annotator estimates (sensitivity, false-positive rate,
        boundary bias).

    Raises
    ------
    TypeError
        If ``masks`` is not a sequence of integer arrays or ``min_support`` not an int.
    ValueError
        If there are no masks, shapes differ, a mask is not 2-D or has negative ids, or
        ``iou_threshold``, ``min_support``, ``weights`` or ``boundary_bias`` are out of
        range.

    Notes
    -----
    0. **Register**: with three or more annotations, one whose cells all sit by one common
       offset of 2 px or more from every other annotation's, while those agree with each
       other, is moved back by that offset (whole pixels) first
       (:mod:`qa.consensus.alignment`): a mis-registered upload then votes like the others.
    1. **Cluster** (:mod:`qa.consensus.clustering`): instances of different annotators
       with IoU >= ``iou_threshold`` are linked in order of decreasing IoU, never putting
       two instances of one annotator in one cluster.
    2. **Judge** (:mod:`qa.consensus.reliability`): a Dawid–Skene EM over the
       cluster x annotator detection matrix estimates each annotator's sensitivity and
       false-positive rate from the clusters the others agree on, and each cluster's
       posterior of being real; each cluster's size, compared with the sizes of the
       clusters a majority drew, adds its log likelihood ratio (specks and fragments are
       unlikely cells). A cluster is kept when its support is at least ``min_support`` or
       (with ``rescue``) its posterior is above 0.5: a cell that one reliable annotator
       drew alone is often real, while the lone drawings of an annotator whose solo
       instances the others never confirm are not.
    3. **Correct outlines**: from the pairwise offsets between annotators' outlines in the
       clusters they share, each annotator's systematic offset (px outside the others) and
       outline noise variance are solved for by least squares. Annotations cannot say
       where the true outline is, only how annotators differ: with gold biases
       (``boundary_bias``) the known annotators set the level; without, the robust
       outlier-trimmed mean annotator does, so that one smeared
       annotation does not shift everybody's correction
       (:func:`qa.consensus.reliability.anchor_biases`). An annotation 3 px or more off
       the level (or its gold bias) gets no vote on outlines. When a relative offset
       reaches 0.25 px the clustering and judging are redone on bias-corrected masks, so
       that an eroding and a dilating annotator's drawings of one small cell still meet
       the IoU threshold.
    4. **Vote pixels** (:mod:`qa.consensus.voting`): inside each kept cluster the
       consensus outline is the zero level set of the mean of its members' bias-corrected
       signed distance maps, clipped to +-3 px, weighted by
       ``w_j * trust_j / noise_j**2`` (the maximum-likelihood mean of Gaussian outline
       errors: the most precise outline leads where the others scatter).
    5. **Resolve overlaps**: well-supported clusters go first, then rescued ones by
       decreasing posterior; a rescued cluster more than half of whose area is already
       taken is dropped as explained by the others (a split fragment, a merged blob, or a
       second drawing of a cell). A pixel claimed by two consensus instances goes to the
       one it lies deeper inside, so touching cells stay separate; each instance keeps its
       largest connected piece, and instances left empty are dropped.

    With one mask the consensus is that mask relabelled in raster order (support 1,
    confidence 1). All-background masks give an all-background consensus
    with zero instances.

    References
    ----------
    Dawid & Skene (1979), Maximum likelihood estimation of observer error-rates using the
    EM algorithm. Warfield, Zou & Wells (2004), Simultaneous truth and performance level
    estimation (STAPLE), IEEE TMI 23(7).
    """
    prepared = masks if isinstance(masks, PreparedMasks) else prepare_masks(masks)
    k = len(prepared)
    iou_threshold = require_iou_threshold(iou_threshold)
    min_support = _check_min_support(min_support, k)
    w = _check_weights(weights, k)
    gold = check_boundary_bias(boundary_bias, k)
    shape = prepared.shape

    annotations = [prepared.annotation(j) for j in range(k)]
    ids = [a.ids for a in annotations]
    translation = estimate_translations([box_centres(a.boxes) for a in annotations],
                                        prepared.overlaps)
    if translation.any():  # a mis-registered annotation: fuse it moved back
        prepared = prepare_masks([translate(a.seq, t) for a, t in
                                  zip(annotations, translation, strict=True)])
        annotations = [prepared.annotation(j) for j in range(k)]
        ids = [i[a.ids - 1] for i, a in zip(ids, annotations, strict=True)]
    seqs = [a.seq for a in annotations]
    areas = [a.areas for a in annotations]
    keys = [a.rank for a in annotations]
    members, support, posterior, sens, fpr, keep = _cluster_and_judge(
        seqs, keys, areas, iou_threshold, min_support, rescue, prepared.overlaps)
    kept = members[keep]
    inst = [prepared.instance_maps(j) for j in range(k)]
    maps = cluster_maps(kept, inst, shape)
    stats = outline_stats(maps, k)
    relative, noise, shared = solve_outlines(stats)
    bias, _, _ = anchor_biases(relative, shared)
    if np.abs(bias).max(initial=0.0) >= 0.25:
        # Outlines drawn too small or too large make one cell's instances miss the IoU
        # threshold; cluster again on bias-corrected masks (voting corrects on its own).
        # pixels sit >= 0.5 px inside or outside their outline: a smaller move keeps the
        # mask, its foreground list and its overlaps with the other unmoved masks
        moved = np.abs(bias.astype(np.float32)) >= 0.5  # moved_foreground adds float32
        shifted = [Foreground.of(*moved_foreground(im, -b, shape,
                                                   inside=prepared.foreground(j)), n=len(a))
                   if moved[j] else prepared.foreground(j)
                   for j, (im, b, a) in enumerate(zip(inst, bias, areas, strict=True))]

        def overlaps(a: int, b: int):
            if moved[a] or moved[b]:
                return foreground_overlaps(shifted[a], shifted[b])
            return prepared.overlaps(a, b)

        members, support, posterior, sens, fpr, keep = _cluster_and_judge(
            [s.flat.reshape(shape) for s in shifted], keys, areas, iou_threshold, min_support,
            rescue, overlaps)
        if not np.array_equal(members[keep], kept):  # else the maps and stats stand
            # clusters with the same members keep their maps and outline sums
            kept, first = members[keep], (maps, stats)
            maps = cluster_maps(kept, inst, shape, reuse=first[0])
            stats = outline_stats(maps, k, reuse=first)
            relative, noise, shared = solve_outlines(stats)
    bias, trust, _ = anchor_biases(relative, shared, gold=gold)
    kept_idx = np.flatnonzero(keep)
    strong = support[kept_idx] >= min_support
    # strong clusters first (canonical order), then rescued ones, most probable first
    order = np.lexsort((np.arange(len(maps)), -posterior[kept_idx], ~strong))
    # pixel votes: user weight times outline precision (inverse noise variance), none for
    # an annotation whose outlines are far off everybody else's on this image
    owner, _ = vote_and_resolve(maps, bias, w * trust / noise, shape, order=order,
                                strong=strong)

    # number the surviving instances in raster order of their first pixel
    firsts, agreement = instance_summary(maps, owner)
    alive = [int(c) for c in np.flatnonzero(firsts >= 0)]
    alive = [alive[i] for i in np.argsort(firsts[alive], kind="stable")]
    lut = np.zeros(len(maps) + 1, np.int64)
    lut[[c + 1 for c in alive]] = np.arange(1, len(alive) + 1)
    labels = lut[owner].astype(_label_dtype(len(alive)))
    agreement = agreement[alive].astype(np.float64) if alive else np.zeros(0)

    def original_ids(rows: np.ndarray) -> np.ndarray:
        out = np.zeros(rows.shape, np.int64)
        for j in range(k):
            nz = rows[:, j] > 0
            out[nz, j] = ids[j][rows[nz, j] - 1]
        return out

    final_idx = kept_idx[alive] if alive else np.zeros(0, np.int64)
    dropped = np.ones(members.shape[0], bool)
    dropped[final_idx] = False
    return Consensus(
        labels=labels,
        support=support[final_idx].astype(np.int64),
        confidence=posterior[final_idx].astype(np.float64),
        members=original_ids(members[final_idx]),
        agreement=agreement,
        rejected=original_ids(members[dropped]),
        rejected_confidence=posterior[dropped].astype(np.float64),
        sensitivity=np.asarray(sens, np.float64),
        false_positive_rate=np.asarray(fpr, np.float64),
        boundary_bias=bias.astype(np.float64),
        boundary_noise=np.sqrt(noise).astype(np.float64),
        weights=w,
        iou_threshold=iou_threshold,
        min_support=min_support,
        outline_trust=trust.astype(np.float64),
        anchored=gold is not None,
        translation=translation,
    )


def majority_vote(masks: Sequence[np.ndarray], *, min_votes: int | None = None) -> np.ndarray:
    """Baseline: per-pixel majority of foreground, then connected components.

    Parameters
    ----------
    masks : sequence of ndarray of int, shape (H, W)
        Instance label images (only foreground vs background is used).
    min_votes : int, optional
        A pixel is foreground when at least this many masks label it; default a strict
        majority ``K // 2 + 1``.

    Returns
    -------
    ndarray of uint16 (uint32 above 65,535 components), shape (H, W)
        4-connected components of the voted foreground, numbered in raster order. Touching
        cells merge into one component: the weakness the consensus avoids.
    """
    arrays = check_masks(masks)
    need = _check_min_support(min_votes, len(arrays), "min_votes")
    votes = np.zeros(arrays[0].shape, np.int32)
    for m in arrays:
        votes += m > 0
    lab, n = ndi.label(votes >= need)
    return lab.astype(_label_dtype(n))

