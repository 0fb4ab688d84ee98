"""Mask formats: the canonical label image and converters to and from every format.

Pure module (no Django): functions take bytes or numpy arrays and return bytes, arrays
or frozen dataclasses. The canonical form is a 2-D integer label image (0 background,
1..N instances; ``uint16``, or ``uint32`` above 65,535), see :mod:`.labels`.
"""

from .labels import (
    MAX_LABEL,
    ImportResult,
    MaskFormatError,
    instance_ids,
    relabel_sequential,
    to_canonical_dtype,
    validate_label_image,
)
from .raster import read_label_image, write_label_png, write_label_tiff

__all__ = [
    "MAX_LABEL",
    "ImportResult",
    "MaskFormatError",
    "instance_ids",
    "read_label_image",
    "relabel_sequential",
    "to_canonical_dtype",
    "validate_label_image",
    "write_label_png",
    "write_label_tiff",
]
