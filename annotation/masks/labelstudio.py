"""Label Studio JSON exports, imported into label images (pure, no Django).

A Label Studio *JSON* export is a list of tasks; each task has ``data`` (the image URL)
and ``annotations``, each with a ``result`` list of regions. Area regions become
instances:

* ``polygonlabels``: ``value.points`` in **percent** of ``original_width`` /
  ``original_height`` (0 % is the image's left/top edge, 100 % its right/bottom edge,
  the corner convention of :mod:`annotation.masks.polygons`);
* ``rectanglelabels`` (``x, y, width, height, rotation`` in percent, rotation in degrees
  clockwise about the top-left corner) and ``ellipselabels`` (centre ``x, y``, radii);
* ``brushlabels`` with ``value.format == "rle"``: Label Studio's brush RLE (the
  ``label_studio_converter.brush`` bit format) of the RGBA canvas; a pixel belongs to
  the region when its alpha is >= 128.

Key points, choices, text and other non-area results are skipped with a reason; so are
cancelled annotations. Overlaps follow the rule in :mod:`annotation.masks.rasterize`.

Brush RLE bit format (big-endian bit string, padded with zeros to whole bytes)::

    32 bits  number of values N (= width * height * 4)
     5 bits  word size - 1 (8 for RGBA bytes)
    4x4 bits run-length field sizes - 1 (e.g. 3, 4, 8, 16)
    repeat until N values are produced:
      1 bit  x: 1 = a run of one value, 0 = literal values
      2 bits index k of a field size, then size[k] bits: count - 1
      x = 1: one word, repeated count times; x = 0: count words
"""

from __future__ import annotations

import math
import posixpath
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import unquote, urlparse

import numpy as np

from .labels import ImportResult, MaskFormatError
from .rasterize import Shape, rasterize_shapes
from .safety import DEFAULT_LIMITS, Limits, check_points, load_json

__all__ = ["decode_brush_rle", "encode_brush_rle", "read_labelstudio"]

_AREA_TYPES = ("polygonlabels", "rectanglelabels", "ellipselabels", "brushlabels")


class _Bits:
    def __init__(self, data: bytes) -> None:
        self.bits = "".join(f"{b:08b}" for b in data)
        self.pos = 0

    def read(self, n: int) -> int:
        end = self.pos + n
        if end > len(self.bits):
            raise MaskFormatError("Brush RLE ends before all pixels are decoded.")
        value = int(self.bits[self.pos : end], 2) if n else 0
        self.pos = end
        return value


def _brush_blocks(rle: Sequence[int], *, expected_values: int) -> Iterator[tuple[int, int, Any]]:
    """Walk brush RLE blocks: ``(start, stop, value)``, value an int (run) or a list."""
    if not isinstance(rle, list | tuple) or not all(
        isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in rle
    ):
        raise MaskFormatError("Brush 'rle' must be a list of byte values 0..255.")
    bits = _Bits(bytes(rle))
    num = bits.read(32)
    if num != expected_values:
        raise MaskFormatError(
            f"Brush RLE holds {num:,} values, but the image needs {expected_values:,} "
            "(width x height x 4)."
        )
    word = bits.read(5) + 1
    sizes = [bits.read(4) + 1 for _ in range(4)]
    if word > 8:
        raise MaskFormatError(f"Brush RLE word size {word} is not supported (at most 8 bits).")
    i = 0
    while i < num:
        is_run = bits.read(1)
        count = bits.read(sizes[bits.read(2)]) + 1
        j = i + count
        if j > num:
            raise MaskFormatError("Brush RLE writes past the end of the image.")
        yield i, j, (bits.read(word) if is_run else [bits.read(word) for _ in range(count)])
        i = j


def decode_brush_rle(rle: Sequence[int], *, expected_values: int) -> np.ndarray:
    """Decode Label Studio brush RLE into the flat array it encodes.

    Parameters
    ----------
    rle : sequence of int
        The bytes (0..255) of ``value.rle``.
    expected_values : int
        Number of values the region must hold (``width * height * 4`` for an RGBA
        canvas); a header announcing another count is refused before decoding.

    Returns
    -------
    ndarray of uint8, shape (expected_values,)
    """
    out = np.zeros(expected_values, dtype=np.uint8)
    for i, j, value in _brush_blocks(rle, expected_values=expected_values):
        out[i:j] = value
    return out


