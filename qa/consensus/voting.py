"""Pixel voting inside clusters with signed distances, and overlap resolution.

Each member instance of a cluster is turned into a signed distance map (px to its outline,
> 0 inside) on a crop around the cluster, corrected by its annotator's boundary bias and
clipped to +-``CLIP`` px so that one grossly wrong member (a merge, a smear) cannot
outvote the others far from the outline. The consensus outline is the zero level set of the
weighted mean of these maps, which averages outlines to sub-pixel precision, and with the
maps clipped behaves like a majority vote away from the outline. Where two consensus
instances claim a pixel, the one whose mean map is larger there (the pixel lies deeper
inside it) wins, so touching cells keep a shared boundary instead of merging.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

CLIP = 3.0
_PAD = int(CLIP) + 3  # crop margin: beyond it a clipped, bias-corrected map stays < 0


def signed_distance(mask: np.ndarray) -> np.ndarray:
    """Signed distance (px) to the outline of a padded boolean mask, > 0 inside.

    The outline runs half-way between inside and outside pixel centres, so the pixels
    along it sit at +0.5 and -0.5.
    """
    inside = ndi.distance_transform_edt(mask)
    outside = ndi.distance_transform_edt(~mask)
    return np.where(mask, inside - 0.5, 0.5 - outside).astype(np.float32)


@dataclass(frozen=True, eq=False)
class ClusterMaps:
    """Signed distance maps of one cluster's members on a common crop."""

    window: tuple[slice, slice]
    annotators: tuple[int, ...]
    sdfs: tuple[np.ndarray, ...]  # float32, crop shape, unclipped and uncorrected


def cluster_maps(members: np.ndarray, seqs, boxes, shape) -> list[ClusterMaps]:
    """Signed distance maps for every cluster (row of ``members``)."""
    out = []
    for row in members:
        js = np.flatnonzero(row)
        y0 = min(boxes[j][row[j] - 1][0].start for j in js)
        x0 = min(boxes[j][row[j] - 1][1].start for j in js)
        y1 = max(boxes[j][row[j] - 1][0].stop for j in js)
        x1 = max(boxes[j][row[j] - 1][1].stop for j in js)
        win = (slice(max(y0 - _PAD, 0), min(y1 + _PAD, shape[0])),
               slice(max(x0 - _PAD, 0), min(x1 + _PAD, shape[1])))
        sdfs = tuple(signed_distance(np.pad(seqs[j][win] == row[j], 1))[1:-1, 1:-1] for j in js)
        out.append(ClusterMaps(win, tuple(int(j) for j in js), sdfs))
    return out


@dataclass(frozen=True, eq=False)
class OutlineStats:
    """How the outlines of every pair of annotators sit against each other.

    ``pairs`` lists annotator pairs ``(j, k)``, ``j < k``, that share at least one cluster;
    ``offsets[p]`` and ``squares[p]`` hold, per shared cluster, the mean and mean square of
    ``d = sdf_j - sdf_k`` (clipped maps) over the band where their mean is within 1 px of
    the outline.
    """

    k: int
    pairs: tuple[tuple[int, int], ...]
    offsets: tuple[np.ndarray, ...]
    squares: tuple[np.ndarray, ...]


def outline_stats(maps: list[ClusterMaps], k: int) -> OutlineStats:
    """Pairwise outline offsets of the annotators over the clusters they share."""
    offsets: dict[tuple[int, int], list[float]] = {}
    squares: dict[tuple[int, int], list[float]] = {}
    for cm in maps:
        if len(cm.annotators) < 2:
            continue
        clipped = [np.clip(s, -CLIP, CLIP) for s in cm.sdfs]
        for i1 in range(len(cm.annotators)):
            for i2 in range(i1 + 1, len(cm.annotators)):
                a, b = clipped[i1], clipped[i2]
                band = np.abs(a + b) <= 2.0
                if not band.any():
                    continue
                d = a[band] - b[band]
                key = (cm.annotators[i1], cm.annotators[i2])
                offsets.setdefault(key, []).append(float(d.mean()))
                squares.setdefault(key, []).append(float(np.mean(d * d)))
    keys = tuple(sorted(offsets))
    return OutlineStats(k, keys, tuple(np.array(offsets[p]) for p in keys),
                        tuple(np.array(squares[p]) for p in keys))


