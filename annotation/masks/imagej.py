"""ImageJ/Fiji ROI files (``.roi``) and ROI Manager zips in and out, via roifile.

Area ROIs are imported: rectangles (sub-pixel too), ovals (the ellipse inscribed in the
bounding box), polygons, freehand, traced, sub-pixel ellipses and rotated rectangles,
and composite (shape) ROIs with holes or several parts, filled by the even-odd rule as
ImageJ's ``ShapeRoi`` does. Point, multi-point, line, polyline, freeline and angle ROIs
have no area and are skipped with a reason; so are text and image overlays. ROIs may
lie partly at negative coordinates; they are cut at the image border (with a warning).
Overlaps follow the rule in :mod:`annotation.masks.rasterize`.

Written ROIs are ``TRACED`` polygons along pixel edges (what ImageJ's wand and
*Analyze Particles* produce), or composite ROIs for instances with holes or several
parts; ImageJ fills both back to exactly the same pixels. A cell class is stored as the
ROI property ``class`` and read back from it.
"""

from __future__ import annotations

import io
import math
import zipfile
from collections.abc import Mapping

import numpy as np

from .labels import ImportResult, MaskFormatError, validate_label_image
from .polygons import geometry_rings, label_image_to_polygons
from .rasterize import Shape, rasterize_shapes
from .safety import DEFAULT_LIMITS, Limits, SafeZip, check_points

__all__ = ["read_imagej_rois", "write_imagej_zip"]

_ROI_MAGIC = b"Iout"
#: ImageJ stores integer ROI coordinates as 16-bit offsets and bounds as int16.
_MAX_IJ_COORD = 32_767


def _ellipse_ring(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """Vertices of the ellipse inscribed in a box, dense enough for the centre rule."""
    a, b = (x1 - x0) / 2.0, (y1 - y0) / 2.0
    n = int(min(4096, max(64, math.ceil(8 * math.pi * max(a, b)))))
    t = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)
    return np.column_stack([x0 + a + a * np.cos(t), y0 + b + b * np.sin(t)])


def _roi_class(roi) -> str | None:
    props = roi.props or ""
    for line in props.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "class" and value.strip():
            return value.strip()
    return None


def _roi_to_shape(roi, name: str, limits: Limits) -> tuple[Shape | None, str | None]:
    """Return the shape of an area ROI, or (None, reason) for anything else."""
    from roifile import ROI_SUBTYPE, ROI_TYPE

    rtype, sub = roi.roitype, roi.subtype
    if sub in (ROI_SUBTYPE.TEXT, ROI_SUBTYPE.IMAGE):
        return None, f"{sub.name.lower()} overlay, not a cell outline"
    if rtype == ROI_TYPE.POINT:
        return None, "point ROI: marks a position, has no area"
    if rtype in (ROI_TYPE.LINE, ROI_TYPE.POLYLINE, ROI_TYPE.FREELINE, ROI_TYPE.ANGLE):
        return None, f"{rtype.name.lower()} ROI: a line has no area"
    if rtype == ROI_TYPE.NOROI:
        return None, "empty ROI"
    where = f"ImageJ ROI {name!r}"
    cls = _roi_class(roi)
    if rtype == ROI_TYPE.RECT and roi.composite:
        try:
            rings = roi.coordinates(multi=True)
        except (NotImplementedError, RuntimeError) as exc:
            return None, f"composite ROI with curves ImageJ did not flatten: {exc}"
        part = tuple(check_points(r, where=where, limits=limits) for r in rings if len(r) >= 3)
        if not part:
            return None, "composite ROI without any closed path"
        return Shape(name=where, parts=(part,), class_name=cls), None
    if rtype in (ROI_TYPE.RECT, ROI_TYPE.OVAL):
        if roi.subpixelrect:
            x0, y0, x1, y1 = roi.xd, roi.yd, roi.xd + roi.widthd, roi.yd + roi.heightd
        else:
            x0, y0, x1, y1 = roi.left, roi.top, roi.right, roi.bottom
        if x1 <= x0 or y1 <= y0:
            return None, "rectangle or oval of zero size"
        if rtype == ROI_TYPE.RECT:
            ring = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)
        else:
            ring = _ellipse_ring(x0, y0, x1, y1)
        ring = check_points(ring, where=where, limits=limits)
        return Shape(name=where, parts=((ring,),), class_name=cls), None
    if rtype in (ROI_TYPE.POLYGON, ROI_TYPE.FREEHAND, ROI_TYPE.TRACED):
        coords = roi.coordinates()
        ring = check_points(coords, where=where, limits=limits)
        if len(ring) < 3:
            return None, f"{rtype.name.lower()} ROI with fewer than 3 vertices"
        return Shape(name=where, parts=((ring,),), class_name=cls), None
    return None, f"unsupported ROI type {rtype.name}"


def _parse_roi(content: bytes, name: str):
    from roifile import ImagejRoi

    if not content.startswith(_ROI_MAGIC):
        raise MaskFormatError(f"{name!r} is not an ImageJ ROI (no 'Iout' signature).")
    try:
        return ImagejRoi.frombytes(content)
    except Exception as exc:  # roifile raises ValueError, struct.error, IndexError...
        raise MaskFormatError(f"Could not parse ImageJ ROI {name!r}: {exc}") from exc


