"""Use case: import a folder or zip of mask files for one annotator, matched to project images.

Matching. A mask file belongs to the project image whose original file name has the
same stem once the mask's own suffixes are removed: the extension (``.roi.zip``,
``.ome.tif`` and ``.tar``-like double extensions included) and then the suffixes
tools add (``_cp_masks``, ``_seg``, ``_masks``, ``_mask``, ``_labels``, ``_label``,
``_rois``, ``_roi``, ``_coco``, ``_annotations``). Stems compare exactly, then
ignoring case. A file whose stem is the sha256 of an image's bytes matches that image
too. COCO and Label Studio files describe several images: each entry is matched by
its own ``file_name``. A file with the same bytes as a project image *is* that image
(a folder of images and masks side by side) and is skipped. Fiji's ROI Manager default
``RoiSet.zip`` is understood as ``<image>_RoiSet.zip``, and a file with a generic name
(``RoiSet.zip``, ``masks.tif``, ``labels.png``...) inside a folder named after an image
belongs to that image.

Per-image folders. A folder that holds only ``.roi`` files (how CryoNuSeg ships its
annotations), or only PNG/TIFF files (one binary mask per instance: the DSB 2018
``<id>/masks/*.png`` layout, Kaggle sets, Label Studio's brush export), is read as one
mask when the folder is named after an image (``<image>/``, ``<image>_masks/``, or
``<image>/masks/``, ``<image>/rois/``) and none of its files is named after an image
itself: the ROIs form one ROI set, the binary masks one label image (overlaps reported
as for polygons). See :func:`annotation.services.mask_folders.mask_sources_group`.

Each matched mask is imported in its own transaction as a new annotation of the
annotator's assignment for that image (created when missing), ``source='imported'``,
with an idempotency key derived from the file's content and the image: running the
same import twice imports nothing new. An image that already has a revision from that
annotator is left alone (skipped). One bad file never stops the batch: its outcome is
``failed`` with the reason.
"""

from __future__ import annotations

import hashlib
import posixpath
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Max

from annotation.access import project_role_get
from annotation.enums import AnnotationSource, AssignmentStatus, Role
from annotation.masks import MaskFormatError, detect_format
from annotation.masks.safety import SafeZip
from annotation.models import Annotation, Assignment, Image, Project
from annotation.services.mask_export import image_file_stem
from annotation.services.mask_formats import (
    MULTI_IMAGE_FORMATS,
    ImportOptions,
    ParsedMask,
    mask_entries_read,
    mask_limits,
    mask_parse,
)
from config.errors import DomainError, InvalidInput
from guidelines.selectors import acknowledgement_exists, guideline_published_get

from .annotations import annotation_submit_labels
from .import_guideline import with_guideline_note

__all__ = [
    "BatchReport",
    "FileOutcome",
    "ImageIndex",
    "MaskSource",
    "image_index_build",
    "mask_file_import",
    "mask_import_check",
    "mask_name_stems",
    "mask_sources",
]

#: Suffixes that mask-writing tools append to the image stem (longest first).
MASK_SUFFIXES = (
    "_annotations", "_instances", "_cp_masks", "_roiset", "_labels", "_masks", "_label",
    "_rois", "_coco", "_mask", "_seg", "_roi",
)
#: File stems that name no image: such a file belongs to the image its folder is named after.
GENERIC_STEMS = frozenset({
    "roiset", "rois", "roi", "masks", "mask", "labels", "label", "instances", "annotations",
    "cp_masks", "seg", "coco",
})
#: Sub-folder names under an image's folder that hold its per-instance masks or ROIs.
INSTANCE_FOLDERS = frozenset({"masks", "mask", "rois", "roi", "instances", "labels"})
_DOUBLE_EXTENSIONS = (".roi.zip", ".ome.tiff", ".ome.tif", ".seg.npy")
_SKIP_NAMES = (".DS_Store", "Thumbs.db", "desktop.ini")

IMPORTED, SKIPPED, FAILED, WOULD_IMPORT = "imported", "skipped", "failed", "would_import"


@dataclass(frozen=True)
class MaskSource:
    """One file of the batch: its name (relative to the folder or zip) and how to read it.

    ``match_name`` (default: ``name``) is what is matched to an image: for a per-image
    folder read as one mask, the folder.
    """

    name: str
    read: Callable[[], bytes]
    match_name: str | None = None


