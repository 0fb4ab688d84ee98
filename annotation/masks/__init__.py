"""Mask formats: the canonical label image and converters to and from every format.

Pure package (no Django): functions take bytes or numpy arrays and return bytes,
arrays or frozen dataclasses. The canonical form is a 2-D integer label image
(0 background, 1..N instances; ``uint16``, or ``uint32`` above 65,535); see
:mod:`.labels`. The pixel convention is documented in :mod:`.polygons`, the overlap
rule in :mod:`.rasterize`, size caps in :mod:`.safety`.

Modules: ``labels`` (validation, relabelling), ``raster`` (PNG/TIFF), ``polygons``
(label image -> shapely, pixel convention), ``rasterize`` (shapes -> label image,
overlap rule), ``coco``, ``rle`` (COCO run-length encoding), ``cellpose_seg``, ``imagej``,
``qupath`` (GeoJSON), ``labelstudio``, ``detect`` (format by content), ``formats``
(``read_mask`` / ``write_mask`` dispatch), ``safety`` (caps, safe zip, JSON).
"""

from .cellpose_seg import RestrictedUnpickler, read_cellpose_seg, write_cellpose_seg
from .coco import CocoImage, read_coco, write_coco
from .detect import MASK_FORMATS, detect_format
from .formats import FORMAT_INFO, WRITE_FORMATS, read_mask, write_mask
from .imagej import read_imagej_rois, write_imagej_zip
from .labels import (
    MAX_LABEL,
    ImportResult,
    MaskFormatError,
    instance_ids,
    relabel_sequential,
    to_canonical_dtype,
    validate_label_image,
)
from .labelstudio import decode_brush_rle, encode_brush_rle, read_labelstudio
from .polygons import label_image_to_polygons, mask_to_geometry
from .qupath import read_qupath_geojson, write_qupath_geojson
from .raster import label_image_warnings, read_label_image, write_label_png, write_label_tiff
from .rasterize import Shape, rasterize_rings, rasterize_shapes
from .rle import decode_rle, encode_rle
from .safety import DEFAULT_LIMITS, Limits, read_zip_members

__all__ = [
    "DEFAULT_LIMITS",
    "FORMAT_INFO",
    "MASK_FORMATS",
    "MAX_LABEL",
    "WRITE_FORMATS",
    "CocoImage",
    "ImportResult",
    "Limits",
    "MaskFormatError",
    "RestrictedUnpickler",
    "Shape",
    "decode_brush_rle",
    "decode_rle",
    "detect_format",
    "encode_brush_rle",
    "encode_rle",
    "instance_ids",
    "label_image_to_polygons",
    "label_image_warnings",
    "mask_to_geometry",
    "rasterize_rings",
    "rasterize_shapes",
    "read_cellpose_seg",
    "read_coco",
    "read_imagej_rois",
    "read_label_image",
    "read_labelstudio",
    "read_mask",
    "read_qupath_geojson",
    "read_zip_members",
    "relabel_sequential",
    "to_canonical_dtype",
    "validate_label_image",
    "write_cellpose_seg",
    "write_coco",
    "write_imagej_zip",
    "write_label_png",
    "write_label_tiff",
    "write_mask",
    "write_qupath_geojson",
]
