"""Use cases for workspace drafts: autosave an annotator's unsubmitted mask, read, discard.

A draft is not an annotation: it is private to its annotator, never enters QA, and is
replaced by each save. It keeps the revision it edits so that a draft made before a
newer revision arrived is not silently restored over it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

import numpy as np
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Max

from annotation.enums import AnnotationSource, AssignmentStatus
from annotation.masks import (
    MaskFormatError,
    instance_ids,
    read_label_image,
    to_canonical_dtype,
    validate_label_image,
    write_label_png,
    write_label_tiff,
)
from annotation.models import Annotation, AnnotationDraft, Assignment
from annotation.services.annotations import check_annotator
from annotation.services.storage import staged_files
from config.errors import Conflict, InvalidInput, NotFound

#: Largest editor state kept with a draft (JSON, bytes).
MAX_STATE_BYTES = 256 * 1024


def _encode(labels: np.ndarray) -> tuple[bytes, str]:
    canonical = to_canonical_dtype(labels)
    if canonical.dtype == np.uint16:
        return write_label_png(canonical), "png"
    return write_label_tiff(canonical), "tif"


def draft_get(*, actor, assignment: Assignment) -> AnnotationDraft:
    """The actor's draft of their assignment, or NotFound."""
    check_annotator(actor=actor, assignment=assignment)
    draft = AnnotationDraft.objects.filter(assignment=assignment).first()
    if draft is None:
        raise NotFound(f"assignment {assignment.pk} has no draft")
    return draft


def draft_save(
    *,
    actor,
    assignment: Assignment,
    labels_data: bytes,
    base_revision: int = 0,
    state: Mapping | None = None,
) -> AnnotationDraft:
    """Store (replace) the draft of an assignment from a PNG/TIFF label image.

    Preconditions: the actor is the assignment's annotator; the assignment is not
    skipped; the label image has the image's height and width; ``base_revision`` is
    an existing revision or 0, and not older than the latest (409 otherwise: the
    annotator must reload the newer revision); ``state`` is a JSON object of at most
    :data:`MAX_STATE_BYTES`.
    """
    check_annotator(actor=actor, assignment=assignment)
    state = dict(state or {})
    if len(json.dumps(state)) > MAX_STATE_BYTES:
        raise InvalidInput(f"state is over {MAX_STATE_BYTES:,} bytes of JSON", field="state")
    if base_revision < 0:
        raise InvalidInput("base_revision must be >= 0", field="base_revision")
    try:
        labels = read_label_image(
            labels_data, max_pixels=settings.CELLCURATE_MAX_IMAGE_PIXELS,
            max_bytes=settings.CELLCURATE_MAX_DECODED_BYTES,
            shape=(assignment.image.height, assignment.image.width),  # checked before decoding
        )
        validate_label_image(labels, name="labels")
    except MaskFormatError as exc:
        raise InvalidInput(f"labels: {exc}", field="labels") from exc
    image = assignment.image
    if labels.shape != (image.height, image.width):
        raise InvalidInput(
            f"labels are {labels.shape[0]} x {labels.shape[1]} (height x width) but the image "
            f"is {image.height} x {image.width}",
            field="labels",
        )
    content, ext = _encode(labels)
    sha256 = hashlib.sha256(content).hexdigest()
    count = len(instance_ids(labels))
    with staged_files() as staged:
        locked = Assignment.objects.select_for_update().get(pk=assignment.pk)
        if locked.status == AssignmentStatus.SKIPPED:
            raise Conflict(f"assignment {assignment.pk} was skipped; it keeps no draft")
        latest = Annotation.objects.filter(assignment=locked).aggregate(r=Max("revision"))["r"] or 0
        if base_revision != latest:
            raise Conflict(
                f"the draft edits revision {base_revision} but the latest is {latest}; "
                "reload the task to edit the latest revision",
                field="base_revision", code="stale_revision",
            )
        draft = AnnotationDraft.objects.filter(assignment=locked).first()
        old_name = draft.labels.name if draft is not None else None
        stored = staged.save(
            f"projects/{image.project_id}/drafts/{assignment.pk}/{sha256[:16]}.{ext}", content
        )
        if draft is None:
            draft = AnnotationDraft(assignment=locked)
        draft.labels = stored
        draft.sha256 = sha256
        draft.height, draft.width = labels.shape
        draft.instance_count = count
        draft.base_revision = base_revision
        draft.state = state
        draft.saves += 1
        draft.save()
        if old_name and old_name != stored:
            transaction.on_commit(lambda: default_storage.delete(old_name))
    return draft


