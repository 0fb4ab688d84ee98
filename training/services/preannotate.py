"""Pre-annotation: a model version's predictions become the drafts annotators start from.

``POST models/<id>/predict/`` queues a job (:func:`preannotate_start`); the task predicts
each image once (:func:`training.services.predict.model_version_predict`) and gives every
open assignment of it a ``model_assisted`` draft (:func:`annotation.services.drafts.draft_preannotate`),
so the annotator opens the task on the model's cells and corrects them.  Drafts an
annotator already saved are never replaced; images without an open assignment are
reported, not predicted.  Progress is the job's (``GET jobs/<id>/``).
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import transaction

from annotation.access import check_project_role
from annotation.models import Assignment, Image, Job, Project
from annotation.selectors import image_list
from annotation.services.drafts import PREANNOTATE_STATUSES, draft_preannotate
from annotation.services.jobs import job_create
from config.errors import DomainError, InvalidInput
from training.models import ModelVersion
from training.services.predict import model_version_predict
from training.services.registry import WRITE_ROLES

PREANNOTATE_TASK = "training.model_preannotate"
#: Most images one pre-annotation job takes.
MAX_IMAGES = 5000


def _open_assignments(image: Image):
    return (Assignment.objects.filter(image=image, status__in=PREANNOTATE_STATUSES, annotations__isnull=True)
            .select_related("image").order_by("id"))


@transaction.atomic
def preannotate_start(*, actor, project: Project, model: ModelVersion, image_ids: list[int] | None = None,
                      filters: dict | None = None) -> Job:
    """Queue pre-annotation of the given images (or those matching ``filters``) with ``model``.

    Preconditions: the actor is an ML engineer or manager of the project; ``model``
    belongs to it; every id in ``image_ids`` is an image of the project (400 naming the
    missing ones); between 1 and :data:`MAX_IMAGES` images are selected.
    """
    check_project_role(user=actor, project=project, roles=WRITE_ROLES)
    if model.project_id != project.pk:
        raise InvalidInput(f"model {model.pk} is not a model of this project", field="model")
    if image_ids is not None:
        wanted = list(dict.fromkeys(image_ids))
        found = set(Image.objects.filter(project=project, pk__in=wanted).values_list("pk", flat=True))
        missing = [i for i in wanted if i not in found]
        if missing:
            raise InvalidInput(f"images {missing[:20]} are not images of this project", field="images")
        ids = wanted
    else:
        ids = list(image_list(user=actor, project=project, filters=filters or {}).values_list("pk", flat=True))
    if not ids:
        raise InvalidInput("no image selected", field="images" if image_ids is not None else "filter")
    if len(ids) > MAX_IMAGES:
        raise InvalidInput(f"{len(ids)} images selected; at most {MAX_IMAGES} per job", field="images")
    job = job_create(kind=PREANNOTATE_TASK, project=project, created_by=actor, total=len(ids),
                     params={"model_version": model.pk, "image_ids": ids},
                     message=f"pre-annotation of {len(ids)} images with {model} queued")
    from training.tasks import model_preannotate_task

    transaction.on_commit(lambda: model_preannotate_task.delay(job.pk))
    return job


def preannotate_run(*, job: Job, progress: Callable[[int, int], None] | None = None) -> dict:
    """Predict each image of the job and write the drafts; the job's result."""
    model = ModelVersion.objects.get(pk=job.params["model_version"], project_id=job.project_id)
    ids = list(job.params["image_ids"])
    images = {im.pk: im for im in Image.objects.filter(project_id=job.project_id, pk__in=ids)}
    written = 0
    predicted, no_open, kept, failed = [], [], 0, []
    for done, image_id in enumerate(ids, start=1):
        image = images.get(image_id)
        targets = list(_open_assignments(image)) if image is not None else []
        if not targets:
            no_open.append(image_id)
        else:
            try:
                labels = model_version_predict(model_version=model, image=image)
            except (DomainError, OSError, ValueError) as exc:
                failed.append([image_id, getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"])
            else:
                predicted.append(image_id)
                for assignment in targets:
                    if draft_preannotate(assignment=assignment, labels=labels, model_version_id=model.pk):
                        written += 1
                    else:
                        kept += 1
        if progress is not None:
            progress(done, len(ids))
    return {"model_version": model.pk, "images": len(ids), "predicted": len(predicted),
            "drafts_written": written, "drafts_kept": kept, "no_open_assignment": no_open[:1000],
            "failed": failed[:1000]}
