"""One binary mask per instance: folders/zips of PNG/TIFF files and (N, H, W) stacks (pure).

The Data Science Bowl 2018 layout (``<image id>/masks/<n>.png``, one 0/255 PNG per
nucleus), many Kaggle sets, Label Studio's PNG brush export and tools that save an
``(N, H, W)`` array (TIFF pages or channels, OME-TIFF ``C``/``Z``/``T`` planes, ``.npy``)
store instances as separate binary masks. They are painted into one label image by the
overlap rule of :mod:`annotation.masks.rasterize` (the smaller instance keeps shared
pixels; every overlap is reported; a loser left in pieces keeps its largest piece), in
file-name order (stacks: plane order), so instance ``k`` is the ``k``-th non-empty
mask.

Every mask must be binary (0 and one other value, or two colours, see
:mod:`annotation.masks.binary`): a plane holding several ids is a label image, not one
instance, and is refused with its name. Polarity is checked per mask (``invert``).
Empty masks are skipped with a reason.

:func:`write_instance_masks` writes the DSB layout back (8-bit 0/255 PNGs).
"""

from __future__ import annotations

import io
import posixpath
import zipfile
from collections.abc import Sequence

import numpy as np

from annotation.imagefiles import ImageFileError, read_image

from .binary import apply_polarity, binary_foreground, colour_foreground
from .labels import ImportResult, MaskFormatError, PixelSize, validate_label_image
from .rasterize import Shape, rasterize_shapes
from .safety import DEFAULT_LIMITS, Limits, read_zip_members

__all__ = [
    "INSTANCE_FILE_SUFFIXES",
    "read_instance_files",
    "read_instance_npy",
    "read_instance_stack",
    "read_instance_tiff",
    "read_instance_zip",
    "write_instance_masks",
]

#: File-name endings of per-instance mask files in a folder or zip.
INSTANCE_FILE_SUFFIXES = (".png", ".tif", ".tiff")


def _check_stack_size(n: int, height: int, width: int, limits: Limits, what: str) -> None:
    if n > limits.max_shapes:
        raise MaskFormatError(
            f"{what} holds {n:,} instance masks; at most {limits.max_shapes:,} are accepted."
        )
    if height * width > limits.max_pixels:
        raise MaskFormatError(
            f"{what}: one {height} x {width} mask has {height * width:,} pixels; at most "
            f"{limits.max_pixels:,} are accepted."
        )
    if n * height * width > limits.max_decoded_bytes:
        raise MaskFormatError(
            f"{what}: {n:,} masks of {height} x {width} pixels are over "
            f"{limits.max_decoded_bytes:,} pixels in all."
        )


def _plane_shape(plane: np.ndarray, name: str, invert: bool | None) -> tuple[Shape | None, tuple]:
    """The instance of one per-instance mask (None when empty) and polarity notes."""
    if plane.ndim == 3:
        fg = colour_foreground(plane, what=name)
    elif plane.ndim == 2:
        if plane.dtype.kind == "f":
            raise MaskFormatError(f"{name} has float values; a per-instance mask is 0 / non-zero.")
        fg = binary_foreground(plane)
        if fg is None:
            values = np.unique(plane)
            if len(values) == 1:  # all zero: an empty mask
                return None, ()
            raise MaskFormatError(
                f"{name} holds {len(values)} distinct values ({values[:5].tolist()}...); a "
                "per-instance mask is binary (0 background, one value for the instance). "
                "A mask with several ids is a label image: import it on its own."
            )
    else:
        raise MaskFormatError(f"{name} has shape {plane.shape}; expected one 2-D mask.")
    fg, notes = apply_polarity(fg, invert=invert, what=name)
    if not fg.any():
        return None, notes
    return Shape.from_mask(name, fg), notes


def read_instance_stack(
    stack: np.ndarray,
    *,
    names: Sequence[str] | None = None,
    invert: bool | None = None,
    limits: Limits = DEFAULT_LIMITS,
    pixel_size: PixelSize | None = None,
    what: str = "stack",
) -> ImportResult:
    """Paint an (N, H, W) stack of binary masks, one instance per plane, into a label image.

    Parameters
    ----------
    stack : ndarray of int or bool, shape (N, H, W)
        Plane ``k`` is instance ``k``'s mask (0 background, one non-zero value).
    names : sequence of str, optional
        Name of each plane for messages (default ``"<what> plane k"``, k from 1).
    invert : bool or None, optional
        Polarity per plane (see :func:`annotation.masks.binary.apply_polarity`).
    limits : Limits, optional
        ``max_shapes`` (planes), ``max_pixels`` (per plane) apply.
    pixel_size : PixelSize, optional
        Carried into the result.

    Returns
    -------
    ImportResult
        uint16/uint32 (H, W) labels, instances in plane order (empty planes skipped,
        listed in ``skipped``), overlap warnings as for polygons.

    Raises
    ------
    MaskFormatError
        Not 3-D, a plane that is not binary (named), a plane that looks inverted while
        ``invert`` is None, or over the caps.
    """
    stack = np.asarray(stack)
    if stack.ndim != 3:
        raise MaskFormatError(f"{what}: expected an (N, H, W) stack of masks, got {stack.shape}.")
    n, height, width = stack.shape
    _check_stack_size(n, height, width, limits, what)
    if names is not None and len(names) != n:
        raise ValueError(f"{len(names)} names for {n} planes")
    names = list(names) if names is not None else [f"{what} plane {k}" for k in range(1, n + 1)]
    shapes, notes, skipped = [], [], []
    for name, plane in zip(names, stack, strict=True):
        shape_, plane_notes = _plane_shape(plane, name, invert)
        notes.extend(plane_notes)
        if shape_ is None:
            skipped.append((name, "empty mask (no foreground pixel)"))
        else:
            shapes.append(shape_)
    result = rasterize_shapes(
        shapes, shape=(height, width), limits=limits, warnings=notes, skipped=skipped
    )
    return _with_pixel_size(result, pixel_size)


