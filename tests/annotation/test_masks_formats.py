"""Round trips through every mask format, and agreement with the formats' own readers."""

import functools
import io
import json
import zipfile

import numpy as np
import pytest
from shapely.geometry import Polygon

from annotation.masks import (
    FORMAT_INFO,
    WRITE_FORMATS,
    CocoImage,
    MaskFormatError,
    decode_brush_rle,
    decode_rle,
    detect_format,
    encode_brush_rle,
    encode_rle,
    read_coco,
    read_labelstudio,
    read_mask,
    relabel_sequential,
    write_cellpose_seg,
    write_coco,
    write_imagej_zip,
    write_mask,
)
from tests.annotation.test_masks_fixtures import per_cell_iou, stardist_mask, synthetic_mask

CLASSES = {3: "neuron", 7: "glia", 9: "neuron", 12: "debris"}
VECTOR_FORMATS = ("imagej", "coco", "geojson")


@pytest.mark.parametrize("fmt", WRITE_FORMATS)
def test_round_trip_synthetic_every_format(fmt):
    m = synthetic_mask()
    data = write_mask(m, format=fmt, classes=CLASSES, image_name="well_A1.tif")
    assert detect_format(data) == fmt
    result = read_mask(data, shape=m.shape, image_name="well_A1.tif")
    ref = relabel_sequential(m)
    assert result.labels.dtype == np.uint16
    # Raster formats must be identical; polygon formats only need IoU >= 0.98 per cell,
    # but the pixel-edge convention makes them identical too.
    assert np.array_equal(result.labels, ref)
    assert min(per_cell_iou(ref, result.labels).values()) >= 0.98
    assert result.warnings == ()
    if fmt in VECTOR_FORMATS:
        new_id = {int(old): k for k, old in enumerate(np.unique(m)[1:], start=1)}
        expected = {new_id[old]: name for old, name in CLASSES.items()}
        if fmt == "coco":  # COCO gives every annotation a category
            expected |= {new_id[i]: "cell" for i in new_id if i not in CLASSES}
        assert dict(result.classes) == expected


@pytest.mark.parametrize("fmt", WRITE_FORMATS)
def test_stardist_real_mask_round_trips_every_format(fmt):
    m = stardist_mask()
    result = read_mask(write_mask(m, format=fmt), shape=m.shape)
    ref = relabel_sequential(m)
    assert result.n_instances == 125
    assert np.array_equal(result.labels, ref)
    # id 129 (two pieces) stays one instance: new id 87 after relabelling.
    assert int(ref[m == 129][0]) == 87 and int((result.labels == 87).sum()) == int((m == 129).sum())


def test_format_info_for_every_written_format():
    assert set(FORMAT_INFO) == set(WRITE_FORMATS)
    assert FORMAT_INFO["cellpose"].suffix == "_seg.npy"
    assert FORMAT_INFO["png"].media_type == "image/png"


def test_coco_we_write_loads_in_pycocotools_with_same_areas():
    from pycocotools.coco import COCO

    m = synthetic_mask()
    doc = json.loads(write_mask(m, format="coco", image_name="a.tif"))
    coco = COCO()
    coco.dataset = doc
    coco.createIndex()
    ids = np.unique(m)[1:]
    assert len(coco.getAnnIds()) == len(ids)
    for ann, label in zip(coco.loadAnns(coco.getAnnIds()), ids, strict=True):
        expected = m == label
        got = coco.annToMask(ann).astype(bool)
        assert int(got.sum()) == int(expected.sum()) == ann["area"]
        assert np.array_equal(got, expected)
    # The ring (id 9) has a hole, which COCO polygons cannot hold: it is RLE.
    ring = coco.loadAnns(coco.getAnnIds())[2]
    assert isinstance(ring["segmentation"], dict)
    assert isinstance(coco.loadAnns(coco.getAnnIds())[0]["segmentation"], list)


def test_coco_many_images_and_categories():
    a, b = synthetic_mask(), stardist_mask()
    data = write_coco(
        [CocoImage("a.tif", a, {3: "neuron"}), CocoImage("b.tif", b)],
        categories=["cell", "neuron", "glia"],
        segmentation="rle",
    )
    doc = json.loads(data)
    assert [c["name"] for c in doc["categories"]] == ["cell", "neuron", "glia"]
    assert [i["file_name"] for i in doc["images"]] == ["a.tif", "b.tif"]
    assert all(isinstance(x["segmentation"], dict) for x in doc["annotations"])
    results = read_coco(data)
    assert np.array_equal(results["a.tif"].labels, relabel_sequential(a))
    assert np.array_equal(results["b.tif"].labels, relabel_sequential(b))
    assert results["a.tif"].classes[1] == "neuron"
    with pytest.raises(MaskFormatError, match="describes 2 images"):
        read_mask(data)
    assert read_mask(data, image_name="some/dir/b.tif").n_instances == 125
    with pytest.raises(MaskFormatError, match=r"classes \['glia'\] are not among the categories"):
        write_coco([CocoImage("a.tif", a, {3: "glia"})], categories=["cell"])


