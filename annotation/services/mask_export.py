"""Use cases: render any mask in any write format; export a project's annotations.

:func:`mask_render` is the one dispatcher from a label image (plus classes) to the
bytes, media type and file name of a write format; annotation downloads
(:func:`annotation_mask_render`) and :func:`annotations_export` use it, and consensus or
snapshot masks can too.

Layout of an export (paths relative to the output folder)::

    manifest.json                         every file: annotation, image, sha256, classes
    <annotator>/<image stem>_masks.png    png / tiff: one label image per image
    <annotator>/<image stem>_seg.npy      cellpose
    <annotator>/<image stem>_rois.zip     imagej
    <annotator>/<image stem>.geojson      geojson
    <annotator>/annotations_coco.json     coco: one file with all of the annotator's images

Only the latest revision of each assignment is exported. The names are the ones
``import_annotations`` matches, so ``import_annotations OUT/<annotator> --annotator
<annotator>`` reads an export back. COCO gives unclassified instances the project's
first cell class (it needs a category for every instance).
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.core.files.storage import default_storage
from django.db.models import Max, OuterRef, Subquery

from annotation.enums import AssignmentStatus
from annotation.masks import (
    FORMAT_INFO,
    WRITE_FORMATS,
    CocoImage,
    MaskFormatError,
    PixelSize,
    read_label_image,
    write_coco,
    write_mask,
)
from annotation.models import Annotation, Image, Project
from annotation.services.mask_formats import annotation_pixel_size, mask_format_check
from config.errors import InvalidInput

__all__ = [
    "EXPORT_STATUSES",
    "ExportFile",
    "RenderedMask",
    "annotation_classes",
    "annotation_labels",
    "annotation_mask_render",
    "annotations_export",
    "annotations_latest",
    "image_file_stem",
    "mask_render",
    "project_default_class",
]

#: ``status`` values :func:`annotations_latest` accepts: an assignment status, or all.
EXPORT_STATUSES = ("all", *(s.value for s in AssignmentStatus))


@dataclass(frozen=True)
class RenderedMask:
    """A mask written in one format, ready to download or save."""

    content: bytes
    content_type: str
    filename: str



def mask_render(
    labels: np.ndarray,
    *,
    format: str,
    stem: str,
    classes: Mapping[int, str] | None = None,
    default_class: str | None = None,
    image_name: str = "image.tif",
    pixel_size: PixelSize | None = None,
) -> RenderedMask:
    """Write a label image (ndarray of int, shape (H, W)) in one of ``WRITE_FORMATS``.

    ``stem`` names the file (the format's suffix is appended: ``.png``, ``.tif``,
    ``_seg.npy``, ``_rois.zip``, ``_coco.json``, ``.geojson``); ``image_name`` is the
    image file name COCO and Cellpose record; ``default_class`` is given to instances
    ``classes`` leaves out; ``pixel_size`` is written into OME-TIFF. An unknown format is
    a 400 listing the valid ones; a label image the format cannot hold (over 65,535 ids
    in PNG) a 400.
    """
    mask_format_check(format, allowed=WRITE_FORMATS)
    if default_class is not None:
        ids = np.unique(labels)
        classes = {int(i): default_class for i in ids[ids > 0]} | dict(classes or {})
    try:
        content = write_mask(
            labels, format=format, classes=classes, image_name=image_name, pixel_size=pixel_size
        )
    except MaskFormatError as exc:
        raise InvalidInput(f"cannot write this mask as {format}: {exc}", field="format") from exc
    info = FORMAT_INFO[format]
    return RenderedMask(content=content, content_type=info.media_type, filename=f"{stem}{info.suffix}")


def image_file_stem(image: Image) -> str:
    """The image's original file name without its extension (the sha256 when it has none)."""
    name = posixpath.basename((image.original_name or "").replace("\\", "/"))
    lowered = name.lower()
    for ext in (".ome.tiff", ".ome.tif"):
        if lowered.endswith(ext):
            return name[: -len(ext)]
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return stem or image.sha256


def annotation_labels(annotation: Annotation) -> np.ndarray:
    """The stored label image of an annotation (uint16 or uint32, shape (H, W))."""
    with default_storage.open(annotation.mask.name, "rb") as fh:
        data = fh.read()
    return read_label_image(data, max_pixels=settings.CELLCURATE_MAX_IMAGE_PIXELS)


def annotation_classes(annotation: Annotation) -> dict[int, str]:
    """Class per classified instance id of an annotation."""
    return {int(k): v for k, v in (annotation.instance_classes or {}).items()}


def project_default_class(project: Project) -> str | None:
    """The class given to unclassified instances where a format needs one: the first cell class."""
    return project.cell_classes[0] if project.cell_classes else None


