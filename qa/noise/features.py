"""Per-cell shape and intensity features, and outlier detection over them.

An *outlier* is a cell whose shape (or brightness) is unlike the other cells drawn on
the same image: a sliver, a scribble, a blob around debris. Outliers are found with an
isolation forest (Liu, Ting & Zhou 2008) seeded for reproducibility. The edge strength
along a cell's outline tells a cell drawn on nothing from one the image shows, and the
interface contrast where two cells meet tells two touching cells from one cell cut in two.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from sklearn.ensemble import IsolationForest

from qa.noise.compare import sequential_labels
from qa.noise.convexity import convex_areas, convex_pixels

#: Outlier detection is skipped below this many cells: an isolation forest on a
#: handful of samples flags noise.
MIN_CELLS_FOR_OUTLIERS = 30

__all__ = ["CellFeatures", "cell_features", "convex_pixels", "outlier_scores"]

FEATURE_NAMES = ("log_area", "eccentricity", "solidity", "mean_intensity")


@dataclass(frozen=True)
class CellFeatures:
    """Features of every cell of one label image.

    Attributes
    ----------
    labels : ndarray of int64, shape (n,)
        Cell ids, ascending.
    values : ndarray of float64, shape (n, f)
        One row per cell: log area (pixels), eccentricity (0 circle .. 1 line), solidity
        (area / convex hull area) and, when an image was given, mean intensity (mean over
        channels for multi-channel images).
    names : tuple of str
        Column names of ``values``.
    """

    labels: np.ndarray
    values: np.ndarray
    names: tuple[str, ...]


def cell_features(labels: np.ndarray, image: np.ndarray | None = None) -> CellFeatures:
    """Compute shape features, and mean intensity when ``image`` is given.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        Instance label image, 0 is background.
    image : ndarray, shape (H, W) or (H, W, C), optional
        Intensity image of the same height and width.

    Returns
    -------
    CellFeatures
        With zero rows when ``labels`` has no cells.
    """
    names = FEATURE_NAMES if image is not None else FEATURE_NAMES[:3]
    if not np.any(labels):
        return CellFeatures(np.zeros(0, np.int64), np.zeros((0, len(names))), names)
    seq, ids = sequential_labels(labels)
    n = ids.size
    # Moments from the cells' pixels with bincount (one pass over the foreground, no
    # per-cell crops); the same values as skimage's regionprops up to float rounding.
    rows, cols = np.nonzero(seq)
    which = seq[rows, cols]
    area = np.bincount(which, minlength=n + 1)[1:].astype(float)
    cy = np.bincount(which, weights=rows, minlength=n + 1)[1:] / area
    cx = np.bincount(which, weights=cols, minlength=n + 1)[1:] / area
    dy = rows - cy[which - 1]
    dx = cols - cx[which - 1]
    mu20 = np.bincount(which, weights=dy * dy, minlength=n + 1)[1:] / area
    mu02 = np.bincount(which, weights=dx * dx, minlength=n + 1)[1:] / area
    mu11 = np.bincount(which, weights=dy * dx, minlength=n + 1)[1:] / area
    cols_out = [np.log(area), _eccentricity(mu20, mu02, mu11), area / convex_areas(seq, n, pixels=(rows, cols, which))]
    if image is not None:
        gray = image.astype(float).mean(axis=2) if image.ndim == 3 else image.astype(float)
        sums = np.bincount(seq.ravel(), weights=gray.ravel(), minlength=n + 1)[1:]
        cols_out.append(sums / area)
    values = np.stack([np.asarray(c, dtype=float) for c in cols_out], axis=1)
    return CellFeatures(ids, values, names)


def _eccentricity(mu20: np.ndarray, mu02: np.ndarray, mu11: np.ndarray) -> np.ndarray:
    """Eccentricity of the ellipse with the same second moments (skimage's definition:
    ``sqrt(1 - l2 / l1)`` over the eigenvalues of the inertia tensor, 0 when ``l1 = 0``)."""
    half = (mu20 + mu02) / 2.0
    root = np.sqrt(((mu20 - mu02) / 2.0) ** 2 + mu11**2)
    l1 = np.maximum(half + root, 0.0)
    l2 = np.maximum(half - root, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ecc = np.sqrt(np.clip(1.0 - l2 / l1, 0.0, 1.0))
    return np.where(l1 > 0, ecc, 0.0)


def outlier_scores(
    values: np.ndarray, *, contamination: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Fit an isolation forest on the rows of ``values`` and score each row.

    Parameters
    ----------
    values : ndarray of float, shape (n, f)
        One row of features per cell.
    contamination : float, keyword-only
        Expected share of outliers, in (0, 0.5].
    seed : int, keyword-only
        Seed of the forest.

    Returns
    -------
    is_outlier : ndarray of bool, shape (n,)
        Rows the forest labels as outliers; all False when ``n`` is below
        :data:`MIN_CELLS_FOR_OUTLIERS`.
    score : ndarray of float64, shape (n,)
        Anomaly score in 0..1 (sklearn's ``-score_samples``, which is ``2 ** (-E[h] / c(n))``
        from the paper; about 0.5 for ordinary rows, towards 1 for isolated ones).
    """
    n = values.shape[0]
    if n < MIN_CELLS_FOR_OUTLIERS:
        return np.zeros(n, dtype=bool), np.zeros(n)
    # Features on different scales: standardise so each gets a fair share of splits
    # (the forest is per-feature scale-free, but constant columns must not break it).
    std = values.std(axis=0)
    scaled = (values - values.mean(axis=0)) / np.where(std > 0, std, 1.0)
    # The trees do not depend on the contamination; fitting with "auto" skips sklearn's
    # own scoring pass for the offset, and the offset and predict() are derived from the
    # one score_samples pass below exactly as sklearn derives them (one pass, not three).
    forest = IsolationForest(n_estimators=100, contamination="auto", random_state=seed).fit(scaled)
    normality = forest.score_samples(scaled)
    offset = np.percentile(normality, 100.0 * contamination)
    return normality - offset < 0, np.clip(-normality, 0.0, 1.0)


