"""Use case: submit an annotator's label mask for an assignment, as a new revision.

Every submission is a new immutable :class:`~annotation.models.Annotation` row. Edits
name the revision the client last saw (``base_revision``, or ``If-Match`` at the API);
a stale one is refused (409 / 412) instead of silently overwriting someone's work. A
client-supplied idempotency key makes retries of the same submission return the first
result.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.core.files import File
from django.db import IntegrityError
from django.db.models import Max
from django.utils import timezone

from annotation.access import check_project_role
from annotation.enums import AnnotationSource, AssignmentStatus, Role
from annotation.masks import (
    MASK_FORMATS,
    MaskFormatError,
    detect_format,
    instance_ids,
    read_label_image,
    to_canonical_dtype,
    validate_label_image,
    write_label_png,
    write_label_tiff,
)
from annotation.models import Annotation, Assignment
from annotation.services.images import read_upload_capped
from annotation.services.storage import staged_files
from config.errors import Conflict, InvalidInput, NotFound, PreconditionFailed
from guidelines.enums import GuidelineStatus
from guidelines.selectors import acknowledgement_exists, guideline_published_get
from guidelines.services.checks import RuleViolationsError, guideline_rules_check

_KEY_LIMIT = 255
_MAX_TIME_SPENT_S = 7 * 24 * 3600.0


@dataclass(frozen=True)
class SubmitResult:
    """The annotation a submission produced (or, on an idempotent replay, had produced).

    A dry run stores nothing: ``annotation`` is None and ``violations`` holds every rule
    violation (blocking and warning) of guideline version ``guideline_version``.
    """

    annotation: Annotation | None
    created: bool
    violations: tuple = ()
    dry_run: bool = False
    guideline_version: int | None = None


def _encode(labels: np.ndarray) -> tuple[bytes, str]:
    """The canonical stored file: 16-bit PNG, or compressed TIFF above 65,535 ids."""
    canonical = to_canonical_dtype(labels)
    if canonical.dtype == np.uint16:
        return write_label_png(canonical), "png"
    return write_label_tiff(canonical), "tif"


def _check_options(*, source, time_spent_s, idempotency_key, base_revision, if_match_revision):
    try:
        source = AnnotationSource(source)
    except ValueError:
        raise InvalidInput(
            f"source {source!r} is not one of {', '.join(s.value for s in AnnotationSource)}",
            field="source",
        ) from None
    if time_spent_s is not None:
        if not isinstance(time_spent_s, int | float) or not math.isfinite(time_spent_s):
            raise InvalidInput("time_spent_s must be a number of seconds", field="time_spent_s")
        if not 0 <= time_spent_s <= _MAX_TIME_SPENT_S:
            raise InvalidInput(
                f"time_spent_s must be within 0..{_MAX_TIME_SPENT_S:.0f}, got {time_spent_s}",
                field="time_spent_s",
            )
    if idempotency_key is not None and not (0 < len(idempotency_key) <= _KEY_LIMIT):
        raise InvalidInput(
            f"Idempotency-Key must be 1..{_KEY_LIMIT} characters", field="idempotency_key"
        )
    for name, value in (("base_revision", base_revision), ("if_match", if_match_revision)):
        if value is not None and value < 0:
            raise InvalidInput(f"{name} must be >= 0, got {value}", field=name)
    if (
        base_revision is not None and if_match_revision is not None
        and base_revision != if_match_revision
    ):
        raise InvalidInput(
            f"base_revision {base_revision} and If-Match {if_match_revision} disagree",
            field="base_revision",
        )
    return source


def check_annotator(*, actor, assignment: Assignment) -> None:
    """The actor is an annotator of the project and this is their assignment (else 404/403)."""
    check_project_role(user=actor, project=assignment.image.project, roles=[Role.ANNOTATOR])
    if assignment.annotator_id != actor.pk:
        raise NotFound(f"assignment {assignment.pk} not found")


def annotation_submit(
    *, actor, assignment: Assignment, mask_data: bytes | File, **options
) -> SubmitResult:
    """Submit a label-image file (PNG or TIFF, recognised by content; bytes or an upload).

    The file must decode to one integer, non-negative plane of the image's height and
    width. See :func:`annotation_submit_labels` for the other preconditions and options.
    """
    check_annotator(actor=actor, assignment=assignment)
    if not isinstance(mask_data, bytes | bytearray):
        mask_data = read_upload_capped(mask_data, name=mask_data.name or "mask", field="mask")
    try:
        image = assignment.image
        labels = read_label_image(
            mask_data, max_pixels=settings.CELLCURATE_MAX_IMAGE_PIXELS,
            max_bytes=settings.CELLCURATE_MAX_DECODED_BYTES, shape=(image.height, image.width),
        )
        upload_format = detect_format(mask_data)
    except MaskFormatError as exc:
        raise InvalidInput(f"mask: {exc}", field="mask") from exc
    return annotation_submit_labels(
        actor=actor, assignment=assignment, labels=labels, upload_format=upload_format, **options
    )


def annotation_submit_labels(
    *,
    actor,
    assignment: Assignment,
    labels: np.ndarray,
    base_revision: int | None = None,
    if_match_revision: int | None = None,
    idempotency_key: str | None = None,
    source: str | AnnotationSource = AnnotationSource.MANUAL,
    time_spent_s: float | None = None,
    instance_classes: Mapping[int, str] | None = None,
    upload_format: str = "",
    import_report: Mapping | None = None,
    dry_run: bool = False,
    made_under=None,
) -> SubmitResult:
    """Store a label image (ndarray, shape (H, W), integer >= 0) as the next revision.

    Preconditions: the actor is the assignment's annotator; the assignment is not
    skipped; the actor acknowledged the project's current published guideline version;
    for an edit, ``base_revision`` (409 when stale) or ``if_match_revision`` (412 when
    stale) equals the latest revision; ``instance_classes`` (instance id -> one of the
    project's cell classes) names only ids present in ``labels``. The same
    ``idempotency_key`` with the same content and classes returns the first annotation
    (``created=False``). ``upload_format`` and ``import_report`` record where the mask
    came from (see :mod:`annotation.services.mask_formats`).

    The mask is checked against the guideline's rules (:mod:`guidelines.rules`): a
    blocking violation refuses it (:class:`RuleViolationsError`, HTTP 400 listing the
    rules and cells); warnings are stored as ``rule_warnings``. ``dry_run=True`` runs
    every check and returns the violations without storing anything.

    ``made_under`` (a published or retired :class:`~guidelines.models.GuidelineVersion` of
    the project, older than the current one) records a mask made under that version, and
    checks it against that version's rules; only imports a manager vouched for pass it
    (:func:`annotation.services.mask_batch.mask_import_check`), so the acknowledgement of
    the current version is not required then.
    """
    source = _check_options(
        source=source, time_spent_s=time_spent_s, idempotency_key=idempotency_key,
        base_revision=base_revision, if_match_revision=if_match_revision,
    )
    project = assignment.image.project
    check_annotator(actor=actor, assignment=assignment)
    try:
        validate_label_image(labels, name="mask")
    except MaskFormatError as exc:
        raise InvalidInput(f"mask: {exc}", field="mask") from exc
    image = assignment.image
    if labels.shape != (image.height, image.width):
        raise InvalidInput(
            f"mask is {labels.shape[0]} x {labels.shape[1]} (height x width) but the image is "
            f"{image.height} x {image.width}",
            field="mask",
        )
    if upload_format and upload_format not in MASK_FORMATS:
        raise InvalidInput(
            f"upload_format {upload_format!r} is not one of {', '.join(MASK_FORMATS)}",
            field="upload_format",
        )
    ids = instance_ids(labels)
    classes = _check_classes(instance_classes, ids=ids, project=project)
    content, ext = _encode(labels)
    sha256 = hashlib.sha256(content).hexdigest()

    try:
        with staged_files() as staged:
            assignment = Assignment.objects.select_for_update().get(pk=assignment.pk)
            if idempotency_key is not None and not dry_run:
                replay = _replay(
                    actor=actor, assignment=assignment, key=idempotency_key, sha256=sha256,
                    classes=classes,
                )
                if replay is not None:
                    return replay
            if assignment.status == AssignmentStatus.SKIPPED:
                raise Conflict(f"assignment {assignment.pk} was skipped; it takes no submissions")
            guideline = guideline_published_get(project=project)
            if guideline is None:
                raise InvalidInput(
                    f"project {project.slug!r} has no published guideline; annotations are "
                    "made under a published guideline version",
                    field="guideline", code="guideline_missing",
                )
            if made_under is not None:
                guideline = _check_older_guideline(made_under, current=guideline)
            elif not acknowledgement_exists(user=actor, guideline_version=guideline):
                raise InvalidInput(
                    f"acknowledge guideline version {guideline.version} ({guideline.title!r}) "
                    "before submitting",
                    field="guideline", code="guideline_not_acknowledged",
                )
            latest = (
                Annotation.objects.filter(assignment=assignment).aggregate(r=Max("revision"))["r"]
                or 0
            )
            _check_revision(latest, base_revision=base_revision, if_match_revision=if_match_revision)
            # Imported here: drafts builds on this module.
            from annotation.services.drafts import draft_model_origin

            model_version_id = draft_model_origin(assignment=assignment, latest=latest, source=source)
            if model_version_id is not None:
                source = AnnotationSource.MODEL_ASSISTED
            violations = guideline_rules_check(
                guideline=guideline, labels=labels, image=image, classes=instance_classes,
                import_report=import_report,
            )
            if dry_run:
                return SubmitResult(annotation=None, created=False, violations=tuple(violations),
                                    dry_run=True, guideline_version=guideline.version)
            if any(v.blocking for v in violations):
                raise RuleViolationsError(violations, guideline=guideline)
            revision = latest + 1
            stored = staged.save(
                f"projects/{project.pk}/masks/{assignment.pk}/r{revision}-{sha256[:16]}.{ext}",
                content,
            )
            now = timezone.now()
            annotation = Annotation.objects.create(
                assignment=assignment, guideline_version=guideline, revision=revision,
                mask=stored, sha256=sha256, height=labels.shape[0], width=labels.shape[1],
                dtype=str(to_canonical_dtype(labels).dtype), instance_count=len(ids),
                source=source, time_spent_s=time_spent_s, submitted_at=now,
                idempotency_key=idempotency_key or "", created_by=actor,
                instance_classes=classes, upload_format=upload_format,
                import_report=dict(import_report or {}),
                rule_warnings=[v.as_dict() for v in violations], model_version_id=model_version_id,
            )
            assignment.status = AssignmentStatus.SUBMITTED
            assignment.submitted_at = now
            assignment.save(update_fields=["status", "submitted_at", "updated_at"])
            # QA runs once the image has k submitted annotations and on every revision
            # after; queued on commit. Imported here: qa builds on annotation, not back.
            from qa.services.hooks import annotation_submitted

            annotation_submitted(annotation=annotation)
    except IntegrityError:
        # A concurrent request with the same key or the same base revision committed first.
        if idempotency_key is not None:
            replay = _replay(
                actor=actor, assignment=assignment, key=idempotency_key, sha256=sha256,
                classes=classes,
            )
            if replay is not None:
                return replay
        raise Conflict(
            f"assignment {assignment.pk} received another revision at the same time; "
            "reload and resubmit against the latest revision",
            field="base_revision",
        ) from None
    return SubmitResult(annotation=annotation, created=True, violations=tuple(violations),
                        guideline_version=guideline.version)


def _check_older_guideline(made_under, *, current):
    """``made_under`` if it is a non-draft version of ``current``'s project, not newer."""
    if made_under.project_id != current.project_id or made_under.status == GuidelineStatus.DRAFT:
        raise InvalidInput(
            f"guideline version {made_under.version} is not a published version of this "
            "project", field="guideline_version",
        )
    if made_under.version > current.version:
        raise InvalidInput(
            f"guideline version {made_under.version} is newer than the current version "
            f"{current.version}", field="guideline_version",
        )
    return made_under


def _check_classes(classes: Mapping[int, str] | None, *, ids: np.ndarray, project) -> dict[str, str]:
    """The class map as stored (JSON keys are strings), checked against ids and the project."""
    if not classes:
        return {}
    present = set(ids.tolist())
    absent = sorted(int(i) for i in classes if int(i) not in present)
    if absent:
        raise InvalidInput(
            f"instance_classes names instances {absent[:10]} that are not in the mask",
            field="instance_classes",
        )
    known = set(project.cell_classes or [])
    unknown = sorted({name for name in classes.values() if name not in known})
    if unknown:
        raise InvalidInput(
            f"unknown cell classes {unknown}; project {project.slug!r} has "
            f"{sorted(known) or 'no cell classes'}",
            field="instance_classes", code="unknown_classes",
        )
    return {str(int(i)): name for i, name in sorted(classes.items(), key=lambda kv: int(kv[0]))}


def _replay(
    *, actor, assignment: Assignment, key: str, sha256: str, classes: dict[str, str]
) -> SubmitResult | None:
    earlier = Annotation.objects.filter(created_by=actor, idempotency_key=key).first()
    if earlier is None:
        return None
    if (
        earlier.assignment_id != assignment.pk or earlier.sha256 != sha256
        or earlier.instance_classes != classes
    ):
        raise Conflict(
            "this Idempotency-Key was already used for a different submission; "
            "use a new key for new content",
            field="idempotency_key", code="idempotency_key_reused",
        )
    return SubmitResult(annotation=earlier, created=False)


def _check_revision(latest: int, *, base_revision: int | None, if_match_revision: int | None) -> None:
    if if_match_revision is not None and if_match_revision != latest:
        raise PreconditionFailed(
            f"If-Match names revision {if_match_revision} but the latest is {latest}; "
            "reload before editing",
            field="if_match", code="stale_revision",
        )
    seen = base_revision if base_revision is not None else if_match_revision
    if latest == 0:
        if seen not in (None, 0):
            raise Conflict(
                f"base_revision {seen} does not exist: this assignment has no revision yet",
                field="base_revision", code="stale_revision",
            )
        return
    if seen is None:
        raise Conflict(
            f"the assignment already has revision {latest}; to edit it, send "
            f"base_revision={latest} (the revision you last saw)",
            field="base_revision", code="revision_required",
        )
    if seen != latest:
        raise Conflict(
            f"base_revision {seen} is stale: the latest revision is {latest}; reload before editing",
            field="base_revision", code="stale_revision",
        )
