"""Tell a raw intensity image sent as a mask from a real label image (pure, no Django).

A microscopy image saved as an integer TIFF or PNG decodes to an array that a label
reader would happily take as "instances": StarDist's ``img2d.tif`` gives 233 of them,
a 16-bit phase-contrast image tens of thousands. :func:`check_not_intensity` refuses
such arrays, naming what it measured.

Notes
-----
In a label image every id is (nearly always) one connected region of a few dozen to
thousands of pixels, and most of the image is background (0). In an intensity image a
grey value is scattered over the whole image in many small pieces, and 0 is rare. With
``n`` the number of distinct non-zero values, ``pieces`` the number of 8-connected
regions of equal value (``skimage.measure.label`` with ``background=0``) and, per id,
its piece count and pixel count, an array is taken as an intensity image when

* ``n >= MIN_IDS`` (with fewer ids nothing is refused: a handful of semantic classes
  or cells is never mistaken), and
* ``pieces >= MIN_PIECES_PER_ID * n`` (ids are fragmented overall), and
* at least ``MIN_BAD_SHARE`` of the ids are in several pieces, or that share of ids
  cover fewer than ``TINY_PIXELS`` pixels each.

Cost: two cheap gates come first. With fewer than ``MIN_IDS`` ids, or when fewer than
``LABEL_EDGE_SHARE`` of the horizontally adjacent foreground pixel pairs differ (cells
meet only along their borders; grey values change at almost every pixel), the array is a
label image and nothing is labelled. Otherwise the statistics are measured on the array,
or on its central ``STATS_CROP`` x ``STATS_CROP`` window when it is larger, which bounds
memory for very large masks.

Measured (this repository's test data): StarDist ``img2d.tif`` 233 values, 98 %
fragmented, 903 pieces per id; Omnipose ``caulo_15.tif`` 19,086 values, 64 %
fragmented, 68 % tiny, 4.6 pieces per id; the real label images (StarDist
``mask2d.tif``, Omnipose ``_cp_masks.tif``) 0 % fragmented, 1.0 piece per id.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .labels import MaskFormatError, validate_label_image

__all__ = [
    "MIN_BAD_SHARE",
    "MIN_IDS",
    "MIN_PIECES_PER_ID",
    "TINY_PIXELS",
    "LabelStats",
    "check_not_intensity",
    "label_image_stats",
]

#: Fewest distinct ids for the intensity test to apply.
MIN_IDS = 16
#: Fewest equal-value regions per id, on average, for an intensity image.
MIN_PIECES_PER_ID = 2.0
#: Share of ids fragmented (or tiny) above which the array is an intensity image.
MIN_BAD_SHARE = 0.5
#: An id with fewer pixels than this is "tiny".
TINY_PIXELS = 5
#: Below this share of differing adjacent foreground pairs an array is a label image.
LABEL_EDGE_SHARE = 0.02
#: Side of the central window the statistics are measured on, for larger arrays.
STATS_CROP = 1024


@dataclass(frozen=True)
class LabelStats:
    """What a candidate label image looks like.

    Attributes
    ----------
    n_ids : int
        Distinct non-zero values.
    min_id, max_id : int
        Smallest and largest non-zero value (0 when there is none).
    range_share : float
        ``n_ids / (max_id - min_id + 1)``: 1.0 when the values fill their range.
    background_share : float
        Share of pixels that are 0.
    pieces : int
        8-connected regions of equal non-zero value.
    fragmented_share : float
        Share of ids that are in two or more pieces.
    median_pieces : float
        Median piece count per id.
    tiny_share : float
        Share of ids with fewer than ``TINY_PIXELS`` pixels.
    """

    n_ids: int
    min_id: int
    max_id: int
    range_share: float
    background_share: float
    pieces: int
    fragmented_share: float
    median_pieces: float
    tiny_share: float

    @property
    def looks_like_intensity(self) -> bool:
        """The verdict of the rule in the module Notes."""
        return (
            self.n_ids >= MIN_IDS
            and self.pieces >= MIN_PIECES_PER_ID * self.n_ids
            and (self.fragmented_share >= MIN_BAD_SHARE or self.tiny_share >= MIN_BAD_SHARE)
        )


def label_image_stats(arr: np.ndarray) -> LabelStats:
    """Measure the statistics the intensity test uses.

    Parameters
    ----------
    arr : ndarray of int, shape (H, W)
        Candidate label image, ids as stored (not renumbered).

    Returns
    -------
    LabelStats
    """
    from skimage.measure import label

    validate_label_image(arr, name="mask")
    ids, areas = np.unique(arr, return_counts=True)
    background = int(areas[0]) if ids[0] == 0 else 0
    keep = ids != 0
    ids, areas = ids[keep], areas[keep]
    if len(ids) == 0:
        return LabelStats(0, 0, 0, 0.0, 1.0, 0, 0.0, 0.0, 0.0)
    regions = label(arr, background=0, connectivity=2)
    n_regions = int(regions.max())
    # The id of each region: every pixel of a region has the same id.
    region_id = np.zeros(n_regions + 1, dtype=arr.dtype)
    fg = regions.ravel() != 0
    region_id[regions.ravel()[fg]] = arr.ravel()[fg]
    per_id = np.bincount(np.searchsorted(ids, region_id[1:]), minlength=len(ids))
    lo, hi = int(ids[0]), int(ids[-1])
    return LabelStats(
        n_ids=len(ids),
        min_id=lo,
        max_id=hi,
        range_share=len(ids) / (hi - lo + 1),
        background_share=background / arr.size,
        pieces=n_regions,
        fragmented_share=float(np.mean(per_id > 1)),
        median_pieces=float(np.median(per_id)),
        tiny_share=float(np.mean(areas < TINY_PIXELS)),
    )


def _clearly_labels(arr: np.ndarray) -> bool:
    """The cheap gates of the module Notes: too few ids, or too few differing neighbours."""
    if arr.dtype.kind == "u" and arr.dtype.itemsize <= 2:
        n_ids = int(np.count_nonzero(np.bincount(arr.ravel())[1:]))
    else:
        n_ids = len(np.unique(arr)) - 1
    if n_ids < MIN_IDS:
        return True
    left, right = arr[:, :-1], arr[:, 1:]
    both = (left != 0) & (right != 0)
    n_pairs = int(np.count_nonzero(both))
    return n_pairs > 0 and np.count_nonzero(both & (left != right)) < LABEL_EDGE_SHARE * n_pairs


def _pct(share: float) -> str:
    value = share * 100
    text = f"{value:.0f}" if value >= 1 or value == 0 else f"{value:.2g}"
    return f"{text} %"


def check_not_intensity(arr: np.ndarray, *, what: str = "mask") -> None:
    """Refuse an array whose "labels" look like the grey values of an image.

    Parameters
    ----------
    arr : ndarray of int, shape (H, W)
        Candidate label image, ids as stored.
    what : str, optional
        Name used in the message.

    Raises
    ------
    MaskFormatError
        When :attr:`LabelStats.looks_like_intensity`; the message gives the numbers.
    """
    validate_label_image(arr, name="mask")
    if _clearly_labels(arr):
        return
    height, width = arr.shape
    top, left = max(0, (height - STATS_CROP) // 2), max(0, (width - STATS_CROP) // 2)
    window = arr[top : top + STATS_CROP, left : left + STATS_CROP]
    stats = label_image_stats(window)
    if stats.looks_like_intensity:
        where = (
            f" (in its central {window.shape[0]} x {window.shape[1]} window)"
            if window.shape != arr.shape else ""
        )
        raise MaskFormatError(
            f"{what} looks like an intensity image, not a label image{where}: its "
            f"{stats.n_ids:,} grey values {stats.min_id}..{stats.max_id} "
            f"({_pct(stats.range_share)} of that range used) lie in {stats.pieces:,} "
            f"scattered pieces; {_pct(stats.fragmented_share)} of the values are in "
            f"several pieces (median {stats.median_pieces:g}), {_pct(stats.tiny_share)} "
            f"cover fewer than {TINY_PIXELS} pixels, and {_pct(stats.background_share)} "
            "of the pixels are 0 (background). In a label image each id is one connected "
            "cell. Send the mask (label image), not the microscopy image."
        )
