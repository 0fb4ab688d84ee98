"""``manage.py finetune`` on real TIFF/PNG files in a temporary folder."""

from __future__ import annotations

import json
from io import StringIO

import numpy as np
import pytest
import tifffile
from django.core.management import CommandError, call_command
from PIL import Image

from tests.training.synthetic import disks
from training.management.commands.finetune import pair_files


@pytest.fixture()
def folders(tmp_path):
    images, labels = disks(3, size=64, n_cells=6, seed=5)
    img_dir, mask_dir = tmp_path / "images", tmp_path / "masks"
    img_dir.mkdir()
    mask_dir.mkdir()
    for i, (img, lab) in enumerate(zip(images, labels, strict=True)):
        tifffile.imwrite(img_dir / f"img{i}.tif", img)  # 16-bit TIFF
        Image.fromarray(lab.astype(np.uint8)).save(mask_dir / f"img{i}_masks.png")
    return tmp_path, img_dir, mask_dir


def test_cellpose_run_writes_weights_metrics_and_curve(folders):
    tmp, img_dir, mask_dir = folders
    out, err = StringIO(), StringIO()
    call_command("finetune", "--backbone", "cellpose", "--images", str(img_dir), "--masks",
                 str(mask_dir), "--out", str(tmp / "run"), "--epochs", "2", "--tile-size", "64",
                 "--nbase", "8,16,32", "--min-train-masks", "1", "--device", "cpu",
                 "--warmup-epochs", "0", "--learning-rate", "0.02", stdout=out, stderr=err)
    assert (tmp / "run" / "cellpose_weights.pt").stat().st_size > 0
    assert (tmp / "run" / "loss_curve.png").read_bytes()[:4] == b"\x89PNG"
    metrics = json.loads((tmp / "run" / "metrics.json").read_text())
    assert metrics["backbone"] == "cellpose"
    assert len(metrics["training"]["train_loss"]) == 2
    assert metrics["evaluated_on"].startswith("train")
    assert [r["image"] for r in metrics["evaluation"]["model"]["per_image"]] == [
        "img0.tif", "img1.tif", "img2.tif"]
    assert metrics["evaluation"]["model"]["per_image"][0]["n_true"] == 6
    assert out.getvalue().startswith("| model | AP@0.50 |")
    assert "2/2" in err.getvalue()  # the progress bar reached the last epoch


def test_sam_run_with_base_weights_compares_against_base(folders):
    tmp, img_dir, mask_dir = folders
    common = ["--backbone", "sam", "--images", str(img_dir), "--masks", str(mask_dir),
              "--epochs", "1", "--sam-model", "tiny", "--device", "cpu", "--warmup-epochs", "0"]
    call_command("finetune", *common, "--out", str(tmp / "a"), stdout=StringIO(),
                 stderr=StringIO())
    out = StringIO()
    call_command("finetune", *common, "--out", str(tmp / "b"), "--base-weights",
                 str(tmp / "a" / "sam_weights.pt"), stdout=out, stderr=StringIO())
    metrics = json.loads((tmp / "b" / "metrics.json").read_text())
    assert metrics["prompts"] == "ground-truth boxes"
    assert metrics["evaluation"]["base"] is not None
    assert len(metrics["evaluation"]["delta"]["ap"]) == 10
    assert "| base |" in out.getvalue() and "| delta |" in out.getvalue()


def test_errors_name_the_file_and_problem(folders):
    tmp, img_dir, mask_dir = folders
    (mask_dir / "img2_masks.png").unlink()
    with pytest.raises(CommandError, match="no label image for img2.tif"):
        call_command("finetune", "--backbone", "cellpose", "--images", str(img_dir),
                     "--masks", str(mask_dir), "--out", str(tmp / "x"), stdout=StringIO())
    (mask_dir / "img2_masks.png").write_bytes(b"not a png")
    with pytest.raises(CommandError, match="label image .*img2_masks.png"):
        call_command("finetune", "--backbone", "cellpose", "--images", str(img_dir),
                     "--masks", str(mask_dir), "--out", str(tmp / "x"), stdout=StringIO())
    with pytest.raises(CommandError, match=r"weights file .*missing\.pt does not exist"):
        (mask_dir / "img2_masks.png").unlink()
        (img_dir / "img2.tif").unlink()
        call_command("finetune", "--backbone", "cellpose", "--images", str(img_dir),
                     "--masks", str(mask_dir), "--out", str(tmp / "x"), "--base-weights",
                     str(tmp / "missing.pt"), stdout=StringIO(), stderr=StringIO())
    with pytest.raises(CommandError, match="is not a directory"):
        call_command("finetune", "--backbone", "sam", "--images", str(tmp / "nowhere"),
                     "--masks", str(mask_dir), "--out", str(tmp / "x"))


def test_pairing_accepts_same_name_and_reports_orphans(tmp_path):
    (tmp_path / "i").mkdir()
    (tmp_path / "m").mkdir()
    for name in ("a.tif", "b.png"):
        (tmp_path / "i" / name).write_bytes(b"")
    for name in ("a.tif", "b_label.png", "c.png"):
        (tmp_path / "m" / name).write_bytes(b"")
    with pytest.raises(ValueError, match="no image for label image"):
        pair_files(tmp_path / "i", tmp_path / "m")
    (tmp_path / "m" / "c.png").unlink()
    pairs = pair_files(tmp_path / "i", tmp_path / "m")
    assert [(a.name, b.name) for a, b in pairs] == [("a.tif", "a.tif"), ("b.png", "b_label.png")]


