"""Tests for qa.metrics: hand-computed cases, invariances, empty images, validation, and
agreement with StarDist and Cellpose on StarDist's real nuclei mask."""

from __future__ import annotations

import dataclasses
import doctest
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import stardist
import tifffile
from cellpose import metrics as cellpose_metrics
from scipy import ndimage as ndi
from stardist.matching import matching as stardist_matching

import qa.metrics
from qa.metrics import (
    DEFAULT_THRESHOLDS,
    MatchResult,
    Overlaps,
    PairwiseAgreement,
    aggregated_jaccard_index,
    average_precision,
    boundary_f1,
    f1_scores,
    instance_boundaries,
    instance_overlaps,
    match_at_thresholds,
    match_instances,
    match_overlaps,
    pairwise_agreement,
    pixel_dice,
)

SCORES = ("precision", "recall", "f1", "ap", "mean_matched_iou", "panoptic_quality")


def row(*values: int, dtype=np.int32) -> np.ndarray:
    """A 1 x n label image."""
    return np.array([values], dtype=dtype)


# ---------------------------------------------------------------------------------------------
# instance_overlaps


def test_overlaps_hand_computed_with_non_sequential_ids():
    a = np.array([[4, 4, 4, 0], [9, 9, 0, 0], [0, 0, 0, 0]], np.uint16)
    b = np.array([[7, 7, 0, 0], [7, 2, 2, 0], [0, 0, 2, 5]], np.uint16)
    ov = instance_overlaps(a, b)
    assert ov.labels_a.tolist() == [4, 9]
    assert ov.labels_b.tolist() == [2, 5, 7]
    assert ov.areas_a.tolist() == [3, 2]
    assert ov.areas_b.tolist() == [3, 1, 3]
    # 4&7: 2 px, union 4; 9&2: 1 px, union 4; 9&7: 1 px, union 4
    assert ov.pairs.tolist() == [[0, 2], [1, 0], [1, 2]]
    assert ov.intersections.tolist() == [2, 1, 1]
    assert ov.ious.tolist() == [0.5, 0.25, 0.25]
    assert ov.n_a == 2 and ov.n_b == 3
    for name in ("labels_a", "labels_b", "areas_a", "areas_b", "pairs", "intersections"):
        assert getattr(ov, name).dtype == np.int64
    assert ov.ious.dtype == np.float64


def test_overlaps_swapped_exchanges_roles():
    a = np.array([[4, 4, 4, 0], [9, 9, 0, 0]], np.uint16)
    b = np.array([[7, 7, 0, 0], [7, 2, 2, 0]], np.uint16)
    ab = instance_overlaps(a, b).swapped()
    ba = instance_overlaps(b, a)
    for field in dataclasses.fields(Overlaps):
        np.testing.assert_array_equal(getattr(ab, field.name), getattr(ba, field.name))


def _table(ov: Overlaps) -> set[tuple[int, int, int, int, int]]:
    """(id_a, id_b, intersection, area_a, area_b) of every overlapping pair."""
    return {
        (int(ov.labels_a[i]), int(ov.labels_b[j]), int(n), int(ov.areas_a[i]), int(ov.areas_b[j]))
        for (i, j), n in zip(ov.pairs, ov.intersections, strict=True)
    }


@pytest.mark.parametrize(
    ("ids_a", "ids_b", "dtype"),
    [
        ([0, 1, 2, 3], [0, 1, 2, 3], np.uint8),  # dense count table
        ([0, 10**6, 17, 10**6 + 5], [0, 3, 2 * 10**6, 9], np.int64),  # sorted, packed ids
        ([0, 2**62, 17, 2**63 - 1], [0, 2**63 - 2, 3, 2**40], np.uint64),  # compact indices
        ([0, 2**62, 17, 2**63 - 1], [0, 2**63 - 2, 3, 2**40], np.int64),
    ],
)
def test_overlaps_same_for_any_ids_and_integer_dtype(ids_a, ids_b, dtype):
    a = np.array([[1, 1, 0, 2], [3, 3, 0, 2]], np.int64)
    b = np.array([[1, 0, 0, 2], [1, 3, 3, 2]], np.int64)
    lut_a = np.array(ids_a, dtype)
    lut_b = np.array(ids_b, dtype)
    ov = instance_overlaps(lut_a[a], lut_b[b])
    assert ov.labels_a.tolist() == sorted(int(i) for i in ids_a[1:])
    assert ov.areas_a.tolist() == [
        int(np.count_nonzero(a == np.flatnonzero(lut_a == i)[0])) for i in ov.labels_a.tolist()
    ]
    relabelled = {
        (ids_a[i], ids_b[j], n, p, q) for i, j, n, p, q in _table(instance_overlaps(a, b))
    }
    assert _table(ov) == relabelled
    # (1,1): 1 px of 2 and 2; (2,2): 2 of 2 and 2; (3,1): 1 of 2 and 2; (3,3): 1 of 2 and 2
    assert sorted(ov.ious.tolist()) == [1 / 3, 1 / 3, 1 / 3, 1.0]


def test_overlaps_refuse_uint64_ids_beyond_int64():
    a = np.array([[0, 2**63]], np.uint64)
    with pytest.raises(ValueError, match="ids >= 2\\*\\*63"):
        instance_overlaps(a, a)


def test_overlaps_empty_images():
    ov = instance_overlaps(np.zeros((3, 3), np.uint8), np.zeros((3, 3), np.uint8))
    assert ov.n_a == 0 and ov.n_b == 0
    assert ov.pairs.shape == (0, 2) and ov.ious.shape == (0,)
    ov = instance_overlaps(np.zeros((0, 0), np.uint16), np.zeros((0, 0), np.uint16))
    assert ov.pairs.shape == (0, 2)
    ov = instance_overlaps(row(0, 3, 3), row(0, 0, 0))
    assert ov.labels_a.tolist() == [3] and ov.areas_a.tolist() == [2] and ov.n_b == 0


