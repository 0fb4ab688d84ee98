"""Use cases for assignments: generate them, hand out the next task, skip, expire leases."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Exists, Q
from django.utils import timezone

from annotation.access import check_project_role
from annotation.enums import AssignmentStatus, Role
from annotation.models import Assignment, Image, Job, Membership, Project
from annotation.services.jobs import job_create
from config.errors import Conflict, InvalidInput, NotFound

GENERATE_TASK = "annotation.assignments_generate"
_BATCH = 200


@dataclass(frozen=True)
class GenerateResult:
    """What one :func:`assignments_generate` call did."""

    images: int
    annotators: int
    gold_images: int
    created: int

    def as_dict(self) -> dict:
        return {
            "images": self.images, "annotators": self.annotators,
            "gold_images": self.gold_images, "created": self.created,
        }


def _claimable(now: dt.datetime) -> Q:
    """Pending, expired, or in progress with a lease that ran out (re-issued)."""
    return Q(status__in=[AssignmentStatus.PENDING, AssignmentStatus.EXPIRED]) | Q(
        status=AssignmentStatus.IN_PROGRESS, lease_expires_at__lt=now
    )


def _mark_gold(project: Project, images: list[Image]) -> int:
    """Mark unassigned images gold until ``gold_share`` of the project is; return the count."""
    target = round(project.gold_share * len(images))
    gold = [im for im in images if im.is_gold]
    missing = target - len(gold)
    if missing > 0:
        assigned = set(
            Assignment.objects.filter(image__project=project).values_list("image_id", flat=True)
        )
        # sha256 order is a reproducible but content-scattered choice of images.
        candidates = sorted(
            (im for im in images if not im.is_gold and im.pk not in assigned), key=lambda im: im.sha256
        )[:missing]
        Image.objects.filter(pk__in=[im.pk for im in candidates]).update(is_gold=True)
        for im in candidates:
            im.is_gold = True
        gold.extend(candidates)
    return len(gold)


def assignments_generate(
    *, actor, project: Project, progress: Callable[[int, int], None] | None = None
) -> GenerateResult:
    """Give each image to k distinct annotators (gold images to all), balancing load.

    Idempotent: existing assignments count towards k, so a second call creates only what
    is missing (new images, new annotators for gold images). Managers only; needs at least
    k active annotators. Works in batches of images, one transaction each, reporting
    ``progress(done, total)`` between them so a polling UI sees it; an interrupted run
    is completed by running it again.
    """
    check_project_role(user=actor, project=project, roles=[Role.MANAGER])
    with transaction.atomic():
        project = Project.objects.select_for_update().get(pk=project.pk)
        annotators = list(
            Membership.objects.filter(project=project, role=Role.ANNOTATOR, user__is_active=True)
            .order_by("user_id")
            .values_list("user_id", flat=True)
        )
        k = project.annotators_per_image
        if len(annotators) < k:
            raise InvalidInput(
                f"project {project.slug!r} gives each image to {k} annotators but has "
                f"{len(annotators)} active annotator(s); add annotators or lower "
                "annotators_per_image",
                field="annotators_per_image",
            )
        images = list(Image.objects.filter(project=project).order_by("id"))
        gold_count = _mark_gold(project, images)
    load = dict.fromkeys(annotators, 0)
    for user_id, n in (
        Assignment.objects.filter(image__project=project)
        .values("annotator_id").annotate(n=Count("id")).values_list("annotator_id", "n")
    ):
        if user_id in load:
            load[user_id] = n

    created = 0
    for start in range(0, len(images), _BATCH):
        batch = images[start : start + _BATCH]
        with transaction.atomic():
            # Serialise concurrent generators of one project; re-read what exists now.
            Project.objects.select_for_update().filter(pk=project.pk).first()
            existing: dict[int, set[int]] = {}
            for image_id, user_id in Assignment.objects.filter(image__in=batch).values_list(
                "image_id", "annotator_id"
            ):
                existing.setdefault(image_id, set()).add(user_id)
            new: list[Assignment] = []
            for image in batch:
                have = existing.get(image.pk, set())
                free = [u for u in annotators if u not in have]
                if image.is_gold:
                    chosen = free
                else:
                    # Least-loaded first; ties go to the lower user id (reproducible runs).
                    chosen = sorted(free, key=lambda u: (load[u], u))[: max(0, k - len(have))]
                for user_id in chosen:
                    load[user_id] += 1
                    new.append(Assignment(image=image, annotator_id=user_id))
            Assignment.objects.bulk_create(new)
            created += len(new)
        if progress is not None:
            progress(start + len(batch), len(images))
    if progress is not None and not images:
        progress(0, 0)
    return GenerateResult(
        images=len(images), annotators=len(annotators), gold_images=gold_count, created=created
    )


@transaction.atomic
def assignments_generate_job(*, actor, project: Project) -> Job:
    """Queue :func:`assignments_generate` as a Celery task with a pollable job (managers only)."""
    from annotation.tasks import assignments_generate_task

    check_project_role(user=actor, project=project, roles=[Role.MANAGER])
    job = job_create(kind=GENERATE_TASK, project=project, created_by=actor)
    transaction.on_commit(lambda: assignments_generate_task.delay(job.pk))
    return job


def assignment_next(*, actor, project: Project, now: dt.datetime | None = None) -> Assignment | None:
    """The annotator's task in hand: the one they hold a live lease on, else the next one
    leased to them now; None when nothing is left.

    An annotator holds at most one lease per project: asking again (a second tab, a
    double click, a retried request) returns the held task rather than leasing another.
    Expired leases are handed out again. Under concurrency an assignment goes to exactly
    one request and an annotator never ends up with two leases: PostgreSQL serialises one
    annotator's requests on their membership row and claims with ``SELECT ... FOR UPDATE
    SKIP LOCKED``; SQLite, which has no row locks, claims with one conditional UPDATE that
    also requires that no live lease is held (writers are serialised, so only one UPDATE
    sees the row still claimable).

    Higher ``priority`` is handed out first (a task sent back by a reviewer, a requalification
    gold image, the active-learning queue), then the oldest. When the project requires
    qualification, an annotator who has not qualified is handed only gold-image assignments
    (their qualification tasks) until they pass; a lease held already is kept until it ends.
    """
    check_project_role(user=actor, project=project, roles=[Role.ANNOTATOR])
    now = now or timezone.now()
    lease = now + dt.timedelta(minutes=settings.CELLCURATE_ASSIGNMENT_LEASE_MINUTES)
    claim = {"status": AssignmentStatus.IN_PROGRESS, "lease_expires_at": lease, "started_at": now}
    mine = Assignment.objects.filter(_claimable(now), annotator=actor, image__project=project)
    if not _may_get_real_tasks(actor, project):
        mine = mine.filter(image__is_gold=True)
    held = _held(actor, project, now)

    if connection.features.has_select_for_update:
        with transaction.atomic():
            Membership.objects.select_for_update().filter(project=project, user=actor).first()
            return _held_or_claim(mine, held, claim, now)
    return _held_or_claim(mine, held, claim, now)


def _held_or_claim(mine, held, claim: dict, now: dt.datetime) -> Assignment | None:
    while True:
        current = held.order_by("id").first()
        if current is not None:
            return current
        if _use_row_locks():
            return _claim_with_row_lock(mine, claim)
        claimed = _claim_with_conditional_update(mine.exclude(Exists(held)), claim, now, held)
        if claimed is not _LOST_TO_OWN_LEASE:
            return claimed


def _may_get_real_tasks(actor, project: Project) -> bool:
    """Qualified, or qualification not required (a stale qualification is reset first)."""
    from qa.services.qualification import qualification_for_handout  # qa sits above annotation

    return qualification_for_handout(project=project, annotator=actor)


#: Hand-out order: the highest priority first, then the oldest assignment.
_HANDOUT_ORDER = ("-priority", "id")


def _held(actor, project: Project, now: dt.datetime):
    """The annotator's assignments in this project under a lease that has not run out."""
    return Assignment.objects.filter(
        annotator=actor, image__project=project, status=AssignmentStatus.IN_PROGRESS,
        lease_expires_at__gte=now,
    )