def annotation_mask_render(*, annotation: Annotation, format: str) -> RenderedMask:
    """An annotation's mask in ``format`` (caller checked the user may read it)."""
    mask_format_check(format, allowed=WRITE_FORMATS)
    image = annotation.assignment.image
    return mask_render(
        annotation_labels(annotation), format=format,
        classes=annotation_classes(annotation),
        default_class=project_default_class(image.project) if format == "coco" else None,
        stem=f"image{image.pk}_annotation{annotation.pk}_r{annotation.revision}",
        image_name=image.original_name or f"{image.sha256}.{image.format}",
        pixel_size=annotation_pixel_size(annotation),
    )


@dataclass(frozen=True)
class ExportFile:
    """One file of an export: where it goes (relative POSIX path) and its bytes."""

    path: str
    content: bytes
    annotations: tuple[int, ...]


def annotations_latest(
    *, project: Project, status: str = AssignmentStatus.SUBMITTED, annotator=None
) -> list[Annotation]:
    """The latest revision of every assignment of the project, by annotator then image.

    ``status`` filters on the assignment status (``'all'``: no filter).
    """
    if status not in EXPORT_STATUSES:
        raise InvalidInput(
            f"status {status!r} is not one of {', '.join(EXPORT_STATUSES)}", field="status"
        )
    latest = (
        Annotation.objects.filter(assignment=OuterRef("assignment"))
        .values("assignment").annotate(r=Max("revision")).values("r")
    )
    qs = Annotation.objects.filter(
        assignment__image__project=project, revision=Subquery(latest)
    ).select_related("assignment__image__project", "created_by", "guideline_version")
    if status != "all":
        qs = qs.filter(assignment__status=status)
    if annotator is not None:
        qs = qs.filter(assignment__annotator=annotator)
    return list(qs.order_by("created_by__username", "assignment__image_id"))


def _stems(annotations: list[Annotation]) -> dict[int, str]:
    """Image stem per image id, made unique (``__image<id>``) where two images share one."""
    stems = {a.assignment.image_id: image_file_stem(a.assignment.image) for a in annotations}
    seen: dict[str, int] = {}
    for stem in stems.values():
        seen[stem] = seen.get(stem, 0) + 1
    return {i: (s if seen[s] == 1 else f"{s}__image{i}") for i, s in stems.items()}


def _image_name(annotation: Annotation) -> str:
    image = annotation.assignment.image
    return image.original_name or f"{image.sha256}.{image.format}"


def annotations_export(
    *, project: Project, format: str, status: str = AssignmentStatus.SUBMITTED, annotator=None
) -> Iterator[ExportFile]:
    """Yield the export's files (see the module docstring), ``manifest.json`` last."""
    mask_format_check(format, allowed=WRITE_FORMATS)
    annotations = annotations_latest(project=project, status=status, annotator=annotator)
    stems = _stems(annotations)
    default = project_default_class(project)
    manifest = []
    coco: dict[str, list[tuple[Annotation, CocoImage]]] = {}
    for annotation in annotations:
        user = annotation.created_by.username
        labels = annotation_labels(annotation)
        classes = annotation_classes(annotation)
        if format == "coco":
            if default is not None:
                ids = np.unique(labels)
                classes = {int(i): default for i in ids[ids > 0]} | classes
            coco.setdefault(user, []).append(
                (annotation, CocoImage(file_name=_image_name(annotation), labels=labels,
                                       classes=classes))
            )
            continue
        stem = stems[annotation.assignment.image_id]
        rendered = mask_render(
            labels, format=format, classes=classes, image_name=_image_name(annotation),
            stem=f"{stem}_masks" if format in ("png", "tiff", "ome-tiff") else stem,
            pixel_size=annotation_pixel_size(annotation),
        )
        path = f"{user}/{rendered.filename}"
        manifest.append(_manifest_row(annotation, path))
        yield ExportFile(path=path, content=rendered.content, annotations=(annotation.pk,))
    for user, items in coco.items():
        path = f"{user}/annotations_coco.json"
        for annotation, _ in items:
            manifest.append(_manifest_row(annotation, path))
        yield ExportFile(
            path=path, content=write_coco([image for _, image in items]),
            annotations=tuple(a.pk for a, _ in items),
        )
    body = {"project": project.slug, "format": format, "status": status, "files": manifest}
    yield ExportFile(
        path="manifest.json", content=json.dumps(body, indent=2).encode(),
        annotations=tuple(a.pk for a in annotations),
    )


def _manifest_row(annotation: Annotation, path: str) -> dict:
    image = annotation.assignment.image
    return {
        "file": path, "annotation": annotation.pk, "revision": annotation.revision,
        "annotator": annotation.created_by.username, "image": image.pk,
        "image_name": image.original_name, "image_sha256": image.sha256,
        "mask_sha256": annotation.sha256, "instance_count": annotation.instance_count,
        "instance_classes": annotation.instance_classes, "source": annotation.source,
        "guideline_version": annotation.guideline_version.version,
    }
