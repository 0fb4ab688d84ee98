"""Annotator reliability: sufficient statistics per annotator and their history."""

from __future__ import annotations

from django.db import models

from qa.models.base import USER, ImmutableModel
from qa.models.runs import QaRun

#: Upper edges (s) of the annotation-time histogram bins (log-spaced 1 s .. 1 day, then inf).
TIME_BIN_EDGES = tuple(round(2 ** (i / 2), 3) for i in range(0, 34)) + (float("inf"),)


class AnnotatorReliability(models.Model):
    """Sufficient statistics of one annotator in one project, updated from each QA run.

    Sums over the annotator's annotations counted (the current QA run of every image);
    the estimates are ratios of sums, so adding one image and removing a superseded run
    are O(1). A full recomputation rebuilds them from the stored runs.
    """

    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="+")
    annotator = models.ForeignKey(USER, on_delete=models.CASCADE, related_name="+")
    n_annotations = models.PositiveIntegerField(default=0)
    sum_quality = models.FloatField(default=0.0)
    sum_recall = models.FloatField(default=0.0)
    sum_implausible = models.FloatField(default=0.0)
    sum_shift = models.FloatField(default=0.0)
    n_gold = models.PositiveIntegerField(default=0)
    sum_gold_f1 = models.FloatField(default=0.0)
    sum_gold_quality = models.FloatField(default=0.0)
    # Outline bias against gold truth: sum over gold images of (matched cells x that image's
    # median offset), and the number of matched cells; their ratio anchors the consensus.
    sum_gold_outline = models.FloatField(default=0.0)
    n_gold_outline_cells = models.PositiveIntegerField(default=0)
    # Counts per bin of TIME_BIN_EDGES of the annotation times reported.
    time_histogram = models.JSONField(default=list)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["project_id", "annotator_id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "annotator"], name="reliability_unique_annotator"),
        ]

    def __str__(self) -> str:
        return f"reliability of {self.annotator_id} in {self.project_id}"


class AnnotatorReliabilityPoint(ImmutableModel):
    """One point of an annotator's reliability history (after a QA run or a recomputation)."""

    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="+")
    annotator = models.ForeignKey(USER, on_delete=models.CASCADE, related_name="+")
    qa_run = models.ForeignKey(QaRun, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    quality = models.FloatField(null=True)
    sensitivity = models.FloatField(null=True)
    false_positive_rate = models.FloatField(null=True)
    boundary_bias = models.FloatField(null=True)
    gold_score = models.FloatField(null=True)
    n_annotations = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project_id", "annotator_id", "id"]
        indexes = [models.Index(fields=["project", "annotator", "id"], name="reliability_history")]

    def __str__(self) -> str:
        return f"reliability point {self.pk} of {self.annotator_id}"
