from django.contrib import admin

from training.models import ModelVersion, TrainingRun


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "name", "backbone", "status", "epochs_done", "epochs_total", "attempts",
                    "heartbeat_at", "created_at")
    list_filter = ("status", "backbone")
    readonly_fields = [f.name for f in TrainingRun._meta.fields]


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "name", "version", "backbone", "snapshot_content_hash", "created_at")
    list_filter = ("backbone",)
    readonly_fields = [f.name for f in ModelVersion._meta.fields]

    def has_change_permission(self, request, obj=None):
        return False
