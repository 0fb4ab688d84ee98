"""Django admin for guidelines. Published and retired versions are read-only."""

from django.contrib import admin

from guidelines.enums import GuidelineStatus
from guidelines.models import Acknowledgement, GuidelineVersion, RuleRecheck


@admin.register(GuidelineVersion)
class GuidelineVersionAdmin(admin.ModelAdmin):
    list_display = ["project", "version", "title", "status", "published_at"]
    list_filter = ["status", "project"]
    readonly_fields = ["status", "published_by", "published_at", "created_by", "created_at"]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.status != GuidelineStatus.DRAFT:
            return [f.name for f in self.model._meta.fields]
        return self.readonly_fields

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.status != GuidelineStatus.DRAFT:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.status != GuidelineStatus.DRAFT:
            return False
        return super().has_delete_permission(request, obj)


@admin.register(Acknowledgement)
class AcknowledgementAdmin(admin.ModelAdmin):
    list_display = ["guideline_version", "user", "acknowledged_at"]
    readonly_fields = ["guideline_version", "user", "acknowledged_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(RuleRecheck)
class RuleRecheckAdmin(admin.ModelAdmin):
    """Re-check results are written by the re-check job only."""

    list_display = ["guideline_version", "annotation", "flagged", "blocking_count",
                    "warning_count", "checked_at"]
    list_filter = ["flagged", "guideline_version__project"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
