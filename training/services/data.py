"""Loading a snapshot's split as arrays, and moving weights files between storage and disk.

Images and approved masks are read through Django storage (local folder or S3) with
their sha256 checked (:func:`datasets.services.exports.export_item`), so a run trains on
exactly the bytes the snapshot's content hash covers.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.core.files.base import File
from django.core.files.storage import InvalidStorageError, storages

from datasets.models import DatasetSnapshot, SnapshotItem
from datasets.services.exports import export_item
from datasets.storage import export_storage


@dataclass(frozen=True)
class SplitData:
    """Arrays of one split, paired by position with the items they came from."""

    images: list[np.ndarray]
    labels: list[np.ndarray]
    names: list[str]
    groups: list[dict[str, str]]  # {"group", "modality", "batch"} of each image

    def __len__(self) -> int:
        return len(self.images)


def split_load(*, snapshot: DatasetSnapshot, split: str) -> SplitData:
    """The images and approved label images of one split (empty when the split has none)."""
    items = (SnapshotItem.objects.filter(snapshot=snapshot, split=split)
             .select_related("image").order_by("image_sha256"))
    images, labels, names, groups = [], [], [], []
    for item in items:
        loaded = export_item(item.row, need_pixels=True)
        images.append(loaded.image)
        labels.append(loaded.labels)
        names.append(item.row.get("name") or str(item.image_id))
        groups.append({"group": item.group, "modality": item.image.modality or "",
                       "batch": item.image.batch or ""})
    return SplitData(images=images, labels=labels, names=names, groups=groups)


def training_storage():
    """Where checkpoints and registered weights go: ``STORAGES["training"]``, else the
    exports storage (atomic, overwriting writes, which checkpoints need)."""
    try:
        return storages["training"]
    except InvalidStorageError:
        return export_storage()


def file_upload(path: Path, name: str) -> str:
    """Copy a local file to training storage under ``name`` (overwriting); the stored name."""
    with open(path, "rb") as fh:
        return training_storage().save(name, File(fh, name=os.path.basename(name)))


def file_download(name: str, dest: Path) -> Path:
    """Copy a file from training storage to ``dest`` on the local disk."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with training_storage().open(name, "rb") as src, open(dest, "wb") as out:
        while chunk := src.read(1 << 20):
            out.write(chunk)
    return dest


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def local_workdir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))
