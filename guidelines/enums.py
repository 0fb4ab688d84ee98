"""Guideline vocabularies, Django-free so the rule checker and benchmarks can share them."""

from __future__ import annotations

from enum import StrEnum


class GuidelineStatus(StrEnum):
    """Life cycle of a guideline version: drafts are edited, published ones never change."""

    DRAFT = "draft"
    PUBLISHED = "published"
    RETIRED = "retired"


#: Celery task name (and Job kind) of the re-check run after a version is published.
RECHECK_TASK = "guidelines.recheck"
