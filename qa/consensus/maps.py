"""Signed distance maps of instances, packed per annotation and per cluster.

Each instance is turned into a signed distance map (px to its outline, > 0 inside) on its
bounding box plus a margin. The maps of one annotation share a packed canvas (two distance
transforms serve every instance); the maps of every cluster's members are packed flat on
the cluster's window (:class:`ClusterStack`) for vectorised statistics and voting
(:mod:`qa.consensus.voting`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import ndimage as ndi

from .clustering import Foreground

try:  # OpenCV's exact EDT (Felzenszwalb) is ~4x faster than scipy's; same float32 values
    import cv2
except ImportError:  # pragma: no cover - web-only installs without the training stack
    cv2 = None

CLIP = 3.0
_PAD = int(CLIP) + 2  # crop margin: outlines moved by up to MAX_BIAS (2.5) px stay inside
_FAR = -(CLIP + 3.0)  # value of a map beyond its crop (at least _PAD - 0.5 px outside)


def signed_distance(mask: np.ndarray) -> np.ndarray:
    """Signed distance (px) to the outline of a padded boolean mask, > 0 inside, with
    scipy: the path of installs without OpenCV (:func:`instance_maps` uses OpenCV's
    transforms when it can, same values to 1e-5).

    The outline runs half-way between inside and outside pixel centres, so the pixels
    along it sit at +0.5 and -0.5.
    """
    inside = ndi.distance_transform_edt(mask)
    outside = ndi.distance_transform_edt(~mask)
    return np.where(mask, inside - 0.5, 0.5 - outside).astype(np.float32)


@dataclass(frozen=True, eq=False)
class InstanceMap:
    """Signed distance map of one instance on its padded bounding box."""

    window: tuple[slice, slice]
    sdf: np.ndarray  # float32, window shape; > 0 inside


class InstanceMaps:
    """The :class:`InstanceMap` of every instance of one mask, as views of one packed canvas.

    A sequence: entry ``i - 1`` for id ``i``, None if absent (made on access). ``canvas``
    holds the signed distances; ``owner`` (int32, canvas shape) the id whose map a canvas
    pixel belongs to (0 for none; made on first use); image pixel = canvas pixel +
    ``(dy[id], dx[id])``; ``windows`` (int64, shape (n, 4)) each map's ``y0, x0, y1, x1``
    in the image (zeros where absent). Whole-mask operations (:func:`corrected_labels`) run
    on the canvas in a few passes instead of one small array operation per instance.
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.canvas: np.ndarray | None = None
        self.dy = np.zeros(n + 1, np.int64)
        self.dx = np.zeros(n + 1, np.int64)
        self.windows = np.zeros((n, 4), np.int64)
        self._owner: np.ndarray | None = None

    def __len__(self) -> int:
        return self.n

    @property
    def owner(self) -> np.ndarray | None:
        if self._owner is None and self.canvas is not None:
            owner = np.zeros(self.canvas.shape, np.int32)
            ids = np.flatnonzero(self.windows[:, 2] > self.windows[:, 0]) + 1
            top = self.windows[ids - 1, 0] - self.dy[ids]
            left = self.windows[ids - 1, 1] - self.dx[ids]
            bottom = top + self.windows[ids - 1, 2] - self.windows[ids - 1, 0]
            right = left + self.windows[ids - 1, 3] - self.windows[ids - 1, 1]
            for i, t, b, lf, r in zip(ids.tolist(), top.tolist(), bottom.tolist(),
                                      left.tolist(), right.tolist(), strict=True):
                owner[t:b, lf:r] = i
            self._owner = owner
        return self._owner

    def sdf(self, i: int) -> np.ndarray:
        """The map of id ``i`` (present) on its window: a view of the canvas."""
        y0, x0, y1, x1 = self.windows[i - 1].tolist()
        top, left = y0 - int(self.dy[i]), x0 - int(self.dx[i])
        return self.canvas[top:top + y1 - y0, left:left + x1 - x0]

    def __getitem__(self, index: int) -> InstanceMap | None:
        i = range(1, self.n + 1)[index]
        y0, x0, y1, x1 = self.windows[i - 1].tolist()
        if y1 == y0:
            return None
        return InstanceMap((slice(y0, y1), slice(x0, x1)), self.sdf(i))

    def __iter__(self):
        return (self[i] for i in range(self.n))


