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

from training.services import run_execute, runs_reap

RUN_TASK = "training.run_execute"
REAP_TASK = "training.runs_reap"


@shared_task(name=RUN_TASK, acks_late=True, reject_on_worker_lost=True,
             time_limit=settings.TRAINING_TASK_TIME_LIMIT_S,
             soft_time_limit=settings.TRAINING_TASK_TIME_LIMIT_S - 60)
def training_run_task(run_id: int) -> str:
    return run_execute(run_id=run_id)


@shared_task(name=REAP_TASK, time_limit=120, soft_time_limit=100)
def training_runs_reap_task() -> dict:
    return runs_reap()


__all__ = ["training_run_task", "training_runs_reap_task"]
