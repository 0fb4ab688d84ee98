"""Recognise a mask file's format from its content, never from its name (pure)."""

from __future__ import annotations

import io
import zipfile
from typing import Any, Literal

from annotation.imagefiles import describe_content

from .labels import MaskFormatError
from .safety import DEFAULT_LIMITS, Limits, load_json

__all__ = ["MASK_FORMATS", "MaskFormat", "detect_document", "detect_format"]

MaskFormat = Literal[
    "png", "tiff", "ome-tiff", "instances", "cellpose", "imagej", "coco", "geojson", "labelstudio"
]
#: Every format name :func:`detect_format` may return.
MASK_FORMATS: tuple[str, ...] = (
    "png",
    "tiff",
    "ome-tiff",
    "instances",
    "cellpose",
    "imagej",
    "coco",
    "geojson",
    "labelstudio",
)
_GEOJSON_TYPES = {
    "FeatureCollection",
    "Feature",
    "Polygon",
    "MultiPolygon",
    "Point",
    "MultiPoint",
    "LineString",
    "MultiLineString",
    "GeometryCollection",
}


def _json_format(doc: Any) -> MaskFormat | None:
    if isinstance(doc, dict):
        if "images" in doc and "annotations" in doc:
            return "coco"
        if doc.get("type") in _GEOJSON_TYPES:
            return "geojson"
        if isinstance(doc.get("annotations", doc.get("completions")), list) and "data" in doc:
            return "labelstudio"
        return None
    if isinstance(doc, list) and doc and all(isinstance(d, dict) for d in doc[:50]):
        first = doc[0]
        if isinstance(first.get("annotations", first.get("completions")), list):
            return "labelstudio"
        if first.get("type") in _GEOJSON_TYPES:
            return "geojson"
    return None


_INSTANCE_SUFFIXES = (".png", ".tif", ".tiff")


def _is_ome(data: bytes) -> bool:
    from .ometiff import tiff_facts

    try:
        return tiff_facts(data).is_ome
    except MaskFormatError:
        return False  # malformed: the TIFF reader names the problem


def _is_npy_stack(data: bytes) -> bool:
    """A plain (not pickled) .npy array of shape (N, H, W) with N > 1."""
    from .cellpose_seg import _parse_npy_header

    try:
        header, _ = _parse_npy_header(data)
    except MaskFormatError:
        return False
    shape, descr = header.get("shape"), str(header.get("descr"))
    return isinstance(shape, tuple) and len(shape) == 3 and shape[0] > 1 and "O" not in descr


def detect_format(data: bytes, *, limits: Limits = DEFAULT_LIMITS) -> MaskFormat:
    """Say which mask format some bytes hold, by looking at their content.

    Parameters
    ----------
    data : bytes
        The whole file.
    limits : Limits, optional
        Caps for the JSON parse and the zip listing.

    Returns
    -------
    {'png', 'tiff', 'ome-tiff', 'instances', 'cellpose', 'imagej', 'coco', 'geojson', 'labelstudio'}
        ``ome-tiff`` is a TIFF carrying OME-XML; ``instances`` is a zip of per-instance
        PNG/TIFF masks or an ``.npy`` (N, H, W) stack; ``cellpose`` is a ``.npy``
        (``_seg.npy`` or a plain 2-D label array); ``imagej`` is a single ``.roi`` or a
        zip of them; ``geojson`` covers QuPath exports. (A TIFF holding a stack of
        per-instance masks is ``tiff`` or ``ome-tiff``: its reader sees the planes.)

    Raises
    ------
    MaskFormatError
        Empty input, JPEG (lossy: never a label image), a zip holding something other
        than ImageJ ROIs, JSON of no known layout, or unknown content (the message
        says what it looks like).
    """
    return detect_document(data, limits=limits)[0]


def detect_document(data: bytes, *, limits: Limits = DEFAULT_LIMITS) -> tuple[MaskFormat, Any]:
    """:func:`detect_format`, also returning the parsed JSON document (or None)."""
    data = bytes(data)
    if not data:
        raise MaskFormatError("The mask file is empty (0 bytes).")
    head = data[:16]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png", None
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return ("ome-tiff" if _is_ome(data) else "tiff"), None
    if head.startswith(b"\x93NUMPY"):
        return ("instances" if _is_npy_stack(data) else "cellpose"), None
    if head.startswith(b"Iout"):
        return "imagej", None
    if head.startswith(b"\xff\xd8\xff"):
        raise MaskFormatError(
            "The mask file is a JPEG; lossy compression changes instance ids, so a JPEG "
            "cannot be a label image. Use PNG or TIFF."
        )
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                infos = zf.infolist()
                if len(infos) > limits.max_zip_entries:
                    raise MaskFormatError(
                        f"The zip archive has {len(infos):,} entries; at most "
                        f"{limits.max_zip_entries:,} are accepted."
                    )
                names = [
                    i.filename
                    for i in infos
                    if not i.is_dir()
                    and not i.filename.startswith("__MACOSX/")
                    and not i.filename.endswith(".DS_Store")
                ]
        except zipfile.BadZipFile as exc:
            raise MaskFormatError(f"Not a readable zip archive: {exc}") from exc
        others = [n for n in names if not n.lower().endswith(".roi")]
        if not others:  # an empty zip is an empty ROI set, as write_imagej_zip makes it
            return "imagej", None
        if all(n.lower().endswith(_INSTANCE_SUFFIXES) for n in names):
            return "instances", None
        raise MaskFormatError(
            f"The zip archive is neither an ImageJ ROI set (.roi files) nor a set of "
            f"per-instance masks (.png/.tif files): it holds {others[:3]}. Folders or zips "
            "of mask files for several images are imported by the import_annotations command."
        )
    stripped = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped[:1] in (b"{", b"["):
        doc = load_json(data, what="JSON mask", limits=limits)
        fmt = _json_format(doc)
        if fmt is None:
            keys = sorted(doc)[:8] if isinstance(doc, dict) else f"a list of {len(doc)} items"
            raise MaskFormatError(
                "JSON that is not COCO (images + annotations), GeoJSON (type Feature/"
                f"FeatureCollection/geometry) or a Label Studio export; it has {keys}."
            )
        return fmt, doc
    raise MaskFormatError(
        f"Unrecognised mask file: it looks like {describe_content(data)}; expected PNG, TIFF, "
        "Cellpose _seg.npy, ImageJ ROI/zip, COCO JSON, GeoJSON or a Label Studio export."
    )