def _with_pixel_size(result: ImportResult, pixel_size: PixelSize | None) -> ImportResult:
    if pixel_size is None:
        return result
    from dataclasses import replace

    return replace(result, pixel_size=pixel_size)


def read_instance_files(
    members: Sequence[tuple[str, bytes]],
    *,
    shape: tuple[int, int] | None = None,
    invert: bool | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> ImportResult:
    """Paint per-instance PNG/TIFF files (a folder's or zip's content) into one label image.

    Parameters
    ----------
    members : sequence of (str, bytes)
        File name and content. Files whose names do not end in ``.png``, ``.tif`` or
        ``.tiff`` are skipped with a reason; the others are taken in name order.
    shape : (int, int), optional
        ``(H, W)`` of the image; every mask must have it (default: that of the first).
    invert : bool or None, optional
        Polarity per mask.
    limits : Limits, optional

    Returns
    -------
    ImportResult
        Instances in file-name order; skipped files and empty masks in ``skipped``.

    Raises
    ------
    MaskFormatError
        No mask file, a file that does not decode, a mask that is not binary, masks of
        different sizes (both named), or caps.
    """
    skipped: list[tuple[str, str]] = []
    files = []
    for name, content in sorted(members, key=lambda m: m[0]):
        if name.lower().endswith(INSTANCE_FILE_SUFFIXES):
            files.append((name, content))
        else:
            skipped.append((name, "not a PNG or TIFF mask file"))
    if not files:
        raise MaskFormatError("No per-instance mask file (.png, .tif, .tiff) was given.")
    if len(files) > limits.max_shapes:
        raise MaskFormatError(
            f"{len(files):,} per-instance masks; at most {limits.max_shapes:,} are accepted."
        )
    size = tuple(shape) if shape is not None else None
    shapes, notes = [], []
    for name, content in files:
        where = f"instance mask {name!r}"
        try:
            arr, info = read_image(
                content, max_pixels=limits.max_pixels, max_bytes=limits.max_decoded_bytes,
                plane_shape=shape, keep_palette_indices=True,
            )
        except ImageFileError as exc:
            raise MaskFormatError(f"{where}: {exc}") from exc
        if info.format == "jpeg":
            raise MaskFormatError(f"{where} is a JPEG; lossy compression blurs mask edges.")
        if info.pages > 1:
            raise MaskFormatError(f"{where} has {info.pages} planes; expected one 2-D mask.")
        got = arr.shape[:2]
        if size is None:
            size = got
        elif got != size:
            raise MaskFormatError(
                f"{where} is {got[0]} x {got[1]} (H x W), but "
                f"{'the image' if shape is not None else repr(files[0][0])} is "
                f"{size[0]} x {size[1]}."
            )
        shape_, plane_notes = _plane_shape(arr, where, invert)
        notes.extend(plane_notes)
        if shape_ is None:
            skipped.append((where, "empty mask (no foreground pixel)"))
        else:
            shapes.append(shape_)
    return rasterize_shapes(shapes, shape=size, limits=limits, warnings=notes, skipped=skipped)


def read_instance_zip(
    data: bytes,
    *,
    shape: tuple[int, int] | None = None,
    invert: bool | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> ImportResult:
    """:func:`read_instance_files` on the members of a zip (safe-zip caps apply)."""
    members, junk = read_zip_members(bytes(data), limits=limits)
    result = read_instance_files(members, shape=shape, invert=invert, limits=limits)
    if junk:
        from dataclasses import replace

        result = replace(result, skipped=tuple(junk) + result.skipped)
    return result


def read_instance_npy(
    data: bytes, *, invert: bool | None = None, limits: Limits = DEFAULT_LIMITS
) -> ImportResult:
    """Read an ``.npy`` (N, H, W) stack of binary masks (no pickle allowed).

    Raises
    ------
    MaskFormatError
        An object (pickled) array, not 3-D, or as :func:`read_instance_stack`.
    """
    from .cellpose_seg import _parse_npy_header

    data = bytes(data)
    header, _ = _parse_npy_header(data)
    shape = tuple(header["shape"])
    if len(shape) != 3 or not all(isinstance(s, int) for s in shape):
        raise MaskFormatError(f"The .npy stack has shape {shape}; expected (N, H, W).")
    _check_stack_size(*shape, limits, "the .npy stack")
    try:
        stack = np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as exc:
        raise MaskFormatError(f"Could not read the .npy stack: {exc}") from exc
    if stack.dtype.kind not in "biu":
        raise MaskFormatError(
            f"The .npy stack has dtype {stack.dtype}; per-instance masks are bool or integer."
        )
    return read_instance_stack(stack, invert=invert, limits=limits, what="npy stack")


def read_instance_tiff(
    data: bytes,
    *,
    shape: tuple[int, int] | None = None,
    invert: bool | None = None,
    limits: Limits = DEFAULT_LIMITS,
    pixel_size: PixelSize | None = None,
) -> ImportResult:
    """Read a TIFF holding one binary mask per page or per channel (OME-TIFF too).

    Singleton axes are dropped; the one remaining non-spatial axis (pages, ``C``,
    ``Z``, ``T``, ...) indexes the instances. Pages are decoded one at a time.

    Raises
    ------
    MaskFormatError
        More than one non-singleton non-spatial axis, RGB samples, caps, or as
        :func:`read_instance_stack`.
    """
    import tifffile

    try:
        tif = tifffile.TiffFile(io.BytesIO(bytes(data)))
    except Exception as exc:  # tifffile raises many types on malformed headers
        raise MaskFormatError(f"Truncated or malformed TIFF: {exc}") from exc
    with tif:
        series = tif.series[0]
        axes, dims = series.axes, tuple(int(d) for d in series.shape)
        if "Y" not in axes or "X" not in axes:
            raise MaskFormatError(f"The TIFF's axes {axes!r} have no Y and X.")
        height, width = dims[axes.index("Y")], dims[axes.index("X")]
        if "S" in axes and dims[axes.index("S")] > 1:
            raise MaskFormatError(
                "The TIFF has colour samples per pixel; a stack of masks has one grey "
                "sample per pixel, one plane per instance."
            )
        others = [(a, d) for a, d in zip(axes, dims, strict=True) if a not in "YXS" and d > 1]
        if len(others) > 1:
            described = ", ".join(f"{a}={d}" for a, d in others)
            raise MaskFormatError(
                f"The TIFF has several non-spatial axes ({described}); a stack of "
                "per-instance masks has one (N, H, W)."
            )
        n = others[0][1] if others else 1
        _check_stack_size(n, height, width, limits, "the TIFF stack")
        if shape is not None and (height, width) != tuple(shape):
            raise MaskFormatError(
                f"The TIFF stack's masks are {height} x {width} (H x W), but the image is "
                f"{shape[0]} x {shape[1]}; nothing was decoded."
            )
        pages = list(series.pages)
        if len(pages) != n or any(p is None for p in pages):
            # One page holds several planes (contiguous): decode the series at once.
            stack = series.asarray().reshape(n, height, width)
            planes = list(stack)
        else:
            planes = None
        names = [f"TIFF plane {k}" for k in range(1, n + 1)]
        shapes, notes, skipped = [], [], []
        for k in range(n):
            plane = planes[k] if planes is not None else pages[k].asarray().reshape(height, width)
            if plane.dtype.byteorder == ">":
                plane = plane.astype(plane.dtype.newbyteorder("="))
            shape_, plane_notes = _plane_shape(plane, names[k], invert)
            notes.extend(plane_notes)
            if shape_ is None:
                skipped.append((names[k], "empty mask (no foreground pixel)"))
            else:
                shapes.append(shape_)
    result = rasterize_shapes(
        shapes, shape=(height, width), limits=limits, warnings=notes, skipped=skipped
    )
    return _with_pixel_size(result, pixel_size)


def write_instance_masks(labels: np.ndarray, *, folder: str = "masks") -> bytes:
    """Write one 8-bit 0/255 PNG per instance into a zip (the DSB 2018 layout).

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        Instance label image.
    folder : str, optional
        Folder inside the zip (``""`` for none).

    Returns
    -------
    bytes
        Zip with ``<folder>/<id, 5 digits>.png`` per instance in ascending id order;
        :func:`read_instance_zip` reads it back to the same label image (ids 1..N).
    """
    from PIL import Image

    validate_label_image(labels, name="labels")
    ids = np.unique(labels)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for label in ids[ids > 0].tolist():
            png = io.BytesIO()
            Image.fromarray(((labels == label) * 255).astype(np.uint8)).save(png, format="PNG")
            zf.writestr(posixpath.join(folder, f"{label:05d}.png"), png.getvalue())
    return buf.getvalue()
