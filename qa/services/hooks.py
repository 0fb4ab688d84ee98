"""Scheduling QA runs: after a submission reaches k annotations, after a revision, on demand.

The annotation service calls :func:`annotation_submitted` inside its transaction; the run
is queued with ``transaction.on_commit`` so the worker sees the committed annotation, and
a failure to queue or (eagerly) run QA never turns the committed submission into an
error for the annotator.
"""

from __future__ import annotations

import logging

from django.db import transaction

from annotation.access import check_project_role
from annotation.enums import AssignmentStatus
from annotation.models import Annotation, Assignment, Image, Job
from annotation.services.jobs import job_create
from config.errors import Conflict
from qa.enums import QaTrigger
from qa.services.model_reference import reference_model_get
from qa.services.policies import ACTING_ROLES

logger = logging.getLogger(__name__)

QA_RUN_TASK = "qa.image_qa_run"


def _submitted_count(image: Image) -> int:
    return Assignment.objects.filter(image=image, status=AssignmentStatus.SUBMITTED).count()


def _enqueue(image_id: int, trigger: str, job_id: int | None, reference_model: int | None) -> None:
    from qa.tasks import image_qa_run_task  # tasks sit above services

    try:
        image_qa_run_task.delay(image_id, trigger, job_id, reference_model)
    except Exception:
        # The submission is committed; a QA run can be asked for again (POST .../qa/).
        logger.exception("QA run of image %s (%s) could not be run or queued", image_id, trigger)


def qa_run_enqueue(*, image: Image, trigger: QaTrigger, job: Job | None = None,
                   only_if_annotated: bool = False, reference_model: int | None = None) -> bool:
    """Queue a QA run of the image once the current transaction commits; False if skipped.

    ``reference_model`` (a model version id) overrides the project's reference model setting.
    """
    if only_if_annotated and _submitted_count(image) == 0:
        return False
    image_id, job_id = image.pk, job.pk if job else None
    transaction.on_commit(lambda: _enqueue(image_id, str(trigger), job_id, reference_model))
    return True


def annotation_submitted(*, annotation: Annotation) -> bool:
    """Queue QA when the image has k submitted annotations, or QA'd ones got a revision."""
    image = annotation.assignment.image
    k = image.project.annotators_per_image
    if _submitted_count(image) < k:
        return False
    trigger = QaTrigger.REVISION if annotation.revision > 1 else QaTrigger.SUBMISSION
    return qa_run_enqueue(image=image, trigger=trigger)


def qa_run_request(*, actor, image: Image, reference_model: int | None = None) -> Job:
    """A QA lead or manager asks for a QA run now: a job the UI polls (202).

    ``reference_model``: a model version of the project to compare the consensus with
    (400 if it is not one); by default the project's setting.
    """
    check_project_role(user=actor, project=image.project, roles=ACTING_ROLES)
    if _submitted_count(image) == 0:
        raise Conflict(f"image {image.pk} has no submitted annotation to run QA on",
                       code="qa_no_annotations")
    if reference_model is not None:
        reference_model_get(project=image.project, model_version_id=reference_model)
    params = {"image": image.pk, **({"reference_model": reference_model} if reference_model else {})}
    job = job_create(kind=QA_RUN_TASK, project=image.project, created_by=actor, total=1,
                     params=params, message="QA run queued")
    qa_run_enqueue(image=image, trigger=QaTrigger.ON_DEMAND, job=job, reference_model=reference_model)
    return job
