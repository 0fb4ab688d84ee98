"""PNG, TIFF and OME-TIFF mask files of every layout, as a label image (pure, no Django).

One file may hold:

* a **label image** (one grey integer plane, 0 background, one id per cell): ids are
  renumbered 1..N. A plane whose "ids" look like the grey values of a microscopy image
  is refused (:mod:`annotation.masks.intensity`).
* a **binary mask** (0 and one other value) or a **two-colour** RGB/RGBA/grey+alpha
  image: polarity is checked or applied (``invert``) and the connected foreground
  regions become the instances (:mod:`annotation.masks.binary`).
* a **stack of per-instance masks** (TIFF pages or channels, OME-TIFF planes):
  :func:`annotation.masks.instances.read_instance_tiff`.

TIFF calibration (OME ``PhysicalSizeX/Y``, ImageJ/TIFF resolution) is returned as the
result's ``pixel_size``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from annotation.imagefiles import ImageFileError, read_image

from .binary import apply_polarity, binary_foreground, colour_foreground, labels_from_foreground
from .instances import read_instance_tiff
from .intensity import check_not_intensity
from .labels import ImportResult, MaskFormatError, relabel_sequential, validate_label_image
from .ometiff import tiff_facts
from .raster import label_image_warnings
from .safety import DEFAULT_LIMITS, Limits

__all__ = ["read_raster_mask"]

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def read_raster_mask(
    data: bytes,
    *,
    shape: tuple[int, int] | None = None,
    invert: bool | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> ImportResult:
    """Read a PNG, TIFF or OME-TIFF mask of any layout (module docstring).

    Parameters
    ----------
    data : bytes
        The whole file.
    shape : (int, int), optional
        ``(H, W)`` of the image: a header of another size is refused before decoding.
    invert : bool or None, optional
        For binary masks: True swaps cells and background, False keeps the foreground
        without the polarity check, None (default) refuses a mask that looks inverted.
        A label image with several ids has no polarity: ``invert=True`` is refused.
    limits : Limits, optional
            ``max_pixels`` (per plane), ``max_decoded_bytes``, ``max_shapes`` (stack planes).

    Returns
    -------
    ImportResult
        uint16/uint32 (H, W) labels with ids 1..N, warnings, and ``pixel_size`` when the
        TIFF is calibrated.

    Raises
    ------
    MaskFormatError
        JPEG, float or negative values, colour images with other than two colours, an
        intensity image, an inverted-looking binary mask with ``invert=None``,
        ``invert=True`` on a label image, stacks whose planes are not binary, caps.
    """
    data = bytes(data)
    pixel_size = None
    if data[:4] in _TIFF_MAGIC:
        facts = tiff_facts(data)
        pixel_size = facts.pixel_size
        if facts.planes > 1 and not facts.rgb:
            return read_instance_tiff(
                data, shape=shape, invert=invert, limits=limits, pixel_size=pixel_size
            )
    try:
        arr, info = read_image(
            data, max_pixels=limits.max_pixels, max_bytes=limits.max_decoded_bytes,
            plane_shape=shape, keep_palette_indices=True,
        )
    except ImageFileError as exc:
        raise MaskFormatError(str(exc)) from exc
    kind = info.format.upper()
    if info.format == "jpeg":
        raise MaskFormatError(
            "A JPEG cannot be a label image: lossy compression changes the instance ids. "
            "Use PNG or TIFF."
        )
    if arr.ndim == 3 and info.pages == 1:
        fg = colour_foreground(arr, what=f"the {kind} mask")
        result = _binary(fg, invert=invert, what=f"two-colour {kind} mask")
    elif arr.ndim != 2:
        raise MaskFormatError(
            f"The {kind} mask has shape {arr.shape}; expected one 2-D plane (H, W), or a "
            "stack of per-instance masks (N, H, W)."
        )
    else:
        validate_label_image(arr, name=f"label {kind}")
        fg = binary_foreground(arr)
        if fg is not None:
            value = int(arr[fg].flat[0]) if arr.dtype.kind != "b" else 1
            result = _binary(fg, invert=invert, what=f"binary {kind} mask (0 / {value})")
        else:
            if invert is True:
                n_ids = len(np.unique(arr)) - (1 if (arr == 0).any() else 0)
                raise MaskFormatError(
                    f"invert=true applies to binary masks (0 and one other value); this "
                    f"{kind} is a label image with {n_ids} ids. Send it without invert."
                )
            check_not_intensity(arr, what=f"The {kind} mask")
            result = ImportResult(
                labels=relabel_sequential(arr), warnings=label_image_warnings(arr)
            )
    return replace(result, pixel_size=pixel_size) if pixel_size is not None else result


def _binary(fg: np.ndarray, *, invert: bool | None, what: str) -> ImportResult:
    fg, notes = apply_polarity(fg, invert=invert, what=what)
    labels, more = labels_from_foreground(fg, what=what)
    return ImportResult(labels=labels, warnings=notes + more)
