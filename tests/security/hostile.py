"""Hostile files, generated small: each one asks its parser for far more memory than its size.

Built in the test (no committed blobs) and cached per session: the compressed ones take
about a second each to deflate.
"""

from __future__ import annotations

import functools
import io
import json
import struct
import zipfile
import zlib

import numpy as np
import tifffile

MIB = 1024 * 1024


def _zeros_deflated(nbytes: int) -> bytes:
    """A zlib stream that inflates to ``nbytes`` zero bytes, built 1 MiB at a time."""
    comp = zlib.compressobj(1)
    chunk = b"\0" * MIB
    parts = [comp.compress(chunk) for _ in range(nbytes // MIB)]
    parts.append(comp.compress(b"\0" * (nbytes % MIB)))
    parts.append(comp.flush())
    return b"".join(parts)


def _npy_object(pickle_stream: bytes) -> bytes:
    """An ``.npy`` file holding a 0-d object array whose pickle is ``pickle_stream``."""
    header = "{'descr': '|O', 'fortran_order': False, 'shape': (), }"
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + pickle_stream


def void_scalar_npy(*, calls: int = 64) -> bytes:
    """A ~250-byte ``_seg.npy`` whose pickle calls the allow-listed
    ``numpy._core.multiarray.scalar`` with ``dtype('V400000000')`` and no bytes, then
    calls the memoised callable again ``calls - 1`` times: 400 MB per call, ~5 bytes each."""
    head = (
        b"\x80\x02cnumpy._core.multiarray\nscalar\nq\x00"
        b"cnumpy\ndtype\nq\x01X\x0a\x00\x00\x00V400000000q\x02\x89\x88\x87q\x03Rq\x04"
    )
    call = b"h\x00h\x04\x85R"  # scalar(dtype) from the memo: 6 bytes per 400 MB
    stream = head + b"]q\x05(" + call * calls + b"e."
    return _npy_object(stream)


def memo_scalar_npy(*, itemsize: int = 64 * 1024, calls: int = 16_000) -> bytes:
    """A ``_seg.npy`` whose pickle builds ``calls`` scalars of ``itemsize`` bytes each
    from one memoised byte string: each call is legal, together they ask for ~1 GB."""
    dtype = f"V{itemsize}".encode()
    head = (
        b"\x80\x02cnumpy._core.multiarray\nscalar\nq\x00"
        b"cnumpy\ndtype\nq\x01X" + struct.pack("<I", len(dtype)) + dtype
        + b"q\x02\x89\x88\x87q\x03Rq\x04"
        + b"B" + struct.pack("<I", itemsize) + b"\0" * itemsize + b"q\x06"
    )
    call = b"h\x00h\x04h\x06\x86R"
    return _npy_object(head + b"]q\x05(" + call * calls + b"e.")


@functools.cache
def zip_bomb() -> bytes:
    """~4 MB zip of 16 entries of 64 MiB of zeros each (1 GiB inflated)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zeros = b"\0" * (64 * MIB)
        for i in range(16):
            zf.writestr(f"{i:02d}.roi", zeros)
    return buf.getvalue()


def _tiff_from_strip(strip: bytes, *, shape: tuple[int, ...], dtype: str) -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(
        buf, data=iter([strip]), shape=shape, dtype=dtype, compression="zlib",
        photometric="minisblack", planarconfig="contig", rowsperstrip=shape[0],
    )
    return buf.getvalue()


@functools.cache
def many_channel_tiff() -> bytes:
    """~2 MB TIFF of 1000 x 1000 pixels x 64 float64 channels: 512 MB decoded, 64 M pixels."""
    return _tiff_from_strip(
        _zeros_deflated(1000 * 1000 * 64 * 8), shape=(1000, 1000, 64), dtype="float64"
    )


@functools.cache
def oversized_mask_tiff() -> bytes:
    """~1 MB uint32 label TIFF of 8192 x 8192 (256 MiB decoded), for a small image."""
    return _tiff_from_strip(_zeros_deflated(8192 * 8192 * 4), shape=(8192, 8192), dtype="uint32")


def looping_tiff() -> bytes:
    """A two-page TIFF whose second image directory points back to the first."""
    buf = io.BytesIO()
    with tifffile.TiffWriter(buf) as tw:
        tw.write(np.zeros((8, 8), np.uint8))
        tw.write(np.ones((8, 8), np.uint8))
    data = bytearray(buf.getvalue())
    first = struct.unpack("<I", data[4:8])[0]
    n = struct.unpack("<H", data[first : first + 2])[0]
    second = struct.unpack("<I", data[first + 2 + 12 * n : first + 6 + 12 * n])[0]
    n2 = struct.unpack("<H", data[second : second + 2])[0]
    data[second + 2 + 12 * n2 : second + 6 + 12 * n2] = struct.pack("<I", first)
    return bytes(data)


def point_heavy_coco(*, points: int, number: bytes = b"1.5") -> bytes:
    """A COCO file for one 64 x 64 image whose one polygon has ``points`` vertices."""
    doc = {
        "images": [{"id": 1, "file_name": "img.png", "width": 64, "height": 64}],
        "categories": [{"id": 1, "name": "nucleus"}],
        "annotations": [
            {"id": 7, "image_id": 1, "category_id": 1, "segmentation": "POLYGON"}
        ],
    }
    polygon = b"[[" + (number + b",") * (2 * points - 1) + number + b"]]"
    return json.dumps(doc).encode().replace(b'"POLYGON"', polygon)
