"""Tests for qa.consensus: hand-computed fusions, invariances, validation, weighting."""

from dataclasses import FrozenInstanceError

import numpy as np
import pytest

from qa.consensus import Consensus, fuse, majority_vote
from qa.metrics import match_instances
from qa.simulate import simulate_dataset


def _two_touching_cells(shape=(10, 14)) -> np.ndarray:
    a = np.zeros(shape, np.uint16)
    a[1:4, 1:4] = 1
    a[1:4, 4:7] = 2
    return a


def _disk(shape, cy, cx, r) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


@pytest.fixture(scope="module")
def panel3():
    """Two simulated images, each with three annotations (expert, average, careless)."""
    return [[a.labels for a in s.annotations]
            for s in simulate_dataset(2, 3, seed=21, shape=(128, 128), n_cells=22)]


# --- hand-computed cases ----------------------------------------------------------------


def test_three_annotators_two_agreeing_cells_one_spurious():
    a = _two_touching_cells()
    b = a.copy()
    b[a == 1], b[a == 2] = 7, 3
    b[6:9, 9:12] = 5  # drawn by annotator 1 alone
    c = a * 10
    r = fuse([a, b, c])
    np.testing.assert_array_equal(r.labels, a)
    assert r.labels.dtype == np.uint16
    np.testing.assert_array_equal(r.support, [3, 3])
    np.testing.assert_array_equal(r.members, [[1, 7, 10], [2, 3, 20]])
    np.testing.assert_array_equal(r.rejected, [[0, 5, 0]])
    assert r.rejected_confidence[0] < 0.5 < r.confidence.min()
    np.testing.assert_allclose(r.agreement, [1.0, 1.0])
    np.testing.assert_allclose(r.boundary_bias, [0.0, 0.0, 0.0], atol=1e-12)
    assert r.n_instances == 2 and r.min_support == 2 and r.iou_threshold == 0.5
    # the baseline merges the two touching cells into one component
    mv = majority_vote([a, b, c])
    np.testing.assert_array_equal(mv, (a > 0).astype(np.uint16))


def test_min_support_one_keeps_every_cluster_and_no_rescue_keeps_unanimous_only():
    a = _two_touching_cells()
    b = a.copy()
    b[6:9, 9:12] = 5
    c = a.copy()
    c[a == 2] = 0
    union = fuse([a, b, c], min_support=1)
    assert union.n_instances == 3
    np.testing.assert_array_equal(union.support, [3, 2, 1])
    unanimous = fuse([a, b, c], min_support=3, rescue=False)
    assert unanimous.n_instances == 1
    np.testing.assert_array_equal(unanimous.members, [[1, 1, 1]])
    np.testing.assert_array_equal(unanimous.labels, (a == 1).astype(np.uint16))


def test_boundary_bias_is_estimated_and_corrected():
    shape = (40, 40)
    truth = _disk(shape, 20, 20, 8)
    masks = [_disk(shape, 20, 20, r).astype(np.uint16) for r in (8, 10, 6)]
    r = fuse(masks)
    np.testing.assert_allclose(r.boundary_bias, [0.0, 2.0, -2.0], atol=0.25)
    assert r.n_instances == 1
    iou = np.count_nonzero((r.labels > 0) & truth) / np.count_nonzero((r.labels > 0) | truth)
    assert iou > 0.97
    # a biased pair alone (radii 9 and 7) is corrected to the mean annotator (radius 8)
    pair = fuse([_disk(shape, 20, 20, r).astype(np.uint16) for r in (9, 7)])
    np.testing.assert_allclose(pair.boundary_bias, [1.0, -1.0], atol=0.2)
    iou = np.count_nonzero((pair.labels > 0) & truth) / np.count_nonzero((pair.labels > 0) | truth)
    assert iou > 0.95


