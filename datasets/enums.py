"""Vocabularies of the datasets app, shared by models, services, the API and the pure core.

Django-free on purpose (like :mod:`annotation.enums`): each enum is a ``StrEnum`` whose
values are what the database stores and what the API returns.
"""

from __future__ import annotations

from enum import StrEnum


class Split(StrEnum):
    """The part of a snapshot an item belongs to."""

    TRAIN = "train"
    VAL = "val"
    TEST = "test"


#: Splits in the order they are reported and written.
SPLITS = (Split.TRAIN, Split.VAL, Split.TEST)


class GroupBy(StrEnum):
    """Which acquisition unit must never be in two splits.

    ``well`` and ``site`` are nested in their plate (well A01 of two plates are two
    groups); ``image`` puts no constraint beyond one image per group.
    """

    PLATE = "plate"
    WELL = "well"
    SITE = "site"
    BATCH = "batch"
    IMAGE = "image"


class StratifyBy(StrEnum):
    """Image metadata whose proportions each split should keep."""

    MODALITY = "modality"
    STAIN = "stain"


class ExportFormat(StrEnum):
    """Training formats an export writes."""

    CELLPOSE = "cellpose"
    COCO = "coco"
    OME_TIFF = "ome-tiff"
    OME_ZARR = "ome-zarr"


class ExportStatus(StrEnum):
    """Life cycle of an export (its job carries the progress)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


def choices(enum: type[StrEnum]) -> list[tuple[str, str]]:
    """``(value, label)`` pairs for a Django or DRF ``choices=`` argument."""
    return [(member.value, member.value) for member in enum]


#: Named once in the OpenAPI schema (``ENUM_NAME_OVERRIDES``): jobs and exports share these
#: states, and every API that names a split uses the same three.
STATUS_CHOICES = [(s.value, s.value) for s in ExportStatus]
SPLIT_CHOICES = [(s.value, s.value) for s in Split]
