"""Use case: re-check annotations made under older guideline versions against a newer one.

When a version is published, the current revision of every assignment whose annotation
was made under an older version of the project's guideline is checked against the new
rules, and the result is kept per annotation (:class:`~guidelines.models.RuleRecheck`):
"made under v1; v2 would flag min_area on cells 3, 7". Superseded revisions are not
re-checked: QA and datasets only use an assignment's latest revision. Results are read
by QA leads and managers (:func:`guidelines.selectors.rule_recheck_list`), and the QA
workflow can send flagged annotations back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from annotation.access import check_project_role
from annotation.enums import Role
from annotation.masks import MaskFormatError, read_label_image
from annotation.models import Annotation, Job
from annotation.services.jobs import job_create
from config.errors import InvalidInput
from guidelines.enums import RECHECK_TASK, GuidelineStatus
from guidelines.models import GuidelineVersion, RuleRecheck
from guidelines.services.checks import guideline_rules_check

logger = logging.getLogger(__name__)

#: Roles that may start a re-check and read all results.
RECHECK_ROLES = (Role.QA_LEAD, Role.MANAGER)
_PROGRESS_EVERY = 10


@dataclass(frozen=True)
class RecheckResult:
    """What one re-check run found (the job's JSON result)."""

    guideline_version: int
    checked: int
    flagged: int
    blocking: int
    unreadable: int
    by_version: dict[int, dict] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "guideline_version": self.guideline_version, "checked": self.checked,
            "flagged": self.flagged, "blocking": self.blocking, "unreadable": self.unreadable,
            "by_version": {str(k): v for k, v in sorted(self.by_version.items())},
        }


def annotations_to_recheck(*, version: GuidelineVersion) -> QuerySet[Annotation]:
    """Latest revision of each assignment of the project, made under an older version."""
    newer = Annotation.objects.filter(
        assignment_id=OuterRef("assignment_id"), revision__gt=OuterRef("revision")
    )
    return (
        Annotation.objects.filter(
            assignment__image__project_id=version.project_id,
            guideline_version__version__lt=version.version,
        )
        .filter(~Exists(newer))
        .select_related("assignment__image", "guideline_version")
        .order_by("id")
    )


def _queue(*, actor, version: GuidelineVersion) -> Job:
    from guidelines.tasks import guideline_recheck_task

    job = job_create(
        kind=RECHECK_TASK, project=version.project, created_by=actor,
        params={"guideline_version_id": version.pk, "guideline_version": version.version},
        message=f"re-check against guideline v{version.version} queued",
    )
    transaction.on_commit(lambda: guideline_recheck_task.delay(job.pk))
    return job


def guideline_recheck_schedule(*, actor, version: GuidelineVersion) -> Job | None:
    """Queue a re-check after publishing, if any annotation was made under an older version.

    Precondition: the caller checked the actor may publish ``version``.
    """
    if not annotations_to_recheck(version=version).exists():
        return None
    return _queue(actor=actor, version=version)


@transaction.atomic
def guideline_recheck_start(*, actor, version: GuidelineVersion) -> Job:
    """Queue a re-check of a published version again (QA leads and managers)."""
    check_project_role(user=actor, project=version.project, roles=RECHECK_ROLES)
    if version.status != GuidelineStatus.PUBLISHED:
        raise InvalidInput(
            f"guideline version {version.version} is {version.status}; only the published "
            "version's rules are re-checked",
            field="status",
        )
    return _queue(actor=actor, version=version)


def guideline_recheck_run(
    *, version: GuidelineVersion, job: Job | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RecheckResult:
    """Check every annotation of :func:`annotations_to_recheck` and store one row each.

    Rows of this version for annotations no longer in that set (superseded by a newer
    revision since) are removed, so the stored rows are the current picture.
    """
    todo = list(annotations_to_recheck(version=version))
    total = len(todo)
    if progress is not None:
        progress(0, total)
    by_version: dict[int, dict] = {}
    flagged = blocking = unreadable = 0
    for done, annotation in enumerate(todo, start=1):
        row = _check_one(version=version, annotation=annotation, job=job)
        stats = by_version.setdefault(
            annotation.guideline_version.version, {"checked": 0, "flagged": 0}
        )
        stats["checked"] += 1
        stats["flagged"] += int(row.flagged)
        flagged += int(row.flagged)
        blocking += int(row.blocking_count > 0)
        unreadable += int(bool(row.error))
        if progress is not None and (done % _PROGRESS_EVERY == 0 or done == total):
            progress(done, total)
    RuleRecheck.objects.filter(guideline_version=version).exclude(
        annotation_id__in=[a.pk for a in todo]
    ).delete()
    return RecheckResult(
        guideline_version=version.version, checked=total, flagged=flagged, blocking=blocking,
        unreadable=unreadable, by_version=by_version,
    )


def recheck_summary(*, made_under: int, checked_against: int, violations: list[dict],
                    error: str = "") -> str:
    """"made under v1; v2 would flag min_area (cells 3, 7), border (cell 2)" for a QA lead."""
    head = f"made under v{made_under}; v{checked_against}"
    if error:
        return f"{head} could not check it: {error}"
    if not violations:
        return f"{head} would flag nothing"
    parts = []
    for v in violations:
        cells = v.get("cells") or []
        shown = ", ".join(str(c) for c in cells[:10]) + (" ..." if len(cells) > 10 else "")
        where = f"cell {shown}" if len(cells) == 1 else f"cells {shown}" if cells else "image"
        parts.append(f"{v['rule']} ({v['severity']}, {where})")
    return f"{head} would flag {', '.join(parts)}"


def _stored_labels(annotation: Annotation):
    # Read here rather than through annotation.services, which imports this package's
    # rule check for submissions (an import cycle otherwise).
    with default_storage.open(annotation.mask.name, "rb") as fh:
        data = fh.read()
    return read_label_image(data, max_pixels=settings.CELLCURATE_MAX_IMAGE_PIXELS)


def _check_one(*, version: GuidelineVersion, annotation: Annotation, job: Job | None) -> RuleRecheck:
    error = ""
    violations = []
    try:
        labels = _stored_labels(annotation)
    except (OSError, MaskFormatError, ValueError) as exc:
        # One lost or damaged file must not stop the re-check of the others.
        logger.warning("re-check: cannot read the mask of annotation %s: %s", annotation.pk, exc)
        error = f"the mask could not be read: {exc}"[:500]
    else:
        violations = guideline_rules_check(
            guideline=version, labels=labels, image=annotation.assignment.image,
            classes={int(k): v for k, v in (annotation.instance_classes or {}).items()},
            import_report=annotation.import_report,
        )
    row, _ = RuleRecheck.objects.update_or_create(
        guideline_version=version, annotation=annotation,
        defaults={
            "job": job, "violations": [v.as_dict() for v in violations],
            "flagged": bool(violations),
            "blocking_count": sum(v.blocking for v in violations),
            "warning_count": sum(not v.blocking for v in violations),
            "error": error, "checked_at": timezone.now(),
        },
    )
    return row