def test_eroding_and_dilating_drawings_of_a_small_cell_still_cluster():
    shape = (60, 60)
    cells = [(15, 15), (15, 45), (45, 15), (45, 45)]
    big = np.zeros(shape, np.uint16)
    small = np.zeros(shape, np.uint16)
    mid = np.zeros(shape, np.uint16)
    for i, (cy, cx) in enumerate(cells, start=1):
        big[_disk(shape, cy, cx, 7)] = i
        small[_disk(shape, cy, cx, 4)] = i
        mid[_disk(shape, cy, cx, 5.5)] = i
    mid[mid == 4] = 0  # cell 4 is drawn only by the dilating and the eroding annotator,
    # whose drawings overlap with IoU 16/49 < 0.5: they meet only after bias correction
    r = fuse([big, small, mid])
    assert r.n_instances == 4
    np.testing.assert_array_equal(r.support, [3, 3, 3, 2])


def test_a_lone_speck_is_judged_less_likely_real_than_a_lone_cell_sized_instance():
    shape = (60, 80)
    base = np.zeros(shape, np.uint16)
    for i, (cy, cx) in enumerate([(10, 10), (10, 30), (10, 50), (30, 10), (30, 30), (30, 50)],
                                 start=1):
        base[_disk(shape, cy, cx, 5)] = i
    a, b, c = base.copy(), base.copy(), base.copy()
    a[_disk(shape, 50, 15, 5)] = 20  # cell-sized, drawn by annotator 0 alone
    b[_disk(shape, 50, 60, 1.5)] = 30  # a speck, drawn by annotator 1 alone
    r = fuse([a, b, c])
    np.testing.assert_array_equal(r.support, [3] * 6)
    np.testing.assert_array_equal(r.rejected, [[20, 0, 0], [0, 30, 0]])
    cell, speck = r.rejected_confidence
    # same votes, but the speck is far smaller than the cells the annotators agree on
    assert speck < 0.02 and cell > 0.4 and cell > 20 * speck
    np.testing.assert_array_equal(fuse([a, b, c], min_support=1).support, [3] * 6 + [1, 1])


def test_touching_cells_stay_separate_when_outlines_overlap():
    a = _two_touching_cells((8, 10))
    b = a.copy()
    b[1:4, 3] = 1  # annotator b gives column 3 to the left cell as well -> overlap in c
    c = a.copy()
    r = fuse([a, b, c])
    assert r.n_instances == 2
    assert set(np.unique(r.labels)) == {0, 1, 2}
    np.testing.assert_array_equal(r.labels, a)


def test_single_annotator_is_relabelled_copy():
    m = np.zeros((6, 8), np.int32)
    m[0:2, 5:7] = 40
    m[3:5, 1:3] = 9
    r = fuse([m])
    expected = np.zeros((6, 8), np.uint16)
    expected[0:2, 5:7] = 1
    expected[3:5, 1:3] = 2
    np.testing.assert_array_equal(r.labels, expected)
    np.testing.assert_array_equal(r.members, [[40], [9]])
    np.testing.assert_array_equal(r.support, [1, 1])
    np.testing.assert_array_equal(r.confidence, [1.0, 1.0])
    assert np.isnan(r.sensitivity).all() and r.min_support == 1


def test_all_background_and_empty_annotations():
    zeros = [np.zeros((5, 7), np.uint16) for _ in range(3)]
    r = fuse(zeros)
    assert r.n_instances == 0 and not r.labels.any() and r.labels.shape == (5, 7)
    assert r.support.shape == (0,) and r.confidence.shape == (0,)
    assert r.members.shape == (0, 3) and r.rejected.shape == (0, 3)
    np.testing.assert_array_equal(r.boundary_bias, [0.0, 0.0, 0.0])
    assert not majority_vote(zeros).any()
    # one annotator drew a cell, the other two nothing: not supported, not rescued
    one = [z.copy() for z in zeros]
    one[0][1:4, 1:4] = 3
    r = fuse(one)
    assert r.n_instances == 0
    np.testing.assert_array_equal(r.rejected, [[3, 0, 0]])


