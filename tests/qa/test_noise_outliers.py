"""Tests of qa.noise's defences against a damaged annotation among the others, and of the
doubts that keep debris, another annotator's split and chopped references from being
flagged as errors of the annotation judged."""

from __future__ import annotations

import numpy as np
import pytest

from qa.noise import FlagKind, flag_instances, score_annotations
from qa.noise.compare import compare_labels
from qa.noise.doubt import held_parts, one_cell_likeness, relative_contrast
from qa.noise.features import background_of
from qa.noise.reference import (
    confirmed_share,
    first_pass_reliability,
    leave_one_out,
    outlier_annotations,
    pairwise_f1,
    reference_from_consensus,
)


def grid(shift: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Six separate 6x6 cells on a 40x40 canvas, optionally moved by ``shift`` px."""
    a = np.zeros((40, 40), np.uint16)
    n = 1
    for y in (4, 16, 28):
        for x in (6, 24):
            a[y + shift[0]:y + shift[0] + 6, x + shift[1]:x + shift[1] + 6] = n
            n += 1
    return a


def with_blobs(a: np.ndarray, count: int) -> np.ndarray:
    """``a`` plus ``count`` 3x3 blobs in the empty column between the cells."""
    b = a.copy()
    for n in range(count):
        b[2 + 7 * n:5 + 7 * n, 15:18] = 50 + n
    return b


def outliers_of(masks):
    return outlier_annotations(masks, pairwise_f1(masks, iou_threshold=0.5))


def test_outliers_are_the_shifted_and_the_unconfirmed_annotations():
    a = grid()
    shifted = grid((3, 3))  # IoU 9/63 with every cell: agrees with nobody
    assert outliers_of([a, a.copy(), shifted]).tolist() == [False, False, True]
    # 5 blobs beside 6 confirmed cells: 6/11 < 0.6 of its cells overlap anyone's
    blobs = with_blobs(a, 5)
    assert confirmed_share([a, a.copy(), blobs], 2) == pytest.approx(6 / 11)
    assert outliers_of([a, a.copy(), blobs]).tolist() == [False, False, True]
    # 2 blobs: 6/8 confirmed, F1 with the others 12/14: an ordinary annotation
    assert outliers_of([a, a.copy(), with_blobs(a, 2)]).tolist() == [False, False, False]
    # with two annotations there is no majority to tell which one is off
    assert outliers_of([a, shifted]).tolist() == [False, False]


def test_leave_one_out_gives_outliers_no_say():
    a = grid()
    masks = [a, a.copy(), grid((3, 3))]
    w = first_pass_reliability(masks, iou_threshold=0.5)
    ref = leave_one_out(masks, 0, w, iou_threshold=0.5, outliers=outliers_of(masks))
    assert ref.voters.tolist() == [0.0, w[1], 0.0]
    assert ref.share.tolist() == [1.0] * 6  # annotator 1 alone decides
    np.testing.assert_array_equal(ref.labels > 0, a > 0)
    # every other annotation an outlier: the most reliable one is kept
    ref = leave_one_out(masks, 0, w, iou_threshold=0.5, outliers=np.array([False, True, True]))
    assert ref.voters.tolist() == [0.0, w[1], 0.0]


def test_a_shifted_third_annotation_does_not_lower_the_others_quality(monkeypatch):
    a = grid()
    masks = [a, a.copy(), grid((3, 3))]
    scores = score_annotations(masks)
    assert [s.quality for s in scores[:2]] == [1.0, 1.0]
    assert scores[2].quality < 0.2
    # the same with the shifted mask fused into the reference: its cells, clustered on
    # their own, cut into the good cells and lower the good annotations' quality
    monkeypatch.setattr("qa.noise.reference.OUTLIER_AGREEMENT", 0.0)
    kept = score_annotations(masks)
    assert kept[0].quality < 0.9


def test_invented_blobs_of_another_annotator_are_not_missed_cells(monkeypatch):
    a = grid()
    masks = [a, a.copy(), with_blobs(a, 5)]
    flags = flag_instances(masks)
    assert [f for f in flags if f.annotator < 2 and f.kind == FlagKind.MISSED] == []
    assert len([f for f in flags if f.annotator == 2 and f.kind == FlagKind.SPURIOUS]) == 5
    monkeypatch.setattr("qa.noise.reference.CONFIRMED", 0.0)
    kept = flag_instances(masks, min_score=0.0)
    assert len([f for f in kept if f.annotator == 0 and f.kind == FlagKind.MISSED]) == 5


def test_iou_sure_counts_poor_pairs_with_their_iou():
    a = grid()
    grown = a.copy()
    grown[grid((-1, -1)) > 0] = 0
    for n in (1, 2):  # cells 1 and 2 drawn 8x8 instead of 6x6: IoU 36/64 and matched
        ys, xs = np.nonzero(a == n)
        grown[ys.min() - 1:ys.max() + 2, xs.min() - 1:xs.max() + 2] = n
    for n in (3, 4, 5, 6):
        grown[a == n] = n
    wide = grown.copy()
    ys, xs = np.nonzero(a == 3)  # cell 3 drawn 10x10: IoU 36/100, a poor pair
    wide[ys.min() - 2:ys.max() + 3, xs.min() - 2:xs.max() + 3] = 3
    s = score_annotations([a, a.copy(), wide])[2]
    cmp = compare_labels(a, wide, iou_threshold=0.5)
    assert cmp.poor.tolist() == [[3, 3]]
    assert s.iou_sure == pytest.approx((2 * 36 / 64 + 36 / 100 + 3 * 1.0) / 6)


def test_small_plain_object_others_drew_is_doubted_as_debris():
    cells = grid()
    rng = np.random.default_rng(3)
    image = rng.normal(100.0, 2.0, cells.shape)
    image[cells > 0] += 100.0
    with_object = cells.copy()
    with_object[34:37, 16:20] = 9  # 12 px against 36 px cells: relative size 1/3
    debris = image.copy()
    debris[with_object == 9] += 100.0  # as plain as the cells
    faint = image.copy()
    faint[with_object == 9] += 25.0  # a quarter of their contrast

    def missed(image):
        flags = flag_instances([cells, with_object, with_object.copy()], image=image,
                               min_score=0.0)
        return [f.score for f in flags if f.annotator == 0 and f.kind == FlagKind.MISSED]

    # both others drew it (share 1); the size doubt alone is log(36 / 12) / log 4
    size_only = 1 - np.log(3) / np.log(4)
    assert missed(faint) == [pytest.approx(size_only)]
    assert missed(None) == [pytest.approx(size_only)]
    # small (1/3 <= 0.35) and plain (contrast 1.0 >= 0.7 of the cells'): left out on purpose
    assert missed(debris) == [0.0]


def test_held_parts_judges_each_part_as_its_annotator_drew_it():
    cell = np.zeros((20, 20), bool)
    cell[2:10, 2:10] = True
    other = np.zeros((20, 20), np.uint16)
    other[2:10, 2:6] = 1  # inside the cell
    other[2:10, 6:18] = 2  # a neighbour merged in by this annotator: 32 of 96 px inside
    fused = other.copy()
    fused[2:10, 10:18] = 0  # what survived in the fused reference: all inside the cell

    ref = reference_from_consensus(fused, np.array([[0, 1], [0, 2]]), np.array([1.0, 1.0]),
                                   annotator=0)
    masks = [np.zeros_like(other), other]
    box = (slice(0, 20), slice(0, 20))
    # the fused piece of part 2 lies wholly inside the cell, the part as drawn does not
    assert np.count_nonzero((ref.labels == 2) & ~cell) == 0
    assert held_parts(cell, ref, [1, 2], masks, box) == [1]
    other[2:10, 10:18] = 0  # now drawn as small as the piece: held
    assert held_parts(cell, ref, [1, 2], masks, box) == [1, 2]


def test_relative_contrast_is_unknown_where_the_cells_show_none():
    cells = grid()
    rng = np.random.default_rng(5)
    image = rng.normal(100.0, 2.0, cells.shape)
    image[cells == 1] += 80.0
    image[cells > 1] += 40.0
    background = background_of(image, cells > 0)
    ids = np.array([1, 2])
    # median contrast of the six cells is 40: cell 1 twice that, cell 2 as much
    assert relative_contrast(cells, ids, [cells], background) == pytest.approx([2.0, 1.0],
                                                                             abs=0.02)
    # bright-field-like: the insides are at the background level, only rims would show
    flat = rng.normal(100.0, 2.0, cells.shape)
    assert np.isnan(relative_contrast(cells, ids, [cells], background_of(flat, cells > 0))).all()


def test_one_cell_likeness_tells_one_cell_from_two_drawn_as_one():
    yy, xx = np.mgrid[:40, :80]
    disk = (yy - 20) ** 2 + (xx - 20) ** 2 <= 15**2  # solidity 0.957 (pixelated)
    assert one_cell_likeness(disk) == 1.0  # convex and round
    peanut = disk | ((yy - 20) ** 2 + (xx - 50) ** 2 <= 15**2)  # two touching disks
    assert one_cell_likeness(peanut) == 0.0  # a waist (solidity 0.85), long (0.89)
    ellipse = ((yy - 20) / 16.0) ** 2 + ((xx - 40) / 24.0) ** 2 <= 1  # eccentricity 0.745
    assert one_cell_likeness(ellipse) == pytest.approx((0.80 - np.sqrt(1 - (16 / 24) ** 2))
                                                       / 0.15, abs=0.03)


def test_merged_flag_on_one_round_cell_cut_by_another_is_dropped(monkeypatch):
    yy, xx = np.mgrid[:40, :40]
    round_cell = (((yy - 20) ** 2 + (xx - 20) ** 2) <= 15**2).astype(np.uint16)
    cut = round_cell.copy()
    cut[(round_cell > 0) & (xx >= 20)] = 2  # the others split it in two halves
    flags = flag_instances([round_cell, cut, cut.copy()], min_score=0.0)
    # both others drew two parts and nobody disputes it, but the "merged" cell is one
    # round convex cell: no two cells were drawn as one
    assert [f.score for f in flags if f.kind == FlagKind.MERGED] == [0.0]
    monkeypatch.setattr("qa.noise.flags.one_cell_likeness", lambda cell: 0.0)
    flags = flag_instances([round_cell, cut, cut.copy()], min_score=0.0)
    assert [f.score > 0.9 for f in flags if f.kind == FlagKind.MERGED] == [True]