def vote_and_resolve(maps: list[ClusterMaps], bias: np.ndarray, weights: np.ndarray,
                     shape: tuple[int, int], *, order: np.ndarray, strong: np.ndarray,
                     max_covered: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Consensus instance per cluster; overlaps go to the cluster a pixel lies deepest in.

    Parameters
    ----------
    maps : list of ClusterMaps
        One per kept cluster.
    bias, weights : ndarray of float, shape (K,)
    shape : tuple of int
    order : ndarray of int, shape (len(maps),)
        Processing order: well-supported clusters first, then rescued ones by decreasing
        posterior.
    strong : ndarray of bool, shape (len(maps),)
        Clusters kept on support alone. The others (rescued minority clusters) are dropped
        when more than ``max_covered`` of their voted area is already claimed: a fragment
        of a split, a merged blob over cells the others drew separately, or a second
        drawing of a cell that missed the IoU threshold is explained by those cells.

    Returns
    -------
    owner : ndarray of int32, shape (H, W)
        ``c + 1`` for pixels of cluster ``maps[c]``, 0 for background; each cluster keeps its
        largest connected piece only.
    explained : ndarray of bool, shape (len(maps),)
        Rescued clusters dropped as explained by others.
    """
    best = np.full(shape, -np.inf, np.float32)
    owner = np.zeros(shape, np.int32)
    explained = np.zeros(len(maps), bool)
    for c in order:
        cm = maps[c]
        w = np.array([weights[j] for j in cm.annotators], dtype=np.float64)
        if w.sum() <= 0:
            w = np.ones_like(w)
        acc = np.zeros(cm.sdfs[0].shape, np.float64)
        for wi, j, s in zip(w, cm.annotators, cm.sdfs, strict=True):
            acc += wi * np.clip(s - bias[j], -CLIP, CLIP)
        # rounding makes ties exact whatever the summation order of the annotators
        value = np.round(acc / w.sum(), 6).astype(np.float32)
        if not (value > 0).any():  # a sliver no member agrees on: keep its deepest pixel
            value = np.where(value >= value.max(), np.float32(1e-6), value)
        inside = value > 0
        region = best[cm.window]
        if not strong[c]:
            covered = np.count_nonzero(inside & (owner[cm.window] > 0))
            if covered > max_covered * np.count_nonzero(inside):
                explained[c] = True
                continue
        claim = inside & (value > region)
        region[claim] = value[claim]
        owner[cm.window][claim] = c + 1
    for c, cm in enumerate(maps):
        mine = owner[cm.window] == c + 1
        lab, n = ndi.label(mine)
        if n > 1:
            sizes = np.bincount(lab.ravel())[1:]
            owner[cm.window][mine & (lab != 1 + int(np.argmax(sizes)))] = 0
    return owner, explained


def shift_outlines(seq: np.ndarray, amount: float) -> np.ndarray:
    """Move every instance outline of a label image outwards by ``amount`` px (< 0: inwards).

    Used to bias-correct a whole annotation before clustering. Growth goes to the nearest
    instance and never into another instance; shrinking measures depth to the nearest pixel
    of any other label, so touching instances shrink away from each other too.
    """
    if amount > 0:
        dist, (iy, ix) = ndi.distance_transform_edt(seq == 0, return_indices=True)
        grow = (seq == 0) & (dist < amount + 0.5)
        out = seq.copy()
        out[grow] = seq[iy[grow], ix[grow]]
        return out
    if amount < 0:
        interior = seq > 0
        interior[1:, :] &= seq[1:, :] == seq[:-1, :]
        interior[:-1, :] &= seq[:-1, :] == seq[1:, :]
        interior[:, 1:] &= seq[:, 1:] == seq[:, :-1]
        interior[:, :-1] &= seq[:, :-1] == seq[:, 1:]
        depth = ndi.distance_transform_edt(interior)
        out = seq.copy()
        out[(seq > 0) & (depth + 0.5 <= -amount)] = 0
        return out
    return seq
