"""One entry point to read or write a mask in any supported format (pure, no Django)."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from .cellpose_seg import read_cellpose_seg, write_cellpose_seg
from .coco import CocoImage, coco_from_document, write_coco
from .detect import MASK_FORMATS, detect_document
from .imagej import read_imagej_rois, write_imagej_zip
from .instances import read_instance_npy, read_instance_zip, write_instance_masks
from .labels import ImportResult, MaskFormatError, PixelSize, validate_label_image
from .labelstudio import labelstudio_from_document
from .ometiff import write_ome_tiff
from .polygons import classes_for
from .qupath import GEOMETRIES, geojson_from_document, write_qupath_geojson
from .raster import label_image_warnings, write_label_png, write_label_tiff
from .rasterfiles import read_raster_mask
from .safety import DEFAULT_LIMITS, Limits

__all__ = [
    "CROWD_MODES",
    "GEOMETRIES",
    "WRITE_FORMATS",
    "FormatInfo",
    "FORMAT_INFO",
    "read_mask",
    "write_mask",
]

#: How COCO ``iscrowd=1`` annotations are read (see :mod:`annotation.masks.coco`).
CROWD_MODES: tuple[str, ...] = ("skip", "instances")
#: Formats in which ``invert`` means something (binary raster masks).
_POLARITY_FORMATS = frozenset({"png", "tiff", "ome-tiff", "instances"})


@dataclass(frozen=True)
class FormatInfo:
    """Media type and file-name suffix of a written format."""

    media_type: str
    suffix: str


#: Media type and file-name suffix of every format :func:`write_mask` produces.
FORMAT_INFO: dict[str, FormatInfo] = {
    "png": FormatInfo("image/png", ".png"),
    "tiff": FormatInfo("image/tiff", ".tif"),
    "ome-tiff": FormatInfo("image/tiff", ".ome.tif"),
    "instances": FormatInfo("application/zip", "_instances.zip"),
    "cellpose": FormatInfo("application/octet-stream", "_seg.npy"),
    "imagej": FormatInfo("application/zip", "_rois.zip"),
    "coco": FormatInfo("application/json", "_coco.json"),
    "geojson": FormatInfo("application/geo+json", ".geojson"),
}
#: Formats :func:`write_mask` can write (Label Studio is import-only).
WRITE_FORMATS: tuple[str, ...] = tuple(FORMAT_INFO)


_LS_UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-")


def _entry_basename(key: str) -> str:
    """Basename of a COCO/Label Studio entry, without Label Studio's upload prefix."""
    base = posixpath.basename(key.split("#", 1)[0])
    return _LS_UPLOAD_PREFIX.sub("", base)


def _pick(results: dict[str, ImportResult], image_name: str | None, what: str) -> ImportResult:
    if image_name is not None:
        if image_name in results:
            return results[image_name]
        base = posixpath.basename(image_name.replace("\\", "/"))
        stripped = _LS_UPLOAD_PREFIX.sub("", base)
        matches = [k for k in results if _entry_basename(k) in (base, stripped)]
        if len(matches) == 1:
            return results[matches[0]]
        raise MaskFormatError(
            f"The {what} file has no single entry for image {image_name!r}; it holds "
            f"{sorted(results)[:10]}."
        )
    if len(results) == 1:
        return next(iter(results.values()))
    raise MaskFormatError(
        f"The {what} file describes {len(results)} images {sorted(results)[:10]}; "
        "say which one (image_name)."
    )


