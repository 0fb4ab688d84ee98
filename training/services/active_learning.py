"""Active learning: rank a project's images by what a model would learn from them, queue the best.

A ranking is computed by a job (the model runs over every candidate image, which can take
minutes) and kept as that job's result: ``POST active-learning/`` starts one (or answers
with the one already running), ``GET active-learning/?model=<id>`` returns the latest one
and changes nothing.  Unlabelled images (no annotation yet, gold excluded) are ranked by
the model's uncertainty, labelled ones (with a QA consensus) by how much the model
disagrees with it (:mod:`training.active_learning`).
``POST active-learning/queue/`` raises the priority of those images' open assignments so
``assignments/next/`` hands them out first, creating assignments where none is open.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from annotation.access import check_project_role
from annotation.enums import AssignmentStatus, JobStatus, Role
from annotation.models import Annotation, Assignment, Image, Job, Project
from annotation.services.jobs import job_create
from config.errors import InvalidInput, NotFound
from training import active_learning as al
from training.enums import Backbone
from training.models import ModelVersion
from training.services import backbone as bb
from training.services.predict import image_pixels, weights_file
from training.services.registry import READ_ROLES

RANK_TASK = "training.active_learning_rank"
#: Priority of queued images' assignments (QA's extra annotators and requalification use 1).
QUEUE_PRIORITY = 2
OPEN = (AssignmentStatus.PENDING, AssignmentStatus.IN_PROGRESS, AssignmentStatus.EXPIRED)
_CHUNK = 16


def _unlabelled(project_id: int) -> list[int]:
    annotated = Annotation.objects.filter(assignment__image_id=OuterRef("pk"))
    return list(Image.objects.filter(project_id=project_id, is_gold=False).exclude(Exists(annotated))
                .order_by("id").values_list("pk", flat=True))


def _consensus(project_id: int) -> dict[int, str]:
    """Image id -> the consensus file of its latest QA run."""
    from qa.models import QaRun  # qa sits beside training; only its stored consensus is read

    out: dict[int, str] = {}
    for image_id, name in (QaRun.objects.filter(image__project_id=project_id).order_by("image_id", "id")
                           .values_list("image_id", "consensus")):
        out[image_id] = name
    return out


def _jobs(project: Project, model: ModelVersion):
    return Job.objects.filter(project=project, kind=RANK_TASK, params__model_version=model.pk)


def ranking_get(*, user, project: Project, model: ModelVersion) -> Job:
    """The finished job holding the latest ranking by ``model`` (its ``result``); reads only.

    Raises :class:`NotFound` when no ranking by ``model`` has been computed yet.
    Precondition: ``model`` belongs to ``project``.
    """
    check_project_role(user=user, project=project, roles=READ_ROLES)
    latest = _jobs(project, model).filter(status=JobStatus.SUCCEEDED).order_by("-finished_at", "-id").first()
    if latest is None:
        raise NotFound(f"no active-learning ranking by model {model.pk} has been computed yet; "
                       f'POST active-learning/ with {{"model": {model.pk}}} to compute one')
    return latest


def ranking_named(*, project: Project, ranking: dict) -> dict:
    """``ranking`` with each row's image ``name`` (its original file name; None if deleted since)."""
    kinds = ("unlabelled", "labelled")
    ids = {row["image"] for kind in kinds for row in ranking.get(kind, [])}
    names = dict(Image.objects.filter(project=project, pk__in=ids).values_list("pk", "original_name"))
    return {**ranking, **{kind: [{**row, "name": names.get(row["image"])} for row in ranking.get(kind, [])]
                          for kind in kinds if kind in ranking}}


@transaction.atomic
def ranking_start(*, actor, project: Project, model: ModelVersion) -> tuple[Job, bool]:
    """(the job computing a new ranking by ``model``, whether this call created it).

    A ranking already being computed for ``model`` is returned instead of a second one.
    Precondition: ``model`` belongs to ``project``.
    """
    check_project_role(user=actor, project=project, roles=READ_ROLES)
    # Two concurrent starts queue one job: the model's row serialises them.
    ModelVersion.objects.select_for_update().filter(pk=model.pk).first()
    pending = _jobs(project, model).filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).order_by("id").first()
    if pending is not None:
        return pending, False
    job = job_create(kind=RANK_TASK, project=project, created_by=actor, params={"model_version": model.pk},
                     message=f"active-learning ranking by {model} queued")
    from training.tasks import active_learning_rank_task

    transaction.on_commit(lambda: active_learning_rank_task.delay(job.pk))
    return job, True


def _uncertainty(model: ModelVersion, images: list[np.ndarray], weights) -> list[dict]:
    if model.backbone == Backbone.SAM:
        from training.backbones.uncertainty import sam_predicted_ious

        ious = sam_predicted_ious(images, weights=weights, device=settings.TRAINING_DEVICE)
        scores = al.rank_by_predicted_iou(ious).scores
        return [{"score": float(s), "mean_predicted_iou": float(np.clip(i, 0, 1).mean()) if i.size else None,
                 "n_masks": int(i.size)} for s, i in zip(scores, ious, strict=True)]
    from training.backbones.uncertainty import cellpose_signals

    opts = model.options
    signals = cellpose_signals(images, weights=weights, channels=tuple(opts.get("channels", (0, 0))),
                               channel_axis=opts.get("channel_axis"), diam_mean=opts.get("diam_mean"),
                               tile_size=int(model.hyperparameters.get("tile_size", 224)),
                               device=settings.TRAINING_DEVICE)
    return [{"entropy": al.probability_entropy(s.cell_probability), "flow_error": s.flow_error,
             "n_cells": int(len(np.unique(s.labels)) - 1)} for s in signals]


