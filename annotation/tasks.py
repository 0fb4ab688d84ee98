"""Celery tasks of the annotation app: thin, take ids, call one service, pinned names."""

from __future__ import annotations

from celery import shared_task

from annotation.models import Job
from annotation.services import (
    assignments_expire,
    assignments_generate,
    job_fail,
    job_progress,
    job_start,
    job_succeed,
)
from config.errors import DomainError


@shared_task(name="annotation.assignments_generate", time_limit=15 * 60, soft_time_limit=14 * 60)
def assignments_generate_task(job_id: int) -> dict:
    job = Job.objects.select_related("project", "created_by").get(pk=job_id)
    job_start(job_id=job_id, message="generating assignments")

    def progress(done: int, total: int) -> None:
        job_progress(job_id=job_id, done=done, total=total)

    try:
        result = assignments_generate(actor=job.created_by, project=job.project, progress=progress)
    except DomainError as exc:
        # A refusal (no annotators, ...) is the job's outcome, not a task crash to retry.
        job_fail(job_id=job_id, error=exc.message)
        return {"error": exc.message}
    except Exception as exc:
        job_fail(job_id=job_id, error=f"{type(exc).__name__}: {exc}")
        raise
    job_succeed(job_id=job_id, result=result.as_dict(), message=f"{result.created} assignments created")
    return result.as_dict()


@shared_task(name="annotation.leases_expire", time_limit=5 * 60, soft_time_limit=4 * 60)
def leases_expire_task() -> int:
    return assignments_expire()


__all__ = ["assignments_generate_task", "leases_expire_task"]
