"""``import_annotations`` on real files: StarDist's nuclei and Omnipose ``_cp_masks`` TIFFs.

The real files are read from ``tests/data`` (origin and licence in ``tests/data/SOURCES.md``)
and copied into a temporary folder at run time; the images are uploaded through the
service first, as a manager would.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from PIL import Image as PILImage

from annotation.masks import CocoImage, relabel_sequential, write_coco, write_mask
from annotation.models import Annotation, Assignment
from annotation.services import images_upload_many
from annotation.services.mask_batch import mask_name_stems
from annotation.services.mask_export import annotation_labels
from tests.conftest import TEST_DATA
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

STARDIST = TEST_DATA / "stardist"
OMNIPOSE = TEST_DATA / "real-formats" / "omnipose_cp_masks"


@pytest.fixture
def real(world):
    """The world project with three real images uploaded: img2d.tif, caulo_15.tif, Sample000033.png."""
    uploads = [
        SimpleUploadedFile("img2d.tif", (STARDIST / "img2d.tif").read_bytes()),
        SimpleUploadedFile("caulo_15.tif", (OMNIPOSE / "caulo_15.tif").read_bytes()),
        SimpleUploadedFile("Sample000033.png", (OMNIPOSE / "Sample000033.png").read_bytes()),
    ]
    results = images_upload_many(actor=world.users["manager"], project=world.project, uploads=uploads)
    world.real = {r.image.original_name: r.image for r in results}
    return world


def mask_folder(tmp_path: Path) -> Path:
    """Masks next to one of their images, plus a broken file and one for no image."""
    folder = tmp_path / "masks"
    (folder / "nested").mkdir(parents=True)
    shutil.copy(STARDIST / "mask2d.tif", folder / "img2d_masks.tif")
    shutil.copy(OMNIPOSE / "caulo_15_cp_masks.tif", folder / "caulo_15_cp_masks.tif")
    shutil.copy(OMNIPOSE / "caulo_15.tif", folder / "caulo_15.tif")  # the image itself
    shutil.copy(OMNIPOSE / "Sample000033_cp_masks.tif", folder / "nested" / "Sample000033_cp_masks.tif")
    (folder / "caulo_15_seg.npy").write_bytes(b"\x93NUMPY\x01\x00garbage")  # broken
    shutil.copy(OMNIPOSE / "caulo_15_cp_masks.tif", folder / "elsewhere_masks.tif")  # no image
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    return folder


def run(*args, **kwargs) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_annotations", *[str(a) for a in args], stdout=out, stderr=err, **kwargs)
    return out.getvalue(), err.getvalue()


def by_file(report: dict) -> dict[str, dict]:
    return {f["file"]: f for f in report["files"]}


def test_mask_name_stems_strip_tool_suffixes():
    assert mask_name_stems("a/caulo_15_cp_masks.tif") == ["caulo_15_cp_masks", "caulo_15"]
    assert mask_name_stems("img_seg.npy") == ["img_seg", "img"]
    assert mask_name_stems("cells.roi.zip") == ["cells"]
    assert mask_name_stems("cells_rois.zip") == ["cells_rois", "cells"]
    assert mask_name_stems("plate1.ome.tif") == ["plate1"]
    assert mask_name_stems("x_masks_masks.png") == ["x_masks_masks", "x_masks", "x"]


def test_folder_import_of_real_masks(real, tmp_path):
    report_path = tmp_path / "report.json"
    out, err = run(mask_folder(tmp_path), "--project", "world", "--annotator", "annotator",
                   "--report", report_path)
    report = json.loads(report_path.read_text())
    files = by_file(report)
    assert (report["imported"], report["skipped"], report["failed"]) == (3, 2, 1)
    assert {name: f["status"] for name, f in files.items()} == {
        "caulo_15.tif": "skipped",
        "caulo_15_cp_masks.tif": "imported",
        "caulo_15_seg.npy": "failed",
        "elsewhere_masks.tif": "skipped",
        "img2d_masks.tif": "imported",
        "nested/Sample000033_cp_masks.tif": "imported",
    }
    assert files["caulo_15.tif"]["reason"].startswith(f"this is image {real.real['caulo_15.tif'].pk} itself")
    assert "npy" in files["caulo_15_seg.npy"]["reason"].lower()
    assert files["elsewhere_masks.tif"]["reason"] == "no image of the project is named 'elsewhere_masks', 'elsewhere'"
    # StarDist's mask: 125 nuclei with ids up to 183 become ids 1..125, same pixels.
    img2d = files["img2d_masks.tif"]
    assert (img2d["image"], img2d["instances"], img2d["format"]) == (real.real["img2d.tif"].pk, 125, "tiff")
    # The human-readable report names every file and the summary.
    assert "failed       caulo_15_seg.npy: " in out
    assert out.rstrip().endswith(f"report written to {report_path}")
    assert "imported 3, skipped 2, failed 1" in out
    assert "import masks" in err  # the progress bar went to stderr

    expected = {
        "img2d.tif": tifffile.imread(STARDIST / "mask2d.tif"),
        "caulo_15.tif": tifffile.imread(OMNIPOSE / "caulo_15_cp_masks.tif"),
        "Sample000033.png": tifffile.imread(OMNIPOSE / "Sample000033_cp_masks.tif"),
    }
    rows = Annotation.objects.filter(created_by=real.users["annotator"]).select_related("assignment__image")
    assert rows.count() == 3
    for row in rows:
        name = row.assignment.image.original_name
        assert (row.source, row.upload_format, row.revision) == ("imported", "tiff", 1)
        assert row.assignment.status == "submitted"
        np.testing.assert_array_equal(annotation_labels(row), relabel_sequential(expected[name]))
    assert rows.get(assignment__image__original_name="caulo_15.tif").instance_count == 21


def test_zip_import_gives_the_same_rows_and_a_rerun_imports_nothing_new(real, tmp_path):
    folder = mask_folder(tmp_path)
    archive = tmp_path / "masks.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                zf.write(file, file.relative_to(folder).as_posix())
        zf.writestr("__MACOSX/._img2d_masks.tif", b"litter")
    out, _ = run(archive, "--project", "world", "--annotator", "annotator", "--no-progress")
    assert "imported 3, skipped 2, failed 1" in out
    assert Annotation.objects.count() == 3
    # Same files again: every mask is recognised as already imported; exit status 0.
    out, _ = run(archive, "--project", "world", "--annotator", "annotator", "--no-progress")
    assert "imported 0, skipped 5, failed 1" in out
    assert out.count("already imported as annotation") == 3
    assert Annotation.objects.count() == 3


def test_zip_slip_archive_is_refused_naming_the_entry(real, tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../../caulo_15_cp_masks.tif", (OMNIPOSE / "caulo_15_cp_masks.tif").read_bytes())
    with pytest.raises(CommandError, match=r"evil\.zip: .*'\.\./\.\./caulo_15_cp_masks\.tif'.*'\.\.'"):
        run(archive, "--project", "world", "--annotator", "annotator")
    assert Annotation.objects.count() == 0


def test_nothing_importable_is_a_non_zero_exit_naming_the_files(real, tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "caulo_15_masks.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(CommandError, match="nothing was imported from .*: 1 failed, 0 skipped"):
        run(folder, "--project", "world", "--annotator", "annotator", "--no-progress")
    assert Annotation.objects.count() == 0
    assert Assignment.objects.filter(image=real.real["caulo_15.tif"]).count() == 0


def test_dry_run_stores_nothing(real, tmp_path):
    before = Assignment.objects.count()
    out, _ = run(mask_folder(tmp_path), "--project", "world", "--annotator", "annotator",
                 "--dry-run", "--no-progress")
    assert "would import 3, skipped 2, failed 1" in out
    assert (Annotation.objects.count(), Assignment.objects.count()) == (0, before)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--project", "nope", "--annotator", "annotator"], "no project with slug 'nope'"),
        (["--project", "world", "--annotator", "ghost"], "no active user 'ghost'"),
        (["--project", "world", "--annotator", "qa_lead"], "'qa_lead' is not an annotator of project 'world'"),
        (["--project", "world", "--annotator", "annotator", "--class-map", "x"], "FILE_CLASS=PROJECT_CLASS"),
    ],
)
def test_usage_errors(real, tmp_path, args, message):
    with pytest.raises(CommandError, match=message):
        run(mask_folder(tmp_path), *args)
    assert Annotation.objects.count() == 0


def test_annotator_who_has_not_acknowledged_the_guideline_is_refused(real, tmp_path):
    from annotation.models import Membership

    newcomer = UserFactory(username="newcomer")
    Membership.objects.create(user=newcomer, project=real.project, role="annotator")
    with pytest.raises(CommandError, match="'newcomer' has not acknowledged guideline version 1"):
        run(mask_folder(tmp_path), "--project", "world", "--annotator", "newcomer")


def test_missing_path_is_a_usage_error(real, tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        run(tmp_path / "missing", "--project", "world", "--annotator", "annotator")


def test_coco_file_with_many_images_and_sha256_names(real, tmp_path):
    """A COCO file matches images by each entry's file_name; a PNG named by sha256 too."""
    real.project.cell_classes = ["nucleus", "mitotic"]
    real.project.save(update_fields=["cell_classes"])
    caulo = tifffile.imread(OMNIPOSE / "caulo_15_cp_masks.tif")
    sample = tifffile.imread(OMNIPOSE / "Sample000033_cp_masks.tif")
    classes = {i: "mitotic" if i % 2 else "nucleus" for i in range(1, 200)}
    folder = tmp_path / "coco"
    folder.mkdir()
    (folder / "project.json").write_bytes(write_coco([
        CocoImage("caulo_15.tif", caulo, classes),
        CocoImage("/data/Sample000033.png", sample, {1: "debris"}),
        CocoImage("not-uploaded.tif", caulo, {}),
    ]))
    mask2d = tifffile.imread(STARDIST / "mask2d.tif")
    img2d_sha = hashlib.sha256((STARDIST / "img2d.tif").read_bytes()).hexdigest()
    (folder / f"{img2d_sha}.png").write_bytes(write_mask(relabel_sequential(mask2d), format="png"))
    report_path = tmp_path / "r.json"
    run(folder, "--project", "world", "--annotator", "annotator2", "--report", report_path,
        "--no-progress")
    files = by_file(json.loads(report_path.read_text()))
    assert files["project.json#caulo_15.tif"]["status"] == "imported"
    assert files["project.json#caulo_15.tif"]["format"] == "coco"
    assert files["project.json#/data/Sample000033.png"]["status"] == "failed"
    assert "['cell', 'debris']" in files["project.json#/data/Sample000033.png"]["reason"]
    assert files["project.json#not-uploaded.tif"]["status"] == "skipped"
    assert files[f"{img2d_sha}.png"]["image"] == real.real["img2d.tif"].pk
    row = Annotation.objects.get(upload_format="coco")
    stored = annotation_labels(row)
    assert row.instance_count == 21
    # Pixel-edge polygons of the real cp_masks rasterise back to the same cells.
    for cid in np.unique(caulo[caulo > 0]):
        ids, counts = np.unique(stored[caulo == cid], return_counts=True)
        match = stored == ids[np.argmax(counts)]
        iou = (match & (caulo == cid)).sum() / (match | (caulo == cid)).sum()
        assert iou >= 0.98
        assert row.instance_classes[str(int(ids[np.argmax(counts)]))] == classes[int(cid)]
    png_row = Annotation.objects.get(upload_format="png")
    np.testing.assert_array_equal(annotation_labels(png_row), relabel_sequential(mask2d))


