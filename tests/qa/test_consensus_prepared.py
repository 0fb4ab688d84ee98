"""Shared per-annotator work (qa.consensus.prepare_masks) gives exactly the direct fusion."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import ndimage as ndi

from qa.consensus import PreparedMasks, fuse, prepare_masks
from qa.consensus.clustering import sequential_labels
from qa.consensus.maps import corrected_labels, instance_maps
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


# --- the shortcuts of the fast path compute exactly what they replace ---------------------


@pytest.mark.parametrize("amount", [0.0, -1.2, 1.7])
def test_foreground_overlaps_equal_instance_overlaps(panel5, amount):
    from qa.consensus.clustering import Foreground, foreground_overlaps
    from qa.consensus.maps import moved_foreground
    from qa.metrics import instance_overlaps

    masks = panel5[0]
    seqs = [sequential_labels(m)[0] for m in masks]
    fgs = []
    for seq in seqs:
        n = int(seq.max())
        maps = instance_maps(seq, ndi.find_objects(seq), seq.shape)
        labels, pixel, ids = moved_foreground(maps, amount, seq.shape)
        assert np.array_equal(labels, corrected_labels(maps, amount, seq.shape))
        assert np.array_equal(np.sort(pixel), np.flatnonzero(labels))
        assert np.array_equal(labels.ravel()[pixel], ids)
        # the same from the mask's own foreground list (the inward shortcut)
        again, pixel2, ids2 = moved_foreground(maps, amount, seq.shape,
                                               inside=Foreground.of(seq, n=n))
        assert np.array_equal(again, labels) and np.array_equal(np.sort(pixel2), np.sort(pixel))
        assert np.array_equal(again.ravel()[pixel2], ids2)
        fgs.append((labels, Foreground.of(labels, pixel, ids, n=n)))
    for a in range(len(fgs)):
        for b in range(len(fgs)):
            if a != b:
                want = instance_overlaps(fgs[a][0], fgs[b][0])
                got = foreground_overlaps(fgs[a][1], fgs[b][1])
                _same(want, got)


def test_a_second_pass_reuses_maps_and_outline_sums_exactly(panel5):
    from qa.consensus.maps import cluster_maps
    from qa.consensus.voting import outline_stats

    prepared = prepare_masks(panel5[1])
    inst = [prepared.instance_maps(j) for j in range(5)]
    first = fuse(prepared).members  # original ids are sequential here: 1..n
    rng = np.random.default_rng(0)
    maps = cluster_maps(first, inst, prepared.shape)
    stats = outline_stats(maps, 5)
    # a second set: some clusters kept, some dropped, one member swapped, order shuffled
    second = first[rng.permutation(len(first))[: len(first) - 3]].copy()
    second[0, 2] = 0
    fresh = cluster_maps(second, inst, prepared.shape)
    reused = cluster_maps(second, inst, prepared.shape, reuse=maps)
    assert np.array_equal(fresh.sdf, reused.sdf) and np.array_equal(fresh.pixel, reused.pixel)
    assert (reused.same_clusters(maps) >= 0).sum() == len(second) - 1
    want, got = outline_stats(fresh, 5), outline_stats(reused, 5, reuse=(maps, stats))
    assert want.pairs == got.pairs and len(want.pairs) == 10
    for x, y in zip(want.offsets + want.squares, got.offsets + got.squares, strict=True):
        assert np.array_equal(x, y)  # bit for bit: the same sums in the same order
    assert np.array_equal(want.table, got.table)


@pytest.mark.parametrize("opencv", [True, False])
def test_smaller_pieces_keep_the_largest_and_on_a_tie_the_first_in_raster_order(
        opencv, monkeypatch):
    from qa.consensus import voting
    from qa.consensus.voting import _smaller_pieces

    if not opencv:  # the scipy path of installs without OpenCV
        monkeypatch.setattr(voting, "cv2", None)

    mine = np.zeros((6, 9), bool)
    mine[0, 5:8] = True  # 3 px, first in raster order
    mine[3:5, 0:2] = True  # 4 px
    mine[4, 6:8] = mine[5, 6:8] = True  # 4 px, later
    drop = _smaller_pieces(mine)
    keep = mine & ~drop
    assert np.count_nonzero(keep) == 4 and keep[3, 0]  # the tie goes to the first piece
    one = np.zeros((4, 4), bool)
    one[1:3, 1:3] = True
    assert _smaller_pieces(one) is None and _smaller_pieces(np.zeros((3, 3), bool)) is None


def test_signed_distance_is_the_same_with_and_without_opencv(panel5, monkeypatch):
    from qa.consensus import maps as maps_module

    seq = sequential_labels(panel5[0][2])[0]
    with_cv = instance_maps(seq, ndi.find_objects(seq), seq.shape).canvas
    monkeypatch.setattr(maps_module, "cv2", None)
    without = instance_maps(seq, ndi.find_objects(seq), seq.shape).canvas
    assert with_cv.dtype == without.dtype == np.float32
    np.testing.assert_allclose(with_cv, without, atol=1e-5)
    assert np.array_equal(with_cv > 0, without > 0)


def test_every_instance_map_is_its_own_exact_signed_distance(panel5):
    """The packed canvases (outside distances on cells with a 5 px margin, inside ones on
    cells with a 1 px margin) give each instance exactly its own signed distance map."""
    seq = sequential_labels(panel5[1][4])[0]
    maps = instance_maps(seq, ndi.find_objects(seq), seq.shape)
    for i, m in enumerate(maps, start=1):
        if m is None:
            continue
        # reference: the instance alone on a large zero border, scipy's exact transform
        mine = np.pad(seq == i, 20)
        inside = ndi.distance_transform_edt(mine) - 0.5
        outside = 0.5 - ndi.distance_transform_edt(~mine)
        want = np.where(mine, inside, outside)[m.window[0].start + 20:m.window[0].stop + 20,
                                               m.window[1].start + 20:m.window[1].stop + 20]
        exact = want >= -5.0  # inside, and up to _PAD px outside
        np.testing.assert_allclose(m.sdf[exact], want[exact], atol=1e-5)
        assert np.all(m.sdf[~exact] <= -4.5)  # farther: still at least _PAD - 0.5 px out


@pytest.mark.parametrize("amount", [-0.4999, 0.4999, -0.5, 0.6])
def test_moving_outlines_by_less_than_half_a_pixel_keeps_the_mask(panel5, amount):
    """The second clustering pass reuses a mask (and its overlaps) whose bias is below
    0.5 px: pixel centres sit at least 0.5 px from every outline."""
    from qa.consensus.clustering import Foreground
    from qa.consensus.maps import moved_foreground

    seq = sequential_labels(panel5[0][1])[0]
    maps = instance_maps(seq, ndi.find_objects(seq), seq.shape)
    moved = moved_foreground(maps, amount, seq.shape,
                             inside=Foreground.of(seq, n=int(seq.max())))[0]
    assert np.array_equal(moved, seq) == (abs(amount) < 0.5)
