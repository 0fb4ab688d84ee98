"""Real files written by ImageJ/Fiji, QuPath, Cellpose/Omnipose and Label Studio.

They live in ``tests/data/real-formats`` (origin and licence in ``tests/data/SOURCES.md``)
and are read in place. Expected areas are computed independently of the code under test:
rectangles and ovals analytically, polygons by testing every pixel centre with shapely.
"""

import functools
import io
import json
import zipfile

import numpy as np
import pytest
import roifile
import shapely
from shapely.geometry import Polygon

from annotation.masks import (
    detect_format,
    instance_ids,
    read_imagej_rois,
    read_label_image,
    read_labelstudio,
    read_mask,
    read_qupath_geojson,
)
from tests.annotation.test_masks_fixtures import REAL_FORMATS

ROIS = REAL_FORMATS / "imagej_roi_types"
SHAPE = (200, 300)  # (H, W): every ROI here fits, the *-left/-top ones stick out


def _centre_count(geom, shape=SHAPE) -> int:
    """Pixels of an (H, W) image whose centre lies inside geom (shapely, brute force).

    Integer-vertex polygons put some centres exactly on edges. The documented tie rule
    (a centre on a left or top edge is in, on a right or bottom edge out) is the same
    as nudging every centre a hair right and down, which is what is tested here.
    """
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    x, y = xx.ravel() + 0.5 + 1e-7, yy.ravel() + 0.5 + 3e-9
    return int(shapely.contains_xy(geom, x, y).sum())


def _even_odd(rings) -> shapely.Geometry:
    polys = [shapely.make_valid(Polygon(r)) for r in rings]
    return functools.reduce(lambda a, b: a.symmetric_difference(b), polys)


def _expected_area(path) -> int:
    roi = roifile.ImagejRoi.fromfile(path)
    if roi.roitype == roifile.ROI_TYPE.RECT and not roi.composite:
        return (roi.right - roi.left) * (roi.bottom - roi.top)
    if roi.roitype == roifile.ROI_TYPE.OVAL:
        a, b = (roi.right - roi.left) / 2, (roi.bottom - roi.top) / 2
        cx, cy = roi.left + a, roi.top + b
        yy, xx = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]]
        return int((((xx + 0.5 - cx) / a) ** 2 + ((yy + 0.5 - cy) / b) ** 2 < 1).sum())
    return _centre_count(_even_odd(roi.coordinates(multi=True)))


AREA_ROIS = [
    "rectangle",
    "oval",
    "oval-left",
    "oval-top",
    "polygon",
    "polygon-left",
    "polygon-top",
    "freehand",
    "ellipse",
    "ellipse-left",
    "ellipse-top",
    "composite-rect-in-rect",
    "composite-oval-in-rect",
    "composite-brush-donut",
    "composite-two-ovals",
    "composite-two-ellipses",
    "composite-brush-yin-yang",
]


@pytest.mark.parametrize("name", AREA_ROIS)
def test_every_imagej_area_roi_type_rasterises_to_expected_area(name):
    path = ROIS / f"{name}.roi"
    data = path.read_bytes()
    assert detect_format(data) == "imagej"
    result = read_imagej_rois(data, shape=SHAPE)
    assert result.n_instances == 1 and result.skipped == ()
    assert int((result.labels == 1).sum()) == _expected_area(path)
    cut = name.endswith(("-left", "-top"))
    assert any("beyond the image border" in w for w in result.warnings) == cut


def test_imagej_hand_checked_areas():
    def area(name):
        return int(read_imagej_rois((ROIS / f"{name}.roi").read_bytes(), shape=SHAPE).labels.sum())

    assert area("rectangle") == 43 * 36
    assert area("composite-rect-in-rect") == 61 * 42 - 31 * 18  # outer minus the hole
    oval = area("oval")  # 34 x 37 bounding box
    assert abs(oval - np.pi * 17 * 18.5) < 0.02 * oval


def test_composite_parts_and_holes_are_kept():
    two = read_imagej_rois((ROIS / "composite-two-ovals.roi").read_bytes(), shape=SHAPE).labels
    from scipy import ndimage

    assert ndimage.label(two == 1)[1] == 2  # one instance in two parts
    donut = read_imagej_rois((ROIS / "composite-oval-in-rect.roi").read_bytes(), shape=SHAPE)
    mask = donut.labels == 1
    filled = ndimage.binary_fill_holes(mask)
    assert int(filled.sum() - mask.sum()) > 100  # the oval hole stays a hole


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("point", "point ROI: marks a position, has no area"),
        ("multipoint", "point ROI: marks a position, has no area"),
        ("line1", "line ROI: a line has no area"),
        ("line2", "line ROI: a line has no area"),
        ("polyline", "polyline ROI: a line has no area"),
        ("freeline", "freeline ROI: a line has no area"),
    ],
)
def test_point_and_line_rois_are_skipped_with_a_reason(name, reason):
    result = read_imagej_rois((ROIS / f"{name}.roi").read_bytes(), shape=SHAPE)
    assert result.n_instances == 0
    assert len(result.skipped) == 1 and result.skipped[0][1] == reason


