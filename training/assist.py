"""Classical segmentation of one cell inside a box: the editor's assist without a network.

Pure (numpy, scipy, scikit-image).  Used when no SAM weights are configured: the user draws
a box (and optionally clicks points) around a cell, and :func:`segment_in_box` returns the
cell's mask by Otsu thresholding, watershed splitting and picking the object the prompts
point at.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

METHOD = "classical:otsu+watershed"


@dataclass(frozen=True)
class AssistResult:
    """One cell's mask from an assist prompt.

    Attributes
    ----------
    mask : ndarray of bool, shape (H, W)
        The cell, in the full image's coordinates; all False when nothing was found.
    method : str
        What answered (``"classical:otsu+watershed"``, ``"sam:<model>"``).
    score : float
        Confidence in [0, 1]: contrast between cell and background here, SAM's
        predicted IoU there.
    """

    mask: np.ndarray
    method: str
    score: float


def _plane(image: np.ndarray, channel: int | None) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim == 2:
        return img.astype(np.float64)
    if img.ndim != 3:
        raise ValueError(f"image must be (H, W), (H, W, C) or (C, H, W), got shape {img.shape}")
    axis = 2 if img.shape[-1] <= 4 else 0
    n = img.shape[axis]
    c = 0 if channel is None and n == 1 else channel
    if c is None:
        return np.take(img, range(min(n, 3)), axis=axis).astype(np.float64).mean(axis=axis)
    if not 0 <= c < n:
        raise ValueError(f"channel {c} asked of an image with {n} channels")
    return np.take(img, c, axis=axis).astype(np.float64)


def check_box(box, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """The box as integer inclusive-exclusive ``(x0, y0, x1, y1)`` clipped to the image."""
    b = np.asarray(box, dtype=np.float64).reshape(-1)
    if b.size != 4 or not np.isfinite(b).all():
        raise ValueError(f"box must be four finite numbers x0, y0, x1, y1, got {box!r}")
    x0, y0, x1, y1 = b
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"box must have x1 > x0 and y1 > y0, got {box!r}")
    h, w = shape
    x0, y0 = max(0, int(np.floor(x0))), max(0, int(np.floor(y0)))
    x1, y1 = min(w, int(np.ceil(x1)) + 1), min(h, int(np.ceil(y1)) + 1)
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise ValueError(f"box {box!r} lies outside the {w} x {h} image or is under 2 px")
    return x0, y0, x1, y1


def segment_in_box(image: np.ndarray, box, *, points: np.ndarray | None = None,
                   point_labels: np.ndarray | None = None, channel: int | None = None,
                   sigma: float = 1.0) -> AssistResult:
    """Segment the cell a box (and optional points) points at.

    Parameters
    ----------
    image : ndarray, (H, W), (H, W, C) or (C, H, W), any real dtype
    box : sequence of 4 float
        ``x0, y0, x1, y1`` in pixels (inclusive corners, as the editor draws them).
    points : ndarray of float, shape (n, 2), optional
        ``x, y`` clicks; with ``point_labels`` 1 = inside the cell, 0 = outside.
    point_labels : ndarray of int, shape (n,), optional
        Default all 1.
    channel : int or None
        Channel to segment (None: mean of the first three).
    sigma : float
        Gaussian smoothing before thresholding, in pixels.

    Returns
    -------
    AssistResult

    Notes
    -----
    Inside the box the smoothed intensity is split by Otsu's threshold; the side whose
    mean differs most from the box's border pixels is the foreground, so both bright
    (fluorescence) and dark (bright-field) cells work.  Touching cells are separated by a
    watershed on the distance transform (markers at its maxima, at least a quarter of the
    box's shorter side apart).  The object kept is the one under the positive points, or
    else the one nearest the box centre; negative points remove the objects they hit.
    """
    from scipy import ndimage
    from skimage.filters import threshold_otsu
    from skimage.segmentation import watershed

    plane = _plane(image, channel)
    h, w = plane.shape
    x0, y0, x1, y1 = check_box(box, (h, w))
    pts = np.zeros((0, 2)) if points is None else np.asarray(points, dtype=np.float64).reshape(-1, 2)
    lab = (np.ones(len(pts), dtype=int) if point_labels is None
           else np.asarray(point_labels, dtype=int).reshape(-1))
    if len(lab) != len(pts):
        raise ValueError(f"{len(pts)} points but {len(lab)} point labels")
    empty = AssistResult(mask=np.zeros((h, w), bool), method=METHOD, score=0.0)
    crop = ndimage.gaussian_filter(plane[y0:y1, x0:x1], sigma) if sigma > 0 else plane[y0:y1, x0:x1]
    if np.ptp(crop) == 0:
        return empty
    t = threshold_otsu(crop)
    border = np.concatenate([crop[0], crop[-1], crop[:, 0], crop[:, -1]])
    high, low = crop[crop > t], crop[crop <= t]
    bright = abs(high.mean() - np.median(border)) >= abs(low.mean() - np.median(border))
    fg = crop > t if bright else crop <= t
    fg = ndimage.binary_fill_holes(ndimage.binary_opening(fg))
    if not fg.any():
        return empty
    dist = ndimage.distance_transform_edt(fg)
    spacing = max(1, min(fg.shape) // 4)
    peaks = (dist == ndimage.maximum_filter(dist, size=2 * spacing + 1)) & (dist > 0)
    markers, _ = ndimage.label(peaks)
    objects = watershed(-dist, markers, mask=fg)
    local = pts - [x0, y0]
    inside = [(int(round(y)), int(round(x)))
              for (x, y) in local if 0 <= round(y) < fg.shape[0] and 0 <= round(x) < fg.shape[1]]
    keep_ids = {int(objects[p]) for p, lb in zip(inside, lab[: len(inside)], strict=False) if lb == 1}
    drop_ids = {int(objects[p]) for p, lb in zip(inside, lab[: len(inside)], strict=False) if lb == 0}
    keep_ids.discard(0)
    if not keep_ids:
        ids = np.unique(objects)
        ids = ids[ids > 0]
        centres = ndimage.center_of_mass(np.ones_like(objects), objects, ids)
        cy, cx = (fg.shape[0] - 1) / 2, (fg.shape[1] - 1) / 2
        keep_ids = {int(ids[np.argmin([np.hypot(y - cy, x - cx) for y, x in centres])])}
    chosen = np.isin(objects, sorted(keep_ids - drop_ids))
    mask = np.zeros((h, w), bool)
    mask[y0:y1, x0:x1] = chosen
    if not chosen.any():
        return empty
    spread = float(crop.max() - crop.min())
    contrast = abs(float(crop[chosen].mean()) - float(crop[~chosen].mean())) / spread if (~chosen).any() else 0.0
    return AssistResult(mask=mask, method=METHOD, score=float(np.clip(contrast, 0.0, 1.0)))
