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

try:  # OpenCV's exact EDT (Felzenszwalb) is ~4x faster than scipy's; same float32 values
    import cv2
except ImportError:  # pragma: no cover - web-only installs without the training stack
    cv2 = None

CLIP = 3.0
_PAD = int(CLIP) + 2  # crop margin: outlines moved by up to MAX_BIAS (2.5) px stay inside
_FAR = -(CLIP + 3.0)  # value of a map beyond its crop (at least _PAD - 0.5 px outside)


def signed_distance(mask: np.ndarray) -> np.ndarray:
    """Signed distance (px) to the outline of a padded boolean mask, > 0 inside.

    The outline runs half-way between inside and outside pixel centres, so the pixels
    along it sit at +0.5 and -0.5.
    """
    if cv2 is not None and mask.size < 2**31:
        m8 = mask.view(np.uint8)
        inside = cv2.distanceTransform(m8, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        outside = cv2.distanceTransform(1 - m8, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        return np.where(mask, inside - np.float32(0.5), np.float32(0.5) - outside)
    inside = ndi.distance_transform_edt(mask)
    outside = ndi.distance_transform_edt(~mask)
    return np.where(mask, inside - 0.5, 0.5 - outside).astype(np.float32)


@dataclass(frozen=True, eq=False)
class InstanceMap:
    """Signed distance map of one instance on its padded bounding box."""

    window: tuple[slice, slice]
    sdf: np.ndarray  # float32, window shape; > 0 inside


class InstanceMaps(list):
    """The list of :class:`InstanceMap` of one mask (entry ``i - 1`` for id ``i``, None if
    absent), plus the packed canvas they are views of.

    ``canvas`` holds the signed distances; ``owner`` (int32, canvas shape) the id whose
    map a canvas pixel belongs to (0 for none); image pixel = canvas pixel +
    ``(dy[id], dx[id])``. Whole-mask operations (:func:`corrected_labels`) run on the
    canvas in a few passes instead of one small array operation per instance.
    """

    canvas: np.ndarray | None = None
    owner: np.ndarray | None = None
    dy: np.ndarray | None = None
    dx: np.ndarray | None = None


def instance_maps(seq: np.ndarray, boxes, shape) -> InstanceMaps:
    """Signed distance maps of every instance of one sequentially labelled mask.

    Every instance gets a canvas cell of its bounding box plus ``_PAD`` px on each side
    (also beyond the image border, which counts as outside), and all cells are packed
    edge to edge into one canvas, so that two distance transforms serve every instance
    (one transform per instance would cost ~100 us each). Any pixel of a cell is at least
    ``_PAD`` px from the other cells' instances, so distances up to ``_PAD`` px are exact
    and farther ones stay at least that far. Entry ``i - 1`` is None for absent ids.
    """
    cells = []
    for i, sl in enumerate(boxes, start=1):
        if sl is None:
            cells.append(None)
            continue
        cells.append((i, sl, seq[sl] == i))
    present = [c for c in cells if c is not None]
    if not present:
        return InstanceMaps([None] * len(cells))
    sizes = {i: (m.shape[0] + 2 * _PAD, m.shape[1] + 2 * _PAD) for i, _, m in present}
    # shelf packing, tallest first
    order = sorted(sizes, key=lambda i: (-sizes[i][0], i))
    width = max(max(w for _, w in sizes.values()),
                int(np.sqrt(sum(h * w for h, w in sizes.values())) * 1.2))
    places = {}
    x = y = shelf = 0
    for i in order:
        h, w = sizes[i]
        if x + w > width:
            x, y, shelf = 0, y + shelf, 0
        places[i] = (y, x)
        x += w
        shelf = max(shelf, h)
    canvas = np.zeros((y + shelf, width), bool)
    for i, _, m in present:
        py, px = places[i]
        canvas[py + _PAD:py + _PAD + m.shape[0], px + _PAD:px + _PAD + m.shape[1]] = m
    sdf = signed_distance(canvas)
    out = InstanceMaps([None] * len(cells))
    out.canvas, out.owner = sdf, np.zeros(sdf.shape, np.int32)
    out.dy, out.dx = np.zeros(len(cells) + 1, np.int64), np.zeros(len(cells) + 1, np.int64)
    for i, sl, _ in present:
        y0, y1 = max(sl[0].start - _PAD, 0), min(sl[0].stop + _PAD, shape[0])
        x0, x1 = max(sl[1].start - _PAD, 0), min(sl[1].stop + _PAD, shape[1])
        py = places[i][0] + _PAD - (sl[0].start - y0)
        px = places[i][1] + _PAD - (sl[1].start - x0)
        out[i - 1] = InstanceMap((slice(y0, y1), slice(x0, x1)),
                                 sdf[py:py + y1 - y0, px:px + x1 - x0])
        out.owner[py:py + y1 - y0, px:px + x1 - x0] = i
        out.dy[i], out.dx[i] = y0 - py, x0 - px
    return out


@dataclass(frozen=True, eq=False)
class ClusterStack:
    """Signed distance maps of every cluster's members, packed flat for vectorised voting.

    Cluster ``c`` covers the window ``windows[c]`` (the union of its members' windows),
    stored raster order in ``sdf[:, starts[c]:starts[c + 1]]``. ``P`` is the total number
    of window pixels, ``C`` the number of clusters.

    Attributes
    ----------
    windows : tuple of (slice, slice)
    starts : ndarray of int64, shape (C + 1,)
    drawn : ndarray of bool, shape (C, K)
        Whether annotator ``j`` has a member in cluster ``c``.
    sdf : ndarray of float32, shape (K, P)
        Unclipped, uncorrected signed distance of annotator ``j``'s member (> 0 inside);
        ``_FAR`` where it has none or beyond the member's own window.
    cluster : ndarray of int64, shape (P,)
        Cluster of each packed pixel.
    pixel : ndarray of int64, shape (P,)
        Flat image index (``y * W + x``) of each packed pixel.
    """

    windows: tuple[tuple[slice, slice], ...]
    starts: np.ndarray
    drawn: np.ndarray
    sdf: np.ndarray
    cluster: np.ndarray
    pixel: np.ndarray

    def __len__(self) -> int:
        return len(self.windows)

    def crop(self, values: np.ndarray, c: int) -> np.ndarray:
        """``values`` (shape (P,)) of cluster ``c`` as a window-shaped view."""
        win = self.windows[c]
        shape = (win[0].stop - win[0].start, win[1].stop - win[1].start)
        return values[self.starts[c]:self.starts[c + 1]].reshape(shape)


def _windows(inst_maps) -> np.ndarray:
    """(n, 4) int64 ``y0, x0, y1, x1`` of every instance map (zeros where absent)."""
    out = np.zeros((len(inst_maps), 4), np.int64)
    for i, m in enumerate(inst_maps):
        if m is not None:
            out[i] = (m.window[0].start, m.window[1].start, m.window[0].stop, m.window[1].stop)
    return out


def cluster_maps(members: np.ndarray, inst_maps, shape) -> ClusterStack:
    """Pack the signed distance maps of every cluster's members on their common windows."""
    n, k = members.shape
    drawn = members > 0
    big = np.iinfo(np.int64).max
    box = np.zeros((n, k, 4), np.int64)
    for j in range(k):
        if drawn[:, j].any():
            box[drawn[:, j], j] = _windows(inst_maps[j])[members[drawn[:, j], j] - 1]
    y0 = np.where(drawn, box[..., 0], big).min(axis=1, initial=big)
    x0 = np.where(drawn, box[..., 1], big).min(axis=1, initial=big)
    y1 = np.where(drawn, box[..., 2], -1).max(axis=1, initial=-1)
    x1 = np.where(drawn, box[..., 3], -1).max(axis=1, initial=-1)
    heights, widths = y1 - y0, x1 - x0
    sizes = heights * widths
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    total = int(starts[-1])
    cluster = np.repeat(np.arange(n, dtype=np.int64), sizes)
    local = np.arange(total, dtype=np.int64) - starts[cluster]
    pixel = (y0[cluster] + local // widths[cluster]) * shape[1] + x0[cluster] + local % widths[cluster]
    sdf = np.full((k, total), _FAR, np.float32)
    cs, js = np.nonzero(drawn)
    tops = (box[cs, js, 0] - y0[cs]).tolist()
    lefts = (box[cs, js, 1] - x0[cs]).tolist()
    firsts, hs, ws = starts.tolist(), heights.tolist(), widths.tolist()
    for c, j, top, left, i in zip(cs.tolist(), js.tolist(), tops, lefts,
                                  members[cs, js].tolist(), strict=True):
        m = inst_maps[j][i - 1].sdf
        sdf[j, firsts[c]:firsts[c + 1]].reshape(hs[c], ws[c])[
            top:top + m.shape[0], left:left + m.shape[1]] = m
    windows = tuple((slice(int(a), int(b)), slice(int(c), int(d)))
                    for a, b, c, d in zip(y0.tolist(), y1.tolist(), x0.tolist(), x1.tolist(),
                                          strict=True))
    return ClusterStack(windows, starts, drawn, sdf, cluster, pixel)


def corrected_labels(inst_maps: InstanceMaps, amount: float, shape) -> np.ndarray:
    """A label image with every outline moved outwards by ``amount`` px (< 0: inwards).

    Used to bias-correct a whole annotation before clustering again; where moved
    instances meet, a pixel goes to the instance it lies deeper in (the lower id on a tie).
    """
    out = np.zeros(shape, np.uint32)
    if inst_maps.canvas is None:
        return out
    value = inst_maps.canvas + np.float32(amount)
    at = np.flatnonzero((value > 0) & (inst_maps.owner > 0))
    if at.size == 0:
        return out
    owner = inst_maps.owner.ravel()[at]
    cy, cx = np.divmod(at, value.shape[1])
    pixel = (cy + inst_maps.dy[owner]) * shape[1] + cx + inst_maps.dx[owner]
    flat = out.ravel()
    contested = np.bincount(pixel, minlength=flat.size)[pixel] > 1
    flat[pixel[~contested]] = owner[~contested]
    if contested.any():  # the deepest claim wins, the lowest id among equally deep ones
        pixel, owner, value = pixel[contested], owner[contested], value.ravel()[at[contested]]
        order = np.lexsort((owner, -value, pixel))
        pixel, owner = pixel[order], owner[order]
        first = np.r_[True, pixel[1:] != pixel[:-1]]
        flat[pixel[first]] = owner[first]
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


def outline_stats(maps: ClusterStack, k: int) -> OutlineStats:
    """Pairwise outline offsets of the annotators over the clusters they share."""
    n_clusters = len(maps)
    # a pixel in some pair's band (|a + b| <= 2 on the clipped maps) has a value >= -1 and
    # one <= 1: the others (far outside every outline, deep inside all) are dropped first
    near = np.flatnonzero((maps.sdf.max(axis=0, initial=-np.inf) >= -1.0)
                          & (maps.sdf.min(axis=0, initial=np.inf) <= 1.0))
    clipped, owner = np.clip(maps.sdf[:, near], -CLIP, CLIP), maps.cluster[near]
    keys, offsets, squares = [], [], []
    for j in range(k):
        for kk in range(j + 1, k):
            both = maps.drawn[:, j] & maps.drawn[:, kk]
            if not both.any():
                continue
            a, b = clipped[j], clipped[kk]
            band = (np.abs(a + b) <= 2.0) & both[owner]
            where = owner[band]
            d = (a[band] - b[band]).astype(np.float64)
            n = np.bincount(where, minlength=n_clusters)
            has = n > 0
            if not has.any():
                continue
            keys.append((j, kk))
            offsets.append(np.bincount(where, d, n_clusters)[has] / n[has])
            squares.append(np.bincount(where, d * d, n_clusters)[has] / n[has])
    return OutlineStats(k, tuple(keys), tuple(offsets), tuple(squares))


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
        ``c + 1`` for pixels of cluster ``c``, 0 for background; each cluster keeps its
        largest connected piece only.
    explained : ndarray of bool, shape (len(maps),)
        Rescued clusters dropped as explained by others.
    """
    best = np.full(shape, -np.inf, np.float32)
    owner = np.zeros(shape, np.int32)
    explained = np.zeros(len(maps), bool)
    if len(maps) == 0:
        return owner, explained
    # per-cluster member weights (all members equal where their weights are all zero)
    w = np.where(maps.drawn, np.asarray(weights, np.float64)[None, :], 0.0)
    w = np.where((w.sum(axis=1) <= 0)[:, None], maps.drawn.astype(np.float64), w)
    acc = np.zeros(maps.cluster.shape[0], np.float64)
    for j in range(maps.drawn.shape[1]):
        if maps.drawn[:, j].any():
            acc += w[maps.cluster, j] * np.clip(maps.sdf[j] - bias[j], -CLIP, CLIP)
    # rounding makes ties exact whatever the summation order of the annotators
    value = np.round(acc / w.sum(axis=1)[maps.cluster], 6).astype(np.float32)
    top = np.maximum.reduceat(value, maps.starts[:-1])
    empty = top <= 0  # a sliver no member agrees on: keep its deepest pixel
    if empty.any():
        lift = empty[maps.cluster] & (value >= top[maps.cluster])
        value[lift] = np.float32(1e-6)
    for c in order:
        win = maps.windows[c]
        v = maps.crop(value, c)
        inside = v > 0
        region = best[win]
        if not strong[c]:
            covered = np.count_nonzero(inside & (owner[win] > 0))
            if covered > max_covered * np.count_nonzero(inside):
                explained[c] = True
                continue
        claim = inside & (v > region)
        region[claim] = v[claim]
        owner[win][claim] = c + 1
    for c, win in enumerate(maps.windows):
        mine = owner[win] == c + 1
        lab, n = ndi.label(mine)
        if n > 1:
            sizes = np.bincount(lab.ravel())[1:]
            owner[win][mine & (lab != 1 + int(np.argmax(sizes)))] = 0
    return owner, explained


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
    area = np.bincount(maps.cluster[final], minlength=n)
    first = np.full(n, -1, np.int64)
    hit = np.flatnonzero(final)
    if hit.size:
        cs, at = np.unique(maps.cluster[hit], return_index=True)
        first[cs] = maps.pixel[hit[at]]
    total = np.zeros(n)
    for j in range(maps.drawn.shape[1]):
        drawn = maps.drawn[:, j]
        if not drawn.any():
            continue
        member = maps.sdf[j] > 0
        inter = np.bincount(maps.cluster[final & member], minlength=n)
        union = area + np.bincount(maps.cluster[member], minlength=n) - inter
        total += np.where(drawn, inter / np.maximum(union, 1), 0.0)
    with np.errstate(invalid="ignore"):
        agreement = np.where(area > 0, total / maps.drawn.sum(axis=1), np.nan)
    return first, agreement
