"""Read-side queries for guideline versions and acknowledgements."""

from __future__ import annotations

from django.db.models import QuerySet

from annotation.access import check_project_role
from annotation.enums import OVERSIGHT_ROLES
from annotation.models import Job, Project
from config.errors import InvalidInput, NotFound
from guidelines.enums import RECHECK_TASK, GuidelineStatus
from guidelines.models import Acknowledgement, GuidelineVersion, RuleRecheck


def guideline_published_get(*, project: Project) -> GuidelineVersion | None:
    """The project's current published guideline version, if any."""
    return GuidelineVersion.objects.filter(
        project=project, status=GuidelineStatus.PUBLISHED
    ).first()


def guideline_version_list(
    *, project: Project, filters: dict | None = None
) -> QuerySet[GuidelineVersion]:
    """A project's versions, oldest first; ``filters`` may hold ``status``."""
    qs = GuidelineVersion.objects.filter(project=project).order_by("version")
    status = (filters or {}).get("status")
    return qs if status is None else qs.filter(status=status)


def guideline_version_get(*, project: Project, version: int) -> GuidelineVersion:
    found = GuidelineVersion.objects.filter(project=project, version=version).first()
    if found is None:
        raise NotFound(f"guideline version {version} not found in project {project.slug!r}")
    return found


def acknowledgement_exists(*, user, guideline_version: GuidelineVersion) -> bool:
    return Acknowledgement.objects.filter(user=user, guideline_version=guideline_version).exists()


def acknowledgement_list(*, guideline_version: GuidelineVersion) -> QuerySet[Acknowledgement]:
    return Acknowledgement.objects.filter(guideline_version=guideline_version).select_related("user")


RECHECK_FILTERS = {
    "flagged": "flagged",
    "made_under": "annotation__guideline_version__version",
    "annotator": "annotation__created_by_id",
    "image": "annotation__assignment__image_id",
    "annotation": "annotation_id",
}


def rule_recheck_list(
    *, user, version: GuidelineVersion, filters: dict | None = None
) -> QuerySet[RuleRecheck]:
    """Re-check results of ``version``: all of them for QA leads, ML engineers and managers,
    only their own annotations' for annotators."""
    role = check_project_role(user=user, project=version.project)
    qs = RuleRecheck.objects.filter(guideline_version=version).select_related(
        "guideline_version", "annotation__guideline_version", "annotation__created_by",
        "annotation__assignment",
    )
    if role not in OVERSIGHT_ROLES:
        qs = qs.filter(annotation__created_by_id=user.pk)
    filters = filters or {}
    unknown = sorted(set(filters) - set(RECHECK_FILTERS))
    if unknown:
        raise InvalidInput(f"unknown filter {', '.join(unknown)}", field=unknown[0])
    lookups = {RECHECK_FILTERS[name]: value for name, value in filters.items()}
    return qs.filter(**lookups).order_by("annotation_id")


def guideline_recheck_jobs(*, project: Project) -> dict[int, Job]:
    """The latest re-check job of each guideline version of the project, by version id."""
    jobs = Job.objects.filter(project=project, kind=RECHECK_TASK).order_by("id")
    return {job.params.get("guideline_version_id"): job for job in jobs}
