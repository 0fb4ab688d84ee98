"""factory_boy factories for the domain model, plus small in-memory image/mask files."""

from __future__ import annotations

import functools
import hashlib
import io
from dataclasses import dataclass

import factory
import numpy as np
import pytest
import tifffile
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.files.base import ContentFile
from django.utils import timezone
from factory.django import DjangoModelFactory
from PIL import Image as PILImage

from annotation.enums import AnnotationSource, AssignmentStatus, Role
from annotation.models import Annotation, Assignment, Image, Job, Membership, Project
from guidelines.enums import GuidelineStatus
from guidelines.models import Acknowledgement, GuidelineVersion

PASSWORD = "factory-password-1"


def png_bytes(array: np.ndarray) -> bytes:
    """Encode a 2-D uint8/uint16 array (or (H, W, 3) uint8) as PNG."""
    buf = io.BytesIO()
    PILImage.fromarray(np.ascontiguousarray(array)).save(buf, format="PNG")
    return buf.getvalue()


def tiff_bytes(array: np.ndarray, **kwargs) -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, array, **kwargs)
    return buf.getvalue()


def synthetic_image(seed: int, *, height: int = 24, width: int = 32) -> np.ndarray:
    """A small uint16 image; different seeds give different bytes (and sha256)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 4096, size=(height, width), dtype=np.uint16)


def label_mask(*, height: int = 24, width: int = 32, cells: int = 2) -> np.ndarray:
    """A uint16 label image with ``cells`` non-overlapping 4x4 squares, ids 1..cells."""
    labels = np.zeros((height, width), dtype=np.uint16)
    for i in range(cells):
        r, c = 2 + 6 * (i // 4), 2 + 6 * (i % 4)
        labels[r : r + 4, c : c + 4] = i + 1
    return labels


@functools.cache
def _password_hash() -> str:
    # Hashing is deliberately slow; hash the shared test password once per session.
    return make_password(PASSWORD)


class UserFactory(DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    password = factory.LazyFunction(_password_hash)


class ProjectFactory(DjangoModelFactory):
    class Meta:
        model = Project

    name = factory.Sequence(lambda n: f"Project {n}")
    slug = factory.Sequence(lambda n: f"project-{n}")
    cell_classes = factory.LazyFunction(lambda: ["nucleus"])
    annotators_per_image = 2
    gold_share = 0.0


class MembershipFactory(DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    project = factory.SubFactory(ProjectFactory)
    role = Role.ANNOTATOR


class ImageFactory(DjangoModelFactory):
    """An image row whose file (a uint16 PNG) really exists in storage."""

    class Meta:
        model = Image

    class Params:
        # Far from the small seeds tests pass to synthetic_image, so no factory image ever
        # shares a sha256 with a test's own upload, whatever the test order.
        seed = factory.Sequence(lambda n: 1_000_000 + n)
        content = factory.LazyAttribute(lambda o: png_bytes(synthetic_image(o.seed, height=o.height, width=o.width)))

    project = factory.SubFactory(ProjectFactory)
    height = 24
    width = 32
    file = factory.LazyAttribute(lambda o: ContentFile(o.content, name=f"img{o.seed}.png"))
    original_name = factory.LazyAttribute(lambda o: f"img{o.seed}.png")
    size_bytes = factory.LazyAttribute(lambda o: len(o.content))
    sha256 = factory.LazyAttribute(lambda o: hashlib.sha256(o.content).hexdigest())
    format = "png"
    channels = 1
    pages = 1
    dtype = "uint16"


class AssignmentFactory(DjangoModelFactory):
    class Meta:
        model = Assignment

    image = factory.SubFactory(ImageFactory)
    annotator = factory.SubFactory(UserFactory)
    status = AssignmentStatus.PENDING


class GuidelineVersionFactory(DjangoModelFactory):
    class Meta:
        model = GuidelineVersion

    class Params:
        published = factory.Trait(
            status=GuidelineStatus.PUBLISHED, published_at=factory.LazyFunction(timezone.now)
        )

    project = factory.SubFactory(ProjectFactory)
    version = factory.LazyAttribute(
        lambda o: GuidelineVersion.objects.filter(project=o.project).count() + 1
    )
    title = factory.LazyAttribute(lambda o: f"Guideline v{o.version}")
    body = "Outline every nucleus; split touching nuclei along the dimmest path."
    rules = factory.LazyFunction(lambda: {"min_area_px": 10})
    status = GuidelineStatus.DRAFT


class AcknowledgementFactory(DjangoModelFactory):
    class Meta:
        model = Acknowledgement

    user = factory.SubFactory(UserFactory)
    guideline_version = factory.SubFactory(GuidelineVersionFactory, published=True)


class AnnotationFactory(DjangoModelFactory):
    """A submitted revision written directly (tests of reads and immutability)."""

    class Meta:
        model = Annotation

    class Params:
        labels = factory.LazyAttribute(
            lambda o: label_mask(height=o.assignment.image.height, width=o.assignment.image.width)
        )
        content = factory.LazyAttribute(lambda o: png_bytes(o.labels))

    assignment = factory.SubFactory(AssignmentFactory, status=AssignmentStatus.SUBMITTED)
    guideline_version = factory.LazyAttribute(
        lambda o: GuidelineVersion.objects.filter(
            project=o.assignment.image.project, status=GuidelineStatus.PUBLISHED
        ).first()
        or GuidelineVersionFactory(project=o.assignment.image.project, published=True)
    )
    revision = 1
    mask = factory.LazyAttribute(lambda o: ContentFile(o.content, name="mask.png"))
    sha256 = factory.LazyAttribute(lambda o: hashlib.sha256(o.content).hexdigest())
    height = factory.LazyAttribute(lambda o: o.labels.shape[0])
    width = factory.LazyAttribute(lambda o: o.labels.shape[1])
    dtype = "uint16"
    instance_count = factory.LazyAttribute(lambda o: int(len(np.unique(o.labels)) - 1))
    source = AnnotationSource.MANUAL
    submitted_at = factory.LazyFunction(timezone.now)
    created_by = factory.SelfAttribute("assignment.annotator")


class JobFactory(DjangoModelFactory):
    class Meta:
        model = Job

    kind = "annotation.assignments_generate"
    project = factory.SubFactory(ProjectFactory)


# ------------------------------------------------------------------ fixtures
# Re-exported by tests/conftest.py.



@dataclass
class World:
    """A project with one member per role, a non-member, two images and a published guideline."""

    project: object
    users: dict
    images: list
    guideline: object
    assignments: dict


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def world(db, media_root):
    project = ProjectFactory(slug="world", annotators_per_image=2)
    users = {}
    for role in Role:
        users[role.value] = UserFactory(username=role.value)
        MembershipFactory(user=users[role.value], project=project, role=role)
    users["annotator2"] = UserFactory(username="annotator2")
    MembershipFactory(user=users["annotator2"], project=project, role=Role.ANNOTATOR)
    users["non_member"] = UserFactory(username="non_member")
    images = [ImageFactory(project=project), ImageFactory(project=project)]
    guideline = GuidelineVersionFactory(project=project, published=True)
    for name in ("annotator", "annotator2"):
        AcknowledgementFactory(user=users[name], guideline_version=guideline)
    assignments = {
        name: AssignmentFactory(image=images[0], annotator=users[name])
        for name in ("annotator", "annotator2")
    }
    return World(project=project, users=users, images=images, guideline=guideline,
                 assignments=assignments)
