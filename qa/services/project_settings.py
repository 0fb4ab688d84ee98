"""Use cases: a project's QA settings (k_min..k_max, qualification, reference model) and
project-wide jobs."""

from __future__ import annotations

from django.db import transaction

from annotation.access import check_project_role
from annotation.enums import Role
from annotation.models import Job, Project
from annotation.services.jobs import job_create
from config.errors import InvalidInput
from qa.enums import AuditKind
from qa.models import QaSettings
from qa.services.audit import audit_record
from qa.services.model_reference import reference_model_get
from qa.services.policies import ACTING_ROLES

RECOMPUTE_TASK = "qa.reliability_recompute"
SETTINGS = ("max_annotators_per_image", "qualification_gold_images", "qualification_min_f1",
            "qualification_min_iou")
#: Kept in :class:`~qa.models.QaSettings` rather than on the project row.
REFERENCE_MODEL = "reference_model"
_KEEP = object()


def qa_settings_get(*, actor, project: Project) -> dict:
    check_project_role(user=actor, project=project)
    setting = QaSettings.objects.filter(project=project).first()
    return {"k_min": project.annotators_per_image, "k_max": project.max_annotators_per_image,
            **{name: getattr(project, name) for name in SETTINGS},
            REFERENCE_MODEL: setting.reference_model_id if setting is not None else None}


@transaction.atomic
def qa_settings_update(*, actor, project: Project, **changes) -> dict:
    """Change QA settings (managers); k_max must be at least k (annotators_per_image), a
    reference model (id, or None to clear) must be one of the project's model versions."""
    check_project_role(user=actor, project=project, roles=[Role.MANAGER])
    reference = changes.pop(REFERENCE_MODEL, _KEEP)
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
    after = dict(changes)
    if reference is not _KEEP:
        model_version = None if reference is None else reference_model_get(
            project=project, model_version_id=reference)
        setting, _ = QaSettings.objects.select_for_update().get_or_create(project=project)
        before[REFERENCE_MODEL], after[REFERENCE_MODEL] = setting.reference_model_id, reference
        setting.reference_model = model_version
        setting.save()
    for name, value in changes.items():
        setattr(project, name, value)
    project.save(update_fields=[*changes, "updated_at"])
    audit_record(project=project, kind=AuditKind.SETTINGS, actor=actor,
                 summary=f"QA settings changed: {', '.join(sorted(after)) or 'nothing'}",
                 links={"before": before, "after": after})
    return qa_settings_get(actor=actor, project=project)


def project_job_request(*, actor, project: Project, kind: str, task: str, message: str,
                        summary: str) -> Job:
    """Queue a project-wide QA job (QA leads, managers): the job row, its audit row, and
    the Celery task ``qa.tasks.<task>`` once they are committed."""
    check_project_role(user=actor, project=project, roles=ACTING_ROLES)
    with transaction.atomic():
        job = job_create(kind=kind, project=project, created_by=actor, message=message)
        audit_record(project=project, kind=AuditKind.RECOMPUTE, actor=actor, summary=summary,
                     links={"job": job.pk})
        from qa import tasks  # tasks sit above services; imported late

        transaction.on_commit(lambda: getattr(tasks, task).delay(job.pk))
    return job


def reliability_recompute_request(*, actor, project: Project) -> Job:
    """Queue a full recomputation of annotator reliability (QA leads, managers)."""
    return project_job_request(actor=actor, project=project, kind=RECOMPUTE_TASK,
                               task="reliability_recompute_task",
                               message="reliability recomputation queued",
                               summary="full recomputation of annotator reliability requested")
