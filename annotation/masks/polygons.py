"""Label images to polygons, and the pixel convention every format shares (pure, no Django).

Pixel convention
----------------
Coordinates are ``(x, y)`` with x along columns and y along rows, in pixels, origin
at the top-left *corner* of the image. Pixel ``(row r, column c)`` is the unit square
``c <= x <= c + 1, r <= y <= r + 1``; its centre is ``(c + 0.5, r + 0.5)``. ImageJ,
QuPath, COCO (pycocotools), Label Studio and napari's shapes all use this corner
convention.

* **mask -> polygon** traces the pixel edges: the polygon is exactly the union of the
  instance's pixel squares (holes kept as interior rings; pieces that are not
  4-connected become the parts of a MultiPolygon).
* **polygon -> mask** (:mod:`annotation.masks.rasterize`) uses the pixel-centre rule: a pixel belongs to the shape when its
  centre lies inside (even-odd rule over the rings of one part; parts are unioned).
  Ties on an edge are broken half-open (a centre exactly on a left or top edge is in).

Together these make mask -> polygon -> mask exact (IoU 1.0), not just >= 0.98.

The overlap rule used when shapes are painted into one label image lives in
:mod:`annotation.masks.rasterize`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import shapely
from scipy import ndimage
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from .labels import MaskFormatError, validate_label_image

__all__ = ["classes_for", "geometry_rings", "label_image_to_polygons", "mask_to_geometry"]

#: Images larger than this many pixels are traced in bands of rows.
_BAND_PIXELS = 4_000_000


# ----------------------------------------------------------------- mask -> polygon


def _trace_rings(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Follow the pixel-edge boundaries of every instance, all instances at once.

    Returns
    -------
    ring_label : ndarray of int64, shape (R,)
        Instance id of each ring.
    ring_start : ndarray of int64, shape (R + 1,)
        Offsets of each ring's vertices in ``xy``.
    xy : ndarray of float64, shape (V, 2)
        Ring vertices (corners only; collinear ones dropped), ring after ring.

    Notes
    -----
    Every edge between a pixel of id k and a pixel not of id k is directed with the
    instance on its right (x right, y down): along the top of a pixel towards +x, down
    its right side, along its bottom towards -x, up its left side. Outer rings then run
    clockwise on screen (positive shoelace area in these coordinates) and holes
    anticlockwise. At a vertex where two pixels of one instance meet only diagonally,
    the walk turns right, so 4-connected pieces become separate rings. Rings are found
    and ordered by pointer jumping (list ranking), without a Python loop per edge.
    """
    lab = labels.astype(np.int64, copy=False)
    h, w = lab.shape
    padded = np.pad(lab, 1)
    core = padded[1:-1, 1:-1]
    fg = core != 0
    spec = (  # neighbour, start offset (dx, dy), direction
        (padded[:-2, 1:-1], (0, 0), 0),  # top edge, towards +x
        (padded[1:-1, 2:], (1, 0), 1),  # right edge, towards +y
        (padded[2:, 1:-1], (1, 1), 2),  # bottom edge, towards -x
        (padded[1:-1, :-2], (0, 1), 3),  # left edge, towards -y
    )
    step = np.array([[1, 0], [0, 1], [-1, 0], [0, -1]], dtype=np.int64)
    sx, sy, dirs, kk = [], [], [], []
    for neighbour, (dx, dy), d in spec:
        rr, cc = np.nonzero(fg & (neighbour != core))
        sx.append(cc + dx)
        sy.append(rr + dy)
        dirs.append(np.full(rr.size, d, dtype=np.int64))
        kk.append(core[rr, cc])
    sx, sy = np.concatenate(sx), np.concatenate(sy)
    d, k = np.concatenate(dirs), np.concatenate(kk)
    n = d.size
    ids, kidx = np.unique(k, return_inverse=True)
    stride = (h + 1) * (w + 1)
    start_key = kidx * stride + sy * (w + 1) + sx
    end_key = kidx * stride + (sy + step[d, 1]) * (w + 1) + (sx + step[d, 0])
    order = np.argsort(start_key, kind="stable")
    keys = start_key[order]
    lo = np.searchsorted(keys, end_key, side="left")
    count = np.searchsorted(keys, end_key, side="right") - lo
    first = order[lo]
    second = order[np.minimum(lo + 1, n - 1)]
    right_turn = (d + 1) % 4
    succ = np.where((count == 2) & (d[first] != right_turn), second, first)
    # Cycle id = smallest edge index on the cycle (pointer jumping).
    rounds = max(1, int(np.ceil(np.log2(n))) + 1)
    head, jump = np.arange(n), succ.copy()
    for _ in range(rounds):
        head = np.minimum(head, head[jump])
        jump = jump[jump]
    # Rank = steps to the edge just before the head (list ranking on the cut cycle).
    tail = succ == head
    nxt = np.where(tail, np.arange(n), succ)
    dist = (~tail).astype(np.int64)
    for _ in range(rounds):
        dist = dist + dist[nxt]
        nxt = nxt[nxt]
    seq = np.lexsort((-dist, head))
    ring_of = head[seq]
    bounds = np.flatnonzero(np.diff(ring_of)) + 1
    ring_first = np.concatenate([[0], bounds])
    ring_len = np.diff(np.concatenate([ring_first, [n]]))
    ds = d[seq]
    # A vertex is a corner when the direction changes from the previous edge.
    prev = np.arange(n) - 1
    prev[ring_first] = ring_first + ring_len - 1
    corner = ds != ds[prev]
    xy = np.column_stack([sx[seq], sy[seq]]).astype(np.float64)[corner]
    per_ring = np.add.reduceat(corner.astype(np.int64), ring_first)
    ring_start = np.concatenate([[0], np.cumsum(per_ring)])
    return ids[kidx[seq[ring_first]]], ring_start, xy


