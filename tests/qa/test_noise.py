"""Tests of qa.noise: hand-computed tiny cases, invariances, empty images, validation."""

from __future__ import annotations

import dataclasses
from dataclasses import replace

import numpy as np
import pytest

from qa.metrics import match_instances
from qa.noise import (
    AnnotationScore,
    AnnotatorExpectation,
    FlagKind,
    InstanceFlag,
    annotator_reliability,
    flag_instances,
    flag_model_disagreement,
    score_annotations,
)
from qa.noise.compare import compare_labels
from qa.noise.features import cell_features
from qa.noise.undrawn import undrawn_cells
from qa.simulate import AVERAGE, CARELESS, EXPERT, simulate_dataset


def base() -> np.ndarray:
    """Three cells: 1 (4x4), 2 (4x6, touching 1), 3 (4x4, apart)."""
    a = np.zeros((12, 14), np.uint16)
    a[1:5, 1:5] = 1
    a[1:5, 5:11] = 2
    a[7:11, 1:5] = 3
    return a


def merged() -> np.ndarray:
    c = base()
    c[1:5, 1:11] = 7
    return c


def missing() -> np.ndarray:
    c = base()
    c[7:11, 1:5] = 0
    return c


def extra() -> np.ndarray:
    c = base()
    c[7:10, 8:12] = 9
    return c


def split() -> np.ndarray:
    c = base()
    c[1:5, 5:8] = 5
    c[1:5, 8:11] = 6
    return c


def kinds(flags, annotator):
    return [f.kind for f in flags if f.annotator == annotator]


# ---------------------------------------------------------------- flag_instances


def test_merge_gives_one_merged_flag_with_the_right_ids():
    a = base()
    flags = flag_instances([a, a.copy(), merged()])
    assert flags == [
        InstanceFlag(annotator=2, kind=FlagKind.MERGED, score=1.0, labels=(7,),
                     others=((0, 1), (0, 2), (1, 1), (1, 2)))
    ]
    assert flags[0].kind == "merged"


def test_missed_cell_the_other_two_drew_gives_missed():
    a = base()
    flags = flag_instances([a, a.copy(), missing()])
    assert flags == [
        InstanceFlag(annotator=2, kind=FlagKind.MISSED, score=1.0, labels=(),
                     others=((0, 3), (1, 3)))
    ]


def test_cell_nobody_else_drew_is_spurious():
    a = base()
    flags = flag_instances([a, a.copy(), extra()])
    # 12 px against a median of 16 px for the cells both others drew
    too_small = np.log(16 / 12) / np.log(4)
    # first-pass weights: mean F1 with the others = (1 + 6/7) / 2, same, 6/7; for
    # annotator 0 the extra cell has the share of annotator 2 among {1, 2}
    w = np.array([13 / 14, 13 / 14, 6 / 7])
    share = w[2] / (w[1] + w[2])
    missed = share * (1 - too_small)
    assert flags == [
        InstanceFlag(0, FlagKind.MISSED, pytest.approx(missed), (), ((2, 9),)),
        InstanceFlag(1, FlagKind.MISSED, pytest.approx(missed), (), ((2, 9),)),
        InstanceFlag(2, FlagKind.SPURIOUS, pytest.approx(0.5 + 0.5 * too_small), (9,), ()),
    ]
    # asking for what most of the others support leaves the spurious cell alone
    strict = flag_instances([a, a.copy(), extra()], min_score=0.5)
    assert [(f.annotator, f.kind) for f in strict] == [(2, FlagKind.SPURIOUS)]


def test_spurious_score_rises_for_a_cell_drawn_on_nothing():
    a = np.zeros((30, 30), np.uint16)
    a[:12, :14] = base()
    c = a.copy()
    c[20:23, 20:24] = 9  # 12 px, far from every other cell
    rng = np.random.default_rng(0)
    image = rng.normal(100.0, 5.0, a.shape)
    image[a > 0] += 60.0
    on_nothing = flag_instances([a, a.copy(), c], image=image, min_score=0.5)
    assert [(f.kind, f.labels) for f in on_nothing] == [(FlagKind.SPURIOUS, (9,))]
    # the image changes along its outline no more than anywhere in the background
    assert on_nothing[0].score > 0.85
    image[20:23, 20:24] += 60.0  # now there is something there: a faint real cell, maybe
    on_signal = flag_instances([a, a.copy(), c], image=image, min_score=0.5)
    too_small = np.log(16 / 12) / np.log(4)
    assert on_signal[0].score == pytest.approx(0.5 + 0.5 * too_small)


