"""COCO instance-segmentation JSON in and out (pure, no Django).

One COCO file may describe many images: :func:`read_coco` returns one
:class:`~annotation.masks.labels.ImportResult` per image, and :func:`write_coco` takes
several label images. Categories are the cell classes.

Segmentations are read as polygons (a list of flat ``[x1, y1, x2, y2, ...]`` lists,
unioned) or RLE (``{"size": [h, w], "counts": str | list}``, column-major as in
pycocotools). RLE is decoded here, not by pycocotools' C code, after checking that the
runs add up to exactly ``h * w`` (pycocotools trusts the counts and would write past
its buffer otherwise). Polygons are rasterised by the pixel-centre rule and overlaps by
the rule in :mod:`annotation.masks.polygons`.

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
from .safety import DEFAULT_LIMITS, Limits, check_points, load_json

__all__ = ["CocoImage", "decode_rle", "encode_rle", "read_coco", "write_coco"]

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


# ---------------------------------------------------------------------------- RLE


def _counts_from_string(text: str, *, where: str) -> np.ndarray:
    """Decode pycocotools' compressed RLE string, vectorised.

    Each run length is written in 5-bit groups, least significant first, one character
    per group (``chr(48 + bits)``); bit 0x20 of a character says another group follows
    and bit 0x10 of the last group is the sign. From the third count on, counts are
    stored as differences to the count two places back (``rleToString`` in
    pycocotools' ``maskApi.c``).
    """
    try:
        raw = np.frombuffer(text.encode("ascii"), dtype=np.uint8).astype(np.int64) - 48
    except UnicodeEncodeError:
        raise MaskFormatError(f"{where}: RLE string has a non-ASCII character.") from None
    if raw.size == 0:
        return np.zeros(0, dtype=np.int64)
    if raw.min() < 0 or raw.max() > 63:
        raise MaskFormatError(f"{where}: RLE string has an invalid character.")
    more = (raw & 0x20) != 0
    if more[-1]:
        raise MaskFormatError(f"{where}: RLE string ends inside a number.")
    ends = np.flatnonzero(~more)
    starts = np.concatenate([[0], ends[:-1] + 1])
    group = np.repeat(np.arange(len(starts)), ends - starts + 1)
    k = np.arange(raw.size) - starts[group]
    if int(k.max()) > 7:  # counts are uint32 in pycocotools: 7 groups of 5 bits suffice
        raise MaskFormatError(f"{where}: RLE run length is too long.")
    values = np.add.reduceat((raw & 0x1F) << (5 * k), starts)
    negative = (raw[ends] & 0x10) != 0
    values[negative] -= np.left_shift(1, 5 * (k[ends][negative] + 1))
    counts = values.copy()
    counts[1::2] = np.cumsum(values[1::2])
    counts[2::2] = np.cumsum(values[2::2])
    return counts


def decode_rle(rle: Mapping[str, Any], *, where: str = "RLE", max_pixels: int) -> np.ndarray:
    """Decode a COCO RLE into a boolean mask, validating it first.

    Parameters
    ----------
    rle : dict
        ``{"size": [h, w], "counts": str | list of int}``; column-major runs starting
        with background.
    where : str, optional
        Name for messages.
    max_pixels : int
        Largest accepted ``h * w``.

    Returns
    -------
    ndarray of bool, shape (h, w)
    """
    (h, w), arr = _rle_runs(rle, where=where, max_pixels=max_pixels)
    values = (np.arange(arr.size) % 2).astype(bool)
    flat = np.repeat(values, arr)
    return flat.reshape(w, h).T.copy()


def _rle_shape(
    rle: Mapping[str, Any], *, where: str, max_pixels: int, class_name: str | None
) -> Shape:
    """An RLE instance as a cropped raster shape, without a full-image mask."""
    (h, w), arr = _rle_runs(rle, where=where, max_pixels=max_pixels)
    ends = np.cumsum(arr)
    starts = ends - arr
    on = (np.arange(arr.size) % 2 == 1) & (arr > 0)
    run_start, run_len = starts[on], arr[on]
    if run_len.size == 0:
        return Shape(name=where, mask=np.zeros((0, 0), bool), mask_image_shape=(h, w))
    # Column-major pixel indices of all foreground runs, then rows and columns.
    offsets = np.repeat(run_start - np.concatenate([[0], np.cumsum(run_len)[:-1]]), run_len)
    idx = np.arange(int(run_len.sum())) + offsets
    rows, cols = idx % h, idx // h
    r0, c0 = int(rows.min()), int(cols.min())
    crop = np.zeros((int(rows.max()) - r0 + 1, int(cols.max()) - c0 + 1), dtype=bool)
    crop[rows - r0, cols - c0] = True
    return Shape(
        name=where, mask=crop, mask_offset=(r0, c0), mask_image_shape=(h, w), class_name=class_name
    )


def _rle_runs(
    rle: Mapping[str, Any], *, where: str, max_pixels: int
) -> tuple[tuple[int, int], np.ndarray]:
    """Validated ``(h, w)`` and run lengths of a COCO RLE."""
    if not isinstance(rle, Mapping):
        raise MaskFormatError(f"{where}: RLE must be an object.")
    size = rle.get("size")
    counts = rle.get("counts")
    if (
        not isinstance(size, list | tuple)
        or len(size) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)
    ):
        raise MaskFormatError(f"{where}: RLE 'size' must be [height, width], got {size!r}.")
    h, w = int(size[0]), int(size[1])
    if h * w > max_pixels:
        raise MaskFormatError(f"{where}: RLE size {h} x {w} is over {max_pixels:,} pixels.")
    if isinstance(counts, bytes):
        counts = counts.decode("ascii", errors="replace")
    if isinstance(counts, str):
        if len(counts) > 8 * h * w + 16:
            raise MaskFormatError(f"{where}: RLE string is longer than its image.")
        runs = _counts_from_string(counts, where=where)
    elif isinstance(counts, list):
        if len(counts) > h * w + 1 or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in counts
        ):
            raise MaskFormatError(f"{where}: RLE 'counts' must be a list of integers.")
        runs = counts
    else:
        raise MaskFormatError(f"{where}: RLE 'counts' must be a string or a list.")
    try:
        arr = np.asarray(runs, dtype=np.int64)
    except OverflowError:
        raise MaskFormatError(f"{where}: RLE has a run longer than its image.") from None
    if arr.size and int(arr.min()) < 0:
        raise MaskFormatError(f"{where}: RLE has a negative run length.")
    if arr.size and int(arr.max()) > h * w:
        raise MaskFormatError(f"{where}: RLE has a run longer than its image ({h} x {w}).")
    if int(arr.sum()) != h * w:
        raise MaskFormatError(
            f"{where}: RLE runs add up to {int(arr.sum()):,} pixels, but its size "
            f"{h} x {w} has {h * w:,}."
        )
    return (h, w), arr


def encode_rle(mask: np.ndarray) -> dict[str, Any]:
    """Encode a boolean mask as compressed COCO RLE with pycocotools.

    Parameters
    ----------
    mask : ndarray of bool, shape (H, W)

    Returns
    -------
    dict
        ``{"size": [H, W], "counts": str}``, JSON-serialisable.
    """
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


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


def read_coco(data: bytes, *, limits: Limits = DEFAULT_LIMITS) -> dict[str, ImportResult]:
    """Read a COCO instance-segmentation file into one label image per image.

    Parameters
    ----------
    data : bytes
        COCO JSON with ``images`` (``id``, ``file_name``, ``width``, ``height``),
        ``annotations`` (``id``, ``image_id``, ``category_id``, ``segmentation``,
        optional ``iscrowd``) and ``categories`` (``id``, ``name``).
    limits : Limits, optional
        Caps on file size, shapes, points and pixels.

    Returns
    -------
    dict of str to ImportResult
        Keyed by ``file_name`` (images without annotations give empty label images).
        Classes are category names. Crowd annotations (``iscrowd: 1``) are skipped
        with a reason; overlaps are resolved and reported (see the module docstring).

    Raises
    ------
    MaskFormatError
        Malformed JSON or structure, an annotation naming an unknown image or
        category, a polygon with NaN/infinite or too many points, an RLE whose runs do
        not fit its size, or anything over ``limits``.
    """
    return coco_from_document(load_json(data, what="COCO", limits=limits), limits=limits)


def coco_from_document(doc: Any, *, limits: Limits = DEFAULT_LIMITS) -> dict[str, ImportResult]:
    """:func:`read_coco` on an already parsed JSON document."""
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
            skipped[iid].append((where, "iscrowd=1: a crowd region, not one instance"))
            continue
        seg = ann.get("segmentation")
        if isinstance(seg, dict):
            shape_ = _rle_shape(seg, where=where, max_pixels=limits.max_pixels, class_name=cls)
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
        out[img["file_name"]] = rasterize_shapes(
            per_image[iid],
            shape=(img["height"], img["width"]),
            limits=limits,
            skipped=skipped[iid],
        )
    return out


# -------------------------------------------------------------------------- write


def _column_major_pixels(labels: np.ndarray) -> dict[int, np.ndarray]:
    """Sorted column-major pixel indices of every instance (one sort for all)."""
    flat = labels.ravel(order="F")
    order = np.argsort(flat, kind="stable")
    values = flat[order]
    cuts = np.flatnonzero(np.diff(values)) + 1
    starts = np.concatenate([[0], cuts])
    return {
        int(values[a]): order[a:b]
        for a, b in zip(starts, np.concatenate([cuts, [flat.size]]), strict=True)
        if values[a] != 0
    }


def _rle_from_indices(idx: np.ndarray, h: int, w: int) -> dict[str, Any]:
    """Compressed COCO RLE of the pixels at sorted column-major indices ``idx``."""
    from pycocotools import mask as mask_utils

    breaks = np.flatnonzero(np.diff(idx) != 1)
    run_start = idx[np.concatenate([[0], breaks + 1])]
    run_end = idx[np.concatenate([breaks, [idx.size - 1]])] + 1
    gaps = run_start - np.concatenate([[0], run_end[:-1]])
    counts = np.empty(2 * run_start.size + 1, dtype=np.int64)
    counts[0:-1:2] = gaps
    counts[1::2] = run_end - run_start
    counts[-1] = h * w - run_end[-1]
    if counts[-1] == 0:  # pycocotools writes no empty final run
        counts = counts[:-1]
    # frPyObjects only re-encodes the given runs as a string; it decodes nothing.
    rle = mask_utils.frPyObjects({"size": [h, w], "counts": counts.tolist()}, h, w)
    return {"size": [h, w], "counts": rle["counts"].decode("ascii")}


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
                    pixels = _column_major_pixels(img.labels)
                seg: Any = _rle_from_indices(pixels[label], h, w)
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
