"""Use cases: annotator qualification on gold images; requalification after a guideline change.

A project may require new annotators to pass ``qualification_gold_images`` gold images
(F1 at IoU 0.5 and mean matched IoU against the truth at least the project's
``qualification_min_f1`` / ``qualification_min_iou``) before they get real tasks. The
QA services only hand extra assignments to qualified annotators. Marking a guideline
version "requires requalification" puts every annotator back to pending.
"""

from __future__ import annotations

from django.db import transaction

from annotation.access import check_project_role
from annotation.enums import Role
from annotation.models import Membership, Project
from guidelines.models import GuidelineVersion
from qa.enums import AuditKind, QualificationStatus
from qa.models import GuidelineRequalification, QaRun, Qualification
from qa.services.audit import audit_record

#: After this many gold images per required pass without qualifying, the status is failed.
ATTEMPTS_PER_PASS = 2


def qualification_required(project: Project) -> bool:
    return project.qualification_gold_images > 0


def qualified_annotator_ids(*, project: Project) -> set[int]:
    """Annotators who may get real tasks (everyone when qualification is not required)."""
    annotators = set(
        Membership.objects.filter(project=project, role=Role.ANNOTATOR).values_list("user_id", flat=True)
    )
    if not qualification_required(project):
        return annotators
    qualified = set(
        Qualification.objects.filter(project=project, status=QualificationStatus.QUALIFIED)
        .values_list("annotator_id", flat=True)
    )
    return annotators & qualified


def qualification_list(*, actor, project: Project) -> list[dict]:
    """Status per annotator member (managers and QA leads)."""
    check_project_role(user=actor, project=project, roles=[Role.MANAGER, Role.QA_LEAD])
    rows = {q.annotator_id: q for q in Qualification.objects.filter(project=project)}
    out = []
    for m in Membership.objects.filter(project=project, role=Role.ANNOTATOR).select_related("user").order_by("user__username"):
        q = rows.get(m.user_id)
        if not qualification_required(project):
            status = QualificationStatus.NOT_REQUIRED
        else:
            status = QualificationStatus(q.status) if q else QualificationStatus.PENDING
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
    for m in qa_run.members.filter(gold_f1__isnull=False).select_related("annotator"):
        q, _ = Qualification.objects.select_for_update().get_or_create(
            project=project, annotator=m.annotator, defaults={"status": QualificationStatus.PENDING},
        )
        if q.status not in (QualificationStatus.PENDING,) or m.annotation_id in q.judged:
            continue
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


@transaction.atomic
def requalification_require(*, actor, guideline_version: GuidelineVersion) -> int:
    """Mark a guideline version as requiring requalification; every annotator is pending again."""
    project = guideline_version.project
    check_project_role(user=actor, project=project, roles=[Role.MANAGER])
    GuidelineRequalification.objects.get_or_create(guideline_version=guideline_version,
                                                   defaults={"marked_by": actor})
    annotators = Membership.objects.filter(project=project, role=Role.ANNOTATOR).values_list("user_id", flat=True)
    n = 0
    for uid in annotators:
        Qualification.objects.update_or_create(
            project=project, annotator_id=uid,
            defaults={"status": QualificationStatus.PENDING, "passed": 0, "attempted": 0,
                      "judged": [], "guideline_version": guideline_version},
        )
        n += 1
    audit_record(
        project=project, kind=AuditKind.QUALIFICATION, actor=actor,
        summary=f"guideline v{guideline_version.version} requires requalification ({n} annotators pending)",
        links={"guideline_version": guideline_version.version},
    )
    return n
