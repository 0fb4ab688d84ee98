"""Per-cell shape and intensity features, and outlier detection over them.

An *outlier* is a cell whose shape (or brightness) is unlike the other cells drawn on
the same image: a sliver, a scribble, a blob around debris. Outliers are found with an
isolation forest (Liu, Ting & Zhou 2008) seeded for reproducibility.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from skimage.measure import regionprops_table
from sklearn.ensemble import IsolationForest

from qa.noise.compare import sequential_labels

#: Outlier detection is skipped below this many cells: an isolation forest on a
#: handful of samples flags noise.
MIN_CELLS_FOR_OUTLIERS = 30

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
    props = ["label", "area", "eccentricity", "solidity"]
    table = regionprops_table(seq, properties=props)
    cols = [np.log(table["area"]), table["eccentricity"], table["solidity"]]
    if image is not None:
        gray = image.astype(float).mean(axis=2) if image.ndim == 3 else image.astype(float)
        sums = np.bincount(seq.ravel(), weights=gray.ravel(), minlength=ids.size + 1)
        cols.append(sums[table["label"]] / table["area"])
    values = np.stack([np.asarray(c, dtype=float) for c in cols], axis=1)
    return CellFeatures(ids[np.asarray(table["label"], dtype=np.int64) - 1], values, names)


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
    forest = IsolationForest(
        n_estimators=100, contamination=contamination, random_state=seed
    ).fit(scaled)
    return forest.predict(scaled) == -1, np.clip(-forest.score_samples(scaled), 0.0, 1.0)


def local_contrast(
    labels: np.ndarray, ids: np.ndarray, image: np.ndarray, foreground: np.ndarray
) -> np.ndarray:
    """Signal of each cell against the background just around it, in noise units.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        Label image holding the cells.
    ids : ndarray of int, shape (n,)
        Cells to measure (present in ``labels``).
    image : ndarray, shape (H, W) or (H, W, C)
        Intensity image (channels are averaged).
    foreground : ndarray of bool, shape (H, W)
        Pixels any annotator labelled; they are left out of the background.

    Returns
    -------
    ndarray of float64, shape (n,)
        ``(median inside - median of a 1..3 px ring outside) / noise`` or the same with
        the cell's outermost pixels instead of its inside, whichever is larger in size
        (bright-field cells show mostly a dark rim), with noise the 1.4826 * MAD of the
        background pixels (3 px away from any label). The sign follows the image; 0 for
        a cell without background around it.
    """
    gray = image.astype(float).mean(axis=2) if image.ndim == 3 else image.astype(float)
    far = ~ndi.binary_dilation(foreground, iterations=3)
    bg = gray[far] if far.any() else gray.ravel()
    noise = 1.4826 * float(np.median(np.abs(bg - np.median(bg))))
    noise = noise if noise > 0 else max(float(bg.std()), 1e-12)
    out = np.zeros(len(ids))
    seq, present = sequential_labels(labels)
    boxes = ndi.find_objects(seq)
    for n, cid in enumerate(np.asarray(ids, dtype=np.int64)):
        k = int(np.searchsorted(present, cid))
        if k >= present.size or present[k] != cid:
            continue
        sl = tuple(slice(max(s.start - 4, 0), s.stop + 4) for s in boxes[k])
        cell = seq[sl] == k + 1
        ring = ndi.binary_dilation(cell, iterations=3) & ~ndi.binary_dilation(cell)
        ring &= ~foreground[sl]
        if ring.any():
            # the inside for fluorescence-like images, the rim for bright field (a dark
            # rim with a bright halo around a cell as dim as the background)
            rim = cell & ~ndi.binary_erosion(cell)
            outside = np.median(gray[sl][ring])
            inside = np.median(gray[sl][cell]) - outside
            edge = np.median(gray[sl][rim]) - outside if rim.any() else 0.0
            out[n] = (inside if abs(inside) >= abs(edge) else edge) / noise
    return out
