"""Input checks shared by the noise-detection functions.

Every public function in :mod:`qa.noise` validates its arguments here first, so that a
wrong input fails with a message naming the argument and what was wrong with it rather
than deep inside numpy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def require_label_image(array: object, name: str) -> np.ndarray:
    """Return ``array`` as a 2-D integer label image or raise ``TypeError``/``ValueError``."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(array).__name__}")
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D label image, got shape {array.shape}")
    if array.dtype == bool or not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{name} must have an integer dtype, got {array.dtype}")
    if array.size and array.min() < 0:
        raise ValueError(f"{name} has negative labels (min {array.min()}); 0 is background")
    return array


def require_masks(masks: object, name: str = "masks", *, minimum: int = 2) -> list[np.ndarray]:
    """Return ``masks`` as a list of same-shape label images, at least ``minimum`` of them."""
    if isinstance(masks, np.ndarray) or not isinstance(masks, Sequence):
        raise TypeError(
            f"{name} must be a sequence (list or tuple) of 2-D label images, "
            f"got {type(masks).__name__}"
        )
    if len(masks) < minimum:
        raise ValueError(f"{name} needs at least {minimum} annotations, got {len(masks)}")
    out = [require_label_image(m, f"{name}[{i}]") for i, m in enumerate(masks)]
    shapes = {m.shape for m in out}
    if len(shapes) > 1:
        raise ValueError(f"{name} must all have one shape, got {sorted(shapes)}")
    return out


def require_weights(weights: object, n: int, name: str = "weights") -> np.ndarray:
    """Return per-annotator weights as a float array of length ``n``, all in (0, 1]."""
    w = np.asarray(weights, dtype=float)
    if w.shape != (n,):
        raise ValueError(f"{name} must have one value per annotator ({n}), got shape {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w <= 0) or np.any(w > 1):
        raise ValueError(f"{name} must be reliabilities in (0, 1], got {w.tolist()}")
    return w


def require_image(image: object, shape: tuple[int, ...], name: str = "image") -> np.ndarray:
    """Return an intensity image of spatial shape ``shape`` (2-D, or 3-D channels-last)."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(image).__name__}")
    if image.ndim not in (2, 3) or image.shape[:2] != shape:
        raise ValueError(
            f"{name} must have shape {shape} or {shape} + (channels,), got {image.shape}"
        )
    if not (np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)):
        raise TypeError(f"{name} must be numeric, got {image.dtype}")
    return image


def require_fraction(value: object, name: str, *, low: float = 0.0, high: float = 1.0) -> float:
    """Return ``value`` as a float in ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    v = float(value)
    if not (low <= v <= high):
        raise ValueError(f"{name} must be in [{low}, {high}], got {v}")
    return v


def require_iou_threshold(value: object, name: str = "iou_threshold") -> float:
    """Return an IoU matching threshold in [0.5, 1) (at or above 0.5 matches are unique)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not 0.5 <= float(value) < 1.0:
        raise ValueError(f"{name} must be in [0.5, 1), got {value}")
    return float(value)


def require_consensus(consensus: object, masks: list[np.ndarray]) -> None:
    """Check that ``consensus`` is a Consensus of ``masks`` (labels, members) or raise."""
    labels = getattr(consensus, "labels", None)
    members = getattr(consensus, "members", None)
    if not isinstance(labels, np.ndarray) or not isinstance(members, np.ndarray):
        raise TypeError(
            "consensus must be a qa.consensus.Consensus (with .labels and .members arrays), "
            f"got {type(consensus).__name__}"
        )
    if labels.shape != masks[0].shape:
        raise ValueError(
            f"consensus.labels has shape {labels.shape}, the masks have {masks[0].shape}"
        )
    if members.ndim != 2 or members.shape[1] != len(masks):
        raise ValueError(
            f"consensus.members must have one column per mask ({len(masks)}), "
            f"got shape {members.shape}"
        )
    if int(labels.max(initial=0)) > members.shape[0]:
        raise ValueError(
            f"consensus.labels has id {int(labels.max())} but members has only "
            f"{members.shape[0]} rows"
        )


def require_prepared(prepared: object, masks: list[np.ndarray]):
    """Check that ``prepared`` is :func:`qa.consensus.prepare_masks` of ``masks`` (as far as
    counts and shape tell) or raise; return it (None stays None)."""
    if prepared is None:
        return None
    from qa.consensus import PreparedMasks

    if not isinstance(prepared, PreparedMasks):
        raise TypeError(f"prepared must be qa.consensus.prepare_masks(masks), "
                        f"got {type(prepared).__name__}")
    if len(prepared) != len(masks) or prepared.shape != masks[0].shape:
        raise ValueError(f"prepared holds {len(prepared)} masks of shape {prepared.shape}, "
                         f"but there are {len(masks)} masks of shape {masks[0].shape}")
    return prepared
