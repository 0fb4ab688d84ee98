"""Per-cell noise flags: which cells of which annotation look wrong, and why."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from scipy import ndimage as ndi

from qa.consensus import prepare_masks
from qa.noise.compare import compare_labels, id_counts, sequential_labels
from qa.noise.doubt import (
    disputed_share,
    held_parts,
    missed_doubt,
    not_cell_likeness,
    one_cell_likeness,
)
from qa.noise.features import (
    Background,
    background_of,
    cell_features,
    interface_contrast,
    outlier_scores,
)
from qa.noise.inputs import (
    require_consensus,
    require_fraction,
    require_image,
    require_iou_threshold,
    require_masks,
    require_weights,
)
from qa.noise.reference import (
    Reference,
    leave_one_out,
    pairwise_overlaps,
    panel_weights,
    reference_from_consensus,
)
from qa.noise.scores import BOUNDARY_IOU
from qa.noise.undrawn import undrawn_cells

#: Interface contrast (:func:`qa.noise.features.interface_contrast`) from which the
#: image fully confirms a merge; below it a ``merged`` score is lowered, at most by half.
INTERFACE_SIGNAL = 0.3


class FlagKind(StrEnum):
    """What is wrong with a flagged cell (compares equal to its string value).

    - ``missed``: the others drew a cell this annotator has nothing for.
    - ``spurious``: this annotator drew a cell the others (mostly) did not.
    - ``merged``: one cell of this annotator covers two or more cells of the others.
    - ``split``: this annotator cut one cell of the others into two or more.
    - ``boundary``: the same cell, drawn with a badly shifted outline.
    - ``outlier``: a cell whose shape or brightness is unlike the other cells drawn on
      this image (isolation forest).
    """

    MISSED = "missed"
    SPURIOUS = "spurious"
    MERGED = "merged"
    SPLIT = "split"
    BOUNDARY = "boundary"
    OUTLIER = "outlier"


@dataclass(frozen=True)
class InstanceFlag:
    """One suspicious cell of one annotation.

    Attributes
    ----------
    annotator : int
        Index of the annotation in the ``masks`` passed in.
    kind : FlagKind
        See :class:`FlagKind`.
    score : float
        How sure the flag is, 0..1 (higher = surer):

        - ``missed``: ``s * (1 - u)`` with ``s`` the reliability-weighted share of the
          other annotators who drew the cell and ``u`` the doubt that it is a whole cell
          left out, the largest of: how much smaller it is than the cells the others
          agree on (1 at a quarter of their median area or less), the share of it under
          this annotator's cells over 1/2, and with an image how little edge it shows;
        - ``split``: the share ``s`` of the others who drew the cell;
        - ``merged``: the second largest of ``s * (1 - u)`` over the cells merged, with
          ``u`` how much smaller the cell is than those the others agree on (how sure it
          is that at least two whole cells the others drew were merged: a small part is
          more likely a split by one of the others); with an image, times
          ``(1 + min(1, x / 0.3)) / 2`` with ``x`` the interface contrast where the two
          best supported of them meet (:func:`qa.noise.features.interface_contrast`):
          a cut through one cell shows nothing in the image there; always times one
          minus the share of the others who drew those two as one cell
          (:func:`qa.noise.doubt.disputed_share`) and one minus how much the cell looks
          like a single cell, convex and round (:func:`qa.noise.doubt.one_cell_likeness`).
          Only parts of which some member, as drawn, lies mostly inside the cell count
          (:func:`qa.noise.doubt.held_parts`);
        - ``spurious``: ``1 - (1 - u) * (1 + s) / 2`` with ``s`` (< 1/2) the share of the
          others who drew something matching the cell (0 when nobody did) and ``u`` in
          0..1 how little it looks like the cells the others agree on: far smaller than
          them, or (with an image) no signal above the noise around it. A cell nobody else
          drew that looks like a cell scores 0.5; one that looks like no cell scores 1;
        - ``boundary``: one minus the IoU of the cell with the others' cell;
        - ``outlier``: the isolation-forest anomaly score (about 0.5 ordinary, towards 1
          isolated).
    labels : tuple of int
        This annotator's label ids involved: empty for ``missed``, two or more for
        ``split``, one otherwise.
    others : tuple of (int, int)
        ``(annotator, label id)`` of the other annotators' cells behind the flag, sorted:
        the cell(s) that were missed, merged, split or drawn with another outline, or that
        partly confirm a ``spurious`` cell; empty for ``outlier`` and for unconfirmed
        ``spurious`` cells and for ``missed`` cells found in the image alone.
    where : (int, int) or None
        ``(row, column)`` of a pixel inside a ``missed`` cell that no annotator drew and
        the image shows (:mod:`qa.noise.undrawn`; ``others`` is empty then); None for
        every other flag.
    """

    annotator: int
    kind: FlagKind
    score: float
    labels: tuple[int, ...]
    others: tuple[tuple[int, int], ...]
    where: tuple[int, int] | None = None


def flag_instances(
    masks: Sequence[np.ndarray],
    *,
    image: np.ndarray | None = None,
    consensus: object | None = None,
    weights: Sequence[float] | np.ndarray | None = None,
    iou_threshold: float = 0.5,
    outlier_contamination: float = 0.02,
    min_score: float = 0.25,
    seed: int = 0,
    image_evidence: bool = True,
) -> list[InstanceFlag]:
    """Flag the cells of every annotation that disagree with the other annotators.

    Parameters
    ----------
    masks : sequence of ndarray of int, shape (H, W)
        k >= 2 instance label images of one image, one per annotator; 0 is background.
    image : ndarray, shape (H, W) or (H, W, C), keyword-only, optional
        The intensity image; adds mean intensity to the outlier features and lets a
        ``spurious`` cell be judged by whether it shows any signal.
    consensus : qa.consensus.Consensus, keyword-only, optional
        A consensus of exactly these ``masks`` (``fuse(masks)``). When given, every
        annotation is compared with its label image, and a cell's support counts only the
        *other* annotators (from ``consensus.members``). By default each annotation is
        compared with the fused annotations of the others (leave-one-out).
    weights : array_like of float, shape (k,), keyword-only, optional
        Per-annotator reliabilities in (0, 1]; default: each annotator's mean F1 against
        the others on this image.
    iou_threshold : float, keyword-only
        IoU for matching, in [0.5, 1).
    outlier_contamination : float, keyword-only
        Expected share of outlier cells, in (0, 0.5].
    min_score : float, keyword-only
        Flags scoring below this are left out, in [0, 1]. The default keeps a cell drawn
        by one of four equally reliable others as ``missed``; 0 lists every candidate
        (to trace a precision-recall curve), 0.5 only what most of the others support.
    seed : int, keyword-only
        Seed of the isolation forest.
    image_evidence : bool, keyword-only
        With an image, also flag as ``missed``, for every annotator, the cell-like
        regions of the image that no annotator drew (:func:`qa.noise.undrawn.undrawn_cells`;
        such flags have empty ``others`` and carry ``where``). False leaves them out.

    Returns
    -------
    list of InstanceFlag
        Sorted by annotator, kind (in :class:`FlagKind` order), then descending score.
        A cell can carry an ``outlier`` flag as well as one of the others.

    Raises
    ------
    TypeError, ValueError
        On malformed masks, image, consensus, weights or options.

    Notes
    -----
    For annotation ``i`` the reference cells, each with the reliability-weighted share
    ``s`` of the other annotators who drew it, are sorted against the cells of ``i`` as
    in :func:`qa.noise.compare.compare_labels`. Flags:

    - ``missed``: reference cell with ``s > 0`` and nothing of ``i`` matched to it,
      scored ``s`` times one minus the doubt that it is a whole cell ``i`` left out:
      far smaller than the cells the others agree on, half or more of it under cells
      of ``i`` (a piece of a cell ``i`` cut differently), or, with an image, drawn on
      plain background (outline edge strength below 2; the cells left out are often
      faint, so this threshold is lower than for ``spurious``);
    - ``merged``: a cell of ``i`` holds more than half of each of two or more
      reference cells (any ``s > 0``); with an image, a merge whose cut shows no change
      of brightness counts half; a merge the other annotators dispute (they drew the
      parts as one cell) or a convex round "merged" cell counts less;
    - ``split``: the reference cell cut up has ``s >= 1/2``;
    - ``spurious``: a cell of ``i`` with no reference counterpart, or matched to a
      reference cell with ``s < 1/2``; its score rises towards 1 for a cell a quarter of
      the typical area or smaller (debris) and, with an image, for a cell with no signal
      above the background noise around it (a cell drawn on nothing);
    - ``boundary``: matched with IoU below 0.7, or paired below the matching threshold,
      with a reference cell of ``s >= 1/2``;
    - ``missed`` without ``others`` (with an image and ``image_evidence``): a region
      standing out from its local background like the drawn cells, about their size and
      at least 3 px from every drawn cell, flagged for every annotator; scored by its
      contrast and size (:class:`qa.noise.undrawn.UndrawnCell`);
    - ``outlier``: isolation forest (scikit-learn, seeded) over log area, eccentricity,
      solidity and mean intensity of all cells of all annotations (skipped below 30 cells).

    References
    ----------
    Liu, Ting & Zhou (2008), Isolation Forest, ICDM.
    """
    masks = require_masks(masks)
    k = len(masks)
    require_iou_threshold(iou_threshold)
    contamination = require_fraction(outlier_contamination, "outlier_contamination", high=0.5)
    if contamination <= 0:
        raise ValueError("outlier_contamination must be > 0")
    min_score = require_fraction(min_score, "min_score")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if not isinstance(image_evidence, (bool, np.bool_)):
        raise TypeError(f"image_evidence must be a bool, got {type(image_evidence).__name__}")
    if image is not None:
        image = require_image(image, masks[0].shape)
    if consensus is not None:
        require_consensus(consensus, masks)
    overlaps = pairwise_overlaps(masks)
    w, outliers = panel_weights(
        masks, None if weights is None else require_weights(weights, k),
        iou_threshold=iou_threshold, overlaps=overlaps,
    )
    prepared = None if consensus is not None else prepare_masks(masks, overlaps=overlaps)

    foreground = np.zeros(masks[0].shape, dtype=bool)
    for m in masks:
        foreground |= m != 0
    background = None if image is None else background_of(image, foreground)
    # pixel count of every id of every mask, counted once for all annotators' doubts
    areas = [id_counts(m) for m in masks]
    flags: list[InstanceFlag] = []
    for i in range(k):
        if consensus is None:
            ref = leave_one_out(masks, i, w, iou_threshold=iou_threshold, outliers=outliers,
                                prepared=prepared)
        else:
            ref = reference_from_consensus(
                np.asarray(consensus.labels), np.asarray(consensus.members), w, annotator=i
            )
        flags.extend(_disagreement_flags(i, masks, ref, iou_threshold=iou_threshold,
                                         image=image, foreground=foreground,
                                         background=background, areas=areas))
    if background is not None and image_evidence:
        flags.extend(
            InstanceFlag(i, FlagKind.MISSED, cell.score, (), (), where=cell.where)
            for cell in undrawn_cells(background.gray, masks) for i in range(k)
        )
    flags.extend(_outlier_flags(masks, image, contamination=contamination, seed=int(seed)))
    flags = [f for f in flags if f.score >= min_score]
    order = list(FlagKind)
    flags.sort(key=lambda f: (f.annotator, order.index(f.kind), -f.score, f.labels, f.others))
    return flags


def _disagreement_flags(
    i: int, masks: list[np.ndarray], ref: Reference, *, iou_threshold: float,
    image: np.ndarray | None, foreground: np.ndarray, background: Background | None,
    areas: list[np.ndarray | None],
) -> list[InstanceFlag]:
    mask = masks[i]
    cmp = compare_labels(ref.labels, mask, iou_threshold=iou_threshold)
    out: list[InstanceFlag] = []
    unconfirmed = [int(c) for c in cmp.spurious]
    for pairs in (cmp.matched, cmp.poor):
        unconfirmed += [int(c) for r, c in pairs if ref.share_of([r])[0] < 0.5]
    not_cell = not_cell_likeness(mask, unconfirmed, ref, image, foreground)

    def spurious_score(c: int, s: float) -> float:
        # looking like no cell at all outweighs the others' partial support
        return 1.0 - (1.0 - not_cell[int(c)]) * (1.0 + s) / 2.0

    def add(kind: FlagKind, score: float, labels, ref_ids) -> None:
        out.append(InstanceFlag(
            annotator=i, kind=kind, score=float(np.clip(score, 0.0, 1.0)),
            labels=tuple(int(v) for v in labels), others=ref.evidence(ref_ids),
        ))

    missed = [int(r) for r in cmp.missed if ref.share_of([r])[0] > 0]
    doubts = missed_doubt(mask, ref, missed, masks, image=image, foreground=foreground,
                          background=background, areas=areas)
    for r, doubt in doubts.items():
        add(FlagKind.MISSED, float(ref.share_of([r])[0]) * (1.0 - doubt), (), [r])
    boxes: dict[int, tuple[slice, slice]] = {}
    if cmp.merged:
        seq, present = sequential_labels(mask)
        boxes = {int(cid): _padded(box, mask.shape, 2)
                 for cid, box in zip(present, ndi.find_objects(seq), strict=False)
                 if box is not None}
    for c, refs in cmp.merged:
        s = ref.share_of(list(refs))
        real = [r for r, v in zip(refs, s, strict=True) if v > 0]
        if len(real) >= 2:
            real = held_parts(mask == c, ref, real, masks, boxes[int(c)], areas=areas)
        if len(real) >= 2:
            # a half-size part the others drew is more likely a split of theirs
            u = not_cell_likeness(ref.labels, real, ref, None, foreground)
            support = np.array([ref.share_of([r])[0] * (1.0 - u[r]) for r in real])
            score = float(np.sort(support)[-2])
            a, b = (real[n] for n in np.argsort(-support, kind="stable")[:2])
            score *= 1.0 - disputed_share(i, ref, (a, b), masks, boxes[int(c)])
            score *= 1.0 - one_cell_likeness(mask[boxes[int(c)]] == c)
            if background is not None:
                seen = interface_contrast(mask, c, ref.labels, (a, b), background,
                                          box=boxes.get(int(c)))
                if np.isfinite(seen):
                    score *= 0.5 + 0.5 * min(seen / INTERFACE_SIGNAL, 1.0)
            add(FlagKind.MERGED, score, (c,), real)
    for r, parts in cmp.split:
        s = float(ref.share_of([r])[0])
        if s >= 0.5:
            add(FlagKind.SPLIT, s, parts, [r])
    for c in cmp.spurious:
        add(FlagKind.SPURIOUS, spurious_score(c, 0.0), (c,), [])
    for (r, c), iou in zip(cmp.matched, cmp.matched_ious, strict=True):
        s = float(ref.share_of([r])[0])
        if s < 0.5:
            add(FlagKind.SPURIOUS, spurious_score(c, s), (c,), [r])
        elif iou < BOUNDARY_IOU:
            add(FlagKind.BOUNDARY, 1.0 - iou, (c,), [r])
    for (r, c), iou in zip(cmp.poor, cmp.poor_ious, strict=True):
        s = float(ref.share_of([r])[0])
        if s < 0.5:
            add(FlagKind.SPURIOUS, spurious_score(c, s), (c,), [r])
        else:
            add(FlagKind.BOUNDARY, 1.0 - iou, (c,), [r])
    return out


def _padded(box: tuple[slice, slice], shape: tuple[int, ...], pad: int) -> tuple[slice, slice]:
    return (slice(max(box[0].start - pad, 0), min(box[0].stop + pad, shape[0])),
            slice(max(box[1].start - pad, 0), min(box[1].stop + pad, shape[1])))


def _outlier_flags(
    masks: list[np.ndarray], image: np.ndarray | None, *, contamination: float, seed: int
) -> list[InstanceFlag]:
    feats = [cell_features(m, image) for m in masks]
    values = np.concatenate([f.values for f in feats], axis=0)
    owner = np.concatenate([np.full(f.labels.size, j) for j, f in enumerate(feats)])
    labels = np.concatenate([f.labels for f in feats])
    is_out, score = outlier_scores(values, contamination=contamination, seed=seed)
    return [
        InstanceFlag(int(owner[n]), FlagKind.OUTLIER, float(score[n]), (int(labels[n]),), ())
        for n in np.flatnonzero(is_out)
    ]
