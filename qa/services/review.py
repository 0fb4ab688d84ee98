"""Use case: a QA lead's (or manager's) review action on one image.

Every action writes one immutable :class:`~qa.models.ReviewDecision`, an audit row and
the image's new state, in one transaction. The approving actions (accept the consensus,
accept one annotation, accept with edits, drop cells) also write a new
:class:`~qa.models.ApprovedMask` (file + sha256) that the decision names; an approved
mask is never edited, a later decision makes another. A reviewer never approves an
image they annotated themselves.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from django.core.files import File

from annotation.access import check_project_role
from annotation.enums import AssignmentStatus
from annotation.models import Annotation, Assignment, Image
from annotation.services.storage import staged_files
from config.errors import Conflict, InvalidInput, PermissionDenied
from guidelines.selectors import guideline_published_get
from guidelines.services.checks import guideline_rules_check
from qa.enums import (
    APPROVING_ACTIONS,
    ApprovedMaskSource,
    AuditKind,
    CellOutcome,
    ImageQaStatus,
    ReviewAction,
)
from qa.models import ApprovedMask, GateDecision, ImageQaState, QaRun, ReviewDecision
from qa.services.audit import audit_record
from qa.services.gating import approved_labels_from_consensus
from qa.services.masks import mask_encode, mask_read, mask_upload_read
from qa.services.policies import ACTING_ROLES, policy_current
from qa.services.redundancy import annotator_request

_COMMENT_LIMIT = 5000


def _check_own_work(actor, image: Image) -> None:
    if Annotation.objects.filter(assignment__image=image, created_by_id=actor.pk).exists():
        raise PermissionDenied(
            f"you annotated image {image.pk}; another QA lead must approve it",
            code="own_annotation",
        )


def _latest(image: Image) -> tuple[QaRun | None, GateDecision | None]:
    run = QaRun.objects.filter(image=image).order_by("-id").first()
    gate = GateDecision.objects.filter(qa_run=run).order_by("-id").first() if run else None
    return run, gate


def _approved_labels(*, action, run: QaRun, gate: GateDecision | None, annotation, mask,
                     cells, image) -> tuple[np.ndarray, str, list[int], Annotation | None]:
    """(labels, source, ignore_cells, annotation) of the mask an approving action approves."""
    outcomes = {c["cell"]: c["outcome"] for c in (gate.cells if gate else [])}
    ignore = sorted(c for c, o in outcomes.items() if o == CellOutcome.IGNORE)
    if action == ReviewAction.ACCEPT_CONSENSUS:
        drop = {c for c, o in outcomes.items() if o == CellOutcome.DROP}
        return (approved_labels_from_consensus(mask_read(run.consensus.name), drop=drop),
                ApprovedMaskSource.CONSENSUS, [c for c in ignore if c not in drop], None)
    if action == ReviewAction.DROP_CELLS:
        known = {c["id"] for c in run.cells}
        unknown = sorted(set(cells) - known)
        if unknown:
            raise InvalidInput(f"cells {unknown[:10]} are not in the consensus (ids 1..{run.n_cells})",
                               field="cells")
        return (approved_labels_from_consensus(mask_read(run.consensus.name), drop=set(cells)),
                ApprovedMaskSource.CONSENSUS, [c for c in ignore if c not in set(cells)], None)
    if action == ReviewAction.ACCEPT_ANNOTATION:
        used = set(run.members.values_list("annotation_id", flat=True))
        if annotation.pk not in used:
            raise InvalidInput(
                f"annotation {annotation.pk} is not one the latest QA run of image {image.pk} used",
                field="annotation",
            )
        return mask_read(annotation.mask.name), ApprovedMaskSource.ANNOTATION, [], annotation
    return mask_upload_read(mask, image=image), ApprovedMaskSource.REVIEWER_UPLOAD, [], None


def _check_inputs(action, *, annotation, mask, cells, annotator, comment, reason) -> None:
    if action == ReviewAction.ACCEPT_ANNOTATION and annotation is None:
        raise InvalidInput("accept_annotation needs the annotation id", field="annotation")
    if action == ReviewAction.ACCEPT_EDITED and mask is None:
        raise InvalidInput("accept_edited needs the corrected mask file", field="mask")
    if action == ReviewAction.DROP_CELLS and not cells:
        raise InvalidInput("drop_cells needs a non-empty list of consensus cell ids", field="cells")
    if action == ReviewAction.SEND_BACK:
        if annotator is None:
            raise InvalidInput("send_back needs the annotator's user name", field="annotator")
        if not comment.strip():
            raise InvalidInput("send_back needs a comment telling the annotator what to fix",
                               field="comment")
    if action == ReviewAction.EXCLUDE and not reason.strip():
        raise InvalidInput("exclude needs a reason", field="reason")
    if len(comment) > _COMMENT_LIMIT or len(reason) > _COMMENT_LIMIT:
        raise InvalidInput(f"comment and reason are limited to {_COMMENT_LIMIT} characters", field="comment")


def review_edit_check(*, actor, image: Image, mask: bytes | File | None) -> dict:
    """The rule check of a reviewer's corrected mask, storing nothing (``accept_edited`` dry run).

    The published guideline's rules are the same an annotator's submission meets; for a
    QA lead they advise rather than block (the lead decides), so the answer lists every
    violation and whether an annotator's submission would have been accepted.
    """
    check_project_role(user=actor, project=image.project, roles=ACTING_ROLES)
    if mask is None:
        raise InvalidInput("the rule check needs the corrected mask file", field="mask")
    labels = mask_upload_read(mask, image=image)
    guideline = guideline_published_get(project=image.project)
    violations = [] if guideline is None else guideline_rules_check(guideline=guideline, labels=labels,
                                                                    image=image)
    return {
        "dry_run": True, "guideline_version": guideline.version if guideline else None,
        "accepted": not any(v.blocking for v in violations),
        "n_cells": int(np.unique(labels[labels > 0]).size),
        "violations": [v.as_dict() for v in violations],
    }


def review_act(
    *, actor, image: Image, action: str, annotation: Annotation | None = None,
    mask: bytes | File | None = None, cells: Sequence[int] = (), annotator=None,
    comment: str = "", reason: str = "",
) -> ReviewDecision:
    """Apply one review action to an image (QA leads and managers).

    Preconditions: approving actions need a QA run of the image and an actor who did not
    annotate it; ``accept_annotation`` names an annotation that run used; ``drop_cells``
    names consensus cell ids; ``send_back`` names an annotator who submitted on this image
    and a comment; ``exclude`` a reason.
    """
    project = image.project
    check_project_role(user=actor, project=project, roles=ACTING_ROLES)
    try:
        action = ReviewAction(action)
    except ValueError:
        raise InvalidInput(
            f"action {action!r} is not one of {', '.join(a.value for a in ReviewAction)}", field="action"
        ) from None
    cells = [int(c) for c in cells]
    _check_inputs(action, annotation=annotation, mask=mask, cells=cells, annotator=annotator,
                  comment=comment, reason=reason)
    run, gate = _latest(image)
    if action in APPROVING_ACTIONS:
        if run is None:
            raise Conflict(f"image {image.pk} has no QA run yet; nothing to accept", code="qa_not_run")
        _check_own_work(actor, image)
        labels, source, ignore, accepted = _approved_labels(
            action=action, run=run, gate=gate, annotation=annotation, mask=mask, cells=cells, image=image,
        )
        encoded = mask_encode(labels)
    with staged_files() as staged:
        state, _ = ImageQaState.objects.select_for_update().get_or_create(image=image, defaults={"project": project})
        assignment = None
        if action == ReviewAction.SEND_BACK:
            assignment = _reopen(image=image, annotator=annotator, comment=comment)
        elif action == ReviewAction.REQUEST_ANNOTATOR:
            assignment = annotator_request(image=image)
        decision = ReviewDecision.objects.create(
            image=image, action=action, reviewer=actor, qa_run=run, gate_decision=gate,
            annotation=annotation if action == ReviewAction.ACCEPT_ANNOTATION else None,
            cells=cells if action == ReviewAction.DROP_CELLS else [],
            target_annotator=annotator if action == ReviewAction.SEND_BACK else (
                assignment.annotator if assignment else None),
            assignment=assignment, comment=comment or reason,
        )
        approved = None
        if action in APPROVING_ACTIONS:
            name = staged.save(
                f"projects/{project.pk}/approved/{image.pk}/review{decision.pk}-{encoded.sha256[:16]}.{encoded.ext}",
                encoded.content,
            )
            approved = ApprovedMask.objects.create(
                image=image, file=name, sha256=encoded.sha256, height=encoded.shape[0],
                width=encoded.shape[1], n_cells=encoded.n_cells, source=source, ignore_cells=ignore,
                qa_run=run, annotation=accepted, review_decision=decision,
                policy=gate.policy if gate else policy_current(project=project),
            )
            state.approved_mask = approved
            state.status = ImageQaStatus.APPROVED
        elif action == ReviewAction.EXCLUDE:
            state.status, state.approved_mask = ImageQaStatus.EXCLUDED, None
        elif action == ReviewAction.SEND_BACK:
            state.status = ImageQaStatus.SENT_BACK
        else:
            state.status = ImageQaStatus.MORE_ANNOTATORS
            state.extra_requested += 1
        state.latest_review = decision
        state.save()
        kind = {ReviewAction.SEND_BACK: AuditKind.SEND_BACK, ReviewAction.EXCLUDE: AuditKind.EXCLUDE}.get(
            action, AuditKind.REVIEW)
        audit_record(
            project=project, kind=kind, actor=actor, image=image,
            summary=_summary(action, image, decision, approved),
            reason=comment or reason,
            links={"review_decision": decision.pk, "qa_run": run.pk if run else None,
                   "gate_decision": gate.pk if gate else None,
                   "approved_mask": approved.pk if approved else None,
                   "sha256": approved.sha256 if approved else None,
                   "assignment": assignment.pk if assignment else None,
                   "annotation": decision.annotation_id, "cells": decision.cells},
        )
    return decision


def _summary(action, image, decision, approved) -> str:
    text = f"image {image.pk}: {action}"
    if approved is not None:
        text += f" -> approved mask {approved.pk} ({approved.n_cells} cells)"
    if decision.target_annotator_id:
        text += f" ({decision.target_annotator.username})"
    return text


def _reopen(*, image: Image, annotator, comment: str) -> Assignment:
    """Give the annotator's submitted assignment back to them, with the reviewer's comment."""
    assignment = Assignment.objects.select_for_update().filter(image=image, annotator=annotator).first()
    if assignment is None or assignment.status != AssignmentStatus.SUBMITTED:
        raise InvalidInput(
            f"{annotator.username} has no submitted annotation of image {image.pk} to send back",
            field="annotator",
        )
    assignment.status = AssignmentStatus.PENDING
    assignment.comment = comment
    assignment.priority = 2
    assignment.lease_expires_at = None
    assignment.save(update_fields=["status", "comment", "priority", "lease_expires_at", "updated_at"])
    return assignment
