"""Vocabularies of the training app, Django-free so pure modules and benches may use them."""

from __future__ import annotations

from enum import StrEnum


class Backbone(StrEnum):
    CELLPOSE = "cellpose"
    SAM = "sam"


class RunStatus(StrEnum):
    """Life cycle of a training run."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


#: Run states after which nothing changes any more.
RUN_FINISHED = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED})
