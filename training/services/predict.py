"""Predict an image with a registered model version: the label image other services build on.

Pre-annotation (drafts), QA's model reference and active learning all ask the same thing:
"what does model version M see in image I?".  :func:`model_version_predict` answers it the
way evaluation does (:func:`training.services.backbone.predict`, with the options and
hyper-parameters the version was trained with), on ``TRAINING_DEVICE`` (CUDA when present).
The weights are fetched from training storage once per process and checked against the
sha256 the registry recorded.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.files.storage import default_storage

from annotation.imagefiles import read_image
from annotation.models import Image
from config.errors import Conflict
from training.models import ModelVersion
from training.services import backbone as bb
from training.services.data import file_download, local_workdir, sha256_file


def image_pixels(image: Image) -> np.ndarray:
    """The pixels of an image row (its first page for a stack), as stored."""
    with default_storage.open(image.file.name, "rb") as fh:
        arr, info = read_image(fh.read(), max_pixels=settings.CELLCURATE_MAX_IMAGE_PIXELS)
    return arr[0] if info.pages > 1 else arr


@lru_cache(maxsize=8)
def weights_file(name: str, sha256: str) -> Path:
    """A local copy of a registered weights file, verified against its recorded sha256."""
    path = file_download(name, local_workdir("cellcurate-weights-") / Path(name).name)
    actual = sha256_file(path)
    if sha256 and actual != sha256:
        path.unlink(missing_ok=True)
        weights_file.cache_clear()
        raise Conflict(f"weights {name} changed in storage (sha256 {actual[:12]}..., "
                       f"registered {sha256[:12]}...)")
    return path


def model_version_predict(*, model_version: ModelVersion, image: Image | np.ndarray) -> np.ndarray:
    """The model version's instance label image of ``image`` (uint32, the image's (H, W)).

    ``image`` is an image row (read from storage) or its pixels.  SAM versions segment
    from a point grid (no prompts are known for an unlabelled image).
    """
    pixels = image_pixels(image) if isinstance(image, Image) else np.asarray(image)
    weights = weights_file(model_version.weights, model_version.weights_sha256)
    labels = bb.predict(model_version.backbone, [pixels], weights=weights, options=model_version.options,
                        hyperparameters=model_version.hyperparameters)[0]
    return np.asarray(labels).astype(np.uint32, copy=False)
