"""Label images in storage for the QA workflow: encode, hash, read back, and validate uploads."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage

from annotation.masks import (
    MaskFormatError,
    instance_ids,
    read_label_image,
    to_canonical_dtype,
    validate_label_image,
    write_label_png,
    write_label_tiff,
)
from annotation.models import Image
from annotation.services.images import read_upload_capped
from config.errors import InvalidInput


@dataclass(frozen=True)
class EncodedMask:
    """A label image as the bytes stored (16-bit PNG, or TIFF above 65,535 ids)."""

    content: bytes
    ext: str
    sha256: str
    n_cells: int
    shape: tuple[int, int]


def mask_encode(labels: np.ndarray) -> EncodedMask:
    """The canonical stored file of a label image (ndarray of int, shape (H, W))."""
    canonical = to_canonical_dtype(labels)
    if canonical.dtype == np.uint16:
        content, ext = write_label_png(canonical), "png"
    else:
        content, ext = write_label_tiff(canonical), "tif"
    return EncodedMask(
        content=content, ext=ext, sha256=hashlib.sha256(content).hexdigest(),
        n_cells=int(instance_ids(canonical).size), shape=(int(labels.shape[0]), int(labels.shape[1])),
    )


def mask_read(name: str) -> np.ndarray:
    """A stored label image (uint16 or uint32, shape (H, W))."""
    with default_storage.open(name, "rb") as fh:
        data = fh.read()
    return read_label_image(data, max_pixels=settings.CELLCURATE_MAX_IMAGE_PIXELS)


def mask_upload_read(upload: bytes | File, *, image: Image, field: str = "mask") -> np.ndarray:
    """A label image uploaded for ``image`` (PNG or TIFF), checked; 400 naming ``field`` otherwise."""
    if not isinstance(upload, bytes | bytearray):
        upload = read_upload_capped(upload, name=getattr(upload, "name", None) or field, field=field)
    try:
        labels = read_label_image(
            bytes(upload), max_pixels=settings.CELLCURATE_MAX_IMAGE_PIXELS,
            max_bytes=settings.CELLCURATE_MAX_DECODED_BYTES,
            shape=(image.height, image.width),  # checked before decoding
        )
        validate_label_image(labels, name=field)
    except MaskFormatError as exc:
        raise InvalidInput(f"{field}: {exc}", field=field) from exc
    if labels.shape != (image.height, image.width):
        raise InvalidInput(
            f"{field} is {labels.shape[0]} x {labels.shape[1]} (height x width) but the image is "
            f"{image.height} x {image.width}",
            field=field,
        )
    return labels
