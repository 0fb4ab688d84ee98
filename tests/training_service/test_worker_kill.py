"""A training worker killed with SIGKILL mid-run: the run resumes from its checkpoint.

With ``CELERY_BROKER_URL`` (Redis) and PostgreSQL this starts real ``celery worker``
processes on a queue of their own. The first is killed after it has checkpointed some
epochs; once its heartbeat is stale the broker redelivers the unacknowledged message
(``acks_late``, short visibility timeout) to a restarted worker, which claims the run,
downloads the checkpoint and finishes the remaining epochs. Cancelling a running run on
a real worker stops it after the current epoch. Embedded (no broker), the task's
delivery options are checked and the run goes through eagerly.
"""

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from django.db import transaction

from tests.conftest import REPO_ROOT, _database_url_for, broker_configured
from tests.datasets.conftest import build_world
from tests.datasets.helpers import make_snapshot
from tests.training_service.conftest import TINY_HYPER, TINY_OPTIONS
from training.enums import RunStatus
from training.models import TrainingRun
from training.services import RunSpec, run_cancel, run_create
from training.tasks import training_run_task

QUEUE = f"training-killtest-{os.getpid()}"
STALE_S = 3
# Epochs long enough (~1 s on a CPU) to kill the worker between two of them.
HYPER = {**TINY_HYPER, "epochs": 8, "save_every": 1, "images_per_epoch": 8}


def _start_worker(media_root: Path, name: str) -> tuple[subprocess.Popen, Path]:
    from django.db import connection

    env = dict(os.environ)
    env.update(DATABASE_URL=_database_url_for(connection.settings_dict), MEDIA_ROOT=str(media_root),
               DJANGO_SETTINGS_MODULE="config.settings", PYTHONUNBUFFERED="1",
               CELERY_VISIBILITY_TIMEOUT="3", TRAINING_HEARTBEAT_S="1",
               TRAINING_HEARTBEAT_STALE_S=str(STALE_S), TRAINING_DEVICE="cpu")
    log = Path(tempfile.mkdtemp(prefix="cellcurate-train-kill-")) / f"{name}.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo", "-Q", QUEUE,
             "-n", f"{name}-{os.getpid()}@%h", "--loglevel=INFO", "--without-gossip",
             "--without-mingle", "--without-heartbeat"],
            cwd=REPO_ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)
    _wait(lambda: " ready." in log.read_text() or proc.poll() is not None, 180, "worker start", log)
    assert proc.poll() is None, log.read_text()
    return proc, log


def _wait(predicate, timeout: float, what: str, log: Path | None = None, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {what}" + (f"\n{log.read_text()}" if log else "")
                         + f"\nruns: {list(TrainingRun.objects.values())}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _queued_run(world, enqueue: bool = False, **hyper) -> TrainingRun:
    return run_create(actor=world.users["ml_engineer"], project=world.project, enqueue=enqueue,
                      spec=RunSpec(name="nuclei-cp", snapshot_id=world.snapshot.pk,
                                   hyperparameters={**HYPER, **hyper}, options=dict(TINY_OPTIONS)))


def _world():
    world = build_world(10, slug="trainkill")
    world.snapshot = make_snapshot(world, name="nuclei")
    return world


def _state(run_id):
    return TrainingRun.objects.filter(pk=run_id).values(
        "status", "epochs_done", "checkpoint_epoch", "attempts", "worker").get()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_killed_training_worker_resumes_from_its_checkpoint(media_root, settings,
                                                            django_capture_on_commit_callbacks):
    assert training_run_task.acks_late is True and training_run_task.reject_on_worker_lost is True
    settings.TRAINING_DEVICE = "cpu"
    world = _world()
    if not broker_configured():
        with django_capture_on_commit_callbacks(execute=True):
            run = run_create(actor=world.users["ml_engineer"], project=world.project,
                             spec=RunSpec(name="nuclei-cp", snapshot_id=world.snapshot.pk,
                                          hyperparameters={**HYPER, "images_per_epoch": 4},
                                          options=dict(TINY_OPTIONS)))
        run.refresh_from_db()
        assert settings.CELERY_TASK_ALWAYS_EAGER and run.status == RunStatus.SUCCEEDED
        assert run.attempts == 1
        return

    run = _queued_run(world)
    first, log1 = _start_worker(media_root, "train-a")
    try:
        training_run_task.apply_async((run.pk,), queue=QUEUE)
        _wait(lambda: _state(run.pk)["checkpoint_epoch"] >= 2, 480, f"two checkpointed epochs of run {run.pk}", log1)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        _stop(first)
    killed = _state(run.pk)
    assert killed["status"] == RunStatus.RUNNING and killed["attempts"] == 1
    assert 2 <= killed["checkpoint_epoch"] < HYPER["epochs"], killed

    time.sleep(STALE_S + 1)  # the dead worker's heartbeat goes stale
    second, log2 = _start_worker(media_root, "train-b")
    try:
        _wait(lambda: _state(run.pk)["status"] in ("succeeded", "failed", "cancelled"), 600,
              "the resumed run to finish", log2, step=0.2)
    finally:
        _stop(second)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, f"{run.error}\n{log2.read_text()}"
    assert run.attempts == 2 and run.resumed_from_epoch == [killed["checkpoint_epoch"]]
    assert run.epochs_done == HYPER["epochs"] and len(run.train_loss) == HYPER["epochs"]
    assert run.worker != killed["worker"]
    assert run.model_version.snapshot_content_hash == world.snapshot.content_hash
    # The second worker trained only the epochs after the checkpoint.
    assert "training.run_execute[" in log2.read_text() and "succeeded in" in log2.read_text()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_cancel_stops_a_run_on_a_real_worker(media_root, settings, django_capture_on_commit_callbacks):
    settings.TRAINING_DEVICE = "cpu"
    world = _world()
    if not broker_configured():
        # Embedded: cancelled before its transaction commits, the (eager) task does nothing.
        with transaction.atomic():
            run = _queued_run(world, enqueue=True)
            run_cancel(actor=world.users["manager"], run=run)
        run.refresh_from_db()
        assert run.status == RunStatus.CANCELLED and run.attempts == 0 and run.model_version is None
        return
    run = _queued_run(world, epochs=60)  # long enough to be cancelled half-way
    worker, log = _start_worker(media_root, "train-c")
    try:
        training_run_task.apply_async((run.pk,), queue=QUEUE)
        _wait(lambda: _state(run.pk)["epochs_done"] >= 1, 480, "a first epoch", log)
        run_cancel(actor=world.users["manager"], run=TrainingRun.objects.get(pk=run.pk))
        _wait(lambda: _state(run.pk)["status"] == "cancelled", 60, "the run to stop", log, step=0.2)
    finally:
        _stop(worker)
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and run.cancel_requested
    assert run.epochs_done < 60 and run.model_version is None
