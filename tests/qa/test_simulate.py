"""Tests for qa.simulate: determinism, shapes, and that injected errors are really there."""

from dataclasses import FrozenInstanceError, replace

import numpy as np
import pytest

from qa.metrics import match_instances
from qa.simulate import (
    CARELESS,
    CORRUPTION_MODES,
    ERROR_KINDS,
    EXPERT,
    MODALITIES,
    PERFECT,
    AnnotatorProfile,
    InjectedError,
    SimulatedImage,
    annotator_panel,
    simulate_annotation,
    simulate_dataset,
    simulate_image,
    touching_pairs,
)

SMALL = {"shape": (128, 128), "n_cells": 20}


@pytest.fixture(scope="module")
def sim() -> SimulatedImage:
    return simulate_image(shape=(160, 160), n_cells=30, n_debris=6, seed=7)


def _overlap(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.count_nonzero(a & b))


# --- images ---------------------------------------------------------------------------


@pytest.mark.parametrize("modality", MODALITIES)
def test_image_dtypes_shapes_and_sequential_labels(modality):
    s = simulate_image(shape=(96, 128), n_cells=15, modality=modality, seed=1)
    assert s.image.dtype == np.uint16 and s.image.shape == (96, 128)
    assert s.labels.dtype == np.uint16 and s.labels.shape == (96, 128)
    assert s.debris.dtype == np.uint16 and s.debris.shape == (96, 128)
    ids = np.unique(s.labels)
    assert ids[0] == 0 and list(ids[1:]) == list(range(1, s.n_cells + 1))
    assert s.contrast.shape == (s.n_cells,) and s.faint.shape == (s.n_cells,)
    assert s.modality == modality and s.seed == 1
    assert s.n_cells >= 12  # crowding may drop a few, never most
    # cells are at least 8 px across: no ground-truth cell smaller than ~20 px
    assert np.bincount(s.labels.ravel())[1:].min() >= 20


def test_same_seed_same_image_and_different_seed_differs():
    a, b = simulate_image(seed=3, **SMALL), simulate_image(seed=3, **SMALL)
    c = simulate_image(seed=4, **SMALL)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.debris, b.debris)
    np.testing.assert_array_equal(a.contrast, b.contrast)
    assert not np.array_equal(a.labels, c.labels)
    assert not np.array_equal(a.image, c.image)


def test_debris_is_in_the_image_but_not_in_the_ground_truth(sim):
    assert sim.n_debris == 6
    assert _overlap(sim.debris > 0, sim.labels > 0) == 0
    background = sim.image[(sim.labels == 0) & (sim.debris == 0)]
    for d in range(1, sim.n_debris + 1):
        # every particle is visibly brighter than the typical background
        assert sim.image[sim.debris == d].mean() > np.median(background) + 100


def test_faint_cells_are_dimmer_than_normal_cells(sim):
    assert sim.faint.any() and (~sim.faint).any()
    assert sim.contrast[sim.faint].max() <= 0.3 < 0.55 <= sim.contrast[~sim.faint].min()
    mean = np.array([sim.image[sim.labels == i].mean() for i in range(1, sim.n_cells + 1)])
    assert mean[sim.faint].mean() < mean[~sim.faint].mean()


def test_image_has_touching_cells(sim):
    assert len(touching_pairs(sim.labels)) >= 3


def test_touching_pairs_hand_computed():
    lab = np.array([[1, 1, 2, 0],
                    [0, 3, 3, 0],
                    [0, 0, 0, 5]])
    np.testing.assert_array_equal(touching_pairs(lab), [[1, 2], [1, 3], [2, 3]])
    assert touching_pairs(np.zeros((3, 3), int)).shape == (0, 2)


def test_empty_image():
    s = simulate_image(shape=(64, 64), n_cells=0, n_debris=0, seed=0)
    assert s.n_cells == 0 and s.n_debris == 0 and not s.labels.any()
    ann = simulate_annotation(s, replace(CARELESS, spurious_per_image=3.0), seed=0)
    assert ann.labels.shape == (64, 64) and ann.labels.dtype == np.uint16
    assert {e.kind for e in ann.errors} <= {"spurious", "corruption"}
    assert all(e.gt_ids == () for e in ann.errors)
    assert int(ann.labels.max()) == len(ann.errors_of("spurious")) >= 1


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"shape": (16, 64)}, "shape"),
    ({"shape": (64,)}, "shape"),
    ({"modality": "phase"}, "modality"),
    ({"n_cells": -1}, "n_cells"),
    ({"cell_diameter": (4, 10)}, "cell_diameter"),
    ({"n_debris": -2}, "n_debris"),
    ({"faint_fraction": 1.5}, "faint_fraction"),
    ({"noise": 0}, "noise"),
])
def test_image_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        simulate_image(**kwargs)