def test_overlaps_are_read_only():
    ov = instance_overlaps(row(1, 1, 2), row(1, 2, 2))
    with pytest.raises(dataclasses.FrozenInstanceError):
        ov.ious = None
    with pytest.raises(ValueError, match="read-only"):
        ov.ious[0] = 1.0


# ---------------------------------------------------------------------------------------------
# match_instances: hand-computed cases


def test_match_hand_computed_scores():
    # reference cells 1 (4 px), 2 (2 px), 3 (1 px); candidate 8 = cell 1 + 1 px (IoU 4/5),
    # 9 = cell 2 exactly (IoU 1), 5 = spurious; cell 3 is missed
    ref = row(1, 1, 1, 1, 0, 2, 2, 0, 3, 0, 0)
    cand = row(8, 8, 8, 8, 8, 9, 9, 0, 0, 0, 5)
    r = match_instances(ref, cand)
    assert r.pairs.tolist() == [[1, 8], [2, 9]]
    assert r.ious.tolist() == [0.8, 1.0]
    assert (r.tp, r.fp, r.fn) == (2, 1, 1)
    assert (r.n_reference, r.n_candidate) == (3, 3)
    assert r.precision == 2 / 3
    assert r.recall == 2 / 3
    assert r.f1 == 4 / 6
    assert r.ap == 2 / 4
    assert r.mean_matched_iou == pytest.approx(0.9, abs=1e-15)
    assert r.panoptic_quality == pytest.approx(1.8 / 3, abs=1e-15)
    assert r.iou_threshold == 0.5
    assert r.pairs.dtype == np.int64 and r.ious.dtype == np.float64


def test_iou_equal_to_threshold_matches():
    # IoU exactly 1/2 and exactly 3/5
    half = match_instances(row(1, 1, 0), row(2, 0, 0), iou_threshold=0.5)
    assert (half.tp, half.ious.tolist()) == (1, [0.5])
    assert match_instances(row(1, 1, 0), row(2, 0, 0), iou_threshold=0.51).tp == 0
    three_fifths = match_instances(row(1, 1, 1, 1, 1), row(0, 2, 2, 2, 0), iou_threshold=0.6)
    assert three_fifths.tp == 1
    assert match_instances(row(1, 1, 1, 1, 1), row(0, 2, 2, 2, 0), iou_threshold=0.61).tp == 0


def test_cell_cut_in_two_exact_halves_at_threshold_one_half():
    # both halves have IoU exactly 0.5 with the cell: only one can be its match
    r = match_instances(row(1, 1, 1, 1), row(5, 5, 6, 6), iou_threshold=0.5)
    assert (r.tp, r.fp, r.fn) == (1, 1, 0)
    assert r.ious.tolist() == [0.5]
    assert r.pairs[0, 0] == 1 and r.pairs[0, 1] in (5, 6)
    assert r.f1 == 2 / 3


def test_low_threshold_uses_optimal_assignment_not_greedy():
    # A = px 0..9, B = px 10..19; X = px 4..13, Y = px 0..3
    # IoU(A,X) = 6/14, IoU(B,X) = 4/16, IoU(A,Y) = 4/10
    ref = np.array([[1] * 10 + [2] * 10], np.int32)
    cand = np.array([[4] * 4 + [3] * 10 + [0] * 6], np.int32)
    r = match_instances(ref, cand, iou_threshold=0.25)
    # greedy (best IoU first) would take A-X and leave B unmatched
    assert r.pairs.tolist() == [[1, 4], [2, 3]]
    assert r.ious.tolist() == [0.4, 0.25]
    assert (r.tp, r.fp, r.fn) == (2, 0, 0)
    assert r.mean_matched_iou == pytest.approx(0.325, abs=1e-15)
    # at 0.3 only one pair can count; like StarDist, the tie-break maximises the IoU of all
    # assigned pairs (A-Y 0.4 + B-X 0.25 > A-X 0.43), so the true positive is A-Y
    r = match_instances(ref, cand, iou_threshold=0.3)
    assert r.pairs.tolist() == [[1, 4]]
    assert (r.tp, r.fp, r.fn) == (1, 1, 1)
    s = stardist_matching(ref, cand, thresh=0.3, report_matches=True)
    assert [s.matched_pairs[i] for i in s.matched_tps] == [(1, 4)]


def test_merged_cell_matches_at_most_one_reference_cell():
    ref = row(1, 1, 1, 0, 2, 2, 2)
    cand = row(3, 3, 3, 3, 3, 3, 3)
    assert match_instances(ref, cand).tp == 0  # IoU 3/7 each
    r = match_instances(ref, cand, iou_threshold=0.4)
    assert (r.tp, r.fp, r.fn) == (1, 0, 1)
    assert r.ious.tolist() == [3 / 7]


def test_one_id_in_two_pieces_is_one_instance():
    ref = row(7, 7, 0, 0, 7, 7)
    cand = row(2, 2, 0, 0, 3, 3)
    r = match_instances(ref, cand, iou_threshold=0.5)
    assert (r.n_reference, r.n_candidate) == (1, 2)
    assert (r.tp, r.fp, r.fn) == (1, 1, 0)
    assert r.ious.tolist() == [0.5]


# ---------------------------------------------------------------------------------------------
# empty cases


def _assert_all_scores(r: MatchResult, value: float) -> None:
    for name in SCORES:
        assert getattr(r, name) == value, name


@pytest.mark.parametrize("shape", [(4, 5), (0, 0), (0, 3)])
def test_both_empty_agree_perfectly(shape):
    r = match_instances(np.zeros(shape, np.uint16), np.zeros(shape, np.uint16))
    assert (r.tp, r.fp, r.fn, r.n_reference, r.n_candidate) == (0, 0, 0, 0, 0)
    assert r.pairs.shape == (0, 2) and r.ious.shape == (0,)
    _assert_all_scores(r, 1.0)
    empty = np.zeros(shape, np.uint16)
    assert average_precision(empty, empty).tolist() == [1.0] * 10
    assert f1_scores(empty, empty, thresholds=[0.5]).tolist() == [1.0]


