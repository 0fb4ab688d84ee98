"""Cancel, and the reaper resuming a run whose worker died, in embedded (eager) mode.

The killed-worker case with a real worker process on Redis is in ``test_worker_kill.py``.
"""

from datetime import timedelta

from django.utils import timezone

from tests.training_service.conftest import TINY_HYPER, TINY_OPTIONS
from training.backbones import cellpose as cp
from training.backbones.base import TrainConfig
from training.enums import RunStatus
from training.models import TrainingRun
from training.services import RunSpec, run_create, run_execute, runs_reap
from training.services.data import file_upload, split_load

API = "/api/v1/projects/train/"


def _queued_run(world, capture):
    with capture(execute=False):
        return run_create(actor=world.users["ml_engineer"], project=world.project,
                          spec=RunSpec(name="nuclei-cp", snapshot_id=world.snapshot.pk,
                                       hyperparameters=dict(TINY_HYPER), options=dict(TINY_OPTIONS)))


def test_cancel_a_queued_run_then_the_task_does_nothing(tworld, api_client, django_capture_on_commit_callbacks):
    run = _queued_run(tworld, django_capture_on_commit_callbacks)
    api_client.force_authenticate(tworld.users["qa_lead"])
    assert api_client.post(API + f"training-runs/{run.pk}/cancel/").status_code == 403
    api_client.force_authenticate(tworld.users["manager"])
    response = api_client.post(API + f"training-runs/{run.pk}/cancel/")
    assert response.status_code == 202 and response.json()["status"] == "cancelled"
    assert run_execute(run_id=run.pk) == "skipped (cancelled)"
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and run.attempts == 0 and run.model_version is None
    again = api_client.post(API + f"training-runs/{run.pk}/cancel/")
    assert again.status_code == 409


def test_reaper_requeues_a_dead_run_which_resumes_from_its_checkpoint(tworld, tmp_path,
                                                                      django_capture_on_commit_callbacks):
    run = _queued_run(tworld, django_capture_on_commit_callbacks)
    # A first attempt trained 2 of 3 epochs, checkpointed, and its worker died.
    train = split_load(snapshot=tworld.snapshot, split="train")
    val = split_load(snapshot=tworld.snapshot, split="val")
    config = TrainConfig(**{**TINY_HYPER, "epochs": 2}, device="cpu")
    options = cp.CellposeOptions(nbase=(8, 16, 32), min_train_masks=1, diam_mean=12.0)
    partial = cp.fine_tune(train.images, train.labels, config=config, options=options,
                           val=(val.images, val.labels), checkpoint_dir=tmp_path)
    stored = file_upload(partial.checkpoint, f"training/runs/{run.pk}/{cp.CHECKPOINT_NAME}")
    TrainingRun.objects.filter(pk=run.pk).update(
        status=RunStatus.RUNNING, attempts=1, checkpoint=stored, checkpoint_epoch=2, epochs_done=2,
        lease_token="dead-worker", heartbeat_at=timezone.now() - timedelta(hours=1), worker="gone:1")

    # A fresh heartbeat is left alone; a stale one is requeued and (eagerly) resumed.
    with django_capture_on_commit_callbacks(execute=True):
        outcome = runs_reap()
    assert outcome == {"requeued": [run.pk], "failed": []}
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.attempts == 2 and run.resumed_from_epoch == [2]
    assert run.epochs_done == 3 and len(run.train_loss) == 3
    # Epochs 1-2 come from the checkpoint, not from a second training of them.
    assert run.train_loss[:2] == list(partial.train_loss)
    assert run.model_version.snapshot_content_hash == tworld.snapshot.content_hash

    # Uninterrupted, the same run gives the same losses (the backbone resumes exactly).
    full = cp.fine_tune(train.images, train.labels, config=TrainConfig(**TINY_HYPER, device="cpu"),
                        options=options, val=(val.images, val.labels), checkpoint_dir=tmp_path / "full")
    assert run.train_loss == list(full.train_loss)


def test_reaper_gives_up_after_max_attempts(tworld, settings, django_capture_on_commit_callbacks):
    settings.TRAINING_MAX_ATTEMPTS = 2
    run = _queued_run(tworld, django_capture_on_commit_callbacks)
    TrainingRun.objects.filter(pk=run.pk).update(
        status=RunStatus.RUNNING, attempts=2, heartbeat_at=timezone.now() - timedelta(hours=1))
    fresh = _queued_run(tworld, django_capture_on_commit_callbacks)
    TrainingRun.objects.filter(pk=fresh.pk).update(status=RunStatus.RUNNING, attempts=1,
                                                   heartbeat_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert runs_reap() == {"requeued": [], "failed": [run.pk]}
    assert callbacks == []
    run.refresh_from_db()
    fresh.refresh_from_db()
    assert run.status == RunStatus.FAILED and "gave up after 2 attempts" in run.error
    assert fresh.status == RunStatus.RUNNING


def test_a_second_delivery_while_a_worker_holds_the_run_does_nothing(tworld, django_capture_on_commit_callbacks):
    run = _queued_run(tworld, django_capture_on_commit_callbacks)
    TrainingRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, attempts=1, lease_token="alive",
                                                 heartbeat_at=timezone.now())
    assert run_execute(run_id=run.pk) == "skipped (running)"
    run.refresh_from_db()
    assert run.attempts == 1 and run.lease_token == "alive"


