"""training.backbones.base: configuration, schedule, weights files; and lazy imports."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from training.backbones.base import (
    CheckpointMismatchError,
    TrainConfig,
    TrainResult,
    WeightsError,
    check_resume,
    image_hw,
    learning_rate_schedule,
    read_weights_file,
    validate_pairs,
)

REPO = Path(__file__).resolve().parents[2]


def test_schedule_matches_train_seg():
    short = learning_rate_schedule(0.005, 12)
    assert short[:10] == pytest.approx(np.linspace(0, 0.005, 10))
    assert short[10:] == pytest.approx([0.005, 0.005])
    long = learning_rate_schedule(0.005, 150)
    assert len(long) == 150
    assert long[99] == 0.005
    assert long[100:105] == pytest.approx([0.0025] * 5)
    assert long[-1] == pytest.approx(0.005 / 2**10)
    assert learning_rate_schedule(0.01, 3, warmup_epochs=0).tolist() == [0.01] * 3
    assert len(learning_rate_schedule(0.005, 400)) == 400


@pytest.mark.parametrize(("field", "value", "message"), [
    ("epochs", 0, "epochs must be a positive integer"),
    ("tile_size", 100, "multiple of 16"),
    ("device", "tpu", "device must be one of"),
    ("learning_rate", -1.0, "learning_rate must be a positive number"),
    ("images_per_epoch", 0, "images_per_epoch"),
    ("seed", -3, "seed must be an integer"),
])
def test_config_validation(field, value, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{field: value})


def test_config_and_result_are_frozen_and_json_ready(tmp_path):
    cfg = TrainConfig(epochs=3)
    with pytest.raises(AttributeError):
        cfg.epochs = 4
    result = TrainResult(weights=tmp_path / "w.pt", train_loss=(1.0, 0.5),
                         val_loss=(math.nan, 0.7), wall_time_s=1.5, epochs=2)
    d = json.loads(json.dumps(result.as_dict()))
    assert d["val_loss"] == [None, 0.7]
    assert d["weights"] == str(tmp_path / "w.pt")
    assert json.loads(json.dumps(cfg.as_dict()))["epochs"] == 3


def test_resume_check_names_differences(tmp_path):
    cfg = TrainConfig(epochs=3)
    state = {"backbone": "cellpose", "epoch": 2, "config": cfg.as_dict()}
    assert check_resume(state, config=cfg, backbone="cellpose", path=tmp_path) == 2
    with pytest.raises(CheckpointMismatchError, match="seed: 0 != 5"):
        check_resume(state, config=TrainConfig(epochs=3, seed=5), backbone="cellpose",
                     path=tmp_path)
    with pytest.raises(CheckpointMismatchError, match="backbone 'cellpose', not 'sam'"):
        check_resume(state, config=cfg, backbone="sam", path=tmp_path)
    # More epochs continue the run; fewer than already trained are refused.
    assert check_resume(state, config=TrainConfig(epochs=10), backbone="cellpose",
                        path=tmp_path) == 2
    with pytest.raises(CheckpointMismatchError, match="already trained 2 epochs, more than the 1"):
        check_resume(state, config=TrainConfig(epochs=1), backbone="cellpose", path=tmp_path)


def test_weights_file_errors(tmp_path):
    with pytest.raises(WeightsError, match=f"{tmp_path} is not a file"):
        read_weights_file(tmp_path)
    bad = tmp_path / "half.pt"
    bad.write_bytes(b"PK\x03\x04 truncated zip")
    with pytest.raises(WeightsError, match=f"{bad} is not a readable torch checkpoint"):
        read_weights_file(bad)


def test_pair_validation_and_shapes():
    lab = np.zeros((8, 9), np.uint16)
    assert image_hw(np.zeros((8, 9, 3))) == (8, 9)
    assert image_hw(np.zeros((2, 8, 9))) == (8, 9)
    validate_pairs([np.zeros((8, 9))], [lab])
    with pytest.raises(ValueError, match="must be integer"):
        validate_pairs([np.zeros((8, 9))], [lab.astype(float)])
    with pytest.raises(ValueError, match="negative"):
        validate_pairs([np.zeros((8, 9))], [lab.astype(np.int32) - 1])
    with pytest.raises(ValueError, match="no images"):
        validate_pairs([], [])


@pytest.mark.parametrize("module", [
    "training.backbones.base", "training.backbones.cellpose", "training.backbones.cellpose_net",
    "training.backbones.sam", "training.backbones.sam_model", "training.evaluate",
    "training.backbones.uncertainty", "training.bioimageio",
])
def test_importing_loads_neither_torch_nor_django(module):
    code = (f"import importlib, sys; importlib.import_module({module!r}); "
            "print(sorted({'torch', 'django', 'cellpose', 'segment_anything'} & "
            "{m.split('.')[0] for m in sys.modules}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "[]"
