"""One binary mask per instance: DSB-layout folders, zips, (N, H, W) TIFF/OME-TIFF/.npy stacks.

``tests/data/constructed/dsb2018_layout/img2d/masks`` holds one 0/255 PNG per nucleus of
StarDist's ``mask2d.tif`` (made by ``tests/data/constructed/make.py``): read back, it must
give exactly the same label image.
"""

import io
import zipfile

import numpy as np
import pytest
import tifffile
from PIL import Image

from annotation.masks import (
    MaskFormatError,
    PixelSize,
    detect_format,
    read_instance_files,
    read_instance_stack,
    read_mask,
    relabel_sequential,
    write_mask,
)
from tests.conftest import TEST_DATA

DSB = TEST_DATA / "constructed" / "dsb2018_layout" / "img2d" / "masks"
MASK2D = TEST_DATA / "stardist" / "mask2d.tif"


def png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def zip_of(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    return buf.getvalue()


def test_dsb_folder_from_stardist_round_trips_to_the_same_labels():
    members = [(p.name, p.read_bytes()) for p in sorted(DSB.glob("*.png"))]
    assert len(members) == 125
    result = read_instance_files(members, shape=(512, 512))
    expected = relabel_sequential(tifffile.imread(MASK2D))
    np.testing.assert_array_equal(result.labels, expected)
    assert result.n_instances == 125 and result.warnings == () and result.skipped == ()


def test_dsb_folder_zipped_is_detected_as_instances():
    data = zip_of({f"img2d/masks/{p.name}": p.read_bytes() for p in sorted(DSB.glob("*.png"))})
    assert detect_format(data) == "instances"
    result = read_mask(data, shape=(512, 512))
    np.testing.assert_array_equal(result.labels, relabel_sequential(tifffile.imread(MASK2D)))


def test_write_instance_masks_round_trips():
    labels = relabel_sequential(tifffile.imread(MASK2D))
    data = write_mask(labels, format="instances")
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
    assert len(names) == 125 and names[0] == "masks/00001.png"
    np.testing.assert_array_equal(read_mask(data).labels, labels)


def test_overlapping_instance_masks_follow_the_polygon_overlap_rule():
    big = np.zeros((10, 10), np.uint8)
    big[1:7, 1:7] = 255           # 36 px
    small = np.zeros((10, 10), np.uint8)
    small[5:9, 5:9] = 1           # 16 px, overlaps big by 4 px (rows 5-6, cols 5-6)
    result = read_instance_files([("a.png", png(big)), ("b.png", png(small))])
    assert result.n_instances == 2
    assert int((result.labels == 1).sum()) == 32 and int((result.labels == 2).sum()) == 16
    assert result.warnings == (
        "instance mask 'a.png' and instance mask 'b.png' overlap by 4 pixels; instance mask "
        "'b.png' (smaller or later) keeps them.",
    )


def test_empty_masks_are_skipped_and_non_mask_files_listed():
    cell = np.zeros((4, 4), np.uint8)
    cell[1, 1] = 255
    result = read_instance_files([
        ("1.png", png(cell)), ("2.png", png(np.zeros((4, 4), np.uint8))), ("README.txt", b"hi"),
    ])
    assert result.n_instances == 1
    assert result.skipped == (
        ("README.txt", "not a PNG or TIFF mask file"),
        ("instance mask '2.png'", "empty mask (no foreground pixel)"),
    )


def test_a_label_image_among_instance_masks_is_refused_by_name():
    labels = np.zeros((4, 4), np.uint8)
    labels[0, 0], labels[1, 1], labels[2, 2] = 1, 2, 3
    with pytest.raises(MaskFormatError, match="instance mask 'x.png' holds 4 distinct values"):
        read_instance_files([("x.png", png(labels))])


def test_instance_masks_of_different_sizes_are_refused():
    a, b = np.zeros((4, 4), np.uint8), np.zeros((4, 5), np.uint8)
    a[0, 0] = b[0, 0] = 255
    with pytest.raises(MaskFormatError, match="instance mask 'b.png' is 4 x 5 .* 'a.png' is 4 x 4"):
        read_instance_files([("a.png", png(a)), ("b.png", png(b))])
    with pytest.raises(MaskFormatError, match="4 x 5"):
        read_instance_files([("a.png", png(a)), ("b.png", png(b))], shape=(4, 4))


def _stack() -> np.ndarray:
    stack = np.zeros((3, 8, 9), np.uint8)
    stack[0, 1:3, 1:3] = 1
    stack[1, 4:7, 2:6] = 1
    stack[2, 0:2, 6:9] = 1
    return stack


def _labels_of(stack: np.ndarray) -> np.ndarray:
    out = np.zeros(stack.shape[1:], np.uint16)
    for k, plane in enumerate(stack, start=1):
        out[plane > 0] = k
    return out


def test_npy_stack():
    buf = io.BytesIO()
    np.save(buf, _stack().astype(bool))
    data = buf.getvalue()
    assert detect_format(data) == "instances"
    np.testing.assert_array_equal(read_mask(data, shape=(8, 9)).labels, _labels_of(_stack()))
    pickled = io.BytesIO()
    np.save(pickled, np.array([{"masks": 1}], dtype=object), allow_pickle=True)
    assert detect_format(pickled.getvalue()) == "cellpose"  # object arrays are never stacks


def test_tiff_page_stack_and_ome_channel_stack_with_pixel_size():
    stack = _stack() * 255
    buf = io.BytesIO()
    tifffile.imwrite(buf, stack, photometric="minisblack")  # 3 grey pages, not planar RGB
    result = read_mask(buf.getvalue(), shape=(8, 9))
    np.testing.assert_array_equal(result.labels, _labels_of(stack))
    ome = io.BytesIO()
    tifffile.imwrite(ome, stack, ome=True, metadata={
        "axes": "CYX", "PhysicalSizeX": 0.25, "PhysicalSizeY": 0.5,
    })
    assert detect_format(ome.getvalue()) == "ome-tiff"
    result = read_mask(ome.getvalue())
    np.testing.assert_array_equal(result.labels, _labels_of(stack))
    assert result.pixel_size == PixelSize(y=0.5, x=0.25)


def test_stack_of_label_images_is_refused():
    planes = np.zeros((2, 5, 5), np.uint16)
    planes[0, 0, 0], planes[0, 1, 1] = 1, 2
    with pytest.raises(MaskFormatError, match="stack plane 1 holds 3 distinct values"):
        read_instance_stack(planes)
    buf = io.BytesIO()
    tifffile.imwrite(buf, planes)
    with pytest.raises(MaskFormatError, match="TIFF plane 1 holds 3 distinct values"):
        read_mask(buf.getvalue())


def test_stack_caps_are_checked_before_reading():
    from annotation.masks import Limits

    with pytest.raises(MaskFormatError, match="holds 3 instance masks; at most 2"):
        read_instance_stack(_stack(), limits=Limits(max_shapes=2))
