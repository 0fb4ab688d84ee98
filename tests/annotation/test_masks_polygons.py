"""Pixel convention, polygon <-> label image conversion and the overlap rule."""

import numpy as np
import pytest
import shapely
from shapely.geometry import Polygon

from annotation.masks import (
    MaskFormatError,
    Shape,
    label_image_to_polygons,
    mask_to_geometry,
    rasterize_rings,
    rasterize_shapes,
    relabel_sequential,
)
from annotation.masks.polygons import geometry_rings
from tests.annotation.test_masks_fixtures import per_cell_iou, stardist_mask, synthetic_mask


def _shapes_from_labels(labels):
    out = []
    for label, geom in label_image_to_polygons(labels).items():
        parts = tuple((ext, *holes) for ext, holes in geometry_rings(geom))
        out.append(Shape(name=f"cell {label}", parts=parts))
    return out


def test_single_pixel_is_the_unit_square_at_its_corner():
    m = np.zeros((3, 4), np.uint8)
    m[1, 2] = 1
    geom = label_image_to_polygons(m)[1]
    assert geom.equals(Polygon([(2, 1), (3, 1), (3, 2), (2, 2)]))


def test_trace_keeps_holes_and_drops_collinear_vertices():
    m = np.zeros((6, 6), np.uint8)
    m[1:5, 1:5] = 1
    m[2:4, 2:4] = 0
    geom = label_image_to_polygons(m)[1]
    assert geom.geom_type == "Polygon"
    assert len(geom.exterior.coords) == 5  # 4 corners + closing vertex
    assert len(geom.interiors) == 1 and geom.interiors[0].coords[0] in [
        (2.0, 2.0),
        (2.0, 4.0),
        (4.0, 2.0),
        (4.0, 4.0),
    ]
    assert geom.area == 12.0


def test_disjoint_pieces_become_a_multipolygon():
    m = np.zeros((5, 9), np.uint8)
    m[0:2, 0:2] = 4
    m[3:5, 6:9] = 4
    geom = label_image_to_polygons(m)[4]
    assert geom.geom_type == "MultiPolygon"
    assert sorted(p.area for p in geom.geoms) == [4.0, 6.0]


def test_mask_to_geometry_offset_and_empty():
    geom = mask_to_geometry(np.ones((2, 3), bool), offset=(10, 20))
    assert geom.bounds == (20.0, 10.0, 23.0, 12.0)
    assert mask_to_geometry(np.zeros((3, 3), bool)).is_empty


def test_triangle_fill_by_pixel_centres_hand_computed():
    # Right triangle (0,0) (4,0) (0,4): centre (c+.5, r+.5) inside iff c + r + 1 < 4.
    got = rasterize_rings([np.array([[0, 0], [4, 0], [0, 4]], float)], shape=(5, 5))
    (r0, c0), crop = got
    full = np.zeros((5, 5), bool)
    full[r0 : r0 + crop.shape[0], c0 : c0 + crop.shape[1]] = crop
    expected = np.array([[c + r + 1 < 4 for c in range(5)] for r in range(5)])
    assert np.array_equal(full, expected)
    assert int(full.sum()) == 6


def test_subpixel_rectangle_takes_pixels_whose_centre_is_inside():
    # x in [0.4, 2.6): centres 0.5, 1.5, 2.5 -> 3 columns; y in [0.6, 1.6): centre 1.5 only.
    ring = np.array([[0.4, 0.6], [2.6, 0.6], [2.6, 1.6], [0.4, 1.6]])
    (r0, c0), crop = rasterize_rings([ring], shape=(4, 4))
    assert (r0, c0) == (1, 0) and crop.tolist() == [[True, True, True]]


def test_even_odd_rings_make_a_hole():
    outer = np.array([[0, 0], [6, 0], [6, 6], [0, 6]], float)
    inner = np.array([[2, 2], [4, 2], [4, 4], [2, 4]], float)
    (_, _), crop = rasterize_rings([outer, inner], shape=(6, 6))
    assert int(crop.sum()) == 32 and not crop[2:4, 2:4].any()


def test_round_trip_synthetic_is_exact():
    m = synthetic_mask()
    result = rasterize_shapes(_shapes_from_labels(m), shape=m.shape)
    assert np.array_equal(result.labels, relabel_sequential(m))
    assert result.warnings == ()


def test_round_trip_stardist_is_exact_and_iou_one():
    m = stardist_mask()
    result = rasterize_shapes(_shapes_from_labels(m), shape=m.shape)
    ref = relabel_sequential(m)
    assert np.array_equal(result.labels, ref)
    assert min(per_cell_iou(ref, result.labels).values()) == 1.0


def test_overlap_smaller_wins_and_is_reported():
    big = Shape(name="ROI big", parts=((np.array([[0, 0], [10, 0], [10, 10], [0, 10]], float),),))
    small = Shape(
        name="ROI small", parts=((np.array([[8, 8], [12, 8], [12, 12], [8, 12]], float),),)
    )
    result = rasterize_shapes([small, big], shape=(12, 12))
    # ids follow file order: small = 1, big = 2; the 2 x 2 overlap goes to small.
    assert int((result.labels == 1).sum()) == 16
    assert int((result.labels == 2).sum()) == 100 - 4
    assert result.warnings == (
        "ROI small and ROI big overlap by 4 pixels; ROI small (smaller or later) keeps them.",
    )


