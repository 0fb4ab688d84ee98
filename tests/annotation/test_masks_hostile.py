"""Hostile and malformed mask files: each refused with a clear error, nothing executed."""

import io
import json
import os
import pickle
import stat
import struct
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from annotation.masks import (
    Limits,
    MaskFormatError,
    decode_brush_rle,
    read_cellpose_seg,
    read_coco,
    read_imagej_rois,
    read_labelstudio,
    read_mask,
    read_qupath_geojson,
    read_zip_members,
    write_imagej_zip,
)
from tests.annotation.test_masks_fixtures import synthetic_mask


class _RunsCommand:
    """Pickles to a call of ``func(*args)`` - what an attacker's _seg.npy holds."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _seg_npy(payload) -> bytes:
    dat = {"masks": np.ones((4, 4), np.uint16), "outlines": payload}
    buf = io.BytesIO()
    np.save(buf, dat, allow_pickle=True)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("make", "forbidden"),
    [
        (lambda canary: _RunsCommand(os.system, f"touch {canary}"), r"'(posix|nt)\.system'"),
        (
            lambda canary: _RunsCommand(subprocess.call, ["touch", str(canary)]),
            r"'subprocess\.call'",
        ),
        (
            lambda canary: _RunsCommand(eval, f"open({str(canary)!r}, 'w')"),
            r"'builtins\.eval'",
        ),
    ],
)
def test_seg_npy_whose_pickle_runs_a_command_is_refused(tmp_path, make, forbidden):
    canary = tmp_path / "canary"
    data = _seg_npy(make(canary))
    with pytest.raises(MaskFormatError, match=f"forbidden global {forbidden}"):
        read_cellpose_seg(data)
    with pytest.raises(MaskFormatError, match="forbidden global"):
        read_mask(data)  # the dispatcher routes .npy to the same safe reader
    assert not canary.exists()


def test_seg_npy_payload_would_really_run_with_np_load(tmp_path):
    # Proof that the payload above is live: np.load(allow_pickle=True) in a separate
    # process creates the canary. This is exactly what the reader must never do.
    canary = tmp_path / "canary"
    path = tmp_path / "evil_seg.npy"
    path.write_bytes(_seg_npy(_RunsCommand(os.system, f"touch {canary}")))
    code = f"import numpy as np; np.load({str(path)!r}, allow_pickle=True)"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    assert canary.exists()


def test_seg_npy_pickle_asking_for_numpy_load_or_a_class_is_refused():
    header = "{'descr': '|O', 'fortran_order': False, 'shape': (), }".ljust(117) + "\n"
    evil = pickle.dumps(_RunsCommand(np.load, "x.npy"), protocol=3)
    data = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + evil
    with pytest.raises(MaskFormatError, match=r"forbidden global 'numpy\..*load'"):
        read_cellpose_seg(data)


def test_seg_npy_with_float_or_missing_masks_refused():
    buf = io.BytesIO()
    np.save(buf, {"masks": np.ones((3, 3), np.float32)}, allow_pickle=True)
    with pytest.raises(MaskFormatError, match="float dtype float32"):
        read_cellpose_seg(buf.getvalue())
    buf = io.BytesIO()
    np.save(buf, {"img": np.ones((3, 3))}, allow_pickle=True)
    with pytest.raises(MaskFormatError, match=r"has no 'masks' entry \(keys: \['img'\]\)"):
        read_cellpose_seg(buf.getvalue())


def test_seg_npy_old_minus_one_background_and_plain_npy():
    buf = io.BytesIO()
    np.save(buf, {"masks": np.array([[-1, 0], [1, -1]], np.int32)}, allow_pickle=True)
    result = read_cellpose_seg(buf.getvalue())
    assert result.labels.tolist() == [[0, 1], [2, 0]]
    assert result.warnings == ("masks had background -1 (old Cellpose format); shifted by +1.",)
    buf = io.BytesIO()
    np.save(buf, np.array([[0, 5], [5, 9]], np.uint16))
    assert read_cellpose_seg(buf.getvalue()).labels.tolist() == [[0, 1], [1, 2]]


# ------------------------------------------------------------------------ zip


def _zip(entries) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for info, content in entries:
            zf.writestr(info, content)
    return buf.getvalue()


def _roi_bytes() -> bytes:
    m = np.zeros((4, 4), np.uint8)
    m[1:3, 1:3] = 1
    with zipfile.ZipFile(io.BytesIO(write_imagej_zip(m))) as zf:
        return zf.read(zf.namelist()[0])


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../../etc/cron.d/evil.roi", "contains '..'"),
        ("rois/../../evil.roi", "contains '..'"),
        ("/etc/evil.roi", "is an absolute path"),
        ("rois\\..\\evil.roi", "contains a backslash"),
        ("C:evil.roi", "starts with a drive letter"),
    ],
)
def test_zip_slip_entries_refused(name, reason):
    data = _zip([("ok.roi", _roi_bytes()), (name, _roi_bytes())])
    with pytest.raises(MaskFormatError, match=f"entry {name!r} {reason}".replace("\\", "\\\\")):
        read_imagej_rois(data, shape=(4, 4))


def test_zip_symlink_entry_refused():
    info = zipfile.ZipInfo("link.roi")
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    data = _zip([(info, "/etc/passwd")])
    with pytest.raises(MaskFormatError, match="entry 'link.roi' is a symbolic link"):
        read_mask(data, shape=(4, 4))


def test_zip_entry_count_and_uncompressed_size_caps():
    data = _zip([(f"{i}.roi", _roi_bytes()) for i in range(4)])
    with pytest.raises(MaskFormatError, match="4 entries; at most 3"):
        read_zip_members(data, limits=Limits(max_zip_entries=3))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bomb.roi", b"\x00" * 2_000_000)
    assert len(buf.getvalue()) < 10_000
    with pytest.raises(MaskFormatError, match="uncompresses to 2,000,000 bytes"):
        read_zip_members(buf.getvalue(), limits=Limits(max_zip_entry_bytes=1_000_000))
    with pytest.raises(MaskFormatError, match="uncompresses to 2,000,000 bytes; at most 1,500,000"):
        read_zip_members(
            buf.getvalue(), limits=Limits(max_zip_total_bytes=1_500_000, max_zip_ratio=10_000)
        )
    with pytest.raises(MaskFormatError, match=r"'bomb.roi' is compressed [\d,]+:1"):
        read_zip_members(buf.getvalue())


def test_zip_skips_os_litter_and_refuses_non_roi_members():
    data = _zip([("a.roi", _roi_bytes()), ("__MACOSX/._a.roi", b"junk"), (".DS_Store", b"x")])
    result = read_imagej_rois(data, shape=(4, 4))
    assert result.n_instances == 1
    assert [name for name, _ in result.skipped] == ["__MACOSX/._a.roi", ".DS_Store"]
    with pytest.raises(MaskFormatError, match="'b.roi' is not an ImageJ ROI"):
        read_imagej_rois(_zip([("b.roi", b"not a roi")]), shape=(4, 4))


# ----------------------------------------------------------------------- COCO


def _coco(segmentation, width=20, height=20) -> bytes:
    doc = {
        "images": [{"id": 1, "file_name": "a.tif", "width": width, "height": height}],
        "annotations": [{"id": 7, "image_id": 1, "category_id": 1, "segmentation": segmentation}],
        "categories": [{"id": 1, "name": "cell"}],
    }
    return json.dumps(doc).encode()


def test_coco_polygon_with_nan_refused():
    data = _coco([[0, 0, 10, 0, 10, 10]]).replace(b"10, 10]", b"NaN, 10]")
    with pytest.raises(MaskFormatError, match="non-finite number NaN"):
        read_coco(data)
    with pytest.raises(MaskFormatError, match="COCO annotation 7 has 1 NaN or infinite"):
        read_coco(_coco([[0, 0, 10, 0, "nan", 10]]))


def test_coco_polygon_with_ten_million_points_refused():
    n = 10_000_000
    poly = b"[" + b"1," * (2 * n - 1) + b"1]"
    data = _coco([[0, 0, 1, 0, 1, 1]]).replace(b"[[0, 0, 1, 0, 1, 1]]", b"[" + poly + b"]")
    # Counted while parsing: refused at the number cap, before the rest is built.
    with pytest.raises(MaskFormatError, match="COCO file holds more than 4,000,000 numbers"):
        read_coco(data)
    # With the number cap out of the way, the per-shape point cap still names the polygon.
    with pytest.raises(
        MaskFormatError, match="COCO annotation 7 has 10,000,000 points; at most 1,000,000"
    ):
        read_coco(data, limits=Limits(max_json_numbers=30_000_000, max_total_points=20_000_000))


def test_coco_rle_whose_runs_overflow_its_size_refused():
    # pycocotools' C decoder would write past its buffer for these counts.
    with pytest.raises(MaskFormatError, match="runs add up to 800 pixels, but its size 20 x 20"):
        read_coco(_coco({"size": [20, 20], "counts": [0, 400, 400]}))
    # The same runs compressed, as pycocotools' frPyObjects writes them.
    with pytest.raises(MaskFormatError, match="runs add up to 800 pixels"):
        read_coco(_coco({"size": [20, 20], "counts": "0`<`<"}))
    with pytest.raises(MaskFormatError, match=r"a run longer than its image \(20 x 20\)"):
        read_coco(_coco({"size": [20, 20], "counts": [0, 1_000_000]}))
    with pytest.raises(MaskFormatError, match="a run longer than its image"):
        read_coco(_coco({"size": [20, 20], "counts": [0, 2**70]}))
    with pytest.raises(MaskFormatError, match="ends inside a number"):
        read_coco(_coco({"size": [20, 20], "counts": "0`<`"}))
    with pytest.raises(MaskFormatError, match="negative run length"):
        read_coco(_coco({"size": [20, 20], "counts": [500, -100]}))
    with pytest.raises(MaskFormatError, match="RLE size \\[10, 10\\] differs from its image"):
        read_coco(_coco({"size": [10, 10], "counts": [100]}))


def test_coco_structure_errors_name_the_problem():
    with pytest.raises(MaskFormatError, match="refers to image_id 2"):
        read_coco(_coco([[0, 0, 4, 0, 4, 4]]).replace(b'"image_id": 1', b'"image_id": 2'))
    with pytest.raises(MaskFormatError, match="category_id 5, which is not in 'categories'"):
        read_coco(_coco([[0, 0, 4, 0, 4, 4]]).replace(b'"category_id": 1', b'"category_id": 5'))
    with pytest.raises(MaskFormatError, match="100000 x 100000 label image"):
        read_coco(_coco([[0, 0, 4, 0, 4, 4]], width=100_000, height=100_000))
    with pytest.raises(MaskFormatError, match="2 annotations; at most 1"):
        doc = json.loads(_coco([[0, 0, 4, 0, 4, 4]]))
        doc["annotations"].append(dict(doc["annotations"][0], id=8))
        read_coco(json.dumps(doc).encode(), limits=Limits(max_shapes=1))


def test_coco_crowd_and_bbox_only_annotations_skipped():
    doc = json.loads(_coco([[0, 0, 4, 0, 4, 4]]))
    doc["annotations"].append(
        {
            "id": 8,
            "image_id": 1,
            "category_id": 1,
            "iscrowd": 1,
            "segmentation": {"size": [20, 20], "counts": [400]},
        }
    )
    doc["annotations"].append({"id": 9, "image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2]})
    result = read_coco(json.dumps(doc).encode())["a.tif"]
    # Triangle (0,0) (4,0) (4,4): row r keeps columns r..3 (centres on the diagonal, a
    # left edge, are in): 4 + 3 + 2 + 1 pixels.
    assert result.n_instances == 1 and int(result.labels.sum()) == 10
    assert result.skipped == (
        ("COCO annotation 8", "iscrowd=1: a crowd region, not one instance (import with "
         "crowd=instances to take each crowd mask as one instance)"),
        ("COCO annotation 9", "no segmentation (bounding box only)"),
    )


# -------------------------------------------------------------------- GeoJSON


def test_geojson_unknown_geometry_type_refused():
    doc = {"type": "Feature", "geometry": {"type": "Circle", "coordinates": [1, 2], "radius": 3}}
    with pytest.raises(MaskFormatError, match="unknown geometry type 'Circle'"):
        read_qupath_geojson(json.dumps(doc).encode(), shape=(10, 10))
    with pytest.raises(MaskFormatError, match="Unknown GeoJSON type 'Topology'"):
        read_qupath_geojson(b'{"type": "Topology"}', shape=(10, 10))


def test_geojson_nan_and_too_many_points_and_deep_nesting_refused():
    doc = {"type": "Polygon", "coordinates": [[[0, 0], [5, 0], [5, "nan"]]]}
    with pytest.raises(MaskFormatError, match="NaN or infinite"):
        read_qupath_geojson(json.dumps(doc).encode(), shape=(10, 10))
    ring = [[i % 7, i % 5] for i in range(50)]
    doc = {"type": "Polygon", "coordinates": [ring]}
    with pytest.raises(MaskFormatError, match="50 points; at most 40"):
        read_qupath_geojson(
            json.dumps(doc).encode(), shape=(10, 10), limits=Limits(max_points_per_shape=40)
        )
    deep = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(MaskFormatError, match="nested too deeply"):
        read_qupath_geojson(deep, shape=(10, 10))


# --------------------------------------------------------------- Label Studio


def test_brush_rle_with_wrong_size_or_overrun_refused():
    header = f"{999:032b}{7:05b}" + "0000" * 4
    rle = [int((header + "0" * 7)[i : i + 8], 2) for i in range(0, 56, 8)]
    with pytest.raises(MaskFormatError, match="holds 999 values, but the image needs 400"):
        decode_brush_rle(rle, expected_values=400)
    bits = f"{2:032b}{7:05b}" + "1111" * 4 + "1" + "11" + f"{9:016b}" + f"{255:08b}"
    bits += "0" * (-len(bits) % 8)
    rle = [int(bits[i : i + 8], 2) for i in range(0, len(bits), 8)]
    with pytest.raises(MaskFormatError, match="writes past the end of the image"):
        decode_brush_rle(rle, expected_values=2)
    with pytest.raises(MaskFormatError, match="list of byte values"):
        decode_brush_rle([300], expected_values=4)


def test_labelstudio_region_sizes_must_agree():
    task = {
        "data": {"image": "x.png"},
        "annotations": [
            {
                "id": 1,
                "result": [
                    {
                        "id": "a",
                        "type": "polygonlabels",
                        "original_width": 10,
                        "original_height": 10,
                        "value": {"points": [[0, 0], [50, 0], [50, 50]], "polygonlabels": ["c"]},
                    },
                    {
                        "id": "b",
                        "type": "polygonlabels",
                        "original_width": 20,
                        "original_height": 10,
                        "value": {"points": [[0, 0], [50, 0], [50, 50]], "polygonlabels": ["c"]},
                    },
                ],
            }
        ],
    }
    with pytest.raises(MaskFormatError, match="region b is on a 20 x 10 image"):
        read_labelstudio(json.dumps([task]).encode())


def test_synthetic_mask_is_untouched_by_hostile_tests():
    assert int(synthetic_mask().max()) == 50


def test_rois_from_several_stack_positions_are_flagged():
    import roifile

    a = roifile.ImagejRoi.frompoints(np.array([[0, 0], [3, 0], [3, 3], [0, 3]]), name="a")
    b = roifile.ImagejRoi.frompoints(np.array([[5, 0], [8, 0], [8, 3], [5, 3]]), name="b")
    a.roitype = b.roitype = roifile.ROI_TYPE.POLYGON
    a.z_position, b.z_position = 1, 2
    data = _zip([("a.roi", a.tobytes()), ("b.roi", b.tobytes())])
    result = read_imagej_rois(data, shape=(4, 10))
    assert result.n_instances == 2
    assert result.warnings == (
        "The ROIs belong to 2 different stack positions (slice, c, z, t); all were imported "
        "into one 2-D mask.",
    )


def test_seg_npy_pickle_cannot_allocate_arrays_out_of_proportion():
    from numpy._core.multiarray import _reconstruct

    huge = (10**11,)  # 800 GB of float64 if it were ever allocated
    with pytest.raises(MaskFormatError, match="Could not read the _seg.npy pickle"):
        read_cellpose_seg(_seg_npy(_RunsCommand(np.ndarray, huge)))
    with pytest.raises(MaskFormatError, match="rebuilds an array in a way numpy never writes"):
        read_cellpose_seg(_seg_npy(_RunsCommand(_reconstruct, np.ndarray, huge, b"b")))
