"""How much to doubt that a disagreement between annotators is a real error.

A cell the others drew and this annotator did not is not always a cell it *missed*: it
may be a piece of a cell it cut differently, a blob drawn on plain background, or debris
it left out on purpose. A cell only this annotator drew is not always *spurious* when it
looks like the cells everyone drew. Each doubt is in 0..1 and lowers a flag's score by
the factor ``1 - doubt``.
"""

from __future__ import annotations

import numpy as np
from skimage.measure import regionprops

from qa.noise.compare import id_counts, label_areas, present_ids, sequential_labels
from qa.noise.features import Background, edge_strength
from qa.noise.reference import Reference
from qa.noise.scores import SURE_SHARE

#: Edge strength along a cell's outline (relative to the background, see
#: :func:`qa.noise.features.edge_strength`) from which a cell counts as showing in the
#: image; at 1 (plain background) it counts as drawn on nothing.
EDGE_SIGNAL = 2.5

#: The same for a cell another annotator drew and this one left out. Lower than
#: :data:`EDGE_SIGNAL` because the cells left out are often the faint ones; a blob drawn
#: on plain background still scores about 1.
EDGE_SIGNAL_MISSED = 2.0

#: A reference cell of which this share of the pixels lies under cells of the annotator
#: being judged is not a cell it left out (it is a piece of one it drew otherwise, e.g.
#: another annotator's split half or outline); the ``missed`` score falls linearly to 0 there.
COVERED = 0.5

#: Relative size (a cell's area over the median area of the cells its annotator drew)
#: below which a cell this annotator left out starts to count as small, and at which it
#: is fully small: debris is a fraction of a cell's size (measured on simulated data:
#: 90 % of the debris other annotators drew was below 0.53, 95 % of the cells really
#: missed above 0.49).
DEBRIS_AREA = (0.35, 0.6)

#: Contrast over the drawn cells' median contrast from which a small cell starts to
#: count as plain, and at which it fully does. The cells annotators miss are mostly the
#: faint ones (median 0.29); debris stands out like the cells (median 0.85).
PLAIN = (0.4, 0.7)

#: Contrast over the drawn cells' median contrast below which a cell the others drew
#: starts to count as drawn on blank background, and at which it fully does (where the
#: drawn cells show contrast at all). The faintest cells really missed on simulated
#: fluorescence and cytoplasm images had 0.1 or more; blobs invented on background 0.
BLANK = (0.05, 0.1)


def typical_area(ref: Reference) -> float:
    """Median area of the reference cells the others agree on (share >= SURE_SHARE); 0 if none."""
    sure = ref.ids[ref.share >= SURE_SHARE]
    if sure.size == 0:
        return 0.0
    return float(np.median(ref.area_of(sure)))


def relative_contrast(
    labels: np.ndarray, ids: np.ndarray, masks: list[np.ndarray], background: Background
) -> np.ndarray:
    """Each cell's mean contrast over the median contrast of every annotator's cells.

    The contrast of a cell is its mean intensity minus the background level, signed so
    that the drawn cells' median contrast is positive (bright nuclei and dark
    bright-field cells alike). NaN for every cell when the drawn cells show no contrast
    above the background noise (bright-field cells, visible only at their rim).
    """
    drawn = np.concatenate([_cell_means(m, background.gray)[1:] for m in masks]) - background.level
    if drawn.size == 0:
        return np.full(len(ids), np.nan)
    level = float(np.median(drawn))
    if abs(level) <= background.noise:
        return np.full(len(ids), np.nan)
    present = present_ids(labels)
    means = _cell_means(labels, background.gray)
    k = np.searchsorted(present, np.asarray(ids, dtype=np.int64)) + 1
    return (means[k] - background.level) / level


def _cell_means(labels: np.ndarray, gray: np.ndarray) -> np.ndarray:
    """Mean intensity per sequential label (index 0 = background), as from sequential_labels."""
    seq, present = sequential_labels(labels)
    area = np.bincount(seq.ravel(), minlength=present.size + 1)
    total = np.bincount(seq.ravel(), weights=gray.ravel(), minlength=present.size + 1)
    return total / np.maximum(area, 1)


