"""DRF serializers of the annotation app: parse requests, render rows. No logic.

Input serializers are strict (:class:`StrictFieldsMixin`): an unknown or read-only key in
a write is a 400 naming it, never silently dropped. Filter serializers are strict too,
so a query string may only use allow-listed filters.
"""

from __future__ import annotations

import json

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from annotation.enums import AnnotationSource, AssignmentStatus, JobStatus, Role, choices
from annotation.masks import CROWD_MODES, GEOMETRIES, MASK_FORMATS, WRITE_FORMATS
from annotation.models import Annotation, Assignment, Image, Job, Membership, Project

#: Query parameters every list endpoint understands besides its filters.
PAGING_PARAMS = frozenset({"page", "format"})


class StrictFieldsMixin:
    """Refuse keys that are not writable fields of the serializer (HTTP 400 naming them)."""

    ignored_keys: frozenset[str] = frozenset()

    def to_internal_value(self, data):
        if hasattr(data, "keys"):
            errors = {}
            for key in data.keys():
                if key in self.ignored_keys:
                    continue
                field = self.fields.get(key)
                if field is None:
                    errors[key] = ["Unknown field."]
                elif field.read_only:
                    errors[key] = ["This field is read-only."]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


class StrictSerializer(StrictFieldsMixin, serializers.Serializer):
    """Base of input serializers."""


class FilterSerializer(StrictSerializer):
    """Base of query-string filters: unknown parameters are refused by name."""

    ignored_keys = PAGING_PARAMS


def _depth(value, limit: int) -> int:
    """Nesting depth of a JSON value, counted no further than ``limit``."""
    if limit <= 0 or not isinstance(value, dict | list):
        return 0
    children = value.values() if isinstance(value, dict) else value
    return 1 + max((_depth(v, limit - 1) for v in children), default=0)


@extend_schema_field(OpenApiTypes.OBJECT)
class JSONObjectField(serializers.Field):
    """A JSON object given either as an object (JSON bodies) or a JSON string (multipart).

    Size-capped (``max_bytes`` of compact JSON, ``max_depth`` levels): every JSON field a
    client writes (image metadata, class maps, guideline rules) is stored and re-read.
    """

    default_error_messages = {
        "invalid_json": "Not valid JSON: {error}.",
        "not_object": "Must be a JSON object, got {kind}.",
        "too_large": "At most {max_bytes:,} bytes of JSON are accepted here, got {size:,}.",
        "too_deep": "Nested deeper than {max_depth} levels.",
    }

    def __init__(self, *, max_bytes: int = 64 * 1024, max_depth: int = 16, **kwargs):
        self.max_bytes = max_bytes
        self.max_depth = max_depth
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, bytes | str):
            if len(data) > self.max_bytes:
                self.fail("too_large", max_bytes=self.max_bytes, size=len(data))
            try:
                data = json.loads(data)
            except (ValueError, RecursionError) as exc:
                self.fail("invalid_json", error=str(exc))
        if not isinstance(data, dict):
            self.fail("not_object", kind=type(data).__name__)
        if _depth(data, self.max_depth + 1) > self.max_depth:
            self.fail("too_deep", max_depth=self.max_depth)
        size = len(json.dumps(data, separators=(",", ":")))
        if size > self.max_bytes:
            self.fail("too_large", max_bytes=self.max_bytes, size=size)
        return data

    def to_representation(self, value):
        return value


# ----------------------------------------------------------------------------- projects


class ProjectOutput(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = [
            "slug", "name", "description", "cell_classes", "annotators_per_image", "gold_share",
            "created_at", "updated_at", "role",
        ]
        read_only_fields = fields

    def get_role(self, project) -> str | None:
        return self.context.get("roles", {}).get(project.pk)


class ProjectCreateInput(StrictSerializer):
    name = serializers.CharField(max_length=200)
    slug = serializers.CharField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, default="", max_length=10_000)
    cell_classes = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, default=list, max_length=200
    )
    annotators_per_image = serializers.IntegerField(required=False, default=2)
    gold_share = serializers.FloatField(required=False, default=0.0)


class ProjectUpdateInput(StrictSerializer):
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True, max_length=10_000)
    cell_classes = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, max_length=200
    )
    annotators_per_image = serializers.IntegerField(required=False)
    gold_share = serializers.FloatField(required=False)
    slug = serializers.CharField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)


# -------------------------------------------------------------------------- memberships


class MembershipOutput(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "username", "role", "created_at"]
        read_only_fields = fields


class MembershipCreateInput(StrictSerializer):
    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=choices(Role))


class MembershipUpdateInput(StrictSerializer):
    role = serializers.ChoiceField(choices=choices(Role))
    username = serializers.CharField(read_only=True)


class MembershipFilter(FilterSerializer):
    role = serializers.ChoiceField(choices=choices(Role), required=False)


# ------------------------------------------------------------------------------- images


