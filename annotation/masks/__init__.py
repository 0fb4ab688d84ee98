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
(``read_mask`` / ``write_mask`` dispatch), ``safety`` (caps, safe zip, JSON),
``rasterfiles`` (PNG/TIFF masks of every layout), ``binary`` (binary and two-colour
masks, polarity), ``intensity`` (refusing intensity images sent as masks),
``fragments`` (overlap losers left in pieces), ``instances`` (one binary mask per
instance: folders, zips, stacks), ``ometiff``
(OME-TIFF and TIFF calibration: physical pixel size).
"""

from .binary import apply_polarity, binary_foreground, colour_foreground, labels_from_foreground
from .cellpose_seg import RestrictedUnpickler, read_cellpose_seg, write_cellpose_seg
from .coco import CocoImage, read_coco, write_coco
from .detect import MASK_FORMATS, detect_format
from .formats import CROWD_MODES, FORMAT_INFO, GEOMETRIES, WRITE_FORMATS, read_mask, write_mask
from .imagej import read_imagej_rois, write_imagej_zip
from .instances import (
    read_instance_files,
    read_instance_npy,
    read_instance_stack,
    read_instance_tiff,
    read_instance_zip,
    write_instance_masks,
)
from .intensity import LabelStats, check_not_intensity, label_image_stats
from .labels import (
    MAX_LABEL,
    ImportResult,
    MaskFormatError,
    PixelSize,
    instance_ids,
    relabel_sequential,
    to_canonical_dtype,
    validate_label_image,
)
from .labelstudio import decode_brush_rle, encode_brush_rle, read_labelstudio
from .ometiff import TiffFacts, tiff_facts, write_ome_tiff
from .polygons import label_image_to_polygons, mask_to_geometry
from .qupath import read_qupath_geojson, write_qupath_geojson
from .raster import label_image_warnings, read_label_image, write_label_png, write_label_tiff
from .rasterfiles import read_raster_mask
from .rasterize import Shape, rasterize_rings, rasterize_shapes
from .rle import decode_rle, encode_rle
from .safety import DEFAULT_LIMITS, Limits, read_zip_members

__all__ = [
    "CROWD_MODES",
    "GEOMETRIES",
    "LabelStats",
    "PixelSize",
    "TiffFacts",
    "apply_polarity",
    "binary_foreground",
    "check_not_intensity",
    "colour_foreground",
    "label_image_stats",
    "labels_from_foreground",
    "read_instance_files",
    "read_instance_npy",
    "read_instance_stack",
    "read_instance_tiff",
    "read_instance_zip",
    "read_raster_mask",
    "tiff_facts",
    "write_instance_masks",
    "write_ome_tiff",
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
