"""COCO instance-segmentation JSON in and out (pure, no Django).

One COCO file may describe many images: :func:`read_coco` returns one
:class:`~annotation.masks.labels.ImportResult` per image, and :func:`write_coco` takes
several label images. Categories are the cell classes.

Segmentations are read as polygons (a list of flat ``[x1, y1, x2, y2, ...]`` lists,
unioned) or RLE (``{"size": [h, w], "counts": str | list}``, column-major as in
pycocotools). RLE is decoded by :mod:`annotation.masks.rle`, not by pycocotools' C
code, after checking that the runs add up to exactly ``h * w``. Polygons are rasterised
by the pixel-centre rule of :mod:`annotation.masks.polygons`, overlaps by the rule in
:mod:`annotation.masks.rasterize`.

Written segmentations are polygons traced along pixel edges (pycocotools rasterises
them back to the same pixels) for instances without holes, and RLE for instances with
holes, which COCO polygons cannot express; ``segmentation="rle"`` writes RLE throughout.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .labels import ImportResult, MaskFormatError, validate_label_image
from .polygons import geometry_rings, label_image_to_polygons
from .rasterize import Shape, rasterize_shapes
from .rle import column_major_pixels, rle_from_indices, rle_shape
from .safety import DEFAULT_LIMITS, Limits, check_points, load_json

__all__ = ["CocoImage", "coco_from_document", "read_coco", "write_coco"]

DEFAULT_CLASS = "cell"


@dataclass(frozen=True)
class CocoImage:
    """One image to write into a COCO file.

    Attributes
    ----------
    file_name : str
        Image file name as the training code will find it.
    labels : ndarray of int, shape (H, W)
        Instance label image.
    classes : dict of int to str
        Class per instance id; instances without one get ``default_class``.
    """

    file_name: str
    labels: np.ndarray
    classes: Mapping[int, str] = field(default_factory=dict)


# --------------------------------------------------------------------------- read


def _dict_list(doc: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = doc.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise MaskFormatError(f"COCO '{key}' must be a list of objects.")
    return value


def _int_field(obj: Mapping[str, Any], key: str, where: str) -> int:
    value = obj.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise MaskFormatError(f"{where}: '{key}' must be an integer, got {value!r}.")
    return value


def read_coco(
    data: bytes, *, limits: Limits = DEFAULT_LIMITS, crowd: str = "skip"
) -> dict[str, ImportResult]:
    """Read a COCO instance-segmentation file into one label image per image.

    Parameters
    ----------
    data : bytes
        COCO JSON with ``images`` (``id``, ``file_name``, ``width``, ``height``),
        ``annotations`` (``id``, ``image_id``, ``category_id``, ``segmentation``,
        optional ``iscrowd``) and ``categories`` (``id``, ``name``).
    limits : Limits, optional
        Caps on file size, shapes, points and pixels.
    crowd : {'skip', 'instances'}, optional
        Crowd annotations (``iscrowd: 1``, usually RLE): ``'skip'`` (default; COCO
        means a region of many objects, not one) skips them with a reason that names
        the option; ``'instances'`` imports each as one instance, which is what older
        CVAT and datumaro exports mean (they write every mask as a crowd RLE).

    Returns
    -------
    dict of str to ImportResult
        Keyed by ``file_name`` (images without annotations give empty label images).
        Classes are category names. Crowd annotations are handled per ``crowd``;
        overlaps are resolved and reported (see the module docstring).

    Raises
    ------
    MaskFormatError
        Malformed JSON or structure, an annotation naming an unknown image or
        category, a polygon with NaN/infinite or too many points, an RLE whose runs do
        not fit its size, or anything over ``limits``.
    """
    return coco_from_document(
        load_json(data, what="COCO", limits=limits), limits=limits, crowd=crowd
    )


def coco_from_document(
    doc: Any, *, limits: Limits = DEFAULT_LIMITS, crowd: str = "skip"
) -> dict[str, ImportResult]:
    """:func:`read_coco` on an already parsed JSON document."""
    if crowd not in ("skip", "instances"):
        raise MaskFormatError(f"crowd must be 'skip' or 'instances', got {crowd!r}.")
    if not isinstance(doc, dict) or "annotations" not in doc or "images" not in doc:
        raise MaskFormatError(
            "Not a COCO file: expected an object with 'images' and 'annotations'."
        )
    images = _dict_list(doc, "images")
    annotations = _dict_list(doc, "annotations")
    categories = _dict_list(doc, "categories")
    if len(annotations) > limits.max_shapes:
        raise MaskFormatError(
            f"The COCO file has {len(annotations):,} annotations; at most "
            f"{limits.max_shapes:,} are accepted."
        )
    cat_names: dict[int, str] = {}
    for cat in categories:
        cid = _int_field(cat, "id", "COCO category")
        name = cat.get("name")
        if not isinstance(name, str) or not name:
            raise MaskFormatError(f"COCO category {cid} has no name.")
        cat_names[cid] = name
    by_id: dict[int, Mapping[str, Any]] = {}
    names_seen: set[str] = set()
    for img in images:
        iid = _int_field(img, "id", "COCO image")
        where = f"COCO image {iid}"
        _int_field(img, "width", where)
        _int_field(img, "height", where)
        name = img.get("file_name")
        if not isinstance(name, str) or not name:
            raise MaskFormatError(f"{where} has no file_name.")
        if name in names_seen or iid in by_id:
            raise MaskFormatError(f"{where}: file_name {name!r} or id {iid} appears twice.")
        names_seen.add(name)
        by_id[iid] = img
    per_image: dict[int, list[Shape]] = {iid: [] for iid in by_id}
    n_crowd: dict[int, int] = {}
    skipped: dict[int, list[tuple[str, str]]] = {iid: [] for iid in by_id}
    total_points = 0
    for n, ann in enumerate(annotations):
        aid = ann.get("id", n)
        where = f"COCO annotation {aid}"
        iid = _int_field(ann, "image_id", where)
        if iid not in by_id:
            raise MaskFormatError(f"{where} refers to image_id {iid}, which is not in 'images'.")
        img = by_id[iid]
        cls = None
        if "category_id" in ann and ann["category_id"] is not None:
            cid = _int_field(ann, "category_id", where)
            if cid not in cat_names:
                raise MaskFormatError(
                    f"{where} has category_id {cid}, which is not in 'categories'."
                )
            cls = cat_names[cid]
        if ann.get("iscrowd") in (1, True):
            if crowd == "skip":
                skipped[iid].append((
                    where,
                    "iscrowd=1: a crowd region, not one instance (import with "
                    "crowd=instances to take each crowd mask as one instance)",
                ))
                continue
            where = f"{where} (iscrowd=1)"
            n_crowd[iid] = n_crowd.get(iid, 0) + 1
        seg = ann.get("segmentation")
        if isinstance(seg, dict):
            shape_ = rle_shape(seg, where=where, max_pixels=limits.max_pixels, class_name=cls)
            if shape_.mask_image_shape != (img["height"], img["width"]):
                raise MaskFormatError(
                    f"{where}: RLE size {list(shape_.mask_image_shape)} differs from its image "
                    f"({img['height']} x {img['width']})."
                )
            per_image[iid].append(shape_)
        elif isinstance(seg, list):
            if seg and not isinstance(seg[0], list):
                seg = [seg]  # a single flat polygon, as some writers produce
            parts = []
            for poly in seg:
                pts = check_points(poly, where=where, limits=limits)
                total_points += len(pts)
                if total_points > limits.max_total_points:
                    raise MaskFormatError(
                        f"The COCO file has more than {limits.max_total_points:,} polygon points."
                    )
                if len(pts) >= 3:
                    parts.append((pts,))
            if not parts:
                skipped[iid].append((where, "segmentation has no polygon with 3 or more points"))
                continue
            per_image[iid].append(Shape(name=where, parts=tuple(parts), class_name=cls))
        else:
            skipped[iid].append((where, "no segmentation (bounding box only)"))
    out: dict[str, ImportResult] = {}
    for iid, img in by_id.items():
        crowd_note = (
            (f"imported {n_crowd[iid]} crowd (iscrowd=1) annotations as one instance each "
             "(crowd=instances).",)
            if n_crowd.get(iid) else ()
        )
        out[img["file_name"]] = rasterize_shapes(
            per_image[iid],
            shape=(img["height"], img["width"]),
            limits=limits,
            warnings=crowd_note,
            skipped=skipped[iid],
        )
    return out


# -------------------------------------------------------------------------- write


def write_coco(
    images: Sequence[CocoImage],
    *,
    categories: Sequence[str] | None = None,
    default_class: str = DEFAULT_CLASS,
    segmentation: Literal["auto", "rle"] = "auto",
) -> bytes:
    """Write label images as one COCO instance-segmentation JSON.

    Parameters
    ----------
    images : sequence of CocoImage
        Images in order; image ids are 1..n in this order, annotation ids run on
        across images in ascending instance-id order.
    categories : sequence of str, optional
        Category names in id order (ids 1..K); by default the sorted class names used
        (plus ``default_class`` when an instance has none).
    default_class : str, optional
        Category of instances without a class.
    segmentation : {'auto', 'rle'}, optional
        'auto': pixel-edge polygons, RLE for instances with holes; 'rle': RLE always.

    Returns
    -------
    bytes
        UTF-8 JSON with ``images``, ``annotations`` (``area`` = pixel count, ``bbox`` =
        ``[x, y, w, h]`` of the pixels, ``iscrowd`` 0) and ``categories``.
    """
    if segmentation not in ("auto", "rle"):
        raise ValueError(f"segmentation must be 'auto' or 'rle', got {segmentation!r}")
    names_used: set[str] = set()
    for img in images:
        validate_label_image(img.labels, name=f"labels of {img.file_name!r}")
        present = set(np.unique(img.labels).tolist()) - {0}
        for i in present:
            names_used.add(img.classes.get(i, default_class) if img.classes else default_class)
    cats = list(categories) if categories is not None else sorted(names_used)
    missing = sorted(names_used - set(cats))
    if missing:
        raise MaskFormatError(f"classes {missing} are not among the categories {cats}.")
    cat_id = {name: k for k, name in enumerate(cats, start=1)}
    out_images, out_anns = [], []
    ann_id = 0
    for image_id, img in enumerate(images, start=1):
        h, w = img.labels.shape
        out_images.append({"id": image_id, "file_name": img.file_name, "width": w, "height": h})
        pixels = None
        for label, geom in label_image_to_polygons(img.labels).items():
            ann_id += 1
            rings = geometry_rings(geom)
            if segmentation == "rle" or any(holes for _, holes in rings):
                if pixels is None:
                    pixels = column_major_pixels(img.labels)
                seg: Any = rle_from_indices(pixels[label], h, w)
            else:
                seg = [[float(v) for v in ext.ravel()] for ext, _ in rings]
            x0, y0, x1, y1 = geom.bounds
            cls = img.classes.get(label, default_class) if img.classes else default_class
            out_anns.append(
                {
                    "id": ann_id,
                    "image_id": image_id,
                    "category_id": cat_id[cls],
                    "segmentation": seg,
                    "area": float(geom.area),
                    "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                    "iscrowd": 0,
                }
            )
    doc = {
        "info": {"description": "CellCurate export", "version": "1.0"},
        "images": out_images,
        "annotations": out_anns,
        "categories": [
            {"id": cat_id[name], "name": name, "supercategory": "cell"} for name in cats
        ],
    }
    return json.dumps(doc, separators=(",", ":")).encode("utf-8")