class ImageOutput(serializers.ModelSerializer):
    class Meta:
        model = Image
        fields = [
            "id", "original_name", "sha256", "size_bytes", "format", "width", "height",
            "channels", "pages", "dtype", "plate", "well", "site", "batch", "modality", "stain",
            "metadata", "is_gold", "created_at",
        ]
        read_only_fields = fields
        extra_kwargs = {"is_gold": {"required": False}}

    def to_representation(self, image):
        data = super().to_representation(image)
        # Gold images are blind to annotators (DESIGN.md): only views that checked the
        # reader's role (context "show_gold") include the flag.
        if not self.context.get("show_gold", False):
            data.pop("is_gold", None)
        return data


class ImageUploadInput(StrictSerializer):
    file = serializers.ListField(
        child=serializers.FileField(allow_empty_file=True), allow_empty=False,
        help_text="One or more image files (TIFF, PNG or JPEG; recognised by content).",
    )
    plate = serializers.CharField(required=False, allow_blank=True, default="", max_length=100)
    well = serializers.CharField(required=False, allow_blank=True, default="", max_length=20)
    site = serializers.CharField(required=False, allow_blank=True, default="", max_length=20)
    batch = serializers.CharField(required=False, allow_blank=True, default="", max_length=100)
    modality = serializers.CharField(required=False, allow_blank=True, default="", max_length=50)
    stain = serializers.CharField(required=False, allow_blank=True, default="", max_length=100)
    metadata = JSONObjectField(required=False, default=dict)
    is_gold = serializers.BooleanField(required=False, default=False)


class ImageUploadOutput(serializers.Serializer):
    file = serializers.CharField(help_text="The uploaded file's name.")
    created = serializers.BooleanField()
    image = ImageOutput(allow_null=True, help_text="null when the file was refused.")
    error = serializers.CharField(required=False, help_text="Why the file was refused.")


class ImageFilter(FilterSerializer):
    plate = serializers.CharField(required=False)
    well = serializers.CharField(required=False)
    site = serializers.CharField(required=False)
    batch = serializers.CharField(required=False)
    modality = serializers.CharField(required=False)
    stain = serializers.CharField(required=False)
    # Omitted means no filter (not False); annotators may not use it (gold is blind to them).
    is_gold = serializers.BooleanField(required=False, allow_null=True, default=None)
    sha256 = serializers.CharField(required=False, max_length=64)


# -------------------------------------------------------------------------- assignments


class AssignmentOutput(serializers.ModelSerializer):
    annotator = serializers.CharField(source="annotator.username", read_only=True)
    image = ImageOutput(read_only=True)

    class Meta:
        model = Assignment
        fields = [
            "id", "image", "annotator", "status", "lease_expires_at", "started_at",
            "submitted_at", "skip_reason", "comment", "priority", "created_at",
        ]
        read_only_fields = fields


class AssignmentFilter(FilterSerializer):
    status = serializers.ChoiceField(choices=choices(AssignmentStatus), required=False)
    image = serializers.IntegerField(required=False, min_value=1)
    annotator = serializers.CharField(
        required=False, max_length=150, help_text="The annotator's user name (a user id works too)."
    )


class AssignmentSkipInput(StrictSerializer):
    reason = serializers.CharField(
        max_length=500, help_text="Why the task is skipped (shown to the QA lead); required."
    )


class EmptyInput(StrictSerializer):
    """Endpoints whose POST takes no body fields."""


# -------------------------------------------------------------------------- annotations


class RuleViolationOutput(serializers.Serializer):
    """One guideline rule broken by a mask (``guidelines.rules.Violation.as_dict()``)."""

    rule = serializers.CharField(help_text="Rule name, e.g. min_area (see docs/guideline-rules.md).")
    severity = serializers.ChoiceField(choices=["blocking", "warning"])
    cells = serializers.ListField(child=serializers.IntegerField(),
                                  help_text="Instance ids involved; empty for image-level rules.")
    message = serializers.CharField(help_text="What is wrong and what to do.")
    measured = serializers.ListField(child=serializers.FloatField(),
                                     help_text="Measured value per cell, aligned with cells.")
    limit = serializers.FloatField(allow_null=True)
    unit = serializers.CharField(allow_blank=True)


class AnnotationOutput(serializers.ModelSerializer):
    annotator = serializers.CharField(source="created_by.username", read_only=True)
    image = serializers.IntegerField(source="assignment.image_id", read_only=True)
    guideline_version = serializers.IntegerField(source="guideline_version.version", read_only=True)
    rule_warnings = RuleViolationOutput(
        many=True, read_only=True,
        help_text="Warning-severity guideline rules the mask breaks (stored on submit).",
    )

    class Meta:
        model = Annotation
        fields = [
            "id", "assignment", "image", "annotator", "revision", "guideline_version", "sha256",
            "height", "width", "dtype", "instance_count", "source", "time_spent_s", "submitted_at",
            "instance_classes", "upload_format", "import_report", "rule_warnings",
        ]
        read_only_fields = fields


