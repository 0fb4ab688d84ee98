"""DRF serializers for guideline versions and acknowledgements (strict inputs)."""

from __future__ import annotations

from rest_framework import serializers

from annotation.enums import choices
from annotation.serializers import FilterSerializer, JSONObjectField, StrictSerializer
from guidelines.enums import GuidelineStatus
from guidelines.models import Acknowledgement, GuidelineVersion


class GuidelineVersionOutput(serializers.ModelSerializer):
    published_by = serializers.CharField(source="published_by.username", read_only=True, default=None)
    acknowledged = serializers.SerializerMethodField()

    class Meta:
        model = GuidelineVersion
        fields = [
            "version", "title", "body", "rules", "status", "changelog", "created_at",
            "updated_at", "published_by", "published_at", "acknowledged",
        ]
        read_only_fields = fields

    def get_acknowledged(self, version) -> bool:
        """Whether the requesting user acknowledged this version."""
        return version.pk in self.context.get("acknowledged", ())


class GuidelineVersionCreateInput(StrictSerializer):
    title = serializers.CharField(max_length=200)
    body = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)
    rules = JSONObjectField(required=False, default=dict)
    changelog = serializers.CharField(required=False, allow_blank=True, default="")


class GuidelineVersionUpdateInput(StrictSerializer):
    title = serializers.CharField(max_length=200, required=False)
    body = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    rules = JSONObjectField(required=False)
    changelog = serializers.CharField(required=False, allow_blank=True)
    version = serializers.IntegerField(read_only=True)
    status = serializers.CharField(read_only=True)
    published_at = serializers.DateTimeField(read_only=True)


class GuidelineVersionFilter(FilterSerializer):
    status = serializers.ChoiceField(choices=choices(GuidelineStatus), required=False)


class AcknowledgementOutput(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)
    version = serializers.IntegerField(source="guideline_version.version", read_only=True)

    class Meta:
        model = Acknowledgement
        fields = ["username", "version", "acknowledged_at"]
        read_only_fields = fields
