"""Binary masks: foreground, polarity, two-colour images, instances by connectivity (pure).

A *binary* mask holds background (0, ``False``) and one other value (1, 255, 65535,
``True``, ...). It is not a label image: touching cells in it cannot be told apart, so
its instances are its connected foreground regions (8-connected, as ImageJ's *Analyze
Particles* and ``skimage.measure.label`` count them), numbered in raster order.

Polarity
--------
Some tools store cells as 0 and background as 255 (ImageJ masks made without "black
background", BU-BIL's expert masks). Imported as is, such a mask is one "cell" covering
nearly the whole image. A binary mask whose foreground covers more than half of the
image and touches all four borders is therefore refused unless the caller says what it
is: ``invert=True`` swaps foreground and background, ``invert=False`` keeps the
foreground as cells (a confluent monolayer), ``invert=None`` (the default) refuses.

Two-colour images
-----------------
ImageJ's *Create Mask* saved as RGB, and painting tools, write a binary mask as an RGB
or RGBA image holding exactly two colours. The brighter colour (ITU-R BT.601 luma) is
the foreground, as in a grey 0/255 mask; fully transparent pixels (alpha 0) are
background whatever their colour. Polarity is then checked as above.
"""

from __future__ import annotations

import numpy as np

from .labels import MaskFormatError

__all__ = [
    "INVERTED_MIN_SHARE",
    "apply_polarity",
    "binary_foreground",
    "colour_foreground",
    "labels_from_foreground",
    "looks_inverted",
]

#: Foreground share above which a mask touching all four borders is taken as inverted.
INVERTED_MIN_SHARE = 0.5
_EIGHT = np.ones((3, 3), dtype=bool)


def _distinct_values(arr: np.ndarray) -> np.ndarray:
    """Sorted distinct values of an integer or boolean array (bincount for <= 16-bit)."""
    if arr.dtype.kind == "b":
        return np.unique(arr)
    if arr.dtype.kind == "u" and arr.dtype.itemsize <= 2:
        return np.flatnonzero(np.bincount(arr.ravel(), minlength=1)).astype(arr.dtype)
    return np.unique(arr)


def binary_foreground(arr: np.ndarray) -> np.ndarray | None:
    """Foreground of a binary mask, or None when the array is not binary.

    Parameters
    ----------
    arr : ndarray of int or bool, shape (H, W)
        Candidate mask.

    Returns
    -------
    ndarray of bool, shape (H, W), or None
        ``arr != 0`` when ``arr`` holds 0 and exactly one other value (a boolean array
        holding both True and False counts); None for an all-zero array (no cells: an
        empty label image) and for arrays with several non-zero values (label images).
    """
    if arr.ndim != 2:
        raise MaskFormatError(f"a binary mask must be 2-D (H, W); got shape {arr.shape}.")
    values = _distinct_values(arr)
    nonzero = values[values != 0]
    if len(nonzero) != 1:
        return None
    return arr != 0


def colour_foreground(arr: np.ndarray, *, what: str = "mask") -> np.ndarray:
    """Foreground of a two-colour grey+alpha, RGB or RGBA image (module docstring rule).

    Parameters
    ----------
    arr : ndarray of uint8 or uint16, shape (H, W, C) with C in {2, 3, 4}
        Grey+alpha (C = 2), RGB (3) or RGBA (4) samples.
    what : str, optional
        Name used in messages.

    Returns
    -------
    ndarray of bool, shape (H, W)
        True on the brighter of the two colours (opaque pixels only).

    Raises
    ------
    MaskFormatError
        When the image holds one colour, more than two, or two of equal brightness.
    """
    if arr.ndim != 3 or arr.shape[2] not in (2, 3, 4):
        raise MaskFormatError(f"{what}: expected (H, W, 2|3|4) colour samples, got {arr.shape}.")
    if arr.dtype.kind != "u" or arr.dtype.itemsize > 2:
        raise MaskFormatError(f"{what}: colour samples must be 8- or 16-bit, got {arr.dtype}.")
    channels = arr.shape[2]
    has_alpha = channels in (2, 4)
    colour = arr[..., :-1] if has_alpha else arr
    opaque = arr[..., -1] != 0 if has_alpha else np.ones(arr.shape[:2], dtype=bool)
    shift = 8 * arr.dtype.itemsize
    packed = np.zeros(arr.shape[:2], dtype=np.uint64)
    for c in range(colour.shape[2]):
        packed = (packed << np.uint64(shift)) | colour[..., c].astype(np.uint64)
    packed = np.where(opaque, packed, np.uint64(np.iinfo(np.uint64).max))
    values = np.unique(packed)
    n_transparent = 1 if (~opaque).any() else 0
    n_opaque = len(values) - n_transparent
    described = f"{n_opaque} opaque colour{'s' if n_opaque != 1 else ''}" + (
        " and transparent pixels" if n_transparent else ""
    )
    if n_opaque + n_transparent != 2:
        raise MaskFormatError(
            f"{what} is a colour image with {described}; a colour mask is accepted only "
            "when it holds exactly two colours (a binary mask). Save label images as one "
            "grey integer channel."
        )
    if n_transparent:
        return opaque
    weights = (0.299, 0.587, 0.114) if colour.shape[2] == 3 else (1.0,)
    lumas = []
    for value in values.tolist():
        samples = [(value >> (shift * (colour.shape[2] - 1 - c))) & ((1 << shift) - 1)
                   for c in range(colour.shape[2])]
        lumas.append(sum(w * s for w, s in zip(weights, samples, strict=True)))
    if lumas[0] == lumas[1]:
        raise MaskFormatError(
            f"{what} holds two colours of equal brightness; which one is the cells is "
            "ambiguous. Save the mask as grey 0 (background) / 255 (cells)."
        )
    bright = values[int(np.argmax(lumas))]
    return packed == bright


