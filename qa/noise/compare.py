"""Cell-by-cell comparison of a candidate label image with a reference label image.

This is the geometry shared by annotation scores, instance flags and model
disagreement: it sorts every reference and candidate cell into exactly one of
*matched*, *merged*, *split*, *boundary* (a pair whose outlines disagree badly),
*missed* (reference cells only) and *spurious* (candidate cells only).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qa.metrics import Overlaps, instance_overlaps

#: A reference cell counts as inside a candidate cell (and the reverse) when more
#: than this share of its pixels lie there; above one half the owner is unique.
CONTAINMENT = 0.5


@dataclass(frozen=True)
class Comparison:
    """Every cell of a reference and of a candidate label image, sorted by what happened to it.

    Attributes
    ----------
    matched : ndarray of int64, shape (n, 2)
        Pairs (reference id, candidate id) matched one-to-one with IoU at least the
        threshold, outside any merge or split.
    matched_ious : ndarray of float64, shape (n,)
        IoU of each matched pair.
    matched_shifts : ndarray of float64, shape (n,)
        Mean outline displacement of each matched pair in pixels: (candidate area -
        reference area) / reference perimeter; positive when the candidate is drawn larger.
    poor : ndarray of int64, shape (p, 2)
        Pairs (reference id, candidate id) that are each other's best partner and share
        more than half of one of the two cells, but whose IoU is below the threshold: the
        same cell drawn with a badly shifted outline.
    poor_ious : ndarray of float64, shape (p,)
        IoU of each poor pair.
    missed : ndarray of int64, shape (m,)
        Reference ids with no counterpart in the candidate.
    spurious : ndarray of int64, shape (s,)
        Candidate ids with no counterpart in the reference.
    merged : tuple of (int, tuple of int)
        (candidate id, reference ids): one candidate cell holding more than half of each
        of two or more reference cells.
    split : tuple of (int, tuple of int)
        (reference id, candidate ids): one reference cell holding more than half of each
        of two or more candidate cells.
    f1 : float
        F1 of the plain one-to-one IoU matching over all cells (merges and splits
        included), as :func:`qa.metrics.match_instances` defines it; 1.0 when both
        images are empty.
    n_reference, n_candidate : int
        Number of cells in each image.
    """

    matched: np.ndarray
    matched_ious: np.ndarray
    matched_shifts: np.ndarray
    poor: np.ndarray
    poor_ious: np.ndarray
    missed: np.ndarray
    spurious: np.ndarray
    merged: tuple[tuple[int, tuple[int, ...]], ...]
    split: tuple[tuple[int, tuple[int, ...]], ...]
    f1: float
    n_reference: int
    n_candidate: int


def id_counts(labels: np.ndarray) -> np.ndarray | None:
    """Pixel count per id 0..max (``np.bincount`` of the label image), or None when the
    ids are too sparse for a table (then callers sort with ``np.unique``)."""
    top = int(labels.max(initial=0))
    if top > max(4 * labels.size, 1 << 16):
        return None
    # count the foreground only (cells cover a small share of most images): one cheap
    # comparison and a gather instead of a bincount cast to int64 over every pixel
    flat = labels.ravel()
    fg = flat[flat != 0]
    counts = np.bincount(fg.astype(np.intp, copy=False), minlength=top + 1)
    counts[0] = flat.size - fg.size
    return counts


def sequential_labels(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Renumber a label image 1..n so that per-id tables stay small whatever the ids.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        Instance label image, 0 is background; ids may be as large as the dtype allows.

    Returns
    -------
    seq : ndarray of int64, shape (H, W)
        ``k + 1`` where ``labels == ids[k]``, 0 on background.
    ids : ndarray of int64, shape (n,)
        The original ids, ascending.
    """
    counts = id_counts(labels)
    if counts is not None:
        # a lookup table over the id range: linear time instead of np.unique's sort
        top = counts.size - 1
        ids = np.flatnonzero(counts[1:]) + 1
        lut = np.zeros(top + 1, dtype=np.int64)
        lut[ids] = np.arange(1, ids.size + 1)
        return lut[labels], ids.astype(np.int64)
    uniq, inverse = np.unique(labels, return_inverse=True)
    inverse = inverse.reshape(labels.shape).astype(np.int64)
    if uniq.size and uniq[0] == 0:
        return inverse, uniq[1:].astype(np.int64)
    return inverse + 1, uniq.astype(np.int64)


def present_ids(labels: np.ndarray) -> np.ndarray:
    """Ids (> 0) present in a label image, ascending, int64 (``np.unique`` without the sort)."""
    counts = id_counts(labels)
    if counts is not None:
        return (np.flatnonzero(counts[1:]) + 1).astype(np.int64)
    return np.unique(labels[labels != 0]).astype(np.int64)