def _simple_rings(pts: np.ndarray) -> list[np.ndarray]:
    """Split a ring that passes through a vertex twice into simple rings.

    The right-turn rule keeps diagonal neighbours apart, which also makes the shell of
    a region whose hole touches the outside at one corner pass that corner twice; OGC
    wants a shell and a hole touching there instead. Edges keep the instance on their
    right, so each piece is then a shell (clockwise) or a hole (anticlockwise).
    """
    keys = pts[:, 0] * 1_000_003 + pts[:, 1]
    if np.unique(keys).size == keys.size:
        return [pts]
    out, path, seen = [], [], {}
    for p, key in zip(pts.tolist(), keys.tolist(), strict=True):
        if key in seen:
            cut = seen[key]
            loop = path[cut:]
            out.append(np.asarray(loop, dtype=np.float64))
            for q in loop:
                seen.pop(q[0] * 1_000_003 + q[1], None)
            del path[cut:]
        seen[key] = len(path)
        path.append(p)
    if path:
        out.append(np.asarray(path, dtype=np.float64))
    return [r for r in out if len(r) >= 4]


def _outside_probe(ring: np.ndarray) -> tuple[float, float]:
    """Centre of the pixel just left of the ring's first edge (outside the instance)."""
    (x0, y0), (x1, y1) = ring[0], ring[1]
    dx, dy = np.sign(x1 - x0), np.sign(y1 - y0)
    return x0 + 0.5 * dx + 0.5 * dy, y0 + 0.5 * dy - 0.5 * dx


def _assemble(
    ring_label: np.ndarray, ring_start: np.ndarray, xy: np.ndarray
) -> dict[int, BaseGeometry]:
    """Group rings into one Polygon/MultiPolygon per instance, holes in their shell."""
    out: dict[int, BaseGeometry] = {}
    order = np.argsort(ring_label, kind="stable")
    labels_sorted = ring_label[order]
    cuts = np.flatnonzero(np.diff(labels_sorted)) + 1
    for group in np.split(order, cuts):
        shells, holes = [], []
        for ring in group.tolist():
            a, b = ring_start[ring], ring_start[ring + 1]
            for pts in _simple_rings(xy[a:b]):
                rx, ry = pts[:, 0], pts[:, 1]
                area2 = float(np.dot(rx, np.roll(ry, -1)) - np.dot(np.roll(rx, -1), ry))
                (shells if area2 > 0 else holes).append((ring, pts))
        if len(shells) == 1:
            geom = Polygon(shells[0][1], [h for _, h in holes])
        else:
            shell_polys = [Polygon(sh) for _, sh in shells]
            owned: list[list[np.ndarray]] = [[] for _ in shells]
            for _, hole in holes:
                px, py = _outside_probe(hole)
                inside = [i for i, sp in enumerate(shell_polys) if shapely.contains_xy(sp, px, py)]
                owned[inside[0] if inside else 0].append(hole)
            geom = MultiPolygon([Polygon(sh, owned[i]) for i, (_, sh) in enumerate(shells)])
        out[int(ring_label[group[0]])] = geom
    keys = sorted(out)
    normalised = shapely.normalize(np.array([out[k] for k in keys], dtype=object))
    return dict(zip(keys, normalised.tolist(), strict=True))