def test_reference_empty_all_false_positives():
    r = match_instances(row(0, 0, 0, 0), row(3, 0, 5, 5))
    assert (r.tp, r.fp, r.fn) == (0, 2, 0)
    assert r.pairs.shape == (0, 2)
    _assert_all_scores(r, 0.0)


def test_candidate_empty_all_false_negatives():
    r = match_instances(row(3, 0, 5, 5), row(0, 0, 0, 0))
    assert (r.tp, r.fp, r.fn) == (0, 0, 2)
    _assert_all_scores(r, 0.0)


def test_no_overlap_at_all():
    r = match_instances(row(1, 1, 0, 0), row(0, 0, 2, 2))
    assert (r.tp, r.fp, r.fn) == (0, 1, 1)
    _assert_all_scores(r, 0.0)


# ---------------------------------------------------------------------------------------------
# invariances


def _scores_of(r: MatchResult) -> tuple:
    return (r.tp, r.fp, r.fn, *(getattr(r, name) for name in SCORES))


@pytest.fixture(scope="module")
def mask2d() -> np.ndarray:
    """StarDist's real nuclei mask: 512 x 512 uint16, 125 nuclei, ids up to 183, id 129 in
    two pieces."""
    path = Path(stardist.__file__).parent / "data" / "images" / "mask2d.tif"
    return tifffile.imread(path)


def test_mask2d_is_what_the_tests_assume(mask2d):
    assert mask2d.shape == (512, 512) and mask2d.dtype == np.uint16
    assert np.unique(mask2d).size - 1 == 125 and mask2d.max() == 183
    assert ndi.label(mask2d == 129)[1] == 2


def _random_relabel(labels: np.ndarray, rng: np.random.Generator, *, top: int) -> np.ndarray:
    ids = np.unique(labels)
    ids = ids[ids > 0]
    lut = np.zeros(int(labels.max()) + 1, np.int64)
    lut[ids] = rng.choice(top - 1, ids.size, replace=False) + 1
    return lut[labels]


def test_invariant_to_label_permutation_and_non_sequential_ids(mask2d):
    rng = np.random.default_rng(5)
    cand = np.roll(ndi.grey_dilation(mask2d, size=3), 2, axis=1)
    base = match_at_thresholds(mask2d, cand, thresholds=(0.3, 0.5, 0.75))
    ref2 = _random_relabel(mask2d, rng, top=10**9)
    cand2 = _random_relabel(cand, rng, top=70000).astype(np.uint32)
    moved = match_at_thresholds(ref2, cand2, thresholds=(0.3, 0.5, 0.75))
    ref_lut = np.zeros(int(mask2d.max()) + 1, np.int64)
    ref_lut[mask2d.ravel()] = ref2.ravel()
    cand_lut = np.zeros(int(cand.max()) + 1, np.int64)
    cand_lut[cand.ravel()] = cand2.ravel()
    for r0, r1 in zip(base, moved, strict=True):
        assert _scores_of(r0) == _scores_of(r1)
        assert r0.tp > 50
        # the same cells are matched, under their new ids
        expected = sorted(
            zip(ref_lut[r0.pairs[:, 0]].tolist(), cand_lut[r0.pairs[:, 1]].tolist(), strict=True)
        )
        assert sorted(map(tuple, r1.pairs.tolist())) == expected


def test_swapping_reference_and_candidate(mask2d):
    cand = ndi.grey_erosion(mask2d, size=5)
    cand[100:200, 100:200] = 0
    for t in (0.2, 0.5, 0.7, 0.9):
        ab = match_instances(mask2d, cand, iou_threshold=t)
        ba = match_instances(cand, mask2d, iou_threshold=t)
        assert (ab.tp, ab.fp, ab.fn) == (ba.tp, ba.fn, ba.fp)
        assert (ab.precision, ab.recall) == (ba.recall, ba.precision)
        assert ab.f1 == ba.f1 and ab.ap == ba.ap
        assert ab.mean_matched_iou == pytest.approx(ba.mean_matched_iou, abs=1e-15)
        assert ab.panoptic_quality == pytest.approx(ba.panoptic_quality, abs=1e-15)
        assert sorted(map(tuple, ab.pairs.tolist())) == sorted(
            map(tuple, ba.pairs[:, ::-1].tolist())
        )
    assert match_instances(mask2d, cand).fn > match_instances(mask2d, cand).fp


def test_identical_images_match_perfectly(mask2d):
    r = match_instances(mask2d, mask2d, iou_threshold=1.0)
    assert (r.tp, r.fp, r.fn) == (125, 0, 0)
    _assert_all_scores(r, 1.0)
    assert r.pairs[:, 0].tolist() == r.pairs[:, 1].tolist() == np.unique(mask2d)[1:].tolist()


# ---------------------------------------------------------------------------------------------
# agreement with StarDist and Cellpose


@pytest.fixture(scope="module")
def perturbed(mask2d) -> dict[str, np.ndarray]:
    """Copies of mask2d with the errors the tests compare on, made once per module."""
    return _perturbations(mask2d)


def _perturbations(y: np.ndarray) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(2017)
    ids = np.unique(y)[1:]
    out = {}
    out["eroded"] = np.where(ndi.minimum_filter(y, 3) == ndi.maximum_filter(y, 3), y, 0)
    out["dilated"] = ndi.grey_dilation(y, size=5)
    out["shifted"] = np.roll(y, (3, -4), axis=(0, 1))
    dropped = y.copy()
    dropped[np.isin(dropped, rng.choice(ids, 25, replace=False))] = 0
    out["dropped"] = dropped
    merged = y.copy()
    # merge each nucleus with its nearest-id neighbour that touches it after dilation
    grown = ndi.grey_dilation(y, size=7)
    for i in rng.choice(ids, 30, replace=False):
        touching = np.unique(grown[(y == i)])
        others = touching[(touching != i) & (touching != 0)]
        if others.size:
            merged[merged == others[0]] = i
    out["merged"] = merged
    out["relabelled"] = _random_relabel(
        np.roll(ndi.grey_erosion(y, size=3), 2, axis=0), rng, top=5000
    )
    split = y.copy()
    for i in rng.choice(ids, 20, replace=False):
        yy, xx = np.nonzero(y == i)
        cut = xx > np.median(xx)
        split[yy[cut], xx[cut]] = 1000 + i
    out["split"] = split
    return out


