"""DRF serializers for guideline versions, acknowledgements and rule re-checks (strict inputs).

The rules JSON is validated by the service (:func:`guidelines.rules.validate_rules`); the
``*RuleDoc`` serializers below only describe it in the API schema, one entry per rule
with its unit and an example, from the same table the checker uses.
"""

from __future__ import annotations

import json

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from annotation.enums import choices
from annotation.serializers import (
    FilterSerializer,
    JobOutput,
    JSONObjectField,
    RuleViolationOutput,
    StrictSerializer,
)
from guidelines.enums import GuidelineStatus
from guidelines.models import Acknowledgement, GuidelineVersion, RuleRecheck
from guidelines.rules import DEFAULT_SEVERITY, RULES, SEVERITIES, describe_rules, usable_rules
from guidelines.services.recheck import recheck_summary

# ------------------------------------------------------------------ rules (schema only)


def _rule_help(name: str) -> str:
    spec = RULES[name]
    return f"{spec.summary} Unit: {spec.unit}. Example: {json.dumps({name: spec.example})}"


class _RuleDoc(serializers.Serializer):
    severity = serializers.ChoiceField(
        choices=list(SEVERITIES), required=False, default=DEFAULT_SEVERITY,
        help_text="blocking: a submission breaking the rule is refused (400); warning: it is "
        "stored with the annotation and shown. Default blocking.",
    )
    note = serializers.CharField(
        required=False, max_length=500,
        help_text="Optional guidance appended to the message annotators see.",
    )


class AreaRuleDoc(_RuleDoc):
    value = serializers.FloatField(help_text="Area limit, > 0, in `unit`.")
    unit = serializers.ChoiceField(
        choices=["px", "um2"], required=False, default="px",
        help_text="px: pixels; um2: µm², from the image's pixel size (metadata pixel_size_um "
        "or OME PhysicalSizeX/Y). Without a pixel size the rule is reported as not checked.",
    )


class CountRuleDoc(_RuleDoc):
    value = serializers.IntegerField(min_value=1, help_text="The most allowed, >= 1.")


class HolesRuleDoc(_RuleDoc):
    value = serializers.IntegerField(min_value=0, help_text="Holes allowed per cell, >= 0.")


class SolidityRuleDoc(_RuleDoc):
    value = serializers.FloatField(min_value=0, max_value=1, help_text="Minimum solidity, in (0, 1].")


class BorderRuleDoc(_RuleDoc):
    allowed = serializers.BooleanField(
        required=False, default=False, help_text="Whether cells may touch the image border."
    )


class ClassesRuleDoc(_RuleDoc):
    classes = serializers.ListField(
        child=serializers.CharField(), required=False,
        help_text="Classes a cell may carry (project cell classes); empty or absent: any class.",
    )


class GuidelineRulesDoc(serializers.Serializer):
    """Machine-checked rules of a guideline version; see docs/guideline-rules.md."""

    max_instances = CountRuleDoc(required=False, help_text=_rule_help("max_instances"))
    min_area = AreaRuleDoc(required=False, help_text=_rule_help("min_area"))
    max_area = AreaRuleDoc(required=False, help_text=_rule_help("max_area"))
    max_pieces = CountRuleDoc(required=False, help_text=_rule_help("max_pieces"))
    max_holes = HolesRuleDoc(required=False, help_text=_rule_help("max_holes"))
    min_solidity = SolidityRuleDoc(required=False, help_text=_rule_help("min_solidity"))
    border = BorderRuleDoc(required=False, help_text=_rule_help("border"))
    required_classes = ClassesRuleDoc(required=False, help_text=_rule_help("required_classes"))


@extend_schema_field(GuidelineRulesDoc)
class RulesField(JSONObjectField):
    """The rules JSON (an object, or a JSON string in multipart); checked by the service."""


# ------------------------------------------------------------------ versions


