"""Label images stored as raster files: 8/16-bit grey PNG and TIFF (pure, no Django)."""

from __future__ import annotations

import io

import numpy as np

from annotation.imagefiles import DEFAULT_MAX_BYTES, ImageFileError, probe_image, read_image

from .labels import MaskFormatError, to_canonical_dtype, validate_label_image

__all__ = ["label_image_warnings", "read_label_image", "write_label_png", "write_label_tiff"]


def read_label_image(
    data: bytes,
    *,
    max_pixels: int,
    max_bytes: int = DEFAULT_MAX_BYTES,
    shape: tuple[int, int] | None = None,
) -> np.ndarray:
    """Decode a PNG or TIFF label image, checking its header before decoding.

    Parameters
    ----------
    data : bytes
        A grey PNG (1/8/16-bit, or palette: the palette indices are the ids) or a
        single-plane, single-channel integer TIFF (any integer dtype, any compression
        tifffile reads).
    max_pixels : int
        Largest accepted width x height.
    max_bytes : int, optional
        Largest accepted decoded size in bytes.
    shape : (int, int), optional
        ``(H, W)`` of the image the mask belongs to: a header of another size is
        refused before anything is decoded.

    Returns
    -------
    ndarray of uint16 or uint32, shape (H, W)
        The ids as stored (not renumbered), 0 background.

    Raises
    ------
    MaskFormatError
        For JPEG (lossy, so never a label image), colour or multi-page files, float
        or negative values, and everything :func:`annotation.imagefiles.probe_image`
        refuses (empty, unsupported content, truncated, too many pixels).
    """
    try:
        # Header first: what a label image cannot be is refused before decoding.
        info = probe_image(data, max_pixels=max_pixels, max_bytes=max_bytes)
        _check_label_header(info)
        arr, info = read_image(
            data, max_pixels=max_pixels, max_bytes=max_bytes, plane_shape=shape,
            keep_palette_indices=True,
        )
    except ImageFileError as exc:
        raise MaskFormatError(str(exc)) from exc
    if arr.ndim != 2:
        raise MaskFormatError(
            f"The label {info.format.upper()} has {info.channels} channels (shape {arr.shape}); "
            "a label image has one grey channel holding instance ids, not colours."
        )
    validate_label_image(arr, name=f"label {info.format.upper()}")
    return to_canonical_dtype(arr)


def _check_label_header(info) -> None:
    if info.format == "jpeg":
        raise MaskFormatError(
            "A JPEG cannot be a label image: lossy compression changes the instance ids. "
            "Use PNG or TIFF."
        )
    if info.pages > 1:
        raise MaskFormatError(
            f"The label {info.format.upper()} has {info.pages} planes; a label image is one "
            f"2-D plane (H, W)."
        )
    if info.channels > 1 and not info.palette:
        raise MaskFormatError(
            f"The label {info.format.upper()} has {info.channels} channels (shape {info.shape}); "
            "a label image has one grey channel holding instance ids, not colours."
        )


def label_image_warnings(labels: np.ndarray) -> tuple[str, ...]:
    """Flag label images that are probably not what they claim to be.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)

    Returns
    -------
    tuple of str
        A warning when one id covers more than half of the image and touches all four
        borders (inverted polarity: background stored as, e.g., 255 and cells as 0),
        and when the image holds a single id (a binary mask, whose touching cells
        cannot be told apart).
    """
    validate_label_image(labels, name="labels")
    out = []
    max_id = int(labels.max())
    if max_id <= max(1 << 20, labels.size):
        counts = np.bincount(labels.ravel(), minlength=max_id + 1)
        ids = np.flatnonzero(counts)
        counts = counts[ids]
    else:
        ids, counts = np.unique(labels, return_counts=True)
    nonzero = ids != 0
    if nonzero.any():
        big = int(ids[nonzero][np.argmax(counts[nonzero])])
        share = counts[ids == big][0] / labels.size
        edges = (labels[0], labels[-1], labels[:, 0], labels[:, -1])
        if share > 0.5 and all((edge == big).any() for edge in edges):
            out.append(
                f"id {big} covers {share:.0%} of the image and touches all four borders: is the "
                "polarity inverted (background not 0)?"
            )
        elif int(nonzero.sum()) == 1:
            out.append(
                f"the label image holds a single id ({big}): a binary mask? Touching cells in "
                "it are one instance."
            )
    return tuple(out)


def write_label_png(labels: np.ndarray) -> bytes:
    """Encode a label image as a 16-bit greyscale PNG.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        Ids up to 65,535.

    Returns
    -------
    bytes
        PNG file content (always 16-bit grey, so any id up to 65,535 survives).

    Raises
    ------
    MaskFormatError
        If the image is not a valid label image or holds ids above 65,535 (a PNG
        cannot store them; use :func:`write_label_tiff`).
    """
    from PIL import Image

    validate_label_image(labels, name="labels")
    if int(labels.max()) > 65_535:
        raise MaskFormatError(
            f"labels hold id {int(labels.max())}; a 16-bit PNG holds ids up to 65,535. "
            "Write a TIFF instead."
        )
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(labels, dtype=np.uint16)).save(
        buf, format="PNG", compress_level=6
    )
    return buf.getvalue()


def write_label_tiff(labels: np.ndarray) -> bytes:
    """Encode a label image as a zlib-compressed TIFF in the canonical dtype.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)

    Returns
    -------
    bytes
        TIFF file content: one page, uint16 (uint32 above 65,535), deflate-compressed.
    """
    import tifffile

    canonical = np.ascontiguousarray(to_canonical_dtype(labels))
    buf = io.BytesIO()
    tifffile.imwrite(buf, canonical, photometric="minisblack", compression="zlib")
    return buf.getvalue()