def test_stacked_array_input_equals_list_input():
    a = _two_touching_cells()
    stack = np.stack([a, a, a * 2])
    np.testing.assert_array_equal(fuse(stack).labels, fuse(list(stack)).labels)


def test_majority_vote_threshold():
    a = np.array([[1, 1, 0, 0], [0, 0, 0, 2]], np.uint16)
    b = np.array([[1, 0, 0, 0], [0, 0, 3, 3]], np.uint16)
    c = np.array([[0, 0, 0, 0], [0, 0, 0, 5]], np.uint16)
    np.testing.assert_array_equal(majority_vote([a, b, c]),
                                  [[1, 0, 0, 0], [0, 0, 0, 2]])
    np.testing.assert_array_equal(majority_vote([a, b, c], min_votes=1),
                                  [[1, 1, 0, 0], [0, 0, 2, 2]])
    with pytest.raises(ValueError, match="min_votes"):
        majority_vote([a, b, c], min_votes=4)


# --- invariances ------------------------------------------------------------------------


def test_invariant_to_annotator_order(panel3):
    for masks in panel3:
        ref = fuse(masks)
        perm = [2, 0, 1]
        other = fuse([masks[i] for i in perm])
        np.testing.assert_array_equal(other.labels, ref.labels)
        np.testing.assert_array_equal(other.members, ref.members[:, perm])
        np.testing.assert_array_equal(other.support, ref.support)
        np.testing.assert_allclose(other.confidence, ref.confidence, atol=1e-9)
        np.testing.assert_allclose(other.boundary_bias, ref.boundary_bias[perm], atol=1e-9)


def test_invariant_to_label_ids(panel3):
    rng = np.random.default_rng(0)
    for masks in panel3:
        ref = fuse(masks)
        relabelled, luts = [], []
        for m in masks:
            lut = np.zeros(int(m.max()) + 1, np.int64)
            lut[1:] = rng.permutation(int(m.max())) * 97 + 70_000  # non-sequential, > uint16
            relabelled.append(lut[m].astype(np.uint32))
            luts.append(lut)
        other = fuse(relabelled)
        np.testing.assert_array_equal(other.labels, ref.labels)
        expected = np.stack([luts[j][ref.members[:, j]] for j in range(3)], axis=1)
        expected[ref.members == 0] = 0
        np.testing.assert_array_equal(other.members, expected)


def test_equal_weights_are_the_same_as_no_weights(panel3):
    masks = panel3[0]
    ref = fuse(masks)
    for w in ([1, 1, 1], [0.3, 0.3, 0.3]):
        r = fuse(masks, weights=w)
        np.testing.assert_array_equal(r.labels, ref.labels)
        np.testing.assert_allclose(r.confidence, ref.confidence)


# --- weights and quality on simulated data ----------------------------------------------


def _scores(data, labels):
    rs = [match_instances(gt, lab) for (gt, _), lab in zip(data, labels, strict=True)]
    return np.mean([r.ap for r in rs]), np.mean([r.mean_matched_iou for r in rs])


