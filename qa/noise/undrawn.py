"""Cells the image shows that no annotator drew (``missed`` flags from image evidence).

Leave-one-out flags can only point at a cell some *other* annotator drew; a faint cell
every annotator left out is invisible to them. This module looks for such cells in the
image itself: regions that stand out from their local background the way the drawn
cells do (same polarity), about as large as the drawn cells, away from every drawn cell.

Detector (per image):

1. Polarity ``p``: the sign of (median intensity inside the drawn cells - background
   level), so that bright nuclei and dark bright-field cells are both "positive".
2. Local contrast ``c = p * (G(image, 1 px) - B)``, ``B`` the local background: a
   Gaussian (sigma ``2 r``, ``r`` the radius of a disk with the median drawn-cell area)
   average of the image over the pixels at least :data:`MARGIN` px from every drawn
   cell (normalised convolution), so that bright drawn neighbours do not lift it.
3. Noise ``n``: 1.4826 x the median absolute deviation of ``c`` over those pixels.
4. Candidates: local maxima of ``c`` (window ``2 r + 1``) above :data:`MIN_SNR` ``n``,
   away from the drawn cells, strongest first. A candidate's extent is the connected
   set of free pixels above ``max(CORE * peak, MIN_SNR * n)`` around it (later maxima
   inside it are skipped); its *size* is measured at half its peak contrast, which
   tracks a blob's real size whatever its brightness: one smaller than
   :data:`MIN_AREA_SHARE` of the median drawn area is debris, not a cell, and dropped,
   and the score falls for one below the typical size as for the other flags.
5. A region at least as plain as the drawn cells that every annotator left out was most
   likely left out on purpose (debris is often bright): the score falls for contrast
   above :data:`OBVIOUS` of the drawn cells' median contrast.

A cell partly under a drawn neighbour is seen only in its free part, so its measured
size, and score, are smaller. Cells too faint to stand out of the noise (e.g. faint
bright-field cells, whose contrast is a thin rim) are not found.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

#: Pixels this close to a drawn cell are left out (its blurred edge is not a new cell).
MARGIN = 3

#: Sigma (px) of the Gaussian that smooths the image before the contrast is taken.
SMOOTH = 1.0

#: Peak local contrast, in units of the contrast noise, from which a region counts as a
#: candidate cell.
MIN_SNR = 6.0

#: Mean contrast over the half-maximum region, in noise units, at which the image
#: evidence is full (score factor 1); it falls linearly to 0 at :data:`MIN_SNR`.
FULL_SNR = 12.0

#: Contrast, as a share of the drawn cells' median contrast, above which a region every
#: annotator left out is doubted: the cells all annotators miss are the faint ones, while
#: an object as plain as the drawn cells that nobody drew was most likely left out on
#: purpose (debris, an artefact). The doubt rises linearly to 1 at twice this share.
OBVIOUS = 0.5

#: A candidate's extent: the connected pixels above this share of its peak contrast
#: (and above the detection threshold).
CORE = 0.35

#: A candidate whose half-maximum area is below this share of the median drawn-cell
#: area is dropped (debris is much smaller than cells).
MIN_AREA_SHARE = 0.25


@dataclass(frozen=True)
class UndrawnCell:
    """One region of the image that looks like a cell and that no annotator drew.

    Attributes
    ----------
    where : (int, int)
        (row, column) of the pixel of peak contrast.
    area : int
        Half-maximum area in pixels.
    snr : float
        Mean local contrast over the region's extent, in noise units.
    relative_contrast : float
        Median contrast over the half-maximum region, over the median contrast of the
        drawn cells' pixels.
    score : float
        Evidence that it is a cell left out, 0..1: ``clip((snr - MIN_SNR) / (FULL_SNR -
        MIN_SNR))`` times ``1 - too_small``, ``too_small = clip(log(median area / area) /
        log 4, 0, 1)`` as for the other flags, times ``1 - obvious``, ``obvious =
        clip((relative_contrast - OBVIOUS) / OBVIOUS, 0, 1)``.
    """

    where: tuple[int, int]
    area: int
    snr: float
    relative_contrast: float
    score: float


def undrawn_cells(gray: np.ndarray, masks: list[np.ndarray]) -> list[UndrawnCell]:
    """Find cell-like regions of ``gray`` that none of ``masks`` covers.

    Parameters
    ----------
    gray : ndarray of float64, shape (H, W)
        The intensity image (channels averaged).
    masks : list of ndarray of int, shape (H, W)
        Every annotator's label image.

    Returns
    -------
    list of UndrawnCell
        Sorted by descending score; empty when nobody drew a cell (no typical size or
        polarity to look for) or nothing stands out.
    """
    foreground = np.zeros(gray.shape, dtype=bool)
    areas = []
    for m in masks:
        foreground |= m != 0
        ids, counts = np.unique(m, return_counts=True)
        areas.append(counts[ids != 0])
    areas = np.concatenate(areas)
    if areas.size == 0:
        return []
    cell_area = float(np.median(areas))
    r = float(np.sqrt(cell_area / np.pi))
    free = ~ndi.binary_dilation(foreground, iterations=MARGIN)
    if free.sum() < 16:
        return []
    level = float(np.median(gray[free]))
    inside = float(np.median(gray[foreground]))
    polarity = 1.0 if inside >= level else -1.0
    sigma_b = 2.0 * r
    weight = ndi.gaussian_filter(free.astype(float), sigma_b)
    local = ndi.gaussian_filter(np.where(free, gray, 0.0), sigma_b) / np.maximum(weight, 1e-6)
    local = np.where(weight > 1e-3, local, level)
    contrast = polarity * (ndi.gaussian_filter(gray, SMOOTH) - local)
    values = contrast[free]
    noise = 1.4826 * float(np.median(np.abs(values - np.median(values))))
    if noise <= 0:
        return []
    drawn_level = float(np.median(contrast[foreground]))
    cand = (contrast > MIN_SNR * noise) & free
    masked = np.where(free, contrast, -np.inf)
    peaks = cand & (contrast == ndi.maximum_filter(masked, size=2 * int(round(r)) + 1))
    taken = np.zeros(gray.shape, dtype=bool)
    out: list[UndrawnCell] = []
    for py, px in sorted(zip(*np.nonzero(peaks), strict=True), key=lambda p: -contrast[p]):
        if taken[py, px]:
            continue
        top = float(contrast[py, px])
        box = (slice(max(py - 3 * int(r) - 3, 0), py + 3 * int(r) + 4),
               slice(max(px - 3 * int(r) - 3, 0), px + 3 * int(r) + 4))
        half, _ = ndi.label((contrast[box] > max(top * CORE, MIN_SNR * noise)) & free[box])
        core = half == half[py - box[0].start, px - box[1].start]
        taken[box] |= core
        peak_half, _ = ndi.label((contrast[box] > top / 2.0) & core)
        body = peak_half == peak_half[py - box[0].start, px - box[1].start]
        area_half = int(body.sum())
        if area_half < MIN_AREA_SHARE * cell_area:
            continue
        snr = float(contrast[box][core].mean()) / noise
        evidence = np.clip((snr - MIN_SNR) / (FULL_SNR - MIN_SNR), 0.0, 1.0)
        too_small = np.clip(np.log(cell_area / area_half) / np.log(4.0), 0.0, 1.0)
        relative = float(np.median(contrast[box][body])) / max(drawn_level, noise)
        obvious = np.clip((relative - OBVIOUS) / OBVIOUS, 0.0, 1.0)
        out.append(UndrawnCell(where=(int(py), int(px)), area=area_half, snr=snr,
                               relative_contrast=relative,
                               score=float(evidence * (1.0 - too_small) * (1.0 - obvious))))
    out.sort(key=lambda u: (-u.score, u.where))
    return out
