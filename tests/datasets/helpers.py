"""Shared steps of the dataset tests: run an export, unpack its streamed zip."""

import io
import zipfile
from pathlib import Path

from datasets import selectors
from datasets.formats.zipstream import stream_zip
from datasets.models import DatasetExport
from datasets.services import SnapshotSpec, export_request, snapshot_create


def make_snapshot(world, name="nuclei", **kw):
    return snapshot_create(actor=world.users["ml_engineer"], project=world.project,
                           spec=SnapshotSpec(name=name, **kw)).snapshot


def run_export(world, snapshot, fmt, capture, **options) -> DatasetExport:
    with capture(execute=True):
        export = export_request(actor=world.users["ml_engineer"], snapshot=snapshot, format=fmt,
                                options=options)
    export.refresh_from_db()
    return export


def unzip(export: DatasetExport, dest: Path) -> Path:
    """Stream the export's zip, check it, extract it; return the dataset folder."""
    data = b"".join(stream_zip(selectors.export_zip_entries(export), root=selectors.export_archive_name(export)))
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None
        zf.extractall(dest)
    return dest / selectors.export_archive_name(export)
