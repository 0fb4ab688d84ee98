"""COCO run-length encoding (RLE), decoded without trusting the counts (pure, no Django).

COCO RLE stores a binary mask of an ``h x w`` image as run lengths in column-major
order, starting with background: ``{"size": [h, w], "counts": list | str}``; the string
form is pycocotools' compressed encoding. Runs are validated here (non-negative, each
at most ``h * w``, adding up to exactly ``h * w``) before any pixel is produced:
pycocotools' C decoder trusts the counts and would write past its buffer otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .labels import MaskFormatError
from .rasterize import Shape

__all__ = ["decode_rle", "encode_rle", "rle_from_indices", "rle_shape", "column_major_pixels"]


def _counts_from_string(text: str, *, where: str) -> np.ndarray:
    """Decode pycocotools' compressed RLE string, vectorised.

    Each run length is written in 5-bit groups, least significant first, one character
    per group (``chr(48 + bits)``); bit 0x20 of a character says another group follows
    and bit 0x10 of the last group is the sign. From the third count on, counts are
    stored as differences to the count two places back (``rleToString`` in
    pycocotools' ``maskApi.c``).
    """
    try:
        raw = np.frombuffer(text.encode("ascii"), dtype=np.uint8).astype(np.int64) - 48
    except UnicodeEncodeError:
        raise MaskFormatError(f"{where}: RLE string has a non-ASCII character.") from None
    if raw.size == 0:
        return np.zeros(0, dtype=np.int64)
    if raw.min() < 0 or raw.max() > 63:
        raise MaskFormatError(f"{where}: RLE string has an invalid character.")
    more = (raw & 0x20) != 0
    if more[-1]:
        raise MaskFormatError(f"{where}: RLE string ends inside a number.")
    ends = np.flatnonzero(~more)
    starts = np.concatenate([[0], ends[:-1] + 1])
    group = np.repeat(np.arange(len(starts)), ends - starts + 1)
    k = np.arange(raw.size) - starts[group]
    if int(k.max()) > 7:  # counts are uint32 in pycocotools: 7 groups of 5 bits suffice
        raise MaskFormatError(f"{where}: RLE run length is too long.")
    values = np.add.reduceat((raw & 0x1F) << (5 * k), starts)
    negative = (raw[ends] & 0x10) != 0
    values[negative] -= np.left_shift(1, 5 * (k[ends][negative] + 1))
    counts = values.copy()
    counts[1::2] = np.cumsum(values[1::2])
    counts[2::2] = np.cumsum(values[2::2])
    return counts


def decode_rle(rle: Mapping[str, Any], *, where: str = "RLE", max_pixels: int) -> np.ndarray:
    """Decode a COCO RLE into a boolean mask, validating it first.

    Parameters
    ----------
    rle : dict
        ``{"size": [h, w], "counts": str | list of int}``; column-major runs starting
        with background.
    where : str, optional
        Name for messages.
    max_pixels : int
        Largest accepted ``h * w``.

    Returns
    -------
    ndarray of bool, shape (h, w)
    """
    (h, w), arr = _rle_runs(rle, where=where, max_pixels=max_pixels)
    values = (np.arange(arr.size) % 2).astype(bool)
    flat = np.repeat(values, arr)
    return flat.reshape(w, h).T.copy()


def rle_shape(
    rle: Mapping[str, Any], *, where: str, max_pixels: int, class_name: str | None
) -> Shape:
    """An RLE instance as a cropped raster shape, without a full-image mask."""
    (h, w), arr = _rle_runs(rle, where=where, max_pixels=max_pixels)
    ends = np.cumsum(arr)
    starts = ends - arr
    on = (np.arange(arr.size) % 2 == 1) & (arr > 0)
    run_start, run_len = starts[on], arr[on]
    if run_len.size == 0:
        return Shape(name=where, mask=np.zeros((0, 0), bool), mask_image_shape=(h, w))
    # Column-major pixel indices of all foreground runs, then rows and columns.
    offsets = np.repeat(run_start - np.concatenate([[0], np.cumsum(run_len)[:-1]]), run_len)
    idx = np.arange(int(run_len.sum())) + offsets
    rows, cols = idx % h, idx // h
    r0, c0 = int(rows.min()), int(cols.min())
    crop = np.zeros((int(rows.max()) - r0 + 1, int(cols.max()) - c0 + 1), dtype=bool)
    crop[rows - r0, cols - c0] = True
    return Shape(
        name=where, mask=crop, mask_offset=(r0, c0), mask_image_shape=(h, w), class_name=class_name
    )


def _rle_runs(
    rle: Mapping[str, Any], *, where: str, max_pixels: int
) -> tuple[tuple[int, int], np.ndarray]:
    """Validated ``(h, w)`` and run lengths of a COCO RLE."""
    if not isinstance(rle, Mapping):
        raise MaskFormatError(f"{where}: RLE must be an object.")
    size = rle.get("size")
    counts = rle.get("counts")
    if (
        not isinstance(size, list | tuple)
        or len(size) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)
    ):
        raise MaskFormatError(f"{where}: RLE 'size' must be [height, width], got {size!r}.")
    h, w = int(size[0]), int(size[1])
    if h * w > max_pixels:
        raise MaskFormatError(f"{where}: RLE size {h} x {w} is over {max_pixels:,} pixels.")
    if isinstance(counts, bytes):
        counts = counts.decode("ascii", errors="replace")
    if isinstance(counts, str):
        if len(counts) > 8 * h * w + 16:
            raise MaskFormatError(f"{where}: RLE string is longer than its image.")
        runs = _counts_from_string(counts, where=where)
    elif isinstance(counts, list):
        if len(counts) > h * w + 1 or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in counts
        ):
            raise MaskFormatError(f"{where}: RLE 'counts' must be a list of integers.")
        runs = counts
    else:
        raise MaskFormatError(f"{where}: RLE 'counts' must be a string or a list.")
    try:
        arr = np.asarray(runs, dtype=np.int64)
    except OverflowError:
        raise MaskFormatError(f"{where}: RLE has a run longer than its image.") from None
    if arr.size and int(arr.min()) < 0:
        raise MaskFormatError(f"{where}: RLE has a negative run length.")
    if arr.size and int(arr.max()) > h * w:
        raise MaskFormatError(f"{where}: RLE has a run longer than its image ({h} x {w}).")
    if int(arr.sum()) != h * w:
        raise MaskFormatError(
            f"{where}: RLE runs add up to {int(arr.sum()):,} pixels, but its size "
            f"{h} x {w} has {h * w:,}."
        )
    return (h, w), arr


def encode_rle(mask: np.ndarray) -> dict[str, Any]:
    """Encode a boolean mask as compressed COCO RLE with pycocotools.

    Parameters
    ----------
    mask : ndarray of bool, shape (H, W)

    Returns
    -------
    dict
        ``{"size": [H, W], "counts": str}``, JSON-serialisable.
    """
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def column_major_pixels(labels: np.ndarray) -> dict[int, np.ndarray]:
    """Sorted column-major pixel indices of every instance (one sort for all)."""
    flat = labels.ravel(order="F")
    order = np.argsort(flat, kind="stable")
    values = flat[order]
    cuts = np.flatnonzero(np.diff(values)) + 1
    starts = np.concatenate([[0], cuts])
    return {
        int(values[a]): order[a:b]
        for a, b in zip(starts, np.concatenate([cuts, [flat.size]]), strict=True)
        if values[a] != 0
    }


def rle_from_indices(idx: np.ndarray, h: int, w: int) -> dict[str, Any]:
    """Compressed COCO RLE of the pixels at sorted column-major indices ``idx``."""
    from pycocotools import mask as mask_utils

    breaks = np.flatnonzero(np.diff(idx) != 1)
    run_start = idx[np.concatenate([[0], breaks + 1])]
    run_end = idx[np.concatenate([breaks, [idx.size - 1]])] + 1
    gaps = run_start - np.concatenate([[0], run_end[:-1]])
    counts = np.empty(2 * run_start.size + 1, dtype=np.int64)
    counts[0:-1:2] = gaps
    counts[1::2] = run_end - run_start
    counts[-1] = h * w - run_end[-1]
    if counts[-1] == 0:  # pycocotools writes no empty final run
        counts = counts[:-1]
    # frPyObjects only re-encodes the given runs as a string; it decodes nothing.
    rle = mask_utils.frPyObjects({"size": [h, w], "counts": counts.tolist()}, h, w)
    return {"size": [h, w], "counts": rle["counts"].decode("ascii")}
