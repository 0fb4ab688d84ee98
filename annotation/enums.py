"""Vocabularies shared by the annotation models, services and the pure core.

Django-free on purpose: pure modules and benchmarks may import these without pulling
in the ORM. Each enum is a ``StrEnum`` whose values are what the database stores.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """A member's role within one project."""

    ANNOTATOR = "annotator"
    QA_LEAD = "qa_lead"
    ML_ENGINEER = "ml_engineer"
    MANAGER = "manager"


#: Roles that may read everything in a project (all assignments, all masks).
OVERSIGHT_ROLES = frozenset({Role.QA_LEAD, Role.ML_ENGINEER, Role.MANAGER})


class AssignmentStatus(StrEnum):
    """Life cycle of one (image, annotator) task."""

    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    SUBMITTED = "submitted"
    SKIPPED = "skipped"
    EXPIRED = "expired"


class AnnotationSource(StrEnum):
    """Where a submitted mask came from."""

    MANUAL = "manual"
    IMPORTED = "imported"
    MODEL_ASSISTED = "model_assisted"


class JobStatus(StrEnum):
    """State of an asynchronous job the UI polls."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


#: Job states after which nothing changes any more.
JOB_FINISHED = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED})


def choices(enum: type[StrEnum]) -> list[tuple[str, str]]:
    """``(value, label)`` pairs for a Django ``choices=`` argument."""
    return [(member.value, member.value.replace("_", " ")) for member in enum]
