"""Consensus outlines: precision-weighted votes, robust bias levels, gold-anchored biases."""

import numpy as np
import pytest

from qa.consensus import estimate_boundary_bias, fuse, gold_outline_offsets
from qa.metrics import match_instances
from qa.noise import annotator_reliability

SHAPE = (64, 96)
CENTRES = [(16, 16), (16, 48), (16, 80), (48, 16), (48, 48), (48, 80)]
RADII = [7.0, 8.0, 6.5, 7.5, 8.0, 7.0]


def _disks(radii, dx=0.0, centres=CENTRES, shape=SHAPE) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    m = np.zeros(shape, np.uint16)
    for i, ((cy, cx), r) in enumerate(zip(centres, radii, strict=True), start=1):
        m[(yy - cy) ** 2 + (xx - cx - dx) ** 2 <= r * r] = i
    return m


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """The same instances pixel for pixel, whatever the ids."""
    n_a, n_b = len(np.unique(a[a > 0])), len(np.unique(b[b > 0]))
    r = match_instances(a, b, iou_threshold=0.99)
    return (np.array_equal(a > 0, b > 0) and r.tp == n_a == n_b
            and r.mean_matched_iou == 1.0)


def _area_ratio(truth: np.ndarray, labels: np.ndarray) -> float:
    return np.count_nonzero(labels) / np.count_nonzero(truth)


# --- the most precise outline leads -------------------------------------------------------


@pytest.mark.parametrize("d", [1.0, 2.0])
def test_precise_annotator_wins_over_two_shifted_in_opposite_directions(d):
    precise = _disks(RADII)
    right, left = _disks(RADII, dx=d), _disks(RADII, dx=-d)
    r = fuse([right, precise, left])
    assert _same_partition(r.labels, precise)
    # the precise annotator's outlines are estimated far less noisy than the others'
    assert r.boundary_noise[1] < 0.5 * min(r.boundary_noise[0], r.boundary_noise[2])
    np.testing.assert_allclose(r.boundary_bias, 0.0, atol=0.05)
    np.testing.assert_array_equal(r.outline_trust, [1.0, 1.0, 1.0])
    assert not r.anchored


@pytest.mark.parametrize("d", [1.0, 1.5, 2.0])
def test_precise_annotator_wins_over_two_offset_cell_by_cell_in_opposite_directions(d):
    signs = np.array([1, -1, 1, -1, 1, -1]) * d  # no systematic bias, only scatter
    precise = _disks(RADII)
    grown = _disks([r + s for r, s in zip(RADII, signs, strict=True)])
    shrunk = _disks([r - s for r, s in zip(RADII, signs, strict=True)])
    r = fuse([grown, shrunk, precise])
    assert _same_partition(r.labels, precise)
    assert r.boundary_noise[2] < 0.25 * min(r.boundary_noise[:2])
    np.testing.assert_allclose(r.boundary_bias, 0.0, atol=0.1)


def test_dilating_and_eroding_annotators_are_corrected_onto_the_precise_one():
    precise = _disks(RADII)
    r = fuse([_disks([x + 2 for x in RADII]), precise, _disks([x - 2 for x in RADII])])
    assert _same_partition(r.labels, precise)
    np.testing.assert_allclose(r.boundary_bias, [2.0, 0.0, -2.0], atol=0.2)


def test_one_smeared_annotation_does_not_shift_everybody_elses_correction():
    centres = [(20, 20), (20, 60), (20, 100), (60, 20), (60, 60), (60, 100)]
    big = [12.0] * 6
    truth = _disks(big, centres=centres, shape=(80, 120))
    smeared = _disks([x + 4 for x in big], centres=centres, shape=(80, 120))
    r = fuse([truth, truth.copy(), smeared])
    np.testing.assert_array_equal(r.support, [3] * 6)  # the smeared cells still cluster
    assert _same_partition(r.labels, truth)
    # the mean-annotator level would have put the two careful annotators at about -1.3 px
    np.testing.assert_allclose(r.boundary_bias[:2], 0.0, atol=1e-9)
    np.testing.assert_array_equal(r.outline_trust, [1.0, 1.0, 0.0])
    assert r.boundary_bias[2] == pytest.approx(2.5)  # the largest correction


# --- gold anchors the level ------------------------------------------------------------------

OFFSETS5 = (0.0, -1.0, 1.0, 1.0, 2.0)  # three of five annotators dilate


def _panel(truth_radii, offsets, centres=CENTRES):
    return [_disks([r + o for r in truth_radii], centres=centres) for o in offsets]


