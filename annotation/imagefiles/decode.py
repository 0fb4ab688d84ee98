"""Decode pixels once the header has been checked (Pillow for PNG/JPEG, tifffile for TIFF)."""

from __future__ import annotations

import io

import numpy as np

from .content import ImageFileError
from .headers import DEFAULT_MAX_BYTES, ImageInfo, layout, open_tiff, probe_image, tiff_layout

__all__ = ["read_image"]


def _decode_pillow(data: bytes, info: ImageInfo, keep_palette_indices: bool) -> np.ndarray:
    from PIL import Image

    formats = ["PNG"] if info.format == "png" else ["JPEG"]
    try:
        with Image.open(io.BytesIO(data), formats=formats) as im:
            if (im.width, im.height) != (info.width, info.height):
                raise ImageFileError(
                    f"The {info.format.upper()} header is inconsistent: "
                    f"{im.width} x {im.height} vs {info.width} x {info.height}."
                )
            im.load()
            if im.mode == "P" and not keep_palette_indices:
                im = im.convert("RGBA" if "transparency" in im.info else "RGB")
            elif im.mode == "1":
                return np.asarray(im, dtype=np.uint8)
            arr = np.asarray(im)
    except ImageFileError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageFileError(f"Refused as a decompression bomb: {exc}") from exc
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, ...
        raise ImageFileError(
            f"Could not decode the {info.format.upper()} image (truncated or corrupt?): {exc}"
        ) from exc
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if arr.dtype != np.dtype(info.dtype) and arr.dtype.kind in "iu":
        # Older Pillow versions open 16-bit grey PNGs in 32-bit mode "I".
        arr = arr.astype(info.dtype)
    return np.ascontiguousarray(arr)


def _decode_tiff(data: bytes) -> np.ndarray:
    with open_tiff(data) as tif:
        series = tif.series[0]
        try:
            raw = series.asarray()
        except Exception as exc:
            raise ImageFileError(f"Could not decode the TIFF image (corrupt data?): {exc}") from exc
        height, width, channels, pages, order, shape = tiff_layout(series)
    raw = raw.reshape(shape).transpose(order)
    out = raw.reshape(layout(height, width, channels, pages))
    if out.dtype.byteorder == ">":
        out = out.astype(out.dtype.newbyteorder("="))
    return np.ascontiguousarray(out)


def read_image(
    data: bytes,
    *,
    max_pixels: int,
    max_bytes: int = DEFAULT_MAX_BYTES,
    plane_shape: tuple[int, int] | None = None,
    keep_palette_indices: bool = False,
) -> tuple[np.ndarray, ImageInfo]:
    """Decode a TIFF, PNG or JPEG image, keeping its real dtype.

    The header is checked by :func:`probe_image` first, so nothing is decoded for
    files that are empty, unsupported, truncated, over ``max_pixels`` or ``max_bytes``,
    or (with ``plane_shape``) of another size than expected.

    Parameters
    ----------
    data : bytes
        The whole file.
    max_pixels : int
        Largest accepted width x height x pages.
    max_bytes : int, optional
        Largest accepted decoded size in bytes (all axes x bytes per sample).
    plane_shape : (int, int), optional
        Required ``(height, width)``; another size in the header is refused before
        decoding (a mask for a known image).
    keep_palette_indices : bool, optional
        For palette PNGs, return the palette indices (shape (H, W), uint8) instead of
        expanding to RGB/RGBA. Label images stored as palette PNGs need this.

    Returns
    -------
    pixels : ndarray, shape (H, W), (H, W, C), (P, H, W) or (P, H, W, C)
        The decoded samples in their stored dtype (native byte order).
    info : ImageInfo
        The header facts; ``info.shape == pixels.shape`` except for palette PNGs read
        with ``keep_palette_indices``.

    Raises
    ------
    ImageFileError
        Everything :func:`probe_image` refuses, plus decoder errors (corrupt data).
    """
    info = probe_image(data, max_pixels=max_pixels, max_bytes=max_bytes)
    if plane_shape is not None and (info.height, info.width) != tuple(plane_shape):
        raise ImageFileError(
            f"The {info.format.upper()} is {info.height} x {info.width} (H x W), but the "
            f"image is {plane_shape[0]} x {plane_shape[1]}; it was not decoded."
        )
    data = bytes(data)
    if info.format == "tiff":
        arr = _decode_tiff(data)
    else:
        arr = _decode_pillow(data, info, keep_palette_indices)
    expected = (info.height, info.width) if (info.palette and keep_palette_indices) else info.shape
    if arr.shape != expected:
        raise ImageFileError(
            f"The decoded {info.format.upper()} has shape {arr.shape}, "
            f"but its header promised {expected}."
        )
    return arr, info
