"""OME-Zarr (NGFF) images with their labels and the QA properties of every cell.

Layout: ``<split>/<name>.ome.zarr/`` per image, holding the image (``s0``), and
``labels/cells`` whose ``image-label`` metadata carries one ``properties`` entry per
cell: ``label-value``, ``class``, ``ignore`` and the QA numbers (``support``,
``confidence``, ``agreement``, ``gate``) — so the QA evidence travels with the pixels and
napari / ome-zarr readers show it next to each cell.

The store is built in memory (one image at a time) and returned as
``{relative path: bytes}``, so the caller writes it through any storage backend.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from annotation.masks import to_canonical_dtype

from .items import ExportItem, labels_for_training

__all__ = ["LABEL_NAME", "cell_properties", "ome_zarr_item_files"]

LABEL_NAME = "cells"


def _json_value(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not math.isfinite(float(value)) else float(value)
    return value


def cell_properties(item: ExportItem, labels: np.ndarray, *, default_class: str | None) -> list[dict]:
    """One NGFF ``properties`` entry per cell present in ``labels``, in id order."""
    ids = np.unique(labels)
    out = []
    for label in ids[ids > 0].tolist():
        entry: dict[str, Any] = {"label-value": int(label)}
        cls = item.classes.get(label, default_class)
        if cls is not None:
            entry["class"] = cls
        entry["ignore"] = label in item.ignore
        for key, value in (item.cells.get(label) or {}).items():
            if key != "label-value":
                entry[key] = _json_value(value)
        out.append(entry)
    return out


def _axes(item: ExportItem) -> tuple[np.ndarray, list[str]]:
    pixels = item.image
    if item.pages > 1 and item.channels > 1:
        return np.moveaxis(pixels, -1, 1), ["z", "c", "y", "x"]
    if item.channels > 1:
        return np.moveaxis(pixels, -1, 0), ["c", "y", "x"]
    if item.pages > 1:
        return pixels, ["z", "y", "x"]
    return pixels, ["y", "x"]


def ome_zarr_item_files(
    item: ExportItem, *, ignore: str = "keep", default_class: str | None = None,
) -> dict[str, bytes]:
    """The files of ``<split>/<name>.ome.zarr`` (NGFF 0.5, Zarr v3, one resolution level).

    Parameters
    ----------
    item : ExportItem
        Needs decoded ``image`` pixels.
    ignore : {'keep', 'drop'}, optional
        Ignore cells stay in the labels (``ignore: true`` in their properties) or are
        set to background.
    default_class : str, optional
        Class reported for cells without one.
    """
    import zarr
    from ome_zarr.writer import write_image, write_labels
    from zarr.storage import MemoryStore

    if item.image is None:
        raise ValueError(f"item {item.name!r} needs decoded pixels for OME-Zarr")
    pixels, axes = _axes(item)
    labels = to_canonical_dtype(labels_for_training(item, ignore=ignore))
    store = MemoryStore()
    root = zarr.open_group(store=store, mode="w")
    spatial = {}
    units = {}
    if item.pixel_size_um is not None:
        spatial = {"y": float(item.pixel_size_um), "x": float(item.pixel_size_um)}
        units = {"y": "micrometer", "x": "micrometer"}
    chunks = tuple(min(s, 1024) for s in pixels.shape)
    write_image(np.ascontiguousarray(pixels), root, axes=axes, scale_factors=[], scaler=None,
                scale=spatial or None, axes_units=units or None, name=item.name,
                storage_options={"chunks": chunks})
    label_axes = ["y", "x"]
    write_labels(
        np.ascontiguousarray(labels), root, name=LABEL_NAME, axes=label_axes, scale_factors=[],
        scaler=None, scale=spatial or None, axes_units=units or None,
        label_metadata={"properties": cell_properties(item, labels, default_class=default_class)},
        storage_options={"chunks": tuple(min(s, 1024) for s in labels.shape)},
    )
    prefix = f"{item.split}/{item.name}.ome.zarr"
    return {f"{prefix}/{key}": store._store_dict[key].to_bytes() for key in sorted(store._store_dict)}
