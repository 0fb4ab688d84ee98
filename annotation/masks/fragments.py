"""Overlap losers left in pieces: keep the largest piece, or drop the instance (pure).

The rule is stated in :mod:`annotation.masks.rasterize` ("Overlap losers left in
pieces"); :func:`trim_fragments` applies it to one instance of a painted canvas.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MIN_PIECE_SHARE", "crop", "trim_fragments"]

#: Share of its drawn pixels a fragmented overlap loser's largest piece must keep.
MIN_PIECE_SHARE = 0.1
_EIGHT = np.ones((3, 3), dtype=bool)


def crop(canvas: np.ndarray, raster: tuple[int, tuple[int, int], np.ndarray]) -> np.ndarray:
    _, (r0, c0), m = raster
    return canvas[r0 : r0 + m.shape[0], c0 : c0 + m.shape[1]]


def trim_fragments(
    canvas: np.ndarray,
    k: int,
    raster: tuple[int, tuple[int, int], np.ndarray],
    area: int,
    name: str,
    min_piece_share: float,
) -> str | None:
    """Keep the largest piece of overlap loser ``k`` (canvas value ``k + 1``), in place.

    Parameters
    ----------
    canvas : ndarray of int32, shape (H, W)
        Painted instances, value ``k + 1`` for the ``k``-th raster; changed in place.
    k : int
        The instance, which has lost pixels to overlapping ones.
    raster : (int, (int, int), ndarray of bool)
        Its file index, crop offset and drawn crop.
    area, name, min_piece_share
        Drawn pixel count, name for the report, threshold of the rule.

    Returns
    -------
    str or None
        The report line when the instance was left in pieces (and was trimmed or
        dropped); None when it is still one piece or was drawn in several parts.
    """
    from scipy import ndimage

    drawn = raster[2]
    view = crop(canvas, raster)
    kept = view == k + 1
    pieces, n = ndimage.label(kept, structure=_EIGHT)
    if n < 2 or ndimage.label(drawn, structure=_EIGHT)[1] > 1:
        return None
    sizes = np.bincount(pieces.ravel())[1:]
    largest = int(np.argmax(sizes)) + 1
    big, left = int(sizes[largest - 1]), int(sizes.sum())
    lost = area - left
    head = (
        f"{name} lost {lost} of its {area} pixels to overlapping instances and was left in "
        f"{n} pieces ({left} px)"
    )
    if big < min_piece_share * area:
        view[kept] = 0
        return (
            f"{head}; its largest piece ({big} px) is under {min_piece_share:.0%} of the "
            "pixels it was drawn with, so it was dropped."
        )
    view[kept & (pieces != largest)] = 0
    dropped = f"{n - 1} piece{'s' if n > 2 else ''}"
    return f"{head}; kept its largest piece ({big} px), dropped {dropped} ({left - big} px)."