def ranking_compute(*, job: Job, progress: Callable[[int, int], None] | None = None) -> dict:
    """Score every candidate image of the job's project with its model; the ranking."""
    from qa.services.masks import mask_read

    model = ModelVersion.objects.get(pk=job.params["model_version"], project_id=job.project_id)
    weights = weights_file(model.weights, model.weights_sha256)
    unlabelled = _unlabelled(job.project_id)
    consensus = _consensus(job.project_id)
    labelled = sorted(i for i in consensus if i not in set(unlabelled))
    total, done = len(unlabelled) + len(labelled), 0
    images = {im.pk: im for im in Image.objects.filter(pk__in=[*unlabelled, *labelled])}
    rows: list[dict] = []
    for start in range(0, len(unlabelled), _CHUNK):
        ids = unlabelled[start:start + _CHUNK]
        for image_id, row in zip(ids, _uncertainty(model, [image_pixels(images[i]) for i in ids], weights),
                                 strict=True):
            rows.append({"image": image_id, **row})
        done += len(ids)
        if progress is not None:
            progress(done, total)
    if model.backbone == Backbone.CELLPOSE and rows:
        ranked = al.rank_unlabelled(entropies=[r["entropy"] for r in rows],
                                    flow_errors=[r["flow_error"] for r in rows])
        for row, score in zip(rows, ranked.scores, strict=True):
            row["score"] = float(score)
    disagreement: list[dict] = []
    for start in range(0, len(labelled), _CHUNK):
        ids = labelled[start:start + _CHUNK]
        preds = bb.predict(model.backbone, [image_pixels(images[i]) for i in ids], weights=weights,
                           options=model.options, hyperparameters=model.hyperparameters)
        truths = [mask_read(consensus[i]) for i in ids]
        scores = al.rank_labelled(model_labels=preds, consensus_labels=truths).scores
        disagreement += [{"image": i, "score": float(s), "f1_50": float(1.0 - s)}
                         for i, s in zip(ids, scores, strict=True)]
        done += len(ids)
        if progress is not None:
            progress(done, total)

    def order(items):
        return sorted(items, key=lambda r: (-r["score"], r["image"]))

    return {"model_version": model.pk, "backbone": model.backbone, "computed_at": timezone.now().isoformat(),
            "unlabelled": order(rows), "labelled": order(disagreement)}


@transaction.atomic
def queue_for_annotation(*, actor, project: Project, image_ids: list[int]) -> dict:
    """Hand the images out first: raise their open assignments' priority, or add assignments.

    Images with no assignment get ``annotators_per_image`` new ones; images whose
    assignments are all finished get one more annotator. Managers only; every id must be
    an image of the project (400 naming the others).
    """
    from qa.services.redundancy import assignment_add  # least busy qualified annotator

    check_project_role(user=actor, project=project, roles=[Role.MANAGER])
    wanted = list(dict.fromkeys(image_ids))
    images = {im.pk: im for im in Image.objects.select_for_update().filter(project=project, pk__in=wanted)}
    missing = [i for i in wanted if i not in images]
    if missing:
        raise InvalidInput(f"images {missing[:20]} are not images of this project", field="images")
    raised = Assignment.objects.filter(image_id__in=wanted, status__in=OPEN, priority__lt=QUEUE_PRIORITY).update(
        priority=QUEUE_PRIORITY, updated_at=timezone.now())
    created, unstaffed = 0, []
    for image_id in wanted:
        if Assignment.objects.filter(image_id=image_id, status__in=OPEN).exists():
            continue
        have = Assignment.objects.filter(image_id=image_id).count()
        want = project.annotators_per_image if have == 0 else 1
        added = 0
        for _ in range(want):
            if assignment_add(image=images[image_id], comment="queued by active learning",
                              priority=QUEUE_PRIORITY) is None:
                break
            added += 1
        created += added
        if added == 0:
            unstaffed.append(image_id)
    return {"images": wanted, "priority": QUEUE_PRIORITY, "raised": raised, "created": created,
            "no_free_annotator": unstaffed}


def queue_top(*, actor, project: Project, model: ModelVersion, top: int, kind: str) -> dict:
    """Queue the ``top`` images of the latest ranking by ``model`` (``kind``: unlabelled or labelled)."""
    check_project_role(user=actor, project=project, roles=[Role.MANAGER])
    latest = _jobs(project, model).filter(status=JobStatus.SUCCEEDED).order_by("-finished_at", "-id").first()
    if latest is None:
        raise InvalidInput(f"no active-learning ranking by model {model.pk} yet; "
                           "POST active-learning/ to compute one", field="model")
    ids = [row["image"] for row in latest.result[kind][:top]]
    if not ids:
        raise InvalidInput(f"the ranking has no {kind} image", field="top")
    return {**queue_for_annotation(actor=actor, project=project, image_ids=ids), "ranking_job": latest.pk}
