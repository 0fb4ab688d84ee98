"""Guideline versions and acknowledgements.

A published version is immutable (services refuse the write, a database trigger from
migration ``0002`` refuses an UPDATE of its content); the only change it may undergo is
published -> retired when a newer version is published.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotation.enums import choices
from guidelines.enums import GuidelineStatus


class GuidelineVersion(models.Model):
    """One numbered version of a project's labelling guideline."""

    project = models.ForeignKey(
        "annotation.Project", on_delete=models.CASCADE, related_name="guideline_versions"
    )
    version = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    rules = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=20, choices=choices(GuidelineStatus), default=GuidelineStatus.DRAFT
    )
    changelog = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["project_id", "version"]
        constraints = [
            models.UniqueConstraint(fields=["project", "version"], name="guideline_unique_version"),
            models.UniqueConstraint(
                fields=["project"],
                condition=Q(status=GuidelineStatus.PUBLISHED),
                name="guideline_one_published_per_project",
            ),
            models.CheckConstraint(condition=Q(version__gte=1), name="guideline_version_positive"),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in GuidelineStatus]),
                name="guideline_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(status=GuidelineStatus.DRAFT) | Q(published_at__isnull=False),
                name="guideline_published_has_date",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project_id} v{self.version} ({self.status})"


class Acknowledgement(models.Model):
    """A user's statement that they read a published guideline version."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="guideline_acknowledgements"
    )
    guideline_version = models.ForeignKey(
        GuidelineVersion, on_delete=models.CASCADE, related_name="acknowledgements"
    )
    acknowledged_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["guideline_version_id", "user_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "guideline_version"], name="acknowledgement_unique_user_version"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} read {self.guideline_version_id}"


class RuleRecheck(models.Model):
    """What a newer guideline version's rules say about an annotation made under an older one.

    Written by the re-check job that runs when a version is published; one row per
    (checked version, annotation), replaced when the job runs again.
    """

    guideline_version = models.ForeignKey(
        GuidelineVersion, on_delete=models.CASCADE, related_name="rechecks"
    )
    annotation = models.ForeignKey(
        "annotation.Annotation", on_delete=models.CASCADE, related_name="rule_rechecks"
    )
    job = models.ForeignKey(
        "annotation.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Violations as guidelines.rules.Violation.as_dict() records, in rule order.
    violations = models.JSONField(default=list, blank=True)
    flagged = models.BooleanField(default=False)
    blocking_count = models.PositiveIntegerField(default=0)
    warning_count = models.PositiveIntegerField(default=0)
    # Set when the mask could not be read; the annotation was then not checked.
    error = models.CharField(max_length=500, blank=True, default="")
    checked_at = models.DateTimeField()

    class Meta:
        ordering = ["guideline_version_id", "annotation_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["guideline_version", "annotation"], name="rule_recheck_unique_annotation"
            ),
        ]
        indexes = [
            models.Index(fields=["guideline_version", "flagged"], name="rule_recheck_flagged"),
        ]

    def __str__(self) -> str:
        return f"recheck of annotation {self.annotation_id} under {self.guideline_version_id}"