def test_all_real_rois_in_one_zip():
    buf = io.BytesIO()
    paths = sorted(ROIS.glob("*.roi"))
    with zipfile.ZipFile(buf, "w") as zf:
        for p in paths:
            zf.writestr(p.name, p.read_bytes())
    result = read_mask(buf.getvalue(), shape=SHAPE)
    assert len(paths) == 23
    assert len(result.skipped) == 6
    assert {name for name, _ in result.skipped} == {
        f"ImageJ ROI {n!r}"
        for n in ("freeline", "line1", "line2", "multipoint", "point", "polyline")
    }
    # 17 area ROIs, several overlapping (they were drawn independently): every overlap
    # is reported, and no instance is silently lost.
    lost = [w for w in result.warnings if "lost all its pixels" in w or "so it was dropped" in w]
    assert result.n_instances + len(lost) == 17
    assert any(" overlap by " in w for w in result.warnings)
    # Overlap losers left in slivers keep only their largest piece, and say so.
    trimmed = [w for w in result.warnings if "kept its largest piece" in w]
    assert any(w.startswith("ImageJ ROI 'rectangle' lost 1057 of its 1548 pixels") for w in trimmed)


def test_qupath_02_export_imports_area_objects_and_reports_the_rest():
    data = (REAL_FORMATS / "qupath_geojson" / "qupath_0.2_all_shapes.geojson").read_bytes()
    assert detect_format(data) == "geojson"
    result = read_qupath_geojson(data, shape=(2000, 2000))
    doc = json.loads(data)
    polys = [f["geometry"] for f in doc["features"] if f["geometry"]["type"] == "Polygon"]
    assert result.n_instances == 3
    for label, geom in enumerate(polys, start=1):
        expected = _centre_count(shapely.geometry.shape(geom), shape=(2000, 2000))
        assert int((result.labels == label).sum()) == expected
    assert int((result.labels == 1).sum()) == 315 * 289  # the rectangle tool
    assert result.skipped == (
        ("GeoJSON feature 3 (annotation)", "MultiPoint geometry has no area"),
        ("GeoJSON feature 4 (annotation)", "Point geometry has no area"),
        ("GeoJSON feature 5 (annotation)", "LineString geometry has no area"),
        ("GeoJSON feature 6 (annotation)", "LineString geometry has no area"),
    )
    assert result.classes == {}


def test_qupath_new_keys_bare_geometry_and_classification():
    ring = [[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]]
    hole = [[2, 2], [4, 2], [4, 4], [2, 4], [2, 2]]
    feats = [
        {
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": [ring, hole], "isEllipse": False},
            "properties": {"objectType": "detection", "classification": {"name": "Tumor"}},
        },
        {
            "type": "Feature",
            "geometry": {
                "type": "MultiPolygon",
                "coordinates": [
                    [[[12, 0], [14, 0], [14, 2], [12, 2]]],
                    [[[12.2, 5], [14, 5], [14, 6.8]]],
                ],
            },
            "properties": {
                "object_type": "annotation",
                "classification": {"names": ["Tumor", "Positive"]},
            },
        },
    ]
    result = read_mask(json.dumps(feats).encode(), shape=(12, 16))
    assert int((result.labels == 1).sum()) == 96
    # 2 x 2 square plus the one triangle pixel whose centre (13.5, 5.5) is inside.
    assert int((result.labels == 2).sum()) == 5 and result.labels[5, 13] == 2
    assert result.classes == {1: "Tumor", 2: "Tumor: Positive"}
    bare = json.dumps({"type": "Polygon", "coordinates": [ring]}).encode()
    assert int(read_mask(bare, shape=(12, 12)).labels.sum()) == 100


@pytest.mark.parametrize(
    ("name", "n_cells", "shape"),
    [("caulo_15_cp_masks.tif", 21, (281, 310)), ("Sample000033_cp_masks.tif", 116, (287, 377))],
)
def test_cellpose_uint8_label_tiffs_import(name, n_cells, shape):
    data = (REAL_FORMATS / "omnipose_cp_masks" / name).read_bytes()
    raw = read_label_image(data, max_pixels=10_000_000)
    result = read_mask(data, shape=shape)
    assert result.n_instances == n_cells and result.labels.dtype == np.uint16
    assert len(instance_ids(raw)) == n_cells
    assert np.array_equal(result.labels > 0, raw > 0)


def test_labelstudio_real_polygonlabels_exports():
    small = (REAL_FORMATS / "labelstudio" / "ls_export_polygonlabels_2.json").read_bytes()
    plane = (REAL_FORMATS / "labelstudio" / "ls_export_polygonlabels_airplane.json").read_bytes()
    assert detect_format(small) == detect_format(plane) == "labelstudio"
    for data, w, h in ((small, 128, 128), (plane, 640, 426)):
        ((name, result),) = read_labelstudio(data).items()
        doc = json.loads(data)
        value = doc[0]["annotations"][0]["result"][0]["value"]
        pts = np.array(value["points"]) * [w / 100, h / 100]
        assert result.labels.shape == (h, w)
        assert result.classes == {1: "Airplane"}
        assert int((result.labels == 1).sum()) == _centre_count(Polygon(pts), shape=(h, w))
    assert list(read_labelstudio(small)) == ["example.png"]
    assert int(read_labelstudio(small)["example.png"].labels.sum()) == 118
