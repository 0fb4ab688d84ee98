"""Use cases: write gating policy drafts, publish them (re-gating the project as a job).

Like guidelines: drafts are edited, a published version never changes, and publishing a
new one retires the previous. A project with no policy gets a published version 1 with
the default thresholds the first time one is needed, recorded in the audit trail.
"""

from __future__ import annotations

import math

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from annotation.access import check_project_role
from annotation.enums import Role
from annotation.models import Job, Project
from annotation.services.jobs import job_create
from config.errors import Conflict, InvalidInput, NotFound
from qa.enums import AuditKind, FlaggedCellAction, PolicyStatus
from qa.models import GatingPolicy
from qa.services.audit import audit_record

REGATE_TASK = "qa.project_regate"
ACTING_ROLES = (Role.QA_LEAD, Role.MANAGER)

_UNIT = ("min_agreement", "reject_agreement", "min_cell_confidence", "min_annotation_quality",
         "max_flagged_share", "min_gold_f1", "redundancy_agreement")
_COUNTS = ("min_cell_support", "redundancy_disputed_cells")
_TEXT = ("title", "changelog")


def _check_changes(changes: dict) -> dict:
    allowed = set(_UNIT) | set(_COUNTS) | set(_TEXT) | {"flagged_cells"}
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise InvalidInput(f"unknown gating policy field {unknown[0]!r}", field=unknown[0])
    out = {}
    for name, value in changes.items():
        if name in _UNIT:
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
                    or not 0.0 <= value <= 1.0:
                raise InvalidInput(f"{name} must be a number in 0..1, got {value!r}", field=name)
            out[name] = float(value)
        elif name in _COUNTS:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidInput(f"{name} must be an integer >= 0, got {value!r}", field=name)
            out[name] = value
        elif name == "flagged_cells":
            try:
                out[name] = FlaggedCellAction(value).value
            except ValueError:
                raise InvalidInput(
                    f"flagged_cells must be one of {', '.join(a.value for a in FlaggedCellAction)}, "
                    f"got {value!r}", field=name,
                ) from None
        else:
            if not isinstance(value, str) or len(value) > (200 if name == "title" else 10_000):
                raise InvalidInput(f"{name} must be a string", field=name)
            out[name] = value
    return out


def _check_consistent(policy: GatingPolicy) -> None:
    if policy.reject_agreement > policy.min_agreement:
        raise InvalidInput(
            f"reject_agreement {policy.reject_agreement} must not exceed min_agreement "
            f"{policy.min_agreement}", field="reject_agreement",
        )


def policy_current(*, project: Project) -> GatingPolicy:
    """The project's published policy, creating the default version 1 the first time."""
    found = GatingPolicy.objects.filter(project=project, status=PolicyStatus.PUBLISHED).first()
    if found is not None:
        return found
    if GatingPolicy.objects.filter(project=project).exclude(status=PolicyStatus.DRAFT).exists():
        raise Conflict(f"project {project.slug!r} has no published gating policy")
    with transaction.atomic():
        version = (GatingPolicy.objects.filter(project=project).aggregate(v=Max("version"))["v"] or 0) + 1
        policy = GatingPolicy.objects.create(
            project=project, version=version, status=PolicyStatus.PUBLISHED,
            title="Default gating policy", published_at=timezone.now(),
        )
        audit_record(
            project=project, kind=AuditKind.POLICY_PUBLISH,
            summary=f"default gating policy v{version} published (no policy had been set)",
            links={"policy_version": version},
        )
    return policy


def policy_get(*, project: Project, version: int) -> GatingPolicy:
    found = GatingPolicy.objects.filter(project=project, version=version).first()
    if found is None:
        raise NotFound(f"gating policy version {version} not found in project {project.slug!r}")
    return found


def policy_create(*, actor, project: Project, **changes) -> GatingPolicy:
    """A new draft, starting from the current policy's thresholds (QA leads and managers)."""
    check_project_role(user=actor, project=project, roles=ACTING_ROLES)
    fields = _check_changes(changes)
    base = GatingPolicy.objects.filter(project=project).order_by("-version").first()
    start = base.thresholds() if base is not None else {}
    try:
        with transaction.atomic():
            version = (GatingPolicy.objects.filter(project=project).aggregate(v=Max("version"))["v"] or 0) + 1
            policy = GatingPolicy(project=project, version=version, created_by=actor, **{**start, **fields})
            _check_consistent(policy)
            policy.save()
            audit_record(
                project=project, kind=AuditKind.POLICY_CREATE, actor=actor,
                summary=f"gating policy draft v{version} created", links={"policy_version": version},
            )
    except IntegrityError:
        raise Conflict("another gating policy version was created at the same time; retry") from None
    return policy


def policy_update(*, actor, policy: GatingPolicy, **changes) -> GatingPolicy:
    """Edit a draft; a published or retired version is refused (409)."""
    check_project_role(user=actor, project=policy.project, roles=ACTING_ROLES)
    fields = _check_changes(changes)
    with transaction.atomic():
        policy = GatingPolicy.objects.select_for_update().get(pk=policy.pk)
        if policy.status != PolicyStatus.DRAFT:
            raise Conflict(
                f"gating policy v{policy.version} is {policy.status} and never changes; "
                "create a new draft", code="policy_immutable",
            )
        for name, value in fields.items():
            setattr(policy, name, value)
        _check_consistent(policy)
        policy.save()
    return policy


def policy_publish(*, actor, policy: GatingPolicy) -> tuple[GatingPolicy, Job]:
    """Publish a draft, retire the previous version, and queue the re-gating of the project."""
    project = policy.project
    check_project_role(user=actor, project=project, roles=ACTING_ROLES)
    with transaction.atomic():
        policy = GatingPolicy.objects.select_for_update().get(pk=policy.pk)
        if policy.status != PolicyStatus.DRAFT:
            raise Conflict(f"gating policy v{policy.version} is already {policy.status}",
                           code="policy_immutable")
        GatingPolicy.objects.filter(project=project, status=PolicyStatus.PUBLISHED).update(
            status=PolicyStatus.RETIRED
        )
        policy.status = PolicyStatus.PUBLISHED
        policy.published_by = actor
        policy.published_at = timezone.now()
        policy.save()
        job = job_create(kind=REGATE_TASK, project=project, created_by=actor,
                         params={"policy_version": policy.version}, message="re-gating queued")
        audit_record(
            project=project, kind=AuditKind.POLICY_PUBLISH, actor=actor,
            summary=f"gating policy v{policy.version} published", reason=policy.changelog,
            links={"policy_version": policy.version, "job": job.pk},
        )
        from qa.tasks import project_regate_task  # tasks sit above services; imported late

        transaction.on_commit(lambda: project_regate_task.delay(job.pk))
    return policy, job
