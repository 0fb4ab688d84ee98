"""Celery tasks of the datasets app: thin, take ids, call one service, pinned names.

Exports are idempotent (see :func:`datasets.services.exports.export_run`), which is what
makes ``acks_late`` + ``reject_on_worker_lost`` (config/settings.py) safe: a worker
killed mid-export leaves the message unacknowledged, the broker redelivers it, and the
next worker finishes the export once.
"""

from __future__ import annotations

from celery import shared_task

from datasets.services import export_run


@shared_task(name="datasets.export_run", acks_late=True, reject_on_worker_lost=True,
             time_limit=55 * 60, soft_time_limit=54 * 60)
def export_run_task(export_id: int) -> dict:
    outcome = export_run(export_id=export_id)
    return {"export": outcome.export.pk, "status": outcome.export.status,
            "written": outcome.written, "skipped": outcome.skipped}


__all__ = ["export_run_task"]
