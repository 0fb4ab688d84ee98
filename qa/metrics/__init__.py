"""Agreement metrics between instance label images (pure numpy/scipy; no Django).

A label image is a 2-D integer array, 0 = background, any other value = one instance (ids need
not be contiguous). Every function validates its inputs first and raises ``TypeError`` for a
wrong type or dtype and ``ValueError`` for a wrong shape or value.

Public API
----------
Overlaps
    :func:`instance_overlaps` -> :class:`Overlaps`: sparse pixel overlaps and IoUs of every
    pair of touching instances of two images (shared by matching, consensus and noise code).
Matching
    :func:`match_instances`, :func:`match_at_thresholds`, :func:`match_overlaps` ->
    :class:`MatchResult`: one-to-one IoU matching with TP/FP/FN, precision, recall, F1,
    AP = TP/(TP+FP+FN), mean matched IoU and panoptic quality, equal to StarDist's and
    Cellpose's; :func:`average_precision` and :func:`f1_scores` at several thresholds.
Segmentation scores
    :func:`pixel_dice`, :func:`aggregated_jaccard_index` (Kumar et al. 2017),
    :func:`boundary_f1`, :func:`instance_boundaries`.
Annotators
    :func:`pairwise_agreement` -> :class:`PairwiseAgreement`: F1, mean IoU and AP matrices.
"""

from qa.metrics.agreement import PairwiseAgreement, pairwise_agreement
from qa.metrics.matching import (
    DEFAULT_THRESHOLDS,
    MatchResult,
    average_precision,
    f1_scores,
    match_at_thresholds,
    match_instances,
    match_overlaps,
)
from qa.metrics.overlaps import Overlaps, instance_overlaps
from qa.metrics.segmentation import (
    aggregated_jaccard_index,
    boundary_f1,
    instance_boundaries,
    pixel_dice,
)

__all__ = [
    "DEFAULT_THRESHOLDS",
    "MatchResult",
    "Overlaps",
    "PairwiseAgreement",
    "aggregated_jaccard_index",
    "average_precision",
    "boundary_f1",
    "f1_scores",
    "instance_boundaries",
    "instance_overlaps",
    "match_at_thresholds",
    "match_instances",
    "match_overlaps",
    "pairwise_agreement",
    "pixel_dice",
]
