"""Read-side queries of the datasets app, scoped by project role.

ML engineers, managers and QA leads read snapshots and exports; annotators get 403,
non-members 404 (``annotation.access``).
"""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import QuerySet

from annotation.access import check_project_role
from annotation.models import Project
from config.errors import Conflict, NotFound
from datasets.diff import diff_rows
from datasets.enums import ExportStatus
from datasets.formats.datasheet import datasheet_build
from datasets.formats.zipstream import ZipEntry
from datasets.models import DatasetExport, DatasetSnapshot, SnapshotItem
from datasets.services.snapshots import READ_ROLES, SnapshotSpec, snapshot_header
from datasets.services.snapshots import _check_spec as check_snapshot_spec
from datasets.services.snapshots import snapshot_rows as snapshot_plan
from datasets.storage import export_storage

_CHUNK = 1 << 20


def snapshot_list(*, user, project: Project, filters: dict | None = None) -> QuerySet[DatasetSnapshot]:
    check_project_role(user=user, project=project, roles=READ_ROLES)
    qs = DatasetSnapshot.objects.filter(project=project).select_related("created_by")
    if filters and filters.get("name"):
        qs = qs.filter(name=filters["name"])
    return qs.order_by("name", "-version")


def snapshot_get(*, user, project: Project, snapshot_id: int) -> DatasetSnapshot:
    check_project_role(user=user, project=project, roles=READ_ROLES)
    snapshot = (DatasetSnapshot.objects.filter(project=project, pk=snapshot_id)
                .select_related("project", "created_by", "supersedes").first())
    if snapshot is None:
        raise NotFound(f"snapshot {snapshot_id} not found")
    return snapshot


def snapshot_items(*, snapshot: DatasetSnapshot) -> QuerySet[SnapshotItem]:
    return SnapshotItem.objects.filter(snapshot=snapshot).order_by("image_sha256")


def snapshot_rows(snapshot: DatasetSnapshot) -> list[dict]:
    return list(snapshot_items(snapshot=snapshot).values_list("row", flat=True))


def snapshot_manifest(snapshot: DatasetSnapshot) -> dict:
    """The manifest: header, identity and every item's row (rows sorted by image sha256)."""
    return {
        "snapshot": {"id": snapshot.pk, "project": snapshot.project.slug, "name": snapshot.name,
                     "version": snapshot.version, "content_hash": snapshot.content_hash,
                     "supersedes": snapshot.supersedes_id, "created_at": snapshot.created_at.isoformat()},
        **snapshot_header(snapshot),
        "items": snapshot_rows(snapshot),
    }


def snapshot_datasheet(snapshot: DatasetSnapshot) -> dict:
    creator = snapshot.created_by.get_username() if snapshot.created_by else None
    return datasheet_build(
        {"name": snapshot.name, "version": snapshot.version, "content_hash": snapshot.content_hash,
         "created_at": snapshot.created_at.isoformat(), "created_by": creator,
         "description": snapshot.description, "licence": snapshot.licence, "citation": snapshot.citation,
         "project": snapshot.project.slug, "selection": snapshot.selection,
         "split": snapshot.split_options, "leak_check": snapshot.leak_check,
         "policy_version": snapshot.selection.get("policy_version"), "warnings": snapshot.warnings,
         "default_class": snapshot.selection.get("default_class")},
        snapshot_rows(snapshot),
    )


def snapshot_diff(*, user, project: Project, a_id: int, b_id: int) -> dict:
    """What changed from snapshot ``a`` to snapshot ``b`` and why."""
    a = snapshot_get(user=user, project=project, snapshot_id=a_id)
    b = snapshot_get(user=user, project=project, snapshot_id=b_id)
    out = diff_rows(snapshot_rows(a), snapshot_rows(b)).as_dict()
    out["a"] = {"id": a.pk, "name": a.name, "version": a.version, "content_hash": a.content_hash}
    out["b"] = {"id": b.pk, "name": b.name, "version": b.version, "content_hash": b.content_hash}
    if a.selection != b.selection:
        out["selection_changed"] = {"a": a.selection, "b": b.selection}
    if a.split_options != b.split_options:
        out["split_options_changed"] = {"a": a.split_options, "b": b.split_options}
    return out


def snapshot_preview(*, user, project: Project, spec: SnapshotSpec) -> dict:
    """What ``snapshot_create`` would freeze for ``spec``, storing nothing.

    The same selection, split and leak check as the service, for the counts a page shows
    before creating: images and cells in all and per split, groups, leaks, warnings.
    """
    check_project_role(user=user, project=project, roles=READ_ROLES)
    check_snapshot_spec(spec, project)
    header, rows = snapshot_plan(project=project, spec=spec)
    per_split = {split: {"images": 0, "cells": 0} for split in header["split_counts"]}
    for row in rows:
        entry = per_split.setdefault(row["split"], {"images": 0, "cells": 0})
        entry["images"] += 1
        entry["cells"] += row["mask"]["n_cells"]
    return {"n_items": len(rows), "n_cells": sum(r["mask"]["n_cells"] for r in rows),
            "splits": per_split, "n_groups": len({r["group"] for r in rows}),
            "leak_check": header["leak_check"], "warnings": header["warnings"],
            "selection": header["selection"], "split": header["split"]}


def export_list(*, user, snapshot: DatasetSnapshot) -> QuerySet[DatasetExport]:
    check_project_role(user=user, project=snapshot.project, roles=READ_ROLES)
    return DatasetExport.objects.filter(snapshot=snapshot).select_related("job").order_by("-id")


def export_get(*, user, snapshot: DatasetSnapshot, export_id: int) -> DatasetExport:
    check_project_role(user=user, project=snapshot.project, roles=READ_ROLES)
    export = DatasetExport.objects.filter(snapshot=snapshot, pk=export_id).select_related("job").first()
    if export is None:
        raise NotFound(f"export {export_id} not found")
    return export


def _chunks(storage, name: str) -> Iterator[bytes]:
    with storage.open(name, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            yield chunk


def export_zip_entries(export: DatasetExport) -> list[ZipEntry]:
    """The files of a finished export, in path order, as lazily-read zip entries."""
    if export.status != ExportStatus.SUCCEEDED:
        raise Conflict(f"export {export.pk} is {export.status}; only a finished export downloads")
    storage = export_storage()
    return [
        ZipEntry(f["path"], f["size"], lambda name=export.prefix + f["path"]: _chunks(storage, name))
        for f in export.files
    ]


def export_archive_name(export: DatasetExport) -> str:
    s = export.snapshot
    return f"{s.project.slug}-{s.name}-v{s.version}-{export.format}"
