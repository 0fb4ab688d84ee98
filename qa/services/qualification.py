"""Use cases: annotator qualification on gold images; requalification after a guideline change.

A project may require new annotators to pass ``qualification_gold_images`` gold images
(F1 at IoU 0.5 and mean matched IoU against the truth at least the project's
``qualification_min_f1`` / ``qualification_min_iou``) before they get real tasks. The
hand-out (:func:`annotation.services.assignments.assignment_next`) gives an annotator who
has not qualified only gold-image assignments, their qualification tasks, and the QA
services only hand extra assignments to qualified annotators.

A guideline version can be marked "requires requalification". Once the marked version is
published, a qualification earned before no longer counts: the annotator is pending again
(passed, attempted and judged reset) and their submitted gold-image assignments are
reopened so they have gold images to qualify on. Only annotations submitted since the
requalification took effect count towards requalifying. Marking a published
version resets at once; marking a draft takes effect when it is published (the reset
happens at the annotator's next hand-out or gold QA run).
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction

from annotation.access import check_project_role
from annotation.enums import AssignmentStatus, Role
from annotation.models import Assignment, Membership, Project
from config.errors import InvalidInput
from guidelines.models import GuidelineVersion
from qa.enums import AuditKind, QualificationStatus
from qa.models import GuidelineRequalification, QaRun, Qualification
from qa.services.audit import audit_record

#: After this many gold images per required pass without qualifying, the status is failed.
ATTEMPTS_PER_PASS = 2


def qualification_required(project: Project) -> bool:
    return project.qualification_gold_images > 0


def requalification_version(project: Project) -> GuidelineVersion | None:
    """The newest guideline version marked "requires requalification" that has been published."""
    return (
        GuidelineVersion.objects.filter(project=project, requalification__isnull=False,
                                        published_at__isnull=False)
        .select_related("requalification").order_by("-version").first()
    )


def _since(marked: GuidelineVersion) -> dt.datetime:
    """When the requalification took effect: the later of publication and marking."""
    return max(marked.published_at, marked.requalification.created_at)


def _stale(q: Qualification, marked: GuidelineVersion | None) -> bool:
    """Whether the row predates the requalification the marked version asks for."""
    if marked is None:
        return False
    return q.guideline_version is None or q.guideline_version.version < marked.version


def qualified_annotator_ids(*, project: Project) -> set[int]:
    """Annotators who may get real tasks (everyone when qualification is not required)."""
    annotators = set(
        Membership.objects.filter(project=project, role=Role.ANNOTATOR).values_list("user_id", flat=True)
    )
    if not qualification_required(project):
        return annotators
    marked = requalification_version(project)
    qualified = {
        q.annotator_id
        for q in Qualification.objects.filter(project=project, status=QualificationStatus.QUALIFIED)
        .select_related("guideline_version")
        if not _stale(q, marked)
    }
    return annotators & qualified


def _reset(q: Qualification, marked: GuidelineVersion) -> None:
    """Pending again under ``marked``; the annotator's gold images not annotated since the
    requalification took effect are reopened, so they have qualification tasks."""
    q.status = QualificationStatus.PENDING
    q.passed = q.attempted = 0
    q.judged = []
    q.guideline_version = marked
    q.save()
    Assignment.objects.filter(
        annotator_id=q.annotator_id, image__project_id=q.project_id, image__is_gold=True,
        status=AssignmentStatus.SUBMITTED,
    ).exclude(annotations__submitted_at__gte=_since(marked)).update(
        status=AssignmentStatus.PENDING, lease_expires_at=None, priority=1,
        comment=f"guideline v{marked.version} requires requalification: annotate this gold image again",
    )


@transaction.atomic
def qualification_for_handout(*, project: Project, annotator) -> bool:
    """Whether the annotator may get real tasks now; a stale qualification is reset first.

    False means: only gold-image assignments (qualification tasks) until they pass.
    """
    if not qualification_required(project):
        return True
    marked = requalification_version(project)
    q = (Qualification.objects.select_for_update(of=("self",)).select_related("guideline_version")
         .filter(project=project, annotator=annotator).first())
    if q is None:
        return False
    if _stale(q, marked):
        _reset(q, marked)
        audit_record(
            project=project, kind=AuditKind.QUALIFICATION,
            summary=f"{annotator.username} pending: guideline v{marked.version} requires requalification",
            links={"annotator": annotator.username, "guideline_version": marked.version},
        )
        return False
    return q.status == QualificationStatus.QUALIFIED


def qualification_list(*, actor, project: Project) -> list[dict]:
    """Status per annotator member (managers and QA leads)."""
    check_project_role(user=actor, project=project, roles=[Role.MANAGER, Role.QA_LEAD])
    rows = {q.annotator_id: q for q in Qualification.objects.filter(project=project)
            .select_related("guideline_version")}
    marked = requalification_version(project)
    out = []
    for m in Membership.objects.filter(project=project, role=Role.ANNOTATOR).select_related("user").order_by("user__username"):
        q = rows.get(m.user_id)
        if not qualification_required(project):
            status = QualificationStatus.NOT_REQUIRED
        elif q is None or _stale(q, marked):
            status, q = QualificationStatus.PENDING, None
        else:
            status = QualificationStatus(q.status)
        out.append({
            "annotator": m.user.username, "status": status.value,
            "passed": q.passed if q else 0, "attempted": q.attempted if q else 0,
            "required": project.qualification_gold_images,
            "guideline_version": q.guideline_version.version if q and q.guideline_version else None,
        })
    return out


@transaction.atomic
def qualification_apply_run(*, qa_run: QaRun) -> list[Qualification]:
    """Count a gold image's annotations towards their annotators' qualification."""
    project = qa_run.image.project
    if not qualification_required(project) or not qa_run.gold:
        return []
    changed = []
    marked = requalification_version(project)
    members = qa_run.members.filter(gold_f1__isnull=False).select_related("annotator", "annotation")
    for m in members:
        q, _ = Qualification.objects.select_for_update(of=("self",)).select_related("guideline_version").get_or_create(
            project=project, annotator=m.annotator,
            defaults={"status": QualificationStatus.PENDING, "guideline_version": marked},
        )
        if _stale(q, marked):
            _reset(q, marked)
        if q.status != QualificationStatus.PENDING or m.annotation_id in q.judged:
            continue
        if marked is not None and m.annotation.submitted_at < _since(marked):
            continue  # made before the requalification: it does not count towards it
        passed = (m.gold_f1 >= project.qualification_min_f1
                  and (m.gold_mean_iou or 0.0) >= project.qualification_min_iou)
        q.attempted += 1
        q.passed += int(passed)
        q.judged = [*q.judged, m.annotation_id]
        if q.passed >= project.qualification_gold_images:
            q.status = QualificationStatus.QUALIFIED
        elif q.attempted >= ATTEMPTS_PER_PASS * project.qualification_gold_images:
            q.status = QualificationStatus.FAILED
        q.save()
        changed.append(q)
        if q.status != QualificationStatus.PENDING:
            audit_record(
                project=project, kind=AuditKind.QUALIFICATION, image=qa_run.image,
                summary=f"{m.annotator.username} {q.status}: passed {q.passed} of {q.attempted} gold images",
                links={"annotator": m.annotator.username, "qa_run": qa_run.pk},
            )
    return changed


def guideline_version_for_requalification(*, actor, project: Project, version: int) -> GuidelineVersion:
    """The project's guideline version with this number (managers; 400 on ``guideline_version``
    if there is none)."""
    check_project_role(user=actor, project=project, roles=[Role.MANAGER])
    found = GuidelineVersion.objects.filter(project=project, version=version).first()
    if found is None:
        raise InvalidInput(f"project {project.slug!r} has no guideline version {version}",
                           field="guideline_version")
    return found


@transaction.atomic
def requalification_require(*, actor, guideline_version: GuidelineVersion) -> int:
    """Mark a guideline version as requiring requalification; return how many annotators
    are pending again now (0 for a draft: they are reset once it is published)."""
    project = guideline_version.project
    check_project_role(user=actor, project=project, roles=[Role.MANAGER])
    GuidelineRequalification.objects.get_or_create(guideline_version=guideline_version,
                                                   defaults={"marked_by": actor})
    n = 0
    marked = requalification_version(project)
    if guideline_version.published_at is not None and marked is not None:
        annotators = Membership.objects.filter(project=project, role=Role.ANNOTATOR).values_list("user_id", flat=True)
        for uid in annotators:
            q, _ = Qualification.objects.select_for_update(of=("self",)).select_related("guideline_version").get_or_create(
                project=project, annotator_id=uid, defaults={"status": QualificationStatus.PENDING})
            if _stale(q, marked):
                _reset(q, marked)
                n += 1
        summary = f"{n} annotators pending"
    else:
        summary = "annotators pending once it is published"
    audit_record(
        project=project, kind=AuditKind.QUALIFICATION, actor=actor,
        summary=f"guideline v{guideline_version.version} requires requalification ({summary})",
        links={"guideline_version": guideline_version.version},
    )
    return n
