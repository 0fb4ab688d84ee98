"""``import_annotations`` on the layouts users have: DSB 2018 per-instance folders,
CryoNuSeg loose ``.roi`` folders, Fiji's ``RoiSet.zip``, BU-BIL inverted masks, images
sent as masks, QuPath nuclei and crowd COCO files.

The constructed files are in ``tests/data/constructed`` (how they were made:
``tests/data/SOURCES.md``); the images are uploaded through the service first.
"""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from skimage.measure import label as sk_label

from annotation.masks import PixelSize, relabel_sequential, write_mask
from annotation.models import Annotation
from annotation.services import images_upload_many
from annotation.services.mask_export import annotation_labels
from tests.conftest import TEST_DATA

pytestmark = pytest.mark.django_db

STARDIST = TEST_DATA / "stardist"
OMNIPOSE = TEST_DATA / "real-formats" / "omnipose_cp_masks"
CONSTRUCTED = TEST_DATA / "constructed"


@pytest.fixture
def real(world):
    uploads = [
        SimpleUploadedFile("img2d.tif", (STARDIST / "img2d.tif").read_bytes()),
        SimpleUploadedFile("caulo_15.tif", (OMNIPOSE / "caulo_15.tif").read_bytes()),
    ]
    results = images_upload_many(actor=world.users["manager"], project=world.project, uploads=uploads)
    world.real = {r.image.original_name: r.image for r in results}
    return world


def run(path: Path, *extra, report: Path) -> str:
    out = io.StringIO()
    call_command("import_annotations", str(path), "--project", "world", "--annotator",
                 "annotator", "--no-progress", "--report", str(report), *extra,
                 stdout=out, stderr=io.StringIO())
    return out.getvalue()


def files_of(report: Path) -> dict[str, dict]:
    return {f["file"]: f for f in json.loads(report.read_text())["files"]}


def stored(real, name: str) -> np.ndarray:
    row = Annotation.objects.get(assignment__image=real.real[name],
                                 created_by=real.users["annotator"])
    return annotation_labels(row)


def mask2d() -> np.ndarray:
    return relabel_sequential(tifffile.imread(STARDIST / "mask2d.tif"))


def test_dsb_layout_folder_is_one_mask_per_image(real, tmp_path):
    root = tmp_path / "stage1_train"
    shutil.copytree(CONSTRUCTED / "dsb2018_layout", root)
    (root / "img2d" / "images").mkdir()
    shutil.copy(STARDIST / "img2d.tif", root / "img2d" / "images" / "img2d.tif")
    report = tmp_path / "r.json"
    out = run(root, report=report)
    files = files_of(report)
    group = files["img2d/masks/ (125 mask files)"]
    assert (group["status"], group["format"], group["instances"]) == ("imported", "instances", 125)
    assert files["img2d/images/img2d.tif"]["status"] == "skipped"  # the image itself
    np.testing.assert_array_equal(stored(real, "img2d.tif"), mask2d())
    assert "imported 1, skipped 1, failed 0" in out
    # Running it again imports nothing new: the group has the same content key.
    run(root, report=report)
    assert files_of(report)["img2d/masks/ (125 mask files)"]["reason"].startswith("already imported")


def test_cryonuseg_loose_roi_folder_and_fiji_roiset_names(real, tmp_path):
    root = tmp_path / "annotator_1"
    shutil.copytree(CONSTRUCTED / "cryonuseg_rois", root)
    # Fiji's default ROI Manager name, saved for the other image: <image>_RoiSet.zip.
    caulo = tifffile.imread(OMNIPOSE / "caulo_15_cp_masks.tif")
    from annotation.masks import write_imagej_zip

    (root / "caulo_15_RoiSet.zip").write_bytes(write_imagej_zip(caulo))
    report = tmp_path / "r.json"
    run(root, report=report)
    files = files_of(report)
    assert files["img2d/ (125 ROI files)"]["status"] == "imported"
    assert files["img2d/ (125 ROI files)"]["format"] == "imagej"
    assert files["caulo_15_RoiSet.zip"]["status"] == "imported"
    np.testing.assert_array_equal(stored(real, "img2d.tif"), mask2d())
    assert stored(real, "caulo_15.tif").max() == 21


def test_roiset_zip_inside_a_folder_named_after_the_image(real, tmp_path):
    from annotation.masks import write_imagej_zip

    (tmp_path / "rois" / "img2d").mkdir(parents=True)
    (tmp_path / "rois" / "img2d" / "RoiSet.zip").write_bytes(write_imagej_zip(mask2d()))
    report = tmp_path / "r.json"
    run(tmp_path / "rois", report=report)
    assert files_of(report)["img2d/RoiSet.zip"]["status"] == "imported"
    np.testing.assert_array_equal(stored(real, "img2d.tif"), mask2d())


