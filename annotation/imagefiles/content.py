"""Recognise file content by its magic bytes and describe what unknown content looks like."""

from __future__ import annotations

from typing import Literal

__all__ = ["ImageFileError", "ImageFormat", "describe_content", "sniff_format"]

ImageFormat = Literal["tiff", "png", "jpeg"]

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
JPEG_MAGIC = b"\xff\xd8\xff"


class ImageFileError(ValueError):
    """An image file is empty, unsupported, malformed, truncated or too large."""


def describe_content(data: bytes) -> str:
    """Say in a few words what some bytes look like, for error messages.

    Parameters
    ----------
    data : bytes
        The start of a file (the first 512 bytes are enough).

    Returns
    -------
    str
        e.g. ``'an SVG document'``, ``'an HTML page'``, ``'a ZIP archive'``.
    """
    head = bytes(data[:512])
    if not head:
        return "empty (0 bytes)"
    if head.startswith(PNG_MAGIC):
        return "a PNG image"
    if head[:4] in TIFF_MAGICS:
        return "a TIFF image"
    if head.startswith(JPEG_MAGIC):
        return "a JPEG image"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "a GIF image"
    if head.startswith(b"BM"):
        return "a BMP image"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "a WebP image"
    if head.startswith(b"%PDF"):
        return "a PDF document"
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "a ZIP archive"
    if head.startswith(b"\x1f\x8b"):
        return "a gzip archive"
    if head.startswith(b"\x93NUMPY"):
        return "a NumPy .npy file"
    if head[:4] == b"\x00\x00\x00\x0c" and head[4:8] == b"jP  ":
        return "a JPEG 2000 image"
    if head[4:8] == b"ftyp":
        return "an ISO media file (HEIC/AVIF/MP4)"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in head.lower()):
        return "an SVG document"
    if text.startswith(b"<!doctype html") or text.startswith(b"<html") or b"<html" in text:
        return "an HTML page"
    if text.startswith(b"<?xml") or text.startswith(b"<"):
        return "an XML document"
    if text.startswith(b"{") or text.startswith(b"["):
        return "JSON text"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return f"binary data starting with {head[:8].hex(' ')}"
    return "plain text"


def sniff_format(data: bytes) -> ImageFormat:
    if not data:
        raise ImageFileError("The file is empty (0 bytes); expected a TIFF, PNG or JPEG image.")
    if data.startswith(PNG_MAGIC):
        return "png"
    if data[:4] in TIFF_MAGICS:
        return "tiff"
    if data.startswith(JPEG_MAGIC):
        return "jpeg"
    raise ImageFileError(
        f"Unsupported image content: the file looks like {describe_content(data)}, "
        "not a TIFF, PNG or JPEG image (the format is recognised by content, not by name)."
    )
