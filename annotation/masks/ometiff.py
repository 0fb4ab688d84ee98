"""OME-TIFF label images and TIFF calibration: physical pixel size in and out (pure).

An OME-TIFF carries OME-XML in the first page's ImageDescription; its ``Pixels``
element gives ``PhysicalSizeX`` / ``PhysicalSizeY`` with units (``µm`` by default).
A plain TIFF may be calibrated too: ImageJ writes ``unit=micron`` in its description
and pixels per unit in ``XResolution`` / ``YResolution``; other writers use the TIFF
``ResolutionUnit`` (centimetre or inch). :func:`tiff_facts` reads all of these without
decoding pixels; sizes are returned in micrometres as a
:class:`~annotation.masks.labels.PixelSize`, which callers use to turn pixel counts
into µm² (``pixel_size.area_um2``).

:func:`write_ome_tiff` writes a label image as a single-plane OME-TIFF (axes ``YX``,
uint16 or uint32, zlib) with the pixel size when one is known; Fiji (Bio-Formats),
QuPath, napari and ``tifffile`` read it back with that calibration.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import numpy as np

from .labels import MaskFormatError, PixelSize, to_canonical_dtype

__all__ = ["TiffFacts", "is_ome_tiff", "tiff_facts", "write_ome_tiff"]

#: Micrometres per unit, for the OME ``UnitsLength`` values and ImageJ unit names.
_UM_PER_UNIT = {
    "µm": 1.0, "um": 1.0, "micron": 1.0, "microns": 1.0, "\\u00B5m": 1.0, "μm": 1.0,
    "nm": 1e-3, "mm": 1e3, "cm": 1e4, "m": 1e6, "Å": 1e-4, "pm": 1e-6,
}
_TIFF_RESUNIT_UM = {2: 25_400.0, 3: 10_000.0}  # inch, centimetre


@dataclass(frozen=True)
class TiffFacts:
    """Header facts of a TIFF that a mask reader needs.

    Attributes
    ----------
    is_ome : bool
        The file carries OME-XML.
    rgb : bool
        The first page is photometric RGB (colour samples, not instance channels).
    pixel_size : PixelSize or None
        Physical pixel size in µm, when recorded.
    axes : str
        Axes of the first series as tifffile names them (``'YX'``, ``'CYX'``, ...).
    shape : tuple of int
        Shape of the first series, one entry per axis.
    """

    is_ome: bool
    rgb: bool
    pixel_size: PixelSize | None
    axes: str
    shape: tuple[int, ...] = ()

    @property
    def planes(self) -> int:
        """Product of the non-spatial, non-sample axes: more than 1 for a stack."""
        return int(np.prod([d for a, d in zip(self.axes, self.shape, strict=False)
                            if a not in "YXS"] or [1]))


def is_ome_tiff(data: bytes) -> bool:
    """Whether TIFF bytes carry OME-XML (header only)."""
    return tiff_facts(data).is_ome


def _open(data: bytes):
    import tifffile

    try:
        return tifffile.TiffFile(io.BytesIO(bytes(data)))
    except Exception as exc:  # tifffile raises many types on malformed headers
        raise MaskFormatError(f"Truncated or malformed TIFF: {exc}") from exc


def _ome_pixel_size(xml: str) -> PixelSize | None:
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise MaskFormatError(f"The OME-TIFF's OME-XML is malformed: {exc}") from exc
    pixels = next((e for e in root.iter() if e.tag.rsplit("}", 1)[-1] == "Pixels"), None)
    if pixels is None:
        return None
    sizes = []
    for axis in ("Y", "X"):
        value = pixels.get(f"PhysicalSize{axis}")
        if value is None:
            return None
        unit = pixels.get(f"PhysicalSize{axis}Unit", "µm")
        if unit not in _UM_PER_UNIT:
            raise MaskFormatError(f"The OME-TIFF gives PhysicalSize{axis} in unknown unit {unit!r}.")
        try:
            sizes.append(float(value) * _UM_PER_UNIT[unit])
        except ValueError as exc:
            raise MaskFormatError(f"The OME-TIFF's PhysicalSize{axis} {value!r} is not a number.") from exc
    return PixelSize(y=sizes[0], x=sizes[1])


def _resolution(page, tag: str) -> float | None:
    entry = page.tags.get(tag)
    if entry is None:
        return None
    value = entry.value
    num, den = (value if isinstance(value, tuple) else (value, 1))[:2]
    return float(num) / float(den) if den and num else None


def _tiff_pixel_size(tif) -> PixelSize | None:
    page = tif.pages[0]
    xres, yres = _resolution(page, "XResolution"), _resolution(page, "YResolution")
    if not xres or not yres:
        return None
    ij = tif.imagej_metadata or {}
    unit = ij.get("unit")
    if unit is not None:
        factor = _UM_PER_UNIT.get(str(unit))
    else:
        resunit = page.tags.get("ResolutionUnit")
        factor = _TIFF_RESUNIT_UM.get(int(resunit.value)) if resunit is not None else None
    if factor is None:
        return None  # uncalibrated (pixels per "inch" by default, or an unknown unit)
    try:
        return PixelSize(y=factor / yres, x=factor / xres)
    except MaskFormatError:
        return None


def tiff_facts(data: bytes) -> TiffFacts:
    """Read OME, colour and calibration facts from a TIFF's headers (no pixel decoded).

    Parameters
    ----------
    data : bytes
        A TIFF file.

    Returns
    -------
    TiffFacts

    Raises
    ------
    MaskFormatError
        Malformed TIFF headers or OME-XML, or an unknown length unit.
    """
    with _open(data) as tif:
        if not tif.pages:
            raise MaskFormatError("The TIFF has no image.")
        page = tif.pages[0]
        rgb = int(getattr(page, "photometric", 1)) == 2
        axes = tif.series[0].axes if tif.series else ""
        shape = tuple(int(d) for d in tif.series[0].shape) if tif.series else ()
        if tif.is_ome and tif.ome_metadata:
            return TiffFacts(True, rgb, _ome_pixel_size(tif.ome_metadata), axes, shape)
        return TiffFacts(False, rgb, _tiff_pixel_size(tif), axes, shape)


def write_ome_tiff(labels: np.ndarray, *, pixel_size: PixelSize | None = None) -> bytes:
    """Encode a label image as a single-plane OME-TIFF.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        Instance label image.
    pixel_size : PixelSize, optional
        Written as ``PhysicalSizeY`` / ``PhysicalSizeX`` in µm.

    Returns
    -------
    bytes
        OME-TIFF content: axes YX, uint16 (uint32 above 65,535), zlib-compressed.
    """
    import tifffile

    canonical = np.ascontiguousarray(to_canonical_dtype(labels))
    metadata: dict = {"axes": "YX", "Name": "labels"}
    if pixel_size is not None:
        metadata.update(
            PhysicalSizeY=float(pixel_size.y), PhysicalSizeYUnit="µm",
            PhysicalSizeX=float(pixel_size.x), PhysicalSizeXUnit="µm",
        )
    buf = io.BytesIO()
    tifffile.imwrite(
        buf, canonical, ome=True, photometric="minisblack", compression="zlib",
        metadata=metadata,
    )
    return buf.getvalue()