def _use_row_locks() -> bool:
    return connection.features.has_select_for_update_skip_locked


def _claim_with_row_lock(mine, claim: dict) -> Assignment | None:
    with transaction.atomic():
        assignment = mine.select_for_update(skip_locked=True, of=("self",)).order_by(*_HANDOUT_ORDER).first()
        if assignment is None:
            return None
        for field, value in claim.items():
            setattr(assignment, field, value)
        assignment.save(update_fields=[*claim, "updated_at"])
        return assignment


_LOST_TO_OWN_LEASE = object()


def _claim_with_conditional_update(mine, claim: dict, now: dt.datetime, held):
    # Every lost UPDATE means another request claimed that row or gave this annotator a
    # lease, so the loop ends: this request wins one, the claimable rows run out, or a
    # lease of this annotator appeared (the caller then returns it).
    while True:
        candidates = list(mine.order_by(*_HANDOUT_ORDER).values_list("id", flat=True)[:10])
        if not candidates:
            return None
        for assignment_id in candidates:
            with transaction.atomic():
                won = (
                    Assignment.objects.filter(_claimable(now), pk=assignment_id)
                    .exclude(Exists(held))
                    .update(**claim, updated_at=now)
                )
            if won == 1:
                return Assignment.objects.get(pk=assignment_id)
            if held.exists():
                return _LOST_TO_OWN_LEASE


@transaction.atomic
def assignment_skip(*, actor, assignment: Assignment, reason: str) -> Assignment:
    """The assigned annotator declines an assignment (not once submitted), saying why.

    The reason is what a QA lead reads to tell a bad image (out of focus, empty, wrong
    stain) from a guideline gap, so it is required.
    """
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(
            "say why you skip this task (for example: out of focus, no cells, guideline "
            "unclear); the reason is shown to the QA lead",
            field="reason",
        )
    assignment = Assignment.objects.select_for_update().select_related("image__project").get(
        pk=assignment.pk
    )
    check_project_role(user=actor, project=assignment.image.project, roles=[Role.ANNOTATOR])
    if assignment.annotator_id != actor.pk:
        raise NotFound(f"assignment {assignment.pk} not found")
    if assignment.status in (AssignmentStatus.SUBMITTED, AssignmentStatus.SKIPPED):
        raise Conflict(f"assignment {assignment.pk} is already {assignment.status}")
    if len(reason) > 500:
        raise InvalidInput("reason is longer than 500 characters", field="reason")
    assignment.status = AssignmentStatus.SKIPPED
    assignment.skip_reason = reason
    assignment.save(update_fields=["status", "skip_reason", "updated_at"])
    return assignment


def assignments_expire(*, now: dt.datetime | None = None) -> int:
    """Mark in-progress assignments whose lease ran out as expired; return how many."""
    now = now or timezone.now()
    return Assignment.objects.filter(
        status=AssignmentStatus.IN_PROGRESS, lease_expires_at__lt=now
    ).update(status=AssignmentStatus.EXPIRED, updated_at=now)
