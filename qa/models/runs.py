"""QA runs: one immutable QA of one image, and the annotation revisions it used."""

from __future__ import annotations

from django.db import models

from annotation.enums import choices
from qa.enums import QaRunStatus, QaTrigger
from qa.models.base import USER, ImmutableModel, valid_choice


class QaRun(ImmutableModel):
    """One QA of one image over a fixed set of annotation revisions; immutable."""

    image = models.ForeignKey("annotation.Image", on_delete=models.CASCADE, related_name="qa_runs")
    status = models.CharField(max_length=20, choices=choices(QaRunStatus))
    trigger = models.CharField(max_length=20, choices=choices(QaTrigger))
    requested_by = models.ForeignKey(USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    algorithm_version = models.CharField(max_length=50)
    params = models.JSONField(default=dict)
    # Reliability weight used per annotator: {"<user name>": weight}.
    weights = models.JSONField(default=dict)
    consensus = models.FileField(upload_to="qa/", max_length=500)
    consensus_sha256 = models.CharField(max_length=64)
    n_cells = models.PositiveIntegerField()
    # [{"id", "support", "confidence", "agreement", "members": {"<annotation id>": label}}]
    cells = models.JSONField(default=list)
    # {"annotators": [names], "annotations": [ids], "f1": [[..]], "mean_iou": [[..]], "pq": [[..]]}
    agreement = models.JSONField(default=dict)
    mean_agreement = models.FloatField(null=True, blank=True)
    # [{"annotation", "annotator", "cell" (label id or null), "kind", "score", "others"}]
    flags = models.JSONField(default=list)
    n_flags = models.PositiveIntegerField(default=0)
    n_disputed = models.PositiveIntegerField(default=0)
    # [{"annotation", "annotator", "guideline_version", "rule", "severity", "cells", "message"}]
    violations = models.JSONField(default=list)
    n_violations = models.PositiveIntegerField(default=0)
    # None unless the image is gold: {"truth": id, "scores": [{annotation, annotator, f1, ...}]}
    gold = models.JSONField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["image_id", "-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=valid_choice("status", QaRunStatus), name="qa_run_status_valid"),
            models.CheckConstraint(condition=valid_choice("trigger", QaTrigger), name="qa_run_trigger_valid"),
        ]
        indexes = [models.Index(fields=["image", "-id"], name="qa_run_image_latest")]

    def __str__(self) -> str:
        return f"QA run {self.pk} of image {self.image_id}"


class QaRunAnnotation(ImmutableModel):
    """One annotation revision a QA run used, with its scores (the reliability statistics)."""

    qa_run = models.ForeignKey(QaRun, on_delete=models.CASCADE, related_name="members")
    annotation = models.ForeignKey("annotation.Annotation", on_delete=models.PROTECT, related_name="qa_uses")
    annotator = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    revision = models.PositiveIntegerField()
    position = models.PositiveSmallIntegerField()
    weight = models.FloatField()
    # Leave-one-out scores from qa.noise (null with a single annotation).
    quality = models.FloatField(null=True, blank=True)
    relative_quality = models.FloatField(null=True, blank=True)
    f1 = models.FloatField(null=True, blank=True)
    mean_iou = models.FloatField(null=True, blank=True)
    recall_sure = models.FloatField(null=True, blank=True)
    plausible = models.FloatField(null=True, blank=True)
    shift_px = models.FloatField(null=True, blank=True)
    # How far the consensus moved this annotation back as a whole before fusing (px, y and
    # x): a mis-registered upload (qa.consensus.alignment). 0, 0 for nearly every annotation.
    moved_y = models.SmallIntegerField(default=0)
    moved_x = models.SmallIntegerField(default=0)
    n_cells = models.PositiveIntegerField(default=0)
    missed = models.PositiveIntegerField(default=0)
    spurious = models.PositiveIntegerField(default=0)
    merged = models.PositiveIntegerField(default=0)
    split = models.PositiveIntegerField(default=0)
    boundary = models.PositiveIntegerField(default=0)
    # The outline offset the consensus corrected this annotation by (px, + = drawn larger):
    # relative to the others, at the level the annotators' gold biases set when known.
    consensus_bias = models.FloatField(null=True, blank=True)
    # Against the gold truth (gold images only).
    gold_f1 = models.FloatField(null=True, blank=True)
    gold_mean_iou = models.FloatField(null=True, blank=True)
    gold_quality = models.FloatField(null=True, blank=True)
    # Outline offset against the truth (px, + = drawn larger): the median over the cells
    # matched to a true cell, and how many there were (qa.consensus.gold_outline_offsets).
    gold_outline_bias = models.FloatField(null=True, blank=True)
    gold_outline_cells = models.PositiveIntegerField(default=0)
    time_spent_s = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["qa_run_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["qa_run", "annotation"], name="qa_run_annotation_unique"),
            models.UniqueConstraint(fields=["qa_run", "position"], name="qa_run_position_unique"),
        ]

    def __str__(self) -> str:
        return f"annotation {self.annotation_id} in QA run {self.qa_run_id}"
