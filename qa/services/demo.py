"""The QA part of ``manage.py demo``: the whole QA flow on simulated annotators, in seconds.

A project with k = 3 (an expert, a good and a careless simulated annotator), one gold
image with its truth, every mask submitted through the annotation service (so QA runs,
reliability, gate decisions and adaptive redundancy happen as in production), then a
few review actions by the QA lead. Idempotent: a second call reuses the project.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from PIL import Image as PILImage

from annotation.enums import AssignmentStatus, Role
from annotation.models import Assignment, Image, Membership, Project
from annotation.services import (
    ImageMetadata,
    annotation_submit_labels,
    assignments_generate,
    images_upload_many,
    membership_add,
    project_create,
)
from guidelines.selectors import acknowledgement_exists, guideline_published_get
from guidelines.services import (
    acknowledgement_create,
    guideline_version_create,
    guideline_version_publish,
)
from qa.enums import GateOutcome, ImageQaStatus
from qa.models import GateDecision, ImageQaState, ReviewDecision
from qa.selectors import project_agreement, review_queue
from qa.services.gold import gold_set
from qa.services.masks import mask_encode
from qa.services.review import review_act
from qa.simulate import CARELESS, EXPERT, GOOD, simulate_annotation, simulate_image

SLUG = "demo-qa"
PROFILES = {"demo-annotator1": EXPERT, "demo-annotator2": GOOD, "demo-annotator3": CARELESS}


@dataclass(frozen=True)
class QaDemoReport:
    project: Project
    agreement: dict
    gate_counts: dict
    queue: list[dict]
    reviews: list[str]

    def lines(self) -> list[str]:
        names = self.agreement["annotators"]
        out = [f"QA demo project {self.project.slug!r} (k = 3, 1 gold image)",
               "  agreement (F1 at IoU 0.5) over shared images:",
               "    " + " " * 16 + "".join(f"{n[-11:]:>12}" for n in names)]
        for name, row in zip(names, self.agreement["f1"], strict=True):
            out.append(f"    {name[-16:]:<16}" + "".join(f"{'-' if v is None else f'{v:.2f}':>12}" for v in row))
        out.append("  gate decisions: " + ", ".join(f"{k} {v}" for k, v in self.gate_counts.items()))
        out.append("  review queue (worst first):")
        for row in self.queue or [{"image": "-", "agreement": None, "n_flags": 0, "reasons": []}]:
            agreement = "-" if row["agreement"] is None else f"{row['agreement']:.2f}"
            out.append(f"    image {row['image']}: agreement {agreement}, {row['n_flags']} flags; "
                       f"{'; '.join(row['reasons'][:2])}")
        out.extend(f"  review: {r}" for r in self.reviews)
        return out


def _png16(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    PILImage.fromarray(np.asarray(image, np.uint16)).save(buf, format="PNG")
    return buf.getvalue()


def _setup(users: dict, *, n_images: int, size: int, seed: int):
    # Reloaded: a permission granted after the user was fetched is not in its cache.
    manager = get_user_model().objects.get(pk=users["demo-manager"].pk)
    project = Project.objects.filter(slug=SLUG).first()
    if project is None:
        project = project_create(
            actor=manager, name="Demo: QA workflow (k = 3)", slug=SLUG, cell_classes=["nucleus"],
            annotators_per_image=3, gold_share=0.0,
            description="Three simulated annotators (expert, good, careless); see docs/qa-workflow.md.",
        )
        Project.objects.filter(pk=project.pk).update(max_annotators_per_image=3)
    for name, role in [("demo-qa", Role.QA_LEAD), ("demo-ml", Role.ML_ENGINEER), *((n, Role.ANNOTATOR) for n in PROFILES)]:
        if not Membership.objects.filter(project=project, user=users[name]).exists():
            membership_add(actor=manager, project=project, user=users[name], role=role)
    guideline = guideline_published_get(project=project)
    if guideline is None:
        draft = guideline_version_create(actor=manager, project=project, title="Nuclei v1",
                                         body="Outline every nucleus.", rules={}, changelog="First.")
        guideline = guideline_version_publish(actor=manager, version=draft)
    for name in PROFILES:
        if not acknowledgement_exists(user=users[name], guideline_version=guideline):
            acknowledgement_create(actor=users[name], version=guideline)
    sims = [simulate_image(shape=(size, size), n_cells=max(6, size * size // 1200), seed=seed + 50 + i)
            for i in range(n_images)]
    uploads = [ContentFile(_png16(s.image), name=f"demo_qa_{i}.png") for i, s in enumerate(sims)]
    images_upload_many(actor=manager, project=project, uploads=uploads,
                       metadata=ImageMetadata(plate="DEMO-QA", batch="demo-qa", modality="fluorescence"))
    images = list(Image.objects.filter(project=project).order_by("id"))
    gold = images[0]
    if not gold.is_gold:
        Image.objects.filter(pk=gold.pk).update(is_gold=True)
        gold.is_gold = True
        gold_set(actor=manager, image=gold, mask=mask_encode(sims[0].labels).content, comment="simulated truth")
    assignments_generate(actor=manager, project=project)
    return project, images, sims


def qa_demo_run(*, users: dict, n_images: int = 4, size: int = 128, seed: int = 0) -> QaDemoReport:
    """Build (or reuse) the QA demo project and return what to print."""
    project, images, sims = _setup(users, n_images=n_images, size=size, seed=seed)
    for image, sim in zip(images, sims, strict=True):
        for assignment in Assignment.objects.filter(image=image, status=AssignmentStatus.PENDING,
                                                    annotator__username__in=list(PROFILES)).select_related("annotator", "image__project"):
            name = assignment.annotator.username
            labels = simulate_annotation(sim, PROFILES[name], seed=seed * 1000 + image.pk * 10 + len(name)).labels
            annotation_submit_labels(actor=assignment.annotator, assignment=assignment, labels=labels,
                                     idempotency_key=f"demo-qa-{image.sha256[:16]}-{name}",
                                     time_spent_s=45.0 + 20 * list(PROFILES).index(name))
    reviews = _review_some(project, users)
    counts = {o.value: 0 for o in GateOutcome}
    for state in ImageQaState.objects.filter(project=project, latest_gate__isnull=False).select_related("latest_gate"):
        counts[state.latest_gate.outcome] += 1
    lead = users["demo-qa"]
    queue = [
        {"image": s.image_id, "agreement": s.agreement, "n_flags": s.n_flags,
         "reasons": s.latest_gate.reasons if s.latest_gate else []}
        for s in review_queue(user=lead, project=project)[:3]
    ]
    return QaDemoReport(project=project, agreement=project_agreement(user=lead, project=project),
                        gate_counts=counts, queue=queue, reviews=reviews)


def _review_some(project: Project, users: dict) -> list[str]:
    """The QA lead accepts the consensus of the worst image and sends the next one back."""
    lead = users["demo-qa"]
    if ReviewDecision.objects.filter(image__project=project).exists():
        return [f"{d.action} on image {d.image_id} by {d.reviewer.username}"
                for d in ReviewDecision.objects.filter(image__project=project).select_related("reviewer")]
    done = []
    queue = list(review_queue(user=lead, project=project)[:2])
    if queue:
        decision = review_act(actor=lead, image=queue[0].image, action="accept_consensus")
        done.append(f"accept_consensus on image {queue[0].image_id} -> approved mask "
                    f"{decision.approved_mask.sha256[:12]} ({decision.approved_mask.n_cells} cells)")
    if len(queue) > 1:
        review_act(actor=lead, image=queue[1].image, action="send_back", annotator=users["demo-annotator3"],
                   comment="Several nuclei are missing and two are merged; please redo.")
        done.append(f"send_back on image {queue[1].image_id} to demo-annotator3 with a comment")
    approved = ImageQaState.objects.filter(project=project, status=ImageQaStatus.APPROVED).count()
    done.append(f"{approved} images approved, "
                f"{GateDecision.objects.filter(image__project=project).count()} gate decisions stored")
    return done
