"""Use case: submit an annotation in any mask format (recognised by content).

Import. The uploaded file's format is recognised by its content
(:func:`annotation.masks.detect_format`; a named ``format`` that the content contradicts
is refused), converted to the canonical label image, and stored through
:func:`~annotation.services.annotations.annotation_submit_labels`, so every rule of a
plain submission (annotator only, guideline acknowledged, revisions, idempotency)
applies unchanged. What the converter changed or left out (overlaps resolved, points
and lines skipped, ...) is kept on the row (``Annotation.import_report``) and returned
to the client. The format is kept as ``Annotation.upload_format``.

Classes. Per-instance class names (COCO categories, ImageJ ``class`` properties, QuPath
classifications, Label Studio labels) are stored as ``Annotation.instance_classes``
(``{"<instance id>": "<class>"}``), always spelled as one of ``Project.cell_classes``.
A file's class name maps to a project class by, in order: the caller's ``class_map``;
the exact name; the same name ignoring case and surrounding spaces. Names that map to
nothing are refused (HTTP 400, :class:`UnknownClasses` lists them) and nothing is
stored. A project that defines no cell classes is single-class: classes in a file are
dropped with a warning.

Source. A plain label image (PNG, TIFF) is what an annotator paints in CellCurate or
napari, so it keeps the source the client gives (default ``manual``); every other
format was drawn in another tool and defaults to ``imported``. An explicit ``source``
always wins.

Options. :class:`ImportOptions` carries the reader options a client may give:
``invert`` (polarity of binary masks: true, false, or null to refuse masks that look
inverted), ``geometry`` (QuPath cell or nucleus outlines) and ``crowd`` (COCO
``iscrowd=1`` annotations skipped or imported as instances); the options given are kept
in ``import_report["options"]``, and a physical pixel size read from the file (OME-TIFF,
calibrated TIFF) in ``import_report["pixel_size"]`` (µm; see :func:`annotation_pixel_size`).

Export lives in :mod:`annotation.services.mask_export`.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from django.core.files import File

from annotation.enums import AnnotationSource
from annotation.masks import (
    CROWD_MODES,
    GEOMETRIES,
    MASK_FORMATS,
    ImportResult,
    Limits,
    MaskFormatError,
    PixelSize,
    detect_format,
    read_coco,
    read_labelstudio,
    read_mask,
)
from annotation.masks.formats import unused_options
from annotation.models import Annotation, Assignment, Image, Project
from annotation.services.annotations import SubmitResult, annotation_submit_labels, check_annotator
from annotation.services.images import read_upload_capped
from config.errors import InvalidInput

__all__ = [
    "MULTI_IMAGE_FORMATS",
    "ImportOptions",
    "ParsedMask",
    "annotation_pixel_size",
    "UnknownClasses",
    "annotation_import",
    "classes_map_to_project",
    "mask_entries_read",
    "mask_format_check",
    "mask_limits",
    "mask_parse",
]

#: Formats whose one file may describe several images (entries keyed by image file name).
MULTI_IMAGE_FORMATS = frozenset({"coco", "labelstudio"})
#: Formats an annotator paints directly; they keep the client's ``source`` (default manual).
LABEL_IMAGE_FORMATS = frozenset({"png", "tiff", "ome-tiff"})


@dataclass(frozen=True)
class ImportOptions:
    """Reader options a client may give (see :func:`annotation.masks.read_mask`).

    Attributes
    ----------
    invert : bool or None
        Binary masks: True swaps cells and background, False keeps the foreground
        unchecked, None refuses a mask that looks inverted.
    geometry : {'cell', 'nucleus'}
        QuPath cell objects: which outline to import.
    crowd : {'skip', 'instances'}
        COCO ``iscrowd=1`` annotations: skipped, or one instance each.
    """

    invert: bool | None = None
    geometry: str = "cell"
    crowd: str = "skip"

    def __post_init__(self):
        if self.invert not in (None, True, False):
            raise InvalidInput("invert must be true, false or null", field="invert")
        if self.geometry not in GEOMETRIES:
            raise InvalidInput(
                f"geometry must be one of {', '.join(GEOMETRIES)}", field="geometry"
            )
        if self.crowd not in CROWD_MODES:
            raise InvalidInput(f"crowd must be one of {', '.join(CROWD_MODES)}", field="crowd")

    @property
    def reader_kwargs(self) -> dict:
        """Keyword arguments for :func:`annotation.masks.read_mask`."""
        return {"invert": self.invert, "geometry": self.geometry, "crowd": self.crowd}

    @property
    def given(self) -> dict:
        """The options that differ from the defaults (kept in the import report)."""
        defaults = ImportOptions()
        return {k: v for k, v in self.reader_kwargs.items() if getattr(defaults, k) != v}


class UnknownClasses(InvalidInput):
    """A mask names cell classes the project does not define (HTTP 400, listing them)."""

    code = "unknown_classes"

    def __init__(self, unknown: list[str], *, project: Project):
        self.unknown = unknown
        self.project_classes = list(project.cell_classes or [])
        super().__init__(
            f"the mask uses cell classes {unknown} that project {project.slug!r} does not "
            f"define (its classes: {self.project_classes}); rename them in the file or map "
            "them with class_map",
            field="mask",
        )

    def as_payload(self) -> dict:
        return {
            **super().as_payload(),
            "unknown_classes": self.unknown,
            "project_classes": self.project_classes,
        }


@dataclass(frozen=True)
class ParsedMask:
    """An uploaded mask converted for one image.

    Attributes
    ----------
    labels : ndarray of uint16 or uint32, shape (H, W)
        Canonical label image, ids 1..N.
    classes : dict of int to str
        Project cell class per classified instance id.
    format : str
        Detected format (one of ``MASK_FORMATS``).
    warnings : tuple of str
        What the converter changed (overlaps, border cuts, dropped classes...).
    skipped : tuple of (str, str)
        Objects not imported, with the reason.
    pixel_size : PixelSize or None
        Physical pixel size recorded in the file.
    options : dict
        The reader options given that differ from the defaults.
    """

    labels: np.ndarray
    classes: dict[int, str]
    format: str
    warnings: tuple[str, ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()
    pixel_size: PixelSize | None = None
    options: dict = field(default_factory=dict)

    @property
    def report(self) -> dict:
        """The JSON kept as ``Annotation.import_report``."""
        out = {"warnings": list(self.warnings), "skipped": [list(s) for s in self.skipped]}
        if self.pixel_size is not None:
            out["pixel_size"] = self.pixel_size.as_dict()
        if self.options:
            out["options"] = dict(self.options)
        return out


def annotation_pixel_size(annotation: Annotation) -> PixelSize | None:
    """Physical pixel size of an annotation's mask (µm), when its file recorded one.

    Read from ``import_report["pixel_size"]`` (``{"y", "x", "unit": "µm"}``), else from
    the image's metadata ``pixel_size_um`` (a number, ``[y, x]`` or ``{"y", "x"}``, as the
    guideline rules read it); None when neither gives one. Areas in µm² are pixel counts
    times ``pixel_size.area_um2``.
    """
    candidates = [(annotation.import_report or {}).get("pixel_size"),
                  (annotation.assignment.image.metadata or {}).get("pixel_size_um")]
    for value in candidates:
        if isinstance(value, dict):
            value = (value.get("y"), value.get("x"))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            value = (value, value)
        if isinstance(value, list | tuple) and len(value) == 2:
            try:
                return PixelSize(y=float(value[0]), x=float(value[1]))
            except (TypeError, ValueError, MaskFormatError):
                continue
    return None


def mask_limits() -> Limits:
    """Parser caps: the library defaults, tightened to the site's image size caps."""
    return Limits(
        max_pixels=settings.CELLCURATE_MAX_IMAGE_PIXELS,
        max_file_bytes=min(Limits().max_file_bytes, settings.CELLCURATE_MAX_IMAGE_BYTES),
        max_decoded_bytes=settings.CELLCURATE_MAX_DECODED_BYTES,
        max_json_bytes=settings.CELLCURATE_MAX_JSON_BYTES,
        max_zip_total_bytes=settings.CELLCURATE_MAX_ZIP_BYTES,
    )