def label_areas(labels: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Pixel count of each given id (0 for an absent one), int64."""
    ids = np.asarray(ids, dtype=np.int64)
    counts = id_counts(labels)
    if counts is not None:
        top = counts.size - 1
        inside = (ids >= 0) & (ids <= top)
        return np.where(inside, counts[np.clip(ids, 0, top)], 0).astype(np.int64)
    present, counts = np.unique(labels, return_counts=True)
    k = np.clip(np.searchsorted(present, ids), 0, present.size - 1)
    return np.where(present[k] == ids, counts[k], 0).astype(np.int64)


def perimeters(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Count the outline pixels of every cell.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        Instance label image, 0 is background.

    Returns
    -------
    ids : ndarray of int64, shape (n,)
        The cell ids, ascending.
    counts : ndarray of float64, shape (n,)
        Pixels of each cell with a 4-neighbour outside it (the image border counts as
        outside); at least 1.
    """
    padded = np.pad(labels, 1, mode="constant", constant_values=0)
    core = padded[1:-1, 1:-1]
    edge = np.zeros(labels.shape, dtype=bool)
    for shifted in (padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:]):
        edge |= shifted != core
    edge &= core != 0
    ids = present_ids(labels)
    if ids.size == 0:
        return ids, np.zeros(0)
    counts = np.bincount(np.searchsorted(ids, core[edge]), minlength=ids.size).astype(float)
    return ids, np.maximum(counts, 1.0)


