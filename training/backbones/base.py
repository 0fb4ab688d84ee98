"""The interface every training backbone implements, and what they share.

A backbone module (``training.backbones.cellpose``, ``training.backbones.sam``) exposes

``fine_tune(images, masks, *, config, base_weights=None, val=None, progress=None,
checkpoint_dir=None, resume=False, options=None) -> TrainResult``
    Train on lists of images and instance label images and write the weights to a file.

``predict(images, *, weights, **options) -> list[np.ndarray]``
    Segment images with a weights file and return one label image per image.

This module holds the pieces they share: the frozen :class:`TrainConfig` and
:class:`TrainResult`, the learning-rate schedule, checked loading of weights files,
atomic checkpoints and input validation.  torch is imported inside functions only, so
importing this module never loads it.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ProgressCallback = Callable[[int, int, Mapping[str, float]], None]
"""``progress(epoch, total, metrics)``; epoch is 1-based, metrics has ``train_loss``,
``val_loss`` (nan when no validation data) and ``learning_rate``."""

DEVICES = ("auto", "cpu", "cuda")


class WeightsError(ValueError):
    """A weights or checkpoint file is missing, unreadable or of the wrong kind."""


class CheckpointMismatchError(ValueError):
    """A checkpoint to resume from was written by a run with another configuration."""


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters shared by all backbones.

    Attributes
    ----------
    epochs : int
        Number of passes over ``images_per_epoch`` training images.
    learning_rate : float
        Peak learning rate of AdamW (reached after ``warmup_epochs``).
    weight_decay : float
        AdamW weight decay.
    batch_size : int
        Tiles (Cellpose) or box prompts (SAM) per optimiser step.
    tile_size : int
        Side of the square training tiles in pixels (Cellpose's ``bsize``).
    seed : int
        Seeds the network initialisation, the image order and every augmentation.
    device : {'auto', 'cpu', 'cuda'}
        ``auto`` picks CUDA when available.
    save_every : int
        Write a resumable checkpoint every this many epochs (and after the last).
    warmup_epochs : int
        Linear warm-up from 0 to ``learning_rate``; 10 is Cellpose's ``train_seg``.
    images_per_epoch : int or None
        Images drawn per epoch (with replacement when it differs from the number of
        images, as ``train_seg``'s ``nimg_per_epoch``); None uses every image once.
    """

    epochs: int = 100
    learning_rate: float = 0.005
    weight_decay: float = 1e-5
    batch_size: int = 8
    tile_size: int = 224
    seed: int = 0
    device: str = "auto"
    save_every: int = 10
    warmup_epochs: int = 10
    images_per_epoch: int | None = None

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "tile_size", "save_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"TrainConfig.{name} must be a positive integer, got {value!r}")
        if not isinstance(self.warmup_epochs, int) or self.warmup_epochs < 0:
            raise ValueError(
                f"TrainConfig.warmup_epochs must be an integer >= 0, got {self.warmup_epochs!r}"
            )
        if self.images_per_epoch is not None and (
            not isinstance(self.images_per_epoch, int) or self.images_per_epoch < 1
        ):
            raise ValueError(
                "TrainConfig.images_per_epoch must be None or a positive integer, "
                f"got {self.images_per_epoch!r}"
            )
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ValueError(
                f"TrainConfig.learning_rate must be a positive number, got {self.learning_rate!r}"
            )
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(
                f"TrainConfig.weight_decay must be >= 0, got {self.weight_decay!r}"
            )
        if self.tile_size % 16:
            raise ValueError(
                f"TrainConfig.tile_size must be a multiple of 16 (U-Net and ViT strides), "
                f"got {self.tile_size}"
            )
        if self.device not in DEVICES:
            raise ValueError(f"TrainConfig.device must be one of {DEVICES}, got {self.device!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"TrainConfig.seed must be an integer >= 0, got {self.seed!r}")

    def as_dict(self) -> dict[str, Any]:
        """The configuration as a JSON-ready dict."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class TrainResult:
    """What a fine-tuning run produced.

    Attributes
    ----------
    weights : Path
        The final weights file (loadable by the backbone's ``predict``).
    train_loss, val_loss : tuple of float, length ``epochs``
        Mean loss per epoch; ``val_loss`` is nan where no validation data was given.
    wall_time_s : float
        Seconds spent in this call (not counting epochs done before a resume).
    epochs : int
        Epochs completed in total.
    start_epoch : int
        Epochs already done when this call began (0 unless resumed).
    checkpoint : Path or None
        The last resumable checkpoint, when a checkpoint directory was given.
    meta : mapping
        Backbone-specific facts worth storing (diameters, architecture, base weights).
    """

    weights: Path
    train_loss: tuple[float, ...]
    val_loss: tuple[float, ...]
    wall_time_s: float
    epochs: int
    start_epoch: int = 0
    checkpoint: Path | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (nan losses become None)."""
        return {
            "weights": str(self.weights),
            "train_loss": [_json_float(v) for v in self.train_loss],
            "val_loss": [_json_float(v) for v in self.val_loss],
            "wall_time_s": self.wall_time_s,
            "epochs": self.epochs,
            "start_epoch": self.start_epoch,
            "checkpoint": None if self.checkpoint is None else str(self.checkpoint),
            "meta": dict(self.meta),
        }


def _json_float(value: float) -> float | None:
    return None if not math.isfinite(value) else float(value)


def learning_rate_schedule(learning_rate: float, epochs: int, *, warmup_epochs: int = 10
                           ) -> np.ndarray:
    """Per-epoch learning rates as Cellpose's ``train_seg`` builds them.

    Parameters
    ----------
    learning_rate : float
        Peak rate.
    epochs : int
        Number of epochs.
    warmup_epochs : int
        Length of the linear warm-up from 0 (``train_seg`` uses 10).

    Returns
    -------
    ndarray of float64, shape (epochs,)

    Notes
    -----
    With ``warmup_epochs=10`` this equals ``train_seg``: a linear ramp over 10 epochs,
    then constant; above 100 epochs the last 50 are halved every 5, above 300 the last 100
    are halved every 10.  ``warmup_epochs=0`` starts at the peak rate, which short
    fine-tunes from good weights want.
    """
    if warmup_epochs > 0:
        lr = np.linspace(0, learning_rate, warmup_epochs)
    else:
        lr = np.zeros(0)
    lr = np.append(lr, learning_rate * np.ones(max(0, epochs - warmup_epochs)))
    if epochs > 300:
        lr = lr[:-100]
        for _ in range(10):
            lr = np.append(lr, lr[-1] / 2 * np.ones(10))
    elif epochs > 100:
        lr = lr[:-50]
        for _ in range(10):
            lr = np.append(lr, lr[-1] / 2 * np.ones(5))
    return lr[:epochs].astype(np.float64)


def resolve_device(device: str):
    """The torch device for ``'auto'``, ``'cpu'`` or ``'cuda'``."""
    import torch

    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but torch sees no CUDA device")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def read_weights_file(path: str | os.PathLike, *, what: str = "weights file") -> Any:
    """Load a torch file safely (``weights_only``), or raise :class:`WeightsError`.

    Called before any network is built, so a bad path fails fast and names the file.
    """
    import torch

    p = Path(path)
    if not p.exists():
        raise WeightsError(f"{what} {p} does not exist")
    if not p.is_file():
        raise WeightsError(f"{what} {p} is not a file")
    if p.stat().st_size == 0:
        raise WeightsError(f"{what} {p} is empty")
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged file
        raise WeightsError(
            f"{what} {p} is not a readable torch checkpoint ({type(exc).__name__}: {exc})"
        ) from exc


def write_torch_file(path: Path, payload: Any) -> Path:
    """Write ``payload`` with ``torch.save`` atomically (a killed run never leaves half a file)."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def output_dir(checkpoint_dir: str | os.PathLike | None) -> Path:
    """The directory for weights and checkpoints (a new temporary one when None)."""
    if checkpoint_dir is None:
        return Path(tempfile.mkdtemp(prefix="cellcurate-train-"))
    path = Path(checkpoint_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path


def check_resume(state: Mapping[str, Any], *, config: TrainConfig, backbone: str,
                 path: Path) -> int:
    """Validate a checkpoint against this run and return the epochs it completed.

    Every setting must match except ``epochs``: asking for more epochs than the
    checkpoint's run continues training from it (the remaining epochs follow the learning
    rate schedule of the new total, which equals the old one up to 100 epochs), and fewer
    is fine as long as the checkpoint has not gone past them.
    """
    if state.get("backbone") != backbone:
        raise CheckpointMismatchError(
            f"checkpoint {path} is for backbone {state.get('backbone')!r}, not {backbone!r}"
        )
    saved = dict(state.get("config", {}))
    mine = config.as_dict()
    differ = sorted(k for k in mine if k != "epochs" and saved.get(k) != mine[k])
    if differ:
        details = ", ".join(f"{k}: {saved.get(k)!r} != {mine[k]!r}" for k in differ)
        raise CheckpointMismatchError(
            f"checkpoint {path} was written with another configuration ({details})"
        )
    done = int(state["epoch"])
    if done > config.epochs:
        raise CheckpointMismatchError(
            f"checkpoint {path} has already trained {done} epochs, more than the "
            f"{config.epochs} asked for; resume with --epochs {done} or more"
        )
    return done


def validate_pairs(images: Sequence[np.ndarray], masks: Sequence[np.ndarray], *,
                   name: str = "images") -> None:
    """Check that images and label images pair up.

    Parameters
    ----------
    images : sequence of ndarray, each (H, W) or (H, W, C) or (C, H, W) with C <= 4
    masks : sequence of ndarray of int, each (H, W)
    """
    if len(images) == 0:
        raise ValueError(f"{name}: no images given")
    if len(images) != len(masks):
        raise ValueError(f"{name}: {len(images)} images but {len(masks)} label images")
    for i, (img, lab) in enumerate(zip(images, masks, strict=True)):
        img = np.asarray(img)
        lab = np.asarray(lab)
        if lab.ndim != 2:
            raise ValueError(f"{name}[{i}]: label image must be 2-D, got shape {lab.shape}")
        if not np.issubdtype(lab.dtype, np.integer):
            raise ValueError(f"{name}[{i}]: label image must be integer, got {lab.dtype}")
        if lab.size and lab.min() < 0:
            raise ValueError(f"{name}[{i}]: label image has negative labels")
        if image_hw(img) != lab.shape:
            raise ValueError(
                f"{name}[{i}]: image shape {img.shape} does not match label image {lab.shape}"
            )


def image_hw(image: np.ndarray) -> tuple[int, int]:
    """Height and width of a (H, W), (H, W, C) or (C, H, W) image (C <= 4)."""
    image = np.asarray(image)
    if image.ndim == 2:
        return (int(image.shape[0]), int(image.shape[1]))
    if image.ndim == 3:
        if image.shape[-1] <= 4:
            return (int(image.shape[0]), int(image.shape[1]))
        if image.shape[0] <= 4:
            return (int(image.shape[1]), int(image.shape[2]))
    raise ValueError(
        f"image must be (H, W), (H, W, C) or (C, H, W) with C <= 4, got shape {image.shape}"
    )