def test_rgba_image_and_its_mask_shapes_agree():
    """The real Sample000033 pair: an RGBA PNG image and a uint8 label TIFF of its size."""
    image = np.asarray(PILImage.open(OMNIPOSE / "Sample000033.png"))
    mask = tifffile.imread(OMNIPOSE / "Sample000033_cp_masks.tif")
    assert image.shape[:2] == mask.shape == (287, 377)
    assert (mask.dtype, int(mask.max())) == (np.uint8, 116)


class _RunsCommand:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def test_hostile_seg_npy_in_a_batch_is_reported_and_never_runs(real, tmp_path):
    import os

    canary = tmp_path / "canary"
    folder = tmp_path / "batch"
    folder.mkdir()
    buf = io.BytesIO()
    masks = tifffile.imread(OMNIPOSE / "caulo_15_cp_masks.tif")
    np.save(buf, {"masks": masks, "outlines": _RunsCommand(os.system, f"touch {canary}")},
            allow_pickle=True)
    (folder / "caulo_15_seg.npy").write_bytes(buf.getvalue())
    shutil.copy(STARDIST / "mask2d.tif", folder / "img2d_masks.tif")
    out, _ = run(folder, "--project", "world", "--annotator", "annotator", "--no-progress")
    assert "imported 1, skipped 0, failed 1" in out
    line = next(ln for ln in out.splitlines() if "caulo_15_seg.npy" in ln)
    assert line.startswith("failed") and "system" in line
    assert not canary.exists()
    assert list(Annotation.objects.values_list("assignment__image__original_name", flat=True)) == ["img2d.tif"]
