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

from .maps import CLIP, ClusterStack, cv2

_CROSS = ndi.generate_binary_structure(2, 1)


@dataclass(frozen=True, eq=False)
class OutlineStats:
    """How the outlines of every pair of annotators sit against each other.

    ``pairs`` lists annotator pairs ``(j, k)``, ``j < k``, that share at least one cluster;
    ``offsets[p]`` and ``squares[p]`` hold, per shared cluster, the mean and mean square of
    ``d = sdf_j - sdf_k`` (clipped maps) over the band where their mean is within 1 px of
    the outline. ``table`` (float64, shape (3, K (K - 1) / 2, C)) holds per pair (all pairs
    ``j < k`` in order) and cluster the band's pixel count and the sums of ``d`` and
    ``d**2``, from which a later fusion pass takes the clusters it shares.
    """

    k: int
    pairs: tuple[tuple[int, int], ...]
    offsets: tuple[np.ndarray, ...]
    squares: tuple[np.ndarray, ...]
    table: np.ndarray | None = None


def _band_sums(maps: ClusterStack, k: int, clusters: np.ndarray | None) -> np.ndarray:
    """(3, K (K - 1) / 2, len(clusters)) band count, sum of d and of d**2 (all clusters
    when None). Sums run over each cluster's pixels in raster order whichever clusters are
    asked for, so a cluster's sums do not depend on the others."""
    js, ks = np.triu_indices(k, 1)
    m = len(maps) if clusters is None else clusters.size
    out = np.zeros((3, js.size, m))
    if js.size == 0 or m == 0:
        return out
    if clusters is None:
        sdf, owner = maps.sdf, maps.cluster
    else:
        at = np.concatenate([np.arange(maps.starts[c], maps.starts[c + 1]) for c in clusters])
        local = np.zeros(len(maps), np.int64)
        local[clusters] = np.arange(m)
        sdf, owner = maps.sdf[:, at], local[maps.cluster[at]]
    drawn = maps.drawn if clusters is None else maps.drawn[clusters]
    # a pixel in some pair's band (|a + b| <= 2 on the clipped maps) has a value >= -1 and
    # one <= 1: the others (far outside every outline, deep inside all) are dropped first
    near = np.flatnonzero((sdf.max(axis=0, initial=-np.inf) >= -1.0)
                          & (sdf.min(axis=0, initial=np.inf) <= 1.0))
    clipped, owner = np.clip(sdf[:, near], -CLIP, CLIP), owner[near]
    for j in range(k):  # NaN where annotator j has no member: out of every band
        if not drawn[:, j].all():
            clipped[j, ~drawn[owner, j]] = np.nan
    for p, (j, kk) in enumerate(zip(js.tolist(), ks.tolist(), strict=True)):
        if not (drawn[:, j] & drawn[:, kk]).any():
            continue
        a, b = clipped[j], clipped[kk]
        band = np.flatnonzero(np.abs(a + b) <= 2.0)
        where = owner[band]
        d = (a[band] - b[band]).astype(np.float64)
        out[0, p] = np.bincount(where, minlength=m)
        out[1, p] = np.bincount(where, d, m)
        out[2, p] = np.bincount(where, d * d, m)
    return out


