"""Overlap losers left in pieces, QuPath nucleusGeometry, COCO crowd RLE, OME-TIFF pixel size.

The loose-ROI folder is CryoNuSeg's layout, constructed from StarDist's ``mask2d.tif``
(``tests/data/constructed/cryonuseg_rois``, made by ``tests/data/constructed/make.py``).
"""

import io
import json
import zipfile

import numpy as np
import pytest
import roifile
import tifffile

from annotation.masks import (
    MaskFormatError,
    PixelSize,
    Shape,
    detect_format,
    rasterize_shapes,
    read_coco,
    read_mask,
    read_qupath_geojson,
    relabel_sequential,
    tiff_facts,
    write_mask,
)
from annotation.masks.rle import rle_from_indices
from tests.conftest import TEST_DATA

ROIS = TEST_DATA / "constructed" / "cryonuseg_rois" / "img2d"
MASK2D = TEST_DATA / "stardist" / "mask2d.tif"


def square(x0, y0, x1, y1):
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


# ---------------------------------------------------------- overlap losers in pieces


def test_loser_cut_in_two_keeps_its_largest_piece():
    big = Shape("big", parts=((square(0, 0, 10, 10),),))      # 100 px
    bar = Shape("bar", parts=((square(0, 3, 10, 5),),))       # 20 px across it: wins
    result = rasterize_shapes([big, bar], shape=(10, 10))
    # big is left with rows 0-2 (30 px) and rows 5-9 (50 px): only rows 5-9 stay.
    assert int((result.labels == 1).sum()) == 50 and result.labels[:3].max() == 0
    assert int((result.labels == 2).sum()) == 20
    assert result.warnings[-1] == (
        "big lost 20 of its 100 pixels to overlapping instances and was left in 2 pieces "
        "(80 px); kept its largest piece (50 px), dropped 1 piece (30 px)."
    )


def test_loser_left_with_only_slivers_is_dropped():
    ring = Shape("cell", parts=((square(0, 0, 10, 10),),))                     # 100 px
    cover = Shape("cover", parts=((square(0, 1, 10, 5),),))                     # 40 px
    cover2 = Shape("cover2", parts=((square(0, 6, 10, 10),),))                  # 40 px
    result = rasterize_shapes([ring, cover, cover2], shape=(10, 10))
    # cell keeps row 0 and row 5 (10 px each, 10 % each): the largest piece is 10 px,
    # at the 10 % threshold, so it is kept; a higher threshold drops the cell.
    assert int((result.labels == 1).sum()) == 10
    strict = rasterize_shapes([ring, cover, cover2], shape=(10, 10), min_piece_share=0.2)
    assert strict.n_instances == 2 and int((strict.labels > 0).sum()) == 80
    assert strict.warnings[-1] == (
        "cell lost 80 of its 100 pixels to overlapping instances and was left in 2 pieces "
        "(20 px); its largest piece (10 px) is under 20% of the pixels it was drawn with, so "
        "it was dropped."
    )
    assert not any("lost all its pixels" in w for w in strict.warnings)


def test_instance_drawn_in_two_parts_is_left_alone():
    two = Shape("two parts", parts=((square(0, 0, 4, 4),), (square(6, 0, 10, 4),)))
    cut = Shape("cut", parts=((square(0, 0, 2, 4),),))
    result = rasterize_shapes([two, cut], shape=(4, 10))
    assert int((result.labels == 1).sum()) == 32 - 8
    assert not any("pieces" in w for w in result.warnings)


def test_cryonuseg_loose_rois_round_trip_and_an_overlapping_roi_fragments_a_nucleus():
    members = {p.name: p.read_bytes() for p in sorted(ROIS.glob("*.roi"))}
    assert len(members) == 125
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    result = read_mask(zipped.getvalue(), shape=(512, 512))
    expected = relabel_sequential(tifffile.imread(MASK2D))
    np.testing.assert_array_equal(result.labels, expected)
    # A second rater's thin freehand ROI drawn across nucleus 1: the nucleus is cut in two.
    ys, xs = np.nonzero(expected == 1)
    mid = int(np.median(ys))
    bar = roifile.ImagejRoi.frompoints(
        square(xs.min() - 2, mid, xs.max() + 3, mid + 2).astype(np.int32)
    )
    bar.roitype = roifile.ROI_TYPE.FREEHAND
    with zipfile.ZipFile(zipped, "a") as zf:
        zf.writestr("zz-rater2.roi", bar.tobytes())
    cut = read_mask(zipped.getvalue(), shape=(512, 512))
    notes = [w for w in cut.warnings if "nucleus-001" in w and "pieces" in w]
    assert len(notes) == 1 and "kept its largest piece" in notes[0]
    first = cut.labels == 1
    from scipy import ndimage

    assert ndimage.label(first, structure=np.ones((3, 3)))[1] == 1  # one piece left


# ------------------------------------------------------------- QuPath nuclei


def _qupath_cells() -> bytes:
    def feature(n, cell, nucleus):
        out = {
            "type": "Feature", "id": f"c{n}",
            "geometry": {"type": "Polygon", "coordinates": [square(*cell).tolist() + [cell[:2]]]},
            "properties": {"objectType": "cell", "classification": {"name": "tumor"}},
        }
        if nucleus:
            out["nucleusGeometry"] = {
                "type": "Polygon", "coordinates": [square(*nucleus).tolist() + [nucleus[:2]]],
            }
        return out

    doc = {"type": "FeatureCollection", "features": [
        feature(1, (0, 0, 10, 10), (3, 3, 6, 6)),
        feature(2, (12, 0, 20, 8), (14, 2, 16, 4)),
        feature(3, (0, 12, 5, 17), None),  # an annotation without a nucleus
    ]}
    return json.dumps(doc).encode()


