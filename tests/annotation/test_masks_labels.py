"""Tests for annotation.masks label-image core and raster (PNG/TIFF) label files."""

import io
import subprocess
import sys

import numpy as np
import pytest
import tifffile
from PIL import Image

from annotation.masks import (
    MaskFormatError,
    instance_ids,
    label_image_warnings,
    read_label_image,
    read_mask,
    relabel_sequential,
    to_canonical_dtype,
    validate_label_image,
    write_label_png,
    write_label_tiff,
)
from tests.conftest import TEST_DATA

REAL = TEST_DATA / "real-formats"
MAX = 10_000_000


def test_masks_package_does_not_import_django():
    code = "import sys, annotation.masks; print('django' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_validate_accepts_integer_labels():
    validate_label_image(np.array([[0, 1], [2, 70000]], dtype=np.int64))


@pytest.mark.parametrize(
    ("arr", "message"),
    [
        (np.zeros((2, 2, 3), np.uint8), r"2-D label image .* got 3-D shape \(2, 2, 3\)"),
        (np.zeros(4, np.uint8), "got 1-D"),
        (np.zeros((0, 3), np.uint8), "empty"),
        (np.array([[0.0, 1.0]]), "float dtype float64: its values are whole numbers"),
        (np.array([[0.5, 1.0]], np.float32), "non-integer"),
        (np.array([[0, -3]], np.int16), r"negative values \(minimum -3, 1 pixels\)"),
        (np.array([[True, False]]), "boolean"),
        (np.array([[0, 2**33]], np.int64), "more than a uint32 label image holds"),
    ],
)
def test_validate_refuses_with_message(arr, message):
    with pytest.raises(MaskFormatError, match=message):
        validate_label_image(arr, name="mask")


def test_validate_refuses_non_array():
    with pytest.raises(MaskFormatError, match="must be a numpy array, got list"):
        validate_label_image([[0, 1]])


def test_relabel_sequential_keeps_order():
    out = relabel_sequential(np.array([[0, 7, 7], [3, 0, 100]], np.int32))
    assert out.dtype == np.uint16
    assert out.tolist() == [[0, 2, 2], [1, 0, 3]]


def test_relabel_sequential_without_background_and_empty():
    assert relabel_sequential(np.array([[5, 9]])).tolist() == [[1, 2]]
    empty = relabel_sequential(np.zeros((2, 3), np.uint8))
    assert empty.dtype == np.uint16 and empty.max() == 0


def test_relabel_sequential_goes_uint32_above_65535():
    arr = np.arange(70_000, dtype=np.uint32).reshape(100, 700) * 3
    out = relabel_sequential(arr)
    assert out.dtype == np.uint32 and int(out.max()) == 69_999


def test_to_canonical_dtype():
    assert to_canonical_dtype(np.array([[0, 65535]], np.int64)).dtype == np.uint16
    assert to_canonical_dtype(np.array([[0, 65536]], np.int64)).dtype == np.uint32
    assert instance_ids(np.array([[0, 9], [4, 9]])).tolist() == [4, 9]


def test_png_and_tiff_round_trip_identical():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 300, (40, 50)).astype(np.uint16)
    for write in (write_label_png, write_label_tiff):
        out = read_label_image(write(labels), max_pixels=MAX)
        assert out.dtype == np.uint16 and np.array_equal(out, labels)


def test_tiff_uint32_round_trip_and_png_refuses():
    labels = np.zeros((4, 4), np.uint32)
    labels[0, 0] = 100_000
    out = read_label_image(write_label_tiff(labels), max_pixels=MAX)
    assert out.dtype == np.uint32 and out[0, 0] == 100_000
    with pytest.raises(MaskFormatError, match="16-bit PNG holds ids up to 65,535"):
        write_label_png(labels)


def test_tiff_is_compressed():
    labels = np.zeros((256, 256), np.uint16)
    labels[10:50, 10:50] = 1
    data = write_label_tiff(labels)
    assert len(data) < 256 * 256 * 2 // 20
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        assert tif.pages[0].compression == 8  # ADOBE_DEFLATE


def test_read_8bit_and_palette_png():
    arr = np.array([[0, 1], [2, 255]], np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    assert read_label_image(buf.getvalue(), max_pixels=MAX).tolist() == [[0, 1], [2, 255]]
    im = Image.fromarray(arr, mode="L").convert("P")
    im.putpalette([0, 0, 0] + [255, 0, 0] * 255)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    assert read_label_image(buf.getvalue(), max_pixels=MAX).tolist() == [[0, 1], [2, 255]]


def test_read_label_refuses_rgb_jpeg_float_negative():
    buf = io.BytesIO()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(buf, format="PNG")
    with pytest.raises(MaskFormatError, match="3 channels"):
        read_label_image(buf.getvalue(), max_pixels=MAX)
    buf = io.BytesIO()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(buf, format="JPEG")
    with pytest.raises(MaskFormatError, match="JPEG cannot be a label image"):
        read_label_image(buf.getvalue(), max_pixels=MAX)
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.ones((4, 4), np.float32))
    with pytest.raises(MaskFormatError, match="float dtype float32"):
        read_label_image(buf.getvalue(), max_pixels=MAX)
    buf = io.BytesIO()
    tifffile.imwrite(buf, -np.ones((4, 4), np.int16))
    with pytest.raises(MaskFormatError, match="negative values"):
        read_label_image(buf.getvalue(), max_pixels=MAX)
    with pytest.raises(MaskFormatError, match="empty"):
        read_label_image(b"", max_pixels=MAX)


@pytest.mark.parametrize(
    ("name", "n_cells", "shape"),
    [("caulo_15_cp_masks.tif", 21, (281, 310)), ("Sample000033_cp_masks.tif", 116, (287, 377))],
)
def test_real_cellpose_uint8_label_tiffs(name, n_cells, shape):
    out = read_label_image((REAL / "omnipose_cp_masks" / name).read_bytes(), max_pixels=MAX)
    assert out.shape == shape and out.dtype == np.uint16
    assert len(instance_ids(out)) == n_cells


def test_inverted_polarity_and_binary_masks_are_flagged():
    inverted = np.full((10, 10), 255, np.uint8)
    inverted[3:6, 3:6] = 0
    assert label_image_warnings(inverted) == (
        "id 255 covers 91% of the image and touches all four borders: is the polarity "
        "inverted (background not 0)?",
    )
    binary = np.zeros((10, 10), np.uint8)
    binary[1:4, 1:4] = binary[5:9, 5:9] = 1
    assert label_image_warnings(binary) == (
        "the label image holds a single id (1): a binary mask? Touching cells in it are one "
        "instance.",
    )
    # Read as a mask, an inverted binary mask is refused with the fix; invert=true
    # imports the cell (tests/annotation/test_masks_polarity.py has the rest).
    buf = io.BytesIO()
    Image.fromarray(inverted).save(buf, format="PNG")
    with pytest.raises(MaskFormatError, match="covers 91 % of the image and touches all four"):
        read_mask(buf.getvalue())
    result = read_mask(buf.getvalue(), invert=True)
    assert result.n_instances == 1 and int((result.labels == 1).sum()) == 9
    assert label_image_warnings(np.array([[0, 1], [2, 0]])) == ()


def test_relabel_and_instance_ids_with_huge_sparse_ids():
    arr = np.array([[5, 2**31], [0, 5]], np.uint32)
    assert instance_ids(arr).tolist() == [5, 2**31]
    out = relabel_sequential(arr)
    assert out.dtype == np.uint16 and out.tolist() == [[1, 2], [0, 1]]
