"""Per-image folders of loose ROIs or per-instance masks, read as one mask each.

How a batch folder is grouped is described in :mod:`annotation.services.mask_batch`
(module docstring, "Per-image folders"). A group is handed to the readers as a zip of
its files (stored, fixed timestamps), so the same files always give the same bytes and
re-running an import is recognised by its idempotency key.
"""

from __future__ import annotations

import io
import posixpath
import zipfile
from collections.abc import Callable

from annotation.services.mask_batch import INSTANCE_FOLDERS, ImageIndex, MaskSource

__all__ = ["mask_sources_group"]

_INSTANCE_SUFFIXES = (".png", ".tif", ".tiff")


def _folder_key(folder: str) -> str:
    """The name a per-image folder is matched by: ``a/img1/masks`` -> ``a/img1``."""
    parts = folder.split("/")
    if len(parts) >= 2 and parts[-1].casefold() in INSTANCE_FOLDERS:
        return "/".join(parts[:-1])
    return folder


def _zip_of(members: list[MaskSource]) -> Callable[[], bytes]:
    """A reader that packs the members into a zip (stored, fixed timestamps: same bytes
    for the same files, so re-running an import is recognised)."""

    def read() -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
            for member in members:
                info = zipfile.ZipInfo(posixpath.basename(member.name), (1980, 1, 1, 0, 0, 0))
                zf.writestr(info, member.read())
        return buf.getvalue()

    return read


def mask_sources_group(sources: list[MaskSource], *, index: ImageIndex) -> list[MaskSource]:
    """Read per-image folders of ROIs or per-instance masks as one source each.

    A folder's direct files form one source when they are all ``.roi`` files or all
    PNG/TIFF files, the folder (or, for ``masks/``, ``rois/``... sub-folders, its
    parent) is named after exactly one image, and no file in it is named after an image
    (module docstring). The group is read as a zip of its files, named
    ``<folder>/ (<n> files)``; other files are returned unchanged, in order.
    """
    by_folder: dict[str, list[MaskSource]] = {}
    for source in sources:
        folder = posixpath.dirname(source.name)
        if folder:
            by_folder.setdefault(folder, []).append(source)
    grouped: dict[str, MaskSource] = {}
    for folder, members in by_folder.items():
        lowered = [m.name.lower() for m in members]
        all_rois = all(n.endswith(".roi") for n in lowered)
        all_masks = all(n.endswith(_INSTANCE_SUFFIXES) for n in lowered)
        key = _folder_key(folder)
        # A lone PNG/TIFF in an image-named folder is that image's label image, read by
        # name; under masks/ (the DSB layout) it is a one-cell per-instance set.
        if not (all_rois or all_masks) or (all_masks and len(members) < 2 and key == folder):
            continue
        if len(index.match(key)) != 1:
            continue
        if any(index.match_exact(m.name) for m in members):
            continue  # files named after images: each is that image's mask
        for m in members:
            grouped[m.name] = MaskSource(
                f"{folder}/ ({len(members)} {'ROI' if all_rois else 'mask'} "
                f"file{'s' if len(members) != 1 else ''})",
                _zip_of(members), match_name=key,
            )
    out: list[MaskSource] = []
    seen: set[str] = set()
    for source in sources:
        group = grouped.get(source.name)
        if group is None:
            out.append(source)
        elif group.name not in seen:
            seen.add(group.name)
            out.append(group)
    return out
