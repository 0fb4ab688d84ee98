"""Gold truth and annotator qualification on gold images (and requalification)."""

from __future__ import annotations

from django.db import models

from annotation.enums import choices
from qa.enums import GoldSource, QualificationStatus
from qa.models.base import USER, ImmutableModel, valid_choice
from qa.models.review import ApprovedMask


class GoldTruth(ImmutableModel):
    """The truth mask of a gold image; the latest row per image is current."""

    image = models.ForeignKey("annotation.Image", on_delete=models.CASCADE, related_name="gold_truths")
    file = models.FileField(upload_to="qa/", max_length=500)
    sha256 = models.CharField(max_length=64)
    n_cells = models.PositiveIntegerField()
    source = models.CharField(max_length=20, choices=choices(GoldSource))
    approved_mask = models.ForeignKey(
        ApprovedMask, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    set_by = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["image_id", "-id"]
        constraints = [
            models.CheckConstraint(condition=valid_choice("source", GoldSource), name="gold_source_valid"),
        ]

    def __str__(self) -> str:
        return f"gold truth {self.pk} of image {self.image_id}"


class GuidelineRequalification(models.Model):
    """A guideline version after whose publication annotators must qualify again."""

    guideline_version = models.OneToOneField(
        "guidelines.GuidelineVersion", on_delete=models.CASCADE, related_name="requalification"
    )
    marked_by = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"requalification after guideline {self.guideline_version_id}"


class Qualification(models.Model):
    """An annotator's qualification state in a project (gold images passed so far)."""

    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="+")
    annotator = models.ForeignKey(USER, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=20, choices=choices(QualificationStatus))
    guideline_version = models.ForeignKey(
        "guidelines.GuidelineVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    passed = models.PositiveIntegerField(default=0)
    attempted = models.PositiveIntegerField(default=0)
    # Annotation ids judged for this qualification, so a run seen twice counts once.
    judged = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["project_id", "annotator_id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "annotator"], name="qualification_unique_member"),
            models.CheckConstraint(condition=valid_choice("status", QualificationStatus), name="qualification_status_valid"),
        ]

    def __str__(self) -> str:
        return f"qualification of {self.annotator_id} in {self.project_id}: {self.status}"