def _brush_shape(rle: Any, w: int, h: int, where: str, cls: str | None) -> Shape:
    """Pixels whose alpha is >= 128, as a cropped raster shape (no full canvas)."""
    starts, stops = [], []
    for i, j, value in _brush_blocks(rle, expected_values=w * h * 4):
        if isinstance(value, int):
            if value >= 128:
                starts.append(i)
                stops.append(j)
        else:
            on = np.flatnonzero(np.asarray(value) >= 128) + i
            starts.extend(on.tolist())
            stops.extend((on + 1).tolist())
    empty = Shape(name=where, mask=np.zeros((0, 0), bool), mask_image_shape=(h, w))
    if not starts:
        return empty
    lo, hi = np.asarray(starts), np.asarray(stops)
    # Alpha is every fourth value (index 3 mod 4); its pixel is the index // 4.
    first = lo // 4  # first pixel whose alpha index 4p + 3 >= lo
    last = (hi - 4) // 4  # last pixel whose alpha index 4p + 3 < hi
    n = np.maximum(last - first + 1, 0)
    pix = np.repeat(first - np.concatenate([[0], np.cumsum(n)[:-1]]), n) + np.arange(n.sum())
    if pix.size == 0:
        return empty
    rows, cols = pix // w, pix % w
    r0, c0 = int(rows.min()), int(cols.min())
    crop = np.zeros((int(rows.max()) - r0 + 1, int(cols.max()) - c0 + 1), dtype=bool)
    crop[rows - r0, cols - c0] = True
    return Shape(
        name=where, mask=crop, mask_offset=(r0, c0), mask_image_shape=(h, w), class_name=cls
    )


def encode_brush_rle(mask: np.ndarray) -> list[int]:
    """Encode a boolean mask the way Label Studio stores a brush region.

    Parameters
    ----------
    mask : ndarray of bool, shape (H, W)

    Returns
    -------
    list of int
        Bytes of the RLE of the RGBA canvas (every channel 255 inside, 0 outside),
        word size 8, field sizes (3, 4, 8, 16), runs only.
    """
    flat = np.repeat(np.asarray(mask, dtype=bool).ravel(), 4)
    sizes = (3, 4, 8, 16)
    parts = [f"{flat.size:032b}", f"{8 - 1:05b}", "".join(f"{s - 1:04b}" for s in sizes)]
    if flat.size:
        change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
        starts = np.concatenate([[0], change])
        lengths = np.diff(np.concatenate([starts, [flat.size]]))
        for start, length in zip(starts.tolist(), lengths.tolist(), strict=True):
            value = 255 if flat[start] else 0
            while length > 0:
                n = min(length, 2**16)
                k = next(idx for idx, s in enumerate(sizes) if n <= 2**s)
                parts.append(f"1{k:02b}{n - 1:0{sizes[k]}b}{value:08b}")
                length -= n
    bits = "".join(parts)
    bits += "0" * (-len(bits) % 8)
    return [int(bits[p : p + 8], 2) for p in range(0, len(bits), 8)]


def _percent_points(points: Any, w: int, h: int, where: str, limits: Limits) -> np.ndarray:
    pts = check_points(points, where=where, limits=limits)
    return pts * np.array([w / 100.0, h / 100.0])


def _rotate(pts: np.ndarray, origin: np.ndarray, degrees: float) -> np.ndarray:
    if not degrees:
        return pts
    t = math.radians(degrees)
    rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    return (pts - origin) @ rot.T + origin


def _number(value: Mapping[str, Any], key: str, where: str, default: float | None = None) -> float:
    v = value.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise MaskFormatError(f"{where}: '{key}' must be a finite number, got {v!r}.")
    return float(v)


def _region_shape(
    result: Mapping[str, Any], where: str, limits: Limits
) -> tuple[Shape | None, str | None, tuple[int, int] | None]:
    rtype = result.get("type")
    value = result.get("value")
    if rtype not in _AREA_TYPES:
        return None, f"{rtype!r} result has no area", None
    if not isinstance(value, dict):
        raise MaskFormatError(f"{where}: 'value' must be an object.")
    w, h = result.get("original_width"), result.get("original_height")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (w, h)):
        raise MaskFormatError(f"{where}: original_width/original_height must be positive integers.")
    if w * h > limits.max_pixels:
        raise MaskFormatError(f"{where}: image of {w} x {h} is over {limits.max_pixels:,} pixels.")
    names = value.get(rtype) or []
    cls = names[0] if isinstance(names, list) and names and isinstance(names[0], str) else None
    if rtype == "polygonlabels":
        pts = _percent_points(value.get("points"), w, h, where, limits)
        if len(pts) < 3:
            return None, "polygon with fewer than 3 points", (h, w)
        return Shape(name=where, parts=((pts,),), class_name=cls), None, (h, w)
    if rtype == "rectanglelabels":
        x, y = _number(value, "x", where) * w / 100, _number(value, "y", where) * h / 100
        rw, rh = _number(value, "width", where) * w / 100, _number(value, "height", where) * h / 100
        pts = np.array([[x, y], [x + rw, y], [x + rw, y + rh], [x, y + rh]])
        pts = _rotate(pts, np.array([x, y]), _number(value, "rotation", where, 0.0))
        return Shape(name=where, parts=((pts,),), class_name=cls), None, (h, w)
    if rtype == "ellipselabels":
        cx, cy = _number(value, "x", where) * w / 100, _number(value, "y", where) * h / 100
        rx = _number(value, "radiusX", where) * w / 100
        ry = _number(value, "radiusY", where) * h / 100
        n = int(min(4096, max(64, math.ceil(8 * math.pi * max(rx, ry)))))
        t = np.linspace(0, 2 * math.pi, n, endpoint=False)
        pts = np.column_stack([cx + rx * np.cos(t), cy + ry * np.sin(t)])
        pts = _rotate(pts, np.array([cx, cy]), _number(value, "rotation", where, 0.0))
        return Shape(name=where, parts=((pts,),), class_name=cls), None, (h, w)
    if value.get("format") != "rle" or "rle" not in value:
        return None, f"brush format {value.get('format')!r} is not RLE", (h, w)
    return _brush_shape(value["rle"], w, h, where, cls), None, (h, w)


