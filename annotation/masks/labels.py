"""The canonical label image: validation, relabelling, dtype (pure, no Django).

A label image is a 2-D integer array, shape (H, W): 0 is background and every other
value is one instance (cell). The canonical stored form has ids 1..N and dtype
``uint16``, or ``uint32`` when the largest id is above 65,535.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "MAX_LABEL",
    "ImportResult",
    "MaskFormatError",
    "PixelSize",
    "instance_ids",
    "relabel_sequential",
    "to_canonical_dtype",
    "validate_label_image",
]

#: Largest instance id a label image may hold (the uint32 maximum).
MAX_LABEL = int(np.iinfo(np.uint32).max)


class MaskFormatError(ValueError):
    """A mask file or array is malformed, unsafe, unsupported or over a size cap."""


@dataclass(frozen=True)
class PixelSize:
    """Physical size of one pixel, in micrometres.

    Attributes
    ----------
    y, x : float
        Pixel height and width in µm (OME ``PhysicalSizeY`` / ``PhysicalSizeX``).
    """

    y: float
    x: float

    def __post_init__(self):
        for axis, value in (("y", self.y), ("x", self.x)):
            if not (isinstance(value, int | float) and np.isfinite(value) and value > 0):
                raise MaskFormatError(f"pixel size {axis} must be a positive number, got {value!r}.")

    @property
    def area_um2(self) -> float:
        """Area of one pixel in µm²: multiply a pixel count by it for an area in µm²."""
        return float(self.y) * float(self.x)

    def as_dict(self) -> dict[str, float | str]:
        """JSON form: ``{"y": .., "x": .., "unit": "µm"}``."""
        return {"y": float(self.y), "x": float(self.x), "unit": "µm"}


@dataclass(frozen=True)
class ImportResult:
    """What a mask reader produced.

    Attributes
    ----------
    labels : ndarray of uint16 or uint32, shape (H, W)
        Canonical label image: 0 background, instances 1..N.
    classes : dict of int to str
        Class name per instance id, for the instances the file classified.
    warnings : tuple of str
        Things the reader changed or noticed (overlaps resolved, instances cut by
        the image border, empty shapes dropped, ...), each naming the ids involved.
    skipped : tuple of (str, str)
        Objects that were not imported, as (name, reason): points, lines, ...
    pixel_size : PixelSize or None
        Physical pixel size when the file records one (OME-TIFF, calibrated TIFF).
    """

    labels: np.ndarray
    classes: Mapping[int, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()
    pixel_size: PixelSize | None = None

    @property
    def n_instances(self) -> int:
        """Number of instances in ``labels``."""
        return int(self.labels.max()) if self.labels.size else 0


def validate_label_image(arr: np.ndarray, *, name: str = "mask") -> None:
    """Check that an array is a valid instance label image.

    Parameters
    ----------
    arr : ndarray, shape (H, W)
        Candidate label image: integer dtype, values >= 0, at most ``MAX_LABEL``.
    name : str, optional
        What to call the array in error messages.

    Raises
    ------
    MaskFormatError
        If ``arr`` is not an ndarray, is not 2-D, is empty, has a boolean, float,
        complex or object dtype (even a float array holding whole numbers is refused:
        the caller must say that it is a label image by casting), holds negative
        values, or holds ids above ``MAX_LABEL``.
    """
    if not isinstance(arr, np.ndarray):
        raise MaskFormatError(f"{name} must be a numpy array, got {type(arr).__name__}.")
    if arr.ndim != 2:
        hint = " (it looks like a colour or multi-channel image)" if arr.ndim == 3 else ""
        raise MaskFormatError(
            f"{name} must be a 2-D label image (H, W); got {arr.ndim}-D shape {arr.shape}{hint}."
        )
    if arr.size == 0:
        raise MaskFormatError(f"{name} is empty: shape {arr.shape}.")
    kind = arr.dtype.kind
    if kind == "b":
        raise MaskFormatError(
            f"{name} is boolean; a label image needs integer instance ids "
            "(0 background, 1..N cells)."
        )
    if kind == "f":
        whole = bool(np.all(np.isfinite(arr))) and bool(np.all(arr == np.round(arr)))
        detail = (
            "its values are whole numbers, but a float mask is refused so that "
            "interpolated or probability maps are never taken as labels; save it as integers"
            if whole
            else "it holds non-integer or non-finite values (a probability map?)"
        )
        raise MaskFormatError(f"{name} has float dtype {arr.dtype.name}: {detail}.")
    if kind not in "iu":
        raise MaskFormatError(
            f"{name} has dtype {arr.dtype.name}; a label image must be unsigned or signed integer."
        )
    if kind == "i":
        lo = int(arr.min())
        if lo < 0:
            n_neg = int(np.count_nonzero(arr < 0))
            raise MaskFormatError(
                f"{name} has negative values (minimum {lo}, {n_neg} pixels); "
                "labels must be 0 (background) or positive instance ids."
            )
    hi = int(arr.max())
    if hi > MAX_LABEL:
        raise MaskFormatError(
            f"{name} has instance id {hi}, more than a uint32 label image holds ({MAX_LABEL})."
        )


def instance_ids(labels: np.ndarray) -> np.ndarray:
    """Return the sorted non-zero ids present in a label image.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)

    Returns
    -------
    ndarray of int64, shape (N,)
    """
    validate_label_image(labels, name="labels")
    return _present_ids(labels)


def _present_ids(labels: np.ndarray) -> np.ndarray:
    """Sorted non-zero ids; a linear-time bincount when the ids are not too sparse."""
    max_id = int(labels.max())
    if max_id <= max(1 << 20, labels.size):
        return np.flatnonzero(np.bincount(labels.ravel(), minlength=max_id + 1)[1:]) + 1
    ids = np.unique(labels)
    return ids[ids != 0].astype(np.int64)


def _canonical_dtype_for(max_id: int) -> np.dtype:
    return np.dtype(np.uint16) if max_id <= 65_535 else np.dtype(np.uint32)


def to_canonical_dtype(labels: np.ndarray) -> np.ndarray:
    """Cast a label image to ``uint16``, or ``uint32`` if an id exceeds 65,535.

    Ids are kept as they are (use :func:`relabel_sequential` to make them 1..N).

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)

    Returns
    -------
    ndarray of uint16 or uint32, shape (H, W)
        A new array (or ``labels`` itself when it already has the canonical dtype).
    """
    validate_label_image(labels, name="labels")
    dtype = _canonical_dtype_for(int(labels.max()))
    return labels if labels.dtype == dtype else labels.astype(dtype)


def relabel_sequential(labels: np.ndarray) -> np.ndarray:
    """Renumber instances 1..N, keeping the order of the original ids.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        0 is background; ids need not be contiguous.

    Returns
    -------
    ndarray of uint16 or uint32, shape (H, W)
        The k-th smallest original id becomes k; background stays 0.

    Examples
    --------
    >>> relabel_sequential(np.array([[0, 7], [7, 3]])).tolist()
    [[0, 2], [2, 1]]
    """
    validate_label_image(labels, name="labels")
    ids = _present_ids(labels)
    dtype = _canonical_dtype_for(len(ids))
    max_id = int(labels.max())
    if max_id <= max(1 << 20, labels.size):
        lut = np.zeros(max_id + 1, dtype=dtype)
        lut[ids] = np.arange(1, len(ids) + 1)
        return lut[labels]
    # Very sparse huge ids: map through the sorted id list instead of a table.
    new = np.searchsorted(ids, labels.ravel()) + 1
    new[labels.ravel() == 0] = 0
    return new.reshape(labels.shape).astype(dtype)
