"""``python manage.py export_annotations --project SLUG --out DIR [--format png]``.

Writes the latest revision of every (by default submitted) assignment's mask in one
write format, one folder per annotator, plus ``manifest.json``; COCO gives one JSON
per annotator holding all of their images. See :mod:`annotation.services.mask_export`
for the layout (its names are the ones ``import_annotations`` matches).
"""

from __future__ import annotations

import sys
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from annotation.enums import AssignmentStatus
from annotation.masks import WRITE_FORMATS
from annotation.models import Project
from annotation.services.mask_export import EXPORT_STATUSES, annotations_export, annotations_latest
from config.errors import DomainError


class Command(BaseCommand):
    help = "Export a project's annotation masks in one format (png, tiff, coco, cellpose, imagej, geojson)."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="Project slug.")
        parser.add_argument("--out", required=True, type=Path, help="Output folder (created).")
        parser.add_argument("--format", default="png", choices=list(WRITE_FORMATS))
        parser.add_argument(
            "--status", default=AssignmentStatus.SUBMITTED.value, choices=list(EXPORT_STATUSES),
            help="Only assignments in this status (default submitted; 'all' for any).",
        )
        parser.add_argument("--annotator", help="Only this annotator's masks.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, **options):
        from tqdm import tqdm

        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"no project with slug {options['project']!r}")
        annotator = None
        if options["annotator"]:
            annotator = get_user_model().objects.filter(username=options["annotator"]).first()
            if annotator is None:
                raise CommandError(f"no user {options['annotator']!r}")
        out: Path = options["out"]
        if out.exists() and not out.is_dir():
            raise CommandError(f"{out} exists and is not a folder")
        out.mkdir(parents=True, exist_ok=True)
        total = len(annotations_latest(project=project, status=options["status"], annotator=annotator))
        bar = tqdm(total=total, desc=f"export {options['format']}", unit="mask",
                   file=getattr(self.stderr, "_out", sys.stderr), disable=options["no_progress"])
        written = 0
        try:
            for item in annotations_export(
                project=project, format=options["format"], status=options["status"],
                annotator=annotator,
            ):
                target = out / item.path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(item.content)
                written += 1
                if item.path != "manifest.json":
                    bar.update(len(item.annotations))
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        finally:
            bar.close()
        self.stdout.write(self.style.SUCCESS(
            f"exported {total} annotations of project {project.slug!r} as {options['format']}: "
            f"{written} files in {out}"
        ))