def not_cell_likeness(
    labels: np.ndarray, cells: list[int], ref: Reference, image: np.ndarray | None,
    foreground: np.ndarray,
) -> dict[int, float]:
    """How little each cell looks like the cells the others agree on, 0..1.

    ``too_small``: ``log(median sure area / area) / log 4`` clipped to 0..1 (a quarter of
    the typical area or less gives 1); with an image also ``no_signal``:
    ``(EDGE_SIGNAL - edge strength) / (EDGE_SIGNAL - 1)`` clipped to 0..1 (an outline
    along which the image changes no more than in the background gives 1).
    The larger of the two is returned.
    """
    if not cells:
        return {}
    ids = np.asarray(cells, dtype=np.int64)
    areas = ref.area_of(ids) if labels is ref.labels else label_areas(labels, ids)
    typical = typical_area(ref)
    if typical > 0:
        too_small = np.clip(np.log(typical / areas) / np.log(4.0), 0.0, 1.0)
    else:
        too_small = np.zeros(ids.size)
    likeness = too_small
    if image is not None:
        edges = edge_strength(labels, ids, image, foreground)
        no_signal = np.clip((EDGE_SIGNAL - edges) / (EDGE_SIGNAL - 1.0), 0.0, 1.0)
        likeness = np.maximum(likeness, np.nan_to_num(no_signal, nan=0.0))
    return {int(c): float(v) for c, v in zip(ids, likeness, strict=True)}