AGREEMENT_THRESHOLDS = (0.1, 0.25, 0.4, *DEFAULT_THRESHOLDS)


def _dense_iou_lookup(ref: np.ndarray, cand: np.ndarray) -> dict[tuple[int, int], float]:
    """IoU of every overlapping pair, from a dense count matrix built with np.add.at."""
    ids_r, inv_r = np.unique(ref, return_inverse=True)
    ids_c, inv_c = np.unique(cand, return_inverse=True)
    counts = np.zeros((ids_r.size, ids_c.size), np.int64)
    np.add.at(counts, (inv_r.ravel(), inv_c.ravel()), 1)
    area_r = counts.sum(axis=1)
    area_c = counts.sum(axis=0)
    return {
        (int(ids_r[i]), int(ids_c[j])): counts[i, j] / (area_r[i] + area_c[j] - counts[i, j])
        for i, j in zip(*np.nonzero(counts), strict=True)
        if ids_r[i] and ids_c[j]
    }


def _float64_scores_of_stardist_matches(iou, s) -> tuple[float, float]:
    """Mean matched IoU and PQ recomputed in float64 from StarDist's true-positive pairs."""
    total = sum(iou[s.matched_pairs[k]] for k in s.matched_tps)
    tp, fp, fn = s.tp, s.fp, s.fn
    return (total / tp if tp else 0.0), (total / (tp + fp / 2 + fn / 2) if tp else 0.0)


@pytest.mark.parametrize(
    "kind", ["eroded", "dilated", "shifted", "dropped", "merged", "relabelled", "split"]
)
def test_equals_stardist_and_cellpose_on_real_mask(mask2d, perturbed, kind):
    cand = perturbed[kind]
    for ref, other in ((mask2d, cand), (cand, mask2d)):
        ours = match_at_thresholds(ref, other, thresholds=AGREEMENT_THRESHOLDS)
        theirs = stardist_matching(ref, other, thresh=AGREEMENT_THRESHOLDS, report_matches=True)
        iou = _dense_iou_lookup(ref, other)
        for r, s in zip(ours, theirs, strict=True):
            assert (r.tp, r.fp, r.fn) == (s.tp, s.fp, s.fn), r.iou_threshold
            assert (r.n_reference, r.n_candidate) == (s.n_true, s.n_pred)
            for mine, their in (
                (r.precision, s.precision),
                (r.recall, s.recall),
                (r.f1, s.f1),
                (r.ap, s.accuracy),
            ):
                assert abs(mine - their) <= 1e-9
            # StarDist computes IoUs in float32: equal to float32 precision ...
            assert abs(r.mean_matched_iou - s.mean_matched_score) <= 1e-6
            assert abs(r.panoptic_quality - s.panoptic_quality) <= 1e-6
            # ... and to 1e-9 when its matched pairs are scored in float64
            mean64, pq64 = _float64_scores_of_stardist_matches(iou, s)
            assert abs(r.mean_matched_iou - mean64) <= 1e-9
            assert abs(r.panoptic_quality - pq64) <= 1e-9
            if r.iou_threshold > 0.5:
                tp_pairs = sorted(s.matched_pairs[k] for k in s.matched_tps)
                assert sorted(map(tuple, r.pairs.tolist())) == tp_pairs
        # Cellpose counts max(id) cells: compare after sequential relabelling
        seq_ref = _sequential(ref)
        seq_other = _sequential(other)
        cp_ap, cp_tp, cp_fp, cp_fn = cellpose_metrics.average_precision(
            seq_ref, seq_other, threshold=list(AGREEMENT_THRESHOLDS)
        )
        ap = average_precision(ref, other, thresholds=AGREEMENT_THRESHOLDS)
        assert [(r.tp, r.fp, r.fn) for r in ours] == list(
            zip(
                cp_tp.astype(int).tolist(),
                cp_fp.astype(int).tolist(),
                cp_fn.astype(int).tolist(),
                strict=True,
            )
        )
        np.testing.assert_allclose(
            ap, cp_tp / (cp_tp + cp_fp + cp_fn).astype(np.float64), rtol=0, atol=1e-12
        )
        np.testing.assert_allclose(ap, cp_ap, rtol=0, atol=1e-6)  # Cellpose's AP is float32
    assert any(r.tp < 125 for r in ours)


def _sequential(labels: np.ndarray) -> np.ndarray:
    ids = np.unique(labels)
    ids = ids[ids > 0]
    lut = np.zeros(int(labels.max()) + 1, np.int64)
    lut[ids] = np.arange(1, ids.size + 1)
    return lut[labels]


def test_equals_stardist_on_random_small_images_where_assignment_matters():
    rng = np.random.default_rng(11)
    thresholds = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
    n_conflicts = 0
    for _ in range(150):
        a = _random_boxes(rng)
        b = np.where(rng.random(a.shape) < 0.6, a, _random_boxes(rng))
        ours = match_at_thresholds(a, b, thresholds=thresholds)
        theirs = stardist_matching(a, b, thresh=thresholds)
        for r, s in zip(ours, theirs, strict=True):
            if r.n_reference == 0 and r.n_candidate == 0:
                continue
            assert (r.tp, r.fp, r.fn) == (s.tp, s.fp, s.fn)
            assert abs(r.f1 - s.f1) <= 1e-9
            assert abs(r.mean_matched_iou - s.mean_matched_score) <= 1e-6
            assert abs(r.panoptic_quality - s.panoptic_quality) <= 1e-6
            ov = instance_overlaps(a, b)
            above = ov.pairs[ov.ious >= r.iou_threshold]
            if above.size and (
                np.bincount(above[:, 0]).max() > 1 or np.bincount(above[:, 1]).max() > 1
            ):
                n_conflicts += 1
    assert n_conflicts > 100  # the sparse assignment was really exercised


