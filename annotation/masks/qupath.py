"""QuPath GeoJSON in and out (pure, no Django).

Accepted input: a ``FeatureCollection``, a JSON list of ``Feature`` objects (QuPath's
*Export objects*), a single ``Feature``, or a bare geometry. ``Polygon`` and
``MultiPolygon`` geometries (and the area members of a ``GeometryCollection``) become
instances; ``Point``, ``MultiPoint``, ``LineString`` and ``MultiLineString`` objects
have no area and are reported as skipped; an unknown geometry type is an error. The
object kind is read from ``objectType`` (QuPath >= 0.3) or ``object_type`` (0.2); the
class from ``classification.name`` or ``classification.names`` (derived classes joined
with ``": "`` as QuPath displays them). Coordinates are pixels in the corner convention
of :mod:`annotation.masks.polygons`; a non-standard ``isEllipse`` key is ignored (the
polygon vertices are used). Overlaps follow the rule in :mod:`annotation.masks.rasterize`.

QuPath *cell* objects carry two outlines: the cell boundary in ``geometry`` and the
nucleus in ``nucleusGeometry`` (a Feature member beside ``geometry``). ``geometry="cell"``
(the default) imports the cell boundaries, ``geometry="nucleus"`` the nuclei (objects
without a nucleus are then skipped with a reason); the result says which was used
whenever a file holds nuclei.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np

from .labels import ImportResult, MaskFormatError, validate_label_image
from .polygons import geometry_rings, label_image_to_polygons
from .rasterize import Shape, rasterize_shapes
from .safety import DEFAULT_LIMITS, Limits, check_points, load_json

__all__ = ["GEOMETRIES", "read_qupath_geojson", "write_qupath_geojson"]

#: Which outline of a QuPath cell object to import.
GEOMETRIES: tuple[str, ...] = ("cell", "nucleus")

_AREA_TYPES = {"Polygon", "MultiPolygon"}
_NON_AREA_TYPES = {"Point", "MultiPoint", "LineString", "MultiLineString"}
_GEOMETRY_TYPES = _AREA_TYPES | _NON_AREA_TYPES | {"GeometryCollection"}


def _class_name(props: Mapping[str, Any]) -> str | None:
    cls = props.get("classification")
    if isinstance(cls, dict):
        if isinstance(cls.get("name"), str) and cls["name"]:
            return cls["name"]
        names = cls.get("names")
        if isinstance(names, list) and names and all(isinstance(n, str) for n in names):
            return ": ".join(names)
    if isinstance(cls, str) and cls:
        return cls
    return None


def _polygon_part(coords: Any, where: str, limits: Limits) -> tuple[np.ndarray, ...]:
    if not isinstance(coords, list) or not coords:
        raise MaskFormatError(f"{where}: Polygon coordinates must be a non-empty list of rings.")
    return tuple(check_points(ring, where=where, limits=limits) for ring in coords)


def _geometry_parts(
    geom: Any, where: str, limits: Limits, depth: int = 0
) -> tuple[list[tuple[np.ndarray, ...]], list[str]]:
    """Area parts of a geometry and the non-area geometry types met."""
    if not isinstance(geom, dict):
        raise MaskFormatError(f"{where}: geometry must be an object, got {type(geom).__name__}.")
    gtype = geom.get("type")
    if gtype not in _GEOMETRY_TYPES:
        raise MaskFormatError(
            f"{where}: unknown geometry type {gtype!r}; expected one of "
            f"{', '.join(sorted(_GEOMETRY_TYPES))}."
        )
    if gtype in _NON_AREA_TYPES:
        return [], [gtype]
    if gtype == "GeometryCollection":
        if depth > 4:
            raise MaskFormatError(f"{where}: GeometryCollections nested too deeply.")
        parts, others = [], []
        members = geom.get("geometries")
        if not isinstance(members, list):
            raise MaskFormatError(f"{where}: GeometryCollection needs a 'geometries' list.")
        for member in members:
            p, o = _geometry_parts(member, where, limits, depth + 1)
            parts += p
            others += o
        return parts, others
    coords = geom.get("coordinates")
    if gtype == "Polygon":
        return [_polygon_part(coords, where, limits)], []
    if not isinstance(coords, list):
        raise MaskFormatError(f"{where}: MultiPolygon coordinates must be a list of polygons.")
    return [_polygon_part(poly, where, limits) for poly in coords], []


def _features(doc: Any) -> list[tuple[Any, Mapping[str, Any], Any]]:
    """(geometry, properties, nucleus geometry or None) from any accepted top-level layout."""
    if isinstance(doc, list):
        items = doc
    elif isinstance(doc, dict) and doc.get("type") == "FeatureCollection":
        items = doc.get("features")
        if not isinstance(items, list):
            raise MaskFormatError("GeoJSON FeatureCollection needs a 'features' list.")
    elif isinstance(doc, dict) and doc.get("type") == "Feature":
        items = [doc]
    elif (
        isinstance(doc, dict)
        and "type" in doc
        and "coordinates" in doc
        or (isinstance(doc, dict) and doc.get("type") == "GeometryCollection")
    ):
        return [(doc, {}, None)]
    elif isinstance(doc, dict) and "type" in doc:
        raise MaskFormatError(f"Unknown GeoJSON type {doc.get('type')!r}.")
    else:
        raise MaskFormatError("Not GeoJSON: expected a Feature, FeatureCollection or geometry.")
    out = []
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            raise MaskFormatError(f"GeoJSON feature {n} is not an object.")
        if item.get("type") == "Feature":
            props = item.get("properties") or {}
            if not isinstance(props, dict):
                raise MaskFormatError(f"GeoJSON feature {n}: 'properties' must be an object.")
            out.append((item.get("geometry"), props, item.get("nucleusGeometry")))
        else:
            out.append((item, {}, None))  # a bare geometry inside a list
    return out


def read_qupath_geojson(
    data: bytes,
    *,
    shape: tuple[int, int] | None,
    limits: Limits = DEFAULT_LIMITS,
    geometry: str = "cell",
) -> ImportResult:
    """Read QuPath (or any) GeoJSON objects into a label image.

    Parameters
    ----------
    data : bytes
        GeoJSON text (see the module docstring for accepted layouts).
    shape : (int, int) or None
        ``(H, W)`` of the image; None uses the extent of the objects, with a warning.
    limits : Limits, optional
        File size, shape, point and pixel caps.
    geometry : {'cell', 'nucleus'}, optional
        For QuPath cell objects: import the cell boundary or the ``nucleusGeometry``.

    Returns
    -------
    ImportResult
        One instance per area feature in file order (a MultiPolygon is one instance),
        classes from the classification, skipped non-area objects (named by index,
        QuPath object type and geometry type), overlap and border warnings.

    Raises
    ------
    MaskFormatError
        Not GeoJSON, an unknown geometry type, malformed coordinates (NaN, too many
        points), ``geometry="nucleus"`` for a file without any nucleus, or anything
        over ``limits``.
    """
    doc = load_json(data, what="GeoJSON", limits=limits)
    return geojson_from_document(doc, shape=shape, limits=limits, geometry=geometry)


def geojson_from_document(
    doc: Any,
    *,
    shape: tuple[int, int] | None,
    limits: Limits = DEFAULT_LIMITS,
    geometry: str = "cell",
) -> ImportResult:
    """:func:`read_qupath_geojson` on an already parsed JSON document."""
    if geometry not in GEOMETRIES:
        raise MaskFormatError(f"geometry must be one of {GEOMETRIES}, got {geometry!r}.")
    features = _features(doc)
    n_nuclei = sum(1 for _, _, nucleus in features if nucleus is not None)
    if geometry == "nucleus" and n_nuclei == 0:
        raise MaskFormatError(
            "geometry=nucleus was asked, but no object in the GeoJSON has a "
            "nucleusGeometry (QuPath writes one for cell objects only); import with "
            "geometry=cell."
        )
    if len(features) > limits.max_shapes:
        raise MaskFormatError(
            f"The GeoJSON has {len(features):,} features; at most {limits.max_shapes:,} are accepted."
        )
    shapes: list[Shape] = []
    skipped: list[tuple[str, str]] = []
    for n, (geom, props, nucleus) in enumerate(features):
        kind = props.get("objectType", props.get("object_type", "object"))
        label = props.get("name")
        where = f"GeoJSON feature {n} ({kind}{', ' + repr(label) if label else ''})"
        if geometry == "nucleus":
            if nucleus is None:
                skipped.append((where, "no nucleusGeometry (geometry=nucleus was asked)"))
                continue
            geom, where = nucleus, f"{where} nucleus"
        if geom is None:
            skipped.append((where, "feature without geometry"))
            continue
        parts, others = _geometry_parts(geom, where, limits)
        if not parts:
            skipped.append((where, f"{'/'.join(others)} geometry has no area"))
            continue
        if others:
            skipped.append((where, f"non-area members ({', '.join(others)}) of a collection"))
        shapes.append(Shape(name=where, parts=tuple(parts), class_name=_class_name(props)))
    notes = []
    if n_nuclei:
        notes.append(
            f"imported the nucleus outlines (geometry=nucleus) of {n_nuclei} QuPath cells."
            if geometry == "nucleus"
            else f"imported the cell outlines (geometry=cell); {n_nuclei} QuPath cells also "
            "carry a nucleusGeometry, imported with geometry=nucleus."
        )
    return rasterize_shapes(shapes, shape=shape, limits=limits, warnings=notes, skipped=skipped)


def _ring_list(ring: np.ndarray) -> list[list[float]]:
    return np.vstack([ring, ring[:1]]).astype(np.float64).tolist()


def write_qupath_geojson(
    labels: np.ndarray,
    *,
    classes: Mapping[int, str] | None = None,
    object_type: Literal["annotation", "detection"] = "annotation",
) -> bytes:
    """Write instances as a GeoJSON FeatureCollection that QuPath imports.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
    classes : dict of int to str, optional
        Class per instance id, written as ``classification.name``.
    object_type : {'annotation', 'detection'}, optional
        QuPath object kind (``objectType``).

    Returns
    -------
    bytes
        UTF-8 GeoJSON: one Feature per instance (ascending id) with a pixel-edge
        Polygon, or MultiPolygon for an instance in several pieces; holes kept.
    """
    validate_label_image(labels, name="labels")
    features = []
    for label, geom in label_image_to_polygons(labels).items():
        rings = geometry_rings(geom)
        polys = [[_ring_list(ext), *(_ring_list(h) for h in holes)] for ext, holes in rings]
        geometry = (
            {"type": "Polygon", "coordinates": polys[0]}
            if len(polys) == 1
            else {"type": "MultiPolygon", "coordinates": polys}
        )
        props: dict[str, Any] = {"objectType": object_type, "name": f"cell {label}"}
        cls = classes.get(label) if classes else None
        if cls:
            props["classification"] = {"name": cls}
        features.append({"type": "Feature", "geometry": geometry, "properties": props})
    doc = {"type": "FeatureCollection", "features": features}
    return json.dumps(doc, separators=(",", ":")).encode("utf-8")