def mask_format_check(format: str, *, allowed, field: str = "format") -> str:
    """``format`` if it is one of ``allowed``, else a 400 listing them."""
    if format == "auto" and "auto" in allowed:
        return format
    if format not in allowed:
        raise InvalidInput(
            f"unknown mask format {format!r}; expected one of {', '.join(allowed)}",
            field=field, code="unknown_format",
        )
    return format


def classes_map_to_project(
    classes: Mapping[int, str], *, project: Project, class_map: Mapping[str, str] | None = None
) -> tuple[dict[int, str], tuple[str, ...]]:
    """Spell a file's class names as the project's cell classes (module docstring rules).

    Returns the mapped classes and warnings; raises :class:`UnknownClasses` for names
    that map to no project class (or a ``class_map`` target that is not one).
    """
    project_classes = list(project.cell_classes or [])
    class_map = dict(class_map or {})
    if not classes:
        return {}, ()
    if not project_classes:
        names = sorted(set(classes.values()))
        return {}, (
            f"project {project.slug!r} defines no cell classes; the file's classes {names} "
            "were not kept",
        )
    bad_targets = sorted({t for t in class_map.values() if t not in project_classes})
    if bad_targets:
        raise InvalidInput(
            f"class_map maps to {bad_targets}, which are not cell classes of project "
            f"{project.slug!r} ({project_classes})",
            field="class_map",
        )
    folded: dict[str, list[str]] = {}
    for name in project_classes:
        folded.setdefault(name.strip().casefold(), []).append(name)
    out: dict[int, str] = {}
    unknown: set[str] = set()
    for instance, name in classes.items():
        if name in class_map:
            out[int(instance)] = class_map[name]
        elif name in project_classes:
            out[int(instance)] = name
        elif len(folded.get(name.strip().casefold(), [])) == 1:
            out[int(instance)] = folded[name.strip().casefold()][0]
        else:
            unknown.add(name)
    if unknown:
        raise UnknownClasses(sorted(unknown), project=project)
    return out, ()