def test_bubil_inverted_mask_refused_then_imported_with_invert(real, tmp_path):
    folder = tmp_path / "expert"
    folder.mkdir()
    shutil.copy(CONSTRUCTED / "bubil_inverted" / "img2d_mask.png", folder)
    report = tmp_path / "r.json"
    with pytest.raises(CommandError, match="nothing was imported"):
        run(folder, report=report)
    refused = files_of(report)["img2d_mask.png"]
    assert refused["status"] == "failed"
    assert "this looks like an inverted mask" in refused["reason"]
    assert "import_annotations --invert" in refused["reason"]
    assert Annotation.objects.count() == 0
    run(folder, "--invert", report=report)
    imported = files_of(report)["img2d_mask.png"]
    reference = sk_label(tifffile.imread(STARDIST / "mask2d.tif") > 0, connectivity=2)
    assert imported["instances"] == int(reference.max())
    row = Annotation.objects.get(created_by=real.users["annotator"])
    assert row.import_report["options"] == {"invert": True}
    assert row.import_report["warnings"][0].startswith("binary PNG mask (0 / 255): inverted as asked")


def test_an_image_sent_as_a_mask_is_refused_naming_the_file(real, tmp_path):
    folder = tmp_path / "masks"
    folder.mkdir()
    tifffile.imwrite(folder / "img2d_masks.tif", tifffile.imread(STARDIST / "img2d.tif")[::-1])
    report = tmp_path / "r.json"
    with pytest.raises(CommandError):
        run(folder, report=report)
    reason = files_of(report)["img2d_masks.tif"]["reason"]
    assert reason.startswith("mask: The TIFF mask looks like an intensity image, not a label "
                             "image: its 233 grey values 1..235")


def test_geometry_and_crowd_flags(real, tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    feature = {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [40, 0], [40, 40], [0, 40], [0, 0]]]},
        "nucleusGeometry": {"type": "Polygon",
                            "coordinates": [[[10, 10], [20, 10], [20, 20], [10, 20], [10, 10]]]},
        "properties": {"objectType": "cell"},
    }
    (folder / "img2d.geojson").write_text(json.dumps({"type": "FeatureCollection",
                                                      "features": [feature]}))
    cols = np.arange(0, 50)  # the first 50 pixels of column 0 (column-major)
    from annotation.masks.rle import rle_from_indices

    coco = {"images": [{"id": 1, "file_name": "caulo_15.tif", "width": 310, "height": 281}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 1,
                             "segmentation": rle_from_indices(cols, 281, 310)}],
            "categories": [{"id": 1, "name": "nucleus"}]}
    (folder / "cvat_coco.json").write_text(json.dumps(coco))
    report = tmp_path / "r.json"
    run(folder, "--geometry", "nucleus", "--crowd", "instances", report=report)
    files = files_of(report)
    assert files["img2d.geojson"]["status"] == "imported"
    assert int((stored(real, "img2d.tif") == 1).sum()) == 100  # the 10 x 10 nucleus
    assert files["cvat_coco.json#caulo_15.tif"]["instances"] == 1
    assert int((stored(real, "caulo_15.tif") == 1).sum()) == 50


def test_per_instance_zip_named_after_the_image(real, tmp_path):
    from annotation.masks import write_instance_masks

    folder = tmp_path / "zips"
    folder.mkdir()
    (folder / "img2d_instances.zip").write_bytes(write_instance_masks(mask2d()))
    caulo = tifffile.imread(OMNIPOSE / "caulo_15_cp_masks.tif")
    (folder / "caulo_15_labels.ome.tif").write_bytes(
        write_mask(caulo, format="ome-tiff", pixel_size=PixelSize(y=0.065, x=0.065))
    )
    report = tmp_path / "r.json"
    run(folder, report=report)
    assert files_of(report)["img2d_instances.zip"]["format"] == "instances"
    assert files_of(report)["caulo_15_labels.ome.tif"]["format"] == "ome-tiff"
    row = Annotation.objects.get(assignment__image=real.real["caulo_15.tif"])
    assert row.import_report["pixel_size"] == {"y": 0.065, "x": 0.065, "unit": "µm"}
    np.testing.assert_array_equal(stored(real, "img2d.tif"), mask2d())
    with zipfile.ZipFile(folder / "img2d_instances.zip") as zf:
        assert len(zf.namelist()) == 125


def test_a_dsb_masks_folder_with_a_single_nucleus(real, tmp_path):
    from PIL import Image as PILImage

    masks = tmp_path / "stage1" / "caulo_15" / "masks"
    masks.mkdir(parents=True)
    cell = np.zeros((281, 310), np.uint8)
    cell[100:110, 50:70] = 255
    PILImage.fromarray(cell).save(masks / "3f0a9b.png")
    report = tmp_path / "r.json"
    run(tmp_path / "stage1", report=report)
    outcome = files_of(report)["caulo_15/masks/ (1 mask file)"]
    assert (outcome["status"], outcome["instances"]) == ("imported", 1)
    assert int((stored(real, "caulo_15.tif") == 1).sum()) == 200
