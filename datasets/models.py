"""Tables of the datasets app: immutable snapshots, their items, and exports.

A :class:`DatasetSnapshot` and its :class:`SnapshotItem` rows never change once written
(``save()`` refuses it; only the licence and citation a manager fills in may be edited,
and they are not part of the content hash). A newer snapshot of the same name
supersedes an older one. A :class:`DatasetExport` is one rendering of a snapshot in a
training format; its files live in the ``exports`` storage under ``prefix``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotation.enums import choices
from datasets.enums import ExportFormat, ExportStatus, Split

USER = settings.AUTH_USER_MODEL


class ImmutableError(Exception):
    """An attempt to change a row that is written once."""


class DatasetSnapshot(models.Model):
    """A frozen selection of approved masks with splits, manifest and content hash."""

    #: Fields a manager may still fill in after creation (not part of the content hash).
    EDITABLE = frozenset({"licence", "citation"})

    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="snapshots")
    name = models.SlugField(max_length=100)
    version = models.PositiveIntegerField()
    description = models.TextField(blank=True)
    licence = models.CharField(max_length=200, blank=True)
    citation = models.TextField(blank=True)
    content_hash = models.CharField(max_length=64, db_index=True)
    # {"policy_version", "include_gold", "filters": {...}, "default_class"}
    selection = models.JSONField(default=dict)
    # {"group_by", "stratify_by", "fractions": [train, val, test], "seed", "method"}
    split_options = models.JSONField(default=dict)
    split_counts = models.JSONField(default=dict)
    leak_check = models.JSONField(default=dict)
    warnings = models.JSONField(default=list, blank=True)
    n_items = models.PositiveIntegerField(default=0)
    n_cells = models.PositiveIntegerField(default=0)
    supersedes = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="superseded_by"
    )
    created_by = models.ForeignKey(USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project_id", "name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name", "version"], name="snapshot_unique_version"),
            models.CheckConstraint(condition=Q(version__gte=1), name="snapshot_version_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            fields = set(kwargs.get("update_fields") or ())
            if not fields or not fields <= self.EDITABLE:
                raise ImmutableError(
                    f"snapshot {self.pk} is immutable (only {sorted(self.EDITABLE)} may be filled in); "
                    "make a new snapshot instead"
                )
        super().save(*args, **kwargs)


class SnapshotItem(models.Model):
    """One image of a snapshot with its approved mask, split, ignore marks and provenance."""

    snapshot = models.ForeignKey(DatasetSnapshot, on_delete=models.CASCADE, related_name="items")
    image = models.ForeignKey("annotation.Image", on_delete=models.PROTECT, related_name="+")
    approved_mask = models.ForeignKey("qa.ApprovedMask", on_delete=models.PROTECT, related_name="+")
    split = models.CharField(max_length=10, choices=choices(Split))
    group = models.CharField(max_length=250)
    image_sha256 = models.CharField(max_length=64)
    mask_sha256 = models.CharField(max_length=64)
    n_cells = models.PositiveIntegerField()
    # The manifest row: image, mask, split, group, ignore_cells, cell_classes, cells, provenance.
    row = models.JSONField()

    class Meta:
        ordering = ["snapshot_id", "image_sha256"]
        constraints = [
            models.UniqueConstraint(fields=["snapshot", "image"], name="snapshot_item_unique_image"),
            models.CheckConstraint(condition=Q(split__in=[s.value for s in Split]), name="snapshot_item_split_valid"),
        ]

    def __str__(self) -> str:
        return f"item {self.pk} of snapshot {self.snapshot_id} ({self.split})"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ImmutableError(f"snapshot item {self.pk} is immutable")
        super().save(*args, **kwargs)


class DatasetExport(models.Model):
    """A snapshot written in one training format; files under ``prefix`` in export storage."""

    snapshot = models.ForeignKey(DatasetSnapshot, on_delete=models.CASCADE, related_name="exports")
    format = models.CharField(max_length=20, choices=choices(ExportFormat))
    # Format options: {"ignore": "keep"|"drop", "segmentation": "rle"|"polygon", "seg_npy": bool}
    options = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=20, choices=choices(ExportStatus), default=ExportStatus.QUEUED)
    job = models.ForeignKey("annotation.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    prefix = models.CharField(max_length=300, blank=True)
    # [{"path", "size", "sha256"}] sorted by path, once finished.
    files = models.JSONField(default=list, blank=True)
    n_files = models.PositiveIntegerField(default=0)
    total_bytes = models.PositiveBigIntegerField(default=0)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["snapshot_id", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(format__in=[f.value for f in ExportFormat]), name="export_format_valid"
            ),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in ExportStatus]), name="export_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"export {self.pk} of {self.snapshot} ({self.format}, {self.status})"


__all__ = ["DatasetExport", "DatasetSnapshot", "ImmutableError", "SnapshotItem"]
