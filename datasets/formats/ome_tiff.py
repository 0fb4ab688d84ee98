"""OME-TIFF images and label images with their physical pixel size (tifffile).

Layout: ``images/<split>/<name>.ome.tif`` and ``labels/<split>/<name>.ome.tif``. The
label image is written in its canonical dtype (uint16, uint32 above 65,535 ids) with
the same pixel size, so Fiji/QuPath/napari overlay it on the image at true scale.
"""

from __future__ import annotations

import io

import numpy as np
import tifffile

from annotation.masks import to_canonical_dtype

from .items import ExportItem, labels_for_training

__all__ = ["ome_axes", "ome_tiff_bytes", "ome_tiff_item_files"]


def ome_axes(pixels: np.ndarray, *, channels: int = 1, pages: int = 1) -> tuple[np.ndarray, str]:
    """Pixels in an OME dimension order and its axes string.

    The service's image layout puts pages first and channels last: (H, W) -> ``YX``;
    (H, W, C) -> ``CYX``; (P, H, W) -> ``ZYX``; (P, H, W, C) -> ``ZCYX``.
    """
    expected = (pages,) * (pages > 1) + pixels.shape[int(pages > 1):][:2] + (channels,) * (channels > 1)
    if pixels.shape != expected:
        raise ValueError(f"pixels of shape {pixels.shape} are not {pages} page(s) x {channels} channel(s)")
    if pixels.ndim == 2:
        return pixels, "YX"
    if pages > 1 and channels > 1:
        return np.moveaxis(pixels, -1, 1), "ZCYX"
    if channels > 1:
        return np.moveaxis(pixels, -1, 0), "CYX"
    return pixels, "ZYX"


def ome_tiff_bytes(pixels: np.ndarray, *, axes: str, pixel_size_um: float | None,
                   name: str, compression: str | None = "zlib") -> bytes:
    """One OME-TIFF of ``pixels`` (in ``axes`` order) with PhysicalSizeX/Y in µm."""
    metadata: dict = {"axes": axes, "Name": name}
    if pixel_size_um is not None:
        metadata.update(PhysicalSizeX=float(pixel_size_um), PhysicalSizeXUnit="µm",
                        PhysicalSizeY=float(pixel_size_um), PhysicalSizeYUnit="µm")
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.ascontiguousarray(pixels), ome=True, metadata=metadata,
                     photometric="minisblack", compression=compression)
    return buf.getvalue()


def ome_tiff_item_files(item: ExportItem, *, ignore: str = "keep") -> dict[str, bytes]:
    """``{'images/<split>/<name>.ome.tif': ..., 'labels/<split>/<name>.ome.tif': ...}``."""
    if item.image is None:
        raise ValueError(f"item {item.name!r} needs decoded pixels for OME-TIFF")
    pixels, axes = ome_axes(item.image, channels=item.channels, pages=item.pages)
    labels = to_canonical_dtype(labels_for_training(item, ignore=ignore))
    return {
        f"images/{item.split}/{item.name}.ome.tif": ome_tiff_bytes(
            pixels, axes=axes, pixel_size_um=item.pixel_size_um, name=item.name),
        f"labels/{item.split}/{item.name}.ome.tif": ome_tiff_bytes(
            labels, axes="YX", pixel_size_um=item.pixel_size_um, name=f"{item.name} labels"),
    }
