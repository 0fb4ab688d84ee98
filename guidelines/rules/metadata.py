"""The pixel size of an image, read from the metadata the image was stored with."""

from __future__ import annotations

import math
from collections.abc import Mapping

#: Length units found in OME metadata, as micrometres per unit.
_UM_PER_UNIT = {"µm": 1.0, "um": 1.0, "μm": 1.0, "micron": 1.0, "micrometer": 1.0,
                "micrometre": 1.0, "nm": 1e-3, "mm": 1e3, "m": 1e6}
_NESTED = ("ome", "pixels", "physical_size")


def _positive(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number > 0 else None


def _pair(y, x) -> float | None:
    y, x = _positive(y), _positive(x)
    if y is None and x is None:
        return None
    if y is None or x is None:
        return y or x
    return math.sqrt(y * x)


def _from(meta: Mapping) -> float | None:
    size = meta.get("pixel_size_um")
    if isinstance(size, list | tuple) and len(size) == 2:
        return _pair(size[0], size[1])
    if isinstance(size, Mapping):
        return _pair(size.get("y"), size.get("x"))
    if size is not None:
        return _positive(size)
    for x_key, y_key, unit_key in (
        ("physical_size_x_um", "physical_size_y_um", None),
        ("physical_size_x", "physical_size_y", "physical_size_unit"),
        ("PhysicalSizeX", "PhysicalSizeY", "PhysicalSizeXUnit"),
    ):
        if x_key in meta or y_key in meta:
            scale = _UM_PER_UNIT.get(str(meta.get(unit_key) or "µm")) if unit_key else 1.0
            found = _pair(meta.get(y_key), meta.get(x_key))
            return None if found is None or scale is None else found * scale
    return None


def pixel_size_from_metadata(metadata: Mapping | None) -> float | None:
    """Edge length of one pixel in µm, or None when the metadata does not say.

    Parameters
    ----------
    metadata : mapping or None
        An image's metadata. Read, in order: ``pixel_size_um`` (a number, ``[y, x]`` or
        ``{"y": .., "x": ..}``); ``physical_size_x_um``/``physical_size_y_um``;
        ``physical_size_x``/``physical_size_y`` with ``physical_size_unit``; OME's
        ``PhysicalSizeX``/``PhysicalSizeY`` with ``PhysicalSizeXUnit`` (default µm) —
        at the top level or under ``ome``, ``pixels`` or ``physical_size``.

    Returns
    -------
    float or None
        For anisotropic pixels ``sqrt(size_y * size_x)``, which keeps pixel areas exact.
        Missing, non-positive or unreadable sizes give None.
    """
    if not isinstance(metadata, Mapping):
        return None
    found = _from(metadata)
    if found is not None:
        return found
    for key in _NESTED:
        if isinstance(metadata.get(key), Mapping):
            found = _from(metadata[key])
            if found is not None:
                return found
    return None
