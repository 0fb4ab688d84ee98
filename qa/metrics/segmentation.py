"""Whole-image segmentation scores: pixel Dice, aggregated Jaccard index and boundary F1.

Unlike :func:`qa.metrics.match_instances` these do not threshold a one-to-one matching: Dice
looks at foreground pixels only, AJI at every instance's best partner, boundary F1 at outlines.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np
from scipy import ndimage as ndi

from qa.metrics.overlaps import _overlaps_unchecked
from qa.metrics.validation import require_label_image, require_same_shape

__all__ = ["aggregated_jaccard_index", "boundary_f1", "instance_boundaries", "pixel_dice"]

# Up to this tolerance a dilation by a disk is faster than a distance transform.
_DILATION_MAX_TOLERANCE = 5.0


def pixel_dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice coefficient of the foreground (non-zero) pixels of two masks.

    Parameters
    ----------
    a, b : ndarray of int or bool, shape (H, W)
        Label images (0 = background) or boolean foreground masks of the same shape.

    Returns
    -------
    float
        ``2 |A & B| / (|A| + |B|)`` in [0, 1], where ``A = a != 0`` and ``B = b != 0``;
        1.0 when both are all background.

    Raises
    ------
    TypeError
        If an input is not an ndarray of an integer or bool dtype.
    ValueError
        If an input is not 2-D, has negative labels, or the shapes differ.

    Notes
    -----
    Instance ids are ignored: two masks that cover the same pixels with differently split
    cells have Dice 1.0. Use :func:`match_instances` or :func:`aggregated_jaccard_index` to
    see instance errors.

    Examples
    --------
    >>> pixel_dice(np.array([[1, 1, 0, 0]]), np.array([[0, 3, 3, 0]]))
    0.5
    """
    fa = _foreground(a, "a")
    fb = _foreground(b, "b")
    require_same_shape(fa, fb, "a", "b")
    total = int(np.count_nonzero(fa)) + int(np.count_nonzero(fb))
    if total == 0:
        return 1.0
    return 2.0 * int(np.count_nonzero(fa & fb)) / total