class AnnotationCheckOutput(serializers.Serializer):
    """The answer to a dry-run submission: what the guideline's rules say; nothing stored."""

    dry_run = serializers.BooleanField()
    guideline_version = serializers.IntegerField()
    accepted = serializers.BooleanField(help_text="False when a blocking rule is broken.")
    violations = RuleViolationOutput(many=True)


class AnnotationSubmitInput(StrictSerializer):
    assignment = serializers.IntegerField(min_value=1)
    mask = serializers.FileField(
        allow_empty_file=True,
        help_text="The mask in any supported format, recognised by content: a label image "
        "(PNG, TIFF or OME-TIFF, one integer plane, same height and width as the image), a "
        "binary or two-colour mask (connected regions become cells), per-instance binary "
        "masks (a zip of PNG/TIFF files, an (N, H, W) TIFF or .npy stack), COCO JSON, "
        "Cellpose _seg.npy, ImageJ/Fiji ROI or ROI zip, QuPath GeoJSON, or a Label Studio "
        "JSON export.",
    )
    mask_format = serializers.ChoiceField(
        choices=["auto", *MASK_FORMATS], required=False, default="auto",
        help_text="'auto' recognises the format by content; a named format that the content "
        "contradicts is refused.",
    )
    image_name = serializers.CharField(
        required=False, allow_null=True, default=None, max_length=1000,
        help_text="For a COCO or Label Studio file describing several images: the entry to "
        "import (default: the only one, else the one named like the image).",
    )
    class_map = JSONObjectField(
        required=False, allow_null=True, default=None,
        help_text='Renames the file\'s class names to project cell classes, e.g. {"cell": "nucleus"}.',
    )
    invert = serializers.BooleanField(
        required=False, allow_null=True, default=None,
        help_text="Binary masks only. true: the cells are the stored background (cells 0, "
        "background 255), swap them; false: the foreground is the cells, do not check; "
        "absent: a binary mask whose foreground covers most of the image and touches all "
        "four borders is refused as inverted.",
    )
    geometry = serializers.ChoiceField(
        choices=list(GEOMETRIES), required=False, default="cell",
        help_text="QuPath GeoJSON cell objects: import the cell outline (default) or the "
        "nucleusGeometry. The import report says which was used.",
    )
    crowd = serializers.ChoiceField(
        choices=list(CROWD_MODES), required=False, default="skip",
        help_text="COCO iscrowd=1 annotations: 'skip' (default, reported as skipped) or "
        "'instances' (one instance each, as older CVAT/datumaro exports mean them).",
    )
    base_revision = serializers.IntegerField(
        required=False, min_value=0, allow_null=True, default=None,
        help_text="The revision this edit is based on (0 or absent for the first submission).",
    )
    source = serializers.ChoiceField(
        choices=choices(AnnotationSource), required=False, allow_null=True, default=None,
        help_text="Default: manual for PNG/TIFF label images, imported for every other format.",
    )
    time_spent_s = serializers.FloatField(required=False, allow_null=True, default=None, min_value=0)
    dry_run = serializers.BooleanField(
        required=False, default=False,
        help_text="Check the mask (format, size, classes, revision, guideline rules) and return "
        "the rule violations without storing anything.",
    )

    def validate_class_map(self, value):
        if value is not None and not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise serializers.ValidationError("class_map must map class names to class names.")
        return value


class AnnotationMaskQuery(StrictSerializer):
    format = serializers.ChoiceField(
        choices=list(WRITE_FORMATS), required=False,
        error_messages={
            "invalid_choice": f'"{{input}}" is not a mask format; expected one of {", ".join(WRITE_FORMATS)}.'
        },
        help_text="Write the mask in this format; absent: the stored label image (PNG, or "
        "TIFF above 65,535 instances).",
    )


class AnnotationFilter(FilterSerializer):
    assignment = serializers.IntegerField(required=False, min_value=1)
    image = serializers.IntegerField(required=False, min_value=1)
    annotator = serializers.CharField(
        required=False, max_length=150, help_text="The annotator's user name (a user id works too)."
    )
    source = serializers.ChoiceField(choices=choices(AnnotationSource), required=False)
    guideline_version = serializers.IntegerField(required=False, min_value=1)
    latest = serializers.BooleanField(
        required=False, help_text="true: only the newest revision of each assignment."
    )


# --------------------------------------------------------------------------------- jobs


class JobOutput(serializers.ModelSerializer):
    project = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    progress = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "id", "kind", "status", "progress_done", "progress_total", "progress", "message",
            "result", "error", "project", "created_at", "started_at", "finished_at",
        ]
        read_only_fields = fields

    def get_progress(self, job) -> float | None:
        """Fraction done in 0..1, or None while the total is unknown."""
        if not job.progress_total:
            return 1.0 if job.status == JobStatus.SUCCEEDED else None
        return job.progress_done / job.progress_total


class JobFilter(FilterSerializer):
    kind = serializers.CharField(required=False)
    status = serializers.ChoiceField(choices=choices(JobStatus), required=False)
    project = serializers.SlugField(required=False)
