"""Input checks shared by the metric functions.

Every public function in :mod:`qa.metrics` validates its inputs first, with messages that say
what was wrong, so that a service handing over a float image or a transposed mask learns it
at the call site instead of getting a silently wrong score.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Real

import numpy as np

__all__ = [
    "require_iou_threshold",
    "require_label_image",
    "require_same_shape",
    "require_thresholds",
]


def require_label_image(x: object, name: str) -> np.ndarray:
    """Check that ``x`` is a 2-D instance label image and return it.

    Parameters
    ----------
    x : object
        Candidate label image; must be a :class:`numpy.ndarray` of an integer dtype (not
        ``bool``), 2-D, with values in ``[0, 2**63)``. 0 is background.
    name : str
        How the argument is called in messages.

    Returns
    -------
    ndarray of int, shape (H, W)
        ``x`` itself (never copied).

    Raises
    ------
    TypeError
        If ``x`` is not an ndarray, or its dtype is bool, float or otherwise not integer.
    ValueError
        If ``x`` is not 2-D, holds negative labels, or ids that do not fit in int64.
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(
            f"{name} must be a numpy.ndarray instance label image, got {type(x).__name__}"
        )
    if x.dtype == np.bool_:
        raise TypeError(
            f"{name} is a boolean mask, but an instance label image is needed (integer ids, "
            "0 = background); label it first, e.g. skimage.measure.label(mask)"
        )
    if not np.issubdtype(x.dtype, np.integer):
        raise TypeError(
            f"{name} must have an integer dtype (instance ids, 0 = background), got {x.dtype}"
        )
    if x.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D (H, W) label image, got a {x.ndim}-D array of shape {x.shape}"
        )
    if np.issubdtype(x.dtype, np.signedinteger) and x.size and x.min() < 0:
        raise ValueError(
            f"{name} holds negative labels (minimum {int(x.min())}); labels must be >= 0 "
            "with 0 as background"
        )
    if x.dtype == np.uint64 and x.size and int(x.max()) >= 1 << 63:
        raise ValueError(
            f"{name} holds ids >= 2**63 (maximum {int(x.max())}); ids must fit in int64"
        )
    return x


def require_same_shape(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    """Raise ``ValueError`` unless ``a`` and ``b`` have the same shape."""
    if a.shape != b.shape:
        raise ValueError(
            f"{name_a} and {name_b} must have the same shape, got {a.shape} and {b.shape}"
        )


def require_iou_threshold(t: object, name: str = "iou_threshold") -> float:
    """Check an IoU threshold ``0 < t <= 1`` and return it as a Python float."""
    if isinstance(t, bool | np.bool_) or not isinstance(t, Real):
        raise TypeError(f"{name} must be a real number in (0, 1], got {t!r}")
    value = float(t)
    if not math.isfinite(value) or not 0.0 < value <= 1.0:
        raise ValueError(f"{name} must lie in (0, 1], got {value!r}")
    return value


def require_thresholds(thresholds: object, name: str = "thresholds") -> tuple[float, ...]:
    """Check a non-empty 1-D sequence of IoU thresholds, each in (0, 1]."""
    if isinstance(thresholds, str | bytes) or not isinstance(thresholds, Sequence | np.ndarray):
        raise TypeError(f"{name} must be a 1-D sequence of numbers in (0, 1], got {thresholds!r}")
    if isinstance(thresholds, np.ndarray) and thresholds.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {thresholds.shape}")
    values = tuple(thresholds)
    if not values:
        raise ValueError(f"{name} must hold at least one threshold")
    return tuple(require_iou_threshold(t, f"{name}[{i}]") for i, t in enumerate(values))
