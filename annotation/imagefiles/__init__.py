"""Recognise and decode microscopy image files from their bytes (pure, no Django).

Formats are recognised by their content (magic bytes), never by a file name. Every
check that can be made from the header -- empty input, unknown content, truncated
TIFF strips, a looping TIFF directory chain, a pixel count or a decoded size in bytes
(all axes x bytes per sample) over the caller's caps -- is made by :func:`probe_image`
*before* any pixel is decoded, so a hostile upload costs a few hundred bytes of
parsing, not gigabytes of memory.

Array layout returned by :func:`read_image` (the real dtype is kept: ``uint8``,
``uint16``, ``int16``, ``float32``, ...):

=======================  ====================
file                     array shape
=======================  ====================
one grey plane           ``(H, W)``
one plane, C channels    ``(H, W, C)``
P planes, grey           ``(P, H, W)``
P planes, C channels     ``(P, H, W, C)``
=======================  ====================

For TIFF, channels are the samples-per-pixel (``S``) axis or, failing that, the ``C``
axis of the first tifffile series; every other non-spatial axis (Z, T, pages, ...) is
flattened into P, in file order. Palette PNGs are expanded to RGB/RGBA unless
``keep_palette_indices`` is set; 1-bit PNGs decode to ``uint8`` 0/1.
"""

from __future__ import annotations

from .content import ImageFileError, describe_content
from .decode import read_image
from .headers import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    MAX_CHANNELS,
    MAX_PAGES,
    ImageInfo,
    probe_image,
)

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_PIXELS",
    "MAX_CHANNELS",
    "MAX_PAGES",
    "ImageFileError",
    "ImageInfo",
    "describe_content",
    "probe_image",
    "read_image",
]
