"""Use cases for jobs: asynchronous work whose progress the UI polls.

Progress writes use single-row UPDATEs so they are cheap, never overwrite a finished
job, and are visible to pollers as soon as the task's own transaction (if any) commits;
tasks therefore call them outside their long-running transactions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.db import transaction
from django.utils import timezone

from annotation.enums import JOB_FINISHED, JobStatus
from annotation.models import Job, Project
from config.errors import Conflict, DomainError, InvalidInput

_MESSAGE_LIMIT = 500

R = TypeVar("R")
#: ``progress(done, total)``: what a long-running service calls as it goes.
Progress = Callable[[int, int], None]


def job_create(
    *, kind: str, project: Project | None = None, created_by=None, total: int | None = None,
    params: dict | None = None, message: str = "",
) -> Job:
    """A queued job of ``kind`` (a task name such as ``annotation.assignments_generate``)."""
    if not kind:
        raise InvalidInput("job kind must not be empty", field="kind")
    if total is not None and total < 0:
        raise InvalidInput(f"job total must be >= 0, got {total}", field="total")
    return Job.objects.create(
        kind=kind, project=project, created_by=created_by, progress_total=total,
        params=params or {}, message=message[:_MESSAGE_LIMIT],
    )


def _update_unfinished(job_id: int, **fields) -> None:
    fields["updated_at"] = timezone.now()
    updated = Job.objects.filter(pk=job_id).exclude(status__in=list(JOB_FINISHED)).update(**fields)
    if updated == 0:
        status = Job.objects.filter(pk=job_id).values_list("status", flat=True).first()
        if status is None:
            raise InvalidInput(f"job {job_id} does not exist", field="job")
        raise Conflict(f"job {job_id} already {status}; it cannot change any more")


def job_start(*, job_id: int, total: int | None = None, message: str = "") -> None:
    """Mark a job running (tasks call this first)."""
    fields = {"status": JobStatus.RUNNING, "started_at": timezone.now(), "message": message[:_MESSAGE_LIMIT]}
    if total is not None:
        if total < 0:
            raise InvalidInput(f"job total must be >= 0, got {total}", field="total")
        fields["progress_total"] = total
        fields["progress_done"] = 0
    _update_unfinished(job_id, **fields)


def job_progress(*, job_id: int, done: int, total: int | None = None, message: str = "") -> None:
    """Record that ``done`` of ``total`` units are finished (0 <= done <= total)."""
    if done < 0:
        raise InvalidInput(f"progress must be >= 0, got {done}", field="done")
    if total is not None and done > total:
        raise InvalidInput(f"progress {done} is more than the total {total}", field="done")
    fields = {"progress_done": done, "status": JobStatus.RUNNING}
    if total is not None:
        fields["progress_total"] = total
    if message:
        fields["message"] = message[:_MESSAGE_LIMIT]
    _update_unfinished(job_id, **fields)


def job_succeed(*, job_id: int, result: dict | None = None, message: str = "done") -> None:
    """Finish a job successfully with a JSON result; progress is set to complete."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        done = job.progress_total if job.progress_total is not None else job.progress_done
        _update_unfinished(
            job_id, status=JobStatus.SUCCEEDED, result=result or {}, progress_done=done,
            finished_at=timezone.now(), message=message[:_MESSAGE_LIMIT],
        )


def job_fail(*, job_id: int, error: str) -> None:
    """Finish a job as failed, keeping the error message for the UI."""
    _update_unfinished(
        job_id, status=JobStatus.FAILED, error=error, finished_at=timezone.now(),
        message="failed",
    )


def job_run(
    *, job_id: int, work: Callable[[Progress], R], message: str = "",
    progress_message: Callable[[int, int], str] | None = None,
    output: Callable[[R], dict] | None = None, summary: Callable[[R], str] | None = None,
) -> dict:
    """Run ``work(progress)`` as job ``job_id``: what every job-running task does around its service.

    The job is marked running with ``message``; ``progress(done, total)`` records progress
    (with ``progress_message(done, total)`` if given); the job succeeds with
    ``output(result)`` (the result itself by default, a dict) and ``summary(result)`` as its
    message ("done" by default), which is also returned. A :class:`DomainError` is the
    job's outcome, not a crash to retry: the job fails with its message and
    ``{"error": message}`` is returned. Any other exception fails the job with its type and
    message and is raised again, so Celery records it. Precondition: the job is not finished
    (else :class:`Conflict` before ``work`` runs).
    """
    job_start(job_id=job_id, message=message)

    def progress(done: int, total: int) -> None:
        job_progress(job_id=job_id, done=done, total=total,
                     message=progress_message(done, total) if progress_message is not None else "")

    try:
        result = work(progress)
    except DomainError as exc:
        job_fail(job_id=job_id, error=exc.message)
        return {"error": exc.message}
    except Exception as exc:
        job_fail(job_id=job_id, error=f"{type(exc).__name__}: {exc}")
        raise
    out: Any = output(result) if output is not None else result
    job_succeed(job_id=job_id, result=out, message=summary(result) if summary is not None else "done")
    return out
