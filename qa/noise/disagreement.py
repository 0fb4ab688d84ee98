"""Cells where a model's prediction and the consensus disagree."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qa.metrics import instance_overlaps
from qa.noise.compare import compare_labels
from qa.noise.flags import FlagKind
from qa.noise.inputs import require_iou_threshold, require_label_image
from qa.noise.scores import BOUNDARY_IOU


@dataclass(frozen=True)
class ModelDisagreement:
    """One place where a model's prediction and the consensus disagree.

    Attributes
    ----------
    kind : FlagKind
        From the prediction's point of view: ``missed`` (a consensus cell the model did
        not predict), ``spurious`` (a predicted cell absent from the consensus),
        ``merged`` (one predicted cell over several consensus cells), ``split`` (one
        consensus cell predicted as several) or ``boundary`` (same cell, IoU below 0.7).
    score : float
        Severity 0..1: one minus the best IoU between the cells involved (for ``merged``
        and ``split``: of the predicted and consensus cell with the largest overlap);
        1.0 for a cell with no overlap at all.
    consensus_labels : tuple of int
        Consensus ids involved (empty for ``spurious``; two or more for ``merged``).
    predicted_labels : tuple of int
        Predicted ids involved (empty for ``missed``; two or more for ``split``).
    """

    kind: FlagKind
    score: float
    consensus_labels: tuple[int, ...]
    predicted_labels: tuple[int, ...]


def flag_model_disagreement(
    consensus_labels: np.ndarray, predicted_labels: np.ndarray, *, iou_threshold: float = 0.5
) -> list[ModelDisagreement]:
    """List the cells on which a model's prediction and the consensus disagree.

    Parameters
    ----------
    consensus_labels : ndarray of int, shape (H, W)
        Consensus instance labels (e.g. ``fuse(masks).labels``); 0 is background.
    predicted_labels : ndarray of int, shape (H, W)
        The model's instance labels for the same image.
    iou_threshold : float, keyword-only
        IoU for a match, in [0.5, 1).

    Returns
    -------
    list of ModelDisagreement
        Sorted by kind (in :class:`FlagKind` order), then descending score; empty when the
        two agree cell for cell (every pair matched with IoU >= 0.7).

    Raises
    ------
    TypeError, ValueError
        If an input is not a 2-D non-negative integer array, the shapes differ, or
        ``iou_threshold`` is out of range.

    Notes
    -----
    The cells are sorted as in :func:`qa.noise.compare.compare_labels` with the consensus
    as the reference. Unlike annotation flags there is no support to weigh: the consensus
    is taken as given, so high scores mark the cells worth a look (where a trained model
    may well be right and the consensus wrong).
    """
    require_label_image(consensus_labels, "consensus_labels")
    require_label_image(predicted_labels, "predicted_labels")
    if consensus_labels.shape != predicted_labels.shape:
        raise ValueError(
            f"consensus_labels has shape {consensus_labels.shape}, predicted_labels has "
            f"{predicted_labels.shape}"
        )
    require_iou_threshold(iou_threshold)
    cmp = compare_labels(consensus_labels, predicted_labels, iou_threshold=iou_threshold)
    ov = instance_overlaps(consensus_labels, predicted_labels)
    ids_r, ids_c = ov.labels_a, ov.labels_b
    best: dict[tuple[int, int], float] = {
        (int(ids_r[a]), int(ids_c[b])): float(iou)
        for (a, b), iou in zip(ov.pairs, ov.ious, strict=True)
    }
    best_r: dict[int, float] = {}
    best_c: dict[int, float] = {}
    for (r, c), iou in best.items():
        best_r[r] = max(best_r.get(r, 0.0), iou)
        best_c[c] = max(best_c.get(c, 0.0), iou)

    out = [ModelDisagreement(FlagKind.MISSED, 1.0 - best_r.get(int(r), 0.0), (int(r),), ())
           for r in cmp.missed]
    out += [ModelDisagreement(FlagKind.SPURIOUS, 1.0 - best_c.get(int(c), 0.0), (), (int(c),))
            for c in cmp.spurious]
    out += [ModelDisagreement(FlagKind.MERGED, 1.0 - best_c[c], refs, (c,))
            for c, refs in cmp.merged]
    out += [ModelDisagreement(FlagKind.SPLIT, 1.0 - best_r[r], (r,), parts)
            for r, parts in cmp.split]
    out += [ModelDisagreement(FlagKind.BOUNDARY, 1.0 - float(iou), (int(r),), (int(c),))
            for (r, c), iou in zip(cmp.matched, cmp.matched_ious, strict=True)
            if iou < BOUNDARY_IOU]
    out += [ModelDisagreement(FlagKind.BOUNDARY, 1.0 - float(iou), (int(r),), (int(c),))
            for (r, c), iou in zip(cmp.poor, cmp.poor_ious, strict=True)]
    order = list(FlagKind)
    out.sort(key=lambda d: (order.index(d.kind), -d.score, d.consensus_labels,
                            d.predicted_labels))
    return out