def edge_strength(
    labels: np.ndarray, ids: np.ndarray, image: np.ndarray, foreground: np.ndarray
) -> np.ndarray:
    """How strongly the image changes along each cell's outline, relative to the background.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        Label image holding the cells.
    ids : ndarray of int, shape (n,)
        Cells to measure (present in ``labels``).
    image : ndarray, shape (H, W) or (H, W, C)
        Intensity image (channels are averaged).
    foreground : ndarray of bool, shape (H, W)
        Pixels any annotator labelled.

    Returns
    -------
    ndarray of float64, shape (n,)
        Mean gradient magnitude (Gaussian derivative, sigma 1 px) over a band from 1 px
        inside to 2 px outside the outline, divided by the median gradient magnitude of
        the background (pixels 3 px away from any label). About 1 for a cell drawn on
        nothing; well above 1 where the image has an edge, whatever the modality (a
        bright cell, a dark rim with a bright halo). Pixels near other labelled cells
        are left out of the band; NaN when nothing is left.

    Notes
    -----
    Edge energy is used rather than a difference of mean intensities because bright-field
    cells are about as bright as the background inside and show only at their rim.
    """
    gray = image.astype(float).mean(axis=2) if image.ndim == 3 else image.astype(float)
    grad = ndi.gaussian_gradient_magnitude(gray, 1.0)
    far = ~ndi.binary_dilation(foreground, iterations=3)
    background = float(np.median(grad[far] if far.any() else grad))
    background = background if background > 0 else 1e-12
    out = np.full(len(ids), np.nan)
    seq, present = sequential_labels(labels)
    boxes = ndi.find_objects(seq)
    for n, cid in enumerate(np.asarray(ids, dtype=np.int64)):
        k = int(np.searchsorted(present, cid))
        if k >= present.size or present[k] != cid:
            continue
        sl = tuple(slice(max(s.start - 4, 0), s.stop + 4) for s in boxes[k])
        cell = seq[sl] == k + 1
        near = ndi.binary_dilation(cell, iterations=2)
        band = near & ~ndi.binary_erosion(cell)
        band &= ~ndi.binary_dilation(foreground[sl] & ~near)
        if band.any():
            out[n] = float(grad[sl][band].mean()) / background
    return out


