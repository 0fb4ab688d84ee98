"""Rank images for annotation by how unsure a model is, or how much it disagrees with people.

Pure (numpy).  Unlabelled images are ranked by the model's uncertainty: the mean binary
entropy of Cellpose's cell probability over the pixels near the foreground, plus its
flow error (how far the predicted flows are from the flows of the masks they produce), or
one minus SAM's predicted IoU.  Labelled images are ranked by disagreement between the
model's prediction and the consensus (1 - F1 at IoU 0.5).  Higher score = annotate first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Ranking:
    """Images in the order to annotate them.

    Attributes
    ----------
    order : ndarray of int, shape (n,)
        Indices into the inputs, most informative first (ties keep input order).
    scores : ndarray of float64, shape (n,)
        The score of each input (same order as the inputs, not as ``order``).
    """

    order: np.ndarray
    scores: np.ndarray


def _rank(scores: np.ndarray) -> Ranking:
    scores = np.asarray(scores, dtype=np.float64)
    return Ranking(order=np.argsort(-scores, kind="stable"), scores=scores)


def probability_entropy(cell_probability: np.ndarray, *, logits: bool = True,
                        band: float = 0.05) -> float:
    """Mean binary entropy (bits) of a cell-probability map over its uncertain region.

    Parameters
    ----------
    cell_probability : ndarray of float, shape (H, W)
        Cellpose's cell-probability output (logits by default) or probabilities in [0, 1].
    logits : bool
        Whether the map holds logits (Cellpose's ``flows[2]``).
    band : float
        Pixels with p in [band, 1 - band] or next to them count; a confident background
        does not dilute the score of a small image region.  All pixels when none do.

    Returns
    -------
    float in [0, 1]
    """
    x = np.asarray(cell_probability, dtype=np.float64)
    if x.ndim != 2 or x.size == 0:
        raise ValueError(f"cell_probability must be a non-empty (H, W) array, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("cell_probability has non-finite values")
    p = 1.0 / (1.0 + np.exp(-x)) if logits else x
    if not logits and (p.min() < 0 or p.max() > 1):
        raise ValueError("probabilities must lie in [0, 1]")
    p = np.clip(p, 1e-12, 1 - 1e-12)
    h = -(p * np.log2(p) + (1 - p) * np.log2(1 - p))
    region = (p >= band) & (p <= 1 - band)
    return float(h[region].mean() if region.any() else h.mean())


def rank_unlabelled(*, entropies: Sequence[float], flow_errors: Sequence[float] | None = None,
                    flow_weight: float = 1.0) -> Ranking:
    """Rank unlabelled images by Cellpose uncertainty: entropy + ``flow_weight`` x flow error.

    Parameters
    ----------
    entropies : sequence of float, (n,)
        :func:`probability_entropy` of each image.
    flow_errors : sequence of float, (n,), optional
        Cellpose's flow error of each image (mean over its cells; 0 when none), scaled by
        its maximum so both terms lie in [0, 1].
    """
    e = np.asarray(entropies, dtype=np.float64)
    if e.ndim != 1 or not np.isfinite(e).all():
        raise ValueError("entropies must be a 1-D sequence of finite numbers")
    score = e.copy()
    if flow_errors is not None:
        f = np.asarray(flow_errors, dtype=np.float64)
        if f.shape != e.shape or not np.isfinite(f).all() or (f < 0).any():
            raise ValueError(f"flow_errors must be {len(e)} finite numbers >= 0")
        if f.max(initial=0) > 0:
            score = score + flow_weight * f / f.max()
    return _rank(score)


def rank_by_predicted_iou(predicted_ious: Sequence[Sequence[float]]) -> Ranking:
    """Rank images by SAM's doubt: 1 - mean predicted IoU of the masks it proposed.

    An image where SAM proposed nothing scores 1 (nothing is known about it).
    """
    scores = []
    for i, ious in enumerate(predicted_ious):
        a = np.asarray(ious, dtype=np.float64).reshape(-1)
        if not np.isfinite(a).all():
            raise ValueError(f"predicted_ious[{i}] has non-finite values")
        scores.append(1.0 if a.size == 0 else float(1.0 - np.clip(a, 0, 1).mean()))
    return _rank(np.asarray(scores))


def rank_labelled(*, model_labels: Sequence[np.ndarray], consensus_labels: Sequence[np.ndarray],
                  iou_threshold: float = 0.5) -> Ranking:
    """Rank labelled images by model-consensus disagreement, 1 - F1 at ``iou_threshold``.

    Parameters
    ----------
    model_labels, consensus_labels : sequences of ndarray of int, each (H, W)
        Instance label images (0 = background), paired by position.
    """
    from qa.metrics import match_instances

    if len(model_labels) != len(consensus_labels):
        raise ValueError(f"{len(model_labels)} model label images but {len(consensus_labels)} consensus ones")
    scores = [1.0 - match_instances(np.asarray(c), np.asarray(m), iou_threshold=iou_threshold).f1
              for m, c in zip(model_labels, consensus_labels, strict=True)]
    return _rank(np.asarray(scores))
