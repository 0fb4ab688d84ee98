"""Shapes (polygons, rings, raster masks) painted into one label image (pure, no Django).

Pixels are chosen by the pixel-centre rule of :mod:`annotation.masks.polygons`.

Overlap rule
------------
Formats whose instances may overlap (polygons, ROIs, COCO, GeoJSON, Label Studio) are
painted in order of decreasing area, so where two instances overlap the **smaller one
keeps the shared pixels** (a small cell drawn over a large one stays whole); between
equal areas the one later in the file wins. Every overlap is reported as a warning
naming both instances and the pixel count; an instance that loses all its pixels is
dropped with a warning.

Overlap losers left in pieces
-----------------------------
An instance drawn as one connected region that loses pixels to overlapping ones may be
left as several disconnected slivers (a ROI keeping 21 of its 346 pixels in 7 pieces).
Such an instance keeps only its largest remaining piece (8-connected) when that piece
holds at least ``min_piece_share`` (default 10 %) of the pixels it was drawn with; the
other pieces become background. When even the largest piece is smaller, the instance is
dropped. Both cases are reported. Instances drawn in several parts (MultiPolygon,
composite ROIs) are left as they are.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .fragments import MIN_PIECE_SHARE, crop, trim_fragments
from .labels import ImportResult, MaskFormatError
from .safety import DEFAULT_LIMITS, Limits

__all__ = ["Shape", "rasterize_rings", "rasterize_shapes", "shapes_extent"]

#: Most row crossings a single shape may generate while being rasterised.
_MAX_CROSSINGS = 50_000_000


@dataclass(frozen=True)
class Shape:
    """One instance read from a vector or per-instance format, before rasterising.

    Attributes
    ----------
    name : str
        How the source file identifies it (``"COCO annotation 12"``, ``"ROI 0003-cell"``),
        used in warnings.
    parts : tuple of tuple of ndarray
        Area parts. Each part is a tuple of rings, each ring a float64 array of shape
        (n, 2) holding x, y; the rings of one part are filled by the even-odd rule
        (an exterior and its holes, or an ImageJ composite path) and parts are unioned.
    mask : ndarray of bool, shape (h, w), optional
        For raster sources (COCO RLE, Label Studio brush) instead of ``parts``: the
        bounding-box crop of the instance (build it with :meth:`from_mask`).
    mask_offset : (int, int)
        ``(row, column)`` of ``mask[0, 0]`` in the image.
    mask_image_shape : (int, int), optional
        ``(H, W)`` of the image the raster was decoded for.
    class_name : str, optional
        Class (category, classification) given by the file.
    """

    name: str
    parts: tuple[tuple[np.ndarray, ...], ...] = ()
    mask: np.ndarray | None = None
    mask_offset: tuple[int, int] = (0, 0)
    mask_image_shape: tuple[int, int] | None = None
    class_name: str | None = None

    @classmethod
    def from_mask(cls, name: str, mask: np.ndarray, *, class_name: str | None = None) -> Shape:
        """Keep only the bounding-box crop of a full-image boolean mask.

        Parameters
        ----------
        name : str
        mask : ndarray of bool, shape (H, W)
            The instance's pixels in the whole image (decoded RLE, brush).
        class_name : str, optional
        """
        mask = np.asarray(mask, dtype=bool)
        rows = np.flatnonzero(mask.any(axis=1))
        if rows.size == 0:
            crop, offset = np.zeros((0, 0), bool), (0, 0)
        else:
            cols = np.flatnonzero(mask.any(axis=0))
            crop = mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].copy()
            offset = (int(rows[0]), int(cols[0]))
        return cls(
            name=name,
            mask=crop,
            mask_offset=offset,
            mask_image_shape=(int(mask.shape[0]), int(mask.shape[1])),
            class_name=class_name,
        )

    @property
    def n_points(self) -> int:
        """Total vertex count of all rings."""
        return sum(len(ring) for part in self.parts for ring in part)


# ----------------------------------------------------------------- polygon -> mask


def rasterize_rings(
    rings: Sequence[np.ndarray], *, shape: tuple[int, int]
) -> tuple[tuple[int, int], np.ndarray] | None:
    """Fill rings by the even-odd rule with the pixel-centre rule.

    Parameters
    ----------
    rings : sequence of ndarray, each shape (n, 2)
        x, y vertices; each ring is closed implicitly (a repeated first vertex is fine).
    shape : (int, int)
        ``(H, W)`` of the image; pixels outside are cut off.

    Returns
    -------
    ((row, column), ndarray of bool) or None
        Top-left offset of the crop and the crop itself (bounding box of the filled
        pixels), or None when no pixel centre lies inside.

    Notes
    -----
    Scanline fill: each non-horizontal edge crosses the centre line ``y = r + 0.5`` of
    the rows with ``y_min <= r + 0.5 < y_max`` (half-open, so a vertex is counted once);
    the sorted crossings of a row pair up into spans, and column ``c`` is inside a span
    ``[x_a, x_b)`` when ``x_a <= c + 0.5 < x_b``.
    """
    height, width = shape
    x0s, y0s, x1s, y1s = [], [], [], []
    for ring in rings:
        ring = np.asarray(ring, dtype=np.float64)
        if len(ring) < 3:
            continue
        nxt = np.roll(ring, -1, axis=0)
        x0s.append(ring[:, 0])
        y0s.append(ring[:, 1])
        x1s.append(nxt[:, 0])
        y1s.append(nxt[:, 1])
    if not x0s:
        return None
    x0, y0 = np.concatenate(x0s), np.concatenate(y0s)
    x1, y1 = np.concatenate(x1s), np.concatenate(y1s)
    keep = y0 != y1
    x0, y0, x1, y1 = x0[keep], y0[keep], x1[keep], y1[keep]
    if len(x0) == 0:
        return None
    ylo, yhi = np.minimum(y0, y1), np.maximum(y0, y1)
    r_first = np.maximum(np.ceil(ylo - 0.5), 0).astype(np.int64)
    r_last = np.minimum(np.ceil(yhi - 0.5) - 1, height - 1).astype(np.int64)
    counts = np.maximum(r_last - r_first + 1, 0)
    total = int(counts.sum())
    if total == 0:
        return None
    if total > _MAX_CROSSINGS:
        raise MaskFormatError(
            f"A shape needs {total:,} scanline crossings to rasterise (over {_MAX_CROSSINGS:,}); "
            "it has too many vertices spanning too many rows."
        )
    edge = np.repeat(np.arange(len(x0)), counts)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    rows = r_first[edge] + (np.arange(total) - starts)
    yc = rows + 0.5
    xs = x0[edge] + (yc - y0[edge]) * (x1[edge] - x0[edge]) / (y1[edge] - y0[edge])
    order = np.lexsort((xs, rows))
    rows, xs = rows[order], xs[order]
    # Every row has an even number of crossings (closed rings, half-open rule).
    row_a, xa, xb = rows[0::2], xs[0::2], xs[1::2]
    c_start = np.clip(np.ceil(xa - 0.5), 0, width).astype(np.int64)
    c_end = np.clip(np.ceil(xb - 0.5), 0, width).astype(np.int64)
    ok = c_end > c_start
    if not ok.any():
        return None
    row_a, c_start, c_end = row_a[ok], c_start[ok], c_end[ok]
    rmin, rmax = int(row_a.min()), int(row_a.max())
    cmin, cmax = int(c_start.min()), int(c_end.max())
    acc = np.zeros((rmax - rmin + 1, cmax - cmin + 1), dtype=np.int32)
    np.add.at(acc, (row_a - rmin, c_start - cmin), 1)
    np.add.at(acc, (row_a - rmin, c_end - cmin), -1)
    crop = np.cumsum(acc, axis=1)[:, :-1] > 0
    return (rmin, cmin), crop


def _shape_pixels(shape: Shape, size: tuple[int, int]) -> tuple[tuple[int, int], np.ndarray] | None:
    if shape.mask is not None:
        full = shape.mask_image_shape or shape.mask.shape
        if tuple(full) != tuple(size):
            raise MaskFormatError(
                f"{shape.name} has a raster mask for a {full[0]} x {full[1]} image, "
                f"but the image is {size[0]} x {size[1]}."
            )
        mask = np.asarray(shape.mask, dtype=bool)
        if not mask.any():
            return None
        return shape.mask_offset, mask
    pieces = [p for p in (rasterize_rings(part, shape=size) for part in shape.parts) if p]
    if not pieces:
        return None
    if len(pieces) == 1:
        return pieces[0]
    r0 = min(o[0] for o, _ in pieces)
    c0 = min(o[1] for o, _ in pieces)
    r1 = max(o[0] + m.shape[0] for o, m in pieces)
    c1 = max(o[1] + m.shape[1] for o, m in pieces)
    out = np.zeros((r1 - r0, c1 - c0), dtype=bool)
    for (r, c), m in pieces:
        out[r - r0 : r - r0 + m.shape[0], c - c0 : c - c0 + m.shape[1]] |= m
    return (r0, c0), out


def shapes_extent(shapes: Sequence[Shape]) -> tuple[int, int]:
    """Smallest ``(H, W)`` that holds every vertex of the shapes (at least 1 x 1)."""
    max_x = max_y = 0.0
    for s in shapes:
        if s.mask is not None:
            full = s.mask_image_shape or s.mask.shape
            max_y = max(max_y, full[0])
            max_x = max(max_x, full[1])
        for part in s.parts:
            for ring in part:
                if len(ring):
                    max_x = max(max_x, float(ring[:, 0].max()))
                    max_y = max(max_y, float(ring[:, 1].max()))
    return max(1, math.ceil(max_y)), max(1, math.ceil(max_x))


def rasterize_shapes(
    shapes: Sequence[Shape],
    *,
    shape: tuple[int, int] | None,
    limits: Limits = DEFAULT_LIMITS,
    warnings: Sequence[str] = (),
    skipped: Sequence[tuple[str, str]] = (),
    min_piece_share: float = MIN_PIECE_SHARE,
) -> ImportResult:
    """Paint instances into one label image by the overlap rule.

    Parameters
    ----------
    shapes : sequence of Shape
        Instances in file order; instance ids are given in this order (1..N, skipping
        instances that end up with no pixel).
    shape : (int, int) or None
        ``(H, W)`` of the image. None uses the extent of the shapes (and says so in a
        warning): formats without an image size need the caller's image shape.
    limits : Limits, optional
        ``max_pixels``, ``max_shapes`` and ``max_total_points`` apply.
    warnings, skipped : sequence, optional
        Reader findings to carry into the result.
    min_piece_share : float, optional
        For an overlap loser left in pieces: the share of its drawn pixels its largest
        piece must hold to be kept (module docstring); 0 keeps every largest piece.

    Returns
    -------
    ImportResult
        Label image (uint16/uint32, ids 1..N in file order), classes per id, warnings
        (overlaps with both names and pixel counts, shapes cut by the image border,
        shapes with no pixel) and the skipped objects passed in.
    """
    notes = list(warnings)
    if len(shapes) > limits.max_shapes:
        raise MaskFormatError(
            f"The file holds {len(shapes):,} shapes; at most {limits.max_shapes:,} are accepted."
        )
    total_points = sum(s.n_points for s in shapes)
    if total_points > limits.max_total_points:
        raise MaskFormatError(
            f"The file holds {total_points:,} polygon vertices; at most "
            f"{limits.max_total_points:,} are accepted."
        )
    if shape is None:
        shape = shapes_extent(shapes)
        notes.append(
            f"No image size was given; used the extent of the shapes, {shape[0]} x {shape[1]} "
            "pixels (H x W)."
        )
    height, width = int(shape[0]), int(shape[1])
    if height < 1 or width < 1:
        raise MaskFormatError(f"Image shape must be positive, got {height} x {width}.")
    if height * width > limits.max_pixels:
        raise MaskFormatError(
            f"A {height} x {width} label image has {height * width:,} pixels; at most "
            f"{limits.max_pixels:,} are accepted."
        )
    rasters: list[tuple[int, tuple[int, int], np.ndarray]] = []
    for index, s in enumerate(shapes):
        got = _shape_pixels(s, (height, width))
        if got is None:
            notes.append(f"{s.name} covers no pixel centre inside the image; dropped.")
            continue
        if s.mask is None and _leaves_image(s, height, width):
            notes.append(f"{s.name} extends beyond the image border and was cut at it.")
        rasters.append((index, got[0], got[1]))
    areas = np.array([int(m.sum()) for _, _, m in rasters], dtype=np.int64)
    # Stable sort on -area: larger first, so smaller (and, on ties, later) wins.
    paint_order = np.argsort(-areas, kind="stable")
    canvas = np.zeros((height, width), dtype=np.int32)  # holds position+1 in `rasters`
    for k in paint_order.tolist():
        _, (r0, c0), m = rasters[k]
        canvas[r0 : r0 + m.shape[0], c0 : c0 + m.shape[1]][m] = k + 1
    rank = np.empty(len(rasters), dtype=np.int64)
    rank[paint_order] = np.arange(len(rasters))
    for a, b, n in _pairwise_overlaps(rasters):
        loser, winner = (a, b) if rank[a] < rank[b] else (b, a)
        la, lb = shapes[rasters[a][0]].name, shapes[rasters[b][0]].name
        lw = shapes[rasters[winner][0]].name
        notes.append(f"{la} and {lb} overlap by {n} pixels; {lw} (smaller or later) keeps them.")
    counts = np.bincount(canvas.ravel(), minlength=len(rasters) + 1)
    trimmed_away: set[int] = set()
    for k in np.flatnonzero((counts[1:] > 0) & (counts[1:] < areas)).tolist():
        name = shapes[rasters[k][0]].name
        note = trim_fragments(canvas, k, rasters[k], int(areas[k]), name, min_piece_share)
        if note:
            notes.append(note)
            counts[k + 1] = int(np.count_nonzero(crop(canvas, rasters[k]) == k + 1))
            if counts[k + 1] == 0:
                trimmed_away.add(k)
    present = set((np.flatnonzero(counts[1:])).tolist())
    for k in range(len(rasters)):
        if k not in present and k not in trimmed_away:
            notes.append(
                f"{shapes[rasters[k][0]].name} lost all its pixels to overlapping instances; dropped."
            )
    # Ids in file order among the instances that kept pixels.
    kept = sorted(present)
    dtype = np.uint16 if len(kept) <= 65_535 else np.uint32
    lut = np.zeros(len(rasters) + 1, dtype=dtype)
    classes: dict[int, str] = {}
    for new_id, k in enumerate(kept, start=1):
        lut[k + 1] = new_id
        cls = shapes[rasters[k][0]].class_name
        if cls:
            classes[new_id] = cls
    return ImportResult(
        labels=lut[canvas],
        classes=classes,
        warnings=tuple(notes),
        skipped=tuple(skipped),
    )


def _pairwise_overlaps(
    rasters: Sequence[tuple[int, tuple[int, int], np.ndarray]],
) -> list[tuple[int, int, int]]:
    """(i, j, shared pixel count) for every pair of rasters that overlap, i < j in file order.

    A sweep over the rows: after sorting by top row, only rasters starting above the
    bottom of raster i can meet it, so the candidates are one contiguous slice.
    """
    if len(rasters) < 2:
        return []
    r0 = np.array([o[0] for _, o, _ in rasters])
    c0 = np.array([o[1] for _, o, _ in rasters])
    r1 = r0 + np.array([m.shape[0] for _, _, m in rasters])
    c1 = c0 + np.array([m.shape[1] for _, _, m in rasters])
    order = np.argsort(r0, kind="stable")
    r0_sorted = r0[order]
    found = []
    for pos, i in enumerate(order.tolist()):
        stop = int(np.searchsorted(r0_sorted, r1[i], side="left"))
        cand = order[pos + 1 : stop]
        cand = cand[(c0[cand] < c1[i]) & (c1[cand] > c0[i])]
        for j in cand.tolist():
            top, bottom = max(r0[i], r0[j]), min(r1[i], r1[j])
            left, right = max(c0[i], c0[j]), min(c1[i], c1[j])
            mi = rasters[i][2][top - r0[i] : bottom - r0[i], left - c0[i] : right - c0[i]]
            mj = rasters[j][2][top - r0[j] : bottom - r0[j], left - c0[j] : right - c0[j]]
            n = int(np.count_nonzero(mi & mj))
            if n:
                found.append((min(i, j), max(i, j), n))
    return sorted(found)


def _leaves_image(s: Shape, height: int, width: int) -> bool:
    for part in s.parts:
        for ring in part:
            if len(ring) and (
                ring[:, 0].min() < 0
                or ring[:, 1].min() < 0
                or ring[:, 0].max() > width
                or ring[:, 1].max() > height
            ):
                return True
    return False
