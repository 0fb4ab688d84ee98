"""``python manage.py export_dataset --project SLUG --snapshot ID --format F --user USER [--out X.zip]``.

Writes a snapshot in a training format in this process (with a progress bar) through the
exports storage, exactly as the Celery task does, and optionally streams the zip to a
file. ``--snapshot`` takes an id or ``NAME`` (latest version) or ``NAME:vN``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from annotation.models import Project
from config.errors import DomainError
from datasets import selectors
from datasets.enums import ExportFormat
from datasets.formats.zipstream import stream_zip
from datasets.models import DatasetSnapshot
from datasets.services import export_request, export_run


def _snapshot(project: Project, ref: str) -> DatasetSnapshot:
    qs = DatasetSnapshot.objects.filter(project=project)
    if ref.isdigit():
        found = qs.filter(pk=int(ref)).first()
    elif ":v" in ref:
        name, _, version = ref.rpartition(":v")
        found = qs.filter(name=name, version=int(version)).first() if version.isdigit() else None
    else:
        found = qs.filter(name=ref).order_by("-version").first()
    if found is None:
        raise CommandError(f"no snapshot {ref!r} in project {project.slug!r}")
    return found


class Command(BaseCommand):
    help = "Export a dataset snapshot (cellpose, coco, ome-tiff, ome-zarr), optionally to a zip file."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True)
        parser.add_argument("--snapshot", required=True, help="Id, NAME (latest) or NAME:vN.")
        parser.add_argument("--format", required=True, choices=[f.value for f in ExportFormat])
        parser.add_argument("--user", required=True, help="Acting user (ML engineer or manager).")
        parser.add_argument("--out", type=Path, help="Write the export as this .zip file.")
        parser.add_argument("--ignore", choices=["keep", "drop"], default="keep",
                            help="Ignore cells in formats without an ignore mark: keep or drop.")
        parser.add_argument("--segmentation", choices=["rle", "polygon"], default="rle", help="COCO masks.")
        parser.add_argument("--seg-npy", action="store_true", help="Cellpose: also write _seg.npy files.")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **o):
        from tqdm import tqdm

        project = Project.objects.filter(slug=o["project"]).first()
        if project is None:
            raise CommandError(f"no project with slug {o['project']!r}")
        user = get_user_model().objects.filter(username=o["user"]).first()
        if user is None:
            raise CommandError(f"no user {o['user']!r}")
        out: Path | None = o["out"]
        if out is not None and (out.is_dir() or out.suffix != ".zip"):
            raise CommandError(f"--out {out}: give a .zip file name")
        snapshot = _snapshot(project, o["snapshot"])
        options = {"ignore": o["ignore"], "segmentation": o["segmentation"], "seg_npy": o["seg_npy"]}
        bar = tqdm(total=snapshot.n_items, desc=f"export {o['format']}", unit="image",
                   file=getattr(self.stderr, "_out", sys.stderr), disable=o["no_progress"])
        try:
            export = export_request(actor=user, snapshot=snapshot, format=o["format"], options=options,
                                    enqueue=False)
            outcome = export_run(export_id=export.pk, progress=lambda done, total: bar.update(done - bar.n))
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        finally:
            bar.close()
        export = outcome.export
        self.stdout.write(f"export {export.pk}: {export.n_files} files, {export.total_bytes} bytes "
                          f"under {export.prefix}")
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            temp = out.with_name(f".{out.name}.partial")
            with open(temp, "wb") as fh:
                for chunk in stream_zip(selectors.export_zip_entries(export),
                                        root=selectors.export_archive_name(export)):
                    fh.write(chunk)
            temp.replace(out)
            self.stdout.write(f"wrote {out}")
