"""Use cases: one more annotator for an image, automatically (adaptive redundancy) or on request.

With a project's ``annotators_per_image`` (k_min) .. ``max_annotators_per_image``
(k_max), an image whose QA shows low instance agreement or many disputed cells gets
exactly one more assignment per QA run, never beyond k_max, and never while an extra
assignment is still open; annotation effort goes where annotators disagree.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Count, Q

from annotation.enums import AssignmentStatus, Role
from annotation.models import Assignment, Image, Membership
from config.errors import Conflict
from qa.enums import AuditKind, GateOutcome, ImageQaStatus
from qa.models import GateDecision, ImageQaState, QaRun
from qa.services.audit import audit_record
from qa.services.qualification import qualified_annotator_ids

_OPEN = (AssignmentStatus.PENDING, AssignmentStatus.IN_PROGRESS, AssignmentStatus.EXPIRED)


def _candidates(image: Image) -> list[int]:
    """Qualified annotators of the project without an assignment of this image, least busy first."""
    project = image.project
    taken = Assignment.objects.filter(image=image).values("annotator_id")
    members = (
        Membership.objects.filter(project=project, role=Role.ANNOTATOR, user__is_active=True)
        .exclude(user_id__in=taken)
        .annotate(open=Count("user__assignments", filter=Q(user__assignments__status__in=_OPEN)))
        .order_by("open", "user__username")
        .values_list("user_id", flat=True)
    )
    qualified = qualified_annotator_ids(project=project)
    return [uid for uid in members if uid in qualified]


def assignment_add(*, image: Image, comment: str = "", priority: int = 1) -> Assignment | None:
    """One new assignment of the image for the least busy eligible annotator (None if none is)."""
    candidates = _candidates(image)
    if not candidates:
        return None
    return Assignment.objects.create(
        image=image, annotator_id=candidates[0], status=AssignmentStatus.PENDING,
        comment=comment, priority=priority,
    )


def _needs_more(qa_run: QaRun, decision: GateDecision) -> list[str]:
    policy = decision.policy
    why = []
    if qa_run.mean_agreement is not None and qa_run.mean_agreement < policy.redundancy_agreement:
        why.append(f"agreement {qa_run.mean_agreement:.2f} < {policy.redundancy_agreement:.2f}")
    if qa_run.n_disputed > policy.redundancy_disputed_cells:
        why.append(f"{qa_run.n_disputed} disputed cells > {policy.redundancy_disputed_cells}")
    return why


@transaction.atomic
def redundancy_check(*, qa_run: QaRun, decision: GateDecision) -> Assignment | None:
    """Add one assignment when the run shows disagreement and the image is below k_max."""
    image = Image.objects.select_for_update().select_related("project").get(pk=qa_run.image_id)
    project = image.project
    k_max = project.max_annotators_per_image
    if not k_max or decision.outcome == GateOutcome.APPROVE:
        return None
    why = _needs_more(qa_run, decision)
    if not why:
        return None
    assignments = Assignment.objects.filter(image=image).exclude(status=AssignmentStatus.SKIPPED)
    if assignments.count() >= k_max or assignments.filter(status__in=_OPEN).exists():
        return None
    added = assignment_add(
        image=image, comment=f"extra annotator: {'; '.join(why)}", priority=1,
    )
    if added is None:
        return None
    ImageQaState.objects.filter(image=image).exclude(status=ImageQaStatus.EXCLUDED).update(
        status=ImageQaStatus.MORE_ANNOTATORS
    )
    audit_record(
        project=project, kind=AuditKind.REDUNDANCY, image=image,
        summary=f"image {image.pk}: one more annotator ({added.annotator.username}), "
        f"{assignments.count()} of k_max {k_max}",
        reason="; ".join(why),
        links={"assignment": added.pk, "qa_run": qa_run.pk, "gate_decision": decision.pk},
    )
    return added


def annotator_request(*, image: Image) -> Assignment:
    """A QA lead asks for one more annotator (k_max does not bind a person's request)."""
    added = assignment_add(image=image, comment="extra annotator requested by QA review", priority=1)
    if added is None:
        raise Conflict(
            f"no qualified annotator of project {image.project.slug!r} is free to take image "
            f"{image.pk}", code="no_annotator_available",
        )
    return added
