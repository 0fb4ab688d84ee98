"""Cellpose training folders: ``<split>/<name><ext>`` + ``<split>/<name>_masks.tif``.

``cellpose.io.load_train_test_data("<root>/train", "<root>/test")`` loads them (and
``<root>/val`` as a second test folder). Cellpose has no "ignore" label, so ignore cells
are kept as cells by default or dropped to background on request; the manifest lists
them either way. ``seg_npy=True`` adds a ``_seg.npy`` per image for the Cellpose GUI.
"""

from __future__ import annotations

import io

import numpy as np
import tifffile

from annotation.masks import to_canonical_dtype, write_cellpose_seg

from .items import ExportItem, labels_for_training

__all__ = ["CELLPOSE_IMAGE_EXTS", "cellpose_item_files", "image_tiff_bytes"]

#: Image extensions Cellpose's ``get_image_files`` picks up (as written, lower case).
CELLPOSE_IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


def image_tiff_bytes(pixels: np.ndarray) -> bytes:
    """Pixels as an uncompressed TIFF in their own dtype."""
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.ascontiguousarray(pixels), photometric="minisblack"
                     if pixels.ndim == 2 else None)
    return buf.getvalue()


def _mask_tiff_bytes(labels: np.ndarray) -> bytes:
    # Uncompressed: masks are small next to images and this path must reach 100 images/s.
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.ascontiguousarray(to_canonical_dtype(labels)), photometric="minisblack")
    return buf.getvalue()


def cellpose_item_files(
    item: ExportItem, *, ignore: str = "keep", seg_npy: bool = False
) -> dict[str, bytes]:
    """The files of one item in a Cellpose training folder.

    Parameters
    ----------
    item : ExportItem
        ``image_bytes`` with an extension Cellpose reads is copied as-is; otherwise
        ``image`` is written as a TIFF.
    ignore : {'keep', 'drop'}, optional
        Keep ignore cells as cells, or set them to background.
    seg_npy : bool, optional
        Also write ``<name>_seg.npy`` (Cellpose GUI format).

    Returns
    -------
    dict of str to bytes
        Relative paths (``'<split>/<name>.tif'``, ``'<split>/<name>_masks.tif'``, ...).
    """
    labels = labels_for_training(item, ignore=ignore)
    ext = (item.image_ext or "").lower()
    if item.image_bytes is not None and ext in CELLPOSE_IMAGE_EXTS:
        image_name, image_data = f"{item.name}{ext}", item.image_bytes
    else:
        if item.image is None:
            raise ValueError(f"item {item.name!r}: {ext or 'no'} image type Cellpose reads; need pixels")
        image_name, image_data = f"{item.name}.tif", image_tiff_bytes(item.image)
    files = {
        f"{item.split}/{image_name}": image_data,
        f"{item.split}/{item.name}_masks.tif": _mask_tiff_bytes(labels),
    }
    if seg_npy:
        files[f"{item.split}/{item.name}_seg.npy"] = write_cellpose_seg(labels, filename=image_name)
    return files


def cellpose_copy_files(*, name: str, split: str, image_bytes: bytes, image_ext: str,
                        mask_png: bytes) -> dict[str, bytes]:
    """An item's files when both source files can be copied byte for byte.

    The fast path: the original image (an extension Cellpose reads) and the stored 16-bit
    PNG label image, unchanged, as ``<split>/<name><ext>`` and ``<split>/<name>_masks.png``.
    Cellpose picks the mask extension from the first image, so a folder must use this for
    all of its items or for none (the service decides per export).
    """
    ext = image_ext.lower()
    if ext not in CELLPOSE_IMAGE_EXTS:
        raise ValueError(f"item {name!r}: Cellpose does not read {ext!r} images")
    if not mask_png.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError(f"item {name!r}: the mask to copy is not a PNG")
    return {f"{split}/{name}{ext}": image_bytes, f"{split}/{name}_masks.png": mask_png}