def _greedy_one_to_one(ref: np.ndarray, cand: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Indices into the pair arrays of a one-to-one matching, best scores first.

    For IoU above 0.5 every cell has at most one partner, so greedy equals the optimal
    assignment; at exactly 0.5 ties are broken by IoU then by id.
    """
    order = np.lexsort((cand, ref, -score))
    used_r: set[int] = set()
    used_c: set[int] = set()
    keep = []
    for k in order:
        r, c = int(ref[k]), int(cand[k])
        if r in used_r or c in used_c:
            continue
        used_r.add(r)
        used_c.add(c)
        keep.append(k)
    return np.asarray(keep, dtype=np.int64)


def overlap_f1(ov: Overlaps, iou_threshold: float) -> float:
    """F1 of the plain one-to-one IoU matching over all cells of an overlap table, the way
    :func:`qa.metrics.match_instances` counts it (``Comparison.f1``); 1.0 when both images
    are empty."""
    pairs = np.asarray(ov.pairs, dtype=np.int64).reshape(-1, 2)
    good = np.asarray(ov.ious, dtype=float) >= iou_threshold
    tp = _greedy_one_to_one(pairs[good, 0], pairs[good, 1], ov.ious[good]).size
    n = ov.n_a + ov.n_b
    return 1.0 if n == 0 else 2.0 * tp / n


def restrict_reference(ov: Overlaps, ids: np.ndarray) -> Overlaps:
    """The overlap table had the reference (``a``) held only the cells ``ids``.

    Every other reference cell becomes background; IoUs of the pairs kept do not change
    (they depend on the pair alone), so this equals ``instance_overlaps`` of the
    restricted image without another pass over the pixels.
    """
    keep = np.isin(ov.labels_a, np.asarray(ids, dtype=np.int64))
    index = np.cumsum(keep) - 1
    rows = keep[ov.pairs[:, 0]]
    pairs = np.stack([index[ov.pairs[rows, 0]], ov.pairs[rows, 1]], axis=1).reshape(-1, 2)
    return Overlaps(
        labels_a=ov.labels_a[keep], labels_b=ov.labels_b, areas_a=ov.areas_a[keep],
        areas_b=ov.areas_b, pairs=pairs.astype(np.int64), intersections=ov.intersections[rows],
        ious=ov.ious[rows],
    )


def compare_labels(
    reference: np.ndarray, candidate: np.ndarray, *, iou_threshold: float = 0.5,
    overlaps: Overlaps | None = None,
    perimeter: tuple[np.ndarray, np.ndarray] | None = None,
) -> Comparison:
    """Sort the cells of two label images into matched, merged, split, boundary, missed, spurious.

    Parameters
    ----------
    reference, candidate : ndarray of int, shape (H, W)
        Instance label images (validated by the caller); 0 is background, ids need not
        be contiguous.
    iou_threshold : float, keyword-only
        Minimum IoU for a one-to-one match; must be at least 0.5.
    overlaps : Overlaps, keyword-only, optional
        ``instance_overlaps(reference, candidate)`` when already computed.
    perimeter : (ndarray, ndarray), keyword-only, optional
        ``perimeters(reference)`` when already computed (or of a label image holding the
        reference cells and others: a cell's outline pixels do not depend on which
        neighbour it meets).

    Returns
    -------
    Comparison

    Notes
    -----
    With I the intersection of reference cell r and candidate cell c, a pair has
    ``I / |r| > 0.5`` for at most one c per r and ``I / |c| > 0.5`` for at most one r per c.

    1. *merged*: a candidate cell holding more than half of each of >= 2 reference cells.
    2. *split*: a reference cell holding more than half of each of >= 2 candidate cells
       (candidate cells already counted as merges are left out).
    3. *matched*: remaining cells paired one-to-one with IoU >= ``iou_threshold``.
    4. *poor* (reported as boundary errors): remaining mutual-best pairs where more than
       half of either cell lies in the other.
    5. Remaining reference cells are *missed*, remaining candidate cells *spurious*.
    """
    ov = instance_overlaps(reference, candidate) if overlaps is None else overlaps
    ids_r = np.asarray(ov.labels_a, dtype=np.int64)
    ids_c = np.asarray(ov.labels_b, dtype=np.int64)
    area_r = np.asarray(ov.areas_a, dtype=float)
    area_c = np.asarray(ov.areas_b, dtype=float)
    pairs = np.asarray(ov.pairs, dtype=np.int64).reshape(-1, 2)
    inter = np.asarray(ov.intersections, dtype=float)
    ious = np.asarray(ov.ious, dtype=float)
    pr, pc = pairs[:, 0], pairs[:, 1]  # indices into ids_r / ids_c
    frac_r = inter / area_r[pr] if pr.size else np.zeros(0)
    frac_c = inter / area_c[pc] if pc.size else np.zeros(0)

    good = ious >= iou_threshold
    n_r, n_c = ids_r.size, ids_c.size
    f1 = overlap_f1(ov, iou_threshold)

    used_r = np.zeros(n_r, dtype=bool)
    used_c = np.zeros(n_c, dtype=bool)

    merged = []
    inside_c = frac_r > CONTAINMENT
    counts = np.bincount(pc[inside_c], minlength=n_c)
    for c in np.flatnonzero(counts >= 2):
        members = np.sort(pr[inside_c & (pc == c)])
        merged.append((int(ids_c[c]), tuple(int(ids_r[r]) for r in members)))
        used_c[c] = True
        used_r[members] = True

    split = []
    inside_r = (frac_c > CONTAINMENT) & ~used_c[pc] & ~used_r[pr]
    counts = np.bincount(pr[inside_r], minlength=n_r)
    for r in np.flatnonzero(counts >= 2):
        parts = np.sort(pc[inside_r & (pr == r)])
        split.append((int(ids_r[r]), tuple(int(ids_c[c]) for c in parts)))
        used_r[r] = True
        used_c[parts] = True

    free = ~used_r[pr] & ~used_c[pc]
    sel = np.flatnonzero(free & good)
    keep = sel[_greedy_one_to_one(pr[sel], pc[sel], ious[sel])] if sel.size else sel
    used_r[pr[keep]] = True
    used_c[pc[keep]] = True
    per_ids, per_counts = perimeters(reference) if perimeter is None else perimeter
    perim = per_counts[np.searchsorted(per_ids, ids_r[pr[keep]])] if keep.size else np.zeros(0)
    shifts = (area_c[pc[keep]] - area_r[pr[keep]]) / perim if keep.size else np.zeros(0)

    # Mutual best partners among what is left, by intersection.
    free = ~used_r[pr] & ~used_c[pc] & ((frac_r > CONTAINMENT) | (frac_c > CONTAINMENT))
    sel = np.flatnonzero(free)
    poor_k = []
    if sel.size:
        best_for_r: dict[int, int] = {}
        best_for_c: dict[int, int] = {}
        for k in sel[np.lexsort((pc[sel], pr[sel], -inter[sel]))]:
            best_for_r.setdefault(int(pr[k]), int(k))
            best_for_c.setdefault(int(pc[k]), int(k))
        poor_k = sorted(k for k in best_for_r.values() if best_for_c[int(pc[k])] == k)
    poor_k = np.asarray(poor_k, dtype=np.int64)
    used_r[pr[poor_k]] = True
    used_c[pc[poor_k]] = True

    order = np.argsort(ids_r[pr[keep]], kind="stable")
    keep = keep[order]
    shifts = shifts[order]
    return Comparison(
        matched=np.stack([ids_r[pr[keep]], ids_c[pc[keep]]], axis=1).reshape(-1, 2),
        matched_ious=ious[keep].astype(float),
        matched_shifts=np.asarray(shifts, dtype=float),
        poor=np.stack([ids_r[pr[poor_k]], ids_c[pc[poor_k]]], axis=1).reshape(-1, 2),
        poor_ious=ious[poor_k].astype(float),
        missed=ids_r[~used_r],
        spurious=ids_c[~used_c],
        merged=tuple(merged),
        split=tuple(split),
        f1=float(f1),
        n_reference=int(n_r),
        n_candidate=int(n_c),
    )