def mask_to_geometry(mask: np.ndarray, *, offset: tuple[int, int] = (0, 0)) -> BaseGeometry:
    """Trace the pixel-edge outline of a boolean mask.

    Parameters
    ----------
    mask : ndarray of bool, shape (H, W)
        Pixels of one instance.
    offset : (int, int), optional
        ``(row, column)`` of ``mask[0, 0]`` in the full image, added to coordinates.

    Returns
    -------
    shapely Polygon or MultiPolygon
        Exactly the union of the pixel squares (see the module's pixel convention),
        with holes as interior rings and without redundant collinear vertices; an
        empty Polygon for an empty mask.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise MaskFormatError(f"mask must be 2-D, got shape {mask.shape}.")
    if not mask.any():
        return Polygon()
    geom = label_image_to_polygons(mask.astype(np.uint8))[1]
    r0, c0 = offset
    return shapely.transform(geom, lambda pts: pts + np.array([c0, r0])) if (r0 or c0) else geom


def label_image_to_polygons(labels: np.ndarray) -> dict[int, BaseGeometry]:
    """Trace every instance of a label image as a pixel-edge polygon.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        0 is background; ids need not be contiguous.

    Returns
    -------
    dict of int to shapely Polygon or MultiPolygon
        One entry per id present, ascending. Coordinates are x (column), y (row) in
        the corner convention; the polygon is exactly the union of the instance's
        pixel squares, so its area equals the pixel count. Pieces that touch only at
        a corner are separate parts (4-connectivity).
    """
    validate_label_image(labels, name="labels")
    if not labels.any():
        return {}
    if labels.size <= _BAND_PIXELS:
        return _assemble(*_trace_rings(labels))
    # Large images are traced in bands of rows, each holding the instances whose top
    # row falls in it (whole, however tall), to bound the memory of the edge arrays.
    ids, inverse = np.unique(labels, return_inverse=True)
    compact = inverse.reshape(labels.shape).astype(np.int64)
    slices = ndimage.find_objects(compact)
    tops = np.array([s[0].start for s in slices])
    bottoms = np.array([s[0].stop for s in slices])
    band = max(1, _BAND_PIXELS // labels.shape[1])
    out: dict[int, BaseGeometry] = {}
    for r0 in range(0, labels.shape[0], band):
        chosen = np.flatnonzero((tops >= r0) & (tops < r0 + band)) + 1
        if chosen.size == 0:
            continue
        r1 = int(bottoms[chosen - 1].max())
        crop = compact[r0:r1]
        sub = np.where(np.isin(crop, chosen), crop, 0)
        ring_label, ring_start, xy = _trace_rings(sub)
        xy[:, 1] += r0
        for key, geom in _assemble(ring_label, ring_start, xy).items():
            out[int(ids[key])] = geom
    return dict(sorted(out.items()))


def geometry_rings(geom: BaseGeometry) -> list[tuple[np.ndarray, list[np.ndarray]]]:
    """Split a Polygon/MultiPolygon into (exterior, holes) coordinate arrays.

    Returns
    -------
    list of (ndarray, list of ndarray)
        Per polygon part: exterior ring (n, 2) x, y without the repeated closing
        vertex, and its interior rings likewise.
    """
    parts = list(geom.geoms) if geom.geom_type == "MultiPolygon" else [geom]
    out = []
    for part in parts:
        if part.is_empty:
            continue
        ext = np.asarray(part.exterior.coords, dtype=np.float64)[:-1]
        holes = [np.asarray(r.coords, dtype=np.float64)[:-1] for r in part.interiors]
        out.append((ext, holes))
    return out


def classes_for(labels_ids: Sequence[int], classes: Mapping[int, str] | None) -> dict[int, str]:
    """Restrict a class map to the ids present, checking its types."""
    if not classes:
        return {}
    out = {}
    for i in labels_ids:
        name = classes.get(int(i))
        if name is not None:
            if not isinstance(name, str) or not name:
                raise MaskFormatError(f"class of instance {i} must be a non-empty string.")
            out[int(i)] = name
    return out
