"""A trained model as a non-human QA reference: the project's setting and each run's result.

The model is never an annotator: its prediction takes no part in the consensus, the
pairwise agreement, the annotation scores or reliability. It is compared with the
consensus afterwards (:func:`qa.noise.flag_model_disagreement`) so reviewers see where a
model trained on approved data disagrees.
"""

from __future__ import annotations

from django.db import models

from qa.models.base import ImmutableModel
from qa.models.runs import QaRun


class QaSettings(models.Model):
    """QA settings a project keeps in the qa app (the others are columns of the project)."""

    project = models.OneToOneField("annotation.Project", on_delete=models.CASCADE, related_name="qa_settings")
    # Every QA run also compares the consensus with this model's prediction (None: no model).
    reference_model = models.ForeignKey(
        "training.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"QA settings of project {self.project_id}"


class QaModelReference(ImmutableModel):
    """One model's prediction of a QA run's image, compared with the run's consensus.

    ``error`` is set (and the rest empty) when the model could not predict the image; the
    QA run itself stands either way.
    """

    qa_run = models.OneToOneField(QaRun, on_delete=models.CASCADE, related_name="model_reference")
    model_version = models.ForeignKey("training.ModelVersion", on_delete=models.PROTECT, related_name="+")
    prediction = models.FileField(upload_to="qa/", max_length=500, blank=True)
    prediction_sha256 = models.CharField(max_length=64, blank=True)
    n_cells = models.PositiveIntegerField(default=0)
    iou_threshold = models.FloatField()
    # [{"kind", "score", "cell" (first consensus id or null), "consensus_cells", "predicted_cells"}]
    flags = models.JSONField(default=list)
    n_flags = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"model {self.model_version_id} as reference of QA run {self.qa_run_id}"