def _entry_key_matches(key: str, image_name: str) -> bool:
    base = posixpath.basename(key.split("#", 1)[0].replace("\\", "/"))
    return key == image_name or base == posixpath.basename(image_name.replace("\\", "/"))


def mask_entries_read(
    data: bytes, *, format: str, options: ImportOptions | None = None
) -> dict[str, ImportResult]:
    """All entries of a multi-image file (COCO, Label Studio), keyed by image file name."""
    options = options or ImportOptions()
    if format == "coco":
        return read_coco(data, limits=mask_limits(), crowd=options.crowd)
    if format == "labelstudio":
        return read_labelstudio(data, limits=mask_limits())
    raise ValueError(f"{format!r} is not a multi-image format")


def _pick_entry(
    entries: dict[str, ImportResult], *, image: Image, image_name: str | None
) -> ImportResult:
    if image_name is not None:
        found = [k for k in entries if _entry_key_matches(k, image_name)]
    elif len(entries) == 1:
        found = list(entries)
    else:
        names = {image.original_name, f"{image.sha256}.{image.format}"} - {""}
        found = [k for k in entries if any(_entry_key_matches(k, n) for n in names)]
    if len(found) != 1:
        wanted = image_name or image.original_name or image.sha256
        raise InvalidInput(
            f"the file describes {len(entries)} images {sorted(entries)[:10]}; "
            + (f"{len(found)} of them match {wanted!r}" if found else f"none is {wanted!r}")
            + "; say which one with image_name",
            field="image_name",
        )
    return entries[found[0]]