def test_cellpose_seg_we_write_opens_with_cellposes_loader(tmp_path):
    from cellpose import io as cellpose_io

    m = synthetic_mask()
    path = tmp_path / "well_A1_seg.npy"
    path.write_bytes(write_cellpose_seg(m, filename="well_A1.tif"))
    masks = cellpose_io.imread(str(path))  # cellpose's own _seg.npy loader
    assert np.array_equal(masks, relabel_sequential(m))
    # The keys the GUI's _load_seg reads, with the lengths it checks (trusted file).
    dat = np.load(path, allow_pickle=True).item()
    n = int(dat["masks"].max())
    assert n == 9 and len(dat["colors"]) == n and len(dat["ismanual"]) == n
    assert dat["filename"] == "well_A1.tif" and list(dat["chan_choose"]) == [0, 0]
    assert dat["outlines"].dtype == dat["masks"].dtype == np.uint16
    assert set(np.unique(dat["outlines"])) <= set(np.unique(dat["masks"]))
    assert dat["outlines"][4, 4] == dat["masks"][4, 4] and dat["outlines"][8, 8] == 0


def test_imagej_zip_we_write_loads_with_roifile(tmp_path):
    import roifile

    m = synthetic_mask()
    path = tmp_path / "rois.zip"
    path.write_bytes(write_imagej_zip(m, classes={9: "neuron"}))
    rois = roifile.roiread(path)
    ids = np.unique(m)[1:]
    assert len(rois) == len(ids)
    assert [r.name for r in rois][:2] == ["00001-cell-3", "00002-cell-7"]
    for roi, label in zip(rois, ids, strict=True):
        rings = roi.coordinates(multi=True)
        geom = functools.reduce(lambda a, b: a.symmetric_difference(b), map(Polygon, rings))
        assert geom.area == float((m == label).sum())
    kinds = {int(label): roi.roitype.name for roi, label in zip(rois, ids, strict=True)}
    assert kinds[3] == "TRACED" and kinds[9] == "RECT" and rois[2].composite  # ring: composite
    assert kinds[31] == "RECT"  # two pieces: composite
    assert rois[2].props == "class: neuron\n"


def test_geojson_writes_polygons_multipolygons_and_holes():
    m = synthetic_mask()
    doc = json.loads(write_mask(m, format="geojson", classes={9: "neuron"}))
    feats = doc["features"]
    assert doc["type"] == "FeatureCollection" and len(feats) == 9
    ring = feats[2]
    assert ring["geometry"]["type"] == "Polygon" and len(ring["geometry"]["coordinates"]) == 2
    assert ring["properties"] == {
        "objectType": "annotation",
        "name": "cell 9",
        "classification": {"name": "neuron"},
    }
    assert feats[5]["geometry"]["type"] == "MultiPolygon"  # id 31


def test_png_cannot_hold_uint32_but_tiff_can():
    m = np.zeros((3, 3), np.uint32)
    m[1, 1] = 70_000
    with pytest.raises(MaskFormatError, match="16-bit PNG holds ids up to 65,535"):
        write_mask(m, format="png")
    back = read_mask(write_mask(m, format="tiff"))
    assert back.labels[1, 1] == 1  # relabelled


def test_read_mask_checks_shape_and_named_format():
    m = synthetic_mask()
    png = write_mask(m, format="png")
    with pytest.raises(MaskFormatError, match=r"is 48 x 40 \(H x W\), but the image is 40 x 48"):
        read_mask(png, shape=(40, 48))
    with pytest.raises(MaskFormatError, match="The file content is png, not tiff"):
        read_mask(png, format="tiff")
    with pytest.raises(MaskFormatError, match="Label Studio is an import format"):
        write_mask(m, format="labelstudio")
    with pytest.raises(MaskFormatError, match="Unknown mask format 'bmp'"):
        write_mask(m, format="bmp")


def test_detect_format_by_content():
    assert detect_format(b'{"type": "Feature", "geometry": null}') == "geojson"
    assert detect_format(b'[{"id": 1, "data": {}, "annotations": []}]') == "labelstudio"
    assert detect_format(b'{"images": [], "annotations": []}') == "coco"
    with pytest.raises(MaskFormatError, match="looks like an SVG document"):
        detect_format(b"<svg xmlns='http://www.w3.org/2000/svg'/>")
    with pytest.raises(MaskFormatError, match="it has \\['foo'\\]"):
        detect_format(b'{"foo": 1}')
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("mask.png", b"x")
    assert detect_format(buf.getvalue()) == "instances"  # per-instance mask files
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("mask.png", b"x")
        zf.writestr("notes.txt", b"x")
    with pytest.raises(MaskFormatError, match="neither an ImageJ ROI set"):
        detect_format(buf.getvalue())
    with pytest.raises(MaskFormatError, match="JPEG"):
        detect_format(b"\xff\xd8\xff\xe0rest")


