"""Django admin for datasets: everything read-only (snapshots never change)."""

from django.contrib import admin

from datasets.models import DatasetExport, DatasetSnapshot, SnapshotItem


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False  # made by the services (selection, splits, hashing)

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]


@admin.register(DatasetSnapshot)
class DatasetSnapshotAdmin(_ReadOnly):
    list_display = ["id", "project", "name", "version", "n_items", "n_cells", "content_hash", "created_at"]
    list_filter = ["project"]
    search_fields = ["name", "content_hash"]


@admin.register(SnapshotItem)
class SnapshotItemAdmin(_ReadOnly):
    list_display = ["id", "snapshot", "image", "split", "group", "n_cells", "mask_sha256"]
    list_filter = ["split"]
    raw_id_fields = ["snapshot", "image", "approved_mask"]


@admin.register(DatasetExport)
class DatasetExportAdmin(_ReadOnly):
    list_display = ["id", "snapshot", "format", "status", "n_files", "total_bytes", "attempts", "created_at"]
    list_filter = ["format", "status"]
