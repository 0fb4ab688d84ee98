"""Small builders for guideline tests: publish a version with rules, submit a mask."""

from __future__ import annotations

import numpy as np

from guidelines.services import (
    acknowledgement_create,
    guideline_version_create,
    guideline_version_publish,
)
from tests.api.uploads import upload, url
from tests.factories import png_bytes


def publish_rules(world, rules: dict, *, title: str = "v2", readers=("annotator", "annotator2")):
    """Publish a new version carrying ``rules`` and have ``readers`` acknowledge it."""
    manager = world.users["manager"]
    draft = guideline_version_create(actor=manager, project=world.project, title=title,
                                     body="Outline every nucleus.", rules=rules)
    version = guideline_version_publish(actor=manager, version=draft)
    for name in readers:
        acknowledgement_create(actor=world.users[name], version=version)
    return version


def squares(*sizes: int, height: int = 24, width: int = 32) -> np.ndarray:
    """Cells 1..n as s x s squares placed left to right, one pixel from the top-left edges."""
    labels = np.zeros((height, width), dtype=np.uint16)
    col = 1
    for i, size in enumerate(sizes, start=1):
        labels[1 : 1 + size, col : col + size] = i
        col += size + 1
    return labels


def submit(client, world, labels: np.ndarray, *, user: str = "annotator", assignment=None,
           headers: dict | None = None, **fields):
    client.force_authenticate(world.users[user])
    data = {"assignment": (assignment or world.assignments[user]).pk,
            "mask": upload("mask.png", png_bytes(labels)), **fields}
    return client.post(url("world", "annotations"), data, format="multipart", headers=headers or {})
