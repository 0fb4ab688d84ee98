"""Training runs: request one, execute it (the Celery task's body), cancel it, reap stale ones.

Execution is resumable and safe to deliver twice. A worker first *claims* the run with an
atomic update (a fresh lease token, ``heartbeat_at = now``); a second delivery of the same
message finds a fresh heartbeat and leaves. Every epoch the worker writes its losses and
heartbeat *only while it still holds the lease*, uploads a new checkpoint to storage when
the backbone wrote one, and checks for a cancel request. A worker killed mid-run stops
beating; once its heartbeat is older than ``TRAINING_HEARTBEAT_STALE_S`` either the broker's
redelivery (``acks_late``) or the periodic reaper (:func:`runs_reap`) starts the run again,
and the new attempt downloads the last checkpoint and continues from that epoch
(the backbones resume exactly).
"""

from __future__ import annotations

import logging
import shutil
import socket
import threading
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from annotation.access import check_project_role
from annotation.models import Project
from config.errors import Conflict, DomainError, InvalidInput
from datasets.enums import Split
from datasets.models import DatasetSnapshot, SnapshotItem
from training.enums import RUN_FINISHED, Backbone, RunStatus
from training.models import ModelVersion, TrainingRun
from training.services import backbone as bb
from training.services.data import file_download, file_upload, local_workdir, split_load
from training.services.registry import WRITE_ROLES, evaluation_build, model_register

logger = logging.getLogger(__name__)


class RunCancelled(Exception):
    """Raised from the progress callback to stop a run a user cancelled."""


class LeaseLost(Exception):
    """Another attempt took the run over (this one was judged dead); stop quietly."""


@dataclass(frozen=True)
class RunSpec:
    name: str
    snapshot_id: int
    backbone: str = Backbone.CELLPOSE
    base_model_id: int | None = None
    base_weights: str = ""
    hyperparameters: dict | None = None
    options: dict | None = None
    train_split: str = Split.TRAIN
    val_split: str = Split.VAL
    test_split: str = Split.TEST


def _dispatch(run_id: int) -> None:
    from training.tasks import training_run_task

    training_run_task.delay(run_id)


@transaction.atomic
def run_create(*, actor, project: Project, spec: RunSpec, enqueue: bool = True) -> TrainingRun:
    """Validate and queue a training run (ML engineers and managers).

    Preconditions: the snapshot and base model belong to the project; the train split has
    at least one item; the hyper-parameters build a valid config. ``enqueue=False`` leaves
    sending the task to the caller (a test that routes it to a queue of its own).
    """
    check_project_role(user=actor, project=project, roles=WRITE_ROLES)
    snapshot = DatasetSnapshot.objects.filter(project=project, pk=spec.snapshot_id).first()
    if snapshot is None:
        raise InvalidInput(f"snapshot {spec.snapshot_id} not found in this project", field="snapshot")
    if spec.backbone not in {b.value for b in Backbone}:
        raise InvalidInput(f"backbone must be one of {[b.value for b in Backbone]}", field="backbone")
    splits = {s.value for s in Split}
    for field in ("train_split", "val_split", "test_split"):
        value = getattr(spec, field)
        if value and value not in splits:
            raise InvalidInput(f"{field} must be one of {sorted(splits)}", field=field)
    if not SnapshotItem.objects.filter(snapshot=snapshot, split=spec.train_split).exists():
        raise InvalidInput(f"snapshot {snapshot} has no {spec.train_split!r} items to train on",
                           field="train_split")
    base_model = None
    if spec.base_model_id is not None:
        base_model = ModelVersion.objects.filter(project=project, pk=spec.base_model_id).first()
        if base_model is None:
            raise InvalidInput(f"model {spec.base_model_id} not found in this project", field="base_model")
        if base_model.backbone != spec.backbone:
            raise InvalidInput(f"model {base_model} is a {base_model.backbone} model, not {spec.backbone}",
                               field="base_model")
    if base_model is not None and spec.base_weights:
        raise InvalidInput("give base_model or base_weights, not both", field="base_weights")
    hyper = dict(spec.hyperparameters or {})
    config = bb.train_config(spec.backbone, hyper)
    options = bb.backbone_options(spec.backbone, dict(spec.options or {}))
    run = TrainingRun.objects.create(
        project=project, name=spec.name, snapshot=snapshot, backbone=spec.backbone,
        base_model=base_model, base_weights=spec.base_weights,
        hyperparameters={k: v for k, v in config.as_dict().items() if k != "device"},
        options=bb.options_dict(options), train_split=spec.train_split, val_split=spec.val_split,
        test_split=spec.test_split, epochs_total=config.epochs, created_by=actor,
    )
    if enqueue:
        transaction.on_commit(lambda: _dispatch(run.pk))
    return run


