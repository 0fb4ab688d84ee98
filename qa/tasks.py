"""Celery tasks of the QA workflow: thin, take ids, call one service, pinned names."""

from __future__ import annotations

from celery import shared_task

from annotation.models import Image, Job
from annotation.services.jobs import job_run
from config.errors import DomainError
from qa.enums import QaTrigger


@shared_task(name="qa.image_qa_run", time_limit=10 * 60, soft_time_limit=9 * 60)
def image_qa_run_task(image_id: int, trigger: str = QaTrigger.ON_DEMAND, job_id: int | None = None,
                       reference_model: int | None = None) -> dict:
    from qa.services.qa_run import image_qa_run

    def work(progress):
        image = Image.objects.select_related("project").get(pk=image_id)
        actor = Job.objects.get(pk=job_id).created_by if job_id else None
        run = image_qa_run(image=image, trigger=QaTrigger(trigger), actor=actor,
                           reference_model=reference_model)
        return {"qa_run": run.pk, "image": image_id, "n_cells": run.n_cells,
                "agreement": run.mean_agreement}

    if job_id is None:
        try:
            return work(None)
        except DomainError as exc:
            # e.g. the annotations were withdrawn meanwhile: nothing to retry.
            return {"error": exc.message}
    return job_run(job_id=job_id, work=work, message=f"QA run of image {image_id}")


@shared_task(name="qa.project_regate", time_limit=60 * 60, soft_time_limit=55 * 60)
def project_regate_task(job_id: int) -> dict:
    from qa.services.gating import project_regate

    job = Job.objects.select_related("project").get(pk=job_id)
    return job_run(job_id=job_id, work=lambda progress: project_regate(project=job.project, progress=progress),
                   message="re-gating the project")


@shared_task(name="qa.reliability_recompute", time_limit=60 * 60, soft_time_limit=55 * 60)
def reliability_recompute_task(job_id: int) -> dict:
    from qa.services.reliability import reliability_recompute

    job = Job.objects.select_related("project").get(pk=job_id)
    return job_run(job_id=job_id, work=lambda progress: reliability_recompute(project=job.project),
                   message="recomputing annotator reliability")


@shared_task(name="qa.project_qa_rerun", time_limit=4 * 60 * 60, soft_time_limit=235 * 60)
def project_qa_rerun_task(job_id: int) -> dict:
    from qa.services.rerun import project_qa_rerun

    job = Job.objects.select_related("project").get(pk=job_id)
    return job_run(job_id=job_id, work=lambda progress: project_qa_rerun(project=job.project, progress=progress),
                   message="running QA again on the undecided images")


__all__ = ["image_qa_run_task", "project_qa_rerun_task", "project_regate_task",
           "reliability_recompute_task"]
