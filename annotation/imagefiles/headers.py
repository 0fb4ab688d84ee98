"""Read image headers (PNG IHDR, JPEG SOF, TIFF IFDs) without decoding any pixel."""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import numpy as np

from .content import ImageFileError, ImageFormat, sniff_format

__all__ = [
    "DEFAULT_MAX_BYTES", "DEFAULT_MAX_PIXELS", "MAX_CHANNELS", "MAX_PAGES", "ImageInfo",
    "probe_image",
]

#: Default cap on width x height x planes, used when a caller gives none.
DEFAULT_MAX_PIXELS = 200_000_000
#: Default cap on the decoded size in bytes (every axis times bytes per sample).
DEFAULT_MAX_BYTES = 1024 * 1024 * 1024
#: Most channels (samples per pixel) accepted in one image.
MAX_CHANNELS = 64
#: Most TIFF pages (IFDs) accepted in one file.
MAX_PAGES = 10_000


@dataclass(frozen=True)
class ImageInfo:
    """What the header of an image file says, before decoding.

    Attributes
    ----------
    format : {'tiff', 'png', 'jpeg'}
        Recognised from the content.
    width, height : int
        Size of one plane in pixels.
    channels : int
        Samples per pixel (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA/CMYK, or any for TIFF).
    pages : int
        Number of planes (TIFF pages, z-slices, time points, ...); 1 for PNG/JPEG.
    dtype : str
        numpy dtype name of the decoded samples, e.g. ``'uint8'``, ``'uint16'``.
    shape : tuple of int
        Shape of the array :func:`read_image` returns (see the module docstring).
    palette : bool
        True for palette (indexed colour) PNGs.
    """

    format: ImageFormat
    width: int
    height: int
    channels: int
    pages: int
    dtype: str
    shape: tuple[int, ...]
    palette: bool = False

    @property
    def pixels(self) -> int:
        """Width x height x pages: the figure compared with ``max_pixels``."""
        return self.width * self.height * self.pages

    @property
    def nbytes(self) -> int:
        """Bytes of the decoded array (all axes x bytes per sample): compared with ``max_bytes``."""
        return self.pixels * self.channels * np.dtype(self.dtype).itemsize


def layout(height: int, width: int, channels: int, pages: int) -> tuple[int, ...]:
    shape: tuple[int, ...] = (height, width)
    if channels > 1:
        shape = (*shape, channels)
    if pages > 1:
        shape = (pages, *shape)
    return shape


def _check_size(info: ImageInfo, max_pixels: int, max_bytes: int) -> ImageInfo:
    if info.width <= 0 or info.height <= 0:
        raise ImageFileError(
            f"The {info.format.upper()} header gives an empty image "
            f"({info.width} x {info.height} pixels)."
        )
    if info.channels < 1 or info.channels > MAX_CHANNELS:
        raise ImageFileError(
            f"The {info.format.upper()} header gives {info.channels} channels; "
            f"at most {MAX_CHANNELS} are accepted."
        )
    if info.pixels > max_pixels:
        raise ImageFileError(
            f"The {info.format.upper()} header claims {info.width} x {info.height} pixels"
            + (f" x {info.pages} pages" if info.pages > 1 else "")
            + f" = {info.pixels:,} pixels, over the limit of {max_pixels:,}; "
            "the image was not decoded."
        )
    if info.nbytes > max_bytes:
        raise ImageFileError(
            f"The {info.format.upper()} header gives {info.width} x {info.height} pixels"
            + (f" x {info.pages} pages" if info.pages > 1 else "")
            + (f" x {info.channels} channels" if info.channels > 1 else "")
            + f" of {info.dtype}, which decodes to {info.nbytes:,} bytes, over the limit of "
            f"{max_bytes:,}; the image was not decoded."
        )
    return info


# --------------------------------------------------------------------------- PNG

_PNG_COLOUR_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}
_PNG_ALLOWED_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}


def _probe_png(data: bytes) -> ImageInfo:
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise ImageFileError(
            "Truncated or malformed PNG: no IHDR header chunk after the signature."
        )
    (length,) = struct.unpack(">I", data[8:12])
    if length != 13:
        raise ImageFileError(f"Malformed PNG: IHDR chunk has length {length}, expected 13.")
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    if colour not in _PNG_COLOUR_CHANNELS or depth not in _PNG_ALLOWED_DEPTHS[colour]:
        raise ImageFileError(f"Malformed PNG: bit depth {depth} with colour type {colour}.")
    channels = _PNG_COLOUR_CHANNELS[colour]
    palette = colour == 3
    if depth == 16 and channels > 1:
        raise ImageFileError(
            f"Unsupported PNG: 16-bit {'RGB' if channels >= 3 else 'grey+alpha'} "
            "(16-bit colour PNG cannot be decoded without losing precision; "
            "save it as a 16-bit TIFF, or as 16-bit greyscale PNG)."
        )
    if palette and b"tRNS" in data:
        channels = 4
    dtype = "uint16" if depth == 16 else "uint8"
    return ImageInfo(
        format="png",
        width=width,
        height=height,
        channels=channels,
        pages=1,
        dtype=dtype,
        shape=layout(height, width, channels, 1),
        palette=palette,
    )


