"""Celery tasks of the guidelines app: thin, take ids, call one service, pinned names."""

from __future__ import annotations

from celery import shared_task

from annotation.models import Job
from annotation.services.jobs import job_run
from config.errors import NotFound
from guidelines.models import GuidelineVersion
from guidelines.services import guideline_recheck_run


@shared_task(name="guidelines.recheck", time_limit=60 * 60, soft_time_limit=55 * 60)
def guideline_recheck_task(job_id: int) -> dict:
    job = Job.objects.get(pk=job_id)

    def work(progress):
        version_id = job.params["guideline_version_id"]
        version = GuidelineVersion.objects.select_related("project").filter(pk=version_id).first()
        if version is None:  # deleted meanwhile: the job's outcome, nothing to retry
            raise NotFound(f"guideline version {version_id} no longer exists")
        return guideline_recheck_run(version=version, job=job, progress=progress)

    return job_run(
        job_id=job_id, work=work, message="re-checking annotations against the new rules",
        progress_message=lambda done, total: f"{done} of {total} annotations re-checked",
        output=lambda result: result.as_dict(),
        summary=lambda result: f"{result.flagged} of {result.checked} annotations would be flagged by "
        f"v{result.guideline_version}",
    )


__all__ = ["guideline_recheck_task"]