def test_split_cell_gives_split_with_both_parts(monkeypatch):
    a = base()
    flags = flag_instances([a, a.copy(), split()], min_score=0.5)
    assert flags == [InstanceFlag(2, FlagKind.SPLIT, 1.0, (5, 6), ((0, 2), (1, 2)))]
    # seen from annotator 0, the others disagree: annotator 2 (weight 6/7 against 13/14
    # for annotator 1) drew two cells where 0 drew one, a weak suspicion of a merge,
    # weaker than the share 12/25 because the second part is smaller than a typical
    # cell, and disputed: annotator 1 (share 13/25) drew the two parts as one cell, so
    # they are more likely annotator 2's split; the score is multiplied by 1 - 13/25.
    # (The shape doubt, how much the 4x6 cell looks like one cell, is left out here.)
    monkeypatch.setattr("qa.noise.flags.one_cell_likeness", lambda cell: 0.0)

    def merged(masks):
        return [f for f in flag_instances(masks, min_score=0.0) if f.kind == FlagKind.MERGED]

    weak = merged([a, a.copy(), split()])
    assert [(f.annotator, f.labels, f.others) for f in weak] == [
        (0, (2,), ((1, 2), (2, 5), (2, 6))),
        (1, (2,), ((0, 2), (2, 5), (2, 6))),
    ]
    assert weak[0].score == weak[1].score
    with monkeypatch.context() as m:
        m.setattr("qa.noise.flags.disputed_share", lambda *args: 0.0)
        undisputed = merged([a, a.copy(), split()])
    assert 0.25 < undisputed[0].score < 12 / 25
    assert weak[0].score == pytest.approx(undisputed[0].score * (1 - 13 / 25))
    assert not [f for f in flag_instances([a, a.copy(), split()]) if f.kind == FlagKind.MERGED]
    # when the third annotator splits the cell too, nobody disputes it: a merge by 0
    two = [f for f in merged([a, split(), split()]) if f.annotator == 0]
    assert [f.labels for f in two] == [(2,)] and two[0].score > 2 * weak[0].score


def test_shifted_outline_is_boundary_with_one_minus_iou():
    a = base()
    c = base()
    c[1:5, 5:11] = 0
    c[1:5, 5:9] = 2  # 16 of 24 pixels: IoU 2/3
    flags = flag_instances([a, a.copy(), c])
    assert len(flags) == 1
    assert flags[0].kind == FlagKind.BOUNDARY
    assert flags[0].labels == (2,)
    assert flags[0].others == ((0, 2), (1, 2))
    assert flags[0].score == pytest.approx(1 / 3)


def test_cell_drawn_by_one_of_two_others_is_missed_only_when_that_one_weighs_more():
    a = base()
    # annotator 1 missed cell 3; annotator 2 is judged against annotators 0 and 1
    b = missing()
    c = missing()
    heavy_0 = flag_instances([a, b, c], weights=[0.9, 0.3, 0.5])
    light_0 = flag_instances([a, b, c], weights=[0.3, 0.9, 0.5])
    assert [(f.annotator, f.kind, f.score) for f in heavy_0 if f.annotator == 2] == [
        (2, FlagKind.MISSED, pytest.approx(0.75))
    ]
    assert kinds(light_0, 2) == []


def test_flags_against_a_given_consensus_count_only_the_others_support():
    from qa.consensus import fuse

    a = base()
    masks = [a, a.copy(), missing()]
    cons = fuse(masks)
    flags = flag_instances(masks, consensus=cons)
    assert [(f.annotator, f.kind, f.score, f.labels) for f in flags] == [
        (2, FlagKind.MISSED, 1.0, ())
    ]
    assert flags[0].others == ((0, 3), (1, 3))


def test_outlier_is_the_odd_shaped_cell():
    a = np.zeros((40, 60), np.uint16)
    n = 0
    for y in range(0, 40, 10):
        for x in range(0, 50, 10):
            n += 1
            a[y + 1:y + 6, x + 1:x + 6] = n
    c = a.copy()
    c[0:40, 56:57] = 99  # a one-pixel-wide line
    flags = flag_instances([a, a.copy(), c], seed=0)
    outliers = [f for f in flags if f.kind == FlagKind.OUTLIER]
    assert [(f.annotator, f.labels) for f in outliers] == [(2, (99,))]
    assert 0.5 < outliers[0].score <= 1.0
    assert [f.kind for f in flags if f.annotator == 2] == [FlagKind.SPURIOUS, FlagKind.OUTLIER]