@transaction.atomic
def draft_discard(*, actor, assignment: Assignment) -> bool:
    """Delete the assignment's draft and its file; return whether there was one."""
    check_annotator(actor=actor, assignment=assignment)
    draft = AnnotationDraft.objects.select_for_update().filter(assignment=assignment).first()
    if draft is None:
        return False
    name = draft.labels.name
    draft.delete()
    transaction.on_commit(lambda: default_storage.delete(name))
    return True


def draft_model_origin(*, assignment: Assignment, latest: int, source: str) -> int | None:
    """The model version a submission of revision ``latest + 1`` started from, if any.

    A mask typed in the editor (``source`` manual or model-assisted) derives from a model
    when the assignment's draft was pre-annotated (and edits ``latest``), or when it
    revises a model-assisted revision; an uploaded mask never does. Called by
    :func:`annotation.services.annotations.annotation_submit_labels` under its lock.
    """
    if source not in (AnnotationSource.MANUAL, AnnotationSource.MODEL_ASSISTED):
        return None
    draft = AnnotationDraft.objects.filter(assignment=assignment, model_assisted=True,
                                           base_revision=latest).first()
    if draft is not None and draft.model_version_id is not None:
        return draft.model_version_id
    previous = Annotation.objects.filter(assignment=assignment, revision=latest,
                                         source=AnnotationSource.MODEL_ASSISTED).first()
    return previous.model_version_id if previous is not None else None


#: Assignments a pre-annotation may give a draft: not yet submitted nor skipped.
PREANNOTATE_STATUSES = (AssignmentStatus.PENDING, AssignmentStatus.IN_PROGRESS, AssignmentStatus.EXPIRED)


def draft_preannotate(*, assignment: Assignment, labels: np.ndarray, model_version_id: int) -> bool:
    """Give an open assignment a model's prediction as its draft; whether one was written.

    The draft is what the annotator starts from when they open the task, marked
    ``model_assisted``. Nothing is written (False) when the assignment was submitted or
    skipped meanwhile, or has a draft the annotator saved (their work is never replaced);
    an untouched earlier pre-annotation is replaced. Precondition: the caller may
    pre-annotate the project (:mod:`training.services.preannotate` checks it).
    """
    image = assignment.image
    if labels.shape != (image.height, image.width):
        raise InvalidInput(f"labels are {labels.shape} but the image is {image.height} x {image.width}",
                           field="labels")
    content, ext = _encode(labels)
    sha256 = hashlib.sha256(content).hexdigest()
    with staged_files() as staged:
        locked = Assignment.objects.select_for_update().get(pk=assignment.pk)
        draft = AnnotationDraft.objects.filter(assignment=locked).first()
        if (locked.status not in PREANNOTATE_STATUSES or Annotation.objects.filter(assignment=locked).exists()
                or (draft is not None and (draft.saves > 0 or not draft.model_assisted))):
            return False
        old_name = draft.labels.name if draft is not None else None
        stored = staged.save(f"projects/{image.project_id}/drafts/{locked.pk}/{sha256[:16]}.{ext}", content)
        draft = draft or AnnotationDraft(assignment=locked)
        draft.labels, draft.sha256 = stored, sha256
        draft.height, draft.width = labels.shape
        draft.instance_count = len(instance_ids(labels))
        draft.base_revision, draft.state, draft.saves = 0, {}, 0
        draft.model_assisted, draft.model_version_id = True, model_version_id
        draft.save()
        if old_name and old_name != stored:
            transaction.on_commit(lambda: default_storage.delete(old_name))
    return True
