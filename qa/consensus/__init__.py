"""Multi-annotator consensus of instance masks (pure numpy/scipy; no Django).

Public API
----------
- :func:`fuse` -> :class:`Consensus`: cluster instances across annotators by IoU, judge
  clusters with a per-image Dawid–Skene model, correct each annotator's boundary bias,
  vote pixels with signed distances, keep touching cells apart.
- :func:`majority_vote`: the per-pixel majority + connected components baseline.
- :func:`estimate_boundary_bias`: each annotator's outline bias (px) against gold truth,
  for ``fuse(..., boundary_bias=...)``.
- :func:`prepare_masks` -> :class:`PreparedMasks`: the per-annotator work of ``fuse`` done
  once, for several fusions of the same annotations or their subsets (leave-one-out).
"""

from .anchoring import estimate_boundary_bias, gold_outline_offsets
from .fusion import Consensus, fuse, majority_vote
from .prepared import PreparedMasks, prepare_masks

__all__ = ["Consensus", "PreparedMasks", "estimate_boundary_bias", "fuse",
           "gold_outline_offsets", "majority_vote", "prepare_masks"]
