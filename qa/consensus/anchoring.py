"""Absolute outline bias of each annotator, measured against gold truth.

Annotations alone only tell how annotators' outlines differ from each other, so
:func:`qa.consensus.fuse` can only centre outlines on some annotator-defined reference:
when most annotators dilate, the consensus dilates too. Gold images (images whose true
labels are known) tell where the true outline is. :func:`estimate_boundary_bias` measures
each annotator's systematic outline offset against the truth, with the same band statistic
the fusion uses between annotators, so the result can be passed to
``fuse(..., boundary_bias=...)`` to anchor the consensus outlines to the truth.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

from qa.metrics import instance_overlaps
from qa.metrics.validation import require_iou_threshold, require_label_image

from .clustering import sequential_labels
from .maps import cluster_maps, instance_maps
from .voting import outline_stats


def check_boundary_bias(boundary_bias, k: int) -> np.ndarray | None:
    """Validate ``fuse``'s ``boundary_bias``: K numbers in px, NaN = unknown; None if all NaN."""
    if boundary_bias is None:
        return None
    b = (np.asarray(boundary_bias, dtype=np.float64)
         if not isinstance(boundary_bias, str | bytes) else None)
    if b is None or b.ndim != 1 or b.shape[0] != k:
        raise ValueError(f"boundary_bias must be a 1-D sequence of {k} numbers in px (one per "
                         f"mask, NaN = unknown), got {boundary_bias!r}")
    if np.isinf(b).any():
        raise ValueError(f"boundary_bias must be finite or NaN (unknown), got {b.tolist()}")
    if np.isnan(b).all():
        return None
    return b


#: Fewest matched cells over the gold images for an annotator's bias to be estimated.
MIN_GOLD_CELLS = 5


def _check_inputs(annotations, truths) -> tuple[list[list[np.ndarray | None]], list[np.ndarray], int]:
    for name, value in (("annotations", annotations), ("truths", truths)):
        if isinstance(value, np.ndarray | str | bytes) or not isinstance(value, Sequence):
            raise TypeError(f"{name} must be a sequence with one entry per gold image, "
                            f"got {type(value).__name__}")
    if len(annotations) == 0:
        raise ValueError("annotations must hold at least one gold image, got none")
    if len(truths) != len(annotations):
        raise ValueError(f"truths must have one label image per gold image: "
                         f"{len(annotations)} images of annotations, {len(truths)} truths")
    k = None
    images, gts = [], []
    for m, (entry, truth) in enumerate(zip(annotations, truths, strict=True)):
        if isinstance(entry, np.ndarray | str | bytes) or not isinstance(entry, Sequence):
            raise TypeError(f"annotations[{m}] must be a sequence of label images (one per "
                            f"annotator, None where absent), got {type(entry).__name__}")
        if k is None:
            k = len(entry)
            if k == 0:
                raise ValueError("annotations[0] holds no annotator")
        elif len(entry) != k:
            raise ValueError(f"annotations[{m}] has {len(entry)} entries, expected {k} "
                             "(one per annotator, None where absent)")
        gt = require_label_image(truth, f"truths[{m}]")
        masks = []
        for j, x in enumerate(entry):
            if x is None:
                masks.append(None)
                continue
            x = require_label_image(x, f"annotations[{m}][{j}]")
            if x.shape != gt.shape:
                raise ValueError(f"annotations[{m}][{j}] has shape {x.shape}, but truths[{m}] "
                                 f"has shape {gt.shape}")
            masks.append(x)
        images.append(masks)
        gts.append(gt)
    return images, gts, int(k)


