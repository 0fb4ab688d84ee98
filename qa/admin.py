"""Django admin for the QA workflow. Decisions and their evidence are read-only."""

from django.contrib import admin

from qa.models import (
    AnnotatorReliability,
    ApprovedMask,
    AuditEvent,
    GateDecision,
    GatingPolicy,
    GoldTruth,
    ImageQaState,
    QaModelReference,
    QaRun,
    Qualification,
    ReviewDecision,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Immutable rows: visible, never added or changed here (deleting follows the image)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(GatingPolicy)
class GatingPolicyAdmin(admin.ModelAdmin):
    list_display = ["project", "version", "status", "min_agreement", "flagged_cells", "published_at"]
    list_filter = ["status", "project"]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.status != "draft":
            return [f.name for f in obj._meta.fields]
        return ["status", "published_by", "published_at"]


@admin.register(QaRun)
class QaRunAdmin(ReadOnlyAdmin):
    list_display = ["id", "image", "status", "trigger", "n_cells", "mean_agreement", "n_flags", "created_at"]
    list_filter = ["status", "trigger"]
    raw_id_fields = ["image"]


@admin.register(QaModelReference)
class QaModelReferenceAdmin(ReadOnlyAdmin):
    list_display = ["id", "qa_run", "model_version", "n_cells", "n_flags", "error", "created_at"]
    raw_id_fields = ["qa_run"]


@admin.register(GateDecision)
class GateDecisionAdmin(ReadOnlyAdmin):
    list_display = ["id", "image", "outcome", "policy", "created_at"]
    list_filter = ["outcome"]


@admin.register(ReviewDecision)
class ReviewDecisionAdmin(ReadOnlyAdmin):
    list_display = ["id", "image", "action", "reviewer", "created_at"]
    list_filter = ["action"]


@admin.register(ApprovedMask)
class ApprovedMaskAdmin(ReadOnlyAdmin):
    list_display = ["id", "image", "source", "n_cells", "sha256", "created_at"]
    list_filter = ["source"]


@admin.register(GoldTruth)
class GoldTruthAdmin(ReadOnlyAdmin):
    list_display = ["id", "image", "source", "n_cells", "set_by", "created_at"]


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "project", "kind", "actor", "summary", "created_at"]
    list_filter = ["kind", "project"]
    search_fields = ["summary", "reason"]


@admin.register(ImageQaState)
class ImageQaStateAdmin(ReadOnlyAdmin):
    list_display = ["image", "project", "status", "agreement", "n_flags", "updated_at"]
    list_filter = ["status", "project"]


@admin.register(AnnotatorReliability)
class AnnotatorReliabilityAdmin(ReadOnlyAdmin):
    list_display = ["project", "annotator", "n_annotations", "n_gold", "updated_at"]


@admin.register(Qualification)
class QualificationAdmin(ReadOnlyAdmin):
    list_display = ["project", "annotator", "status", "passed", "attempted", "updated_at"]
    list_filter = ["status"]
