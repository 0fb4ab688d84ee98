"""COCO instance segmentation, written one image at a time.

Layout: ``images/<split>/<name><ext>`` and ``annotations/instances_<split>.json``.
Categories are the project's cell classes (ids 1..K in that order). Masks are
compressed RLE by default, so pycocotools decodes exactly the approved pixels;
``segmentation='polygon'`` writes pixel-edge polygons (RLE for cells with holes, which
a COCO polygon cannot express). Ignore cells are written with ``iscrowd = 1`` and
``ignore = 1``: COCO evaluation and the common trainers skip crowd regions.

Only the annotations (small) are held until :meth:`CocoBuilder.finish`; images are
returned per item for the caller to store, so memory does not grow with image count.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from annotation.masks.polygons import geometry_rings, label_image_to_polygons
from annotation.masks.rle import column_major_pixels, rle_from_indices

from .cellpose import CELLPOSE_IMAGE_EXTS, image_tiff_bytes
from .items import ExportItem

__all__ = ["COCO_SEGMENTATIONS", "CocoBuilder"]

COCO_SEGMENTATIONS = ("rle", "polygon")


class CocoBuilder:
    """Accumulates COCO annotations per split; :meth:`add` returns the image file to store.

    Parameters
    ----------
    categories : sequence of str
        Category names in id order (ids 1..K); an instance's class must be one of them.
    default_class : str
        Category of instances without a class (must be in ``categories``).
    segmentation : {'rle', 'polygon'}
    """

    def __init__(self, *, categories: Sequence[str], default_class: str, segmentation: str = "rle"):
        if segmentation not in COCO_SEGMENTATIONS:
            raise ValueError(f"segmentation must be one of {COCO_SEGMENTATIONS}, got {segmentation!r}")
        cats = list(categories)
        if not cats or len(set(cats)) != len(cats):
            raise ValueError(f"categories must be distinct and non-empty, got {cats}")
        if default_class not in cats:
            raise ValueError(f"default class {default_class!r} is not among the categories {cats}")
        self.categories = cats
        self.default_class = default_class
        self.segmentation = segmentation
        self._cat_id = {name: k for k, name in enumerate(cats, start=1)}
        self._images: dict[str, list[dict]] = {}
        self._annotations: dict[str, list[dict]] = {}
        self._next_image = 1
        self._next_ann = 1

    def add(self, item: ExportItem) -> dict[str, bytes]:
        """Record the item's instances; return ``{'images/<split>/<file>': bytes}``."""
        ext = (item.image_ext or "").lower()
        if item.image_bytes is not None and ext in CELLPOSE_IMAGE_EXTS:
            file_name, data = f"{item.name}{ext}", item.image_bytes
        else:
            if item.image is None:
                raise ValueError(f"item {item.name!r} needs pixels to be written as TIFF")
            file_name, data = f"{item.name}.tif", image_tiff_bytes(item.image)
        labels = item.labels
        h, w = labels.shape
        image_id = self._next_image
        self._next_image += 1
        self._images.setdefault(item.split, []).append(
            {"id": image_id, "file_name": file_name, "width": int(w), "height": int(h)}
        )
        anns = self._annotations.setdefault(item.split, [])
        pixels = column_major_pixels(labels)
        polygons = label_image_to_polygons(labels) if self.segmentation == "polygon" else {}
        for label in sorted(pixels):
            idx = pixels[label]
            rows, cols = idx % h, idx // h
            x0, y0 = int(cols.min()), int(rows.min())
            bbox = [float(x0), float(y0), float(cols.max() - x0 + 1), float(rows.max() - y0 + 1)]
            seg: Any
            geom = polygons.get(label)
            if geom is not None and not any(holes for _, holes in geometry_rings(geom)):
                seg = [[float(v) for v in ext.ravel()] for ext, _ in geometry_rings(geom)]
            else:
                seg = rle_from_indices(idx, h, w)
            cls = item.classes.get(label, self.default_class)
            if cls not in self._cat_id:
                raise ValueError(f"item {item.name!r}: class {cls!r} of cell {label} is not a category")
            ignored = label in item.ignore
            ann = {
                "id": self._next_ann,
                "image_id": image_id,
                "category_id": self._cat_id[cls],
                "segmentation": seg,
                "area": float(idx.size),
                "bbox": bbox,
                "iscrowd": 1 if ignored else 0,
                "ignore": 1 if ignored else 0,
                "cell_id": int(label),
            }
            props = item.cells.get(label)
            if props:
                ann["qa"] = dict(props)
            anns.append(ann)
            self._next_ann += 1
        return {f"images/{item.split}/{file_name}": data}

    def finish(self, *, info: dict | None = None) -> dict[str, bytes]:
        """One ``annotations/instances_<split>.json`` per split that has images."""
        cats = [{"id": self._cat_id[n], "name": n, "supercategory": "cell"} for n in self.categories]
        out = {}
        for split in sorted(self._images):
            doc = {
                "info": {"description": "CellCurate dataset export", "version": "1.0", **(info or {})},
                "images": self._images[split],
                "annotations": self._annotations.get(split, []),
                "categories": cats,
            }
            out[f"annotations/instances_{split}.json"] = json.dumps(
                doc, separators=(",", ":"), allow_nan=False
            ).encode("utf-8")
        return out
