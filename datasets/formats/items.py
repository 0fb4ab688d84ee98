"""What one dataset item is to the format writers."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from annotation.masks import validate_label_image

__all__ = ["ExportItem", "IGNORE_MODES", "labels_for_training", "safe_stem"]

#: What a writer does with ignore cells in formats that cannot mark them.
IGNORE_MODES = ("keep", "drop")

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_stem(name: str) -> str:
    """A file-name stem that is safe in every file system and zip (no path, no odd bytes)."""
    base = posixpath.basename(name.replace("\\", "/"))
    stem = _UNSAFE.sub("_", base).strip("._") or "image"
    return stem[:120]


@dataclass(frozen=True, eq=False)
class ExportItem:
    """One image and its approved mask, ready to write.

    Attributes
    ----------
    name : str
        Unique, file-system-safe stem within the export (see :func:`safe_stem`).
    split : str
        ``'train'``, ``'val'`` or ``'test'``.
    labels : ndarray of uint16 or uint32, shape (H, W)
        The approved instance label image; 0 = background.
    image : ndarray, shape (H, W), (H, W, C), (P, H, W) or (P, H, W, C), optional
        Decoded pixels in their real dtype (formats that re-encode the image need them).
    image_bytes : bytes, optional
        The original image file; formats that copy it as-is use it (no re-encoding).
    image_ext : str, optional
        Extension of ``image_bytes`` with its dot (``'.tif'``, ``'.png'``).
    classes : dict of int to str
        Cell class per instance id; unclassified ids get the writer's default class.
    ignore : frozenset of int
        Instance ids training should ignore (neither cell nor background).
    cells : dict of int to dict
        QA properties per instance id (``support``, ``confidence``, ``gate``, ...).
    pixel_size_um : float, optional
        Physical pixel size in micrometres (x = y).
    channels, pages : int
        Layout of ``image``: pages first, channels last (as the service decodes images).
    """

    name: str
    split: str
    labels: np.ndarray
    image: np.ndarray | None = None
    image_bytes: bytes | None = None
    image_ext: str | None = None
    classes: Mapping[int, str] = field(default_factory=dict)
    ignore: frozenset[int] = frozenset()
    cells: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)
    pixel_size_um: float | None = None
    channels: int = 1
    pages: int = 1

    def __post_init__(self) -> None:
        validate_label_image(self.labels, name=f"labels of {self.name!r}")
        if safe_stem(self.name) != self.name:
            raise ValueError(f"item name {self.name!r} is not a safe file stem")
        if self.image is None and self.image_bytes is None:
            raise ValueError(f"item {self.name!r} has neither image pixels nor image bytes")
        if self.image is not None:
            first = int(self.pages > 1)
            if self.image.shape[first : first + 2] != self.labels.shape:
                raise ValueError(
                    f"item {self.name!r}: image shape {self.image.shape} ({self.pages} page(s), "
                    f"{self.channels} channel(s)) does not match the labels' {self.labels.shape}"
                )
        if self.pixel_size_um is not None and not (self.pixel_size_um > 0):
            raise ValueError(f"item {self.name!r}: pixel size must be > 0")


def labels_for_training(item: ExportItem, *, ignore: str) -> np.ndarray:
    """The item's labels with ignore cells kept or set to background (``ignore='drop'``)."""
    if ignore not in IGNORE_MODES:
        raise ValueError(f"ignore must be one of {IGNORE_MODES}, got {ignore!r}")
    if ignore == "keep" or not item.ignore:
        return item.labels
    out = item.labels.copy()
    out[np.isin(out, np.fromiter(item.ignore, dtype=np.int64))] = 0
    return out
