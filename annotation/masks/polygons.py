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


# ----------------------------------------------------------------- mask -> polygon


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
    r0, c0 = offset
    # Horizontal runs per row, then runs that repeat on consecutive rows are merged
    # into one taller box, which keeps the union small and fast.
    padded = np.zeros((mask.shape[0], mask.shape[1] + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    diff = np.diff(padded, axis=1)
    rows_s, cols_s = np.nonzero(diff == 1)
    rows_e, cols_e = np.nonzero(diff == -1)
    boxes: dict[tuple[int, int], list[list[int]]] = {}
    merged: list[tuple[int, int, int, int]] = []
    for r, cs, ce in zip(rows_s.tolist(), cols_s.tolist(), cols_e.tolist(), strict=True):
        stack = boxes.get((cs, ce))
        if stack and stack[-1][1] == r:
            stack[-1][1] = r + 1
        else:
            boxes.setdefault((cs, ce), []).append([r, r + 1])
    for (cs, ce), spans in boxes.items():
        for top, bottom in spans:
            merged.append((c0 + cs, r0 + top, c0 + ce, r0 + bottom))
    arr = np.asarray(merged, dtype=np.float64)
    geom = shapely.union_all(shapely.box(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3]))
    geom = shapely.simplify(geom, 0.0, preserve_topology=True)
    if geom.geom_type not in ("Polygon", "MultiPolygon"):
        polys = [g for g in getattr(geom, "geoms", []) if g.geom_type == "Polygon"]
        geom = MultiPolygon(polys)
    return shapely.normalize(geom)


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
        the corner convention; area equals the pixel count exactly.
    """
    validate_label_image(labels, name="labels")
    out: dict[int, BaseGeometry] = {}
    if not labels.any():
        return out
    max_id = int(labels.max())
    if max_id > 10 * labels.size:
        # find_objects allocates one slot per id; squeeze huge sparse ids first.
        ids, inverse = np.unique(labels, return_inverse=True)
        compact = inverse.reshape(labels.shape)
        id_of = ids
    else:
        compact = labels
        id_of = None
    for index, slc in enumerate(ndimage.find_objects(compact), start=1):
        if slc is None:
            continue
        crop = compact[slc] == index
        label = int(id_of[index]) if id_of is not None else index
        out[label] = mask_to_geometry(crop, offset=(slc[0].start, slc[1].start))
    return out


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
