"""DRF serializers of the datasets API: parse requests, render rows. No logic."""

from __future__ import annotations

from rest_framework import serializers

from annotation.serializers import FilterSerializer, JobOutput, StrictSerializer
from datasets.enums import ExportFormat, GroupBy, StratifyBy, choices
from datasets.models import DatasetExport, DatasetSnapshot


class FractionsInput(StrictSerializer):
    train = serializers.FloatField(min_value=0, max_value=1)
    val = serializers.FloatField(min_value=0, max_value=1)
    test = serializers.FloatField(min_value=0, max_value=1)


class SnapshotCreateInput(StrictSerializer):
    name = serializers.SlugField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    policy_version = serializers.IntegerField(required=False, allow_null=True, min_value=1, default=None,
                                              help_text="Gating policy version; default: current approvals")
    include_gold = serializers.BooleanField(required=False, default=True)
    filters = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField(allow_blank=True, max_length=100),
                                    allow_empty=False),
        required=False, default=dict,
        help_text="Image metadata filters, e.g. {\"modality\": [\"fluorescence\"], \"plate\": [\"P1\"]}",
    )
    group_by = serializers.ChoiceField(choices=choices(GroupBy), required=False, default=GroupBy.PLATE.value)
    stratify_by = serializers.ChoiceField(choices=choices(StratifyBy), required=False, allow_null=True,
                                          default=None)
    fractions = FractionsInput(required=False)
    seed = serializers.IntegerField(required=False, min_value=0, max_value=2**31 - 1, default=0)
    licence = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")
    citation = serializers.CharField(required=False, allow_blank=True, default="")


class SnapshotUpdateInput(StrictSerializer):
    licence = serializers.CharField(required=False, allow_blank=True, max_length=200)
    citation = serializers.CharField(required=False, allow_blank=True)


class SnapshotFilter(FilterSerializer):
    name = serializers.CharField(required=False)


class SnapshotOutput(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = DatasetSnapshot
        fields = [
            "id", "name", "version", "description", "licence", "citation", "content_hash",
            "selection", "split_options", "split_counts", "leak_check", "warnings", "n_items",
            "n_cells", "supersedes", "created_by", "created_at",
        ]
        read_only_fields = fields


class ExportCreateInput(StrictSerializer):
    format = serializers.ChoiceField(choices=choices(ExportFormat))
    options = serializers.DictField(required=False, default=dict,
                                    help_text="ignore: keep|drop; segmentation: rle|polygon (coco); "
                                              "seg_npy: bool (cellpose)")


class ExportOutput(serializers.ModelSerializer):
    job = JobOutput(read_only=True)
    snapshot = serializers.PrimaryKeyRelatedField(read_only=True)
    download = serializers.SerializerMethodField()

    class Meta:
        model = DatasetExport
        fields = ["id", "snapshot", "format", "options", "status", "job", "n_files", "total_bytes",
                  "attempts", "error", "files", "created_at", "finished_at", "download"]
        read_only_fields = fields

    def get_download(self, export) -> str | None:
        """Path of the streamed zip, once the export succeeded."""
        if export.status != "succeeded":
            return None
        s = export.snapshot
        return f"/api/v1/projects/{s.project.slug}/datasets/{s.pk}/exports/{export.pk}/download/"