def run_cancel(*, actor, run: TrainingRun) -> TrainingRun:
    """Ask a run to stop: a queued run is cancelled now, a running one after its epoch."""
    check_project_role(user=actor, project=run.project, roles=WRITE_ROLES)
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().get(pk=run.pk)
        if run.status in RUN_FINISHED:
            raise Conflict(f"run {run.pk} already {run.status}; it cannot be cancelled")
        run.cancel_requested = True
        fields = ["cancel_requested"]
        if run.status == RunStatus.QUEUED:
            run.status, run.finished_at = RunStatus.CANCELLED, timezone.now()
            fields += ["status", "finished_at"]
        run.save(update_fields=fields)
    return run


def _stale_before():
    return timezone.now() - timedelta(seconds=settings.TRAINING_HEARTBEAT_STALE_S)


def _claim(run_id: int, token: str) -> TrainingRun | None:
    """Take the run for this attempt, or None when it is finished or held by a live worker."""
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.status in RUN_FINISHED:
            return None
        now = timezone.now()
        if run.cancel_requested:
            TrainingRun.objects.filter(pk=run_id).update(status=RunStatus.CANCELLED, finished_at=now)
            return None
        if run.status == RunStatus.RUNNING and run.heartbeat_at and run.heartbeat_at > _stale_before():
            return None
        resumed = list(run.resumed_from_epoch)
        if run.checkpoint:
            resumed.append(run.checkpoint_epoch)
        TrainingRun.objects.filter(pk=run_id).update(
            status=RunStatus.RUNNING, lease_token=token, heartbeat_at=now,
            worker=f"{socket.gethostname()}:{threading.get_native_id()}",
            attempts=run.attempts + 1, started_at=run.started_at or now,
            resumed_from_epoch=resumed, phase="loading data", error="")
        return TrainingRun.objects.select_related("project", "snapshot", "base_model").get(pk=run_id)


def _beat(run_id: int, token: str, **fields) -> bool:
    """Write ``fields`` and the heartbeat while this attempt holds the lease; False if lost."""
    return TrainingRun.objects.filter(pk=run_id, lease_token=token).update(
        heartbeat_at=timezone.now(), **fields) == 1


class _Heartbeat(threading.Thread):
    """Beats between epochs too (long epochs), on its own database connection."""

    def __init__(self, run_id: int, token: str, interval: float):
        super().__init__(daemon=True, name=f"training-heartbeat-{run_id}")
        self.run_id, self.token, self.interval = run_id, token, interval
        self.stop = threading.Event()
        self.lost = threading.Event()

    def run(self) -> None:
        try:
            while not self.stop.wait(self.interval):
                if not _beat(self.run_id, self.token):
                    self.lost.set()
                    return
        finally:
            connection.close()


def _finish(run_id: int, token: str, status: str, **fields) -> None:
    TrainingRun.objects.filter(pk=run_id, lease_token=token).update(
        status=status, finished_at=timezone.now(), heartbeat_at=timezone.now(), phase="", **fields)


def run_execute(*, run_id: int) -> str:
    """Train, evaluate and register (the task's body); returns the run's final status.

    Safe to call twice for one run and after a killed attempt (see the module docstring).
    """
    token = uuid.uuid4().hex
    run = _claim(run_id, token)
    if run is None:
        status = TrainingRun.objects.filter(pk=run_id).values_list("status", flat=True).first()
        return f"skipped ({status or 'missing'})"
    work = local_workdir(f"cellcurate-run-{run_id}-")
    # The thread has its own connection: it cannot see rows of an enclosing, uncommitted
    # transaction (eager tasks in tests), nor SQLite's per-connection in-memory database.
    beater = None
    if not connection.in_atomic_block and not (connection.vendor == "sqlite"
                                               and connection.is_in_memory_db()):
        beater = _Heartbeat(run_id, token, settings.TRAINING_HEARTBEAT_S)
        beater.start()
    try:
        status = _train_evaluate_register(run, token, work, beater)
    except LeaseLost:
        status = "lease lost"
    except RunCancelled:
        _finish(run_id, token, RunStatus.CANCELLED)
        status = RunStatus.CANCELLED
    except (DomainError, ValueError, OSError) as exc:
        message = exc.message if isinstance(exc, DomainError) else f"{type(exc).__name__}: {exc}"
        _finish(run_id, token, RunStatus.FAILED, error=message[:5000])
        status = RunStatus.FAILED
    except BaseException as exc:  # time limit, crash: record it, let Celery see it
        _finish(run_id, token, RunStatus.FAILED, error=f"{type(exc).__name__}: {exc}"[:5000])
        raise
    finally:
        if beater is not None:
            beater.stop.set()
            beater.join(timeout=5)
        shutil.rmtree(work, ignore_errors=True)
    return str(status)


def _base_weights_path(run: TrainingRun, work):
    if run.base_model is not None:
        return file_download(run.base_model.weights, work / "base" / "weights.pt")
    if run.base_weights:
        return file_download(run.base_weights, work / "base" / "weights.pt")
    return None