def test_outlier_uses_mean_intensity_when_the_image_is_given():
    a = np.zeros((40, 70), np.uint16)
    n = 0
    for y in range(0, 40, 10):
        for x in range(0, 60, 10):
            n += 1
            a[y + 1:y + 6, x + 1:x + 6] = n
    c = a.copy()
    c[21:26, 61:66] = 99  # same shape as every other cell, drawn on a bright spot
    image = np.where(a > 0, 100.0, 0.0)
    image[21:26, 61:66] = 5000.0
    masks = [a, a.copy(), c]
    assert [f for f in flag_instances(masks) if f.kind == FlagKind.OUTLIER] == []
    bright = [f for f in flag_instances(masks, image=image) if f.kind == FlagKind.OUTLIER]
    assert [(f.annotator, f.labels) for f in bright] == [(2, (99,))]


# ---------------------------------------------------------------- score_annotations


def test_scores_of_a_missed_cell_are_hand_computed():
    a = base()
    scores = score_annotations([a, a.copy(), missing()])
    s = scores[2]
    assert (s.annotator, s.n_cells, s.n_reference) == (2, 2, 3)
    assert (s.missed, s.spurious, s.merged, s.split, s.boundary) == (1, 0, 0, 0, 0)
    assert s.f1 == pytest.approx(0.8)
    assert s.mean_iou == 1.0
    assert s.recall_sure == pytest.approx(2 / 3)
    assert s.quality == pytest.approx(2 / 3)
    # first-pass weights: 0.9, 0.9, 0.8; for annotator 0, cell 3 has share 0.9 / 1.7
    assert scores[0].n_reference == 3
    assert scores[0].f1 == 1.0
    assert scores[0].quality == 1.0


def test_scores_of_merge_spurious_and_split():
    a = base()
    m = score_annotations([a, a.copy(), merged()])[2]
    assert (m.merged, m.missed, m.spurious, m.n_cells) == (1, 0, 0, 2)
    assert m.f1 == pytest.approx(2 * 2 / 5)  # the merged cell still matches cell 2 (IoU 0.6)
    # merged cells are drawn (recall 1) but only cell 3 is matched one-to-one (IoU 1)
    assert (m.recall_sure, m.iou_sure, m.quality) == (1.0, 1.0, 1.0)
    e = score_annotations([a, a.copy(), extra()])[2]
    assert (e.spurious, e.n_cells) == (1, 4)
    assert e.f1 == pytest.approx(6 / 7)
    assert e.plausible == pytest.approx(3 / 4)
    assert e.quality == pytest.approx(3 / 4)
    s = score_annotations([a, a.copy(), split()])[2]
    # one half of the split cell still matches it at IoU 0.5
    assert (s.split, s.merged, s.n_cells, s.f1) == (1, 0, 4, pytest.approx(6 / 7))
    assert s.quality == 1.0


def test_shifted_mask_loses_registration():
    a = np.zeros((30, 30), np.uint16)
    for n, (y, x) in enumerate([(2, 2), (2, 14), (14, 2), (14, 14)], start=1):
        a[y:y + 10, x:x + 10] = n
    shifted = np.zeros_like(a)
    shifted[:, 3:] = a[:, :-3]  # every cell 3 px to the right
    s = score_annotations([a, a.copy(), shifted])[2]
    assert s.offset_px == pytest.approx(3.0)
    radius = np.sqrt(100 / np.pi)
    assert s.registration == pytest.approx(1 - 3 / radius)
    assert s.iou_sure == pytest.approx(70 / 130)
    assert s.quality == pytest.approx((1 - 3 / radius) * 70 / 130)
    assert score_annotations([a, a.copy(), a.copy()])[2].offset_px == 0.0


def squares(size: int, grow: int = 0) -> np.ndarray:
    """Two separate square cells of side ``size`` (+ ``grow`` px on every side)."""
    a = np.zeros((40, 40), np.uint16)
    for n, (y, x) in enumerate([(5, 5), (5, 24)], start=1):
        a[y - grow:y + size + grow, x - grow:x + size + grow] = n
    return a


