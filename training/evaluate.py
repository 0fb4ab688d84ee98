"""Score a model's label images against ground truth, side by side with the base model.

Pure (numpy and :mod:`qa.metrics`); the result is a plain dict ready to be stored as JSON
with a model version, or printed with :func:`format_table`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from qa.metrics import DEFAULT_THRESHOLDS, match_at_thresholds

__all__ = ["evaluate", "format_table", "pooled_scores"]


def _image_scores(truth: np.ndarray, pred: np.ndarray, thresholds: Sequence[float]
                  ) -> dict[str, Any]:
    results = match_at_thresholds(truth, pred, thresholds=thresholds)
    at = results[0]
    return {
        "ap": [r.ap for r in results],
        "f1": [r.f1 for r in results],
        "tp": [r.tp for r in results],
        "fp": [r.fp for r in results],
        "fn": [r.fn for r in results],
        "iou_sum": [float(r.ious.sum()) for r in results],
        "mean_matched_iou": at.mean_matched_iou,
        "panoptic_quality": at.panoptic_quality,
        "n_true": at.n_reference,
        "n_pred": at.n_candidate,
    }


def pooled_scores(per_image: Sequence[Mapping[str, Any]], thresholds: Sequence[float]
                  ) -> dict[str, Any]:
    """Scores over all cells of all images, from summed TP/FP/FN and matched IoUs.

    Parameters
    ----------
    per_image : sequence of mapping
        The ``per_image`` entries of :func:`evaluate` (lists ``tp``, ``fp``, ``fn``,
        ``iou_sum``, one value per threshold).
    thresholds : sequence of float

    Returns
    -------
    dict
        ``ap`` and ``f1`` (lists over thresholds), ``mean_matched_iou`` and
        ``panoptic_quality`` at the first threshold, ``mean_image_ap`` (AP averaged over
        images, Cellpose's usual report), and the summed counts.

    Notes
    -----
    Pooled AP = ΣTP / (ΣTP + ΣFP + ΣFN); mean matched IoU = Σ IoU / ΣTP;
    PQ = Σ IoU / (ΣTP + ΣFP/2 + ΣFN/2).  Where nothing is predicted and nothing is true
    the ratios are 1.0, as in :class:`qa.metrics.MatchResult`; with no true positive but
    some cells they are 0.0.
    """
    k = len(thresholds)
    tp = np.array([sum(img["tp"][t] for img in per_image) for t in range(k)], dtype=float)
    fp = np.array([sum(img["fp"][t] for img in per_image) for t in range(k)], dtype=float)
    fn = np.array([sum(img["fn"][t] for img in per_image) for t in range(k)], dtype=float)
    iou = np.array([sum(img["iou_sum"][t] for img in per_image) for t in range(k)])

    def ratio(num, den, empty):
        return [float(n / d) if d > 0 else empty for n, d in zip(num, den, strict=True)]

    nothing = tp + fp + fn == 0
    ap = [1.0 if e else v for v, e in zip(ratio(tp, tp + fp + fn, 1.0), nothing, strict=True)]
    f1 = [1.0 if e else v for v, e in zip(ratio(2 * tp, 2 * tp + fp + fn, 1.0), nothing,
                                          strict=True)]
    if nothing[0]:
        mmi, pq = 1.0, 1.0
    else:
        mmi = float(iou[0] / tp[0]) if tp[0] > 0 else 0.0
        pq = float(iou[0] / (tp[0] + fp[0] / 2 + fn[0] / 2))
    return {
        "ap": ap, "f1": f1, "mean_matched_iou": mmi, "panoptic_quality": pq,
        "mean_image_ap": [float(np.mean([img["ap"][t] for img in per_image])) for t in range(k)],
        "tp": tp.astype(int).tolist(), "fp": fp.astype(int).tolist(),
        "fn": fn.astype(int).tolist(),
    }


def _check(name: str, labels: Sequence[np.ndarray], n: int) -> None:
    if len(labels) != n:
        raise ValueError(f"{name}: {len(labels)} label images for {n} ground-truth images")


def evaluate(ground_truth: Sequence[np.ndarray], predictions: Sequence[np.ndarray], *,
             base_predictions: Sequence[np.ndarray] | None = None,
             names: Sequence[str] | None = None,
             thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> dict[str, Any]:
    """Compare predicted label images with ground truth, per image and pooled.

    Parameters
    ----------
    ground_truth, predictions : sequence of ndarray of int, each (H, W)
        Instance label images (0 = background), paired by position; shapes must agree.
    base_predictions : sequence of ndarray of int, optional
        The base model's label images for the same images, scored the same way.
    names : sequence of str, optional
        Image names for the per-image rows (default ``"0"``, ``"1"``, ...).
    thresholds : sequence of float, default 0.50, 0.55, ..., 0.95
        IoU thresholds; ``mean_matched_iou`` and ``panoptic_quality`` use the first.

    Returns
    -------
    dict
        ``{"thresholds": [...], "n_images": n, "model": {"pooled": {...}, "per_image":
        [...]}, "base": same or None, "delta": {"ap", "f1", "mean_matched_iou",
        "panoptic_quality"} (model minus base, pooled) or None}``; every value is a
        float, int, str, list or dict.

    Raises
    ------
    ValueError
        Lengths differ, no images, or a pair of images differs in shape (from
        :mod:`qa.metrics`, naming the image).
    """
    n = len(ground_truth)
    if n == 0:
        raise ValueError("ground_truth: no images to evaluate")
    _check("predictions", predictions, n)
    if base_predictions is not None:
        _check("base_predictions", base_predictions, n)
    names = [str(i) for i in range(n)] if names is None else [str(s) for s in names]
    if len(names) != n:
        raise ValueError(f"names: {len(names)} names for {n} images")
    thresholds = [float(t) for t in thresholds]

    def score(preds):
        rows = []
        for name, truth, pred in zip(names, ground_truth, predictions if preds is None
                                     else preds, strict=True):
            try:
                rows.append({"image": name, **_image_scores(np.asarray(truth),
                                                            np.asarray(pred), thresholds)})
            except (TypeError, ValueError) as exc:
                raise ValueError(f"image {name}: {exc}") from exc
        return {"pooled": pooled_scores(rows, thresholds), "per_image": rows}

    model = score(None)
    base = None if base_predictions is None else score(base_predictions)
    delta = None
    if base is not None:
        m, b = model["pooled"], base["pooled"]
        delta = {
            "ap": [x - y for x, y in zip(m["ap"], b["ap"], strict=True)],
            "f1": [x - y for x, y in zip(m["f1"], b["f1"], strict=True)],
            "mean_matched_iou": m["mean_matched_iou"] - b["mean_matched_iou"],
            "panoptic_quality": m["panoptic_quality"] - b["panoptic_quality"],
        }
    return {"thresholds": thresholds, "n_images": n, "model": model, "base": base,
            "delta": delta}


def format_table(result: Mapping[str, Any]) -> str:
    """A markdown table of the pooled scores of :func:`evaluate` (model, base, delta)."""
    th = result["thresholds"]
    picks = [i for i, t in enumerate(th) if round(t, 2) in (0.5, 0.75, 0.9)] or [0]
    head = (["model"] + [f"AP@{th[i]:.2f}" for i in picks]
            + ["mean AP", f"F1@{th[0]:.2f}", "mean matched IoU", "PQ", "cells (true/pred)"])
    rows = []
    for key in ("model", "base"):
        if result.get(key) is None:
            continue
        p = result[key]["pooled"]
        n_true = sum(r["n_true"] for r in result[key]["per_image"])
        n_pred = sum(r["n_pred"] for r in result[key]["per_image"])
        rows.append([key] + [f"{p['ap'][i]:.3f}" for i in picks]
                    + [f"{np.mean(p['ap']):.3f}", f"{p['f1'][0]:.3f}",
                       f"{p['mean_matched_iou']:.3f}", f"{p['panoptic_quality']:.3f}",
                       f"{n_true}/{n_pred}"])
    if result.get("delta") is not None:
        d = result["delta"]
        rows.append(["delta"] + [f"{d['ap'][i]:+.3f}" for i in picks]
                    + [f"{np.mean(d['ap']):+.3f}", f"{d['f1'][0]:+.3f}",
                       f"{d['mean_matched_iou']:+.3f}", f"{d['panoptic_quality']:+.3f}", ""])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)