def read_imagej_rois(
    data: bytes,
    *,
    shape: tuple[int, int] | None,
    limits: Limits = DEFAULT_LIMITS,
) -> ImportResult:
    """Read one ``.roi`` file or a ROI Manager ``.zip`` into a label image.

    Parameters
    ----------
    data : bytes
        A single ImageJ ROI (``Iout`` signature) or a zip of them.
    shape : (int, int) or None
        ``(H, W)`` of the image the ROIs belong to (ROI files do not store it); None
        uses the extent of the ROIs, with a warning.
    limits : Limits, optional
        Archive, point, shape and pixel caps.

    Returns
    -------
    ImportResult
        Instances in archive order; classes from the ROI property ``class``; skipped
        ROIs (points, lines, ...) with the reason; overlap and border warnings.

    Raises
    ------
    MaskFormatError
        Unsafe or oversized zip (see :class:`~annotation.masks.safety.SafeZip`),
        a member that is not an ImageJ ROI, unparsable ROIs, NaN coordinates, caps.
    """
    data = bytes(data)
    skipped: list[tuple[str, str]] = []
    shapes: list[Shape] = []
    planes: set[tuple[int, int, int, int]] = set()

    def add(member: str, content: bytes, several: bool) -> None:
        roi = _parse_roi(content, member)
        stem = member[:-4] if member.lower().endswith(".roi") else member
        name = stem if several or not roi.name else roi.name
        shape_, reason = _roi_to_shape(roi, name, limits)
        if shape_ is None:
            skipped.append((f"ImageJ ROI {name!r}", reason or "not an area ROI"))
        else:
            shapes.append(shape_)
            planes.add((roi.position, roi.c_position, roi.z_position, roi.t_position))

    if data.startswith(_ROI_MAGIC):
        add("roi", data, False)
    else:
        # Checked from the central directory first, then inflated one ROI at a time.
        with SafeZip(data, limits=limits) as zf:
            skipped.extend(zf.skipped)
            if len(zf.names) > limits.max_shapes:
                raise MaskFormatError(
                    f"The zip holds {len(zf.names):,} ROIs; at most {limits.max_shapes:,} "
                    "are accepted."
                )
            for member, content in zf.members():
                add(member, content, len(zf.names) > 1)
    warnings = []
    if len(planes) > 1:
        warnings.append(
            f"The ROIs belong to {len(planes)} different stack positions (slice, c, z, t); "
            "all were imported into one 2-D mask."
        )
    return rasterize_shapes(shapes, shape=shape, limits=limits, warnings=warnings, skipped=skipped)


def _path(rings: list[np.ndarray]) -> np.ndarray:
    """ImageJ ShapeRoi path: MOVETO x y, LINETO x y ..., CLOSE per ring."""
    ops: list[float] = []
    for ring in rings:
        ops += [0.0, float(ring[0, 0]), float(ring[0, 1])]
        for x, y in ring[1:]:
            ops += [1.0, float(x), float(y)]
        ops.append(4.0)
    return np.asarray(ops, dtype=np.float32)


def write_imagej_zip(labels: np.ndarray, *, classes: Mapping[int, str] | None = None) -> bytes:
    """Write every instance as an ImageJ ROI in a ROI Manager zip.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        At most 32,767 pixels high and wide (ImageJ's int16 ROI bounds).
    classes : dict of int to str, optional
        Class per instance id, stored as the ROI property ``class``.

    Returns
    -------
    bytes
        Zip with one ``NNNNN-cell-<id>.roi`` per instance in ascending id order.
    """
    from roifile import ROI_OPTIONS, ROI_TYPE, ImagejRoi

    validate_label_image(labels, name="labels")
    if max(labels.shape) > _MAX_IJ_COORD:
        raise MaskFormatError(
            f"ImageJ ROIs address at most {_MAX_IJ_COORD} pixels per side; labels are "
            f"{labels.shape[0]} x {labels.shape[1]}."
        )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for index, (label, geom) in enumerate(label_image_to_polygons(labels).items(), start=1):
            rings_by_part = geometry_rings(geom)
            x0, y0, x1, y1 = (int(v) for v in geom.bounds)
            name = f"{index:05d}-cell-{label}"
            if len(rings_by_part) == 1 and not rings_by_part[0][1]:
                roi = ImagejRoi.frompoints(rings_by_part[0][0].astype(np.int32), name=name)
                roi.roitype = ROI_TYPE.TRACED
                roi.options = ROI_OPTIONS.NONE
                # frompoints sets right/bottom one past the largest vertex; ImageJ's
                # bounds for a traced polygon are the vertex extent itself.
                roi.right, roi.bottom = x1, y1
            else:
                rings = [ring for ext, holes in rings_by_part for ring in (ext, *holes)]
                roi = ImagejRoi()
                roi.roitype = ROI_TYPE.RECT
                roi.name = name
                roi.multi_coordinates = _path(rings)
                roi.shape_roi_size = len(roi.multi_coordinates)
                roi.left, roi.top, roi.right, roi.bottom = x0, y0, x1, y1
            cls = classes.get(label) if classes else None
            if cls:
                roi.props = f"class: {cls}\n"
            zf.writestr(name + ".roi", roi.tobytes())
    return buf.getvalue()
