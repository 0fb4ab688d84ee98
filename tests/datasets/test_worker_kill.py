"""A worker killed with SIGKILL mid-export: the broker redelivers, the export finishes once.

With ``CELERY_BROKER_URL`` (Redis) and PostgreSQL this starts real ``celery worker``
processes on a queue of its own: the first is killed while the export is half written,
the second picks the redelivered message up (``acks_late`` + a short visibility timeout)
and completes it. Embedded (no broker), the same task runs eagerly and its delivery
options are checked.
"""

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from django.conf import settings

from annotation.models import Job
from datasets.enums import ExportStatus
from datasets.models import DatasetExport
from datasets.services import export_request
from datasets.storage import TEMP_MARKER, export_storage
from datasets.tasks import export_run_task
from tests.conftest import REPO_ROOT, _database_url_for, broker_configured
from tests.datasets.conftest import build_world
from tests.datasets.helpers import make_snapshot

QUEUE = f"datasets-killtest-{os.getpid()}"
VISIBILITY_S = 3


def _start_worker(media_root: Path, name: str) -> tuple[subprocess.Popen, Path]:
    from django.db import connection

    env = dict(os.environ)
    env.update(DATABASE_URL=_database_url_for(connection.settings_dict), MEDIA_ROOT=str(media_root),
               DJANGO_SETTINGS_MODULE="config.settings", PYTHONUNBUFFERED="1",
               CELERY_VISIBILITY_TIMEOUT=str(VISIBILITY_S))
    log = Path(tempfile.mkdtemp(prefix="cellcurate-killtest-")) / f"{name}.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo", "-Q", QUEUE,
             "-n", f"{name}-{os.getpid()}@%h", "--loglevel=INFO", "--without-gossip",
             "--without-mingle", "--without-heartbeat"],
            cwd=REPO_ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT,
        )
    return proc, log


def _forget_routes(app) -> None:
    app.amqp.flush_routes()
    app.amqp.__dict__.pop("router", None)


def _wait(predicate, timeout: float, what: str, log: Path | None = None, step: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {what}" + (f"\n{log.read_text()}" if log else ""))


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_killed_export_worker_is_retried_and_the_export_is_complete_and_unique(media_root, django_capture_on_commit_callbacks):
    assert export_run_task.acks_late is True and export_run_task.reject_on_worker_lost is True
    if not broker_configured():
        world = build_world(6, slug="killtest")
        snap = make_snapshot(world)
        with django_capture_on_commit_callbacks(execute=True):
            export = export_request(actor=world.users["ml_engineer"], snapshot=snap, format="ome-zarr")
        export.refresh_from_db()
        assert settings.CELERY_TASK_ALWAYS_EAGER and export.status == ExportStatus.SUCCEEDED
        assert export.attempts == 1
        return

    from config.celery import app

    world = build_world(60, slug="killtest")
    snap = make_snapshot(world)
    routes = app.conf.task_routes
    app.conf.task_routes = {"datasets.*": {"queue": QUEUE}}
    _forget_routes(app)  # the router is built once; earlier tests may have built it
    first, log1 = _start_worker(media_root, "doomed")
    second = None
    try:
        export = export_request(actor=world.users["ml_engineer"], snapshot=snap, format="ome-zarr")
        job_id = export.job_id
        # Kill it once it has stored some items but not all.
        _wait(lambda: Job.objects.filter(pk=job_id, progress_done__gte=10).exists(), 120,
              "the first worker to make progress", log1, step=0.01)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        export.refresh_from_db()
        assert export.status == ExportStatus.RUNNING and export.attempts == 1 and export.files == []
        done = Job.objects.get(pk=job_id).progress_done
        assert 10 <= done < snap.n_items, done
        assert "succeeded in" not in log1.read_text()

        time.sleep(VISIBILITY_S + 1)  # the unacked message becomes visible again
        second, log2 = _start_worker(media_root, "rescuer")
        _wait(lambda: DatasetExport.objects.filter(pk=export.pk, status=ExportStatus.SUCCEEDED).exists(),
              180, "the retried export to finish", log2, step=0.2)
        export.refresh_from_db()
        job = Job.objects.get(pk=job_id)
        assert export.attempts == 2 and job.status == "succeeded"
        assert job.result["attempts"] == 2 and job.result["skipped"] > 0  # it resumed, not restarted
        assert log2.read_text().count("datasets.export_run[") >= 1
        assert log2.read_text().count("succeeded in") == 1
        storage = export_storage()
        root = Path(storage.path(export.prefix))
        on_disk = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
        assert on_disk == sorted(f["path"] for f in export.files)  # complete, unique, no leftovers
        assert not any(TEMP_MARKER in p for p in on_disk)
        assert DatasetExport.objects.filter(snapshot=snap).count() == 1
        items = {p.split(".ome.zarr/")[0] for p in on_disk if ".ome.zarr/" in p}
        assert len(items) == snap.n_items
    finally:
        app.conf.task_routes = routes
        _forget_routes(app)
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
