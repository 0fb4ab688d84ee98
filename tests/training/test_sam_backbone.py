"""SAM backbone with a tiny ViT encoder built from segment_anything.modeling, on CPU."""

from __future__ import annotations

import numpy as np
import pytest

from tests.training.synthetic import disks
from training.backbones import sam as sb
from training.backbones.base import TrainConfig, WeightsError

TINY = sb.SamOptions(model_type="tiny")


def _config(**kw) -> TrainConfig:
    base = dict(epochs=5, learning_rate=0.01, batch_size=6, tile_size=64, seed=3, device="cpu",
                save_every=2, warmup_epochs=0)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def data():
    return disks(2, size=64, n_cells=5, seed=1)


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    images, labels = data
    seen = []
    result = sb.fine_tune(images, labels, config=_config(), options=TINY,
                          checkpoint_dir=tmp_path_factory.mktemp("sam"),
                          val=(images[:1], labels[:1]), progress=lambda e, t, m: seen.append(e))
    return result, seen


def test_decoder_training_lowers_loss(trained):
    result, seen = trained
    assert seen == [1, 2, 3, 4, 5]
    assert result.train_loss[-1] < 0.85 * result.train_loss[0]
    assert result.val_loss[-1] < result.val_loss[0]
    assert result.meta == {"backbone": "sam", "arch": "tiny", "base_weights": None,
                           "train_prompt_encoder": False}


def test_only_the_decoder_changes(data, trained):
    import torch

    result, _ = trained
    tuned = sb.load_model(result.weights, device="cpu")
    fresh = sb.build(sb.arch_of("tiny"), seed=3, device=torch.device("cpu"))
    enc_a = tuned.image_encoder.state_dict()
    enc_b = fresh.image_encoder.state_dict()
    assert all(torch.equal(enc_a[k], enc_b[k]) for k in enc_a)
    dec_a = tuned.mask_decoder.state_dict()
    dec_b = fresh.mask_decoder.state_dict()
    assert not all(torch.equal(dec_a[k], dec_b[k]) for k in dec_a)


def test_predict_from_boxes_points_grid_and_labels(data, trained):
    images, labels = data
    weights = trained[0].weights
    boxes = [sb.label_boxes(lab)[1] for lab in labels]
    by_box = sb.predict(images, weights=weights, boxes=boxes, device="cpu")
    assert [(p.shape, p.dtype) for p in by_box] == [((64, 64), np.dtype(np.uint16))] * 2
    centres = [np.c_[(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2] for b in boxes]
    by_point = sb.predict(images[:1], weights=weights, points=centres[:1], device="cpu")
    assert by_point[0].shape == (64, 64)
    grid = sb.predict(images[:1], weights=weights, points_per_side=4, pred_iou_thresh=0.0,
                      device="cpu")
    assert grid[0].dtype == np.uint16
    from_labels = sb.predict(images[:1], weights=weights, mode="cellpose",
                             cellpose_labels=labels[:1], device="cpu")
    assert from_labels[0].shape == (64, 64)


def test_resume_reaches_identical_weights(data, trained, tmp_path):
    import torch

    images, labels = data
    full, _ = trained

    class Killed(Exception):
        pass

    def stop(epoch, total, metrics):
        if epoch == 2:
            raise Killed

    with pytest.raises(Killed):
        sb.fine_tune(images, labels, config=_config(), options=TINY, checkpoint_dir=tmp_path,
                     val=(images[:1], labels[:1]), progress=stop)
    resumed = sb.fine_tune(images, labels, config=_config(), options=TINY,
                           checkpoint_dir=tmp_path, val=(images[:1], labels[:1]), resume=True)
    assert resumed.start_epoch == 2
    assert resumed.train_loss == full.train_loss
    a = torch.load(full.weights, weights_only=True)["model"]
    b = torch.load(resumed.weights, weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_fine_tune_from_our_weights_and_prompt_encoder(data, trained, tmp_path):
    images, labels = data
    result = sb.fine_tune(images, labels, config=_config(epochs=1), checkpoint_dir=tmp_path,
                          base_weights=trained[0].weights,
                          options=sb.SamOptions(model_type="vit_b", train_prompt_encoder=True))
    assert result.meta["arch"] == "tiny"  # the base file's architecture wins
    assert result.meta["train_prompt_encoder"] is True


def test_bad_weights_files_name_the_path(data, tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("a network was built for a bad weights file")

    monkeypatch.setattr(sb, "build", no_network)
    missing = tmp_path / "sam_vit_b.pth"
    with pytest.raises(WeightsError, match=f"{missing} does not exist"):
        sb.predict(data[0], weights=missing, device="cpu")
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"\x80\x02garbage")
    with pytest.raises(WeightsError, match=f"{corrupt} is not a readable torch checkpoint"):
        sb.fine_tune(*data, config=_config(), base_weights=corrupt, checkpoint_dir=tmp_path)
    import torch

    other = tmp_path / "other.pt"
    torch.save({"w": torch.zeros(2)}, other)
    with pytest.raises(WeightsError, match=f"{other} is not a Segment Anything checkpoint"):
        sb.load_model(other, device="cpu")


def test_prediction_arguments_are_checked(data, trained):
    weights = trained[0].weights
    with pytest.raises(ValueError, match="needs boxes for each of the 2 images"):
        sb.predict(data[0], weights=weights, mode="boxes", boxes=[np.zeros((0, 4))])
    with pytest.raises(ValueError, match="exactly one of cellpose_weights"):
        sb.predict(data[0], weights=weights, mode="cellpose")
    with pytest.raises(ValueError, match="model_type"):
        sb.SamOptions(model_type="vit_x")


def test_official_checkpoint_layout_is_recognised_by_encoder_width(tmp_path):
    import torch

    from training.backbones import sam_model

    path = tmp_path / "sam_vit_b_01ec64.pth"
    torch.save({"mask_decoder.iou_token.weight": torch.zeros(1, 256),
                "image_encoder.patch_embed.proj.weight": torch.zeros(768, 3, 16, 16)}, path)
    assert sam_model.load_state(path)[1] == {"name": "vit_b"}
    torch.save({"mask_decoder.iou_token.weight": torch.zeros(1, 256),
                "image_encoder.patch_embed.proj.weight": torch.zeros(500, 3, 16, 16)}, path)
    with pytest.raises(WeightsError, match="unknown SAM encoder width 500"):
        sam_model.load_state(path)
