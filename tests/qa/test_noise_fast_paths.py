"""The fast paths of qa.noise give exactly what the library calls they replace gave."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.measure import regionprops_table
from skimage.morphology import convex_hull_image
from sklearn.ensemble import IsolationForest

from qa.metrics import instance_overlaps
from qa.noise.compare import (
    compare_labels,
    label_areas,
    perimeters,
    present_ids,
    restrict_reference,
    sequential_labels,
)
from qa.noise.convexity import convex_areas
from qa.noise.features import cell_features, convex_pixels, outlier_scores
from qa.noise.reference import confirmed_share, pairwise_f1, pairwise_overlaps
from qa.simulate import CARELESS, EXPERT, simulate_annotation, simulate_image


def _np_unique_sequential(labels):
    uniq, inverse = np.unique(labels, return_inverse=True)
    inverse = inverse.reshape(labels.shape).astype(np.int64)
    if uniq.size and uniq[0] == 0:
        return inverse, uniq[1:].astype(np.int64)
    return inverse + 1, uniq.astype(np.int64)


@pytest.mark.parametrize("labels", [
    np.random.default_rng(0).integers(0, 50, (40, 40)).astype(np.uint16),
    (np.random.default_rng(1).integers(0, 3, (30, 30)) * 10**12).astype(np.uint64),
    np.random.default_rng(2).integers(1, 5, (6, 6)).astype(np.int64),
    np.zeros((5, 5), np.int32),
])
def test_sequential_labels_present_ids_and_areas_match_np_unique(labels):
    seq, ids = sequential_labels(labels)
    want_seq, want_ids = _np_unique_sequential(labels)
    assert np.array_equal(seq, want_seq) and np.array_equal(ids, want_ids)
    assert np.array_equal(present_ids(labels), want_ids)
    query = np.concatenate([want_ids, [7]])  # 7 is absent from every image above
    assert label_areas(labels, query).tolist() == [int((labels == v).sum()) for v in query]


def _masks():
    sim = simulate_image(shape=(256, 256), n_cells=60, seed=5)
    return [simulate_annotation(sim, p, seed=k).labels for k, p in enumerate((EXPERT, CARELESS))], sim


def test_convex_pixels_equals_skimage_convex_hull_image():
    masks, _ = _masks()
    crops = []
    for m in masks:
        for v in np.unique(m)[1:]:
            rows, cols = np.nonzero(m == v)
            crops.append((m == v)[rows.min():rows.max() + 1, cols.min():cols.max() + 1])
    rng = np.random.default_rng(3)  # ragged, disconnected, thin and one-pixel shapes
    crops += [rng.random((rng.integers(1, 12), rng.integers(1, 12))) < rng.random() for _ in range(200)]
    crops = [c for c in crops if c.any()]
    assert len(crops) > 250
    assert [convex_pixels(c) for c in crops] == [int(convex_hull_image(c).sum()) for c in crops]


def test_convex_areas_of_all_cells_at_once_equal_skimage_convex_hull_image():
    masks, _ = _masks()
    rng = np.random.default_rng(4)  # plus ragged cells with gaps between their rows
    ragged = (rng.integers(0, 9, (40, 40)) * (rng.random((40, 40)) < 0.5)).astype(np.int64)
    for labels in [*masks, ragged, np.zeros((6, 6), np.int32)]:
        seq, ids = sequential_labels(labels)
        want = [int(convex_hull_image(labels == v).sum()) for v in ids]
        assert convex_areas(seq, ids.size).tolist() == want
        assert [convex_pixels(labels == v) for v in ids] == want


def test_cell_features_equal_regionprops():
    masks, sim = _masks()
    f = cell_features(masks[1], sim.image)
    seq, ids = _np_unique_sequential(masks[1])
    t = regionprops_table(seq, intensity_image=sim.image.astype(float),
                          properties=["label", "area", "eccentricity", "solidity", "intensity_mean"])
    assert np.array_equal(f.labels, ids[t["label"] - 1])
    np.testing.assert_array_equal(f.values[:, 0], np.log(t["area"]))
    np.testing.assert_allclose(f.values[:, 1], t["eccentricity"], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(f.values[:, 2], t["solidity"])
    np.testing.assert_allclose(f.values[:, 3], t["intensity_mean"], rtol=1e-12)


def test_outlier_scores_equal_isolation_forest_predict():
    rng = np.random.default_rng(4)
    values = np.concatenate([rng.normal(size=(200, 3)), rng.normal(6.0, 1.0, size=(5, 3))])
    is_out, score = outlier_scores(values, contamination=0.05, seed=7)
    scaled = (values - values.mean(axis=0)) / values.std(axis=0)
    forest = IsolationForest(n_estimators=100, contamination=0.05, random_state=7).fit(scaled)
    assert np.array_equal(is_out, forest.predict(scaled) == -1)
    assert np.array_equal(score, np.clip(-forest.score_samples(scaled), 0.0, 1.0))
    assert is_out[-5:].all()


def test_tables_reused_across_comparisons_equal_fresh_ones():
    masks, _ = _masks()
    masks = [*masks, np.roll(masks[0], 9, axis=1)]  # a third, shifted: few confirmed cells
    overlaps = pairwise_overlaps(masks)
    f1 = pairwise_f1(masks, iou_threshold=0.5, overlaps=overlaps)
    for (a, b) in overlaps:
        assert f1[a, b] == compare_labels(masks[a], masks[b], iou_threshold=0.5).f1
    for j in range(len(masks)):
        assert confirmed_share(masks, j, overlaps=overlaps) == confirmed_share(masks, j)
    # the reference restricted to some cells: the table of the image holding only those
    ref, cand = masks[0], masks[1]
    keep = present_ids(ref)[::3]
    restricted = np.where(np.isin(ref, keep), ref, 0)
    got = restrict_reference(instance_overlaps(ref, cand), keep)
    want = instance_overlaps(restricted, cand)
    for field in ("labels_a", "labels_b", "areas_a", "areas_b", "pairs", "intersections", "ious"):
        assert np.array_equal(getattr(got, field), getattr(want, field)), field
    full = compare_labels(restricted, cand, iou_threshold=0.5)
    fast = compare_labels(restricted, cand, iou_threshold=0.5, overlaps=got,
                          perimeter=perimeters(ref))
    assert repr(full) == repr(fast)
