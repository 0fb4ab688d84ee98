"""Rebuild the constructed test files in this folder from StarDist's ``mask2d.tif``.

Run from the repository root: ``.venv/bin/python tests/data/constructed/make.py``.
The output is deterministic (same bytes on every run). What each file stands for, and
why it was constructed rather than copied, is in ``tests/data/SOURCES.md``.
"""

from __future__ import annotations

import io
import shutil
import sys
import zipfile
from pathlib import Path

import numpy as np
import roifile
import tifffile
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))  # the repository root, for annotation.masks
MASK2D = HERE.parent / "stardist" / "mask2d.tif"


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def main() -> None:
    labels = tifffile.imread(MASK2D)
    ids = [int(i) for i in np.unique(labels) if i]

    # DSB 2018 layout: <image id>/masks/<one PNG per nucleus>, 8-bit 0/255.
    dsb = HERE / "dsb2018_layout" / "img2d" / "masks"
    shutil.rmtree(dsb.parent.parent, ignore_errors=True)
    dsb.mkdir(parents=True)
    for k, label in enumerate(ids, start=1):
        (dsb / f"nucleus_{k:03d}.png").write_bytes(_png(((labels == label) * 255).astype(np.uint8)))

    # BU-BIL style: one binary mask, cells 0 and background 255 (inverted polarity).
    bubil = HERE / "bubil_inverted"
    shutil.rmtree(bubil, ignore_errors=True)
    bubil.mkdir()
    (bubil / "img2d_mask.png").write_bytes(_png(np.where(labels > 0, 0, 255).astype(np.uint8)))

    # CryoNuSeg style: a folder of loose .roi files for one image, one ROI per nucleus
    # (pixel-edge TRACED polygons as ImageJ's wand makes them, written by roifile through
    # annotation.masks.write_imagej_zip, then unpacked and renamed).
    from annotation.masks import write_imagej_zip

    rois = HERE / "cryonuseg_rois" / "img2d"
    shutil.rmtree(rois.parent, ignore_errors=True)
    rois.mkdir(parents=True)
    with zipfile.ZipFile(io.BytesIO(write_imagej_zip(labels))) as zf:
        for k, name in enumerate(sorted(zf.namelist()), start=1):
            roi = roifile.ImagejRoi.frombytes(zf.read(name))
            roi.name = f"nucleus-{k:03d}"
            (rois / f"nucleus-{k:03d}.roi").write_bytes(roi.tobytes())


if __name__ == "__main__":
    main()
