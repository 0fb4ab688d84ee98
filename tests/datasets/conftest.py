"""A project whose images went through the real QA workflow to approved masks.

Images are spread over plates and modalities; two annotators draw each image (identical
masks, so the gate approves the consensus); classes are set on the annotations. Nothing
of the QA side is faked: masks are submitted rows, QA runs and gate decisions come from
``qa.services``.
"""

from dataclasses import dataclass

import numpy as np
import pytest

from annotation.enums import AssignmentStatus, Role
from qa.enums import QaTrigger
from tests.factories import (
    AcknowledgementFactory,
    AnnotationFactory,
    AssignmentFactory,
    GuidelineVersionFactory,
    ImageFactory,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
    api_client,  # noqa: F401
)


def cell_labels(seed: int, *, height: int = 24, width: int = 32) -> np.ndarray:
    """3-5 non-overlapping rectangles whose layout depends on ``seed`` (uint16, ids 1..n)."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((height, width), dtype=np.uint16)
    n = int(rng.integers(3, 6))
    for i in range(n):
        r = 1 + 7 * (i // 4) + int(rng.integers(0, 2))
        c = 1 + 8 * (i % 4) + int(rng.integers(0, 2))
        labels[r : r + 5, c : c + 6] = i + 1
    return labels


@dataclass
class DatasetWorld:
    project: object
    users: dict
    images: list
    labels: dict  # image id -> the approved label image (consensus numbering)


def approved_labels(image) -> np.ndarray:
    from qa.models import ApprovedMask
    from qa.services.masks import mask_read

    return mask_read(ApprovedMask.objects.filter(image=image).latest("id").file.name)


def annotate_and_qa(image, annotators, labels, *, classes=None):
    """Both annotators submit ``labels``; QA runs (gate, approved mask) through qa.services."""
    from qa.services.qa_run import image_qa_run

    for user in annotators:
        assignment = AssignmentFactory(image=image, annotator=user, status=AssignmentStatus.SUBMITTED)
        AnnotationFactory(assignment=assignment, labels=labels, instance_classes=classes or {})
    return image_qa_run(image=image, trigger=QaTrigger.ON_DEMAND)


def build_world(n_images: int = 12, *, slug: str = "cells") -> DatasetWorld:
    project = ProjectFactory(slug=slug, cell_classes=["nucleus", "mitotic"], annotators_per_image=2)
    users = {}
    for role in Role:
        users[role.value] = UserFactory(username=f"{slug}-{role.value}")
        MembershipFactory(user=users[role.value], project=project, role=role)
    users["annotator2"] = UserFactory(username=f"{slug}-annotator2")
    MembershipFactory(user=users["annotator2"], project=project, role=Role.ANNOTATOR)
    users["non_member"] = UserFactory(username=f"{slug}-outsider")
    guideline = GuidelineVersionFactory(project=project, published=True)
    for name in ("annotator", "annotator2"):
        AcknowledgementFactory(user=users[name], guideline_version=guideline)
    images, labels = [], {}
    for i in range(n_images):
        image = ImageFactory(
            project=project, plate=f"P{i % 6}", well=f"A{i % 2 + 1:02d}", site="1",
            batch=f"B{i % 3}", modality="fluorescence" if i % 2 else "brightfield", stain="DAPI",
            metadata={"pixel_size_um": 0.65},
        )
        annotate_and_qa(image, [users["annotator"], users["annotator2"]], cell_labels(i),
                        classes={"1": "mitotic"})
        images.append(image)
        labels[image.pk] = approved_labels(image)
    return DatasetWorld(project=project, users=users, images=images, labels=labels)


@pytest.fixture
def dsworld(db, media_root):
    return build_world()


@pytest.fixture(autouse=True)
def _tasks_in_process(request):
    """Dataset tests check what the export task does, so it runs in-process even with a broker.

    The worker test (marked ``worker``) is the one that sends it to real workers.
    """
    if request.node.get_closest_marker("worker") is None:
        request.getfixturevalue("eager_tasks")
    yield
