"""Tests for annotation.imagefiles: recognition by content, header checks, decoding."""

import io
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
import tifffile
from PIL import Image

from annotation.imagefiles import ImageFileError, probe_image, read_image
from tests.conftest import TEST_DATA

REAL = TEST_DATA / "real-formats"
MAX = 10_000_000


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _tiff(arr: np.ndarray, **kwargs) -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, arr, **kwargs)
    return buf.getvalue()


def _png_header_only(width: int, height: int, depth: int = 8, colour: int = 0) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk


def test_module_does_not_import_django():
    code = "import sys, annotation.imagefiles; print('django' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ----------------------------------------------------------------- good inputs


def test_png_16bit_grey_keeps_values_and_dtype():
    arr = (np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000).astype(np.uint16)
    out, info = read_image(_png(arr), max_pixels=MAX)
    assert (info.format, info.width, info.height, info.channels, info.dtype) == (
        "png",
        4,
        3,
        1,
        "uint16",
    )
    assert out.dtype == np.uint16
    assert np.array_equal(out, arr)


def test_png_8bit_rgb():
    arr = np.random.default_rng(1).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    out, info = read_image(_png(arr), max_pixels=MAX)
    assert info.shape == (5, 7, 3) and info.channels == 3
    assert np.array_equal(out, arr)


def test_jpeg_grey_and_rgb():
    buf = io.BytesIO()
    Image.fromarray(np.full((8, 16, 3), 128, np.uint8)).save(buf, format="JPEG", quality=95)
    out, info = read_image(buf.getvalue(), max_pixels=MAX)
    assert (info.format, info.shape, info.dtype) == ("jpeg", (8, 16, 3), "uint8")
    assert abs(int(out.mean()) - 128) <= 1
    buf = io.BytesIO()
    Image.fromarray(np.full((9, 5), 200, np.uint8)).save(buf, format="JPEG")
    out, info = probe_image(buf.getvalue()), None
    assert (out.shape, out.channels) == ((9, 5), 1)


def test_tiff_8_and_16_bit():
    for dtype in (np.uint8, np.uint16):
        arr = np.arange(20, dtype=dtype).reshape(4, 5)
        out, info = read_image(_tiff(arr, compression="zlib"), max_pixels=MAX)
        assert info.dtype == np.dtype(dtype).name
        assert out.dtype == dtype and np.array_equal(out, arr)


def test_tiff_multichannel_planar_is_channels_last():
    arr = np.stack([np.full((6, 4), c, np.uint16) for c in (10, 20, 30)])  # (C, H, W)
    out, info = read_image(
        _tiff(arr, photometric="minisblack", metadata={"axes": "CYX"}), max_pixels=MAX
    )
    assert info.shape == (6, 4, 3) and info.channels == 3 and info.pages == 1
    assert out[0, 0].tolist() == [10, 20, 30]


def test_tiff_rgb_contig():
    arr = np.zeros((6, 4, 3), np.uint8)
    arr[..., 2] = 99
    out, info = read_image(_tiff(arr, photometric="rgb"), max_pixels=MAX)
    assert info.shape == (6, 4, 3)
    assert out[3, 3].tolist() == [0, 0, 99]


def test_tiff_multipage_and_hyperstack():
    stack = np.arange(5 * 3 * 4, dtype=np.uint16).reshape(5, 3, 4)
    out, info = read_image(_tiff(stack, photometric="minisblack"), max_pixels=MAX)
    assert (info.pages, info.shape) == (5, (5, 3, 4))
    assert np.array_equal(out, stack)
    zc = np.zeros((2, 3, 8, 9), np.uint16)  # Z, C, Y, X
    zc[1, 2] = 7
    out, info = read_image(_tiff(zc, imagej=True, metadata={"axes": "ZCYX"}), max_pixels=MAX)
    assert info.shape == (2, 8, 9, 3)
    assert out[1, 0, 0].tolist() == [0, 0, 7] and out[0].max() == 0


def test_real_packbits_16bit_tiff():
    data = (REAL / "omnipose_cp_masks" / "caulo_15.tif").read_bytes()
    out, info = read_image(data, max_pixels=MAX)
    assert (info.format, info.width, info.height, info.dtype) == ("tiff", 310, 281, "uint16")
    assert out.shape == (281, 310) and int(out.max()) == 64813


def test_real_rgba_png():
    data = (REAL / "omnipose_cp_masks" / "Sample000033.png").read_bytes()
    info = probe_image(data)
    assert info.shape == (287, 377, 4) and info.dtype == "uint8"


# ------------------------------------------------------------------ bad inputs


def test_empty_file():
    with pytest.raises(ImageFileError, match=r"empty \(0 bytes\)"):
        probe_image(b"")