@dataclass(frozen=True)
class FileOutcome:
    """What happened to one file (or one entry of a multi-image file)."""

    file: str
    status: str
    reason: str = ""
    format: str = ""
    image: int | None = None
    image_name: str = ""
    annotation: int | None = None
    instances: int | None = None
    warnings: tuple[str, ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()

    def as_dict(self) -> dict:
        out = asdict(self)
        out["warnings"] = list(self.warnings)
        out["skipped"] = [list(s) for s in self.skipped]
        return out


@dataclass(frozen=True)
class BatchReport:
    """Every file's outcome, in processing order."""

    outcomes: tuple[FileOutcome, ...] = field(default_factory=tuple)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    def as_dict(self) -> dict:
        return {
            "imported": self.count(IMPORTED), "would_import": self.count(WOULD_IMPORT),
            "skipped": self.count(SKIPPED), "failed": self.count(FAILED),
            "files": [o.as_dict() for o in self.outcomes],
        }


def mask_name_stems(name: str) -> list[str]:
    """Candidate image stems for a mask file name, most specific first.

    ``"a/caulo_15_cp_masks.tif"`` gives ``["caulo_15_cp_masks", "caulo_15"]``.
    """
    base = posixpath.basename(name.replace("\\", "/"))
    lowered = base.lower()
    for ext in _DOUBLE_EXTENSIONS:
        if lowered.endswith(ext):
            base = base[: -len(ext)]
            break
    else:
        base = base.rsplit(".", 1)[0] if "." in base.lstrip(".") else base
    stems = [base]
    changed = True
    while changed:
        changed = False
        for suffix in MASK_SUFFIXES:
            if stems[-1].lower().endswith(suffix) and len(stems[-1]) > len(suffix):
                stems.append(stems[-1][: -len(suffix)])
                changed = True
                break
    return stems


@dataclass(frozen=True)
class ImageIndex:
    """A project's images by file stem (exact and case-folded) and by sha256."""

    by_stem: dict[str, list[Image]]
    by_folded: dict[str, list[Image]]
    by_sha256: dict[str, Image]

    def match(self, name: str) -> list[Image]:
        """Images a mask file name points to (empty: none; several: ambiguous).

        A generic file name (``RoiSet.zip``, ``masks.tif``, :data:`GENERIC_STEMS`) is
        matched by the folder it lies in (skipping a ``masks/``-like sub-folder).
        """
        found = self.match_exact(name)
        if found:
            return found
        name = name.replace("\\", "/")
        parts = [p for p in name.split("/") if p]
        if len(parts) >= 2 and mask_name_stems(parts[-1])[0].casefold() in GENERIC_STEMS:
            folders = parts[:-1]
            if len(folders) >= 2 and folders[-1].casefold() in INSTANCE_FOLDERS:
                folders = folders[:-1]
            return self.match_exact(folders[-1])
        return []

    def match_exact(self, name: str) -> list[Image]:
        """Images a file name points to by its own stems only (no folder fallback)."""
        for stem in mask_name_stems(name):
            if stem.lower() in self.by_sha256:
                return [self.by_sha256[stem.lower()]]
            if stem in self.by_stem:
                return self.by_stem[stem]
            if stem.casefold() in self.by_folded:
                return self.by_folded[stem.casefold()]
        return []


def image_index_build(*, project: Project) -> ImageIndex:
    """Index every image of the project for :meth:`ImageIndex.match`."""
    by_stem: dict[str, list[Image]] = {}
    by_folded: dict[str, list[Image]] = {}
    by_sha256: dict[str, Image] = {}
    for image in Image.objects.filter(project=project).select_related("project").order_by("id"):
        stem = image_file_stem(image)
        by_stem.setdefault(stem, []).append(image)
        by_folded.setdefault(stem.casefold(), []).append(image)
        by_sha256[image.sha256] = image
    return ImageIndex(by_stem=by_stem, by_folded=by_folded, by_sha256=by_sha256)


def mask_import_check(*, project: Project, annotator, made_under=None) -> None:
    """Preconditions of a batch import (checked once, before any file is read).

    The annotator is an active member with the annotator role, and has acknowledged
    the project's current published guideline version, unless the masks are imported
    under an older version a manager vouched for (``made_under``, from
    :func:`annotation.services.import_guideline.import_guideline_get`).
    """
    if project_role_get(user=annotator, project=project) != Role.ANNOTATOR:
        raise InvalidInput(
            f"user {annotator.username!r} is not an annotator of project {project.slug!r}",
            field="annotator",
        )
    guideline = guideline_published_get(project=project)
    if guideline is None:
        raise InvalidInput(
            f"project {project.slug!r} has no published guideline; annotations are made "
            "under a published guideline version", field="guideline",
        )
    if made_under is None and not acknowledgement_exists(user=annotator, guideline_version=guideline):
        raise InvalidInput(
            f"{annotator.username!r} has not acknowledged guideline version {guideline.version} "
            f"({guideline.title!r}) of project {project.slug!r}; imported masks are submitted "
            "as theirs, under that version", field="guideline",
        )


# ------------------------------------------------------------------------- sources


def _is_junk(name: str) -> bool:
    parts = name.split("/")
    return any(p.startswith(".") or p == "__MACOSX" for p in parts) or parts[-1] in _SKIP_NAMES


def mask_sources(path: Path) -> tuple[list[MaskSource], list[FileOutcome]]:
    """The files of a folder (recursively) or a zip, in name order, and those left out.

    Zips are read with :class:`annotation.masks.safety.SafeZip` (entry-count, size and
    ratio caps checked before inflating, then one member at a time; absolute paths,
    ``..``, backslashes and links refused: the whole archive is refused with
    :class:`~config.errors.InvalidInput`). In a folder, symbolic links,
    hidden files and files over the byte cap are left out with a reason.
    """
    limit = settings.CELLCURATE_MAX_IMAGE_BYTES
    left_out: list[FileOutcome] = []
    if path.is_dir():
        sources = []
        for file in sorted(path.rglob("*")):
            name = file.relative_to(path).as_posix()
            if file.is_symlink():
                left_out.append(FileOutcome(name, SKIPPED, "a symbolic link; not followed"))
            elif not file.is_file() or _is_junk(name):
                continue
            elif file.stat().st_size > limit:
                left_out.append(FileOutcome(name, FAILED, f"over the {limit:,}-byte limit"))
            else:
                sources.append(MaskSource(name, file.read_bytes))
        return sources, left_out
    if path.is_file() and zipfile.is_zipfile(path):
        if path.stat().st_size > limit:
            raise InvalidInput(f"{path.name}: over the {limit:,}-byte limit", field="path")
        try:
            # Checked from the central directory (count, names, sizes, ratio) without
            # inflating anything; each member is inflated only when its turn comes, under
            # one running byte budget. Unsafe entries refuse the whole archive.
            archive = SafeZip(path, limits=mask_limits())
        except MaskFormatError as exc:
            raise InvalidInput(f"{path.name}: {exc}", field="path") from exc
        sources = [
            MaskSource(name, (lambda name=name: archive.read(name)))
            for name in sorted(archive.names)
            if not _is_junk(name)
        ]
        return sources, left_out
    raise InvalidInput(f"{path} is neither a folder nor a zip archive", field="path")


# -------------------------------------------------------------------------- import


def _import_key(file_sha256: str, image: Image, entry: str) -> str:
    digest = hashlib.sha256(f"{file_sha256}:{image.pk}:{entry}".encode()).hexdigest()
    return f"import:{digest[:40]}"


def _submit(
    *, annotator, image: Image, parsed: ParsedMask, key: str, file: str, dry_run: bool,
    made_under=None,
) -> FileOutcome:
    common = dict(
        file=file, format=parsed.format, image=image.pk, image_name=image.original_name,
        instances=int(parsed.labels.max()) if parsed.labels.size else 0,
        warnings=parsed.warnings, skipped=parsed.skipped,
    )
    earlier = Annotation.objects.filter(created_by=annotator, idempotency_key=key).first()
    if earlier is not None:
        return FileOutcome(
            status=SKIPPED, annotation=earlier.pk,
            reason=f"already imported as annotation {earlier.pk} (revision {earlier.revision})",
            **common,
        )
    assignment = Assignment.objects.filter(image=image, annotator=annotator).first()
    if assignment is not None:
        latest = Annotation.objects.filter(assignment=assignment).aggregate(r=Max("revision"))["r"]
        if latest:
            return FileOutcome(
                status=SKIPPED,
                reason=f"{annotator.username} already has revision {latest} of this image; "
                "not overwritten",
                **common,
            )
        if assignment.status == AssignmentStatus.SKIPPED:
            return FileOutcome(
                status=FAILED, reason=f"assignment {assignment.pk} was skipped by the annotator",
                **common,
            )
    if dry_run:
        return FileOutcome(status=WOULD_IMPORT, **common)
    with transaction.atomic():
        if assignment is None:
            assignment = Assignment.objects.create(
                image=image, annotator=annotator, status=AssignmentStatus.PENDING
            )
        result = annotation_submit_labels(
            actor=annotator, assignment=assignment, labels=parsed.labels,
            source=AnnotationSource.IMPORTED, idempotency_key=key,
            instance_classes=parsed.classes, upload_format=parsed.format,
            import_report=with_guideline_note(parsed.report, made_under),
            made_under=made_under.version if made_under is not None else None,
        )
    return FileOutcome(status=IMPORTED, annotation=result.annotation.pk, **common)


def _one_image(index: ImageIndex, name: str) -> tuple[Image | None, FileOutcome | None]:
    images = index.match(name)
    if not images:
        stems = ", ".join(repr(s) for s in mask_name_stems(name))
        return None, FileOutcome(name, SKIPPED, f"no image of the project is named {stems}")
    if len(images) > 1:
        ids = ", ".join(f"{i.pk} ({i.original_name})" for i in images)
        return None, FileOutcome(name, FAILED, f"ambiguous: matches images {ids}")
    return images[0], None


def _failure(file: str, exc: Exception, **extra) -> FileOutcome:
    if isinstance(exc, DomainError):
        reason = exc.message
    elif isinstance(exc, MaskFormatError):
        reason = str(exc)
    else:
        reason = f"{type(exc).__name__}: {exc}"
    return FileOutcome(file, FAILED, reason, **extra)


def mask_file_import(
    *,
    project: Project,
    annotator,
    index: ImageIndex,
    source: MaskSource,
    format: str = "auto",
    class_map: dict[str, str] | None = None,
    dry_run: bool = False,
    options: ImportOptions | None = None,
    made_under=None,
) -> list[FileOutcome]:
    """Import one file of a batch; its outcomes (several for a multi-image file).

    Preconditions: :func:`mask_import_check` passed. Never raises for a bad file: the
    outcome is ``failed`` with the reason.
    """
    try:
        data = source.read()
        file_sha256 = hashlib.sha256(data).hexdigest()
        if file_sha256 in index.by_sha256:
            image = index.by_sha256[file_sha256]
            return [FileOutcome(source.name, SKIPPED, f"this is image {image.pk} itself "
                                f"({image.original_name}), not a mask", image=image.pk)]
        detected = detect_format(data, limits=mask_limits())
        if format != "auto" and format != detected:
            raise MaskFormatError(f"The file content is {detected}, not {format}.")
    except Exception as exc:  # one bad file is reported, never fatal
        return [_failure(source.name, exc)]
    if detected in MULTI_IMAGE_FORMATS:
        return list(_import_entries(
            project=project, annotator=annotator, index=index, name=source.name, data=data,
            file_sha256=file_sha256, detected=detected, class_map=class_map, dry_run=dry_run,
            options=options, made_under=made_under,
        ))
    image, outcome = _one_image(index, source.match_name or source.name)
    if outcome is not None:
        return [replace(outcome, file=source.name)]
    try:
        parsed = mask_parse(project=project, image=image, data=data, format=detected,
                            class_map=class_map, options=options)
        return [_submit(annotator=annotator, image=image, parsed=parsed,
                        key=_import_key(file_sha256, image, ""), file=source.name,
                        dry_run=dry_run, made_under=made_under)]
    except Exception as exc:  # one bad file is reported, never fatal
        return [_failure(source.name, exc, format=detected, image=image.pk,
                         image_name=image.original_name)]


def _import_entries(
    *, project, annotator, index, name, data, file_sha256, detected, class_map, dry_run,
    options, made_under=None,
) -> Iterator[FileOutcome]:
    try:
        entries = mask_entries_read(data, format=detected, options=options)
    except Exception as exc:  # one bad file is reported, never fatal
        yield _failure(name, exc, format=detected)
        return
    for key, entry in entries.items():
        file = f"{name}#{key}"
        image, outcome = _one_image(index, key.split("#", 1)[0])
        if outcome is not None:
            yield FileOutcome(file, outcome.status, outcome.reason, format=detected)
            continue
        try:
            parsed = mask_parse(project=project, image=image, data=data, entry=entry,
                                detected=detected, class_map=class_map, options=options)
            yield _submit(annotator=annotator, image=image, parsed=parsed,
                          key=_import_key(file_sha256, image, key), file=file, dry_run=dry_run,
                          made_under=made_under)
        except Exception as exc:  # one bad entry is reported, never fatal
            yield _failure(file, exc, format=detected, image=image.pk,
                           image_name=image.original_name)
