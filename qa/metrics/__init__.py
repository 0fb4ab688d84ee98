"""Agreement metrics between instance label images (pure numpy/scipy; no Django).

Public API
----------
- :func:`instance_overlaps` / :class:`Overlaps`: sparse pixel overlaps of two label images.
- :func:`match_instances`, :func:`match_at_thresholds`, :func:`match_overlaps` /
  :class:`MatchResult`: one-to-one IoU matching with TP/FP/FN, precision, recall, F1,
  AP, mean matched IoU and panoptic quality (StarDist/Cellpose definitions).
- :func:`average_precision`, :func:`f1_scores`: the same at several thresholds.
"""

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

__all__ = [
    "DEFAULT_THRESHOLDS",
    "MatchResult",
    "Overlaps",
    "average_precision",
    "f1_scores",
    "instance_overlaps",
    "match_at_thresholds",
    "match_instances",
    "match_overlaps",
]