@pytest.mark.parametrize(
    ("content", "looks_like"),
    [
        (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"></svg>', "SVG"),
        (b"<svg width='10'></svg>", "SVG"),
        (b"<!DOCTYPE html>\n<html><body>hi</body></html>", "HTML"),
        (b"GIF89a\x01\x00\x01\x00", "GIF"),
        (b"hello world", "plain text"),
    ],
)
def test_unsupported_content_says_what_it_looks_like(content, looks_like):
    with pytest.raises(ImageFileError, match=f"looks like .*{looks_like}"):
        read_image(content, max_pixels=MAX)


def test_truncated_tiff_pixel_data_refused_before_decoding():
    data = _tiff(np.ones((64, 64), np.uint16), compression="zlib")
    with pytest.raises(ImageFileError, match="Truncated TIFF: pixel data of page 0 ends at byte"):
        probe_image(data[:-20])


def test_truncated_tiff_header():
    data = _tiff(np.ones((64, 64), np.uint16))
    with pytest.raises(ImageFileError, match="Truncated or malformed TIFF"):
        probe_image(data[:6])


def test_png_header_claiming_huge_size_refused_without_decoding():
    data = _png_header_only(100_000, 100_000)  # no pixel data follows at all
    with pytest.raises(ImageFileError, match=r"100000 x 100000 pixels = 10,000,000,000"):
        read_image(data, max_pixels=100_000_000)


def test_tiff_over_pixel_cap():
    data = _tiff(np.zeros((4, 100, 100), np.uint8), photometric="minisblack")
    with pytest.raises(
        ImageFileError, match=r"x 4 pages = 40,000 pixels, over the limit of 30,000"
    ):
        probe_image(data, max_pixels=30_000)


def test_truncated_png_decoder_error_is_image_file_error():
    data = _png(np.random.default_rng(0).integers(0, 65535, (64, 64), dtype=np.uint16))
    with pytest.raises(ImageFileError, match="Could not decode the PNG"):
        read_image(data[: len(data) // 2], max_pixels=MAX)


def test_sixteen_bit_colour_png_refused_clearly():
    with pytest.raises(ImageFileError, match="16-bit RGB"):
        probe_image(_png_header_only(10, 10, depth=16, colour=2))


def test_jpeg_without_frame_header():
    with pytest.raises(ImageFileError, match="no frame header"):
        probe_image(b"\xff\xd8\xff\xe0\x00\x04ab")


def test_truncated_stack_is_refused_not_shortened():
    # Cut inside page 2's data: tifffile alone would quietly return a 1-page image.
    data = _tiff(np.ones((5, 64, 64), np.uint16), imagej=True)
    with pytest.raises(ImageFileError, match="Truncated TIFF: after page 0 the next page"):
        probe_image(data[:-2000])


def test_tiff_with_tiles_over_the_cap_refused():
    data = _tiff(np.ones((32, 32), np.uint8), tile=(16, 16))
    assert probe_image(data, max_pixels=1024).shape == (32, 32)
    with pytest.raises(ImageFileError, match="tiles are 16 x 16 pixels, over the limit of 200"):
        # An 8 x 8 image (64 pixels, under the cap) stored in 16 x 16 tiles.
        probe_image(_tiff(np.ones((8, 8), np.uint8), tile=(16, 16)), max_pixels=200)


def test_png_one_bit_grey_alpha_and_palette():
    bits = np.array([[0, 1, 1], [1, 0, 0]], bool)
    buf = io.BytesIO()
    Image.fromarray(bits).save(buf, format="PNG")
    out, info = read_image(buf.getvalue(), max_pixels=MAX)
    assert info.dtype == "uint8" and out.tolist() == [[0, 1, 1], [1, 0, 0]]
    la = np.zeros((2, 3, 2), np.uint8)
    la[..., 1] = 200
    out, info = read_image(_png(la), max_pixels=MAX)
    assert info.shape == (2, 3, 2) and out[1, 2].tolist() == [0, 200]
    pal = Image.fromarray(np.array([[0, 1], [1, 2]], np.uint8), mode="L").convert("P")
    pal.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
    buf = io.BytesIO()
    pal.save(buf, format="PNG")
    out, info = read_image(buf.getvalue(), max_pixels=MAX)
    assert info.palette and info.shape == (2, 2, 3)
    assert out[0, 1].tolist() == [255, 0, 0] and out[1, 1].tolist() == [0, 255, 0]
    idx, _ = read_image(buf.getvalue(), max_pixels=MAX, keep_palette_indices=True)
    assert idx.tolist() == [[0, 1], [1, 2]]