def test_shift_px_is_the_outline_displacement_against_the_sure_cells():
    a = squares(8)
    s = score_annotations([a, a.copy(), squares(8, grow=1)])
    # 10x10 against 8x8: (100 - 64) / 28 outline pixels, the same for both cells
    assert s[2].shift_px == pytest.approx(36 / 28)
    assert s[2].iou_sure == pytest.approx(64 / 100)
    assert s[0].shift_px == 0.0
    assert all(sc.relative_quality is None for sc in s)


def test_relative_quality_hand_computed():
    expected = AnnotatorExpectation(
        recall_sure=np.array([1.0, 0.5]), plausible=np.array([1.0, 1.0]),
        iou_sure=np.array([0.8, 0.8]), registration=np.array([1.0, 1.0]),
        shift_px=np.array([0.0, -1.0]),
    )
    parts = [[1.0, 1.0, 0.8, 1.0, 0.0], [0.25, 1.0, 0.8, 1.0, 1.0]]
    # annotator 1: recall at half its usual level, outline 2 px further out than usual
    # (habit 1 - 2 / 4); annotator 0's ratios are all 1, so the image is not hard for 1.
    # For annotator 0 the other's recall ratio 0.5 marks the image as hard, but 0's own
    # ratio is 1 already, so the cap keeps it at 1.
    assert expected.relative_quality([0, 1], parts).tolist() == pytest.approx([1.0, 0.25])
    # the same annotation alone on the image: no image level to compare with
    assert expected.relative_quality([1], [parts[1]]).tolist() == pytest.approx([0.25])
    # a hard image: both annotators at half their usual recall, neither is suspect
    hard = [[0.5, 1.0, 0.8, 1.0, 0.0], [0.25, 1.0, 0.8, 1.0, -1.0]]
    assert expected.relative_quality([0, 1], hard).tolist() == pytest.approx([1.0, 1.0])
    assert expected.subset([1]).shift_px.tolist() == [-1.0]


