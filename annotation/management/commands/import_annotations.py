"""``python manage.py import_annotations PATH --project SLUG --annotator USER``.

Imports a folder (recursively) or a zip of mask files in any supported format as the
annotator's annotations, matching each file to a project image by file name (Cellpose,
napari and Fiji suffixes such as ``_cp_masks``, ``_seg``, ``_masks``, ``.roi.zip``
understood) or by the image's sha256; a folder of loose ``.roi`` files or of
per-instance binary masks named after an image (``<image>/``, ``<image>/masks/``) is
one mask; see :mod:`annotation.services.mask_batch`. ``--invert`` / ``--no-invert``
(binary masks), ``--geometry`` (QuPath nuclei) and ``--crowd`` (COCO iscrowd) are the
reader options of the API's submit endpoint. The
images must be uploaded first. A progress bar goes to stderr; the report (one line per
file: imported / skipped / failed with the reason) to stdout, and with ``--report`` as
JSON. The exit status is non-zero only for usage errors or when nothing was imported.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from annotation.masks import CROWD_MODES, GEOMETRIES, MASK_FORMATS
from annotation.models import Project
from annotation.services.import_guideline import import_guideline_get
from annotation.services.mask_batch import (
    FAILED,
    IMPORTED,
    SKIPPED,
    WOULD_IMPORT,
    BatchReport,
    image_index_build,
    mask_file_import,
    mask_import_check,
    mask_sources,
)
from annotation.services.mask_folders import mask_sources_group
from annotation.services.mask_formats import ImportOptions
from config.errors import DomainError


def _class_map(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        name, sep, target = pair.partition("=")
        if not sep or not name or not target:
            raise CommandError(f"--class-map expects FILE_CLASS=PROJECT_CLASS, got {pair!r}")
        out[name] = target
    return out


class Command(BaseCommand):
    help = "Import a folder or zip of mask files (any supported format) as one annotator's annotations."

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path, help="A folder of mask files, or a zip of them.")
        parser.add_argument("--project", required=True, help="Project slug.")
        parser.add_argument("--annotator", required=True, help="Username the masks are imported as.")
        parser.add_argument(
            "--format", default="auto", choices=["auto", *MASK_FORMATS],
            help="Expected format (default: recognise each file by content).",
        )
        parser.add_argument(
            "--class-map", action="append", default=[], metavar="FILE_CLASS=PROJECT_CLASS",
            help="Rename a class used in the files to a project cell class (repeatable).",
        )
        polarity = parser.add_mutually_exclusive_group()
        polarity.add_argument(
            "--invert", dest="invert", action="store_const", const=True, default=None,
            help="Binary masks store the cells as 0 (background 255): swap them.",
        )
        polarity.add_argument(
            "--no-invert", dest="invert", action="store_const", const=False,
            help="Binary masks whose foreground covers most of the image are cells: import "
            "them as they are (default: refuse them as looking inverted).",
        )
        parser.add_argument(
            "--geometry", default="cell", choices=GEOMETRIES,
            help="QuPath cell objects: import the cell outline (default) or the nucleus.",
        )
        parser.add_argument(
            "--crowd", default="skip", choices=CROWD_MODES,
            help="COCO iscrowd=1 annotations: skip them (default) or import each as one "
            "instance (older CVAT/datumaro exports).",
        )
        parser.add_argument(
            "--guideline-version", type=int, metavar="N",
            help="Masks made under an older published guideline version N: record them as "
            "made under it (checked against its rules). Needs --manager.",
        )
        parser.add_argument(
            "--manager", metavar="USER",
            help="The project manager who vouches for --guideline-version (recorded).",
        )
        parser.add_argument("--dry-run", action="store_true", help="Match and parse; store nothing.")
        parser.add_argument("--report", type=Path, help="Also write the report as JSON here.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, **options):
        from tqdm import tqdm

        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"no project with slug {options['project']!r}")
        annotator = get_user_model().objects.filter(
            username=options["annotator"], is_active=True
        ).first()
        if annotator is None:
            raise CommandError(f"no active user {options['annotator']!r}")
        path: Path = options["path"]
        if not path.exists():
            raise CommandError(f"{path} does not exist")
        class_map = _class_map(options["class_map"])
        made_under = self._made_under(project, options)
        try:
            mask_import_check(project=project, annotator=annotator, made_under=made_under)
            sources, outcomes = mask_sources(path)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        if not sources:
            raise CommandError(f"{path} holds no files to import")

        index = image_index_build(project=project)
        sources = mask_sources_group(sources, index=index)
        import_options = ImportOptions(
            invert=options["invert"], geometry=options["geometry"], crowd=options["crowd"]
        )
        stream = getattr(self.stderr, "_out", sys.stderr)
        bar = tqdm(sources, desc="import masks", unit="file", file=stream,
                   disable=options["no_progress"])
        for source in bar:
            bar.set_postfix_str(source.name[-40:], refresh=False)
            outcomes.extend(mask_file_import(
                project=project, annotator=annotator, index=index, source=source,
                format=options["format"], class_map=class_map, dry_run=options["dry_run"],
                options=import_options, made_under=made_under,
            ))
        bar.close()
        report = BatchReport(outcomes=tuple(outcomes))
        self._print(report, dry_run=options["dry_run"])
        if options["report"] is not None:
            options["report"].write_text(json.dumps(report.as_dict(), indent=2))
            self.stdout.write(f"report written to {options['report']}")
        done = report.count(IMPORTED) + report.count(WOULD_IMPORT)
        already = sum(1 for o in report.outcomes if o.reason.startswith("already imported"))
        if done == 0 and already == 0:
            raise CommandError(
                f"nothing was imported from {path}: {report.count(FAILED)} failed, "
                f"{report.count(SKIPPED)} skipped (see the report above)"
            )

    def _made_under(self, project, options):
        """The older guideline version a manager vouches for, or None (the current one)."""
        version, manager = options.get("guideline_version"), options.get("manager")
        if version is None:
            if manager is not None:
                raise CommandError("--manager is only needed with --guideline-version")
            return None
        if manager is None:
            raise CommandError(
                "--guideline-version needs --manager USER: a manager of the project vouches "
                "that the masks were made under that version"
            )
        user = get_user_model().objects.filter(username=manager, is_active=True).first()
        if user is None:
            raise CommandError(f"no active user {manager!r}")
        try:
            made_under = import_guideline_get(project=project, version=version, manager=user)
        except DomainError as exc:
            raise CommandError(f"--guideline-version {version}: {exc.message}") from exc
        self.stdout.write(
            f"importing under guideline version {version} (current: "
            f"{made_under.current_version}), vouched for by {manager}"
        )
        return made_under

    def _print(self, report: BatchReport, *, dry_run: bool) -> None:
        styles = {IMPORTED: self.style.SUCCESS, WOULD_IMPORT: self.style.SUCCESS,
                  SKIPPED: self.style.WARNING, FAILED: self.style.ERROR}
        for o in report.outcomes:
            if o.status in (IMPORTED, WOULD_IMPORT):
                what = f"annotation {o.annotation}" if o.annotation else "dry run"
                detail = (f"-> image {o.image} ({o.image_name}), {what}, {o.instances} cells "
                          f"[{o.format}]")
                if o.warnings or o.skipped:
                    detail += f"; {len(o.warnings)} warnings, {len(o.skipped)} objects skipped"
            else:
                detail = o.reason
            self.stdout.write(styles[o.status](f"{o.status:<12} {o.file}: {detail}"))
            for warning in o.warnings[:5]:
                self.stdout.write(f"{'':<12}   warning: {warning}")
        counts = report.as_dict()
        verb = "would import" if dry_run else "imported"
        self.stdout.write(
            f"{verb} {counts['would_import'] if dry_run else counts['imported']}, "
            f"skipped {counts['skipped']}, failed {counts['failed']}"
        )