def aggregated_jaccard_index(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Aggregated Jaccard index (AJI) of Kumar et al. (2017).

    Parameters
    ----------
    reference, candidate : ndarray of int, shape (H, W)
        Instance label images of the same shape; 0 is background, ids need not be contiguous.

    Returns
    -------
    float
        AJI in [0, 1]; 1.0 when both images are empty, 0.0 when exactly one is.

    Raises
    ------
    TypeError
        If an image is not an integer ndarray (bool and float are refused).
    ValueError
        If an image is not 2-D or has negative ids, or the shapes differ.

    Notes
    -----
    Every reference instance :math:`G_i` is paired with the candidate instance :math:`S_j`
    of highest IoU with it (the lowest id on ties; none when it overlaps no candidate), and

    .. math:: \\mathrm{AJI} = \\frac{\\sum_i |G_i \\cap S_{j(i)}|}
              {\\sum_i |G_i \\cup S_{j(i)}| + \\sum_{k \\in U} |S_k|}

    where :math:`U` are the candidate instances paired with no reference instance; an unpaired
    reference instance adds its area to the denominator. A candidate may be the partner of
    several reference instances (the original definition, not the one-to-one "AJI+" of
    Graham et al. 2019), so a merged cell is counted once per reference cell it covers. This
    is the computation of the widely used ``get_fast_aji`` (HoVer-Net).

    ``cellpose.metrics.aggregated_jaccard_index`` is a different score under the same name:
    it pairs instances one-to-one with its IoU >= 0.5 assignment (keeping even pairs of IoU
    below 0.5, or zero), sums the intersections of those pairs, and divides by the pixel
    union of the two foregrounds rather than by the sum of the pairs' unions plus the unpaired
    areas. It therefore never penalises an overlap twice and usually reads higher on merged or
    split cells; the two agree only when every cell is matched one-to-one without overlap to
    any other cell.

    References
    ----------
    .. [1] N. Kumar, R. Verma, S. Sharma, S. Bhargava, A. Vahadane, A. Sethi, "A Dataset and
       a Technique for Generalized Nuclear Segmentation for Computational Pathology", IEEE
       Transactions on Medical Imaging 36(7), 2017.
    .. [2] S. Graham et al., "HoVer-Net: Simultaneous segmentation and classification of
       nuclei in multi-tissue histology images", Medical Image Analysis 58, 2019.

    Examples
    --------
    >>> ref = np.array([[1, 1, 2, 2]])
    >>> cand = np.array([[5, 5, 5, 5]])  # one candidate cell merges two reference cells
    >>> aggregated_jaccard_index(ref, cand)  # (2 + 2) / (4 + 4)
    0.5
    """
    require_label_image(reference, "reference")
    require_label_image(candidate, "candidate")
    require_same_shape(reference, candidate, "reference", "candidate")
    ov = _overlaps_unchecked(reference, candidate)
    if ov.n_a == 0 and ov.n_b == 0:
        return 1.0
    ia, ib = ov.pairs[:, 0], ov.pairs[:, 1]
    # best partner per reference cell: highest IoU, then lowest candidate id
    order = np.lexsort((ib, -ov.ious, ia))
    first = np.unique(ia[order], return_index=True)[1]
    best = order[first]
    inter = int(ov.intersections[best].sum())
    union = int((ov.areas_a[ia[best]] + ov.areas_b[ib[best]] - ov.intersections[best]).sum())
    paired_a = np.zeros(ov.n_a, bool)
    paired_a[ia[best]] = True
    paired_b = np.zeros(ov.n_b, bool)
    paired_b[ib[best]] = True
    union += int(ov.areas_a[~paired_a].sum()) + int(ov.areas_b[~paired_b].sum())
    return inter / union


def boundary_f1(reference: np.ndarray, candidate: np.ndarray, *, tolerance_px: float = 2) -> float:
    """Boundary F1 score: agreement of instance outlines within a distance tolerance.

    Parameters
    ----------
    reference, candidate : ndarray of int, shape (H, W)
        Instance label images of the same shape; 0 is background.
    tolerance_px : float, default 2
        A boundary pixel counts as matched when a boundary pixel of the other image lies
        within this Euclidean distance (in pixels, inclusive); must be >= 0.

    Returns
    -------
    float
        ``2 P R / (P + R)`` in [0, 1]; 1.0 when neither image has a boundary pixel (both
        empty), 0.0 when only one has.

    Raises
    ------
    TypeError
        If an image is not an integer ndarray, or ``tolerance_px`` is not a number.
    ValueError
        If an image is not 2-D or has negative ids, the shapes differ, or ``tolerance_px``
        is negative or not finite.

    Notes
    -----
    The boundary of a label image is the set of instance pixels (label != 0) with a
    4-connected neighbour of a different label, background included; pixels on the image
    border are not boundary because of the border. So the line between two touching cells
    is boundary in both cells, and splitting or merging cells changes the boundary. With
    :math:`B_r`, :math:`B_c` the two boundary sets and :math:`d(p, B)` the Euclidean
    distance from pixel :math:`p` to the nearest pixel of :math:`B`, precision is
    :math:`P = |\\{p \\in B_c : d(p, B_r) \\le \\tau\\}| / |B_c|` and recall
    :math:`R = |\\{p \\in B_r : d(p, B_c) \\le \\tau\\}| / |B_r|`.

    References
    ----------
    .. [1] G. Csurka, D. Larlus, F. Perronnin, "What is a good evaluation measure for
       semantic segmentation?", BMVC 2013.

    Examples
    --------
    >>> ref = np.zeros((6, 6), np.uint8); ref[1:5, 1:5] = 1
    >>> boundary_f1(ref, np.roll(ref, 1, axis=1), tolerance_px=1)
    1.0
    """
    require_label_image(reference, "reference")
    require_label_image(candidate, "candidate")
    require_same_shape(reference, candidate, "reference", "candidate")
    tol = _require_tolerance(tolerance_px)
    b_ref = instance_boundaries(reference)
    b_cand = instance_boundaries(candidate)
    n_ref = int(np.count_nonzero(b_ref))
    n_cand = int(np.count_nonzero(b_cand))
    if n_ref == 0 and n_cand == 0:
        return 1.0
    if n_ref == 0 or n_cand == 0:
        return 0.0
    near_ref = _within_distance(b_ref, tol)
    near_cand = _within_distance(b_cand, tol)
    precision = np.count_nonzero(near_ref & b_cand) / n_cand
    recall = np.count_nonzero(near_cand & b_ref) / n_ref
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def instance_boundaries(labels: np.ndarray) -> np.ndarray:
    """Inner boundary pixels of every instance of a label image.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        Instance label image; 0 is background.

    Returns
    -------
    ndarray of bool, shape (H, W)
        True at instance pixels that have a 4-connected neighbour with a different label.
    """
    require_label_image(labels, "labels")
    out = np.zeros(labels.shape, bool)
    dy = labels[1:, :] != labels[:-1, :]
    dx = labels[:, 1:] != labels[:, :-1]
    out[1:, :] |= dy
    out[:-1, :] |= dy
    out[:, 1:] |= dx
    out[:, :-1] |= dx
    out &= labels != 0
    return out


def _within_distance(mask: np.ndarray, tol: float) -> np.ndarray:
    """Pixels whose Euclidean distance to the nearest True pixel of ``mask`` is <= ``tol``."""
    if tol <= _DILATION_MAX_TOLERANCE:
        # a dilation by the digital disk gives the same set and is several times faster
        r = int(math.floor(tol))
        yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
        return ndi.binary_dilation(mask, structure=yy * yy + xx * xx <= tol * tol)
    return ndi.distance_transform_edt(~mask) <= tol


def _foreground(x: object, name: str) -> np.ndarray:
    if isinstance(x, np.ndarray) and x.dtype == np.bool_:
        if x.ndim != 2:
            raise ValueError(
                f"{name} must be a 2-D (H, W) mask, got a {x.ndim}-D array of shape {x.shape}"
            )
        return x
    return require_label_image(x, name) != 0


def _require_tolerance(value: object) -> float:
    if isinstance(value, bool | np.bool_) or not isinstance(value, Real):
        raise TypeError(f"tolerance_px must be a non-negative number of pixels, got {value!r}")
    tol = float(value)
    if not math.isfinite(tol) or tol < 0:
        raise ValueError(f"tolerance_px must be a finite number >= 0, got {tol!r}")
    return tol