CELLPOSE_SMALL = ["--backbone", "cellpose", "--tile-size", "64", "--nbase", "8,16,32",
                  "--min-train-masks", "1", "--device", "cpu", "--warmup-epochs", "0",
                  "--learning-rate", "0.02", "--save-every", "1"]


def test_resume_with_more_epochs_continues_from_the_checkpoint(folders):
    """2 epochs, then --resume --epochs 3, gives exactly the weights of a 3-epoch run."""
    import torch

    tmp, img_dir, mask_dir = folders
    data = ["--images", str(img_dir), "--masks", str(mask_dir), *CELLPOSE_SMALL]
    call_command("finetune", *data, "--out", str(tmp / "a"), "--epochs", "2",
                 stdout=StringIO(), stderr=StringIO())
    err = StringIO()
    call_command("finetune", *data, "--out", str(tmp / "a"), "--epochs", "3", "--resume",
                 stdout=StringIO(), stderr=err)
    resumed = json.loads((tmp / "a" / "metrics.json").read_text())["training"]
    assert (resumed["start_epoch"], len(resumed["train_loss"])) == (2, 3)
    assert "3/3" in err.getvalue()
    call_command("finetune", *data, "--out", str(tmp / "b"), "--epochs", "3",
                 stdout=StringIO(), stderr=StringIO())
    fresh = json.loads((tmp / "b" / "metrics.json").read_text())["training"]
    assert resumed["train_loss"] == fresh["train_loss"]
    a = torch.load(tmp / "a" / "cellpose_weights.pt", weights_only=True)
    b = torch.load(tmp / "b" / "cellpose_weights.pt", weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # Fewer epochs than the checkpoint already has: refused, saying what to ask for.
    with pytest.raises(CommandError, match="already trained 3 epochs, more than the 2 asked "
                                           "for; resume with --epochs 3 or more"):
        call_command("finetune", *data, "--out", str(tmp / "a"), "--epochs", "2", "--resume",
                     stdout=StringIO(), stderr=StringIO())


@pytest.mark.parametrize("kind", ["missing", "empty", "folder"])
def test_a_bad_base_weights_path_fails_before_any_work(folders, kind):
    tmp, img_dir, mask_dir = folders
    path = tmp / "w.pt"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "folder":
        path.mkdir()
    expected = {"missing": "does not exist", "empty": "is empty", "folder": "is not a file"}[kind]
    err = StringIO()
    with pytest.raises(CommandError, match=f"--base-weights: weights file .*w.pt {expected}"):
        call_command("finetune", "--images", str(img_dir), "--masks", str(mask_dir),
                     "--out", str(tmp / "run"), "--base-weights", str(path), "--epochs", "2",
                     *CELLPOSE_SMALL, stdout=StringIO(), stderr=err)
    assert "fine-tune" not in err.getvalue()  # no progress bar was started
    assert not (tmp / "run").exists()  # nothing was written


def _job(*argv):
    from training.management.commands.finetune import Command, FinetuneJob

    parser = Command().create_parser("manage.py", "finetune")
    return FinetuneJob.from_options(vars(parser.parse_args(list(argv))))


def test_sam_default_model_on_cpu_says_it_is_slow_and_what_to_use(folders):
    tmp, img_dir, mask_dir = folders
    common = ["--backbone", "sam", "--images", str(img_dir), "--masks", str(mask_dir),
              "--out", str(tmp / "s"), "--device", "cpu"]
    notes = _job(*common).notes()
    assert len(notes) == 1
    assert notes[0].startswith("SAM vit_b on the CPU")
    assert "many minutes" in notes[0] and "--sam-model tiny" in notes[0]
    assert "--device cuda" in notes[0]
    assert _job(*common, "--sam-model", "tiny").notes() == []
    assert _job("--backbone", "cellpose", "--images", str(img_dir), "--masks", str(mask_dir),
                "--out", str(tmp / "c"), "--device", "cpu").notes() == []


def test_sam_hint_is_printed_before_training(folders):
    """The note reaches the user on stderr ahead of the progress bar (here the run then
    stops at once: its base weights are not a SAM file)."""
    tmp, img_dir, mask_dir = folders
    bogus = tmp / "bogus.pt"
    bogus.write_bytes(b"not torch")
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("finetune", "--backbone", "sam", "--images", str(img_dir), "--masks",
                     str(mask_dir), "--out", str(tmp / "s"), "--device", "cpu", "--epochs", "1",
                     "--base-weights", str(bogus), stdout=StringIO(), stderr=err)
    text = err.getvalue()
    assert "SAM vit_b on the CPU" in text
    assert text.index("SAM vit_b on the CPU") < (text.index("fine-tune") if "fine-tune" in text
                                                  else len(text))


def test_resume_without_a_checkpoint_says_it_starts_at_epoch_one(folders):
    tmp, img_dir, mask_dir = folders
    notes = _job("--backbone", "cellpose", "--images", str(img_dir), "--masks", str(mask_dir),
                 "--out", str(tmp / "new"), "--resume").notes()
    assert notes == [f"--resume: no checkpoint {tmp / 'new' / 'cellpose_checkpoint.pt'} yet; "
                     "starting at epoch 1"]