def _random_boxes(rng: np.random.Generator) -> np.ndarray:
    z = np.zeros((12, 12), np.int32)
    for _ in range(rng.integers(0, 8)):
        y, x = rng.integers(0, 12, 2)
        h, w = rng.integers(1, 6, 2)
        z[y : y + h, x : x + w] = rng.integers(1, 40)
    return z


def test_arange_thresholds_compare_as_given(mask2d, perturbed):
    # np.arange gives 0.6000000000000001 etc.; Cellpose compares in float64 exactly as we do
    ref = _sequential(mask2d)
    cand = _sequential(perturbed["shifted"])
    thresholds = np.arange(0.5, 1.0, 0.05)
    ap = average_precision(ref, cand, thresholds=thresholds)
    cp_ap, _, _, _ = cellpose_metrics.average_precision(ref, cand, threshold=thresholds)
    np.testing.assert_allclose(ap, cp_ap, rtol=0, atol=1e-6)
    assert ap[0] > 0.5
    used = [r.iou_threshold for r in match_at_thresholds(ref, cand, thresholds=thresholds)]
    assert used == thresholds.tolist()


# ---------------------------------------------------------------------------------------------
# several thresholds


def test_average_precision_and_f1_scores_equal_single_threshold_matching(mask2d, perturbed):
    cand = perturbed["dilated"]
    thresholds = (0.9, 0.5, 0.7)  # any order
    ap = average_precision(mask2d, cand, thresholds=thresholds)
    f1 = f1_scores(mask2d, cand, thresholds=thresholds)
    assert ap.shape == (3,) and ap.dtype == np.float64
    for k, t in enumerate(thresholds):
        single = match_instances(mask2d, cand, iou_threshold=t)
        assert ap[k] == single.ap and f1[k] == single.f1
    assert ap[1] > ap[2] > ap[0]