@pytest.mark.parametrize("n", [3, 5])
def test_weighted_fusion_is_never_worse_than_unweighted(n):
    data = [(s.image.labels, [a.labels for a in s.annotations])
            for s in simulate_dataset(4, n, seed=5, shape=(160, 160), n_cells=30)]
    plain = [fuse(ms) for _, ms in data]
    # first-pass reliabilities: each annotator's mean F1 against the unweighted consensus
    w = np.array([[match_instances(c.labels, ms[j]).f1 for j in range(n)]
                  for c, (_, ms) in zip(plain, data, strict=True)]).mean(axis=0)
    assert w[-1] < w[0]  # the careless annotator is less reliable than the expert
    weighted = [fuse(ms, weights=w) for _, ms in data]
    ap_u, iou_u = _scores(data, [c.labels for c in plain])
    ap_w, iou_w = _scores(data, [c.labels for c in weighted])
    assert ap_w >= ap_u
    assert iou_w >= iou_u - 0.005  # weights only move outlines by re-weighting pixel votes
    # extreme weights must not switch off the rescue of cells a minority drew: what is
    # judged real (posterior > 0.5) does not depend on the weights at all
    extreme = [fuse(ms, weights=[1.0] + [0.01] * (n - 1)) for _, ms in data]
    n_rescued = 0
    for c_plain, c_ext in zip(plain, extreme, strict=True):
        judged_fake = {tuple(m) for m, p in zip(c_plain.rejected.tolist(),
                                                c_plain.rejected_confidence, strict=True)
                       if p <= 0.5}
        assert judged_fake == {tuple(m) for m, p in zip(c_ext.rejected.tolist(),
                                                        c_ext.rejected_confidence, strict=True)
                               if p <= 0.5}
        n_rescued += int(np.sum(c_plain.support < c_plain.min_support))
    assert n_rescued >= 2


def test_consensus_beats_annotators_and_majority_vote_with_five():
    data = [(s.image.labels, [a.labels for a in s.annotations])
            for s in simulate_dataset(3, 5, seed=8, shape=(160, 160), n_cells=30)]
    ap_c, _ = _scores(data, [fuse(ms).labels for _, ms in data])
    ap_mv, _ = _scores(data, [majority_vote(ms) for _, ms in data])
    best = max(_scores(data, [ms[j] for _, ms in data])[0] for j in range(5))
    assert ap_c > best + 0.02
    assert ap_c > ap_mv + 0.2


# --- validation -------------------------------------------------------------------------


@pytest.mark.parametrize(("masks", "exc", "message"), [
    ([], ValueError, "at least one"),
    ("abc", TypeError, "sequence"),
    ([np.zeros((4, 4), np.uint8), np.zeros((4, 5), np.uint8)], ValueError, "same shape"),
    ([np.zeros((4, 4), float)], TypeError, "integer dtype"),
    ([np.zeros((4, 4), bool)], TypeError, "boolean"),
    ([np.zeros((2, 4, 4), np.uint8)[0:1]], ValueError, "2-D"),
    ([np.full((4, 4), -1, np.int32)], ValueError, "negative"),
    (np.zeros((4, 4), np.uint8), ValueError, r"\(K, H, W\)"),
])
def test_mask_validation(masks, exc, message):
    with pytest.raises(exc, match=message):
        fuse(masks)
    with pytest.raises(exc, match=message):
        majority_vote(masks)


@pytest.mark.parametrize(("kwargs", "exc", "message"), [
    ({"iou_threshold": 0.0}, ValueError, "iou_threshold"),
    ({"iou_threshold": 1.5}, ValueError, "iou_threshold"),
    ({"iou_threshold": "0.5"}, TypeError, "iou_threshold"),
    ({"min_support": 0}, ValueError, "min_support"),
    ({"min_support": 4}, ValueError, "min_support"),
    ({"min_support": 2.0}, TypeError, "min_support"),
    ({"min_support": True}, TypeError, "min_support"),
    ({"weights": [1, 1]}, ValueError, "3 numbers"),
    ({"weights": [1, -1, 1]}, ValueError, ">= 0"),
    ({"weights": [1, np.nan, 1]}, ValueError, "finite"),
    ({"weights": [0, 0, 0]}, ValueError, "all be zero"),
    ({"weights": "abc"}, ValueError, "3 numbers"),
    ({"weights": [[1, 1, 1]]}, ValueError, "1-D"),
])
def test_option_validation(kwargs, exc, message):
    masks = [_two_touching_cells()] * 3
    with pytest.raises(exc, match=message):
        fuse(masks, **kwargs)


def test_consensus_is_frozen():
    r = fuse([_two_touching_cells()] * 2)
    assert isinstance(r, Consensus)
    with pytest.raises(FrozenInstanceError):
        r.labels = None