def _train_evaluate_register(run: TrainingRun, token: str, work, beater) -> str:
    module = bb.module(run.backbone)
    config = bb.train_config(run.backbone, run.hyperparameters)
    options = bb.backbone_options(run.backbone, run.options)
    train = split_load(snapshot=run.snapshot, split=run.train_split)
    val = split_load(snapshot=run.snapshot, split=run.val_split) if run.val_split else None
    base = _base_weights_path(run, work)
    ckpt_dir = work / "checkpoints"
    ckpt_dir.mkdir()
    ckpt_local = ckpt_dir / module.CHECKPOINT_NAME
    ckpt_name = f"training/runs/{run.pk}/{module.CHECKPOINT_NAME}"
    if run.checkpoint:
        file_download(run.checkpoint, ckpt_local)
    from training.backbones.base import resolve_device

    if not _beat(run.pk, token, phase="training", device=resolve_device(config.device).type):
        raise LeaseLost()
    losses = {"train": list(run.train_loss), "val": list(run.val_loss)}
    last = {"mtime": ckpt_local.stat().st_mtime_ns if ckpt_local.exists() else None}

    def progress(epoch: int, total: int, metrics) -> None:
        for key, name in (("train", "train_loss"), ("val", "val_loss")):
            before = (losses[key] + [None] * epoch)[: epoch - 1]
            losses[key] = before + [_num(metrics[name])]
        fields = {"epochs_done": epoch, "train_loss": losses["train"], "val_loss": losses["val"]}
        mtime = ckpt_local.stat().st_mtime_ns if ckpt_local.exists() else None
        if mtime is not None and mtime != last["mtime"]:
            fields["checkpoint"] = file_upload(ckpt_local, ckpt_name)
            fields["checkpoint_epoch"] = epoch
            last["mtime"] = mtime
        if (beater is not None and beater.lost.is_set()) or not _beat(run.pk, token, **fields):
            raise LeaseLost()
        if TrainingRun.objects.filter(pk=run.pk, cancel_requested=True).exists():
            raise RunCancelled()

    result = module.fine_tune(
        train.images, train.labels, config=config, base_weights=base,
        val=(val.images, val.labels) if val is not None and len(val) else None,
        progress=progress, checkpoint_dir=ckpt_dir, resume=bool(run.checkpoint), options=options)
    if not _beat(run.pk, token, phase="evaluating", train_seconds=result.wall_time_s):
        raise LeaseLost()
    metrics = {}
    split = run.test_split if run.test_split else ""
    test = split_load(snapshot=run.snapshot, split=split) if split else None
    if test is None or not len(test):
        split = run.val_split
        test = val
    if test is not None and len(test):
        preds = bb.predict(run.backbone, test.images, weights=result.weights, options=run.options,
                           hyperparameters=run.hyperparameters, labels=test.labels)
        base_preds = None if base is None else bb.predict(
            run.backbone, test.images, weights=base, options=run.options,
            hyperparameters=run.hyperparameters, labels=test.labels)
        metrics = evaluation_build(test, preds, base_preds, split=split)
    run.refresh_from_db()
    if run.lease_token != token:
        raise LeaseLost()
    model = model_register(run=run, weights=result.weights, metrics=metrics,
                           meta={k: v for k, v in dict(result.meta).items() if k != "base_weights"})
    _finish(run.pk, token, RunStatus.SUCCEEDED, metrics=metrics, model_version=model,
            epochs_done=result.epochs, train_loss=[_num(v) for v in result.train_loss],
            val_loss=[_num(v) for v in result.val_loss])
    return RunStatus.SUCCEEDED


def _num(value) -> float | None:
    value = float(value)
    return value if value == value and abs(value) != float("inf") else None


def runs_reap() -> dict:
    """Requeue runs whose worker stopped beating (or fail them after too many attempts)."""
    requeued, failed = [], []
    stale = TrainingRun.objects.filter(status=RunStatus.RUNNING, heartbeat_at__lt=_stale_before())
    for run_id in stale.values_list("pk", flat=True):
        with transaction.atomic():
            run = TrainingRun.objects.select_for_update().get(pk=run_id)
            if run.status != RunStatus.RUNNING or run.heartbeat_at >= _stale_before():
                continue
            if run.attempts >= settings.TRAINING_MAX_ATTEMPTS:
                run.status, run.finished_at = RunStatus.FAILED, timezone.now()
                run.error = (f"worker {run.worker} stopped responding; gave up after "
                             f"{run.attempts} attempts")
                run.save(update_fields=["status", "finished_at", "error"])
                failed.append(run_id)
                continue
            run.status, run.lease_token, run.phase = RunStatus.QUEUED, "", "requeued by reaper"
            run.save(update_fields=["status", "lease_token", "phase"])
            transaction.on_commit(lambda rid=run_id: _dispatch(rid))
            requeued.append(run_id)
    if requeued or failed:
        logger.warning("training reaper: requeued %s, failed %s", requeued, failed)
    return {"requeued": requeued, "failed": failed}
