"""The service's view of :mod:`training.backbones`: hyper-parameters in, configs and predictions out.

Turns the JSON a user sends (``hyperparameters``, ``options``) into the backbones' frozen
:class:`~training.backbones.base.TrainConfig` and option dataclasses, answering bad values
with :class:`~config.errors.InvalidInput` naming the field; and runs ``predict`` the same
way for evaluation, pre-annotation and assist.  torch is imported only when a backbone runs.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings

from config.errors import InvalidInput
from training.enums import Backbone

#: Hyper-parameters a user may set (TrainConfig fields; device comes from the settings).
HYPERPARAMETERS = ("epochs", "learning_rate", "weight_decay", "batch_size", "tile_size", "seed",
                   "save_every", "warmup_epochs", "images_per_epoch")
OPTIONS = {
    Backbone.CELLPOSE: ("channels", "channel_axis", "nbase", "diam_mean", "rescale", "scale_range",
                        "min_train_masks"),
    Backbone.SAM: ("model_type", "train_prompt_encoder", "box_jitter", "channels"),
}
DEFAULT_LR = {Backbone.CELLPOSE: 0.005, Backbone.SAM: 1e-4}


def module(backbone: str):
    from training.backbones import cellpose, sam

    return cellpose if backbone == Backbone.CELLPOSE else sam


def train_config(backbone: str, hyperparameters: dict) -> Any:
    """A validated ``TrainConfig`` (400 naming ``hyperparameters`` otherwise)."""
    from training.backbones.base import TrainConfig

    if not isinstance(hyperparameters, dict):
        raise InvalidInput("hyperparameters must be an object", field="hyperparameters")
    unknown = sorted(set(hyperparameters) - set(HYPERPARAMETERS))
    if unknown:
        raise InvalidInput(f"unknown hyper-parameters {unknown}; known: {list(HYPERPARAMETERS)}",
                           field="hyperparameters")
    values = {"learning_rate": DEFAULT_LR[Backbone(backbone)], **hyperparameters,
              "device": settings.TRAINING_DEVICE}
    try:
        return TrainConfig(**values)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(str(exc).replace("TrainConfig.", ""), field="hyperparameters") from exc


def backbone_options(backbone: str, options: dict) -> Any:
    """Validated backbone options (``CellposeOptions`` or ``SamOptions``)."""
    if not isinstance(options, dict):
        raise InvalidInput("options must be an object", field="options")
    allowed = OPTIONS[Backbone(backbone)]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise InvalidInput(f"unknown {backbone} options {unknown}; known: {list(allowed)}", field="options")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
    try:
        if backbone == Backbone.CELLPOSE:
            from training.backbones.cellpose import CellposeOptions

            return CellposeOptions(**values)
        from training.backbones.sam import SamOptions

        return SamOptions(**values)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(str(exc), field="options") from exc


def options_dict(options: Any) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(options).items()}


def predict(backbone: str, images: list[np.ndarray], *, weights: Path, options: dict,
            hyperparameters: dict, labels: list[np.ndarray] | None = None) -> list[np.ndarray]:
    """Label images of ``images`` from a weights file, as a run was trained.

    SAM needs prompts: for evaluation they are the ground truth's boxes (``labels``);
    without labels SAM segments from a point grid.
    """
    device = settings.TRAINING_DEVICE
    if backbone == Backbone.CELLPOSE:
        from training.backbones import cellpose

        return cellpose.predict(images, weights=weights, device=device,
                                channels=tuple(options.get("channels", (0, 0))),
                                channel_axis=options.get("channel_axis"),
                                tile_size=int(hyperparameters.get("tile_size", 224)),
                                diam_mean=options.get("diam_mean"))
    from training.backbones import sam

    if labels is not None:
        boxes = [sam.label_boxes(np.asarray(lab))[1] for lab in labels]
        return sam.predict(images, weights=weights, boxes=boxes, device=device)
    return sam.predict(images, weights=weights, device=device)
