"""Raw pixel arrays for the browser: images in their real dtype, label images as stored.

The workspace draws 8/16-bit, multi-channel images itself (window/level is a view
concern), so it needs the samples, not a pre-scaled PNG. Arrays are sent planar
(channel, row, column), little-endian, in a dtype a JavaScript typed array can view.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.core.files.storage import default_storage

from annotation.imagefiles import ImageFileError, read_image
from annotation.masks import MaskFormatError, read_label_image
from annotation.models import Annotation, AnnotationDraft, Image
from config.errors import InvalidInput

#: dtypes the browser can view directly (a typed array of the same name exists).
BROWSER_DTYPES = frozenset(
    {"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64"}
)


@dataclass(frozen=True)
class RawArray:
    """A C-contiguous little-endian array and how to view it.

    Attributes
    ----------
    data : bytes
        ``channels * height * width`` samples of ``dtype``, planar (C, H, W), little-endian.
    dtype : str
        numpy dtype name, one of :data:`BROWSER_DTYPES`.
    channels, height, width : int
    pages : int
        Planes in the file; only the first is sent.
    """

    data: bytes
    dtype: str
    channels: int
    height: int
    width: int
    pages: int = 1


def _to_browser(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8)
    if arr.dtype.kind in "iu" and arr.dtype.itemsize == 8:
        return arr.astype(np.float64)
    if arr.dtype == np.float16:
        return arr.astype(np.float32)
    return arr.astype(arr.dtype.newbyteorder("<"), copy=False)


def _read_storage(name: str) -> bytes:
    with default_storage.open(name, "rb") as fh:
        return fh.read()


def image_pixels(*, image: Image) -> RawArray:
    """The first plane of an image, every channel, in its real dtype.

    Precondition: the caller checked the user may see the image (a selector did).
    """
    try:
        arr, info = read_image(
            _read_storage(image.file.name), max_pixels=settings.CELLCURATE_MAX_IMAGE_PIXELS
        )
    except ImageFileError as exc:
        raise InvalidInput(f"image {image.pk}: {exc}", field="image") from exc
    if info.pages > 1:
        arr = arr[0]
    if arr.ndim == 2:
        arr = arr[:, :, None]
    planar = np.ascontiguousarray(np.moveaxis(_to_browser(arr), -1, 0))
    return RawArray(
        data=planar.tobytes(), dtype=planar.dtype.name, channels=planar.shape[0],
        height=planar.shape[1], width=planar.shape[2], pages=info.pages,
    )


def _labels_raw(name: str) -> RawArray:
    try:
        labels = read_label_image(
            _read_storage(name), max_pixels=settings.CELLCURATE_MAX_IMAGE_PIXELS
        )
    except MaskFormatError as exc:
        raise InvalidInput(f"stored mask {name}: {exc}", field="mask") from exc
    dtype = np.dtype("<u2") if labels.max(initial=0) <= 0xFFFF else np.dtype("<u4")
    out = np.ascontiguousarray(labels.astype(dtype, copy=False))
    return RawArray(
        data=out.tobytes(), dtype=out.dtype.name, channels=1,
        height=out.shape[0], width=out.shape[1],
    )


def annotation_labels_raw(*, annotation: Annotation) -> RawArray:
    """A submitted revision's label image (uint16, or uint32 above 65,535)."""
    return _labels_raw(annotation.mask.name)


def draft_labels_raw(*, draft: AnnotationDraft) -> RawArray:
    """A draft's label image (uint16, or uint32 above 65,535)."""
    return _labels_raw(draft.labels.name)