# ----------------------------------------------------------------- Label Studio


def _ls_task(results, name="/data/upload/3/8a1b-well_A1.png", ann_id=5):
    return {"id": 1, "data": {"image": name}, "annotations": [{"id": ann_id, "result": results}]}


def test_brush_rle_round_trip_and_known_header():
    mask = np.zeros((5, 7), bool)
    mask[1:3, 2:6] = True
    rle = encode_brush_rle(mask)
    # Header: 32-bit count (5*7*4 = 140), word size 8 -> 7 in 5 bits, sizes 3,4,8,16.
    bits = "".join(f"{b:08b}" for b in rle)
    assert int(bits[:32], 2) == 140 and int(bits[32:37], 2) == 7
    assert [int(bits[37 + 4 * k : 41 + 4 * k], 2) + 1 for k in range(4)] == [3, 4, 8, 16]
    flat = decode_brush_rle(rle, expected_values=140)
    assert np.array_equal(flat.reshape(5, 7, 4)[..., 3] == 255, mask)


def test_brush_rle_literal_blocks_decode():
    # Hand-built stream: N=3, word 8, sizes (1,1,1,1): literal block of count 2 then a run of 1.
    bits = f"{3:032b}" + f"{7:05b}" + "0000" * 4
    bits += "0" + "00" + "1" + f"{10:08b}" + f"{20:08b}"  # literal, count 1+1 = 2
    bits += "1" + "00" + "0" + f"{30:08b}"  # run, count 0+1 = 1
    bits += "0" * (-len(bits) % 8)
    rle = [int(bits[i : i + 8], 2) for i in range(0, len(bits), 8)]
    assert decode_brush_rle(rle, expected_values=3).tolist() == [10, 20, 30]


def test_labelstudio_polygons_in_percent_and_brush_round_trip():
    m = synthetic_mask()
    h, w = m.shape
    results = []
    for label in (3, 7, 12):
        ys, xs = np.nonzero(m == label)
        x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
        pts = [[x * 100 / w, y * 100 / h] for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1))]
        results.append(
            {
                "id": f"r{label}",
                "type": "polygonlabels",
                "value": {"points": pts, "polygonlabels": ["Cell"]},
                "original_width": w,
                "original_height": h,
            }
        )
    results.append(
        {
            "id": "brush9",
            "type": "brushlabels",
            "value": {"format": "rle", "rle": encode_brush_rle(m == 9), "brushlabels": ["Ring"]},
            "original_width": w,
            "original_height": h,
        }
    )
    results.append({"id": "k", "type": "keypointlabels", "value": {"x": 1, "y": 1}})
    data = json.dumps([_ls_task(results)]).encode()
    assert detect_format(data) == "labelstudio"
    out = read_labelstudio(data)
    assert list(out) == ["8a1b-well_A1.png"]
    res = out["8a1b-well_A1.png"]
    expected = np.zeros_like(m)
    for new, old in enumerate((3, 7, 12, 9), start=1):
        expected[m == old] = new
    assert np.array_equal(res.labels, expected)
    assert dict(res.classes) == {1: "Cell", 2: "Cell", 3: "Cell", 4: "Ring"}
    assert res.skipped == (("Label Studio region k", "'keypointlabels' result has no area"),)
    assert read_mask(data, image_name="8a1b-well_A1.png").n_instances == 4


def test_labelstudio_rectangle_ellipse_and_several_annotators():
    rect = {
        "id": "r",
        "type": "rectanglelabels",
        "value": {
            "x": 10,
            "y": 20,
            "width": 50,
            "height": 25,
            "rotation": 0,
            "rectanglelabels": ["A"],
        },
        "original_width": 20,
        "original_height": 40,
    }
    ell = {
        "id": "e",
        "type": "ellipselabels",
        "value": {"x": 50, "y": 50, "radiusX": 25, "radiusY": 12.5, "ellipselabels": ["B"]},
        "original_width": 20,
        "original_height": 40,
    }
    task = _ls_task([rect], name="img.png", ann_id=1)
    task["annotations"].append({"id": 2, "result": [ell]})
    task["annotations"].append({"id": 3, "result": [rect], "was_cancelled": True})
    out = read_labelstudio(json.dumps(task).encode())
    assert sorted(out) == ["img.png#annotation-1", "img.png#annotation-2", "img.png#annotation-3"]
    r = out["img.png#annotation-1"].labels
    assert r.shape == (40, 20) and int(r.sum()) == 10 * 10  # x 2..12, y 8..18
    assert r[8, 2] == 1 and r[17, 11] == 1 and r[7, 2] == 0
    e = out["img.png#annotation-2"].labels
    assert abs(int(e.sum()) - np.pi * 5 * 5) < 6  # radii 5 x 5 pixels
    assert out["img.png#annotation-3"].skipped == (("annotation 3", "cancelled in Label Studio"),)