def test_overlap_equal_area_later_wins_and_swallowed_instance_dropped():
    a = Shape(name="A", parts=((np.array([[0, 0], [4, 0], [4, 4], [0, 4]], float),),))
    b = Shape(name="B", parts=((np.array([[2, 0], [6, 0], [6, 4], [2, 4]], float),),))
    dup = Shape(name="C", parts=((np.array([[2, 0], [6, 0], [6, 4], [2, 4]], float),),))
    result = rasterize_shapes([a, b, dup], shape=(4, 6))
    assert result.labels[0].tolist() == [1, 1, 2, 2, 2, 2]
    assert result.n_instances == 2
    assert "B lost all its pixels to overlapping instances; dropped." in result.warnings
    assert "A and C overlap by 8 pixels; C (smaller or later) keeps them." in result.warnings
    assert "B and C overlap by 16 pixels; C (smaller or later) keeps them." in result.warnings
    assert "A and B overlap by 8 pixels; B (smaller or later) keeps them." in result.warnings


def test_shapes_cut_at_border_and_outside_dropped():
    inside = Shape(name="in", parts=((np.array([[-2, -2], [2, -2], [2, 2], [-2, 2]], float),),))
    outside = Shape(name="out", parts=((np.array([[20, 20], [22, 20], [22, 22]], float),),))
    result = rasterize_shapes([inside, outside], shape=(5, 5), skipped=[("p", "point")])
    assert int((result.labels == 1).sum()) == 4
    assert result.warnings == (
        "in extends beyond the image border and was cut at it.",
        "out covers no pixel centre inside the image; dropped.",
    )
    assert result.skipped == (("p", "point"),)


def test_no_shape_given_uses_extent_with_warning():
    s = Shape(name="s", parts=((np.array([[1, 1], [3.2, 1], [3.2, 2.5], [1, 2.5]]),),))
    result = rasterize_shapes([s], shape=None)
    assert result.labels.shape == (3, 4)
    assert "used the extent of the shapes, 3 x 4 pixels" in result.warnings[0]


def test_classes_follow_new_ids():
    a = Shape(
        name="a", parts=((np.array([[0, 0], [2, 0], [2, 2], [0, 2]], float),),), class_name="x"
    )
    b = Shape(name="b", parts=((np.array([[3, 0], [5, 0], [5, 2], [3, 2]], float),),))
    result = rasterize_shapes([a, b], shape=(2, 5))
    assert dict(result.classes) == {1: "x"}


def test_raster_shape_of_wrong_size_refused():
    s = Shape.from_mask("RLE 1", np.ones((3, 3), bool))
    with pytest.raises(MaskFormatError, match="RLE 1 has a raster mask for a 3 x 3 image, but the"):
        rasterize_shapes([s], shape=(4, 4))


def test_raster_shapes_are_cropped_and_placed_back():
    full = np.zeros((6, 7), bool)
    full[2:4, 3:6] = True
    s = Shape.from_mask("brush", full, class_name="c")
    assert s.mask.shape == (2, 3) and s.mask_offset == (2, 3)
    result = rasterize_shapes([s, Shape.from_mask("empty", np.zeros((6, 7), bool))], shape=(6, 7))
    assert np.array_equal(result.labels == 1, full)
    assert result.warnings == ("empty covers no pixel centre inside the image; dropped.",)


def _union_of_pixel_squares(mask):
    rr, cc = np.nonzero(mask)
    return shapely.union_all(shapely.box(cc, rr, cc + 1, rr + 1))


def test_traced_polygons_equal_the_union_of_pixel_squares_on_random_images():
    # Random noise is the hardest case: diagonal pinches, holes touching the outside
    # at one corner, holes inside holes, one-pixel pieces. Seeded, so it is exact.
    rng = np.random.default_rng(2024)
    for _ in range(80):
        h, w = rng.integers(1, 17, size=2)
        labels = rng.integers(0, rng.integers(2, 6), size=(h, w)).astype(np.uint16)
        polys = label_image_to_polygons(labels)
        assert sorted(polys) == [int(i) for i in np.unique(labels) if i]
        for label, geom in polys.items():
            mask = labels == label
            assert geom.is_valid
            assert geom.area == mask.sum()
            assert geom.symmetric_difference(_union_of_pixel_squares(mask)).area == 0
        back = rasterize_shapes(_shapes_from_labels(labels), shape=labels.shape)
        assert np.array_equal(back.labels, relabel_sequential(labels))


def test_diagonal_pixels_are_two_parts_and_corner_hole_stays_a_hole():
    diag = np.array([[1, 0], [0, 1]], np.uint8)
    assert label_image_to_polygons(diag)[1].geom_type == "MultiPolygon"
    # A one-pixel hole at (1, 2) that touches the outside only at its corner (3, 1).
    m = np.array([[1, 1, 1, 0, 0], [0, 1, 0, 1, 1], [0, 1, 1, 1, 1], [0, 0, 0, 1, 1]], np.uint8)
    geom = label_image_to_polygons(m)[1]
    assert geom.is_valid and geom.geom_type == "Polygon"
    assert len(geom.interiors) == 1 and Polygon(geom.interiors[0]).area == 1.0


def test_large_images_traced_in_bands_give_the_same_polygons(monkeypatch):
    import annotation.masks.polygons as polygons

    m = stardist_mask()
    whole = label_image_to_polygons(m)
    monkeypatch.setattr(polygons, "_BAND_PIXELS", 512 * 20)  # 20-row bands
    banded = label_image_to_polygons(m)
    assert list(banded) == list(whole)
    assert all(banded[k].equals(whole[k]) for k in whole)
