"""Agreement between every pair of annotators of one image."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from qa.metrics.matching import _match
from qa.metrics.overlaps import _overlaps_unchecked
from qa.metrics.validation import require_iou_threshold, require_label_image

__all__ = ["PairwiseAgreement", "pairwise_agreement"]


@dataclass(frozen=True)
class PairwiseAgreement:
    """Instance agreement between every pair of ``k`` annotations of one image.

    Attributes
    ----------
    f1 : ndarray of float64, shape (k, k)
        Instance F1 at ``iou_threshold`` between annotations ``i`` and ``j``; symmetric, 1.0
        on the diagonal.
    mean_iou : ndarray of float64, shape (k, k)
        Mean IoU of the matched pairs (0.0 when none match); symmetric, 1.0 on the diagonal.
    ap : ndarray of float64, shape (k, k)
        ``TP / (TP + FP + FN)`` at ``iou_threshold``; symmetric, 1.0 on the diagonal.
    n_instances : ndarray of int64, shape (k,)
        Number of instances in each annotation.
    iou_threshold : float
        The IoU threshold used for matching.
    """

    f1: np.ndarray
    mean_iou: np.ndarray
    ap: np.ndarray
    n_instances: np.ndarray
    iou_threshold: float


def pairwise_agreement(
    masks: Sequence[np.ndarray], *, iou_threshold: float = 0.5
) -> PairwiseAgreement:
    """Match every pair of annotations of one image and tabulate F1, mean IoU and AP.

    Parameters
    ----------
    masks : sequence of ndarray of int, each shape (H, W)
        ``k >= 1`` instance label images of the same image (one per annotator); 0 is
        background, ids need not be contiguous or shared between annotators.
    iou_threshold : float, default 0.5
        Matching threshold, in (0, 1] (see :func:`qa.metrics.match_instances`).

    Returns
    -------
    PairwiseAgreement
        ``k x k`` symmetric matrices with 1.0 on the diagonal.

    Raises
    ------
    TypeError
        If ``masks`` is not a sequence of integer ndarrays, or the threshold is not a number.
    ValueError
        If ``masks`` is empty, a mask is not 2-D or has negative ids, the shapes differ, or
        the threshold is outside (0, 1].

    Notes
    -----
    Entry ``(i, j)`` is ``match_instances(masks[i], masks[j])`` for ``i < j``, mirrored to
    ``(j, i)``: F1, AP and mean matched IoU do not change when reference and candidate are
    swapped (FP and FN swap). Two annotations that both contain no cell agree perfectly (1.0).

    Examples
    --------
    >>> a = np.array([[1, 1, 0, 2]])
    >>> b = np.array([[3, 3, 0, 0]])
    >>> pairwise_agreement([a, b]).f1.tolist()  # 1 TP, 1 FN -> 2 / 3
    [[1.0, 0.6666666666666666], [0.6666666666666666, 1.0]]
    """
    if isinstance(masks, np.ndarray) and masks.ndim != 3:
        raise ValueError(
            f"masks given as one array must be a (k, H, W) stack, got shape {masks.shape}"
        )
    if not isinstance(masks, Sequence | np.ndarray):
        raise TypeError(
            f"masks must be a sequence of (H, W) label images, got {type(masks).__name__}"
        )
    masks = list(masks)
    if not masks:
        raise ValueError("masks must hold at least one label image")
    threshold = require_iou_threshold(iou_threshold)
    for i, m in enumerate(masks):
        require_label_image(m, f"masks[{i}]")
        if m.shape != masks[0].shape:
            raise ValueError(
                f"all masks must have the same shape, masks[0] is {masks[0].shape} but "
                f"masks[{i}] is {m.shape}"
            )
    k = len(masks)
    f1 = np.eye(k)
    mean_iou = np.eye(k)
    ap = np.eye(k)
    n_instances = np.zeros(k, np.int64)
    for i in range(k):
        for j in range(i + 1, k):
            result = _match(_overlaps_unchecked(masks[i], masks[j]), threshold)
            f1[i, j] = f1[j, i] = result.f1
            mean_iou[i, j] = mean_iou[j, i] = result.mean_matched_iou
            ap[i, j] = ap[j, i] = result.ap
            n_instances[i] = result.n_reference
            n_instances[j] = result.n_candidate
    if k == 1:
        n_instances[0] = np.count_nonzero(np.unique(masks[0]))
    for arr in (f1, mean_iou, ap, n_instances):
        arr.flags.writeable = False
    return PairwiseAgreement(
        f1=f1, mean_iou=mean_iou, ap=ap, n_instances=n_instances, iou_threshold=threshold
    )