# --- annotators -----------------------------------------------------------------------


def test_perfect_annotator_reproduces_ground_truth_up_to_ids(sim):
    ann = simulate_annotation(sim, PERFECT, seed=0)
    assert ann.errors == ()
    # same partition, shuffled ids
    pairs = np.unique(np.stack([sim.labels.ravel(), ann.labels.ravel()]), axis=1)
    assert pairs.shape[1] == sim.n_cells + 1
    assert len(np.unique(pairs[1])) == sim.n_cells + 1


def test_annotation_is_deterministic_and_seed_dependent(sim):
    a = simulate_annotation(sim, CARELESS, seed=5)
    b = simulate_annotation(sim, CARELESS, seed=5)
    c = simulate_annotation(sim, CARELESS, seed=6)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.errors == b.errors
    assert a.labels.dtype == np.uint16 and a.labels.shape == sim.labels.shape
    assert not np.array_equal(a.labels, c.labels)
    assert all(e.kind in ERROR_KINDS for e in a.errors)


def test_missed_cells_have_no_annotation(sim):
    profile = AnnotatorProfile("misser", miss_rate=0.3, boundary_jitter_px=0.0)
    ann = simulate_annotation(sim, profile, seed=1)
    missed = [e.gt_ids[0] for e in ann.errors_of("missed")]
    assert len(missed) >= 3
    for g in missed:
        assert not ann.labels[sim.labels == g].any()
    drawn = set(range(1, sim.n_cells + 1)) - set(missed)
    assert int(ann.labels.max()) == len(drawn)


def test_faint_cells_are_missed_and_normal_cells_are_not(sim):
    profile = AnnotatorProfile("faint-blind", miss_faint_rate=1.0, boundary_jitter_px=0.0)
    ann = simulate_annotation(sim, profile, seed=2)
    missed = {e.gt_ids[0] for e in ann.errors_of("missed")}
    assert missed  # the fixture has faint cells
    assert missed <= set(np.flatnonzero(sim.faint) + 1)
    assert set(np.flatnonzero(sim.contrast <= 0.1) + 1) <= missed
    assert all(e.detail == "faint" and e.magnitude > 0 for e in ann.errors_of("missed"))


@pytest.mark.parametrize(("bias", "sign"), [(2.0, 1), (-1.0, -1)])
def test_boundary_bias_changes_every_cell_area(sim, bias, sign):
    profile = AnnotatorProfile("biased", boundary_bias_px=bias, boundary_jitter_px=0.0)
    ann = simulate_annotation(sim, profile, seed=0)
    rows = ann.errors_of("boundary")
    assert len(rows) == sim.n_cells
    assert all(r.magnitude == bias for r in rows)
    gt_area = np.bincount(sim.labels.ravel(), minlength=sim.n_cells + 1)
    ann_area = np.bincount(ann.labels.ravel())
    changed = [np.sign(int(ann_area[r.annotation_ids[0]]) - int(gt_area[r.gt_ids[0]])) for r in rows]
    if sign > 0:  # cells hemmed in by neighbours on all sides may not grow
        assert sum(c == 1 for c in changed) >= 0.9 * len(rows) and -1 not in changed
    else:
        assert all(c == -1 for c in changed)
    assert np.sign((ann.labels > 0).sum() - (sim.labels > 0).sum()) == sign


def test_merged_instances_cover_both_touching_cells(sim):
    profile = AnnotatorProfile("merger", merge_rate=1.0, boundary_jitter_px=0.0)
    ann = simulate_annotation(sim, profile, seed=0)
    rows = ann.errors_of("merged")
    assert len(rows) >= 2
    touching = {tuple(p) for p in touching_pairs(sim.labels).tolist()}
    for r in rows:
        assert tuple(sorted(r.gt_ids)) in touching
        (a,) = r.annotation_ids
        for g in r.gt_ids:
            assert np.all(ann.labels[sim.labels == g] == a)


