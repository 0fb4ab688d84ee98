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


def train_model(tw, capture, **spec):
    """Run a tiny fine-tune through the service (eagerly) and return its ModelVersion."""
    from training.services import RunSpec, run_create

    fields = {"name": "nuclei-cp", "snapshot_id": tw.snapshot.pk, "hyperparameters": dict(TINY_HYPER),
              "options": dict(TINY_OPTIONS), **spec}
    with capture(execute=True):
        run = run_create(actor=tw.users["ml_engineer"], project=tw.project, spec=RunSpec(**fields))
    run.refresh_from_db()
    assert run.model_version is not None, run.error
    return run.model_version


@pytest.fixture
def tmodel(tworld, django_capture_on_commit_callbacks):
    """A registered tiny Cellpose model version trained on ``tworld``'s snapshot."""
    return train_model(tworld, django_capture_on_commit_callbacks, hyperparameters={**TINY_HYPER, "epochs": 1})
