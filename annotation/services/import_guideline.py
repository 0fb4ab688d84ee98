"""Importing masks made under an older guideline version, vouched for by a manager.

After a new guideline version is published, annotators submit under it; masks drawn
earlier (an export from another tool, a colleague's backlog) were made under the version
of their time. A manager may import them as such: each annotation records that version
(``Annotation.guideline_version``), is checked against that version's rules, and its
``import_report`` says who vouched for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from annotation.access import check_project_role
from annotation.enums import Role
from annotation.models import Project
from config.errors import InvalidInput
from guidelines.enums import GuidelineStatus
from guidelines.models import GuidelineVersion
from guidelines.selectors import guideline_published_get


@dataclass(frozen=True)
class OlderGuideline:
    """The guideline version an import was made under, and the manager who said so."""

    version: GuidelineVersion
    vouched_by: str
    current_version: int | None


def import_guideline_get(*, project: Project, version: int, manager) -> OlderGuideline:
    """The published (or since retired) ``version`` of the project's guideline, for an import
    that ``manager`` (a manager of the project) vouches was made under it."""
    check_project_role(user=manager, project=project, roles=[Role.MANAGER])
    found = (
        GuidelineVersion.objects.filter(project=project, version=version)
        .exclude(status=GuidelineStatus.DRAFT)
        .first()
    )
    if found is None:
        published = list(
            GuidelineVersion.objects.filter(project=project)
            .exclude(status=GuidelineStatus.DRAFT)
            .order_by("version")
            .values_list("version", flat=True)
        )
        raise InvalidInput(
            f"project {project.slug!r} has no published guideline version {version}; "
            f"published versions: {', '.join(map(str, published)) or 'none'}",
            field="guideline_version",
        )
    current = guideline_published_get(project=project)
    if current is not None and found.version > current.version:
        raise InvalidInput(
            f"guideline version {version} is newer than the current version {current.version}",
            field="guideline_version",
        )
    return OlderGuideline(
        version=found, vouched_by=manager.username,
        current_version=current.version if current is not None else None,
    )


def with_guideline_note(report: Mapping | None, made_under: OlderGuideline | None) -> dict:
    """``report`` plus, for an import under an older version, which one and who vouched."""
    out = dict(report or {})
    if made_under is not None:
        out["guideline"] = {
            "version": made_under.version.version,
            "current_version": made_under.current_version,
            "vouched_by": made_under.vouched_by,
            "note": "imported under the guideline version the masks were made with",
        }
    return out