def test_split_cells_become_two_instances(sim):
    profile = AnnotatorProfile("splitter", split_rate=1.0, boundary_jitter_px=0.0)
    ann = simulate_annotation(sim, profile, seed=0)
    rows = ann.errors_of("split")
    assert len(rows) >= 10
    for r in rows:
        (g,) = r.gt_ids
        a, b = r.annotation_ids
        cell = sim.labels == g
        assert set(np.unique(ann.labels[cell])) == {a, b}
        assert 0.3 <= np.mean(ann.labels[cell] == a) <= 0.7


def test_debris_is_labelled_from_the_image(sim):
    profile = AnnotatorProfile("debris-lover", debris_rate=1.0, boundary_jitter_px=0.0)
    ann = simulate_annotation(sim, profile, seed=0)
    rows = ann.errors_of("debris")
    assert len(rows) == sim.n_debris
    for r in rows:
        (a,) = r.annotation_ids
        np.testing.assert_array_equal(ann.labels == a, sim.debris == int(r.detail))
        assert r.gt_ids == ()


def test_coarse_polygons_keep_cells_but_change_outlines(sim):
    profile = AnnotatorProfile("clicker", polygon_coarseness=2.5, boundary_jitter_px=0.0)
    ann = simulate_annotation(sim, profile, seed=0)
    (row,) = ann.errors_of("coarse_outline")
    assert row.magnitude == 2.5 and len(row.annotation_ids) == sim.n_cells
    assert int(ann.labels.max()) == sim.n_cells
    changed = np.count_nonzero((ann.labels > 0) != (sim.labels > 0))
    assert changed > 0.02 * np.count_nonzero(sim.labels)


@pytest.mark.parametrize("seed", range(6))
def test_corruption_is_recorded_with_its_mode(sim, seed):
    profile = AnnotatorProfile("broken", corruption_rate=1.0, boundary_jitter_px=0.0)
    ann = simulate_annotation(sim, profile, seed=seed)
    assert ann.corrupted
    (row,) = ann.errors_of("corruption")
    assert row.detail in CORRUPTION_MODES
    if row.detail == "dropout":
        assert len(ann.errors_of("missed")) >= 0.3 * sim.n_cells
    elif row.detail == "blobs":
        assert len(ann.errors_of("spurious")) >= 5
    elif row.detail == "shift":
        assert np.mean((ann.labels > 0) == (sim.labels > 0)) < 0.97


def test_corruption_modes_all_occur(sim):
    profile = AnnotatorProfile("broken", corruption_rate=1.0)
    modes = {simulate_annotation(sim, profile, seed=s).errors_of("corruption")[0].detail
             for s in range(24)}
    assert modes == set(CORRUPTION_MODES)


def test_careless_annotator_is_worse_than_expert():
    data = simulate_dataset(4, profiles=[EXPERT, CARELESS], seed=11, **SMALL)

    def dice(a, b):
        return 2 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))

    expert = [dice(s.image.labels > 0, s.annotations[0].labels > 0) for s in data]
    careless = [dice(s.image.labels > 0, s.annotations[1].labels > 0) for s in data]
    n_err = [len([e for e in s.annotations[i].errors if e.kind != "boundary"])
             for s in data for i in (0, 1)]
    assert np.mean(expert) > np.mean(careless) + 0.05
    assert sum(n_err[1::2]) > 2 * sum(n_err[0::2])


def test_injected_error_and_profile_are_frozen_and_validated():
    e = InjectedError("missed", (1,), ())
    with pytest.raises(FrozenInstanceError):
        e.kind = "split"
    with pytest.raises(FrozenInstanceError):
        EXPERT.merge_rate = 0.5
    with pytest.raises(ValueError, match="merge_rate"):
        AnnotatorProfile("x", merge_rate=1.5)
    with pytest.raises(ValueError, match="polygon_coarseness"):
        AnnotatorProfile("x", polygon_coarseness=-1)
    with pytest.raises(ValueError, match="boundary_bias_px"):
        AnnotatorProfile("x", boundary_bias_px=9)
    with pytest.raises(TypeError, match="SimulatedImage"):
        simulate_annotation(np.zeros((8, 8)), EXPERT, seed=0)
    with pytest.raises(TypeError, match="AnnotatorProfile"):
        simulate_annotation(simulate_image(seed=0, **SMALL), "expert", seed=0)
    with pytest.raises(ValueError, match="kind"):
        simulate_annotation(simulate_image(seed=0, **SMALL), EXPERT, seed=0).errors_of("oops")


# --- panels and datasets --------------------------------------------------------------


