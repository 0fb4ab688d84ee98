"""A QA project: k = 3 simulated annotators, QA leads, a manager, an ML engineer, small images.

Masks come from :mod:`qa.simulate` (seeded), so the annotators really disagree the way
people do; images are 96 x 96 with about 12 cells so a QA run takes a fraction of a second.
Submissions go through the real annotation service and their ``on_commit`` hooks run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from annotation.enums import Role
from annotation.models import Assignment
from annotation.services import annotation_submit_labels
from qa.simulate import AVERAGE, CARELESS, EXPERT, GOOD, simulate_annotation, simulate_image
from tests.factories import (
    AcknowledgementFactory,
    GuidelineVersionFactory,
    ImageFactory,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
    api_client,  # noqa: F401
)

SHAPE = (96, 96)
PROFILES = {"ann_a": EXPERT, "ann_b": GOOD, "ann_c": AVERAGE, "ann_d": CARELESS}


@dataclass
class QaWorld:
    project: object
    users: dict
    images: list
    sims: list
    guideline: object
    masks: dict = field(default_factory=dict)

    def assignment(self, image, name) -> Assignment:
        return Assignment.objects.get(image=image, annotator=self.users[name])

    def mask_for(self, index: int, name: str, *, seed_offset: int = 0) -> np.ndarray:
        sim = self.sims[index]
        seed = 1000 * index + sorted(PROFILES).index(name) + 17 * seed_offset
        return simulate_annotation(sim, PROFILES[name], seed=seed).labels

    def submit(self, index: int, name: str, labels: np.ndarray | None = None, *, base_revision=None,
               time_spent_s: float | None = 30.0):
        labels = self.mask_for(index, name) if labels is None else labels
        self.masks[(index, name)] = labels
        return annotation_submit_labels(
            actor=self.users[name], assignment=self.assignment(self.images[index], name),
            labels=labels, base_revision=base_revision, time_spent_s=time_spent_s,
        ).annotation


def make_world(*, n_images: int = 2, k: int = 3, k_max: int | None = None,
               annotators=("ann_a", "ann_b", "ann_c"), extra_annotators=(), rules=None, slug: str = "qa") -> QaWorld:
    project = ProjectFactory(slug=slug, annotators_per_image=k, max_annotators_per_image=k_max)
    users = {}
    roles = {"lead": Role.QA_LEAD, "lead2": Role.QA_LEAD, "manager": Role.MANAGER,
             "ml": Role.ML_ENGINEER}
    for name in (*annotators, *extra_annotators):
        roles[name] = Role.ANNOTATOR
    for name, role in roles.items():
        users[name] = UserFactory(username=name)
        MembershipFactory(user=users[name], project=project, role=role)
    guideline = GuidelineVersionFactory(project=project, published=True, rules=rules or {})
    for name in (*annotators, *extra_annotators):
        AcknowledgementFactory(user=users[name], guideline_version=guideline)
    sims, images = [], []
    for i in range(n_images):
        sim = simulate_image(shape=SHAPE, n_cells=12, seed=100 + i)
        sims.append(sim)
        image = ImageFactory(project=project, height=SHAPE[0], width=SHAPE[1], seed=500 + i)
        images.append(image)
        for name in annotators:
            Assignment.objects.create(image=image, annotator=users[name])
    return QaWorld(project=project, users=users, images=images, sims=sims, guideline=guideline)


@pytest.fixture
def qa_world(db, media_root):
    return make_world()


@pytest.fixture
def submitted(qa_world, django_capture_on_commit_callbacks):
    """qa_world with all three annotations of image 0 submitted and its QA run done."""
    with django_capture_on_commit_callbacks(execute=True):
        for name in ("ann_a", "ann_b", "ann_c"):
            qa_world.submit(0, name)
    return qa_world