def _image_name(task: Mapping[str, Any], index: int) -> str:
    data = task.get("data") if isinstance(task.get("data"), dict) else {}
    candidates = [data.get("image"), task.get("file_upload")]
    candidates += [v for v in data.values() if isinstance(v, str)]
    for c in candidates:
        if isinstance(c, str) and c:
            path = unquote(urlparse(c).path) or c
            base = posixpath.basename(path.rstrip("/"))
            if base:
                return base
    return f"task-{task.get('id', index)}"


def read_labelstudio(
    data: bytes,
    *,
    shape: tuple[int, int] | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> dict[str, ImportResult]:
    """Read a Label Studio JSON export: one label image per task annotation.

    Parameters
    ----------
    data : bytes
        The export (a list of tasks, or a single task object).
    shape : (int, int), optional
        ``(H, W)`` for tasks whose results give no ``original_width``/``height``;
        results that do give them must agree with each other.
    limits : Limits, optional
        File size, point, shape and pixel caps.

    Returns
    -------
    dict of str to ImportResult
        Keyed by the image file name (basename of ``data.image`` or ``file_upload``);
        when a task has several annotations (several annotators) or two tasks share a
        name, keys become ``"<name>#annotation-<id>"``. Classes are the region labels.

    Raises
    ------
    MaskFormatError
        Not a Label Studio export, malformed regions (NaN, wrong RLE length, sizes that
        disagree), or anything over ``limits``.
    """
    doc = load_json(data, what="Label Studio", limits=limits)
    return labelstudio_from_document(doc, shape=shape, limits=limits)


def labelstudio_from_document(
    doc: Any, *, shape: tuple[int, int] | None = None, limits: Limits = DEFAULT_LIMITS
) -> dict[str, ImportResult]:
    """:func:`read_labelstudio` on an already parsed JSON document."""
    tasks = doc if isinstance(doc, list) else [doc]
    if not tasks or not all(isinstance(t, dict) for t in tasks):
        raise MaskFormatError("Not a Label Studio export: expected a list of task objects.")
    entries: list[tuple[str, Any, ImportResult]] = []
    for t_index, task in enumerate(tasks):
        anns = task.get("annotations", task.get("completions"))
        if not isinstance(anns, list):
            raise MaskFormatError(f"Label Studio task {t_index} has no 'annotations' list.")
        name = _image_name(task, t_index)
        for a_index, ann in enumerate(anns):
            if not isinstance(ann, dict):
                raise MaskFormatError(f"Label Studio task {t_index}: annotation is not an object.")
            aid = ann.get("id", a_index)
            results = ann.get("result") or []
            if not isinstance(results, list):
                raise MaskFormatError(f"Label Studio annotation {aid}: 'result' must be a list.")
            skipped: list[tuple[str, str]] = []
            if ann.get("was_cancelled"):
                skipped.append((f"annotation {aid}", "cancelled in Label Studio"))
                results = []
            if len(results) > limits.max_shapes:
                raise MaskFormatError(
                    f"Label Studio annotation {aid} has {len(results):,} regions; at most "
                    f"{limits.max_shapes:,} are accepted."
                )
            shapes: list[Shape] = []
            size = tuple(shape) if shape is not None else None
            for r_index, result in enumerate(results):
                if not isinstance(result, dict):
                    raise MaskFormatError(
                        f"Label Studio annotation {aid}: result is not an object."
                    )
                where = f"Label Studio region {result.get('id', r_index)!s}"
                shape_, reason, region_size = _region_shape(result, where, limits)
                if region_size is not None:
                    if size is not None and region_size != size:
                        raise MaskFormatError(
                            f"{where} is on a {region_size[1]} x {region_size[0]} image (W x H), "
                            f"but the image is {size[1]} x {size[0]}."
                        )
                    size = region_size
                if shape_ is None:
                    skipped.append((where, reason or "no area"))
                else:
                    shapes.append(shape_)
            result_ = rasterize_shapes(shapes, shape=size, limits=limits, skipped=skipped)
            entries.append((name, aid, result_))
    counts: dict[str, int] = {}
    for name, _, _ in entries:
        counts[name] = counts.get(name, 0) + 1
    out: dict[str, ImportResult] = {}
    for name, aid, res in entries:
        key = name if counts[name] == 1 else f"{name}#annotation-{aid}"
        if key in out:
            raise MaskFormatError(f"Label Studio export has two annotations keyed {key!r}.")
        out[key] = res
    return out
