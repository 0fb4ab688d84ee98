"""``python manage.py finetune``: fine-tune a backbone on image/mask folders, no database needed.

    python manage.py finetune --backbone cellpose --images DIR --masks DIR \\
        [--base-weights FILE] [--epochs N] --out DIR

Images and label images are paired by file name (``a.tif`` with ``a.tif``, ``a.png``,
``a_masks.tif``, ``a_label.png``, ...).  Writes to ``--out``: the weights, a resumable
checkpoint, ``metrics.json`` (configuration, losses, evaluation) and ``loss_curve.png``,
and prints the evaluation table.  Everything below the ``Command`` class is plain Python
over files and arrays; the command only parses arguments and prints.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.core.management.base import BaseCommand, CommandError

IMAGE_SUFFIXES = (".tif", ".tiff", ".png")
MASK_TAILS = ("", "_masks", "_mask", "_cp_masks", "_labels", "_label", "_seg")
MAX_PIXELS = 200_000_000


class Command(BaseCommand):
    help = "Fine-tune Cellpose or SAM on a folder of images and a folder of label images."

    def add_arguments(self, parser):
        parser.add_argument("--backbone", choices=("cellpose", "sam"), required=True)
        parser.add_argument("--images", type=Path, required=True)
        parser.add_argument("--masks", type=Path, required=True)
        parser.add_argument("--out", type=Path, required=True)
        parser.add_argument("--base-weights", type=Path, default=None)
        parser.add_argument("--epochs", type=int, default=100)
        parser.add_argument("--learning-rate", type=float, default=None,
                            help="default 0.005 (cellpose) or 1e-4 (sam)")
        parser.add_argument("--batch-size", type=int, default=8)
        parser.add_argument("--tile-size", type=int, default=224)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
        parser.add_argument("--save-every", type=int, default=10)
        parser.add_argument("--warmup-epochs", type=int, default=10)
        parser.add_argument("--test-images", type=Path, default=None)
        parser.add_argument("--test-masks", type=Path, default=None)
        parser.add_argument("--channels", default="0,0",
                            help="cellpose channels (segment, nuclear), e.g. 2,3")
        parser.add_argument("--channel-axis", type=int, default=None)
        parser.add_argument("--nbase", default=None,
                            help="U-Net widths of a new cellpose net, e.g. 32,64,128,256")
        parser.add_argument("--min-train-masks", type=int, default=5)
        parser.add_argument("--diam-mean", type=float, default=None,
                            help="cellpose: diameter cells are rescaled to (default: from the "
                                 "base weights, or 30)")
        parser.add_argument("--sam-model", choices=("vit_b", "vit_l", "vit_h", "tiny"),
                            default="vit_b")
        parser.add_argument("--resume", action="store_true",
                            help="continue from the checkpoint in --out (also with more "
                                 "--epochs than it was started with)")

    def handle(self, *args, **opts):
        try:
            job = FinetuneJob.from_options(opts)
            for note in job.notes():
                self.stderr.write(self.style.WARNING(note))
            report = run_finetune(job, stream=self.stderr)
        except (ValueError, OSError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(report["table"])
        self.stdout.write(f"\nwrote {report['weights']}, {job.out / 'metrics.json'}, "
                          f"{job.out / 'loss_curve.png'}")


@dataclass(frozen=True)
class FinetuneJob:
    """Everything one CLI run needs, validated."""

    backbone: str
    images: Path
    masks: Path
    out: Path
    base_weights: Path | None
    config: Any
    options: Any
    test_images: Path | None
    test_masks: Path | None
    resume: bool

    @classmethod
    def from_options(cls, o: dict) -> FinetuneJob:
        from training.backbones.base import TrainConfig

        for key in ("images", "masks", "test_images", "test_masks"):
            if o.get(key) is not None and not Path(o[key]).is_dir():
                raise ValueError(f"--{key.replace('_', '-')} {o[key]} is not a directory")
        if (o.get("test_images") is None) != (o.get("test_masks") is None):
            raise ValueError("--test-images and --test-masks go together")
        _check_weights_path(o.get("base_weights"))
        lr = o["learning_rate"] or (0.005 if o["backbone"] == "cellpose" else 1e-4)
        config = TrainConfig(epochs=o["epochs"], learning_rate=lr, batch_size=o["batch_size"],
                             tile_size=o["tile_size"], seed=o["seed"], device=o["device"],
                             save_every=o["save_every"], warmup_epochs=o["warmup_epochs"])
        if o["backbone"] == "cellpose":
            from training.backbones.cellpose import DEFAULT_NBASE, CellposeOptions

            options = CellposeOptions(
                channels=_ints(o["channels"], "--channels"), channel_axis=o["channel_axis"],
                nbase=_ints(o["nbase"], "--nbase") if o["nbase"] else DEFAULT_NBASE,
                min_train_masks=o["min_train_masks"], diam_mean=o.get("diam_mean"))
        else:
            from training.backbones.sam import SamOptions

            options = SamOptions(model_type=o["sam_model"])
        return cls(backbone=o["backbone"], images=o["images"], masks=o["masks"], out=o["out"],
                   base_weights=o["base_weights"], config=config, options=options,
                   test_images=o.get("test_images"), test_masks=o.get("test_masks"),
                   resume=bool(o.get("resume")))


    def notes(self) -> list[str]:
        """What the user should know before the progress bar starts."""
        notes = []
        if self.resume:
            from training.backbones import cellpose, sam

            name = (cellpose if self.backbone == "cellpose" else sam).CHECKPOINT_NAME
            if not (self.out / name).is_file():
                notes.append(f"--resume: no checkpoint {self.out / name} yet; starting at epoch 1")
        if self.backbone == "sam" and self.options.model_type != "tiny":
            from training.backbones.base import resolve_device

            if resolve_device(self.config.device).type == "cpu":
                notes.append(
                    f"SAM {self.options.model_type} on the CPU: its image encoder runs at "
                    "1024 x 1024 px, so embedding the images and each epoch will take many "
                    "minutes. For a quick try use --sam-model tiny; for real runs, a GPU "
                    "(--device cuda)."
                )
        return notes


def _check_weights_path(path) -> None:
    """Fail before any work starts when --base-weights cannot be a weights file."""
    if path is None:
        return
    p = Path(path)
    if not p.exists():
        raise ValueError(f"--base-weights: weights file {p} does not exist")
    if not p.is_file():
        raise ValueError(f"--base-weights: weights file {p} is not a file")
    if p.stat().st_size == 0:
        raise ValueError(f"--base-weights: weights file {p} is empty")


def _ints(text: str, flag: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in str(text).split(","))
    except ValueError:
        raise ValueError(f"{flag} must be comma-separated integers, got {text!r}") from None


def pair_files(images: Path, masks: Path) -> list[tuple[Path, Path]]:
    """Pair each image with the label image of the same name (stem, optionally + a tail).

    Raises ValueError naming every image without a mask, and every mask without an image.
    """
    imgs = sorted(p for p in images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not imgs:
        raise ValueError(f"{images}: no .tif/.tiff/.png images")
    by_stem: dict[str, Path] = {}
    for p in sorted(masks.iterdir()):
        if p.suffix.lower() in IMAGE_SUFFIXES:
            by_stem.setdefault(p.stem, p)
    pairs, missing, used = [], [], set()
    for img in imgs:
        match = next((by_stem[img.stem + t] for t in MASK_TAILS if img.stem + t in by_stem), None)
        if match is None:
            missing.append(img.name)
        else:
            pairs.append((img, match))
            used.add(match)
    if missing:
        raise ValueError(f"{masks}: no label image for {', '.join(missing)}")
    orphans = sorted(p.name for p in by_stem.values() if p not in used and masks != images)
    if orphans:
        raise ValueError(f"{images}: no image for label image(s) {', '.join(orphans)}")
    return pairs


def read_pairs(pairs: list[tuple[Path, Path]]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Read images (real dtype) and label images; errors name the file and the problem."""
    from annotation.imagefiles import read_image
    from annotation.masks import read_label_image

    images, labels = [], []
    for img_path, mask_path in pairs:
        try:
            img = read_image(img_path.read_bytes(), max_pixels=MAX_PIXELS)[0]
        except ValueError as exc:
            raise ValueError(f"image {img_path}: {exc}") from exc
        try:
            lab = read_label_image(mask_path.read_bytes(), max_pixels=MAX_PIXELS)
        except ValueError as exc:
            raise ValueError(f"label image {mask_path}: {exc}") from exc
        if img.shape[:2] != lab.shape and img.shape[-2:] != lab.shape:
            raise ValueError(f"label image {mask_path} is {lab.shape} but image {img_path} is "
                             f"{img.shape}")
        images.append(img)
        labels.append(lab)
    return images, labels


