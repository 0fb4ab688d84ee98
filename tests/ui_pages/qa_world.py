"""A project with three simulated annotators (expert, good, careless) and real QA runs.

Everything goes through the services, as in production: uploads, assignments, submitted
label images, QA runs, gate decisions. Names carry an XSS payload that must stay text.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.files.base import ContentFile

from annotation.enums import AssignmentStatus, Role
from annotation.models import Assignment, Image, Project
from annotation.services import (
    ImageMetadata,
    annotation_submit_labels,
    assignments_generate,
    images_upload_many,
)
from guidelines.services import acknowledgement_create
from qa.simulate import CARELESS, EXPERT, GOOD, simulate_annotation, simulate_image
from tests.factories import (
    GuidelineVersionFactory,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
    png_bytes,
)

XSS = "<img src=x onerror=alert('xss')><script>alert('xss')</script>"
PROFILES = {"ann-expert": EXPERT, "ann-good": GOOD, "ann-careless": CARELESS}


@dataclass
class QaWorld:
    project: Project
    lead: object
    manager: object
    ml: object
    annotators: list
    images: list[Image]


def make_qa_world(*, n_images: int = 3, size: int = 96, seed: int = 3, slug: str = "qa-plate") -> QaWorld:
    lead = UserFactory(username="lea")
    manager = UserFactory(username="max")
    ml = UserFactory(username="mia")
    project = ProjectFactory(slug=slug, name=f"QA plate {XSS}", cell_classes=["nucleus", XSS],
                             annotators_per_image=3)
    MembershipFactory(user=lead, project=project, role=Role.QA_LEAD)
    MembershipFactory(user=manager, project=project, role=Role.MANAGER)
    MembershipFactory(user=ml, project=project, role=Role.ML_ENGINEER)
    guideline = GuidelineVersionFactory(project=project, published=True, title=f"Nuclei {XSS}",
                                        body=f"Outline every nucleus. {XSS}", rules={})
    annotators = []
    for name in PROFILES:
        user = UserFactory(username=name)
        MembershipFactory(user=user, project=project, role=Role.ANNOTATOR)
        acknowledgement_create(actor=user, version=guideline)
        annotators.append(user)
    sims = [simulate_image(shape=(size, size), n_cells=10, seed=seed + i) for i in range(n_images)]
    uploads = [ContentFile(png_bytes(s.image.astype("uint16")), name=f"well_{i} {XSS}.png")
               for i, s in enumerate(sims)]
    images_upload_many(actor=manager, project=project, uploads=uploads,
                       metadata=ImageMetadata(plate="P1", batch="b1", modality="fluorescence"))
    assignments_generate(actor=manager, project=project)
    images = list(Image.objects.filter(project=project).order_by("id"))
    for index, (image, sim) in enumerate(zip(images, sims, strict=True)):
        pending = Assignment.objects.filter(image=image, status=AssignmentStatus.PENDING).select_related(
            "annotator", "image__project")
        for assignment in pending:
            name = assignment.annotator.username
            labels = simulate_annotation(sim, PROFILES[name], seed=seed * 100 + index * 10 + len(name)).labels
            annotation_submit_labels(actor=assignment.annotator, assignment=assignment, labels=labels,
                                     idempotency_key=f"w-{image.pk}-{name}", time_spent_s=40.0 + 10 * len(name))
    return QaWorld(project=project, lead=lead, manager=manager, ml=ml, annotators=annotators, images=images)