def mask_parse(
    *,
    project: Project,
    image: Image,
    data: bytes,
    format: str = "auto",
    image_name: str | None = None,
    class_map: Mapping[str, str] | None = None,
    entry: ImportResult | None = None,
    detected: str | None = None,
    options: ImportOptions | None = None,
) -> ParsedMask:
    """Convert an uploaded mask file for ``image`` (shape checked, classes mapped).

    ``image_name`` picks the entry of a COCO or Label Studio file describing several
    images (default: the only entry, else the one named like the image). A caller that
    already read a multi-image file passes the ``entry`` and ``detected`` format.
    """
    mask_format_check(format, allowed=("auto", *MASK_FORMATS))
    options = options or ImportOptions()
    if (entry is None) != (detected is None):
        raise ValueError("pass both entry and detected (an already read entry), or neither")
    shape = (image.height, image.width)
    try:
        if entry is None:
            detected = detect_format(data, limits=mask_limits())
            if format != "auto" and format != detected:
                raise MaskFormatError(f"The file content is {detected}, not {format}.")
            if detected in MULTI_IMAGE_FORMATS:
                entries = mask_entries_read(data, format=detected, options=options)
                entry = _pick_entry(entries, image=image, image_name=image_name)
                ignored = unused_options(detected, **options.reader_kwargs)
                entry = ImportResult(
                    labels=entry.labels, classes=entry.classes, skipped=entry.skipped,
                    warnings=tuple(entry.warnings) + ignored, pixel_size=entry.pixel_size,
                )
            else:
                entry = read_mask(
                    data, format=detected, shape=shape, limits=mask_limits(),
                    **options.reader_kwargs,
                )
    except MaskFormatError as exc:
        raise InvalidInput(f"mask: {exc}", field="mask") from exc
    if entry.labels.shape != shape:
        raise InvalidInput(
            f"mask is {entry.labels.shape[0]} x {entry.labels.shape[1]} (height x width) but "
            f"the image is {image.height} x {image.width}",
            field="mask",
        )
    classes, class_warnings = classes_map_to_project(
        entry.classes, project=project, class_map=class_map
    )
    return ParsedMask(
        labels=entry.labels, classes=classes, format=detected,
        warnings=tuple(entry.warnings) + class_warnings, skipped=tuple(entry.skipped),
        pixel_size=entry.pixel_size, options=options.given,
    )


def annotation_import(
    *,
    actor,
    assignment: Assignment,
    mask_data: bytes | File,
    format: str = "auto",
    image_name: str | None = None,
    class_map: Mapping[str, str] | None = None,
    source: str | None = None,
    import_options: ImportOptions | None = None,
    **options,
) -> SubmitResult:
    """Submit a mask file of any supported format as the assignment's next revision.

    Same preconditions and options (``base_revision``, ``if_match_revision``,
    ``idempotency_key``, ``time_spent_s``) as
    :func:`~annotation.services.annotations.annotation_submit_labels`; ``source=None``
    picks ``manual`` for PNG/TIFF and ``imported`` otherwise; ``import_options`` are the
    reader options (:class:`ImportOptions`). Refused files (unknown format or classes,
    hostile content, wrong size, inverted-looking or intensity images) leave no row and
    no file.
    """
    check_annotator(actor=actor, assignment=assignment)
    if not isinstance(mask_data, bytes | bytearray):
        mask_data = read_upload_capped(mask_data, name=mask_data.name or "mask", field="mask")
    parsed = mask_parse(
        project=assignment.image.project, image=assignment.image, data=bytes(mask_data),
        format=format, image_name=image_name, class_map=class_map, options=import_options,
    )
    if source is None:
        source = (
            AnnotationSource.MANUAL if parsed.format in LABEL_IMAGE_FORMATS
            else AnnotationSource.IMPORTED
        )
    return annotation_submit_labels(
        actor=actor, assignment=assignment, labels=parsed.labels, source=source,
        instance_classes=parsed.classes, upload_format=parsed.format,
        import_report=parsed.report, **options,
    )
