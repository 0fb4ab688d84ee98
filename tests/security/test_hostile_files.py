"""Every untrusted file is parsed within a memory budget (issue: hostile input).

Each hostile file is small and asks its parser for hundreds of MB to tens of GB. Two
things are checked for each:

* the parser, run in a fresh interpreter with the site's settings-driven limits, refuses
  it naming the problem, and both its peak RSS (``VmHWM``, reset before parsing) and the
  peak of ``tracemalloc`` grow by less than 100 MB while doing so -- memory is the
  behaviour under test here, not a timing;
* through the API, the upload is a 400 naming the problem, with no row and no file left.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from annotation.models import Annotation, Image
from tests.api.uploads import stored_files, upload, url
from tests.security import hostile

REPO_ROOT = Path(__file__).resolve().parents[2]
GROWTH_LIMIT_MB = 100

# Runs in a fresh interpreter: settings loaded and parsers imported before the baseline,
# so the growth measured is the parse alone.
_CHILD = r"""
import json, os, resource, sys, tracemalloc
from pathlib import Path
import django
django.setup()
from django.conf import settings
from annotation.imagefiles import ImageFileError, read_image
from annotation.masks import MaskFormatError, read_mask
from annotation.services.mask_formats import mask_limits
kind, shape = sys.argv[2], json.loads(sys.argv[3])
data = Path(sys.argv[1]).read_bytes()
limits = mask_limits()


def peak_rss_kb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


try:  # reset the peak RSS to the current RSS (Linux), so reading the file does not count
    Path("/proc/self/clear_refs").write_text("5")
except OSError:
    pass
tracemalloc.start()
before = peak_rss_kb()
try:
    if kind == "image":
        read_image(data, max_pixels=settings.CELLCURATE_MAX_IMAGE_PIXELS,
                   max_bytes=settings.CELLCURATE_MAX_DECODED_BYTES)
    else:
        read_mask(data, shape=tuple(shape) if shape else None, limits=limits)
    error = None
except (MaskFormatError, ImageFileError) as exc:
    error = str(exc)
after = peak_rss_kb()
traced_peak = tracemalloc.get_traced_memory()[1]
print(json.dumps({
    "error": error, "growth_mb": (after - before) / 1024, "traced_mb": traced_peak / 2**20,
}))
"""


def parse_in_child(tmp_path: Path, data: bytes, *, kind: str, shape=None) -> dict:
    path = tmp_path / "hostile.bin"
    path.write_bytes(data)
    env = {
        **os.environ, "DJANGO_SETTINGS_MODULE": "config.settings",
        "CELLCURATE_DATA_DIR": str(tmp_path / "var"),
    }
    env.pop("DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), kind, json.dumps(shape)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


HOSTILE = {
    # name: (bytes factory, kind, shape, pattern the refusal must contain)
    "void_scalar": (
        hostile.void_scalar_npy, "mask", (24, 32), r"numpy scalar of 400,000,000 bytes",
    ),
    "memoised_scalars": (
        hostile.memo_scalar_npy, "mask", (24, 32), r"more than 16,777,216 bytes of numpy scalars",
    ),
    "zip_bomb": (hostile.zip_bomb, "mask", (24, 32), r"zip archive"),
    "many_channel_tiff": (
        hostile.many_channel_tiff, "image", None,
        r"x 64 channels of float64, which decodes to 512,000,000 bytes, over the limit",
    ),
    "oversized_mask": (
        hostile.oversized_mask_tiff, "mask", (24, 32),
        r"is 8192 x 8192 \(H x W\), but the image is 24 x 32; it was not decoded",
    ),
    "looping_tiff": (hostile.looping_tiff, "image", None, r"image directory chain loops"),
    "point_heavy_coco_80mb": (
        lambda: hostile.point_heavy_coco(points=10_000_000), "mask", (64, 64),
        r"at most 50,331,648 bytes of JSON",
    ),
    "point_heavy_coco_under_byte_cap": (
        lambda: hostile.point_heavy_coco(points=6_000_000, number=b"1"), "mask", (64, 64),
        r"more than 4,000,000 numbers",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(HOSTILE))
def test_parser_refuses_hostile_file_within_memory_budget(tmp_path, name):
    make, kind, shape, pattern = HOSTILE[name]
    data = make()
    assert len(data) < 90 * 1024 * 1024
    result = parse_in_child(tmp_path, data, kind=kind, shape=shape)
    assert result["error"] is not None, f"{name} was accepted"
    assert re.search(pattern, result["error"]), result["error"]
    print(f"{name}: refused; peak RSS growth {result['growth_mb']:.1f} MB, "
          f"traced peak {result['traced_mb']:.1f} MB")
    assert result["growth_mb"] < GROWTH_LIMIT_MB, (name, result)
    assert result["traced_mb"] < GROWTH_LIMIT_MB, (name, result)


def test_legit_cellpose_seg_still_reads_under_the_budget(tmp_path):
    """The budget refuses allocation requests, not Cellpose's own files."""
    import numpy as np

    from annotation.masks import read_mask, write_mask

    labels = np.zeros((24, 32), np.uint16)
    labels[2:10, 3:12] = 1
    labels[12:20, 15:30] = 2
    result = read_mask(write_mask(labels, format="cellpose"), shape=(24, 32))
    assert result.labels.max() == 2
    assert int((result.labels == 2).sum()) == 8 * 15