def test_relative_quality_from_scores_and_through_score_annotations():
    a = squares(8)
    masks = [a, a.copy(), squares(8, grow=1)]
    first = score_annotations(masks)
    expected = AnnotatorExpectation.from_scores([first, first])
    assert expected.shift_px.tolist() == pytest.approx([0.0, 0.0, 36 / 28])
    again = score_annotations(masks, expected=expected)
    # every annotation is at its annotator's usual level
    assert [sc.relative_quality for sc in again] == pytest.approx([1.0, 1.0, 1.0])
    # an annotator whose usual work is exact, drawing 1 + 2/7 px too large this time
    exact = AnnotatorExpectation.from_scores([score_annotations([a, a.copy(), a.copy()])])
    sc = score_annotations(masks, expected=exact)[2]
    assert sc.relative_quality == pytest.approx((64 / 100) * (1 - (36 / 28) / 4))
    with pytest.raises(ValueError, match="describes 3 annotators"):
        score_annotations(masks[:2], expected=exact)
    with pytest.raises(TypeError, match="AnnotatorExpectation"):
        score_annotations(masks, expected=[1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="3 entries"):
        AnnotatorExpectation.from_scores([first, first[:2]])


def test_reliability_relative_quality_finds_the_corrupted_annotation():
    corrupting = (EXPERT, AVERAGE, replace(CARELESS, corruption_rate=0.0))
    data = simulate_dataset(4, profiles=corrupting, shape=(128, 128), n_cells=20, seed=5)
    bad = replace(EXPERT, name="corrupt", corruption_rate=1.0)
    hit = simulate_dataset(1, profiles=(bad, AVERAGE, CARELESS), shape=(128, 128),
                           n_cells=20, seed=11)[0]
    assert hit.annotations[0].corrupted
    per_image = [[x.labels for x in s.annotations] for s in data] + [
        [x.labels for x in hit.annotations]]
    rel = annotator_reliability(per_image)
    assert rel.relative_quality.shape == (5, 3)
    assert int(np.nanargmin(rel.relative_quality.ravel())) == 4 * 3 + 0
    assert rel.expected.n_annotators == 3
    scores = score_annotations(per_image[-1], expected=rel)
    assert int(np.argmin([s.relative_quality for s in scores])) == 0


def test_missed_cell_under_the_annotators_own_cells_is_not_missed():
    ref = np.zeros((12, 14), np.uint16)
    ref[2:6, 2:10] = 1
    cut = np.zeros_like(ref)
    cut[0:6, 0:6] = 4  # each holds half of cell 1, and is mostly outside it
    cut[0:6, 6:12] = 5
    flags = flag_instances([ref, ref.copy(), cut], min_score=0.0)
    missed = [f for f in flags if f.annotator == 2 and f.kind == FlagKind.MISSED]
    # all of cell 1 lies under annotator 2's cells: drawn, differently cut, not left out
    assert [(f.score, f.others) for f in missed] == [(0.0, ((0, 1), (1, 1)))]
    empty = np.zeros_like(ref)
    flags = flag_instances([ref, ref.copy(), empty], min_score=0.0)
    assert [f.score for f in flags if f.kind == FlagKind.MISSED] == [1.0]


def test_missed_cell_drawn_on_plain_background_is_doubted_with_the_image(monkeypatch):
    a = squares(8)
    gone = a.copy()
    gone[gone == 2] = 0
    rng = np.random.default_rng(0)
    image = rng.normal(100.0, 2.0, a.shape)
    image[a == 1] += 60.0  # only cell 1 shows in the image
    image_both = image.copy()
    image_both[a == 2] += 60.0

    def missed_score(img):
        flags = flag_instances([gone, a, a.copy()], image=img, min_score=0.0)
        return [f.score for f in flags if f.annotator == 0 and f.kind == FlagKind.MISSED]
    assert missed_score(image_both) == [1.0]
    # its inside is at the background level (contrast 0 of the drawn cells' 60): blank
    assert missed_score(image) == [0.0]
    # by the edge alone: noise only along cell 2's outline, edge strength 1.024 (as in the
    # background), so the doubt is (2 - 1.024) / (2 - 1) and the score 1 - doubt
    monkeypatch.setattr("qa.noise.doubt.BLANK", (-2.0, -1.0))
    assert missed_score(image) == [pytest.approx(0.0244, abs=1e-3)]


def test_merged_flag_counts_half_when_the_image_shows_no_cut():
    two = np.zeros((20, 24), np.uint16)
    two[2:10, 2:10] = 1
    two[2:10, 10:18] = 2
    one = np.where(two > 0, 5, 0).astype(np.uint16)
    uniform = np.full(two.shape, 100.0)
    uniform[two > 0] = 200.0
    gap = uniform.copy()
    gap[2:10, 9:11] = 120.0  # a dim line where the two cells meet

    def merged_score(image):
        flags = flag_instances([two, two.copy(), one], image=image, min_score=0.0)
        return [f.score for f in flags if f.annotator == 2 and f.kind == FlagKind.MERGED]

    # interface = columns 8..11 of the merged cell: mean (2 * 200 + 2 * 120) / 4 = 160,
    # 40 below the inside, against a cell contrast of 100: 0.4 >= 0.3, fully confirmed
    assert merged_score(gap) == [1.0]
    assert merged_score(uniform) == [0.5]
    assert merged_score(None) == [1.0]


def test_leave_one_out_excludes_the_annotation_itself():
    a = base()
    c = extra()
    s0, s1 = score_annotations([a, c])
    # each is judged against the other alone, exactly as a plain match would
    assert s0.f1 == pytest.approx(match_instances(c, a).f1) == pytest.approx(6 / 7)
    assert (s0.missed, s0.spurious, s0.n_reference) == (1, 0, 4)
    assert (s1.missed, s1.spurious, s1.n_reference) == (0, 1, 3)
    # an annotation's own cells never vouch for it
    assert score_annotations([c, a, a.copy()])[0].spurious == 1


def test_scores_are_invariant_to_label_permutation_and_non_sequential_ids():
    rng = np.random.default_rng(3)
    masks = [base(), missing(), extra()]
    relabelled = []
    for m in masks:
        ids = np.unique(m)[1:]
        lut = np.zeros(int(m.max()) + 1, np.int64)
        lut[ids] = rng.permutation(ids.size) * 37 + 1000
        relabelled.append(lut[m].astype(np.uint32))
    assert score_annotations(relabelled) == score_annotations(masks)
    assert [(f.annotator, f.kind, f.score) for f in flag_instances(relabelled)] == [
        (f.annotator, f.kind, f.score) for f in flag_instances(masks)
    ]


def test_huge_ids_give_the_same_results():
    masks = [base(), missing(), extra()]
    big = [np.where(m > 0, np.uint32(4_000_000_000) + m.astype(np.uint32), 0).astype(np.uint32)
           for m in masks]
    assert score_annotations(big) == score_annotations(masks)
    image = np.arange(base().size, dtype=float).reshape(base().shape)
    flags = flag_instances(masks, image=image, min_score=0.0)
    big_flags = flag_instances(big, image=image, min_score=0.0)
    assert [(f.annotator, f.kind, f.score) for f in big_flags] == [
        (f.annotator, f.kind, f.score) for f in flags]
    assert big_flags[-1].labels == (4_000_000_009,)


def test_scores_follow_the_annotators_when_they_are_reordered():
    masks = [base(), missing(), extra(), merged()]
    scores = score_annotations(masks)
    order = [2, 0, 3, 1]
    reordered = score_annotations([masks[j] for j in order])
    for new, old in enumerate(order):
        assert dataclasses.replace(reordered[new], annotator=old) == scores[old]


def test_empty_images():
    empty = np.zeros((8, 8), np.uint16)
    scores = score_annotations([empty, empty.copy(), empty.copy()])
    assert [s.quality for s in scores] == [1.0, 1.0, 1.0]
    assert [(s.f1, s.mean_iou, s.n_cells, s.missed, s.spurious) for s in scores] == [
        (1.0, 0.0, 0, 0, 0)] * 3
    assert flag_instances([empty, empty.copy()]) == []
    assert flag_model_disagreement(empty, empty) == []
    rel = annotator_reliability([[empty, empty.copy()], [empty, empty.copy()]])
    assert rel.reliability.tolist() == [1.0, 1.0]
    # one annotator drew nothing where the others agree on three cells
    a = base()
    s = score_annotations([a, a.copy(), np.zeros_like(a)])[2]
    assert (s.quality, s.f1, s.missed, s.recall_sure, s.plausible) == (0.0, 0.0, 3, 0.0, 1.0)


def test_results_are_frozen():
    s = score_annotations([base(), base()])[0]
    assert isinstance(s, AnnotationScore)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.quality = 0.0
    f = flag_instances([base(), base(), merged()])[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.score = 0.0


# ---------------------------------------------------------------- flag_model_disagreement


def test_model_disagreement_hand_case():
    a = base()
    pred = merged()
    pred[7:11, 1:5] = 0
    pred[10:12, 10:14] = 4
    out = flag_model_disagreement(a, pred)
    assert [(d.kind, d.consensus_labels, d.predicted_labels) for d in out] == [
        (FlagKind.MISSED, (3,), ()),
        (FlagKind.SPURIOUS, (), (4,)),
        (FlagKind.MERGED, (1, 2), (7,)),
    ]
    assert [d.score for d in out] == pytest.approx([1.0, 1.0, 1 - 24 / 40])
    assert flag_model_disagreement(a, a) == []


def test_model_disagreement_split_and_boundary():
    a = base()
    pred = split()
    pred[1:5, 1:5] = 0
    pred[1:5, 1:4] = 1  # 12 of 16 pixels: IoU 0.75, not flagged
    pred[7:11, 1:5] = 0
    pred[7:11, 1:3] = 3  # 8 of 16 pixels: IoU 0.5, matched but boundary
    out = flag_model_disagreement(a, pred)
    assert [(d.kind, d.consensus_labels, d.predicted_labels, d.score) for d in out] == [
        (FlagKind.SPLIT, (2,), (5, 6), pytest.approx(0.5)),
        (FlagKind.BOUNDARY, (3,), (3,), pytest.approx(0.5)),
    ]


# ---------------------------------------------------------------- annotator_reliability


def test_reliability_uses_gold_truth():
    a = base()
    short = missing()
    # without gold, annotators 0 and 1 (identical) outvote 2, who left out cell 3; a gold
    # image saying cell 3 is not a cell turns the ranking round
    per_image = [[a, a.copy(), short]]
    rel = annotator_reliability(per_image)
    assert rel.ranking.tolist() == [0, 1, 2]
    assert rel.reliability.tolist() == pytest.approx([1.0, 1.0, 2 / 3])
    gold = annotator_reliability(per_image, gold=[short.copy()])
    assert gold.ranking.tolist() == [2, 0, 1]
    assert gold.reliability.tolist() == pytest.approx([2 / 3, 2 / 3, 1.0])
    assert gold.precision.tolist() == pytest.approx([2 / 3, 2 / 3, 1.0])
    assert gold.gold.tolist() == [True]


def test_reliability_allows_missing_annotations():
    a = base()
    rel = annotator_reliability([[a, a.copy(), None], [a, None, missing()]])
    assert np.isnan(rel.quality[0, 2]) and np.isnan(rel.quality[1, 1])
    # image 1: annotator 0 judged against annotator 2 alone, its cell 3 unconfirmed
    assert rel.reliability.tolist() == pytest.approx([(1 + 2 / 3) / 2, 1.0, 2 / 3])
    assert rel.ranking.tolist() == [1, 0, 2]


def test_simulated_careless_annotator_ranked_last_and_corrupted_scored_lowest():
    calm = [replace(p, corruption_rate=0.0) for p in (EXPERT, AVERAGE, CARELESS)]
    data = simulate_dataset(4, profiles=calm, shape=(128, 128), n_cells=20, seed=5)
    rel = annotator_reliability([[a.labels for a in s.annotations] for s in data])
    assert rel.ranking[-1] == 2
    corrupting = (EXPERT, AVERAGE, replace(EXPERT, name="corrupt", corruption_rate=1.0))
    sample = simulate_dataset(1, profiles=corrupting, shape=(128, 128), n_cells=20, seed=11)[0]
    assert sample.annotations[2].corrupted
    scores = score_annotations([a.labels for a in sample.annotations])
    assert int(np.argmin([s.quality for s in scores])) == 2


# ---------------------------------------------------------------- pieces


def test_compare_labels_sorts_every_cell_once():
    a = base()
    c = merged()
    c[7:11, 1:5] = 0
    c[7:10, 8:12] = 9
    cmp = compare_labels(a, c)
    assert cmp.merged == ((7, (1, 2)),)
    assert cmp.missed.tolist() == [3]
    assert cmp.spurious.tolist() == [9]
    assert cmp.matched.shape == (0, 2)
    assert cmp.split == ()


def test_cell_features_hand_values():
    a = np.zeros((6, 6), np.uint16)
    a[1:4, 1:4] = 5
    image = np.zeros((6, 6))
    image[1:4, 1:4] = 2.0
    image[1, 1] = 11.0
    f = cell_features(a, image)
    assert f.labels.tolist() == [5]
    assert f.names == ("log_area", "eccentricity", "solidity", "mean_intensity")
    assert f.values[0].tolist() == pytest.approx([np.log(9), 0.0, 1.0, 3.0])


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: score_annotations(base()), TypeError, "sequence"),
        (lambda: score_annotations([base()]), ValueError, "at least 2"),
        (lambda: score_annotations([base(), base().astype(float)]), TypeError, "integer dtype"),
        (lambda: score_annotations([base(), base() > 0]), TypeError, "integer dtype"),
        (lambda: score_annotations([base(), base()[:5]]), ValueError, "one shape"),
        (lambda: score_annotations([base(), base()[None]]), ValueError, "2-D"),
        (lambda: score_annotations([base(), -base().astype(np.int32)]), ValueError, "negative"),
        (lambda: score_annotations([base(), base()], weights=[1.0]), ValueError, "one value"),
        (lambda: score_annotations([base(), base()], weights=[1.0, 0.0]), ValueError, "(0, 1]"),
        (lambda: score_annotations([base(), base()], iou_threshold=0.3), ValueError, "0.5"),
        (lambda: flag_instances([base()]), ValueError, "at least 2"),
        (lambda: flag_instances([base(), base()], image=np.zeros((3, 3))), ValueError, "shape"),
        (lambda: flag_instances([base(), base()], image=[[1]]), TypeError, "numpy array"),
        (lambda: flag_instances([base(), base()], consensus=object()), TypeError, "Consensus"),
        (lambda: flag_instances([base(), base()], outlier_contamination=0.7), ValueError, "0.5"),
        (lambda: flag_instances([base(), base()], seed=1.5), TypeError, "seed"),
        (lambda: flag_instances([base(), base()], weights=[2.0, 1.0]), ValueError, "(0, 1]"),
        (lambda: flag_model_disagreement(base(), base()[:5]), ValueError, "shape"),
        (lambda: flag_model_disagreement(base().astype(float), base()), TypeError, "dtype"),
        (lambda: flag_model_disagreement(base(), base(), iou_threshold=1.0), ValueError, "0.5"),
        (lambda: annotator_reliability([]), ValueError, "at least one image"),
        (lambda: annotator_reliability(base()), TypeError, "sequence"),
        (lambda: annotator_reliability([[base(), base()], [base()]]), ValueError, "expected 2"),
        (lambda: annotator_reliability([[base(), None]]), ValueError, "at least two"),
        (lambda: annotator_reliability([[base(), base()]], gold=[]), ValueError, "gold"),
        (lambda: annotator_reliability([[base(), base()]], max_iter=0), ValueError, "max_iter"),
        (lambda: annotator_reliability([[base(), base()[:4]]]), ValueError, "shape"),
    ],
)
def test_input_validation(call, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(").replace("]", r"\]")):
        call()


