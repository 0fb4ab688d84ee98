"""Celery tasks of the annotation app: thin, take ids, call one service, pinned names."""

from __future__ import annotations

from celery import shared_task

from annotation.models import Job
from annotation.services import assignments_expire, assignments_generate
from annotation.services.jobs import job_run


@shared_task(name="annotation.assignments_generate", time_limit=15 * 60, soft_time_limit=14 * 60)
def assignments_generate_task(job_id: int) -> dict:
    job = Job.objects.select_related("project", "created_by").get(pk=job_id)
    # A refusal (no annotators, ...) is the job's outcome, not a task crash to retry.
    return job_run(job_id=job_id, message="generating assignments",
                   work=lambda progress: assignments_generate(actor=job.created_by, project=job.project,
                                                              progress=progress),
                   output=lambda result: result.as_dict(),
                   summary=lambda result: f"{result.created} assignments created")


@shared_task(name="annotation.leases_expire", time_limit=5 * 60, soft_time_limit=4 * 60)
def leases_expire_task() -> int:
    return assignments_expire()


__all__ = ["assignments_generate_task", "leases_expire_task"]