# ----------------------------------------------------------------------------- API


MASKS_THROUGH_API = {
    "void_scalar": (hostile.void_scalar_npy, "numpy scalar of 400,000,000 bytes"),
    "zip_bomb": (hostile.zip_bomb, "zip archive"),
    "oversized_mask": (hostile.oversized_mask_tiff, "is 8192 x 8192 (H x W), but the image is 24 x 32"),
    "point_heavy_coco": (
        lambda: hostile.point_heavy_coco(points=10_000_000), "bytes of JSON are accepted",
    ),
}


@pytest.mark.parametrize("name", list(MASKS_THROUGH_API))
def test_hostile_mask_upload_is_400_and_leaves_nothing(world, api_client, media_root, name):
    make, message = MASKS_THROUGH_API[name]
    files_before = stored_files(media_root)
    api_client.force_authenticate(world.users["annotator"])
    response = api_client.post(
        url("world", "annotations"),
        {"assignment": world.assignments["annotator"].pk, "mask": upload("mask.bin", make())},
        format="multipart",
    )
    assert response.status_code == 400, response.content[:500]
    assert message in response.json()["mask"][0]
    assert Annotation.objects.count() == 0
    assert stored_files(media_root) == files_before


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (hostile.many_channel_tiff, "which decodes to 512,000,000 bytes, over the limit"),
        (hostile.looping_tiff, "image directory chain loops"),
    ],
)
def test_hostile_image_upload_is_400_and_leaves_nothing(world, api_client, media_root, make, message):
    files_before = stored_files(media_root)
    images_before = Image.objects.count()
    api_client.force_authenticate(world.users["manager"])
    response = api_client.post(
        url("world", "images"), {"file": [upload("evil.tif", make())]}, format="multipart"
    )
    assert response.status_code == 400, response.content[:500]
    assert message in response.json()["file"][0]
    assert Image.objects.count() == images_before
    assert stored_files(media_root) == files_before


def test_oversized_draft_autosave_is_refused_before_decoding(world, api_client, media_root):
    """The workspace's autosave reads an uploaded label image too: same header check."""
    from annotation.models import AnnotationDraft

    files_before = stored_files(media_root)
    api_client.force_authenticate(world.users["annotator"])
    response = api_client.put(
        url("world", "assignments", world.assignments["annotator"].pk, "draft"),
        {"labels": upload("labels.tif", hostile.oversized_mask_tiff()), "base_revision": 0},
        format="multipart",
    )
    assert response.status_code == 400, response.content[:500]
    assert "is 8192 x 8192 (H x W), but the image is 24 x 32; it was not decoded" in (
        response.json()["labels"][0]
    )
    assert AnnotationDraft.objects.count() == 0
    assert stored_files(media_root) == files_before
