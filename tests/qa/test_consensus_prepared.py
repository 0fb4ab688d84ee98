"""Shared per-annotator work (qa.consensus.prepare_masks) gives exactly the direct fusion."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import ndimage as ndi

from qa.consensus import PreparedMasks, fuse, prepare_masks
from qa.consensus.clustering import sequential_labels
from qa.consensus.voting import corrected_labels, instance_maps
from qa.noise import score_annotations
from qa.noise.reference import leave_one_out, pairwise_overlaps
from qa.simulate import annotator_panel, simulate_dataset


@pytest.fixture(scope="module")
def panel5():
    """Two simulated images with five annotations (two corruption-prone annotators)."""
    return [[a.labels for a in s.annotations]
            for s in simulate_dataset(2, profiles=annotator_panel(5), seed=33, shape=(160, 160),
                                      n_cells=30)]


def _same(a, b) -> None:
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), f.name
        else:
            assert x == y, f.name


@pytest.mark.parametrize("subset", [(0, 1, 2, 3, 4), (1, 2, 3, 4), (4, 0, 2), (3, 1), (2,)])
def test_fusing_a_prepared_subset_equals_fusing_those_masks(panel5, subset):
    for masks in panel5:
        # overlap tables of the original ids, as qa.noise hands them over
        prepared = prepare_masks(masks, overlaps=pairwise_overlaps(masks))
        for kwargs in ({}, {"min_support": 1, "weights": np.linspace(0.4, 1.0, len(subset))}):
            direct = fuse([masks[j] for j in subset], **kwargs)
            shared = fuse(prepared.subset(subset), **kwargs)
            _same(direct, shared)
            assert direct.n_instances > 0


def test_prepared_masks_share_work_between_subsets(panel5):
    prepared = prepare_masks(panel5[0])
    assert isinstance(prepared, PreparedMasks) and len(prepared) == 5
    fuse(prepared.subset([0, 1]))
    first = prepared.subset([1, 2]).instance_maps(0)
    assert prepared.instance_maps(1) is first  # annotation 1's maps were computed once
    with pytest.raises(ValueError, match="at least one mask"):
        prepared.subset([])
    with pytest.raises(ValueError, match="same shape"):
        prepare_masks([panel5[0][0], panel5[0][1][:-1]])


def test_scores_are_unchanged_by_sharing_the_leave_one_out_work(panel5):
    masks = panel5[1]
    w = np.linspace(0.5, 1.0, len(masks))
    prepared = prepare_masks(masks)
    for i in range(len(masks)):
        a = leave_one_out(masks, i, w, iou_threshold=0.5)
        b = leave_one_out(masks, i, w, iou_threshold=0.5, prepared=prepared)
        _same(a, b)
    # a QA run fuses the consensus from the same prepared masks its scores reuse
    shared = prepare_masks(masks)
    fuse(shared, weights=w)
    assert score_annotations(masks, weights=w, prepared=shared) == score_annotations(masks, weights=w)
    with pytest.raises(ValueError, match="prepared holds 4 masks"):
        score_annotations(masks, prepared=prepare_masks(masks[:4]))
    with pytest.raises(TypeError, match="prepare_masks"):
        score_annotations(masks, prepared=masks)


@pytest.mark.parametrize("amount", [-1.7, -0.5, 0.0, 0.6, 2.5])
def test_corrected_labels_on_the_canvas_equal_moving_each_instance(panel5, amount):
    mask = panel5[0][3]
    seq, _ = sequential_labels(mask)
    maps = instance_maps(seq, ndi.find_objects(seq), mask.shape)
    # reference: every instance on its own, deepest claim wins, lower id on a tie
    want = np.zeros(mask.shape, np.uint32)
    best = np.full(mask.shape, -np.inf, np.float32)
    for i, m in enumerate(maps, start=1):
        if m is None:
            continue
        value = m.sdf + np.float32(amount)
        claim = (value > 0) & (value > best[m.window])
        best[m.window][claim] = value[claim]
        want[m.window][claim] = i
    got = corrected_labels(maps, amount, mask.shape)
    assert np.array_equal(got, want)
    if amount == 0.0:
        assert np.array_equal(got, seq)  # no move: the mask itself
