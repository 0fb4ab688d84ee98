"""Decisions on a QA run: the gate decision, a reviewer's action, the approved mask."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from annotation.enums import choices
from qa.enums import (
    ApprovedMaskSource,
    GateOutcome,
    ReviewAction,
)
from qa.models.base import USER, ImmutableModel, valid_choice
from qa.models.policies import GatingPolicy
from qa.models.runs import QaRun


class GateDecision(ImmutableModel):
    """What a gating policy made of one QA run: per image and per cell, with reasons."""

    qa_run = models.ForeignKey(QaRun, on_delete=models.CASCADE, related_name="gate_decisions")
    image = models.ForeignKey("annotation.Image", on_delete=models.CASCADE, related_name="gate_decisions")
    policy = models.ForeignKey(GatingPolicy, on_delete=models.PROTECT, related_name="decisions")
    outcome = models.CharField(max_length=20, choices=choices(GateOutcome))
    reasons = models.JSONField(default=list)
    # [{"cell": id, "outcome": keep/drop/ignore/review, "reasons": [...]}] for cells not kept.
    cells = models.JSONField(default=list)
    # The numbers the decision was made on (agreement, flagged share, ...).
    metrics = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["image_id", "-id"]
        constraints = [
            models.CheckConstraint(condition=valid_choice("outcome", GateOutcome), name="gate_outcome_valid"),
        ]
        indexes = [models.Index(fields=["image", "-id"], name="gate_decision_image_latest")]

    def __str__(self) -> str:
        return f"gate {self.pk} {self.outcome} (image {self.image_id})"


class ReviewDecision(ImmutableModel):
    """One action of a QA lead or manager on an image; names its approved mask, if any."""

    image = models.ForeignKey("annotation.Image", on_delete=models.CASCADE, related_name="review_decisions")
    action = models.CharField(max_length=30, choices=choices(ReviewAction))
    reviewer = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="qa_reviews")
    qa_run = models.ForeignKey(QaRun, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    gate_decision = models.ForeignKey(
        GateDecision, null=True, blank=True, on_delete=models.PROTECT, related_name="reviews"
    )
    annotation = models.ForeignKey(
        "annotation.Annotation", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    cells = models.JSONField(default=list, blank=True)
    target_annotator = models.ForeignKey(USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    assignment = models.ForeignKey(
        "annotation.Assignment", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["image_id", "-id"]
        constraints = [
            models.CheckConstraint(condition=valid_choice("action", ReviewAction), name="review_action_valid"),
        ]

    def __str__(self) -> str:
        return f"review {self.pk} {self.action} (image {self.image_id})"


class ApprovedMask(ImmutableModel):
    """A mask approved for training: what datasets take. Never edited; a new one supersedes it.

    Exactly one of ``review_decision`` and ``gate_decision`` is the decision that made it.
    ``ignore_cells`` lists label ids training should ignore (neither cell nor background).
    """

    image = models.ForeignKey("annotation.Image", on_delete=models.CASCADE, related_name="approved_masks")
    file = models.FileField(upload_to="qa/", max_length=500)
    sha256 = models.CharField(max_length=64)
    height = models.PositiveIntegerField()
    width = models.PositiveIntegerField()
    n_cells = models.PositiveIntegerField()
    source = models.CharField(max_length=20, choices=choices(ApprovedMaskSource))
    ignore_cells = models.JSONField(default=list, blank=True)
    qa_run = models.ForeignKey(QaRun, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    annotation = models.ForeignKey(
        "annotation.Annotation", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    review_decision = models.OneToOneField(
        ReviewDecision, null=True, blank=True, on_delete=models.PROTECT, related_name="approved_mask"
    )
    gate_decision = models.OneToOneField(
        GateDecision, null=True, blank=True, on_delete=models.PROTECT, related_name="approved_mask"
    )
    policy = models.ForeignKey(GatingPolicy, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["image_id", "-id"]
        constraints = [
            models.CheckConstraint(condition=valid_choice("source", ApprovedMaskSource), name="approved_source_valid"),
            models.CheckConstraint(
                condition=Q(review_decision__isnull=True, gate_decision__isnull=False)
                | Q(review_decision__isnull=False, gate_decision__isnull=True),
                name="approved_mask_one_decision",
            ),
            models.CheckConstraint(
                condition=~Q(source=ApprovedMaskSource.ANNOTATION) | Q(annotation__isnull=False),
                name="approved_mask_annotation_named",
            ),
        ]

    def __str__(self) -> str:
        return f"approved mask {self.pk} of image {self.image_id} ({self.source})"

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)
