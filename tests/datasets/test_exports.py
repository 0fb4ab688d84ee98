"""Exports in every format, read back by each format's own reader; idempotent retries."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from annotation.models import Job
from config.errors import Conflict
from datasets.enums import ExportStatus
from datasets.models import SnapshotItem
from datasets.services import export_run
from datasets.storage import TEMP_MARKER, AtomicFileSystemStorage, export_storage
from tests.datasets.helpers import make_snapshot, run_export, unzip


def _by_name(snapshot):
    return {r["name"]: r for r in SnapshotItem.objects.filter(snapshot=snapshot).values_list("row", flat=True)}


def _check_manifest(root: Path, export):
    manifest = json.loads((root / "manifest.json").read_text())
    listed = {f["path"]: f for f in manifest["export"]["files"]}
    for path, meta in listed.items():
        data = (root / path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == meta["sha256"], path
    on_disk = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
    assert on_disk == set(listed) | {"manifest.json"}
    assert manifest["snapshot"]["content_hash"] == export.snapshot.content_hash
    assert len(manifest["items"]) == export.snapshot.n_items
    assert (root / "datasheet.md").read_text().startswith("# Datasheet: nuclei v1")
    return manifest


def test_cellpose_export_loads_with_cellpose_and_gives_back_the_masks(dsworld, django_capture_on_commit_callbacks, tmp_path):
    from cellpose import io as cp_io

    snap = make_snapshot(dsworld, fractions=(0.5, 0.25, 0.25))
    export = run_export(dsworld, snap, "cellpose", django_capture_on_commit_callbacks)
    assert export.status == ExportStatus.SUCCEEDED and export.attempts == 1
    job = Job.objects.get(pk=export.job_id)
    assert job.status == "succeeded" and job.progress_done == job.progress_total == 12
    root = unzip(export, tmp_path)
    manifest = _check_manifest(root, export)
    rows = _by_name(snap)
    images, labels, names, t_images, t_labels, t_names = cp_io.load_train_test_data(
        str(root / "train"), str(root / "test"))
    assert len(names) == snap.split_counts["train"] and len(t_names) == snap.split_counts["test"]
    for name, lab, img in zip(names + t_names, labels + t_labels, images + t_images, strict=True):
        row = rows[Path(name).stem]
        np.testing.assert_array_equal(lab, dsworld.labels[row["image"]["id"]])
        assert img.shape == (24, 32)
    val = cp_io.load_images_labels(str(root / "val"))
    assert len(val[2]) == snap.split_counts["val"]
    assert {i["export_files"][0].split("/")[0] for i in manifest["items"]} == {"train", "val", "test"}


def test_coco_export_decodes_exactly_with_pycocotools(dsworld, django_capture_on_commit_callbacks, tmp_path):
    from pycocotools.coco import COCO

    snap = make_snapshot(dsworld)
    export = run_export(dsworld, snap, "coco", django_capture_on_commit_callbacks)
    root = unzip(export, tmp_path)
    _check_manifest(root, export)
    rows = _by_name(snap)
    seen = 0
    for split, count in snap.split_counts.items():
        if not count:
            continue
        coco = COCO(str(root / f"annotations/instances_{split}.json"))
        assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["nucleus", "mitotic"]
        for img in coco.dataset["images"]:
            assert (root / "images" / split / img["file_name"]).exists()
            row = rows[Path(img["file_name"]).stem]
            expected = dsworld.labels[row["image"]["id"]]
            rebuilt = np.zeros_like(expected)
            for ann in coco.loadAnns(coco.getAnnIds(imgIds=[img["id"]])):
                rebuilt[coco.annToMask(ann).astype(bool)] = ann["cell_id"]
                cls = coco.loadCats(ann["category_id"])[0]["name"]
                assert cls == row["cell_classes"].get(str(ann["cell_id"]), "nucleus")
                assert ann["qa"]["support"] == 2
            np.testing.assert_array_equal(rebuilt, expected)
            seen += 1
    assert seen == 12


def test_ome_tiff_export_reads_back_with_tifffile(dsworld, django_capture_on_commit_callbacks, tmp_path):
    snap = make_snapshot(dsworld)
    export = run_export(dsworld, snap, "ome-tiff", django_capture_on_commit_callbacks)
    root = unzip(export, tmp_path)
    _check_manifest(root, export)
    for name, row in _by_name(snap).items():
        with tifffile.TiffFile(root / "labels" / row["split"] / f"{name}.ome.tif") as tif:
            np.testing.assert_array_equal(tif.asarray(), dsworld.labels[row["image"]["id"]])
            assert 'PhysicalSizeX="0.65"' in tif.ome_metadata
        with default_storage.open(row["image"]["file"]) as fh:
            from PIL import Image as PILImage
            original = np.asarray(PILImage.open(fh))
        np.testing.assert_array_equal(tifffile.imread(root / "images" / row["split"] / f"{name}.ome.tif"), original)


def test_ome_zarr_export_reads_back_with_ome_zarr_with_qa_properties(dsworld, django_capture_on_commit_callbacks, tmp_path):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    snap = make_snapshot(dsworld)
    export = run_export(dsworld, snap, "ome-zarr", django_capture_on_commit_callbacks)
    root = unzip(export, tmp_path)
    _check_manifest(root, export)
    for name, row in list(_by_name(snap).items())[:4]:
        store = root / row["split"] / f"{name}.ome.zarr"
        (node,) = list(Reader(parse_url(str(store / "labels" / "cells")))())
        np.testing.assert_array_equal(np.asarray(node.data[0]), dsworld.labels[row["image"]["id"]])
        props = node.metadata["properties"]
        assert set(props) == set(range(1, row["mask"]["n_cells"] + 1))
        one = props[1]
        assert one["support"] == 2 and one["confidence"] > 0.5 and one["gate"] == "keep"
        assert one["ignore"] is False and one["class"] in ("nucleus", "mitotic")


def test_running_a_finished_export_again_does_nothing(dsworld, django_capture_on_commit_callbacks):
    snap = make_snapshot(dsworld)
    export = run_export(dsworld, snap, "cellpose", django_capture_on_commit_callbacks)
    again = export_run(export_id=export.pk)
    assert (again.written, again.skipped) == (0, 0)
    export.refresh_from_db()
    assert export.attempts == 1 and export.status == ExportStatus.SUCCEEDED


def test_a_retry_after_a_killed_attempt_finishes_once_without_leftovers(dsworld, django_capture_on_commit_callbacks):
    """The state a SIGKILL leaves (status running, some files, a temp file) is completed."""
    snap = make_snapshot(dsworld)
    first = run_export(dsworld, snap, "cellpose", django_capture_on_commit_callbacks)
    storage = export_storage()
    # Make a second export look like a worker died inside it: running, half the files, a partial write.
    from datasets.models import DatasetExport
    export = DatasetExport.objects.create(snapshot=snap, format="cellpose", options=first.options,
                                          status=ExportStatus.RUNNING, attempts=1,
                                          prefix=first.prefix.replace(f"/{first.pk}-", "/killed-"))
    for f in first.files[: len(first.files) // 2]:
        with storage.open(first.prefix + f["path"]) as fh:
            storage.save(export.prefix + f["path"], ContentFile(fh.read()))
    partial = Path(storage.path(export.prefix + "train")) / f".x_masks.tif{TEMP_MARKER}dead01"
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.write_bytes(b"half")
    outcome = export_run(export_id=export.pk)
    export.refresh_from_db()
    assert export.status == ExportStatus.SUCCEEDED and export.attempts == 2
    assert outcome.skipped == len(first.files) // 2 and outcome.written > 0
    assert not partial.exists()
    assert [f["sha256"] for f in export.files if f["path"] != "manifest.json"] == \
        [f["sha256"] for f in first.files if f["path"] != "manifest.json"]
    on_disk = sorted(str(p.relative_to(storage.path(export.prefix))) for p in Path(storage.path(export.prefix)).rglob("*") if p.is_file())
    assert on_disk == sorted(f["path"] for f in export.files)


def test_an_image_changed_in_storage_fails_the_export_naming_it(dsworld, django_capture_on_commit_callbacks):
    snap = make_snapshot(dsworld)
    row = next(iter(_by_name(snap).values()))
    path = Path(default_storage.path(row["image"]["file"]))
    path.write_bytes(path.read_bytes() + b"tampered")
    with pytest.raises(Conflict, match=f"image {row['image']['id']} changed in storage"):
        run_export(dsworld, snap, "cellpose", django_capture_on_commit_callbacks)
    from datasets.models import DatasetExport
    export = DatasetExport.objects.get(snapshot=snap)
    assert export.status == ExportStatus.FAILED and "changed in storage" in export.error
    assert Job.objects.get(pk=export.job_id).status == "failed"


def test_atomic_storage_overwrites_and_leaves_nothing_on_a_failed_write(tmp_path):
    storage = AtomicFileSystemStorage(location=tmp_path)
    assert storage.save("a/b.bin", ContentFile(b"one")) == "a/b.bin"
    assert storage.save("a/b.bin", ContentFile(b"two")) == "a/b.bin"
    assert (tmp_path / "a/b.bin").read_bytes() == b"two"

    class Exploding(ContentFile):
        def chunks(self, chunk_size=None):
            yield b"partial"
            raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        storage.save("a/b.bin", Exploding(b"x"))
    assert (tmp_path / "a/b.bin").read_bytes() == b"two"
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["b.bin"]
