"""A project with approved masks and a snapshot, for training-service tests.

The world comes from the datasets tests (real QA workflow to approved masks); the
networks are tiny and randomly initialised so a run takes seconds on a CPU.
"""

import pytest
from django.test.utils import override_settings

from tests.datasets.conftest import build_world
from tests.datasets.helpers import make_snapshot
from tests.factories import api_client, world  # noqa: F401

TINY_HYPER = {"epochs": 3, "learning_rate": 0.02, "batch_size": 4, "tile_size": 64, "seed": 1,
              "save_every": 1, "warmup_epochs": 0, "images_per_epoch": 4}
TINY_OPTIONS = {"nbase": [8, 16, 32], "min_train_masks": 1, "diam_mean": 12.0}


@pytest.fixture
def tworld(db, media_root, eager_tasks):
    with override_settings(TRAINING_DEVICE="cpu"):
        world = build_world(10, slug="train")
        world.snapshot = make_snapshot(world, name="nuclei")
        yield world


def run_body(**kw) -> dict:
    body = {"name": "nuclei-cp", "backbone": "cellpose", "hyperparameters": dict(TINY_HYPER),
            "options": dict(TINY_OPTIONS)}
    body.update(kw)
    return body