class GuidelineVersionOutput(serializers.ModelSerializer):
    published_by = serializers.CharField(source="published_by.username", read_only=True, default=None)
    acknowledged = serializers.SerializerMethodField()
    rules = RulesField(read_only=True)
    rules_text = serializers.SerializerMethodField()
    recheck_job = serializers.SerializerMethodField()

    class Meta:
        model = GuidelineVersion
        fields = [
            "version", "title", "body", "rules", "rules_text", "status", "changelog", "created_at",
            "updated_at", "published_by", "published_at", "acknowledged", "recheck_job",
        ]
        read_only_fields = fields

    def get_acknowledged(self, version) -> bool:
        """Whether the requesting user acknowledged this version."""
        return version.pk in self.context.get("acknowledged", ())

    def get_rules_text(self, version) -> list[str]:
        """The rules as plain sentences with their severity, for the guideline page."""
        return describe_rules(usable_rules(version.rules or {})[0])

    def get_recheck_job(self, version) -> int | None:
        """Id of the latest job re-checking older annotations against this version's rules."""
        job = self.context.get("recheck_jobs", {}).get(version.pk)
        return None if job is None else job.pk


class GuidelineVersionCreateInput(StrictSerializer):
    title = serializers.CharField(max_length=200)
    body = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False,
                                 max_length=200_000)
    rules = RulesField(required=False, default=dict)
    changelog = serializers.CharField(required=False, allow_blank=True, default="", max_length=10_000)


class GuidelineVersionUpdateInput(StrictSerializer):
    title = serializers.CharField(max_length=200, required=False)
    body = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False,
                                 max_length=200_000)
    rules = RulesField(required=False)
    changelog = serializers.CharField(required=False, allow_blank=True, max_length=10_000)
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


# ------------------------------------------------------------------ re-checks


class RuleRecheckOutput(serializers.ModelSerializer):
    annotation = serializers.IntegerField(source="annotation_id", read_only=True)
    assignment = serializers.IntegerField(source="annotation.assignment_id", read_only=True)
    image = serializers.IntegerField(source="annotation.assignment.image_id", read_only=True)
    annotator = serializers.CharField(source="annotation.created_by.username", read_only=True)
    revision = serializers.IntegerField(source="annotation.revision", read_only=True)
    made_under = serializers.IntegerField(
        source="annotation.guideline_version.version", read_only=True,
        help_text="Guideline version the annotation was made under.",
    )
    checked_against = serializers.IntegerField(
        source="guideline_version.version", read_only=True,
        help_text="Guideline version whose rules were applied.",
    )
    violations = RuleViolationOutput(many=True, read_only=True)
    summary = serializers.SerializerMethodField()

    class Meta:
        model = RuleRecheck
        fields = [
            "annotation", "assignment", "image", "annotator", "revision", "made_under",
            "checked_against", "flagged", "blocking_count", "warning_count", "violations",
            "error", "summary", "checked_at",
        ]
        read_only_fields = fields

    def get_summary(self, row) -> str:
        """E.g. "made under v1; v2 would flag min_area (blocking, cells 3, 7)"."""
        return recheck_summary(
            made_under=row.annotation.guideline_version.version,
            checked_against=row.guideline_version.version,
            violations=row.violations, error=row.error,
        )


class RuleRecheckFilter(FilterSerializer):
    flagged = serializers.BooleanField(required=False, allow_null=True, default=None)
    made_under = serializers.IntegerField(required=False, min_value=1)
    annotator = serializers.IntegerField(required=False, min_value=1)
    image = serializers.IntegerField(required=False, min_value=1)
    annotation = serializers.IntegerField(required=False, min_value=1)


__all__ = [
    "AcknowledgementOutput", "GuidelineRulesDoc", "GuidelineVersionCreateInput",
    "GuidelineVersionFilter", "GuidelineVersionOutput", "GuidelineVersionUpdateInput",
    "JobOutput", "RuleRecheckFilter", "RuleRecheckOutput", "RulesField",
]
