"""Cellpose backbone: tiny nets on synthetic disks, on CPU, a few seconds each."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.training.synthetic import disks
from training.backbones import cellpose as cp
from training.backbones.base import CheckpointMismatchError, TrainConfig, WeightsError

OPTIONS = cp.CellposeOptions(nbase=(8, 16, 32), min_train_masks=1, diam_mean=12.0)


def _config(**kw) -> TrainConfig:
    base = dict(epochs=6, learning_rate=0.02, batch_size=4, tile_size=64, seed=1, device="cpu",
                save_every=2, warmup_epochs=0, images_per_epoch=8)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def data():
    return disks(4, size=64, n_cells=6, seed=0)


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    images, labels = data
    seen = []
    out = tmp_path_factory.mktemp("cp")
    result = cp.fine_tune(images, labels, config=_config(), options=OPTIONS, checkpoint_dir=out,
                          val=(images[:2], labels[:2]),
                          progress=lambda e, t, m: seen.append((e, t, dict(m))))
    return result, seen


def test_training_lowers_loss_and_reports_every_epoch(trained):
    result, seen = trained
    assert len(result.train_loss) == 6
    assert result.train_loss[-1] < 0.75 * result.train_loss[0]
    assert [e for e, _, _ in seen] == [1, 2, 3, 4, 5, 6]
    assert all(t == 6 for _, t, _ in seen)
    assert seen[-1][2]["train_loss"] == result.train_loss[-1]
    assert np.isfinite(result.val_loss).all()
    assert result.meta["nbase"] == [2, 8, 16, 32]
    assert result.weights.name == "cellpose_weights.pt"


def test_same_seed_same_losses(data, trained, tmp_path):
    images, labels = data
    again = cp.fine_tune(images, labels, config=_config(epochs=2), options=OPTIONS,
                         checkpoint_dir=tmp_path)
    assert again.train_loss == trained[0].train_loss[:2]


def test_weights_reload_and_predict_label_images(data, trained):
    images, _ = data
    result, _ = trained
    model = cp.load_model(result.weights, device="cpu")
    assert model.diam_mean == 12.0
    assert model.diam_labels == pytest.approx(result.meta["diam_labels"], rel=1e-6)
    preds = cp.predict(images[:2], weights=result.weights, device="cpu", tile_size=64)
    assert [p.shape for p in preds] == [(64, 64), (64, 64)]
    assert all(p.dtype == np.uint16 for p in preds)
    fixed = cp.predict(images[:1], weights=result.weights, device="cpu", tile_size=64,
                       diameter=12.0)
    assert fixed[0].shape == (64, 64)


def test_resume_after_epoch_two_reaches_identical_weights(data, trained, tmp_path):
    import torch

    images, labels = data
    full, _ = trained
    # a run killed after epoch 2: the checkpoint written at epoch 2 is what survives
    with pytest.raises(_Killed):
        cp.fine_tune(images, labels, config=_config(), options=OPTIONS, checkpoint_dir=tmp_path,
                     val=(images[:2], labels[:2]), progress=lambda e, t, m: _stop_after(e, 2))
    state = torch.load(tmp_path / cp.CHECKPOINT_NAME, weights_only=True)
    assert state["epoch"] == 2
    resumed = cp.fine_tune(images, labels, config=_config(), options=OPTIONS,
                           checkpoint_dir=tmp_path, val=(images[:2], labels[:2]), resume=True)
    assert resumed.start_epoch == 2
    assert resumed.train_loss == full.train_loss
    a = torch.load(full.weights, weights_only=True)
    b = torch.load(resumed.weights, weights_only=True)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


class _Killed(Exception):
    pass


def _stop_after(epoch: int, last: int) -> None:
    if epoch == last:
        raise _Killed


def test_resume_refuses_a_checkpoint_of_another_configuration(data, trained, tmp_path):
    images, labels = data
    cp.fine_tune(images, labels, config=_config(epochs=2), options=OPTIONS,
                 checkpoint_dir=tmp_path)
    with pytest.raises(CheckpointMismatchError, match="learning_rate"):
        cp.fine_tune(images, labels, config=_config(epochs=2, learning_rate=0.01),
                     options=OPTIONS, checkpoint_dir=tmp_path, resume=True)


def test_base_weights_fine_tune_keeps_architecture(data, trained, tmp_path):
    images, labels = data
    result, _ = trained
    tuned = cp.fine_tune(images, labels, config=_config(epochs=1), options=OPTIONS,
                         base_weights=result.weights, checkpoint_dir=tmp_path)
    assert tuned.meta["nbase"] == [2, 8, 16, 32]
    assert tuned.meta["base_weights"] == str(result.weights)


def test_missing_weights_file_names_the_path(data, tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("a network was built for a bad weights file")

    monkeypatch.setattr(cp, "build_net", no_network)
    missing = tmp_path / "nope.pt"
    with pytest.raises(WeightsError, match=str(missing)):
        cp.predict(data[0][:1], weights=missing, device="cpu")
    with pytest.raises(WeightsError, match="does not exist"):
        cp.fine_tune(*data, config=_config(), base_weights=missing, checkpoint_dir=tmp_path)
    assert not (tmp_path / cp.WEIGHTS_NAME).exists()


def test_corrupt_weights_file_names_the_path(data, tmp_path, monkeypatch):
    monkeypatch.setattr(cp, "build_net", None)  # calling it would fail the test
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"this is not a torch file")
    with pytest.raises(WeightsError, match=f"{bad}.*not a readable torch checkpoint"):
        cp.load_model(bad, device="cpu")
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(WeightsError, match=f"{empty} is empty"):
        cp.predict(data[0][:1], weights=empty, device="cpu")


def test_sixteen_bit_and_multichannel_inputs(tmp_path):
    images, labels = disks(2, size=64, n_cells=6, seed=3)
    rgb = [np.stack([np.zeros_like(im), im, im // 2], axis=-1) for im in images]
    result = cp.fine_tune(rgb, labels, config=_config(epochs=1), checkpoint_dir=tmp_path,
                          options=cp.CellposeOptions(nbase=(8, 16, 32), min_train_masks=1,
                                                     channels=(2, 3), channel_axis=-1))
    preds = cp.predict(rgb, weights=result.weights, channels=(2, 3), channel_axis=-1,
                       device="cpu", tile_size=64, diameter="estimate")
    assert [p.shape for p in preds] == [(64, 64), (64, 64)]


def test_inputs_are_validated_before_training(data, tmp_path):
    images, labels = data
    with pytest.raises(ValueError, match=r"images\[1\].*does not match"):
        cp.fine_tune([images[0], images[1][:32]], labels[:2], config=_config(),
                     checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match="2 images but 1 label"):
        cp.fine_tune(images[:2], labels[:1], config=_config(), checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match="min_train_masks=50"):
        cp.fine_tune(images, labels, config=_config(), checkpoint_dir=tmp_path,
                     options=cp.CellposeOptions(nbase=(8, 16, 32), min_train_masks=50))
    with pytest.raises(ValueError, match="diameter"):
        cp.predict(images[:1], weights=Path("x"), diameter="big")


def test_published_model_layout_loads_from_a_local_file(tmp_path):
    """A state dict with Cellpose's default widths (cyto3/nuclei layout) loads as is."""
    import torch
    from cellpose.resnet_torch import CPnet

    net = CPnet([2, 32, 64, 128, 256], 3, sz=3, mkldnn=False, max_pool=True, diam_mean=30.0)
    path = tmp_path / "nuclei_like.pth"
    torch.save(net.state_dict(), path)
    model = cp.load_model(path, device="cpu", diam_mean=17.0)
    assert model.nbase == [2, 32, 64, 128, 256]
    assert model.diam_mean == 17.0
    assert model.net is not None and not hasattr(model.net, "inner")  # no style padding
    images, _ = disks(1, size=64, n_cells=4, seed=2)
    out = cp.predict(images, weights=path, device="cpu", tile_size=64)
    assert out[0].shape == (64, 64) and out[0].dtype == np.uint16
