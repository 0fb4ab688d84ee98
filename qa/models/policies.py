"""Gating policies: versioned per project, draft -> published (immutable) -> retired."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from annotation.enums import choices
from qa.enums import FlaggedCellAction, PolicyStatus
from qa.models.base import USER, valid_choice


class GatingPolicy(models.Model):
    """One version of a project's gating policy: thresholds and what happens to flagged cells.

    Drafts are edited; a published version never changes (the service refuses the write),
    publishing retires the previous one and re-gates the project as a job.
    """

    project = models.ForeignKey(
        "annotation.Project", on_delete=models.CASCADE, related_name="gating_policies"
    )
    version = models.PositiveIntegerField()
    status = models.CharField(
        max_length=20, choices=choices(PolicyStatus), default=PolicyStatus.DRAFT
    )
    title = models.CharField(max_length=200, blank=True)
    changelog = models.TextField(blank=True)
    # Image: mean pairwise instance F1 at IoU 0.5 between annotators.
    min_agreement = models.FloatField(default=0.75)
    reject_agreement = models.FloatField(default=0.3)
    # Cell: consensus cells below either are "doubtful" and handled by flagged_cells.
    min_cell_support = models.PositiveSmallIntegerField(default=2)
    min_cell_confidence = models.FloatField(default=0.5)
    # Annotation: every annotation's leave-one-out quality (qa.noise) must reach this.
    min_annotation_quality = models.FloatField(default=0.5)
    # Share of consensus cells that carry a flag or are doubtful.
    max_flagged_share = models.FloatField(default=0.2)
    # Gold images: every annotation's F1 at 0.5 against the truth.
    min_gold_f1 = models.FloatField(default=0.7)
    flagged_cells = models.CharField(
        max_length=10, choices=choices(FlaggedCellAction), default=FlaggedCellAction.IGNORE
    )
    # Adaptive redundancy: one more annotator when agreement is below this or more cells
    # than this are disputed (drawn by some but not a majority), up to the project's k_max.
    redundancy_agreement = models.FloatField(default=0.7)
    redundancy_disputed_cells = models.PositiveIntegerField(default=10)
    created_by = models.ForeignKey(USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    published_by = models.ForeignKey(USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    published_at = models.DateTimeField(null=True, blank=True)

    THRESHOLDS = (
        "min_agreement", "reject_agreement", "min_cell_support", "min_cell_confidence",
        "min_annotation_quality", "max_flagged_share", "min_gold_f1", "flagged_cells",
        "redundancy_agreement", "redundancy_disputed_cells",
    )

    class Meta:
        ordering = ["project_id", "version"]
        constraints = [
            models.UniqueConstraint(fields=["project", "version"], name="gating_policy_unique_version"),
            models.UniqueConstraint(
                fields=["project"], condition=Q(status=PolicyStatus.PUBLISHED),
                name="gating_policy_one_published_per_project",
            ),
            models.CheckConstraint(condition=valid_choice("status", PolicyStatus), name="gating_policy_status_valid"),
            models.CheckConstraint(
                condition=valid_choice("flagged_cells", FlaggedCellAction), name="gating_policy_flagged_valid"
            ),
            models.CheckConstraint(
                condition=Q(status=PolicyStatus.DRAFT) | Q(published_at__isnull=False),
                name="gating_policy_published_has_date",
            ),
        ]

    def __str__(self) -> str:
        return f"gating policy {self.project_id} v{self.version} ({self.status})"

    def thresholds(self) -> dict:
        return {name: getattr(self, name) for name in self.THRESHOLDS}
