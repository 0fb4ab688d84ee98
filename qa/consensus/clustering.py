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

import numpy as np

from qa.metrics import instance_overlaps


def sequential_labels(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Relabel ``mask`` to 1..n in increasing order of the original ids.

    Returns
    -------
    seq : ndarray of uint32, shape (H, W)
        Relabelled image, 0 stays background.
    ids : ndarray of int64, shape (n,)
        ``ids[i - 1]`` is the original id of sequential label ``i``.
    """
    flat = mask.ravel()
    top = int(flat.max(initial=0))
    if top <= 4 * flat.size + (1 << 16):
        counts = np.bincount(flat.astype(np.intp, copy=False), minlength=top + 1)
        ids = np.flatnonzero(counts[1:]) + 1
        lut = np.zeros(top + 1, np.uint32)
        lut[ids] = np.arange(1, ids.size + 1, dtype=np.uint32)
        return lut[mask], ids.astype(np.int64)
    ids, inverse = np.unique(flat, return_inverse=True)
    offset = 1 if ids[0] == 0 else 0
    seq = (inverse + 1 - offset).astype(np.uint32).reshape(mask.shape)
    if offset:
        ids = ids[1:]
    return seq, ids.astype(np.int64)


def instance_keys(seq: np.ndarray, boxes: Sequence[tuple[slice, slice] | None]) -> list[tuple]:
    """A geometric key per instance (bbox and area) that does not depend on ids or order."""
    keys = []
    for i, sl in enumerate(boxes, start=1):
        if sl is None:
            keys.append((-1, -1, -1, -1, 0))
            continue
        area = int(np.count_nonzero(seq[sl] == i))
        keys.append((sl[0].start, sl[1].start, sl[0].stop, sl[1].stop, area))
    return keys


def cluster_instances(seqs: Sequence[np.ndarray], keys: Sequence[Sequence[tuple]], *,
                      iou_threshold: float) -> np.ndarray:
    """Group instances of several sequentially labelled masks into clusters.

    Parameters
    ----------
    seqs : sequence of ndarray of uint32, shape (H, W)
        One sequentially labelled (1..n_j) mask per annotator.
    keys : sequence of sequence of tuple
        ``keys[j][i - 1]`` is the geometric key of instance ``i`` of annotator ``j``
        (:func:`instance_keys`), used to break IoU ties independently of annotator order.
    iou_threshold : float
        Smallest IoU of an edge.

    Returns
    -------
    ndarray of int64, shape (C, K)
        ``members[c, j]`` is the sequential label annotator ``j`` contributed to cluster
        ``c``, or 0. Clusters are sorted by the smallest key of their members.
    """
    k = len(seqs)
    sizes = [len(kj) for kj in keys]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    n_nodes = int(offsets[-1])
    owner = np.repeat(np.arange(k), sizes)
    edges: list[tuple] = []
    for a in range(k):
        for b in range(a + 1, k):
            if sizes[a] == 0 or sizes[b] == 0:
                continue
            ov = instance_overlaps(seqs[a], seqs[b])
            hit = ov.ious >= iou_threshold
            for (ia, ib), iou in zip(ov.pairs[hit], ov.ious[hit], strict=True):
                u = int(offsets[a] + ov.labels_a[ia] - 1)
                v = int(offsets[b] + ov.labels_b[ib] - 1)
                ku, kv = keys[a][ov.labels_a[ia] - 1], keys[b][ov.labels_b[ib] - 1]
                edges.append((-round(float(iou), 12), min(ku, kv), max(ku, kv), u, v))
    edges.sort()

    parent = list(range(n_nodes))
    annotators = [1 << int(owner[i]) for i in range(n_nodes)]

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for *_, u, v in edges:
        ru, rv = find(u), find(v)
        if ru != rv and not annotators[ru] & annotators[rv]:
            parent[rv] = ru
            annotators[ru] |= annotators[rv]

    groups: dict[int, list[int]] = {}
    for node in range(n_nodes):
        groups.setdefault(find(node), []).append(node)
    flat_keys = [key for kj in keys for key in kj]
    ordered = sorted(groups.values(), key=lambda g: min(flat_keys[n] for n in g))
    members = np.zeros((len(ordered), k), np.int64)
    for c, group in enumerate(ordered):
        for node in group:
            j = int(owner[node])
            members[c, j] = node - offsets[j] + 1
    return members