def member_stats(
    mask: np.ndarray, ref: Reference, ids: np.ndarray, masks: list[np.ndarray], *,
    areas: list[np.ndarray | None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Each reference cell as the other annotators drew it (before fusion).

    ``areas``, when given, holds per mask :func:`qa.noise.compare.id_counts` (the pixel
    count of every id 0..max, or None for sparse ids), to save counting again.

    Returns
    -------
    cover : ndarray of float64, shape (n,)
        The largest share of one member cell that lies under cells of ``mask``.
    size : ndarray of float64, shape (n,)
        The smallest member cell's area over the median area of the cells its annotator
        drew on this image (inf for a cell without members): each annotator's own habit
        of drawing large or small cancels out.
    """
    drawn = mask != 0
    rows = ref.members[np.searchsorted(ref.ids, ids)]
    cover = np.zeros(ids.size)
    size = np.full(ids.size, np.inf)
    for j in np.flatnonzero(rows.any(axis=0)):
        have = rows[:, j] != 0
        table = id_counts(masks[j]) if areas is None else areas[j]
        if table is None:  # ids too sparse for a table
            drawn_areas = label_areas(masks[j], present_ids(masks[j]))
            area = label_areas(masks[j], rows[have, j])
        else:
            drawn_areas = table[1:][table[1:] > 0]
            area = table[rows[have, j]]
        under = label_areas(masks[j][drawn], rows[have, j]).astype(float)
        median = float(np.median(drawn_areas)) if drawn_areas.size else 0.0
        cover[have] = np.maximum(cover[have], under / np.maximum(area, 1))
        size[have] = np.minimum(size[have], area / max(median, 1.0))
    return cover, size


def missed_doubt(
    mask: np.ndarray, ref: Reference, missed: list[int], masks: list[np.ndarray], *,
    image: np.ndarray | None, foreground: np.ndarray, background: Background | None,
    areas: list[np.ndarray | None] | None = None,
) -> dict[int, float]:
    """How doubtful it is that each reference cell is a whole cell ``mask`` left out, 0..1.

    ``areas`` as in :func:`member_stats`.

    The largest of: ``too_small`` as in :func:`not_cell_likeness`; ``covered``, the
    share of the cell's pixels under cells of ``mask`` over :data:`COVERED` (clipped to
    1: the annotator drew something there, so this is a piece of another annotator's
    differently cut cell); with an image, ``no_signal`` with :data:`EDGE_SIGNAL_MISSED`
    (a blob the other annotator drew on plain background) and ``debris``: the smaller of
    *small* (the relative size from :func:`member_stats` within :data:`DEBRIS_AREA`, 1
    below it) and *plain* (the contrast over the drawn cells' median contrast,
    :func:`relative_contrast`, within :data:`PLAIN`, 1 above it): what
    the annotator left out although it stands out as clearly as the cells it drew, at a
    fraction of their size, was most likely left out on purpose; and ``blank``: the
    contrast below :data:`BLANK` (1 under its lower end), where the drawn cells show
    any contrast: a blob drawn beside a cell picks up that cell's edge, but its inside
    is background.
    """
    if not missed:
        return {}
    ids = np.asarray(missed, dtype=np.int64)
    small = not_cell_likeness(ref.labels, missed, ref, None, foreground)
    doubt = np.asarray([small[r] for r in missed])
    area = ref.area_of(ids)
    under = label_areas(ref.labels[mask != 0], ids).astype(float)
    member_cover, member_size = member_stats(mask, ref, ids, masks, areas=areas)
    cover = np.maximum(under / np.maximum(area, 1), member_cover)
    doubt = np.maximum(doubt, np.clip(cover / COVERED, 0.0, 1.0))
    if image is not None:
        edges = edge_strength(ref.labels, ids, image, foreground)
        no_signal = (EDGE_SIGNAL_MISSED - edges) / (EDGE_SIGNAL_MISSED - 1.0)
        doubt = np.maximum(doubt, np.clip(np.nan_to_num(no_signal, nan=0.0), 0.0, 1.0))
    if background is not None:
        small = np.clip((DEBRIS_AREA[1] - member_size) / (DEBRIS_AREA[1] - DEBRIS_AREA[0]),
                        0.0, 1.0)
        contrast = relative_contrast(ref.labels, ids, masks, background)
        plain = np.clip((np.nan_to_num(contrast, nan=0.0) - PLAIN[0]) / (PLAIN[1] - PLAIN[0]),
                        0.0, 1.0)
        blank = np.clip((BLANK[1] - np.nan_to_num(contrast, nan=1.0)) / (BLANK[1] - BLANK[0]),
                        0.0, 1.0)
        doubt = np.maximum(doubt, np.maximum(np.minimum(small, plain), blank))
    return {int(r): float(v) for r, v in zip(ids, doubt, strict=True)}


def held_parts(
    cell: np.ndarray, ref: Reference, parts: list[int], masks: list[np.ndarray],
    box: tuple[slice, slice], *, areas: list[np.ndarray | None] | None = None,
) -> list[int]:
    """The reference cells of which some member, as its annotator drew it, lies more than
    half inside ``cell`` (a boolean mask of the cell suspected of a merge).

    The fused reference cells are cut where clusters overlap; a neighbour that another
    annotator merged with this cell can leave a fused piece inside it, while the member
    itself lies mostly outside. Only ``box`` (the cell's bounding box, padded) is read,
    and the members' areas when ``areas`` (per mask :func:`qa.noise.compare.id_counts`)
    is given.
    """
    rows = ref.members[np.searchsorted(ref.ids, np.asarray(parts, dtype=np.int64))]
    held = []
    for r, row in zip(parts, rows, strict=True):
        for j in np.flatnonzero(row):
            inside = int(np.count_nonzero((masks[j][box] == row[j]) & cell[box]))
            if areas is None or areas[j] is None:
                area = int(label_areas(masks[j], np.asarray([row[j]]))[0])
            else:
                area = int(areas[j][row[j]]) if row[j] < areas[j].size else 0
            if inside > 0.5 * area:
                held.append(r)
                break
    return held


def disputed_share(
    i: int, ref: Reference, pair: tuple[int, int], masks: list[np.ndarray],
    box: tuple[slice, slice],
) -> float:
    """Reliability-weighted share of the other annotators who drew ``pair`` as one cell.

    An annotator counts against the merge when one of its cells holds more than half of
    both reference cells of ``pair``: it, too, saw one cell there, and the two parts are
    more likely another annotator's split. Annotators who drew neither part do not count.
    """
    a = ref.labels[box] == pair[0]
    b = ref.labels[box] == pair[1]
    total = float(ref.voters.sum())
    if total <= 0:
        return 0.0
    against = 0.0
    for j in np.flatnonzero(ref.voters):
        crop = masks[j][box]
        ids_a, n_a = np.unique(crop[a], return_counts=True)
        ids_b, n_b = np.unique(crop[b], return_counts=True)
        one_a = {int(v) for v, n in zip(ids_a, n_a, strict=True) if v and n > 0.5 * a.sum()}
        one_b = {int(v) for v, n in zip(ids_b, n_b, strict=True) if v and n > 0.5 * b.sum()}
        if one_a & one_b:
            against += float(ref.voters[j])
    return against / total



#: Solidity (area over convex hull area) from which a cell suspected of a merge starts to
#: look like one cell, and at which it fully does. Two touching cells drawn as one have a
#: waist where they meet (on simulated data: median 0.87, 90 % below 0.92); one cell cut
#: in two by another annotator is convex (median 0.95, 90 % above 0.92).
CONVEX = (0.90, 0.95)

#: Eccentricity below which such a cell starts to look like one cell (round rather than
#: two cells long), and at which it fully does: 0.85 median for true merges, 0.68 for one
#: cell cut in two.
ROUND = (0.80, 0.65)


def one_cell_likeness(cell: np.ndarray) -> float:
    """How much a cell suspected of holding two cells looks like a single cell, 0..1.

    The smaller of *convex* (solidity within :data:`CONVEX`) and *round* (eccentricity
    within :data:`ROUND`): a merge of two cells is long and has a waist, one cell is
    neither. ``cell`` is a boolean mask (a crop around the cell will do).
    """
    props = regionprops(cell.astype(np.uint8))
    if not props:
        return 0.0
    convex = (props[0].solidity - CONVEX[0]) / (CONVEX[1] - CONVEX[0])
    rnd = (ROUND[0] - props[0].eccentricity) / (ROUND[0] - ROUND[1])
    return float(np.clip(min(convex, rnd), 0.0, 1.0))