def outline_stats(maps: ClusterStack, k: int, *,
                  reuse: tuple[ClusterStack, OutlineStats] | None = None) -> OutlineStats:
    """Pairwise outline offsets of the annotators over the clusters they share.

    ``reuse``: the stack and statistics of an earlier pass over the same instance maps;
    clusters with the same members there keep their sums (they are the same numbers).
    """
    if reuse is None or reuse[1].table is None:
        table = _band_sums(maps, k, None)
    else:
        source = maps.same_clusters(reuse[0])
        table = np.zeros((3, k * (k - 1) // 2, len(maps)))
        old = source >= 0
        table[:, :, old] = reuse[1].table[:, :, source[old]]
        new = np.flatnonzero(~old)
        table[:, :, new] = _band_sums(maps, k, new)
    keys, offsets, squares = [], [], []
    for p, (j, kk) in enumerate(zip(*np.triu_indices(k, 1), strict=True)):
        n = table[0, p]
        has = n > 0
        if not has.any():
            continue
        keys.append((int(j), int(kk)))
        offsets.append(table[1, p, has] / n[has])
        squares.append(table[2, p, has] / n[has])
    return OutlineStats(k, tuple(keys), tuple(offsets), tuple(squares), table)


def vote_and_resolve(maps: ClusterStack, bias: np.ndarray, weights: np.ndarray,
                     shape: tuple[int, int], *, order: np.ndarray, strong: np.ndarray,
                     max_covered: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Consensus instance per cluster; overlaps go to the cluster a pixel lies deepest in.

    Parameters
    ----------
    maps : ClusterStack
        The kept clusters.
    bias, weights : ndarray of float, shape (K,)
    shape : tuple of int
    order : ndarray of int, shape (len(maps),)
        Processing order: well-supported clusters first (required), then rescued ones by
        decreasing posterior.
    strong : ndarray of bool, shape (len(maps),)
        Clusters kept on support alone. The others (rescued minority clusters) are dropped
        when more than ``max_covered`` of their voted area is already claimed: a fragment
        of a split, a merged blob over cells the others drew separately, or a second
        drawing of a cell that missed the IoU threshold is explained by those cells.

    Returns
    -------
    owner : ndarray of int32, shape (H, W)
        ``c + 1`` for pixels of cluster ``c``, 0 for background; each cluster keeps its
        largest connected piece only.
    explained : ndarray of bool, shape (len(maps),)
        Rescued clusters dropped as explained by others.
    """
    owner = np.zeros(shape, np.int32)
    explained = np.zeros(len(maps), bool)
    if len(maps) == 0:
        return owner, explained
    # per-cluster member weights (all members equal where their weights are all zero)
    w = np.where(maps.drawn, np.asarray(weights, np.float64)[None, :], 0.0)
    w = np.where((w.sum(axis=1) <= 0)[:, None], maps.drawn.astype(np.float64), w)
    acc = np.zeros(maps.cluster.shape[0], np.float64)
    sizes = np.diff(maps.starts)
    for j in range(maps.drawn.shape[1]):
        if maps.drawn[:, j].any():
            vote = np.subtract(maps.sdf[j], np.float64(bias[j]))
            np.clip(vote, -CLIP, CLIP, out=vote)
            vote *= np.repeat(w[:, j], sizes)
            acc += vote
    # rounding makes ties exact whatever the summation order of the annotators
    value = np.round(acc / np.repeat(w.sum(axis=1), sizes), 6).astype(np.float32)
    top = np.maximum.reduceat(value, maps.starts[:-1])
    empty = top <= 0  # a sliver no member agrees on: keep its deepest pixel
    if empty.any():
        lift = empty[maps.cluster] & (value >= top[maps.cluster])
        value[lift] = np.float32(1e-6)
    # the well-supported clusters come first in ``order`` and are never dropped, so taken
    # in that order each pixel ends with the deepest claim, the earliest on a tie
    if np.any(np.diff(strong[order].astype(np.int8)) > 0):
        raise ValueError("order must put every well-supported (strong) cluster first")
    rank = np.empty(len(maps), np.int64)
    rank[order] = np.arange(len(maps))
    best = np.full(shape, -np.inf, np.float32)
    at = np.flatnonzero((value > 0) & np.repeat(strong, sizes))
    pixel, v, cluster = maps.pixel[at], value[at], maps.cluster[at]
    contested = np.bincount(pixel, minlength=owner.size)[pixel] > 1
    if contested.any():
        keep = ~contested
        claims = np.flatnonzero(contested)
        claims = claims[np.lexsort((rank[cluster[claims]], -v[claims], pixel[claims]))]
        keep[claims[np.r_[True, pixel[claims][1:] != pixel[claims][:-1]]]] = True
        pixel, v, cluster = pixel[keep], v[keep], cluster[keep]
    best.ravel()[pixel] = v
    owner.ravel()[pixel] = cluster + 1
    for c in order[~strong[order]]:
        win = maps.windows[c]
        v = maps.crop(value, c)
        inside = v > 0
        region = best[win]
        covered = np.count_nonzero(inside & (owner[win] > 0))
        if covered > max_covered * np.count_nonzero(inside):
            explained[c] = True
            continue
        claim = inside & (v > region)
        region[claim] = v[claim]
        owner[win][claim] = c + 1
    for c, win in enumerate(maps.windows):
        drop = _smaller_pieces(owner[win] == c + 1)
        if drop is not None:
            owner[win][drop] = 0
    return owner, explained


def _smaller_pieces(mine: np.ndarray) -> np.ndarray | None:
    """All but the largest 4-connected piece of ``mine`` (None when it has one piece or
    none); of equally large pieces the first in raster order stays."""
    if cv2 is not None and mine.size < 2**31:
        n, lab = cv2.connectedComponents(mine.view(np.uint8), connectivity=4,
                                          ltype=cv2.CV_32S)
        n -= 1
    else:
        lab, n = ndi.label(mine, structure=_CROSS)
    if n <= 1:
        return None
    sizes = np.bincount(lab.ravel(), minlength=n + 1)
    sizes[0] = -1
    big = np.flatnonzero(sizes == sizes.max())
    if big.size > 1:
        _, first = np.unique(lab.ravel(), return_index=True)
        big = big[np.argsort(first[big])]
    return mine & (lab != big[0])


def instance_summary(maps: ClusterStack, owner: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First pixel and member agreement of every cluster's final instance in ``owner``.

    Returns
    -------
    first : ndarray of int64, shape (len(maps),)
        Flat image index of the instance's first pixel in raster order; -1 where the
        cluster's instance is empty.
    agreement : ndarray of float64, shape (len(maps),)
        Mean IoU between the final instance and each member (NaN where empty).
    """
    n = len(maps)
    final = owner.ravel()[maps.pixel] == maps.cluster + 1
    starts = maps.starts[:-1]  # every cluster's block is non-empty

    def per_cluster(mask: np.ndarray) -> np.ndarray:
        return np.add.reduceat(mask.view(np.uint8), starts, dtype=np.int64)

    area = per_cluster(final) if n else np.zeros(0, np.int64)
    first = np.full(n, -1, np.int64)
    hit = np.flatnonzero(final)
    if hit.size:
        # packed pixels run cluster by cluster, each in raster order: a cluster's first hit
        # is where the (sorted) cluster index changes
        owners = maps.cluster[hit]
        at = np.flatnonzero(np.r_[True, owners[1:] != owners[:-1]])
        first[owners[at]] = maps.pixel[hit[at]]
    total = np.zeros(n)
    for j in range(maps.drawn.shape[1]):
        drawn = maps.drawn[:, j]
        if not drawn.any():
            continue
        member = maps.sdf[j] > 0
        inter = per_cluster(final & member)
        union = area + per_cluster(member) - inter
        total += np.where(drawn, inter / np.maximum(union, 1), 0.0)
    with np.errstate(invalid="ignore"):
        agreement = np.where(area > 0, total / maps.drawn.sum(axis=1), np.nan)
    return first, agreement