def test_annotator_panel_presets():
    three = annotator_panel(3)
    assert [p.name for p in three] == ["expert", "average", "careless"]
    assert [p.careless for p in three] == [False, False, True]
    assert three[1].boundary_bias_px == -1.0
    five = annotator_panel(5, careless=2)
    assert [p.name for p in five] == ["expert", "average", "good", "careless", "careless_2"]
    seven = annotator_panel(7, careless=0)
    assert len({p.name for p in seven}) == 7 and seven[4] == replace(EXPERT, name="expert_2")
    with pytest.raises(ValueError, match="careless"):
        annotator_panel(3, careless=4)
    with pytest.raises(ValueError, match="n must be"):
        annotator_panel(0)


def test_dataset_is_deterministic_and_unpacks():
    a = simulate_dataset(3, 3, seed=9, modality=["fluorescence", "brightfield"], **SMALL)
    b = simulate_dataset(3, 3, seed=9, modality=["fluorescence", "brightfield"], **SMALL)
    assert len(a) == 3
    assert [s.image.modality for s in a] == ["fluorescence", "brightfield", "fluorescence"]
    for (img_a, anns_a), (img_b, anns_b) in zip(a, b, strict=True):
        np.testing.assert_array_equal(img_a.image, img_b.image)
        assert [x.profile.name for x in anns_a] == ["expert", "average", "careless"]
        for x, y in zip(anns_a, anns_b, strict=True):
            np.testing.assert_array_equal(x.labels, y.labels)
            assert x.errors == y.errors
    assert not np.array_equal(a[0].image.labels, a[2].image.labels)
    c = simulate_dataset(1, 3, seed=10, **SMALL)
    assert not np.array_equal(a[0].image.labels, c[0].image.labels)


def test_dataset_cell_count_range_and_validation():
    data = simulate_dataset(3, 2, careless=0, seed=1, shape=(128, 128), n_cells=(5, 12))
    assert all(5 <= s.image.n_cells <= 12 for s in data)
    assert simulate_dataset(0, seed=1) == []
    with pytest.raises(ValueError, match="n_images"):
        simulate_dataset(-1)
    with pytest.raises(ValueError, match="n_cells"):
        simulate_dataset(1, n_cells=(9, 3))
    with pytest.raises(ValueError, match="profiles"):
        simulate_dataset(1, profiles=[])


def test_outline_noise_wobbles_outlines_without_changing_sizes(sim):
    profile = AnnotatorProfile("wobbly", outline_noise_px=0.8, boundary_jitter_px=0.0)
    ann = simulate_annotation(sim, profile, seed=3)
    assert ann.errors == ()  # no systematic shift is recorded for a wobble
    assert int(ann.labels.max()) == sim.n_cells
    changed = np.count_nonzero((ann.labels > 0) != (sim.labels > 0))
    assert changed > 0.05 * np.count_nonzero(sim.labels)
    assert abs(np.count_nonzero(ann.labels) / np.count_nonzero(sim.labels) - 1) < 0.1


@pytest.mark.parametrize("modality", ["fluorescence", "cytoplasm", "brightfield"])
def test_every_corruption_mode_is_heavy(modality):
    """A corrupted annotation is far worse than the same annotator's clean one, whatever
    the annotator: smeared outlines grow by 70-100 % of the cell radius and overrun the
    neighbours, shifts move the mask by 4-8 px, blobs add 1-1.5 times as many invented
    cells as there are cells."""
    sim = simulate_image(shape=(128, 128), n_cells=20, modality=modality, seed=3)
    clean = AnnotatorProfile("steady", boundary_jitter_px=0.0)
    assert match_instances(sim.labels, simulate_annotation(sim, clean, seed=0).labels
                           ).panoptic_quality == 1.0
    broken = replace(clean, corruption_rate=1.0)
    worst = {}
    for s in range(24):
        ann = simulate_annotation(sim, broken, seed=s)
        (row,) = ann.errors_of("corruption")
        pq = match_instances(sim.labels, ann.labels).panoptic_quality
        worst[row.detail] = max(worst.get(row.detail, 0.0), pq)
        if row.detail == "blobs":  # as many as fit beside the cells
            assert row.magnitude >= sim.n_cells
            assert len(ann.errors_of("spurious")) >= 0.75 * sim.n_cells
    assert {"shift", "smear", "blobs"} <= set(worst)
    assert max(worst.values()) <= 0.8
    assert worst["shift"] <= 0.35 and worst["smear"] <= 0.35
