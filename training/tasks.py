"""Celery tasks of the training app: thin, take ids, call one service, pinned names.

Training runs go to the ``training`` queue (``CELERY_TASK_ROUTES``), so GPU machines run
``celery worker -Q training`` and web-side workers never load torch. ``acks_late`` +
``reject_on_worker_lost`` make the broker redeliver the message of a killed worker;
:func:`training.services.run_execute` claims the run so a second delivery is harmless,
and the beat-scheduled reaper requeues runs whose heartbeat stopped.
"""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from annotation.models import Job
from annotation.services.jobs import job_run
from training.services import run_execute, runs_reap
from training.services.active_learning import RANK_TASK, ranking_compute
from training.services.assist import assist_embed
from training.services.preannotate import PREANNOTATE_TASK, preannotate_run

RUN_TASK = "training.run_execute"
REAP_TASK = "training.runs_reap"
EMBED_TASK = "training.assist_embed"


@shared_task(name=RUN_TASK, acks_late=True, reject_on_worker_lost=True,
             time_limit=settings.TRAINING_TASK_TIME_LIMIT_S,
             soft_time_limit=settings.TRAINING_TASK_TIME_LIMIT_S - 60)
def training_run_task(run_id: int) -> str:
    return run_execute(run_id=run_id)


@shared_task(name=REAP_TASK, time_limit=120, soft_time_limit=100)
def training_runs_reap_task() -> dict:
    return runs_reap()


def _run_images_job(job_id: int, service, verb: str, summary) -> dict:
    """``service(job=, progress=)`` as the job, its progress counted in images ``verb``."""
    job = Job.objects.get(pk=job_id)
    return job_run(job_id=job_id, work=lambda progress: service(job=job, progress=progress),
                   message=f"{verb} images",
                   progress_message=lambda done, total: f"{done} of {total} images {verb}", summary=summary)


@shared_task(name=PREANNOTATE_TASK, time_limit=6 * 3600, soft_time_limit=6 * 3600 - 60)
def model_preannotate_task(job_id: int) -> dict:
    return _run_images_job(job_id, preannotate_run, "pre-annotated",
                    lambda r: f"{r['drafts_written']} drafts written from {r['predicted']} images")


@shared_task(name=RANK_TASK, time_limit=6 * 3600, soft_time_limit=6 * 3600 - 60)
def active_learning_rank_task(job_id: int) -> dict:
    return _run_images_job(job_id, ranking_compute, "scored",
                    lambda r: f"{len(r['unlabelled'])} unlabelled and {len(r['labelled'])} labelled images ranked")


@shared_task(name=EMBED_TASK, time_limit=600, soft_time_limit=540)
def assist_embed_task(image_id: int) -> bool:
    return assist_embed(image_id=image_id)


__all__ = ["assist_embed_task", "active_learning_rank_task", "model_preannotate_task", "training_run_task", "training_runs_reap_task"]