def gold_outline_offsets(annotations: Sequence[Sequence[np.ndarray | None]],
                         truths: Sequence[np.ndarray], *,
                         iou_threshold: float = 0.5) -> list[np.ndarray]:
    """Per-cell outline offsets (px, > 0 = drawn larger) of each annotator against the truth.

    Parameters
    ----------
    annotations, truths, iou_threshold
        As for :func:`estimate_boundary_bias`.

    Returns
    -------
    list of K ndarray of float64, shape (n_j,)
        For every annotator, one value per cell it drew that matches a true cell at
        ``iou_threshold``: the mean of ``sdf_annotator - sdf_truth`` (signed distance maps
        clipped to +-3 px, > 0 inside) over the band within 1 px of the two outlines' mean.
    """
    images, gts, k = _check_inputs(annotations, truths)
    iou_threshold = require_iou_threshold(iou_threshold)
    out: list[list[np.ndarray]] = [[] for _ in range(k)]
    for masks, gt in zip(images, gts, strict=True):
        seq_t, _ = sequential_labels(gt)
        boxes_t = ndi.find_objects(seq_t)
        if not boxes_t:
            continue
        inst_t = instance_maps(seq_t, boxes_t, gt.shape)
        for j, mask in enumerate(masks):
            if mask is None:
                continue
            seq, _ = sequential_labels(mask)
            boxes = ndi.find_objects(seq)
            if not boxes:
                continue
            ov = instance_overlaps(seq_t, seq)
            hit = ov.ious >= iou_threshold
            if not hit.any():
                continue
            pairs = np.stack([ov.labels_a[ov.pairs[hit, 0]], ov.labels_b[ov.pairs[hit, 1]]],
                             axis=1).astype(np.int64)
            maps = cluster_maps(pairs, [inst_t, instance_maps(seq, boxes, gt.shape)],
                                gt.shape)
            stats = outline_stats(maps, 2)
            if stats.pairs:
                # offsets are sdf_truth - sdf_annotator: the annotator's offset is minus that
                out[j].append(-stats.offsets[0])
    return [np.concatenate(o) if o else np.zeros(0) for o in out]


def estimate_boundary_bias(annotations: Sequence[Sequence[np.ndarray | None]],
                           truths: Sequence[np.ndarray], *, iou_threshold: float = 0.5,
                           min_cells: int = MIN_GOLD_CELLS) -> np.ndarray:
    """Each annotator's systematic outline offset against gold truth, in px.

    Parameters
    ----------
    annotations : sequence of sequence of (ndarray of int, shape (H, W)) or None
        For each gold image, one instance label image per annotator, always in the same
        annotator order (the order ``fuse`` gets the masks in); ``None`` where an annotator
        did not annotate that image.
    truths : sequence of ndarray of int, shape (H, W)
        The true label image of each gold image (same shape as its annotations).
    iou_threshold : float, keyword-only
        Smallest IoU for an annotator's cell to be compared with a true cell, in (0, 1].
    min_cells : int, keyword-only
        Fewest matched cells (over all gold images) needed to estimate an annotator's bias.

    Returns
    -------
    ndarray of float64, shape (K,)
        Median over the matched cells of the per-cell outline offset (see
        :func:`gold_outline_offsets`): > 0 = the annotator draws cells too large, < 0 too
        small. NaN for an annotator with fewer than ``min_cells`` matched cells. Pass it to
        :func:`qa.consensus.fuse` as ``boundary_bias=`` (NaN entries are estimated there
        from the image).

    Raises
    ------
    TypeError
        If the inputs are not sequences of integer label images.
    ValueError
        If there are no gold images, the per-image annotator counts or shapes differ, or an
        option is out of range.

    Notes
    -----
    The median of per-cell offsets ignores the cells a few gross errors (merges, splits
    that still match, shifted uploads) push far off, and is the same statistic
    :func:`qa.consensus.fuse` uses between pairs of annotators, so gold and image
    estimates are on one scale. A blunder-free annotator's per-cell offsets spread by its
    jitter (~0.3-0.8 px); with 20 cells the median is good to ~0.1 px.
    """
    if isinstance(min_cells, bool) or not isinstance(min_cells, int) or min_cells < 1:
        raise ValueError(f"min_cells must be an int >= 1, got {min_cells!r}")
    offsets = gold_outline_offsets(annotations, truths, iou_threshold=iou_threshold)
    return np.array([float(np.median(o)) if o.size >= min_cells else np.nan for o in offsets])
