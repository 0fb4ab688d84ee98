"""DRF serializers of the training API: parse requests, render rows. No logic."""

from __future__ import annotations

from rest_framework import serializers

from annotation.enums import choices
from annotation.serializers import FilterSerializer, ImageFilter, StrictSerializer
from datasets.enums import Split
from training.enums import Backbone, RunStatus
from training.models import ModelVersion, TrainingRun


class RunCreateInput(StrictSerializer):
    name = serializers.SlugField(max_length=100, help_text="model name the run registers under")
    snapshot = serializers.IntegerField(min_value=1)
    backbone = serializers.ChoiceField(choices=choices(Backbone), default=Backbone.CELLPOSE.value)
    base_model = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None,
                                          help_text="a registered model version to start from")
    base_weights = serializers.CharField(required=False, allow_blank=True, default="", max_length=500,
                                         help_text="storage name of an uploaded weights file")
    hyperparameters = serializers.DictField(required=False, default=dict)
    options = serializers.DictField(required=False, default=dict)
    train_split = serializers.ChoiceField(choices=choices(Split), default=Split.TRAIN.value)
    val_split = serializers.ChoiceField(choices=[("", "none"), *choices(Split)], default=Split.VAL.value)
    test_split = serializers.ChoiceField(choices=[("", "none"), *choices(Split)], default=Split.TEST.value)


class RunFilter(FilterSerializer):
    status = serializers.ChoiceField(choices=choices(RunStatus), required=False)


class ModelFilter(FilterSerializer):
    name = serializers.SlugField(required=False)
    backbone = serializers.ChoiceField(choices=choices(Backbone), required=False)


class RunOutput(serializers.ModelSerializer):
    progress = serializers.SerializerMethodField()
    snapshot_content_hash = serializers.CharField(source="snapshot.content_hash", read_only=True)

    class Meta:
        model = TrainingRun
        fields = [
            "id", "name", "snapshot", "snapshot_content_hash", "train_split", "val_split", "test_split",
            "backbone", "base_model", "base_weights", "hyperparameters", "options", "status",
            "cancel_requested", "phase", "progress", "epochs_done", "epochs_total", "train_loss",
            "val_loss", "metrics", "checkpoint_epoch", "attempts", "resumed_from_epoch", "worker",
            "heartbeat_at", "device", "train_seconds", "error", "model_version", "created_at",
            "started_at", "finished_at",
        ]
        read_only_fields = fields

    def get_progress(self, run) -> float:
        return round(run.epochs_done / run.epochs_total, 4) if run.epochs_total else 0.0


class ModelOutput(serializers.ModelSerializer):
    run = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = [
            "id", "name", "version", "backbone", "weights_sha256", "parent", "snapshot",
            "snapshot_content_hash", "code_version", "hyperparameters", "options", "metrics", "run",
            "created_at",
        ]
        read_only_fields = fields

    def get_run(self, model) -> int | None:
        run = getattr(model, "run", None) if hasattr(model, "run") else None
        return run.pk if run is not None else None


class AssistInput(StrictSerializer):
    box = serializers.ListField(child=serializers.FloatField(), min_length=4, max_length=4, required=False,
                                allow_null=True, default=None, help_text="x0, y0, x1, y1 in pixels")
    points = serializers.ListField(child=serializers.ListField(child=serializers.FloatField(), min_length=2,
                                                               max_length=2),
                                   required=False, default=list, max_length=64, help_text="[[x, y], ...]")
    point_labels = serializers.ListField(child=serializers.IntegerField(min_value=0, max_value=1),
                                         required=False, allow_null=True, default=None,
                                         help_text="1 = inside the cell, 0 = outside; default all 1")
    channel = serializers.IntegerField(min_value=0, required=False, allow_null=True, default=None)
    model = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None,
                                     help_text="a registered SAM model version (default: the configured SAM)")


class PredictInput(StrictSerializer):
    images = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False, min_length=1,
                                   max_length=5000, help_text="image ids (or give `filter`)")
    filter = ImageFilter(required=False, help_text="image metadata filter, as for `GET images/`")

    def validate(self, attrs):
        if ("images" in attrs) == ("filter" in attrs):
            raise serializers.ValidationError({"images": ["give either `images` or `filter`"]})
        return attrs


class RankingQuery(FilterSerializer):
    model = serializers.IntegerField(min_value=1, help_text="the model version whose latest ranking to read")


class RankingStartInput(StrictSerializer):
    model = serializers.IntegerField(min_value=1, help_text="the model version that ranks")


class QueueInput(StrictSerializer):
    images = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False, min_length=1,
                                   max_length=5000)
    top = serializers.IntegerField(min_value=1, max_value=5000, required=False,
                                   help_text="queue the top N of the latest ranking by `model`")
    model = serializers.IntegerField(min_value=1, required=False)
    kind = serializers.ChoiceField(choices=[("unlabelled", "unlabelled"), ("labelled", "labelled")],
                                   default="unlabelled")

    def validate(self, attrs):
        if ("images" in attrs) == ("top" in attrs):
            raise serializers.ValidationError({"images": ["give either `images` or `top`"]})
        if "top" in attrs and "model" not in attrs:
            raise serializers.ValidationError({"model": ["`top` needs the `model` whose ranking to use"]})
        return attrs