def test_rle_string_decoder_agrees_with_pycocotools():
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(7)
    for shape in ((1, 1), (5, 3), (64, 80), (300, 257)):
        m = rng.random(shape) < 0.3
        m[: shape[0] // 2] |= True  # long runs too, which need several 5-bit groups
        rle = encode_rle(m)
        assert np.array_equal(decode_rle(rle, max_pixels=10**6), m)
        ref = mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()})
        assert np.array_equal(decode_rle(rle, max_pixels=10**6), ref.astype(bool))
    empty = encode_rle(np.zeros((4, 6), bool))
    assert empty["counts"] == "h0" and not decode_rle(empty, max_pixels=100).any()


def test_coco_rle_written_from_pixel_indices_matches_pycocotools_encode():
    from annotation.masks.rle import column_major_pixels, rle_from_indices

    rng = np.random.default_rng(11)
    for _ in range(100):
        h, w = rng.integers(1, 15, size=2)
        labels = rng.integers(0, 4, size=(h, w))
        for label, idx in column_major_pixels(labels).items():
            assert rle_from_indices(idx, h, w) == encode_rle(labels == label)


def _brush_stream(flat, rng):
    """Brush RLE of any uint8 array, mixing run and literal blocks (field sizes 3..16)."""
    sizes = (3, 4, 8, 16)
    bits = [f"{flat.size:032b}", f"{7:05b}", "".join(f"{s - 1:04b}" for s in sizes)]
    i = 0
    while i < flat.size:
        n = int(min(flat.size - i, rng.integers(1, 9)))
        if rng.random() < 0.5 and np.all(flat[i : i + n] == flat[i]):
            bits.append(f"1{0:02b}{n - 1:03b}{int(flat[i]):08b}")
        else:
            bits.append(f"0{0:02b}{n - 1:03b}" + "".join(f"{int(v):08b}" for v in flat[i : i + n]))
        i += n
    s = "".join(bits)
    s += "0" * (-len(s) % 8)
    return [int(s[k : k + 8], 2) for k in range(0, len(s), 8)]


def test_brush_alpha_threshold_matches_full_decode_on_random_canvases():
    rng = np.random.default_rng(5)
    for _ in range(40):
        h, w = (int(v) for v in rng.integers(1, 9, size=2))
        canvas = rng.choice(np.array([0, 100, 127, 128, 255], np.uint8), size=(h, w, 4))
        canvas[rng.random((h, w)) < 0.5] = 0
        rle = _brush_stream(canvas.ravel(), rng)
        assert np.array_equal(decode_brush_rle(rle, expected_values=h * w * 4), canvas.ravel())
        result = {
            "id": "b",
            "type": "brushlabels",
            "value": {"format": "rle", "rle": rle, "brushlabels": ["c"]},
            "original_width": w,
            "original_height": h,
        }
        (res,) = read_labelstudio(json.dumps(_ls_task([result])).encode()).values()
        assert np.array_equal(res.labels > 0, canvas[..., 3] >= 128)


@pytest.mark.parametrize("fmt", WRITE_FORMATS)
def test_empty_label_image_round_trips_every_format(fmt):
    empty = np.zeros((6, 9), np.uint16)
    data = write_mask(empty, format=fmt)
    # An empty per-instance zip holds no file: it is read as the empty ROI set it equals.
    assert detect_format(data) == ("imagej" if fmt == "instances" else fmt)
    result = read_mask(data, shape=(6, 9))
    assert result.labels.shape == (6, 9) and result.n_instances == 0


def test_labelstudio_upload_prefix_and_geojson_z_are_tolerated():
    poly = {
        "id": "p",
        "type": "polygonlabels",
        "value": {"points": [[0, 0], [50, 0], [50, 50], [0, 50]], "polygonlabels": ["c"]},
        "original_width": 4,
        "original_height": 4,
    }
    data = json.dumps([_ls_task([poly], name="/data/upload/7/8a1b2c3d-well_B2.png")]).encode()
    assert int(read_mask(data, image_name="plates/well_B2.png").labels.sum()) == 4
    ring = [[0, 0, 5.0], [2, 0, 5.0], [2, 2, 5.0], [0, 2, 5.0], [0, 0, 5.0]]
    geo = json.dumps({"type": "Polygon", "coordinates": [ring]}).encode()
    assert int(read_mask(geo, shape=(3, 3)).labels.sum()) == 4
