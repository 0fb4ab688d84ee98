"""What a model is unsure of in each image: the raw signals active learning ranks by.

Cellpose gives a cell-probability map (its entropy says where the net hesitates between
cell and background) and flows (their disagreement with the flows of the masks they
produce, Cellpose's own quality check, says where cells were assembled badly).  SAM
gives a predicted IoU per mask.  These functions run a weights file once per image and
return those signals with the label image, for :mod:`training.active_learning` to score.
torch is imported inside functions only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class CellposeSignals:
    """One image's Cellpose output for uncertainty scoring.

    Attributes
    ----------
    labels : ndarray of uint16 or uint32, shape (H, W)
        The predicted instances (0 = background).
    cell_probability : ndarray of float32, shape (H, W)
        Cell-probability logits (Cellpose's ``flows[2]``).
    flow_error : float
        Mean over predicted cells of Cellpose's flow error (0.0 when no cell was found).
    """

    labels: np.ndarray
    cell_probability: np.ndarray
    flow_error: float


def cellpose_signals(images: Sequence[np.ndarray], *, weights: str | Path,
                     channels: tuple[int, int] = (0, 0), channel_axis: int | None = None,
                     tile_size: int = 224, device: str = "auto",
                     diam_mean: float | None = None) -> list[CellposeSignals]:
    """Run a Cellpose 3 weights file and keep its probability map and flow error.

    Parameters are those of :func:`training.backbones.cellpose.predict` (at the net's
    training diameter).

    Notes
    -----
    The flow error of a cell is the mean squared difference, over its pixels, between
    the flows the net predicted (divided by 5, as Cellpose scales them) and the flows
    recomputed from the cell's mask (``cellpose.metrics.flow_error``).
    """
    from cellpose import metrics

    from training.backbones.base import image_hw
    from training.backbones.cellpose import _as_label_image, load_model

    model = load_model(weights, device=device, diam_mean=diam_mean)
    out = []
    for img in images:
        shape = image_hw(np.asarray(img))
        masks, flows, _ = model.eval(np.asarray(img), channels=list(channels), channel_axis=channel_axis,
                                     diameter=None, bsize=tile_size)
        labels = _as_label_image(masks, shape)
        prob = np.asarray(flows[2], dtype=np.float32).reshape(shape)
        error = 0.0
        if labels.max() > 0:
            errors = metrics.flow_error(labels.astype(np.int32), np.asarray(flows[1]).reshape(2, *shape))[0]
            error = float(np.mean(errors)) if len(errors) else 0.0
        out.append(CellposeSignals(labels=labels, cell_probability=prob, flow_error=error))
    return out


def sam_predicted_ious(images: Sequence[np.ndarray], *, weights: str | Path, points_per_side: int = 8,
                       channels: tuple[int, ...] | None = None, device: str = "auto") -> list[np.ndarray]:
    """SAM's predicted IoU of its best mask for each point of a grid, per image.

    Returns
    -------
    list of ndarray of float, each (k,)
        One value per grid point whose best mask is not empty (k <= points_per_side²).
    """
    import torch

    from training.backbones.sam import load_model
    from training.backbones.sam_model import decode, embed

    sam = load_model(weights, device=device)
    out = []
    for emb, input_size, (h, w) in embed(sam, images, channels, sam.device):
        g = (np.arange(points_per_side) + 0.5) / points_per_side
        pts = np.stack(np.meshgrid(g * w, g * h), -1).reshape(-1, 1, 2)
        with torch.no_grad():
            logits, iou = decode(sam, emb, input_size, (h, w), multimask=True, points=pts,
                                 labels=np.ones(pts.shape[:2]))
        best = iou.argmax(1)
        rows = torch.arange(len(best))
        nonempty = (logits[rows, best] > sam.mask_threshold).flatten(1).any(1)
        out.append(iou[rows, best][nonempty].cpu().numpy().astype(np.float64))
    return out
