"""Use cases: a project's QA settings (k_min..k_max, qualification) and project-wide jobs."""

from __future__ import annotations

from django.db import transaction

from annotation.access import check_project_role
from annotation.enums import Role
from annotation.models import Job, Project
from annotation.services.jobs import job_create
from config.errors import InvalidInput
from qa.enums import AuditKind
from qa.services.audit import audit_record
from qa.services.policies import ACTING_ROLES

RECOMPUTE_TASK = "qa.reliability_recompute"
SETTINGS = ("max_annotators_per_image", "qualification_gold_images", "qualification_min_f1",
            "qualification_min_iou")


def qa_settings_get(*, actor, project: Project) -> dict:
    check_project_role(user=actor, project=project)
    return {"k_min": project.annotators_per_image, "k_max": project.max_annotators_per_image,
            **{name: getattr(project, name) for name in SETTINGS}}


@transaction.atomic
def qa_settings_update(*, actor, project: Project, **changes) -> dict:
    """Change QA settings (managers); k_max must be at least k (annotators_per_image)."""
    check_project_role(user=actor, project=project, roles=[Role.MANAGER])
    unknown = sorted(set(changes) - set(SETTINGS))
    if unknown:
        raise InvalidInput(f"unknown QA setting {unknown[0]!r}", field=unknown[0])
    project = Project.objects.select_for_update().get(pk=project.pk)
    k_max = changes.get("max_annotators_per_image", project.max_annotators_per_image)
    if k_max is not None and k_max < project.annotators_per_image:
        raise InvalidInput(
            f"max_annotators_per_image {k_max} is below annotators_per_image "
            f"{project.annotators_per_image}", field="max_annotators_per_image",
        )
    before = {name: getattr(project, name) for name in changes}
    for name, value in changes.items():
        setattr(project, name, value)
    project.save(update_fields=[*changes, "updated_at"])
    audit_record(project=project, kind=AuditKind.SETTINGS, actor=actor,
                 summary=f"QA settings changed: {', '.join(sorted(changes)) or 'nothing'}",
                 links={"before": before, "after": dict(changes)})
    return qa_settings_get(actor=actor, project=project)


def reliability_recompute_request(*, actor, project: Project) -> Job:
    """Queue a full recomputation of annotator reliability (QA leads, managers)."""
    check_project_role(user=actor, project=project, roles=ACTING_ROLES)
    with transaction.atomic():
        job = job_create(kind=RECOMPUTE_TASK, project=project, created_by=actor,
                         message="reliability recomputation queued")
        audit_record(project=project, kind=AuditKind.RECOMPUTE, actor=actor,
                     summary="full recomputation of annotator reliability requested",
                     links={"job": job.pk})
        from qa.tasks import reliability_recompute_task

        transaction.on_commit(lambda: reliability_recompute_task.delay(job.pk))
    return job