def test_qupath_cells_default_to_the_cell_outline_and_say_so():
    result = read_qupath_geojson(_qupath_cells(), shape=(20, 20))
    assert result.n_instances == 3
    assert sorted(np.bincount(result.labels.ravel())[1:].tolist()) == [25, 64, 100]
    assert result.warnings == (
        "imported the cell outlines (geometry=cell); 2 QuPath cells also carry a "
        "nucleusGeometry, imported with geometry=nucleus.",
    )


def test_qupath_nucleus_geometry():
    result = read_mask(_qupath_cells(), shape=(20, 20), geometry="nucleus")
    assert result.n_instances == 2
    assert sorted(np.bincount(result.labels.ravel())[1:].tolist()) == [4, 9]
    assert result.classes == {1: "tumor", 2: "tumor"}
    assert result.skipped == (
        ("GeoJSON feature 2 (cell)", "no nucleusGeometry (geometry=nucleus was asked)"),
    )
    assert result.warnings[0] == "imported the nucleus outlines (geometry=nucleus) of 2 QuPath cells."
    polygon = b'{"type": "Polygon", "coordinates": [[[0,0],[2,0],[2,2],[0,2],[0,0]]]}'
    with pytest.raises(MaskFormatError, match="no object in the GeoJSON has a nucleusGeometry"):
        read_mask(polygon, shape=(4, 4), geometry="nucleus")
    with pytest.raises(MaskFormatError, match="geometry must be one of"):
        read_mask(polygon, shape=(4, 4), geometry="membrane")


# ------------------------------------------------------------------ COCO crowd


def _cvat_crowd_coco() -> bytes:
    """Older CVAT/datumaro: every mask written as iscrowd=1 RLE."""
    h, w = 6, 8
    masks = [np.zeros((h, w), bool), np.zeros((h, w), bool)]
    masks[0][1:3, 1:4] = True
    masks[1][3:6, 5:8] = True
    anns = []
    for n, m in enumerate(masks, start=1):
        cols = np.flatnonzero(m.T.ravel())  # column-major indices, as COCO RLE counts
        anns.append({"id": n, "image_id": 1, "category_id": 1, "iscrowd": 1,
                     "segmentation": rle_from_indices(cols, h, w), "area": int(m.sum()),
                     "bbox": [0, 0, 1, 1]})
    return json.dumps({
        "images": [{"id": 1, "file_name": "a.png", "width": w, "height": h}],
        "annotations": anns, "categories": [{"id": 1, "name": "cell"}],
    }).encode()


def test_coco_crowd_rle_skipped_by_default_imported_with_crowd_instances():
    data = _cvat_crowd_coco()
    skipped = read_coco(data)["a.png"]
    assert skipped.n_instances == 0 and len(skipped.skipped) == 2
    assert "import with crowd=instances" in skipped.skipped[0][1]
    result = read_mask(data, crowd="instances")
    assert result.n_instances == 2
    assert int((result.labels == 1).sum()) == 6 and int((result.labels == 2).sum()) == 9
    assert result.warnings == (
        "imported 2 crowd (iscrowd=1) annotations as one instance each (crowd=instances).",
    )
    with pytest.raises(MaskFormatError, match="crowd must be one of"):
        read_mask(data, crowd="all")


# --------------------------------------------------------------------- OME-TIFF


def test_ome_tiff_labels_in_and_out_keep_the_pixel_size():
    labels = relabel_sequential(tifffile.imread(MASK2D))
    data = write_mask(labels, format="ome-tiff", pixel_size=PixelSize(y=0.65, x=0.325))
    assert detect_format(data) == "ome-tiff"
    with tifffile.TiffFile(io.BytesIO(data)) as tif:  # what other tools see
        assert tif.is_ome and 'PhysicalSizeX="0.325"' in tif.ome_metadata
    result = read_mask(data, shape=(512, 512))
    np.testing.assert_array_equal(result.labels, labels)
    assert result.pixel_size == PixelSize(y=0.65, x=0.325)
    assert result.pixel_size.area_um2 == pytest.approx(0.21125)
    assert tiff_facts(write_mask(labels, format="ome-tiff")).pixel_size is None


def test_ome_units_and_imagej_calibration_are_read_in_micrometres():
    labels = np.zeros((4, 4), np.uint16)
    labels[1, 1] = 1
    buf = io.BytesIO()
    tifffile.imwrite(buf, labels, ome=True, metadata={
        "axes": "YX", "PhysicalSizeX": 250, "PhysicalSizeXUnit": "nm",
        "PhysicalSizeY": 250, "PhysicalSizeYUnit": "nm",
    })
    assert read_mask(buf.getvalue()).pixel_size == PixelSize(y=0.25, x=0.25)
    ij = io.BytesIO()
    tifffile.imwrite(ij, labels, imagej=True, resolution=(2.0, 4.0), metadata={"unit": "micron"})
    assert read_mask(ij.getvalue()).pixel_size == PixelSize(y=0.25, x=0.5)
    plain = io.BytesIO()
    tifffile.imwrite(plain, labels)
    assert read_mask(plain.getvalue()).pixel_size is None
