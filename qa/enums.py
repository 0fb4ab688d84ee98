"""Vocabularies of the QA workflow, shared by models, services, the API and benchmarks.

Django-free on purpose (like :mod:`annotation.enums`): each enum is a ``StrEnum`` whose
values are what the database stores and what the API returns.
"""

from __future__ import annotations

from enum import StrEnum


class QaTrigger(StrEnum):
    """Why a QA run was made."""

    SUBMISSION = "submission"  # the image reached k submitted annotations
    REVISION = "revision"  # a new revision of an annotation of a QA'd image arrived
    ON_DEMAND = "on_demand"  # a QA lead or manager asked for it
    RECOMPUTE = "recompute"  # a project-wide recomputation


class QaRunStatus(StrEnum):
    """Outcome of a QA run (runs are stored once finished and never change)."""

    COMPLETE = "complete"
    SINGLE = "single"  # only one annotation: no agreement, the consensus is that mask


class GateOutcome(StrEnum):
    """What a gate decision says about an image."""

    APPROVE = "approve"
    NEEDS_REVIEW = "needs_review"
    REJECT = "reject"


class CellOutcome(StrEnum):
    """What a gate decision says about one consensus cell."""

    KEEP = "keep"
    DROP = "drop"
    IGNORE = "ignore"
    REVIEW = "review"


class FlaggedCellAction(StrEnum):
    """What a gating policy does with consensus cells below its cell thresholds."""

    DROP = "drop"  # leave them out of the approved mask
    IGNORE = "ignore"  # keep them, listed in ``ignore_cells`` (training ignores them)
    REVIEW = "review"  # send the image to review


class PolicyStatus(StrEnum):
    """Life cycle of a gating policy version (as for guidelines)."""

    DRAFT = "draft"
    PUBLISHED = "published"
    RETIRED = "retired"


class ReviewAction(StrEnum):
    """What a QA lead did with an image in review."""

    ACCEPT_CONSENSUS = "accept_consensus"
    ACCEPT_ANNOTATION = "accept_annotation"
    ACCEPT_EDITED = "accept_edited"
    DROP_CELLS = "drop_cells"
    SEND_BACK = "send_back"
    REQUEST_ANNOTATOR = "request_annotator"
    EXCLUDE = "exclude"


#: Review actions whose decision names a new approved mask.
APPROVING_ACTIONS = frozenset({
    ReviewAction.ACCEPT_CONSENSUS, ReviewAction.ACCEPT_ANNOTATION,
    ReviewAction.ACCEPT_EDITED, ReviewAction.DROP_CELLS,
})


class ApprovedMaskSource(StrEnum):
    """Where the pixels of an approved mask came from."""

    CONSENSUS = "consensus"
    ANNOTATION = "annotation"
    REVIEWER_UPLOAD = "reviewer_upload"


class ImageQaStatus(StrEnum):
    """Where an image stands in the QA workflow (the current state, derived from events)."""

    AWAITING = "awaiting"  # fewer than k submitted annotations
    NEEDS_REVIEW = "needs_review"
    APPROVED = "approved"
    REJECTED = "rejected"
    SENT_BACK = "sent_back"  # waiting for an annotator's new revision
    MORE_ANNOTATORS = "more_annotators"  # waiting for an extra annotator
    EXCLUDED = "excluded"


class GoldSource(StrEnum):
    """How a gold truth mask was set."""

    UPLOAD = "upload"
    APPROVED_MASK = "approved_mask"


class QualificationStatus(StrEnum):
    """An annotator's qualification in a project."""

    NOT_REQUIRED = "not_required"
    PENDING = "pending"  # still has gold images to pass
    QUALIFIED = "qualified"
    FAILED = "failed"


class AuditKind(StrEnum):
    """What a QA audit row records."""

    POLICY_CREATE = "policy_create"
    POLICY_PUBLISH = "policy_publish"
    GATE = "gate"
    REVIEW = "review"
    SEND_BACK = "send_back"
    EXCLUDE = "exclude"
    TRUTH_SET = "truth_set"
    QUALIFICATION = "qualification"
    REDUNDANCY = "redundancy"
    SETTINGS = "settings"
    RECOMPUTE = "recompute"