# -------------------------------------------------------------------------- JPEG

_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _probe_jpeg(data: bytes) -> ImageInfo:
    pos = 2
    n = len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            raise ImageFileError(f"Malformed JPEG: expected a marker at byte {pos}.")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        (seglen,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if marker in _JPEG_SOF:
            if pos + 10 > n:
                break
            precision, height, width, comps = struct.unpack(">BHHB", data[pos + 4 : pos + 10])
            if precision != 8:
                raise ImageFileError(
                    f"Unsupported JPEG: {precision}-bit samples (only 8-bit JPEG is decoded)."
                )
            return ImageInfo(
                format="jpeg",
                width=width,
                height=height,
                channels=comps,
                pages=1,
                dtype="uint8",
                shape=layout(height, width, comps, 1),
            )
        if marker == 0xD9 or seglen < 2:
            break
        pos += 2 + seglen
    raise ImageFileError("Truncated or malformed JPEG: no frame header (SOF) found.")


# -------------------------------------------------------------------------- TIFF


def tiff_layout(series) -> tuple[int, int, int, int, tuple[int, ...], tuple[int, ...]]:
    """Return height, width, channels, pages, transpose order and the raw shape."""
    axes = series.axes
    shape = tuple(int(s) for s in series.shape)
    if "Y" not in axes or "X" not in axes:
        raise ImageFileError(f"Unsupported TIFF layout: axes {axes!r} have no Y and X axes.")
    y, x = axes.index("Y"), axes.index("X")
    channel_axis = axes.index("S") if "S" in axes else axes.index("C") if "C" in axes else None
    other = [i for i in range(len(axes)) if i not in (y, x, channel_axis)]
    pages = int(np.prod([shape[i] for i in other])) if other else 1
    channels = shape[channel_axis] if channel_axis is not None else 1
    order = (*other, y, x) + ((channel_axis,) if channel_axis is not None else ())
    return shape[y], shape[x], channels, pages, order, shape


def open_tiff(data: bytes):
    import tifffile

    try:
        return tifffile.TiffFile(io.BytesIO(data))
    except Exception as exc:  # tifffile raises many types on malformed headers
        raise ImageFileError(f"Truncated or malformed TIFF: {exc}") from exc


def _check_ifd_chain(tif, data: bytes) -> None:
    """Refuse a file whose last IFD points to a next IFD past the end (lost pages).

    tifffile stops at such a pointer with only a logged warning, which would silently
    turn a truncated stack into a shorter one.
    """
    last = tif.pages[len(tif.pages) - 1] if len(tif.pages) else None
    if last is None:
        return
    order = "<" if data[:2] == b"II" else ">"
    big = data[2:4] in (b"\x00+", b"+\x00")
    count_fmt, entry, ptr_fmt = ("Q", 20, "Q") if big else ("H", 12, "I")
    count_size = struct.calcsize(count_fmt)
    pos = last.offset
    if pos + count_size > len(data):
        raise ImageFileError("Truncated TIFF: the last image directory is cut off.")
    (n,) = struct.unpack(order + count_fmt, data[pos : pos + count_size])
    ptr_at = pos + count_size + n * entry
    ptr_size = struct.calcsize(ptr_fmt)
    if ptr_at + ptr_size > len(data):
        raise ImageFileError("Truncated TIFF: the last image directory is cut off.")
    (nxt,) = struct.unpack(order + ptr_fmt, data[ptr_at : ptr_at + ptr_size])
    if nxt and nxt in _page_offsets(tif):
        # tifffile stops at a circular reference with a logged warning; a file whose
        # directories loop is malformed (or hostile), never a shorter stack.
        raise ImageFileError(
            f"Malformed TIFF: the image directory chain loops (after page "
            f"{len(tif.pages) - 1} it points back to byte {nxt:,})."
        )
    if nxt >= len(data):
        raise ImageFileError(
            f"Truncated TIFF: after page {len(tif.pages) - 1} the next page is announced at "
            f"byte {nxt:,}, but the file has only {len(data):,} bytes."
        )
    meta = tif.imagej_metadata or {}
    images = meta.get("images")
    if isinstance(images, int) and images > 1 and len(tif.pages) > 1 and images > len(tif.pages):
        raise ImageFileError(
            f"Truncated TIFF: ImageJ metadata announces {images} images, "
            f"but only {len(tif.pages)} pages are present."
        )


def _page_offsets(tif) -> set[int]:
    return {page.offset for page in tif.pages if page is not None}


def _check_tiff_data(series, end: int, max_pixels: int) -> None:
    """Refuse pixel data that lies past the end of the file, or oversized tiles."""
    if series.dataoffset is not None:
        # Contiguous series (ImageJ hyperstacks): tifffile reads one block for all
        # planes, whose size follows from the shape, not from per-page byte counts.
        stop = series.dataoffset + int(np.prod(series.shape)) * np.dtype(series.dtype).itemsize
        if stop > end:
            raise ImageFileError(
                f"Truncated TIFF: pixel data ends at byte {stop:,} but the file has only "
                f"{end:,} bytes."
            )
    for page in series.pages:
        if page is None:
            continue
        # OME-TIFF and other multi-page files give TiffFrames after the first page: their
        # layout (tiles included) is their key frame's.
        key = getattr(page, "keyframe", None) or page
        if key.is_tiled and key.tilewidth * key.tilelength * max(key.tiledepth, 1) > max_pixels:
            raise ImageFileError(
                f"The TIFF's tiles are {key.tilewidth} x {key.tilelength} pixels, "
                f"over the limit of {max_pixels:,}."
            )
        offsets = getattr(page, "dataoffsets", ())
        counts = getattr(page, "databytecounts", ())
        for off, cnt in zip(offsets, counts, strict=False):
            if off + cnt > end:
                raise ImageFileError(
                    f"Truncated TIFF: pixel data of page {page.index} ends at byte "
                    f"{off + cnt:,} but the file has only {end:,} bytes."
                )


def _probe_tiff(data: bytes, max_pixels: int, max_bytes: int) -> ImageInfo:
    with open_tiff(data) as tif:
        try:
            npages = len(tif.pages)
            if npages > MAX_PAGES:
                raise ImageFileError(
                    f"The TIFF has {npages} pages; at most {MAX_PAGES} are accepted."
                )
            if not tif.series:
                raise ImageFileError("The TIFF contains no image data.")
            series = tif.series[0]
            height, width, channels, pages, _, _ = tiff_layout(series)
            dtype = np.dtype(series.dtype)
        except ImageFileError:
            raise
        except Exception as exc:
            raise ImageFileError(f"Truncated or malformed TIFF: {exc}") from exc
        info = _check_size(
            ImageInfo(
                format="tiff",
                width=width,
                height=height,
                channels=channels,
                pages=pages,
                dtype=dtype.name,
                shape=layout(height, width, channels, pages),
            ),
            max_pixels,
            max_bytes,
        )
        if dtype.kind not in "uifb":
            raise ImageFileError(f"Unsupported TIFF sample type {dtype.name}.")
        try:
            _check_ifd_chain(tif, data)
            _check_tiff_data(series, len(data), max_pixels)
        except ImageFileError:
            raise
        except Exception as exc:  # a page IFD past the end of a truncated file
            raise ImageFileError(f"Truncated or malformed TIFF: {exc}") from exc
        return info


# ------------------------------------------------------------------------ public


def probe_image(
    data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, max_bytes: int = DEFAULT_MAX_BYTES
) -> ImageInfo:
    """Recognise an image from its bytes and read its header, without decoding pixels.

    Parameters
    ----------
    data : bytes
        The whole file.
    max_pixels : int, optional
        Largest accepted width x height x pages.
    max_bytes : int, optional
        Largest accepted decoded size: width x height x pages x channels x bytes per
        sample (a small file of many float64 channels decodes to gigabytes).

    Returns
    -------
    ImageInfo
        Format, size, channels, pages, dtype and the shape :func:`read_image` returns.

    Raises
    ------
    ImageFileError
        Empty input; content that is not TIFF, PNG or JPEG (the message says what it
        looks like, e.g. an SVG document or an HTML page); a malformed or truncated
        header; TIFF pixel data that runs past the end of the file; or more pixels
        than ``max_pixels`` or ``max_bytes``; a TIFF whose chain of image directories
        loops back on itself.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if max_pixels < 1:
        raise ValueError(f"max_pixels must be >= 1, got {max_pixels}")
    if max_bytes < 1:
        raise ValueError(f"max_bytes must be >= 1, got {max_bytes}")
    fmt = sniff_format(data)
    if fmt == "png":
        return _check_size(_probe_png(data), max_pixels, max_bytes)
    if fmt == "jpeg":
        return _check_size(_probe_jpeg(data), max_pixels, max_bytes)
    return _probe_tiff(data, max_pixels, max_bytes)