def test_consensus_of_other_masks_is_refused():
    from qa.consensus import fuse

    cons = fuse([base(), base(), base()])
    with pytest.raises(ValueError, match="one column per mask"):
        flag_instances([base(), base()], consensus=cons)


def test_cell_the_image_shows_and_nobody_drew_is_missed_by_everyone_a_speck_is_not():
    yy, xx = np.mgrid[0:64, 0:64]
    drawn = np.zeros((64, 64), np.uint16)
    for n, (y, x) in enumerate([(12, 12), (12, 44), (44, 12)], start=1):
        drawn[(yy - y) ** 2 + (xx - x) ** 2 <= 25] = n
    image = np.random.default_rng(0).normal(100.0, 2.0, drawn.shape)
    image[drawn > 0] += 60.0
    plain = image.copy()
    image[(yy - 44) ** 2 + (xx - 44) ** 2 <= 25] += 20.0  # a faint cell nobody drew
    plain[(yy - 44) ** 2 + (xx - 44) ** 2 <= 25] += 60.0  # as plain as the drawn ones
    plain[28:30, 28:30] += 60.0
    image[28:30, 28:30] += 60.0  # a speck of debris, 4 px against cells of 81 px
    masks = [drawn, drawn.copy(), drawn.copy()]
    flags = flag_instances(masks, image=image, min_score=0.0)
    missed = [f for f in flags if f.kind == FlagKind.MISSED]
    assert [f.annotator for f in missed] == [0, 1, 2]
    for f in missed:
        assert f.others == () and f.labels == ()
        assert (f.where[0] - 44) ** 2 + (f.where[1] - 44) ** 2 <= 25
        # contrast 20 against noise 2 (far above FULL_SNR), a third of the drawn cells'
        # (below OBVIOUS); half-maximum area 71 px of the smoothed, noisy disk against
        # the typical 81: too_small = log(81 / 71) / log(4)
        assert f.score == pytest.approx(1.0 - np.log(81 / 71) / np.log(4.0), abs=1e-9)
    (cell,) = undrawn_cells(image, masks)
    assert (cell.area, cell.where) == (71, missed[0].where)
    assert cell.relative_contrast == pytest.approx(0.298, abs=1e-3)
    assert len({f.where for f in missed}) == 1
    # about as plain as the drawn cells (0.9 of their contrast) and still left out by all:
    # likely on purpose, so the score drops by 1 - (0.9 - 0.5) / 0.5
    (cell,) = undrawn_cells(plain, masks)
    assert (cell.area, cell.relative_contrast) == (75, pytest.approx(0.900, abs=1e-3))
    expected = (1.0 - np.log(81 / 75) / np.log(4.0)) * (1.0 - (cell.relative_contrast - 0.5) / 0.5)
    missed = [f for f in flag_instances(masks, image=plain, min_score=0.0)
              if f.kind == FlagKind.MISSED]
    assert [(f.annotator, f.score) for f in missed] == [
        (j, pytest.approx(expected, abs=1e-9)) for j in range(3)]
    assert expected == pytest.approx(0.189, abs=1e-3)
    off = flag_instances(masks, image=image, min_score=0.0, image_evidence=False)
    assert [f for f in off if f.kind == FlagKind.MISSED] == []
    assert [f for f in flag_instances(masks, min_score=0.0) if f.kind == FlagKind.MISSED] == []
    with pytest.raises(TypeError, match="image_evidence must be a bool"):
        flag_instances(masks, image=image, image_evidence=1)
