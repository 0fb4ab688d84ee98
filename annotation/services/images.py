"""Use cases for images: upload one or many, recognised by content, deduplicated by sha256."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.core.files import File
from django.db import IntegrityError, transaction

from annotation.access import check_project_role
from annotation.enums import Role
from annotation.imagefiles import ImageFileError, read_image
from annotation.masks import MaskFormatError
from annotation.masks.ometiff import tiff_facts
from annotation.models import Image, Project
from annotation.services.storage import StagedFiles, staged_files
from config.errors import InvalidInput

UPLOAD_ROLES = (Role.MANAGER,)
_EXTENSIONS = {"tiff": "tif", "png": "png", "jpeg": "jpg"}
_METADATA_LIMITS = {"plate": 100, "well": 20, "site": 20, "batch": 100, "modality": 50, "stain": 100}


@dataclass(frozen=True)
class ImageMetadata:
    """Acquisition metadata kept with an image (splits and agreement are grouped by it)."""

    plate: str = ""
    well: str = ""
    site: str = ""
    batch: str = ""
    modality: str = ""
    stain: str = ""
    extra: Mapping = field(default_factory=dict)
    is_gold: bool = False


@dataclass(frozen=True)
class UploadedImage:
    """One file's outcome: the image row and whether this call created it, or why the file
    was refused (``image`` is None and ``error`` names the problem)."""

    image: Image | None
    created: bool
    name: str = ""
    error: str | None = None


def _check_metadata(metadata: ImageMetadata) -> None:
    for name, limit in _METADATA_LIMITS.items():
        value = getattr(metadata, name)
        if not isinstance(value, str):
            raise InvalidInput(f"{name} must be text", field=name)
        if len(value) > limit:
            raise InvalidInput(f"{name} is longer than {limit} characters", field=name)
    if not isinstance(metadata.extra, Mapping):
        raise InvalidInput("metadata must be a JSON object", field="metadata")


def read_upload_capped(upload: File, *, name: str, field: str = "file") -> bytes:
    """The upload's bytes, refusing files over the byte cap before reading them."""
    limit = settings.CELLCURATE_MAX_IMAGE_BYTES
    size = getattr(upload, "size", None)
    if size is not None and size > limit:
        raise InvalidInput(f"{name}: {size:,} bytes is over the {limit:,}-byte limit", field=field)
    if hasattr(upload, "seek"):
        upload.seek(0)
    data = upload.read(limit + 1)
    if len(data) > limit:
        raise InvalidInput(f"{name}: file is over the {limit:,}-byte limit", field=field)
    return bytes(data)


def _store_one(
    *, staged: StagedFiles, actor, project: Project, upload: File, metadata: ImageMetadata,
    seen: dict[str, Image],
) -> UploadedImage:
    name = getattr(upload, "name", None) or "upload"
    data = read_upload_capped(upload, name=name)
    if not data:
        raise InvalidInput(f"{name}: the file is empty (0 bytes)", field="file")
    sha256 = hashlib.sha256(data).hexdigest()
    if sha256 in seen:
        return UploadedImage(image=seen[sha256], created=False, name=name)
    existing = Image.objects.filter(project=project, sha256=sha256).first()
    if existing is not None:
        return UploadedImage(image=existing, created=False, name=name)
    try:
        # read_image checks the header (format by content, pixel cap) before decoding, and
        # decoding everything catches truncated or corrupt pixel data at upload time.
        _, info = read_image(
            data, max_pixels=settings.CELLCURATE_MAX_IMAGE_PIXELS,
            max_bytes=settings.CELLCURATE_MAX_DECODED_BYTES,
        )
    except ImageFileError as exc:
        raise InvalidInput(f"{name}: {exc}", field="file") from exc
    stored = staged.save(
        f"projects/{project.pk}/images/{sha256[:2]}/{sha256}.{_EXTENSIONS[info.format]}", data
    )
    try:
        with transaction.atomic():
            image = Image.objects.create(
                project=project, file=stored, original_name=name[:255], size_bytes=len(data),
                sha256=sha256, format=info.format, width=info.width, height=info.height,
                channels=info.channels, pages=info.pages, dtype=info.dtype,
                plate=metadata.plate, well=metadata.well, site=metadata.site,
                batch=metadata.batch, modality=metadata.modality, stain=metadata.stain,
                metadata=_with_recorded_pixel_size(dict(metadata.extra), data, info.format),
                is_gold=metadata.is_gold, uploaded_by=actor,
            )
    except IntegrityError:
        # A concurrent upload of the same bytes won the unique (project, sha256) race.
        staged.discard(stored)
        return UploadedImage(
            image=Image.objects.get(project=project, sha256=sha256), created=False, name=name
        )
    return UploadedImage(image=image, created=True, name=name)


def _with_recorded_pixel_size(extra: dict, data: bytes, fmt: str) -> dict:
    """Keep the pixel size an OME-TIFF or calibrated TIFF records (µm), unless the uploader
    gave one: µm² area rules and exports need it, and re-typing it is error-prone."""
    if fmt != "tiff" or "pixel_size_um" in extra:
        return extra
    try:
        recorded = tiff_facts(data).pixel_size
    except MaskFormatError:  # headers already passed read_image; odd metadata is not fatal
        return extra
    if recorded is not None:
        extra["pixel_size_um"] = recorded.as_dict()
    return extra


def image_upload(
    *, actor, project: Project, upload: File, metadata: ImageMetadata | None = None
) -> UploadedImage:
    """Upload one image (TIFF, PNG or JPEG by content); a known sha256 returns the existing row.

    Managers only. A refused file leaves no row and no stored file behind.
    """
    return images_upload_many(actor=actor, project=project, uploads=[upload], metadata=metadata)[0]


def images_upload_many(
    *, actor, project: Project, uploads: Sequence[File], metadata: ImageMetadata | None = None
) -> list[UploadedImage]:
    """Upload several images, keeping every good file and reporting each refused one.

    Managers only. ``metadata`` applies to every file of the batch (bad metadata refuses
    the batch). Returns one :class:`UploadedImage` per upload, in order; a refused file has
    ``image=None`` and its ``error`` and leaves no row or stored file. When every file is
    refused, raises :class:`InvalidInput` on ``file`` naming each of them.
    """
    check_project_role(user=actor, project=project, roles=UPLOAD_ROLES)
    metadata = metadata or ImageMetadata()
    _check_metadata(metadata)
    if not uploads:
        raise InvalidInput("no files were uploaded", field="file")
    results: list[UploadedImage] = []
    seen: dict[str, Image] = {}
    with staged_files() as staged:
        for upload in uploads:
            try:
                result = _store_one(
                    staged=staged, actor=actor, project=project, upload=upload,
                    metadata=metadata, seen=seen,
                )
            except InvalidInput as exc:
                name = getattr(upload, "name", None) or "upload"
                results.append(UploadedImage(image=None, created=False, name=name, error=exc.message))
                continue
            seen[result.image.sha256] = result.image
            results.append(result)
        if all(r.image is None for r in results):
            raise InvalidInput("; ".join(r.error for r in results), field="file")
    return results
