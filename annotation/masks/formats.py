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
from .labels import ImportResult, MaskFormatError, relabel_sequential, validate_label_image
from .labelstudio import labelstudio_from_document
from .polygons import classes_for
from .qupath import geojson_from_document, write_qupath_geojson
from .raster import label_image_warnings, read_label_image, write_label_png, write_label_tiff
from .safety import DEFAULT_LIMITS, Limits

__all__ = ["WRITE_FORMATS", "FormatInfo", "FORMAT_INFO", "read_mask", "write_mask"]


@dataclass(frozen=True)
class FormatInfo:
    """Media type and file-name suffix of a written format."""

    media_type: str
    suffix: str


#: Media type and file-name suffix of every format :func:`write_mask` produces.
FORMAT_INFO: dict[str, FormatInfo] = {
    "png": FormatInfo("image/png", ".png"),
    "tiff": FormatInfo("image/tiff", ".tif"),
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

    Returns
    -------
    ImportResult
        ``labels`` uint16/uint32 (H, W) with ids 1..N, classes, warnings, skipped.

    Raises
    ------
    MaskFormatError
        Unknown or contradicted format, any reader's refusal, or a shape mismatch.
    """
    detected, doc = detect_document(data, limits=limits)
    if format != "auto":
        if format not in MASK_FORMATS:
            raise MaskFormatError(
                f"Unknown mask format {format!r}; expected one of {MASK_FORMATS}."
            )
        if format != detected:
            raise MaskFormatError(f"The file content is {detected}, not {format}.")
    if detected in ("png", "tiff"):
        raw = read_label_image(data, max_pixels=limits.max_pixels)
        result = ImportResult(labels=relabel_sequential(raw), warnings=label_image_warnings(raw))
    elif detected == "cellpose":
        result = read_cellpose_seg(data, shape=shape, limits=limits)
        extra = label_image_warnings(result.labels)
        if extra:
            result = replace(result, warnings=result.warnings + extra)
    elif detected == "imagej":
        result = read_imagej_rois(data, shape=shape, limits=limits)
    elif detected == "geojson":
        result = geojson_from_document(doc, shape=shape, limits=limits)
    elif detected == "coco":
        result = _pick(coco_from_document(doc, limits=limits), image_name, "COCO")
    else:
        results = labelstudio_from_document(doc, shape=shape, limits=limits)
        result = _pick(results, image_name, "Label Studio")
    if shape is not None and result.labels.shape != tuple(shape):
        raise MaskFormatError(
            f"The {detected} mask is {result.labels.shape[0]} x {result.labels.shape[1]} "
            f"(H x W), but the image is {shape[0]} x {shape[1]}."
        )
    return result


def write_mask(
    labels: np.ndarray,
    *,
    format: str,
    classes: Mapping[int, str] | None = None,
    image_name: str = "image.tif",
) -> bytes:
    """Write a label image in one of ``WRITE_FORMATS``.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        Instance label image (ids need not be contiguous).
    format : str
        One of ``WRITE_FORMATS``: png, tiff, cellpose, imagej, coco, geojson.
    classes : dict of int to str, optional
        Class per instance id (COCO categories, ImageJ ``class`` property, QuPath
        classification; ignored by png, tiff and cellpose).
    image_name : str, optional
        Image file name recorded by COCO and Cellpose.

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