@dataclass(frozen=True)
class Background:
    """Intensity statistics of the pixels far from every labelled cell.

    Attributes
    ----------
    gray : ndarray of float64, shape (H, W)
        The image, channels averaged.
    level : float
        Median intensity of the background.
    noise : float
        Robust standard deviation of the background (1.4826 x median absolute deviation),
        at least 1e-9.
    """

    gray: np.ndarray
    level: float
    noise: float


def background_of(image: np.ndarray, foreground: np.ndarray) -> Background:
    """Background statistics over pixels at least 3 px from ``foreground`` (all pixels if none).

    Parameters
    ----------
    image : ndarray, shape (H, W) or (H, W, C)
        Intensity image (channels are averaged).
    foreground : ndarray of bool, shape (H, W)
        Pixels any annotator labelled.
    """
    gray = image.astype(float).mean(axis=2) if image.ndim == 3 else image.astype(float)
    far = ~ndi.binary_dilation(foreground, iterations=3)
    values = gray[far] if far.any() else gray.ravel()
    level = float(np.median(values))
    noise = 1.4826 * float(np.median(np.abs(values - level)))
    return Background(gray=gray, level=level, noise=max(noise, 1e-9))


def interface_contrast(
    labels: np.ndarray, cell_id: int, reference: np.ndarray, part_ids: tuple[int, int],
    background: Background, *, box: tuple[slice, slice] | None = None,
) -> float:
    """How much the line where two parts meet differs in brightness from the cell's inside.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        Label image holding the cell (one annotator's drawing of it as one cell).
    cell_id : int
        The cell's id in ``labels``.
    reference : ndarray of int, shape (H, W)
        Label image holding the two parts (another annotator's or a consensus's cells).
    part_ids : (int, int)
        Ids in ``reference`` of the two parts inside the cell.
    background : Background
        From :func:`background_of`.
    box : (slice, slice), keyword-only, optional
        Bounding box of the cell in ``labels`` (as from ``scipy.ndimage.find_objects``),
        to save finding it.

    Returns
    -------
    float
        ``|mean inside - mean interface| / (|mean inside - background level| + noise)``:
        the interface's contrast as a share of the cell's own contrast. The interface is
        the part of the cell within 2 px of both parts; the inside is the cell eroded by
        3 px, and 2 px away from the interface. About 0 for a cut through one cell
        (nothing in the image there); large where two cells meet (a dim gap between
        touching nuclei, a dark double rim, or a brighter overlap). NaN when the
        interface or the inside is empty, or the cell is absent.
    """
    if box is None:
        rows, cols = np.nonzero(labels == cell_id)
        if rows.size == 0:
            return float("nan")
        box = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
    pad = 6
    sl = (slice(max(box[0].start - pad, 0), box[0].stop + pad),
          slice(max(box[1].start - pad, 0), box[1].stop + pad))
    c = labels[sl] == cell_id
    a = reference[sl] == part_ids[0]
    b = reference[sl] == part_ids[1]
    band = ndi.binary_dilation(a, iterations=2) & ndi.binary_dilation(b, iterations=2) & c
    inner = ndi.binary_erosion(c, iterations=3) & ~ndi.binary_dilation(band, iterations=2)
    if not band.any() or not inner.any():
        return float("nan")
    gray = background.gray[sl]
    inside = float(gray[inner].mean())
    valley = inside - float(gray[band].mean())
    return abs(valley) / (abs(inside - background.level) + background.noise)