def _shelf_pack(ids: np.ndarray, box: np.ndarray, pad: int, rows: np.ndarray,
                cols: np.ndarray, pixel_ids: np.ndarray):
    """Pack every box plus ``pad`` px on each side edge to edge (shelves, tallest first).

    Returns the cells' top-left corners ``(py, px)`` (per entry of ``ids``), the canvas
    shape, and the canvas index of every labelled pixel (image row ``rows``, column
    ``cols``, id ``pixel_ids``).
    """
    heights = box[:, 2] - box[:, 0] + 2 * pad
    widths = box[:, 3] - box[:, 1] + 2 * pad
    order = np.lexsort((ids, -heights))
    width = max(int(widths.max()), int(np.sqrt(float(np.sum(heights * widths))) * 1.2))
    py, px = np.zeros(len(ids), np.int64), np.zeros(len(ids), np.int64)
    x = y = shelf = 0
    for n, h, w in zip(order.tolist(), heights[order].tolist(), widths[order].tolist(),
                       strict=True):
        if x + w > width:
            x, y, shelf = 0, y + shelf, 0
        py[n], px[n] = y, x
        x += w
        shelf = max(shelf, h)
    # canvas index of image pixel (y, x) of id i: (y + oy[i]) * width + x + ox[i]
    top = int(ids.max()) + 1
    oy, ox = np.zeros(top, np.int64), np.zeros(top, np.int64)
    oy[ids], ox[ids] = py + pad - box[:, 0], px + pad - box[:, 1]
    at = rows + oy[pixel_ids]
    at *= width
    at += cols
    at += ox[pixel_ids]
    return py, px, (y + shelf, width), at