def test_default_thresholds_are_the_ten_decimals():
    assert DEFAULT_THRESHOLDS == (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
    r = match_at_thresholds(row(1, 1, 1, 1, 0), row(2, 2, 2, 0, 0))  # IoU 3/4
    assert [x.tp for x in r] == [1, 1, 1, 1, 1, 1, 0, 0, 0, 0]
    assert (
        average_precision(row(1, 1, 1, 1, 0), row(2, 2, 2, 0, 0)).tolist() == [1.0] * 6 + [0.0] * 4
    )


def test_match_overlaps_equals_match_instances(mask2d, perturbed):
    cand = perturbed["split"]
    ov = instance_overlaps(mask2d, cand)
    for t in (0.3, 0.5, 0.8):
        a = match_overlaps(ov, iou_threshold=t)
        b = match_instances(mask2d, cand, iou_threshold=t)
        assert _scores_of(a) == _scores_of(b)
        np.testing.assert_array_equal(a.pairs, b.pairs)


def test_match_result_is_frozen_and_read_only():
    r = match_instances(row(1, 1), row(2, 2))
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.tp = 3
    with pytest.raises(ValueError, match="read-only"):
        r.pairs[0, 0] = 9


# ---------------------------------------------------------------------------------------------
# pixel_dice, aggregated_jaccard_index, boundary_f1


def test_pixel_dice_hand_computed():
    assert pixel_dice(row(1, 1, 0, 0), row(0, 3, 3, 0)) == 0.5
    assert pixel_dice(row(1, 2, 3, 0), row(4, 4, 4, 0)) == 1.0  # ids are ignored
    assert pixel_dice(np.array([[True, True, False]]), row(0, 5, 5)) == 0.5
    assert pixel_dice(row(0, 0), row(0, 0)) == 1.0
    assert pixel_dice(row(1, 0), row(0, 0)) == 0.0


def _kumar_aji_loop(ref: np.ndarray, cand: np.ndarray) -> float:
    """Straight transcription of Kumar et al.'s algorithm, one cell at a time."""
    cand_ids = [j for j in np.unique(cand) if j]
    used = set()
    inter_sum = union_sum = 0
    for i in (i for i in np.unique(ref) if i):
        g = ref == i
        best, best_iou = None, 0.0
        for j in cand_ids:
            s = cand == j
            inter = np.count_nonzero(g & s)
            iou = inter / np.count_nonzero(g | s)
            if iou > best_iou:
                best, best_iou = j, iou
        if best is None:
            union_sum += np.count_nonzero(g)
            continue
        s = cand == best
        inter_sum += np.count_nonzero(g & s)
        union_sum += np.count_nonzero(g | s)
        used.add(best)
    union_sum += sum(np.count_nonzero(cand == j) for j in cand_ids if j not in used)
    return inter_sum / union_sum


def test_aji_hand_computed():
    # merge: each reference cell pairs with the merged cell, counted twice
    assert aggregated_jaccard_index(row(1, 1, 2, 2), row(5, 5, 5, 5)) == 0.5
    # split: the cell pairs with the lower id half (tie), the other half is unpaired
    assert aggregated_jaccard_index(row(1, 1, 1, 1), row(5, 5, 6, 6)) == 2 / 6
    # missed cell 2 and spurious cell 9: (2) / (3 + 2 + 1)
    assert aggregated_jaccard_index(row(1, 1, 0, 2, 2, 0), row(3, 3, 3, 0, 0, 9)) == 2 / 6
    assert aggregated_jaccard_index(row(4, 4, 0), row(7, 7, 0)) == 1.0
    assert aggregated_jaccard_index(row(0, 0), row(0, 0)) == 1.0
    assert aggregated_jaccard_index(row(0, 0), row(0, 3)) == 0.0
    assert aggregated_jaccard_index(row(3, 0), row(0, 0)) == 0.0


@pytest.mark.filterwarnings("ignore:invalid value encountered in divide")
def test_aji_differs_from_cellpose_function_of_the_same_name():
    ref, cand = row(1, 1, 1, 1), row(5, 5, 6, 6)
    # Cellpose: matched intersection 2 over foreground union 4
    assert cellpose_metrics.aggregated_jaccard_index([ref], [_sequential(cand)])[0] == 0.5
    assert aggregated_jaccard_index(ref, cand) == 2 / 6


@pytest.mark.parametrize("kind", ["dilated", "merged", "split", "dropped"])
def test_aji_equals_kumar_loop_on_real_mask(mask2d, perturbed, kind):
    cand = perturbed[kind][:160, :160]
    ref = mask2d[:160, :160]
    assert aggregated_jaccard_index(ref, cand) == pytest.approx(
        _kumar_aji_loop(ref, cand), abs=1e-12
    )


def test_instance_boundaries_hand_computed():
    labels = np.array(
        [
            [0, 0, 0, 0, 0],
            [0, 1, 1, 2, 0],
            [0, 1, 1, 2, 0],
            [0, 1, 1, 2, 0],
            [0, 0, 0, 0, 0],
        ],
        np.uint8,
    )
    expected = np.array(
        [
            [0, 0, 0, 0, 0],
            [0, 1, 1, 1, 0],
            [0, 1, 1, 1, 0],
            [0, 1, 1, 1, 0],
            [0, 0, 0, 0, 0],
        ],
        bool,
    )
    np.testing.assert_array_equal(instance_boundaries(labels), expected)
    big = np.zeros((6, 6), np.uint8)
    big[1:5, 1:5] = 3
    assert np.count_nonzero(instance_boundaries(big)) == 12
    assert not instance_boundaries(big)[2:4, 2:4].any()


def test_boundary_f1_hand_computed():
    ref = np.zeros((7, 7), np.uint8)
    ref[1:5, 1:5] = 1
    shifted = np.roll(ref, 1, axis=1)
    # rings of 12 px each share the 6 px of their top and bottom rows
    assert boundary_f1(ref, shifted, tolerance_px=0) == 0.5
    assert boundary_f1(ref, shifted, tolerance_px=1) == 1.0
    assert boundary_f1(ref, shifted) == 1.0
    # touching the image border: the 2 border pixels of the shifted ring are not boundary
    ref6, shifted6 = ref[:6, :6], shifted[:6, :6]
    assert boundary_f1(ref6, shifted6, tolerance_px=0) == pytest.approx(6 / 11, abs=1e-15)
    # a split adds the 4 px of the cut: P = 16/20, R = 1
    block = np.zeros((6, 8), np.uint8)
    block[1:5, 1:7] = 1
    split = block.copy()
    split[1:5, 4:7] = 2
    assert boundary_f1(block, split, tolerance_px=0) == pytest.approx(8 / 9, abs=1e-15)
    assert boundary_f1(split, block, tolerance_px=0) == pytest.approx(8 / 9, abs=1e-15)


def test_boundary_f1_empty_and_far():
    empty = np.zeros((5, 5), np.uint8)
    cell = empty.copy()
    cell[1:3, 1:3] = 4
    assert boundary_f1(empty, empty) == 1.0
    assert boundary_f1(empty, cell) == 0.0
    assert boundary_f1(cell, empty) == 0.0
    far = np.zeros((20, 20), np.uint8)
    far[1:3, 1:3] = 1
    other = np.zeros((20, 20), np.uint8)
    other[15:18, 15:18] = 1
    assert boundary_f1(far, other, tolerance_px=2) == 0.0


def test_boundary_f1_on_real_mask_decreases_with_shift(mask2d):
    padded = np.pad(mask2d, 10)  # keep cells off the image border, where boundaries end
    scores = [boundary_f1(padded, np.roll(padded, s, axis=1)) for s in (0, 1, 2, 3, 6)]
    assert scores[0] == scores[1] == scores[2] == 1.0
    assert 1.0 > scores[3] > scores[4] > 0.0


# ---------------------------------------------------------------------------------------------
# pairwise_agreement


def test_pairwise_agreement_hand_computed():
    a = row(1, 1, 0, 2, 2, 0)
    b = row(3, 3, 0, 4, 0, 0)  # cell 2 shrunk to IoU 1/2
    c = row(0, 0, 0, 0, 0, 8)  # a spurious cell only
    agreement = pairwise_agreement([a, b, c])
    assert isinstance(agreement, PairwiseAgreement)
    assert agreement.f1.tolist() == [[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    assert agreement.mean_iou.tolist() == [[1.0, 0.75, 0.0], [0.75, 1.0, 0.0], [0.0, 0.0, 1.0]]
    assert agreement.ap.tolist() == agreement.f1.tolist()
    assert agreement.n_instances.tolist() == [2, 2, 1]
    strict = pairwise_agreement([a, b, c], iou_threshold=0.6)
    assert strict.f1[0, 1] == strict.f1[1, 0] == 2 / 4
    assert strict.ap[0, 1] == 1 / 3
    assert strict.mean_iou[0, 1] == 1.0
    assert strict.iou_threshold == 0.6


def test_pairwise_agreement_matches_match_instances(mask2d, perturbed):
    pert = perturbed
    masks = [mask2d, pert["dilated"], pert["split"], np.zeros_like(mask2d)]
    agreement = pairwise_agreement(masks)
    assert agreement.f1.shape == (4, 4)
    np.testing.assert_array_equal(agreement.f1, agreement.f1.T)
    np.testing.assert_array_equal(np.diag(agreement.mean_iou), 1.0)
    for i in range(4):
        for j in range(4):
            if i != j:
                r = match_instances(masks[i], masks[j])
                assert agreement.f1[i, j] == pytest.approx(r.f1, abs=1e-15)
                assert agreement.mean_iou[i, j] == pytest.approx(r.mean_matched_iou, abs=1e-15)
    assert agreement.f1[0, 3] == 0.0


def test_pairwise_agreement_single_and_empty_annotations():
    one = pairwise_agreement([row(1, 0, 2)])
    assert one.f1.tolist() == [[1.0]] and one.n_instances.tolist() == [2]
    blank = pairwise_agreement(np.zeros((3, 4, 4), np.uint16))
    assert blank.f1.tolist() == [[1.0] * 3] * 3
    with pytest.raises(ValueError, match="read-only"):
        blank.f1[0, 0] = 0.0


# ---------------------------------------------------------------------------------------------
# validation of every public function

GOOD = row(1, 1, 0, 2)

BAD_IMAGES = [
    ([[1, 0]], TypeError, "numpy.ndarray"),
    (np.array([[0.0, 1.0]]), TypeError, "integer dtype"),
    (np.array([[True, False]]), TypeError, "boolean mask"),
    (np.array([[1, 0], [0, -2]]), ValueError, "negative labels"),
    (np.zeros((2, 2, 2), np.uint8), ValueError, "2-D"),
    (np.zeros(4, np.uint8), ValueError, "2-D"),
    (np.zeros((2, 2), np.uint8), ValueError, "same shape"),
]

IMAGE_FUNCTIONS = {
    "instance_overlaps": instance_overlaps,
    "match_instances": match_instances,
    "match_at_thresholds": match_at_thresholds,
    "average_precision": average_precision,
    "f1_scores": f1_scores,
    "aggregated_jaccard_index": aggregated_jaccard_index,
    "boundary_f1": boundary_f1,
    "pixel_dice": pixel_dice,
    "pairwise_agreement": lambda a, b: pairwise_agreement([a, b]),
}


@pytest.mark.parametrize("name", list(IMAGE_FUNCTIONS))
@pytest.mark.parametrize(("bad", "error", "message"), BAD_IMAGES)
@pytest.mark.parametrize("position", [0, 1])
def test_every_function_refuses_bad_images(name, bad, error, message, position):
    fn = IMAGE_FUNCTIONS[name]
    if name == "pixel_dice" and isinstance(bad, np.ndarray) and bad.dtype == np.bool_:
        assert fn(bad, bad) == 1.0 - 0.0  # boolean masks are fine for pixel Dice
        return
    args = [GOOD, GOOD]
    args[position] = bad
    with pytest.raises(error, match=message):
        fn(*args)


def test_error_messages_name_the_argument():
    with pytest.raises(TypeError, match="^candidate must have an integer dtype"):
        match_instances(GOOD, GOOD.astype(float))
    with pytest.raises(
        ValueError,
        match=r"reference and candidate must have the same shape, "
        r"got \(1, 4\) and \(4, 1\)",
    ):
        match_instances(GOOD, GOOD.T)
    with pytest.raises(ValueError, match=r"masks\[2\] is \(2, 2\)"):
        pairwise_agreement([GOOD, GOOD, np.zeros((2, 2), np.uint8)])
    with pytest.raises(ValueError, match=r"masks\[1\] holds negative labels"):
        pairwise_agreement([GOOD, -GOOD])
    with pytest.raises(TypeError, match="labels is a boolean mask"):
        instance_boundaries(np.zeros((2, 2), bool))
    with pytest.raises(ValueError, match="labels must be a 2-D"):
        instance_boundaries(np.zeros((2, 2, 2), np.uint8))


@pytest.mark.parametrize(
    ("threshold", "error"),
    [
        (0, ValueError),
        (0.0, ValueError),
        (-0.5, ValueError),
        (1.01, ValueError),
        (float("nan"), ValueError),
        (float("inf"), ValueError),
        ("0.5", TypeError),
        (None, TypeError),
        (True, TypeError),
    ],
)
def test_bad_iou_threshold(threshold, error):
    with pytest.raises(error, match="iou_threshold"):
        match_instances(GOOD, GOOD, iou_threshold=threshold)
    with pytest.raises(error, match="iou_threshold"):
        pairwise_agreement([GOOD, GOOD], iou_threshold=threshold)
    with pytest.raises(error, match="iou_threshold"):
        match_overlaps(instance_overlaps(GOOD, GOOD), iou_threshold=threshold)


@pytest.mark.parametrize(
    ("thresholds", "error", "message"),
    [
        ([], ValueError, "at least one"),
        (np.array([[0.5]]), ValueError, "1-D"),
        (0.5, TypeError, "sequence"),
        ("0.5", TypeError, "sequence"),
        ([0.5, 1.5], ValueError, r"thresholds\[1\]"),
        ((0.5, None), TypeError, r"thresholds\[1\]"),
    ],
)
def test_bad_thresholds(thresholds, error, message):
    for fn in (match_at_thresholds, average_precision, f1_scores):
        with pytest.raises(error, match=message):
            fn(GOOD, GOOD, thresholds=thresholds)


def test_thresholds_must_be_keyword_only():
    with pytest.raises(TypeError):
        match_instances(GOOD, GOOD, 0.5)
    with pytest.raises(TypeError):
        boundary_f1(GOOD, GOOD, 2)


@pytest.mark.parametrize(
    ("tolerance", "error"),
    [
        (-1, ValueError),
        (float("nan"), ValueError),
        ("2", TypeError),
        (None, TypeError),
        (False, TypeError),
    ],
)
def test_bad_boundary_tolerance(tolerance, error):
    with pytest.raises(error, match="tolerance_px"):
        boundary_f1(GOOD, GOOD, tolerance_px=tolerance)


def test_pairwise_agreement_refuses_bad_collections():
    with pytest.raises(ValueError, match="at least one"):
        pairwise_agreement([])
    with pytest.raises(TypeError, match="sequence"):
        pairwise_agreement({"a": GOOD})
    with pytest.raises(ValueError, match=r"\(k, H, W\) stack"):
        pairwise_agreement(GOOD)


def test_match_overlaps_refuses_other_objects():
    with pytest.raises(TypeError, match="Overlaps table"):
        match_overlaps((GOOD, GOOD))


# ---------------------------------------------------------------------------------------------
# documentation


def test_docstring_examples_run():
    modules = [
        qa.metrics.overlaps,
        qa.metrics.matching,
        qa.metrics.segmentation,
        qa.metrics.agreement,
    ]
    attempted = 0
    for module in modules:
        result = doctest.testmod(module, extraglobs={"np": np}, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, module.__name__
        attempted += result.attempted
    assert attempted >= 10


def test_exact_fractions_of_hand_case():
    # the ratios are computed from integers in float64, so they equal the exact fractions
    r = match_instances(row(1, 1, 1, 0, 2, 2, 2, 2), row(5, 5, 0, 0, 6, 6, 6, 6))
    assert Fraction(r.ious[0]).limit_denominator(100) == Fraction(2, 3)
    assert r.mean_matched_iou == (2 / 3 + 1.0) / 2


@pytest.mark.parametrize("tolerance", [0, 1.5, 2, 5, 7.5])
def test_boundary_f1_equals_distance_transform_definition(mask2d, perturbed, tolerance):
    cand = perturbed["relabelled"]
    b_ref, b_cand = instance_boundaries(mask2d), instance_boundaries(cand)
    precision = np.mean(ndi.distance_transform_edt(~b_ref)[b_cand] <= tolerance)
    recall = np.mean(ndi.distance_transform_edt(~b_cand)[b_ref] <= tolerance)
    expected = 2 * precision * recall / (precision + recall)
    assert boundary_f1(mask2d, cand, tolerance_px=tolerance) == pytest.approx(expected, abs=1e-12)
    assert 0.2 < expected < 1.0


HAND_CASES = {
    "scores": (row(1, 1, 1, 1, 0, 2, 2, 0, 3, 0, 0), row(8, 8, 8, 8, 8, 9, 9, 0, 0, 0, 5)),
    "halves": (row(1, 1, 1, 1), row(5, 5, 6, 6)),
    "greedy_trap": (
        np.array([[1] * 10 + [2] * 10], np.int32),
        np.array([[4] * 4 + [3] * 10 + [0] * 6], np.int32),
    ),
    "merge": (row(1, 1, 1, 0, 2, 2, 2), row(3, 3, 3, 3, 3, 3, 3)),
    "two_pieces": (row(7, 7, 0, 0, 7, 7), row(2, 2, 0, 0, 3, 3)),
    "reference_empty": (row(0, 0, 0, 0), row(3, 0, 5, 5)),
    "candidate_empty": (row(3, 0, 5, 5), row(0, 0, 0, 0)),
    "disjoint": (row(1, 1, 0, 0), row(0, 0, 2, 2)),
}


@pytest.mark.filterwarnings("ignore:invalid value encountered in divide")
@pytest.mark.parametrize("case", list(HAND_CASES))
def test_hand_cases_equal_stardist_and_cellpose(case):
    ref, cand = HAND_CASES[case]
    thresholds = (0.1, 0.25, 0.3, 0.4, 0.5, 0.6, 0.75, 0.9)
    ours = match_at_thresholds(ref, cand, thresholds=thresholds)
    theirs = stardist_matching(ref, cand, thresh=thresholds)
    _, cp_tp, cp_fp, cp_fn = cellpose_metrics.average_precision(
        _sequential(ref), _sequential(cand), threshold=list(thresholds)
    )
    for k, (r, s) in enumerate(zip(ours, theirs, strict=True)):
        assert (r.tp, r.fp, r.fn) == (s.tp, s.fp, s.fn) == (cp_tp[k], cp_fp[k], cp_fn[k])
        for mine, their in (
            (r.precision, s.precision),
            (r.recall, s.recall),
            (r.f1, s.f1),
            (r.ap, s.accuracy),
        ):
            assert abs(mine - their) <= 1e-9
        assert abs(r.mean_matched_iou - s.mean_matched_score) <= 1e-7
        assert abs(r.panoptic_quality - s.panoptic_quality) <= 1e-7


@pytest.mark.filterwarnings("ignore:invalid value encountered in divide")
def test_both_empty_is_where_we_differ_from_stardist_and_cellpose_on_purpose():
    empty = np.zeros((4, 4), np.uint16)
    s = stardist_matching(empty, empty)
    cp_ap = cellpose_metrics.average_precision(empty, empty, threshold=[0.5])[0]
    assert (s.f1, s.accuracy) == (0, 0) and np.isnan(cp_ap[0])
    r = match_instances(empty, empty)
    assert (r.f1, r.ap) == (1.0, 1.0)


def test_overlaps_counted_on_the_foreground_equal_the_full_table():
    from qa.metrics import overlaps as ov_module

    rng = np.random.default_rng(12)
    for _ in range(40):
        a = rng.integers(0, 9, (30, 40)) * (rng.random((30, 40)) < 0.2)  # sparse cells
        b = rng.integers(0, 5, (30, 40)) * (rng.random((30, 40)) < rng.random())
        a, b = a.astype(np.uint16), b.astype(np.int32)
        fa, fb = a.ravel(), b.ravel()
        fast = ov_module._overlaps_foreground(fa, fb, fa != 0, int(fa.max()), int(fb.max()))
        full = ov_module._overlaps_dense(fa, fb, int(fa.max()), int(fb.max()))
        public = instance_overlaps(a, b)  # takes the foreground path
        for f in dataclasses.fields(full):
            want = getattr(full, f.name)
            assert np.array_equal(getattr(fast, f.name), want), f.name
            assert np.array_equal(getattr(public, f.name), want), f.name
            assert getattr(fast, f.name).dtype == want.dtype, f.name