def test_gold_bias_is_measured_against_truth():
    gold_radii = [6.0, 7.0, 8.0, 7.5, 6.5, 8.5]
    truth = _disks(gold_radii)
    masks = _panel(gold_radii, OFFSETS5)
    bias = estimate_boundary_bias([masks], [truth])
    np.testing.assert_allclose(bias, OFFSETS5, atol=0.15)
    assert bias.dtype == np.float64 and bias.shape == (5,)
    offsets = gold_outline_offsets([masks], [truth])
    assert [o.size for o in offsets] == [6] * 5


def test_dilating_majority_with_gold_bias_matches_truth():
    gold_radii = [6.0, 7.0, 8.0, 7.5, 6.5, 8.5]
    gold_truth = _disks(gold_radii)
    bias = estimate_boundary_bias([_panel(gold_radii, OFFSETS5)], [gold_truth])

    truth = _disks(RADII)
    masks = _panel(RADII, OFFSETS5)
    plain = fuse(masks)
    # without gold the mean annotator (+0.6 px) defines "no bias": too large
    assert _area_ratio(truth, plain.labels) > 1.1
    assert not _same_partition(plain.labels, truth)
    anchored = fuse(masks, boundary_bias=bias)
    assert anchored.anchored
    assert _same_partition(anchored.labels, truth)
    np.testing.assert_allclose(anchored.boundary_bias, OFFSETS5, atol=0.2)
    # one known annotator is enough to set the level
    one = fuse(masks, boundary_bias=[np.nan, np.nan, bias[2], np.nan, np.nan])
    assert one.anchored and _same_partition(one.labels, truth)
    one = fuse(masks, boundary_bias=[np.nan, np.nan, np.nan, np.nan, bias[4]])
    assert _area_ratio(truth, one.labels) == pytest.approx(1.0, abs=0.01)
    # all unknown is the same as none
    none = fuse(masks, boundary_bias=[np.nan] * 5)
    np.testing.assert_array_equal(none.labels, plain.labels)
    assert not none.anchored


def test_gold_bias_from_annotator_reliability_anchors_the_consensus():
    gold_radii = [6.0, 7.0, 8.0, 7.5, 6.5, 8.5]
    masks = _panel(RADII, OFFSETS5)
    rel = annotator_reliability([_panel(gold_radii, OFFSETS5), masks],
                                gold=[_disks(gold_radii), None], max_iter=1)
    np.testing.assert_allclose(rel.boundary_bias, OFFSETS5, atol=0.15)
    assert _same_partition(fuse(masks, boundary_bias=rel.boundary_bias).labels, _disks(RADII))
    no_gold = annotator_reliability([masks, masks], max_iter=1)
    assert np.isnan(no_gold.boundary_bias).all() and no_gold.boundary_bias.shape == (5,)


def test_gold_bias_is_nan_for_annotators_without_enough_matched_cells():
    truth = _disks(RADII)
    empty = np.zeros(SHAPE, np.uint16)
    grown = _disks([r + 1 for r in RADII])
    bias = estimate_boundary_bias([[grown, empty, None]], [truth])
    assert bias[0] == pytest.approx(1.0, abs=0.15)
    assert np.isnan(bias[1]) and np.isnan(bias[2])
    few = estimate_boundary_bias([[grown, empty, None]], [truth], min_cells=7)
    assert np.isnan(few).all()


@pytest.mark.parametrize(("kwargs", "exc", "message"), [
    ({"annotations": [], "truths": []}, ValueError, "at least one gold image"),
    ({"annotations": [[np.zeros((4, 4), np.uint8)]], "truths": []}, ValueError, "one label"),
    ({"annotations": np.zeros((1, 4, 4), np.uint8), "truths": [np.zeros((4, 4), np.uint8)]},
     TypeError, "sequence"),
    ({"annotations": [[np.zeros((4, 4), np.uint8)], [np.zeros((4, 4), np.uint8)] * 2],
      "truths": [np.zeros((4, 4), np.uint8)] * 2}, ValueError, r"annotations\[1\] has 2"),
    ({"annotations": [[np.zeros((4, 5), np.uint8)]], "truths": [np.zeros((4, 4), np.uint8)]},
     ValueError, "shape"),
    ({"annotations": [[np.zeros((4, 4), float)]], "truths": [np.zeros((4, 4), np.uint8)]},
     TypeError, "integer dtype"),
    ({"annotations": [[np.zeros((4, 4), np.uint8)]], "truths": [np.zeros((4, 4), np.uint8)],
      "min_cells": 0}, ValueError, "min_cells"),
    ({"annotations": [[np.zeros((4, 4), np.uint8)]], "truths": [np.zeros((4, 4), np.uint8)],
      "iou_threshold": 0.0}, ValueError, "iou_threshold"),
])
def test_estimate_boundary_bias_validation(kwargs, exc, message):
    with pytest.raises(exc, match=message):
        estimate_boundary_bias(**kwargs)


