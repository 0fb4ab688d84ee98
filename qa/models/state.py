"""Where each image stands in the QA workflow (derived from the events; the queue reads it)."""

from __future__ import annotations

from django.db import models

from annotation.enums import choices
from qa.enums import ImageQaStatus
from qa.models.base import valid_choice
from qa.models.review import ApprovedMask, GateDecision, ReviewDecision
from qa.models.runs import QaRun


class ImageQaState(models.Model):
    """Where one image stands (derived from the events above; the review queue reads it)."""

    image = models.OneToOneField("annotation.Image", on_delete=models.CASCADE, related_name="qa_state")
    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=20, choices=choices(ImageQaStatus), default=ImageQaStatus.AWAITING)
    latest_run = models.ForeignKey(QaRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    latest_gate = models.ForeignKey(GateDecision, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    latest_review = models.ForeignKey(ReviewDecision, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    approved_mask = models.ForeignKey(ApprovedMask, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The run whose scores the annotators' reliability statistics currently count.
    counted_run = models.ForeignKey(QaRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    agreement = models.FloatField(null=True, blank=True)
    n_flags = models.PositiveIntegerField(default=0)
    n_disputed = models.PositiveIntegerField(default=0)
    extra_requested = models.PositiveSmallIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["image_id"]
        constraints = [
            models.CheckConstraint(condition=valid_choice("status", ImageQaStatus), name="image_qa_status_valid"),
        ]
        indexes = [models.Index(fields=["project", "status"], name="image_qa_state_queue")]

    def __str__(self) -> str:
        return f"image {self.image_id}: {self.status}"