def instance_maps(seq: np.ndarray, boxes, shape, *,
                  foreground: Foreground | None = None) -> InstanceMaps:
    """Signed distance maps of every instance of one sequentially labelled mask.

    Every instance gets a canvas cell of its bounding box plus ``_PAD`` px on each side
    (also beyond the image border, which counts as outside), and all cells are packed
    edge to edge into one canvas, so that two distance transforms serve every instance
    (one transform per instance would cost ~100 us each). Any pixel of a cell is at least
    ``_PAD`` px from the other cells' instances, so distances up to ``_PAD`` px are exact
    and farther ones stay at least that far. The distances inside instances come from a
    second canvas whose cells have a 1 px margin (the nearest outside pixel of an instance
    pixel is in its box or on the ring around it), a third to half the pixels of the
    first. Entry ``i - 1`` is None for absent ids. ``foreground``: the mask's labelled
    pixels, if known.
    """
    out = InstanceMaps(len(boxes))
    present = [(i, sl) for i, sl in enumerate(boxes, start=1) if sl is not None]
    if not present:
        return out
    ids = np.array([i for i, _ in present], np.int64)
    box = np.array([(sl[0].start, sl[1].start, sl[0].stop, sl[1].stop) for _, sl in present],
                   np.int64)
    if foreground is None:
        foreground = Foreground.of(seq, n=len(boxes))
    pixel_ids = foreground.ids
    rows, cols = np.divmod(foreground.pixel, shape[1])
    py, px, canvas_shape, at = _shelf_pack(ids, box, _PAD, rows, cols, pixel_ids)
    canvas = np.zeros(canvas_shape, np.uint8)
    canvas.ravel()[at] = 1
    if cv2 is not None and canvas.size < 2**31:
        # outside: distance to the nearest instance pixel, over the whole padded cells
        sdf = cv2.distanceTransform(1 - canvas, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        np.subtract(np.float32(0.5), sdf, out=sdf)
        # inside: distance to the nearest pixel outside, on cells with a 1 px margin
        _, _, tight_shape, tight_at = _shelf_pack(ids, box, 1, rows, cols, pixel_ids)
        tight = np.zeros(tight_shape, np.uint8)
        tight.ravel()[tight_at] = 1
        inside = cv2.distanceTransform(tight, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        sdf.ravel()[at] = inside.ravel()[tight_at] - np.float32(0.5)
        out.canvas = sdf
    else:
        out.canvas = signed_distance(canvas.view(bool))
    # windows: the cells clipped to the image
    y0, x0 = np.maximum(box[:, 0] - _PAD, 0), np.maximum(box[:, 1] - _PAD, 0)
    y1 = np.minimum(box[:, 2] + _PAD, shape[0])
    x1 = np.minimum(box[:, 3] + _PAD, shape[1])
    cy = py + _PAD - (box[:, 0] - y0)
    cx = px + _PAD - (box[:, 1] - x0)
    out.dy[ids], out.dx[ids] = y0 - cy, x0 - cx
    out.windows[ids - 1] = np.stack([y0, x0, y1, x1], axis=1)
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
    members : ndarray of int64, shape (C, K)
        The members (sequential ids, 0 = none) the maps were built from.
    width : int
        Image width ``W``.
    """

    windows: tuple[tuple[slice, slice], ...]
    starts: np.ndarray
    drawn: np.ndarray
    sdf: np.ndarray
    cluster: np.ndarray
    members: np.ndarray
    width: int

    def __len__(self) -> int:
        return len(self.windows)

    @cached_property
    def pixel(self) -> np.ndarray:
        """(P,) int64: flat image index (``y * W + x``) of each packed pixel."""
        out = np.empty(self.cluster.shape[0], np.int64)
        for c, (rows, cols) in enumerate(self.windows):
            out[self.starts[c]:self.starts[c + 1]] = (
                np.arange(rows.start, rows.stop)[:, None] * self.width
                + np.arange(cols.start, cols.stop)).ravel()
        return out

    def crop(self, values: np.ndarray, c: int) -> np.ndarray:
        """``values`` (shape (P,)) of cluster ``c`` as a window-shaped view."""
        win = self.windows[c]
        shape = (win[0].stop - win[0].start, win[1].stop - win[1].start)
        return values[self.starts[c]:self.starts[c + 1]].reshape(shape)

    def same_clusters(self, other: ClusterStack | None) -> np.ndarray:
        """(C,) int64: the index in ``other`` of a cluster with the same members, or -1."""
        out = np.full(len(self), -1, np.int64)
        if other is None or len(other) == 0 or len(self) == 0:
            return out
        known = {row: c for c, row in enumerate(map(tuple, other.members.tolist()))}
        for c, row in enumerate(map(tuple, self.members.tolist())):
            out[c] = known.get(row, -1)
        return out


def cluster_maps(members: np.ndarray, inst_maps, shape, *,
                 reuse: ClusterStack | None = None) -> ClusterStack:
    """Pack the signed distance maps of every cluster's members on their common windows.

    ``reuse``: a stack built before from the same instance maps; the maps of clusters with
    the same members are copied from it whole.
    """
    n, k = members.shape
    drawn = members > 0
    big = np.iinfo(np.int64).max
    box = np.zeros((n, k, 4), np.int64)
    for j in range(k):
        if drawn[:, j].any():
            box[drawn[:, j], j] = inst_maps[j].windows[members[drawn[:, j], j] - 1]
    y0 = np.where(drawn, box[..., 0], big).min(axis=1, initial=big)
    x0 = np.where(drawn, box[..., 1], big).min(axis=1, initial=big)
    y1 = np.where(drawn, box[..., 2], -1).max(axis=1, initial=-1)
    x1 = np.where(drawn, box[..., 3], -1).max(axis=1, initial=-1)
    heights, widths = y1 - y0, x1 - x0
    sizes = heights * widths
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    total = int(starts[-1])
    cluster = np.repeat(np.arange(n, dtype=np.int64), sizes)
    windows = tuple((slice(int(a), int(b)), slice(int(c), int(d)))
                    for a, b, c, d in zip(y0.tolist(), y1.tolist(), x0.tolist(), x1.tolist(),
                                          strict=True))
    sdf = (np.full((k, total), _FAR, np.float32) if reuse is None
           else np.empty((k, total), np.float32))
    out = ClusterStack(windows, starts, drawn, sdf, cluster, members, int(shape[1]))
    source = out.same_clusters(reuse)
    firsts = starts.tolist()
    for c, s in enumerate(source.tolist()):
        if s >= 0:
            sdf[:, firsts[c]:firsts[c + 1]] = reuse.sdf[:, reuse.starts[s]:reuse.starts[s + 1]]
        elif reuse is not None:
            sdf[:, firsts[c]:firsts[c + 1]] = _FAR
    cs, js = np.nonzero(drawn & (source < 0)[:, None])
    tops = (box[cs, js, 0] - y0[cs]).tolist()
    lefts = (box[cs, js, 1] - x0[cs]).tolist()
    hs, ws = heights.tolist(), widths.tolist()
    for c, j, top, left, i in zip(cs.tolist(), js.tolist(), tops, lefts,
                                  members[cs, js].tolist(), strict=True):
        m = inst_maps[j].sdf(i)
        sdf[j, firsts[c]:firsts[c + 1]].reshape(hs[c], ws[c])[
            top:top + m.shape[0], left:left + m.shape[1]] = m
    return out


def moved_foreground(inst_maps: InstanceMaps, amount: float, shape, *,
                     inside: Foreground | None = None) -> tuple[np.ndarray, np.ndarray,
                                                                np.ndarray]:
    """:func:`corrected_labels`, with its foreground pixels (flat indices) and their ids.

    ``inside``: the foreground of the mask the maps were made from; moving inwards then
    only tests its pixels instead of the whole canvas.

    Returns
    -------
    labels : ndarray of uint32, shape (H, W)
    pixel : ndarray of int64, shape (m,)
        Every foreground pixel of ``labels`` once, in no particular order.
    ids : ndarray of int32, shape (m,)
        ``labels.ravel()[pixel]``.
    """
    out = np.zeros(shape, np.uint32)
    none = np.zeros(0, np.int64), np.zeros(0, np.int32)
    if inst_maps.canvas is None:
        return (out, *none)
    if amount <= 0 and inside is not None:
        # canvas pixel of image pixel y * W + x of id i: (y - dy[i]) * cw + x - dx[i]
        cw = inst_maps.canvas.shape[1]
        at = inside.pixel // shape[1]
        at *= cw - shape[1]
        at += inside.pixel
        at -= (inst_maps.dy * cw + inst_maps.dx)[inside.ids]
        keep = inst_maps.canvas.ravel()[at] + np.float32(amount) > 0
        pixel, owner = inside.pixel[keep], inside.ids[keep].astype(np.int32)
        out.ravel()[pixel] = owner
        return out, pixel, owner
    value = inst_maps.canvas + np.float32(amount)
    # moved inwards only pixels inside an instance (always in its own cell) can be claimed
    at = np.flatnonzero(value > 0 if amount <= 0 else (value > 0) & (inst_maps.owner > 0))
    if at.size == 0:
        return (out, *none)
    owner = inst_maps.owner.ravel()[at]
    # image pixel (cy + dy) * W + cx + dx of canvas pixel at = cy * cw + cx
    pixel = at // value.shape[1]
    pixel *= shape[1] - value.shape[1]
    pixel += at
    pixel += (inst_maps.dy * shape[1] + inst_maps.dx)[owner]
    flat = out.ravel()
    # and each such pixel is one instance's: nothing to contest
    contested = (np.bincount(pixel, minlength=flat.size)[pixel] > 1 if amount > 0
                 else np.zeros(0, bool))
    if not contested.any():
        flat[pixel] = owner
        return out, pixel, owner
    alone = ~contested
    flat[pixel[alone]] = owner[alone]
    # the deepest claim wins, the lowest id among equally deep ones
    kept_pixel, kept_owner = pixel[alone], owner[alone]
    pixel, owner, value = pixel[contested], owner[contested], value.ravel()[at[contested]]
    order = np.lexsort((owner, -value, pixel))
    pixel, owner = pixel[order], owner[order]
    first = np.r_[True, pixel[1:] != pixel[:-1]]
    flat[pixel[first]] = owner[first]
    return (out, np.concatenate([kept_pixel, pixel[first]]),
            np.concatenate([kept_owner, owner[first]]))


def corrected_labels(inst_maps: InstanceMaps, amount: float, shape) -> np.ndarray:
    """A label image with every outline moved outwards by ``amount`` px (< 0: inwards).

    Used to bias-correct a whole annotation before clustering again; where moved
    instances meet, a pixel goes to the instance it lies deeper in (the lower id on a tie).
    """
    return moved_foreground(inst_maps, amount, shape)[0]
