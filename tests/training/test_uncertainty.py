"""Uncertainty signals: Cellpose's probability map and flow error, SAM's predicted IoUs, per image."""

from __future__ import annotations

import numpy as np
import pytest

from tests.training.synthetic import disks
from training.active_learning import probability_entropy
from training.backbones import cellpose as cp
from training.backbones.base import TrainConfig
from training.backbones.uncertainty import cellpose_signals, sam_predicted_ious


@pytest.fixture(scope="module")
def cellpose_weights(tmp_path_factory):
    images, labels = disks(4, size=64, n_cells=6, seed=0)
    config = TrainConfig(epochs=8, learning_rate=0.02, batch_size=4, tile_size=64, seed=1, device="cpu",
                         save_every=8, warmup_epochs=0, images_per_epoch=8)
    result = cp.fine_tune(images, labels, config=config, checkpoint_dir=tmp_path_factory.mktemp("cp"),
                          options=cp.CellposeOptions(nbase=(8, 16, 32), min_train_masks=1, diam_mean=12.0))
    return result.weights


def test_cellpose_signals_agree_with_predict_and_are_well_formed(cellpose_weights):
    images, _ = disks(2, size=64, n_cells=6, seed=5)
    flat = np.full((64, 64), 300, np.uint16)
    signals = cellpose_signals([*images, flat], weights=cellpose_weights, tile_size=64, device="cpu")
    predicted = cp.predict([*images, flat], weights=cellpose_weights, tile_size=64, device="cpu")
    assert len(signals) == 3
    for s, p in zip(signals, predicted, strict=True):
        assert np.array_equal(s.labels, p)  # the same masks as the backbone's own predict
        assert s.cell_probability.shape == (64, 64) and s.cell_probability.dtype == np.float32
        assert np.isfinite(s.cell_probability).all()
        assert 0.0 <= probability_entropy(s.cell_probability) <= 1.0
        assert s.flow_error >= 0.0
        if p.max() == 0:
            assert s.flow_error == 0.0  # no cell: nothing to disagree with


def test_sam_predicted_ious_one_value_per_non_empty_grid_mask(tmp_path):
    from training.backbones.base import write_torch_file
    from training.backbones.sam_model import arch_of, build

    arch = arch_of("tiny")
    weights = write_torch_file(tmp_path / "sam.pt", {"backbone": "sam", "model": build(arch, seed=0,
                                                     device="cpu").state_dict(), "arch": arch})
    images, _ = disks(2, size=64, n_cells=4, seed=2)
    ious = sam_predicted_ious(images, weights=weights, points_per_side=4, device="cpu")
    assert len(ious) == 2
    for values in ious:
        assert values.ndim == 1 and values.size <= 16 and values.dtype == np.float64
        assert np.isfinite(values).all()