@pytest.mark.parametrize(("value", "message"), [
    ([1.0, 1.0], "3 numbers"),
    ([1.0, np.inf, 0.0], "finite or NaN"),
    ("abc", "3 numbers"),
    ([[0.0, 0.0, 0.0]], "1-D"),
])
def test_fuse_boundary_bias_validation(value, message):
    masks = [_disks(RADII)] * 3
    with pytest.raises(ValueError, match=message):
        fuse(masks, boundary_bias=value)


def test_level_rules_on_relative_biases():
    from qa.consensus.reliability import anchor_biases

    shared = np.array([True, True, True])
    # a smear 3.9 px off the median: no say in the level, no outline vote
    bias, trust, level = anchor_biases(np.array([2.9, -1.0, -1.9]), shared)
    np.testing.assert_allclose(bias, [2.5, 0.45, -0.45])  # 2.5 = largest correction
    np.testing.assert_array_equal(trust, [0.0, 1.0, 1.0])
    assert level == pytest.approx(1.45)
    # gold: the trusted known annotators set the level (median of relative - gold)
    bias, _, _ = anchor_biases(np.array([2.9, -1.0, -1.9]), shared,
                               gold=np.array([np.nan, 0.5, -0.3]))
    np.testing.assert_allclose(bias, [2.5, 0.55, -0.35])
    # two annotators far apart: nobody can be told off, the mean stays the level
    bias, trust, _ = anchor_biases(np.array([4.0, -4.0]), np.array([True, True]))
    np.testing.assert_allclose(bias, [2.5, -2.5])
    np.testing.assert_array_equal(trust, [1.0, 1.0])


# --- a mis-registered annotation is moved back -------------------------------------------


def _shifted(mask: np.ndarray, dy: int, dx: int) -> np.ndarray:
    out = np.zeros_like(mask)
    out[max(dy, 0):mask.shape[0] + min(dy, 0), max(dx, 0):mask.shape[1] + min(dx, 0)] = \
        mask[max(-dy, 0):mask.shape[0] + min(-dy, 0), max(-dx, 0):mask.shape[1] + min(-dx, 0)]
    return out


@pytest.mark.parametrize(("dy", "dx"), [(3, 4), (0, -5), (-4, 3), (2, 0)])
def test_an_annotation_shifted_as_a_whole_is_moved_back_before_fusing(dy, dx):
    truth = _disks(RADII)
    moved = _shifted(truth, dy, dx)
    r = fuse([truth, moved, truth.copy()])
    np.testing.assert_array_equal(r.translation, [[0, 0], [-dy, -dx], [0, 0]])
    assert _same_partition(r.labels, truth)
    np.testing.assert_array_equal(r.support, [3] * 6)  # every moved cell votes again
    np.testing.assert_array_equal(r.members[:, 1], r.members[:, 0])  # ids as drawn
    np.testing.assert_allclose(r.boundary_bias, 0.0, atol=1e-9)


def test_shift_correction_leaves_agreeing_and_ambiguous_annotations_alone():
    truth = _disks(RADII)
    grown, shrunk = _disks([x + 1.5 for x in RADII]), _disks([x - 1.5 for x in RADII])
    # outline habits move outlines, not centres: no translation, same result as before
    r = fuse([truth, grown, shrunk])
    np.testing.assert_array_equal(r.translation, np.zeros((3, 2)))
    # a 1 px displacement is below the 2 px threshold
    assert not fuse([truth, _shifted(truth, 1, 0), truth.copy()]).translation.any()
    # two annotations: nothing tells which one is displaced
    assert not fuse([truth, _shifted(truth, 0, 5)]).translation.any()
    # three annotations all displaced from each other: nobody can be told off
    r = fuse([truth, _shifted(truth, 0, 5), _shifted(truth, 5, 0)])
    assert not r.translation.any()
    # two of five displaced (differently): the others do not all agree, nothing moves
    five = [truth, _shifted(truth, 0, 4), truth.copy(), _shifted(truth, -4, 0), truth.copy()]
    assert not fuse(five).translation.any()