def read_mask(
    data: bytes,
    *,
    format: str = "auto",
    shape: tuple[int, int] | None = None,
    image_name: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
    invert: bool | None = None,
    geometry: str = "cell",
    crowd: str = "skip",
) -> ImportResult:
    """Read a mask file of any supported format into a canonical label image.

    Parameters
    ----------
    data : bytes
        The whole file.
    format : str, optional
        ``'auto'`` (recognise by content) or one of ``MASK_FORMATS``; a named format
        that the content contradicts is refused.
    shape : (int, int), optional
        ``(H, W)`` of the image the mask belongs to. Required in practice for ImageJ
        ROIs and GeoJSON (which carry no image size); checked against every format
        that does carry one.
    image_name : str, optional
        For COCO and Label Studio files holding several images: which one (file name,
        or its basename).
    limits : Limits, optional
        Size caps.
    invert : bool or None, optional
        Polarity of binary raster masks (PNG, TIFF, OME-TIFF, per-instance masks): True
        swaps cells and background, False keeps the foreground unchecked, None (default)
        refuses a mask that looks inverted. See :mod:`annotation.masks.binary`.
    geometry : {'cell', 'nucleus'}, optional
        Which outline of a QuPath cell object to import (GeoJSON ``nucleusGeometry``).
    crowd : {'skip', 'instances'}, optional
        COCO ``iscrowd=1`` annotations: skipped (default, as COCO means them), or one
        instance each (older CVAT/datumaro exports write every mask so).

    Options that do not concern the detected format are ignored with a warning.

    Returns
    -------
    ImportResult
        ``labels`` uint16/uint32 (H, W) with ids 1..N, classes, warnings, skipped, and
        ``pixel_size`` when the file records one.

    Raises
    ------
    MaskFormatError
        Unknown or contradicted format, an unknown option value, any reader's refusal,
        or a shape mismatch.
    """
    if invert not in (None, True, False):
        raise MaskFormatError(f"invert must be true, false or null, got {invert!r}.")
    if geometry not in GEOMETRIES:
        raise MaskFormatError(f"geometry must be one of {GEOMETRIES}, got {geometry!r}.")
    if crowd not in CROWD_MODES:
        raise MaskFormatError(f"crowd must be one of {CROWD_MODES}, got {crowd!r}.")
    detected, doc = detect_document(data, limits=limits)
    if format != "auto":
        if format not in MASK_FORMATS:
            raise MaskFormatError(
                f"Unknown mask format {format!r}; expected one of {MASK_FORMATS}."
            )
        if format != detected:
            raise MaskFormatError(f"The file content is {detected}, not {format}.")
    if detected in ("png", "tiff", "ome-tiff"):
        result = read_raster_mask(data, shape=shape, invert=invert, limits=limits)
    elif detected == "instances":
        if data[:2] == b"PK":
            result = read_instance_zip(data, shape=shape, invert=invert, limits=limits)
        else:
            result = read_instance_npy(data, invert=invert, limits=limits)
    elif detected == "cellpose":
        result = read_cellpose_seg(data, shape=shape, limits=limits)
        extra = label_image_warnings(result.labels)
        if extra:
            result = replace(result, warnings=result.warnings + extra)
    elif detected == "imagej":
        result = read_imagej_rois(data, shape=shape, limits=limits)
    elif detected == "geojson":
        result = geojson_from_document(doc, shape=shape, limits=limits, geometry=geometry)
    elif detected == "coco":
        result = _pick(coco_from_document(doc, limits=limits, crowd=crowd), image_name, "COCO")
    else:
        results = labelstudio_from_document(doc, shape=shape, limits=limits)
        result = _pick(results, image_name, "Label Studio")
    ignored = unused_options(detected, invert=invert, geometry=geometry, crowd=crowd)
    if ignored:
        result = replace(result, warnings=tuple(result.warnings) + ignored)
    if shape is not None and result.labels.shape != tuple(shape):
        raise MaskFormatError(
            f"The {detected} mask is {result.labels.shape[0]} x {result.labels.shape[1]} "
            f"(H x W), but the image is {shape[0]} x {shape[1]}."
        )
    return result


def unused_options(
    format: str, *, invert: bool | None = None, geometry: str = "cell", crowd: str = "skip"
) -> tuple[str, ...]:
    """Warnings for import options given that do not concern ``format``."""
    out = []
    if invert is not None and format not in _POLARITY_FORMATS:
        out.append(f"invert={str(invert).lower()} was ignored: a {format} file has no polarity.")
    if geometry != "cell" and format != "geojson":
        out.append(f"geometry={geometry} was ignored: it applies to QuPath GeoJSON only.")
    if crowd != "skip" and format != "coco":
        out.append(f"crowd={crowd} was ignored: it applies to COCO files only.")
    return tuple(out)


def write_mask(
    labels: np.ndarray,
    *,
    format: str,
    classes: Mapping[int, str] | None = None,
    image_name: str = "image.tif",
    pixel_size: PixelSize | None = None,
) -> bytes:
    """Write a label image in one of ``WRITE_FORMATS``.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        Instance label image (ids need not be contiguous).
    format : str
        One of ``WRITE_FORMATS``: png, tiff, ome-tiff, instances (zip of one 0/255 PNG
        per instance), cellpose, imagej, coco, geojson.
    classes : dict of int to str, optional
        Class per instance id (COCO categories, ImageJ ``class`` property, QuPath
        classification; ignored by png, tiff and cellpose).
    image_name : str, optional
        Image file name recorded by COCO and Cellpose.
    pixel_size : PixelSize, optional
        Physical pixel size, written into OME-TIFF (ignored by the other formats).

    Returns
    -------
    bytes
        File content; :data:`FORMAT_INFO` gives its media type and suffix.
    """
    validate_label_image(labels, name="labels")
    ids = np.unique(labels)
    cls = classes_for(ids[ids > 0].tolist(), classes)
    if format == "png":
        return write_label_png(labels)
    if format == "tiff":
        return write_label_tiff(labels)
    if format == "ome-tiff":
        return write_ome_tiff(labels, pixel_size=pixel_size)
    if format == "instances":
        return write_instance_masks(labels)
    if format == "cellpose":
        return write_cellpose_seg(labels, filename=image_name)
    if format == "imagej":
        return write_imagej_zip(labels, classes=cls)
    if format == "coco":
        return write_coco([CocoImage(file_name=image_name, labels=labels, classes=cls)])
    if format == "geojson":
        return write_qupath_geojson(labels, classes=cls)
    if format == "labelstudio":
        raise MaskFormatError("Label Studio is an import format; it cannot be written.")
    raise MaskFormatError(f"Unknown mask format {format!r}; expected one of {WRITE_FORMATS}.")
