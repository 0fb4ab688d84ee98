"""Clustering of instances across annotators by IoU.

Every annotator's instances are nodes; every pair of instances from two different
annotators with IoU >= ``iou_threshold`` is an edge. Edges are taken in order of
decreasing IoU and join two clusters only when the clusters share no annotator, so a
cluster holds at most one instance per annotator (greedy single linkage under a
cannot-link constraint). For thresholds >= 0.5 an instance has at most one partner per
other annotator, so the order matters only when three or more annotators chain up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from qa.metrics import Overlaps, instance_overlaps


def sequential_labels(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Relabel ``mask`` to 1..n in increasing order of the original ids.

    Returns
    -------
    seq : ndarray of unsigned int, shape (H, W)
        Relabelled image (uint32, or ``mask`` itself when its ids already are 1..n and
        its dtype unsigned of at most 32 bits), 0 stays background.
    ids : ndarray of int64, shape (n,)
        ``ids[i - 1]`` is the original id of sequential label ``i``.
    """
    seq, ids, _ = sequential_labels_and_areas(mask)
    return seq, ids


def sequential_labels_and_areas(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`sequential_labels` plus the pixel area of each instance (float64, shape (n,))."""
    flat = mask.ravel()
    top = int(flat.max(initial=0))
    if top <= 4 * flat.size + (1 << 16):
        # count the foreground only: cells cover a small share of most images
        fg = flat[flat != 0]
        counts = np.bincount(fg.astype(np.intp, copy=False), minlength=top + 1)
        ids = np.flatnonzero(counts[1:]) + 1
        areas = counts[ids].astype(np.float64)
        if ids.size == top and mask.dtype.kind == "u" and mask.dtype.itemsize <= 4:
            return mask, ids.astype(np.int64), areas
        lut = np.zeros(top + 1, np.uint32)
        lut[ids] = np.arange(1, ids.size + 1, dtype=np.uint32)
        return lut[mask], ids.astype(np.int64), areas
    ids, inverse, counts = np.unique(flat, return_inverse=True, return_counts=True)
    offset = 1 if ids[0] == 0 else 0
    seq = (inverse + 1 - offset).astype(np.uint32).reshape(mask.shape)
    if offset:
        ids, counts = ids[1:], counts[1:]
    return seq, ids.astype(np.int64), counts.astype(np.float64)


@dataclass(frozen=True, eq=False)
class Foreground:
    """The labelled pixels of one sequentially labelled mask, kept for pairwise overlaps.

    Attributes
    ----------
    flat : ndarray of unsigned int, shape (H * W,)
        The mask, raveled (0 = background, ids 1..n).
    pixel : ndarray of int64, shape (m,)
        Flat index of every labelled pixel (any order).
    ids : ndarray of intp, shape (m,)
        Their ids.
    areas : ndarray of int64, shape (n + 1,)
        Pixel count of each id (entry 0 is 0).
    """

    flat: np.ndarray
    pixel: np.ndarray
    ids: np.ndarray
    areas: np.ndarray

    @classmethod
    def of(cls, seq: np.ndarray, pixel: np.ndarray | None = None,
           ids: np.ndarray | None = None, *, n: int) -> Foreground:
        """From a mask with ids 1..``n`` (and its labelled pixels and their ids, if known)."""
        flat = seq.ravel()
        if pixel is None:
            pixel = np.flatnonzero(flat != 0)  # ~5x faster than on the ids themselves
            ids = flat[pixel]
        ids = ids.astype(np.intp, copy=False)
        areas = np.bincount(ids, minlength=n + 1).astype(np.int64, copy=False)
        return cls(flat, pixel, ids, areas)


def foreground_overlaps(a: Foreground, b: Foreground) -> Overlaps:
    """``qa.metrics.instance_overlaps`` of the two masks (the same table), counted over the
    labelled pixels of ``a`` only, which both masks' foreground lists make cheap."""
    nb = b.areas.size
    code = a.ids * nb
    code += b.flat[a.pixel]
    table = np.bincount(code, minlength=a.areas.size * nb)
    table[::nb] = 0  # pixels background in b
    nonzero = np.flatnonzero(table)
    raw_a, raw_b = np.divmod(nonzero, nb)
    labels_a = np.flatnonzero(a.areas[1:]).astype(np.int64) + 1
    labels_b = np.flatnonzero(b.areas[1:]).astype(np.int64) + 1
    inter = table[nonzero].astype(np.int64)
    ious = (inter / (a.areas[raw_a] + b.areas[raw_b] - inter) if inter.size
            else np.zeros(0, np.float64))
    pairs = np.stack([np.searchsorted(labels_a, raw_a), np.searchsorted(labels_b, raw_b)],
                     axis=1).astype(np.int64).reshape(-1, 2)
    out = Overlaps(labels_a=labels_a, labels_b=labels_b, areas_a=a.areas[labels_a],
                   areas_b=b.areas[labels_b], pairs=pairs, intersections=inter,
                   ious=ious.astype(np.float64, copy=False))
    for arr in (out.labels_a, out.labels_b, out.areas_a, out.areas_b, out.pairs,
                out.intersections, out.ious):
        arr.flags.writeable = False
    return out


def instance_ranks(seqs: Sequence[np.ndarray], boxes, areas=None) -> list[np.ndarray]:
    """A rank per instance by geometry (bbox, then area), independent of ids and order.

    ``areas`` (one array of pixel counts per annotator) saves counting them again.
    Returns one int64 array per annotator, ``ranks[j][i - 1]`` for instance ``i``; equal
    geometry gets equal rank.
    """
    keys = []
    for j, (seq, bx) in enumerate(zip(seqs, boxes, strict=True)):
        for i, sl in enumerate(bx, start=1):
            if sl is None:
                keys.append((-1, -1, -1, -1, 0, j, i))
            else:
                area = (int(areas[j][i - 1]) if areas is not None
                        else int(np.count_nonzero(seq[sl] == i)))
                keys.append((sl[0].start, sl[1].start, sl[0].stop, sl[1].stop, area, j, i))
    keys.sort()
    ranks = [np.zeros(len(bx), np.int64) for bx in boxes]
    rank, previous = -1, None
    for key in keys:
        if key[:5] != previous:
            rank, previous = rank + 1, key[:5]
        ranks[key[5]][key[6] - 1] = rank
    return ranks


def cluster_instances(seqs: Sequence[np.ndarray], ranks: Sequence[np.ndarray], *,
                      iou_threshold: float, overlaps=None) -> np.ndarray:
    """Group instances of several sequentially labelled masks into clusters.

    Parameters
    ----------
    seqs : sequence of ndarray of uint32, shape (H, W)
        One sequentially labelled (1..n_j) mask per annotator.
    ranks : sequence of ndarray of int64
        ``ranks[j][i - 1]`` is the geometric rank of instance ``i`` of annotator ``j``
        (:func:`instance_ranks`), used to break IoU ties independently of annotator order.
    iou_threshold : float
        Smallest IoU of an edge.
    overlaps : callable, optional
        ``overlaps(a, b)`` gives ``instance_overlaps(seqs[a], seqs[b])`` when already known.

    Returns
    -------
    ndarray of int64, shape (C, K)
        ``members[c, j]`` is the sequential label annotator ``j`` contributed to cluster
        ``c``, or 0. Clusters are sorted by the smallest rank of their members.
    """
    k = len(seqs)
    sizes = [len(r) for r in ranks]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    n_nodes = int(offsets[-1])
    owner = np.repeat(np.arange(k), sizes)
    flat_rank = np.concatenate(list(ranks)) if n_nodes else np.zeros(0, np.int64)
    us, vs, ious = [], [], []
    for a in range(k):
        for b in range(a + 1, k):
            if sizes[a] == 0 or sizes[b] == 0:
                continue
            ov = (instance_overlaps(seqs[a], seqs[b]) if overlaps is None
                  else overlaps(a, b))
            hit = ov.ious >= iou_threshold
            us.append(offsets[a] + ov.labels_a[ov.pairs[hit, 0]] - 1)
            vs.append(offsets[b] + ov.labels_b[ov.pairs[hit, 1]] - 1)
            ious.append(ov.ious[hit])
    parent = list(range(n_nodes))
    if us:
        u, v, iou = np.concatenate(us), np.concatenate(vs), np.concatenate(ious)
        lo = np.minimum(flat_rank[u], flat_rank[v])
        hi = np.maximum(flat_rank[u], flat_rank[v])
        order = np.lexsort((hi, lo, -np.round(iou, 12)))
        annotators = [1 << int(o) for o in owner]

        def find(x: int) -> int:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for eu, ev in zip(u[order].tolist(), v[order].tolist(), strict=True):
            ru, rv = find(eu), find(ev)
            if ru != rv and not annotators[ru] & annotators[rv]:
                parent[rv] = ru
                annotators[ru] |= annotators[rv]
        roots = np.array([find(x) for x in range(n_nodes)], np.int64)
    else:
        roots = np.arange(n_nodes, dtype=np.int64)
    if n_nodes == 0:
        return np.zeros((0, k), np.int64)
    first = np.full(n_nodes, np.iinfo(np.int64).max)
    np.minimum.at(first, roots, flat_rank)
    unique_roots = np.unique(roots)
    order = unique_roots[np.lexsort((unique_roots, first[unique_roots]))]
    cluster_of = np.zeros(n_nodes, np.int64)
    cluster_of[order] = np.arange(order.size)
    members = np.zeros((order.size, k), np.int64)
    local = np.arange(n_nodes) - offsets[owner] + 1
    members[cluster_of[roots], owner] = local
    return members
