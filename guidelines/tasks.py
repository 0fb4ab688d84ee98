"""Celery tasks of the guidelines app: thin, take ids, call one service, pinned names."""

from __future__ import annotations

from celery import shared_task

from annotation.models import Job
from annotation.services import job_fail, job_progress, job_start, job_succeed
from config.errors import DomainError
from guidelines.models import GuidelineVersion
from guidelines.services import guideline_recheck_run


@shared_task(name="guidelines.recheck", time_limit=60 * 60, soft_time_limit=55 * 60)
def guideline_recheck_task(job_id: int) -> dict:
    job = Job.objects.get(pk=job_id)
    job_start(job_id=job_id, message="re-checking annotations against the new rules")

    def progress(done: int, total: int) -> None:
        job_progress(job_id=job_id, done=done, total=total,
                     message=f"{done} of {total} annotations re-checked")

    try:
        version = GuidelineVersion.objects.select_related("project").get(
            pk=job.params["guideline_version_id"]
        )
        result = guideline_recheck_run(version=version, job=job, progress=progress)
    except (DomainError, GuidelineVersion.DoesNotExist) as exc:
        message = getattr(exc, "message", str(exc))
        job_fail(job_id=job_id, error=message)
        return {"error": message}
    except Exception as exc:
        job_fail(job_id=job_id, error=f"{type(exc).__name__}: {exc}")
        raise
    job_succeed(
        job_id=job_id, result=result.as_dict(),
        message=f"{result.flagged} of {result.checked} annotations would be flagged by "
        f"v{result.guideline_version}",
    )
    return result.as_dict()


__all__ = ["guideline_recheck_task"]
