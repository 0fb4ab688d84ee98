"""Read-side queries for guideline versions and acknowledgements."""

from __future__ import annotations

from django.db.models import QuerySet

from annotation.models import Project
from config.errors import NotFound
from guidelines.enums import GuidelineStatus
from guidelines.models import Acknowledgement, GuidelineVersion


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