def save_loss_curve(path: Path, train_loss, val_loss, *, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    epochs = np.arange(1, len(train_loss) + 1)
    ax.plot(epochs, train_loss, label="train")
    if np.isfinite(np.asarray(val_loss, dtype=float)).any():
        ax.plot(epochs, val_loss, label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def run_finetune(job: FinetuneJob, *, stream=None) -> dict[str, Any]:
    """Train, evaluate against the base model and write weights, metrics and a loss curve."""
    from tqdm import tqdm

    from training.backbones import cellpose as cellpose_backbone
    from training.backbones import sam as sam_backbone
    from training.evaluate import evaluate, format_table

    backbone = cellpose_backbone if job.backbone == "cellpose" else sam_backbone
    images, labels = read_pairs(pair_files(job.images, job.masks))
    if job.test_images is not None:
        test_pairs = pair_files(job.test_images, job.test_masks)
        test_images, test_labels = read_pairs(test_pairs)
        evaluated_on = "test"
    else:
        test_pairs = pair_files(job.images, job.masks)
        test_images, test_labels = images, labels
        evaluated_on = "train (no --test-images given)"
    job.out.mkdir(parents=True, exist_ok=True)

    bar = tqdm(total=job.config.epochs, desc=f"fine-tune {job.backbone}", unit="epoch",
               file=stream)

    def progress(epoch, total, metrics):
        bar.n = epoch
        bar.set_postfix(loss=f"{metrics['train_loss']:.4f}")
        bar.refresh()

    try:
        result = backbone.fine_tune(images, labels, config=job.config,
                                    base_weights=job.base_weights, progress=progress,
                                    checkpoint_dir=job.out, resume=job.resume,
                                    options=job.options)
    finally:
        bar.close()

    def run(weights):
        if job.backbone == "cellpose":
            return backbone.predict(test_images, weights=weights, device=job.config.device,
                                    channels=job.options.channels,
                                    channel_axis=job.options.channel_axis,
                                    tile_size=job.config.tile_size,
                                    diam_mean=job.options.diam_mean)
        boxes = [sam_backbone.label_boxes(np.asarray(lab))[1] for lab in test_labels]
        return backbone.predict(test_images, weights=weights, boxes=boxes,
                                device=job.config.device)

    names = [p[0].name for p in test_pairs]
    scores = evaluate(test_labels, run(result.weights),
                      base_predictions=None if job.base_weights is None
                      else run(job.base_weights), names=names)
    table = format_table(scores)
    metrics = {"backbone": job.backbone, "config": job.config.as_dict(),
               "options": {k: getattr(job.options, k) for k in job.options.__dataclass_fields__},
               "training": result.as_dict(), "evaluated_on": evaluated_on,
               "prompts": "ground-truth boxes" if job.backbone == "sam" else None,
               "evaluation": scores}
    (job.out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    save_loss_curve(job.out / "loss_curve.png", result.train_loss, result.val_loss,
                    title=f"{job.backbone} fine-tune")
    return {"table": table, "weights": str(result.weights), "metrics": metrics}
