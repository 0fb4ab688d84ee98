"""Tables of the training app: training runs and the registry of model versions.

A :class:`TrainingRun` is the request and the live record of one fine-tune (status,
per-epoch losses, heartbeat of the worker holding it, checkpoint in storage); a
:class:`ModelVersion` is what a successful run registers, with its lineage (snapshot
content hash, code version, backbone, hyper-parameters, metrics, parent model). A model
version never changes once written.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotation.enums import choices
from training.enums import Backbone, RunStatus

USER = settings.AUTH_USER_MODEL


class ModelVersion(models.Model):
    """A registered, immutable model: weights in storage plus everything that made them."""

    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="model_versions")
    name = models.SlugField(max_length=100)
    version = models.PositiveIntegerField()
    backbone = models.CharField(max_length=20, choices=choices(Backbone))
    weights = models.CharField(max_length=500, help_text="name of the weights file in default storage")
    weights_sha256 = models.CharField(max_length=64)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    snapshot = models.ForeignKey("datasets.DatasetSnapshot", null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="model_versions")
    snapshot_content_hash = models.CharField(max_length=64, blank=True)
    code_version = models.CharField(max_length=100)
    hyperparameters = models.JSONField(default=dict)
    # Backbone options (channels, nbase, diam_mean, ...) and facts from training.
    options = models.JSONField(default=dict)
    # training.evaluate.evaluate() output plus per-group pooled scores; {} when not evaluated.
    metrics = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project_id", "name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name", "version"], name="model_version_unique"),
            models.CheckConstraint(condition=Q(backbone__in=[b.value for b in Backbone]),
                                   name="model_version_backbone_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version} ({self.backbone})"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValueError(f"model version {self.pk} is immutable; register a new version instead")
        super().save(*args, **kwargs)


class TrainingRun(models.Model):
    """One fine-tune of a backbone on a snapshot's train split, evaluated on its test split."""

    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="training_runs")
    name = models.SlugField(max_length=100, help_text="the model name the run registers under")
    snapshot = models.ForeignKey("datasets.DatasetSnapshot", on_delete=models.PROTECT, related_name="training_runs")
    train_split = models.CharField(max_length=10, default="train")
    val_split = models.CharField(max_length=10, blank=True, default="val")
    test_split = models.CharField(max_length=10, blank=True, default="test")
    backbone = models.CharField(max_length=20, choices=choices(Backbone))
    base_model = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="runs_based_on")
    # An uploaded weights file in default storage (blank: base_model or random initialisation).
    base_weights = models.CharField(max_length=500, blank=True)
    hyperparameters = models.JSONField(default=dict)
    options = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=20, choices=choices(RunStatus), default=RunStatus.QUEUED)
    cancel_requested = models.BooleanField(default=False)
    epochs_done = models.PositiveIntegerField(default=0)
    epochs_total = models.PositiveIntegerField(default=0)
    train_loss = models.JSONField(default=list, blank=True)
    val_loss = models.JSONField(default=list, blank=True)
    phase = models.CharField(max_length=40, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    # Storage name of the last resumable checkpoint ("" until the first one is written).
    checkpoint = models.CharField(max_length=500, blank=True)
    checkpoint_epoch = models.PositiveIntegerField(default=0)
    attempts = models.PositiveIntegerField(default=0)
    resumed_from_epoch = models.JSONField(default=list, blank=True)
    # The attempt holding the run: its token, worker name and last sign of life.
    lease_token = models.CharField(max_length=64, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    device = models.CharField(max_length=20, blank=True)
    train_seconds = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)
    model_version = models.OneToOneField(ModelVersion, null=True, blank=True, on_delete=models.SET_NULL,
                                         related_name="run")
    created_by = models.ForeignKey(USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=[s.value for s in RunStatus]),
                                   name="training_run_status_valid"),
            models.CheckConstraint(condition=Q(backbone__in=[b.value for b in Backbone]),
                                   name="training_run_backbone_valid"),
        ]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="training_run_status_beat")]

    def __str__(self) -> str:
        return f"training run {self.pk} {self.backbone} on {self.snapshot_id} ({self.status})"


__all__ = ["ModelVersion", "TrainingRun"]