def looks_inverted(foreground: np.ndarray) -> tuple[bool, float]:
    """Whether a binary foreground covers most of the image and touches all four borders.

    Parameters
    ----------
    foreground : ndarray of bool, shape (H, W)

    Returns
    -------
    (bool, float)
        The verdict and the foreground share of the image (0..1).
    """
    share = float(np.count_nonzero(foreground)) / foreground.size
    borders = (foreground[0], foreground[-1], foreground[:, 0], foreground[:, -1])
    touches_all = all(bool(edge.any()) for edge in borders)
    return share > INVERTED_MIN_SHARE and touches_all, share


def apply_polarity(
    foreground: np.ndarray, *, invert: bool | None, what: str = "mask"
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Apply (or check) the polarity of a binary mask.

    Parameters
    ----------
    foreground : ndarray of bool, shape (H, W)
        The non-zero (or brighter) pixels as stored.
    invert : bool or None
        True: the cells are the stored background, swap them. False: keep the
        foreground as cells without checking. None: keep it, but refuse a foreground
        that :func:`looks_inverted`.
    what : str, optional
        Name used in messages.

    Returns
    -------
    foreground : ndarray of bool, shape (H, W)
    warnings : tuple of str

    Raises
    ------
    MaskFormatError
        ``invert=None`` and the mask looks inverted; the message gives the share and both
        fixes.
    """
    if invert is True:
        share = float(np.count_nonzero(foreground)) / foreground.size
        return ~foreground, (
            f"{what}: inverted as asked (invert=true): the stored background "
            f"({1 - share:.0%} of the image) became the cells.",
        )
    if invert is None:
        inverted, share = looks_inverted(foreground)
        if inverted:
            pct = f"{share * 100:.1f}".rstrip("0").rstrip(".")
            raise MaskFormatError(
                f"{what}: the foreground covers {pct} % of the image and touches all four "
                "borders: this looks like an inverted mask (cells 0, background non-zero). "
                "Import it with invert=true (import_annotations --invert) to swap cells and "
                "background, or with invert=false (--no-invert) if the foreground really is "
                "the cells."
            )
    return foreground, ()


def labels_from_foreground(
    foreground: np.ndarray, *, what: str = "binary mask"
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Label the 8-connected regions of a binary foreground as instances.

    Parameters
    ----------
    foreground : ndarray of bool, shape (H, W)

    Returns
    -------
    labels : ndarray of uint16 or uint32, shape (H, W)
        Regions numbered 1..N in raster order (first pixel top-left to bottom-right).
    warnings : tuple of str
        One line saying how many instances the regions gave.
    """
    from scipy import ndimage

    labels, n = ndimage.label(foreground, structure=_EIGHT)
    dtype = np.uint16 if n <= 65_535 else np.uint32
    note = (
        f"{what}: its {n} connected foreground region{'s' if n != 1 else ''} (8-connected) "
        f"became instance{'s' if n != 1 else ''} 1..{n}; cells that touch are one instance."
        if n
        else f"{what}: the foreground is empty; no instance."
    )
    return labels.astype(dtype), (note,)
