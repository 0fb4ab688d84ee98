"""``export_annotations``: every write format reads back; COCO is one file of many images."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from annotation.masks import WRITE_FORMATS, read_coco, read_mask
from annotation.models import Annotation, Assignment
from annotation.services import annotation_submit_labels
from annotation.services.mask_export import annotation_labels
from tests.api.test_mask_formats import best_ious, class_of_best_match, synthetic_cells
from tests.factories import AssignmentFactory, ImageFactory

pytestmark = pytest.mark.django_db

H, W = 64, 96
SUFFIX = {
    "png": "_masks.png", "tiff": "_masks.tif", "cellpose": "_seg.npy", "imagej": "_rois.zip",
    "geojson": ".geojson", "ome-tiff": "_masks.ome.tif", "instances": "_instances.zip",
}


@pytest.fixture
def exported(world):
    """Two images: annotator submits both (with classes), annotator2 one; one older revision."""
    world.project.cell_classes = ["nucleus", "mitotic"]
    world.project.save(update_fields=["cell_classes"])
    labels, classes = synthetic_cells()
    flipped = np.ascontiguousarray(labels[::-1, ::-1])
    images = [
        ImageFactory(project=world.project, height=H, width=W, original_name="a.tif"),
        ImageFactory(project=world.project, height=H, width=W, original_name="b.png"),
    ]
    expected = {}
    for user, image, mask, cls in [
        ("annotator", images[0], labels, classes),
        ("annotator", images[1], flipped, {}),
        ("annotator2", images[0], flipped, {1: "mitotic"}),
    ]:
        actor = world.users[user]
        assignment = AssignmentFactory(image=image, annotator=actor)
        if user == "annotator2":  # an older revision that the export must not use
            annotation_submit_labels(actor=actor, assignment=assignment, labels=labels)
        annotation_submit_labels(
            actor=actor, assignment=assignment, labels=mask, instance_classes=cls,
            base_revision=1 if user == "annotator2" else None,
        )
        expected[(user, image.original_name)] = (mask, cls)
    world.expected = expected
    return world


def run(*args) -> str:
    out = io.StringIO()
    call_command("export_annotations", *[str(a) for a in args], "--no-progress", stdout=out,
                 stderr=io.StringIO())
    return out.getvalue()


@pytest.mark.parametrize("format", [f for f in WRITE_FORMATS if f != "coco"])
def test_export_writes_one_file_per_mask_that_reads_back(exported, tmp_path, format):
    out = run("--project", "world", "--out", tmp_path / "out", "--format", format)
    assert out.strip() == (
        f"exported 3 annotations of project 'world' as {format}: 4 files in {tmp_path / 'out'}"
    )
    files = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert files == sorted([
        "manifest.json", f"annotator/a{SUFFIX[format]}", f"annotator/b{SUFFIX[format]}",
        f"annotator2/a{SUFFIX[format]}",
    ])
    for (user, image_name), (mask, classes) in exported.expected.items():
        stem = image_name.rsplit(".", 1)[0]
        back = read_mask((tmp_path / "out" / user / f"{stem}{SUFFIX[format]}").read_bytes(), shape=(H, W))
        if format in ("png", "tiff", "ome-tiff", "instances", "cellpose"):
            np.testing.assert_array_equal(back.labels, mask)
        else:
            assert min(best_ious(mask, back.labels).values()) >= 0.98
            got = class_of_best_match(mask, back.labels, dict(back.classes))
            assert {k: v for k, v in got.items() if v is not None} == classes


def test_coco_export_is_one_json_per_annotator_with_all_their_images(exported, tmp_path):
    run("--project", "world", "--out", tmp_path, "--format", "coco")
    entries = read_coco((tmp_path / "annotator" / "annotations_coco.json").read_bytes())
    assert sorted(entries) == ["a.tif", "b.png"]
    labels, classes = exported.expected[("annotator", "a.tif")]
    assert min(best_ious(labels, entries["a.tif"].labels).values()) >= 0.98
    assert class_of_best_match(labels, entries["a.tif"].labels, dict(entries["a.tif"].classes)) == classes
    # Unclassified cells get the project's first cell class (COCO needs a category).
    assert set(entries["b.png"].classes.values()) == {"nucleus"}
    doc = json.loads((tmp_path / "annotator2" / "annotations_coco.json").read_bytes())
    assert [i["file_name"] for i in doc["images"]] == ["a.tif"]
    assert len(doc["annotations"]) == 5


def test_manifest_lists_the_latest_revisions(exported, tmp_path):
    run("--project", "world", "--out", tmp_path, "--format", "png")
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert (manifest["project"], manifest["format"], manifest["status"]) == ("world", "png", "submitted")
    rows = {(r["annotator"], r["image_name"]): r for r in manifest["files"]}
    assert set(rows) == {("annotator", "a.tif"), ("annotator", "b.png"), ("annotator2", "a.tif")}
    assert rows[("annotator2", "a.tif")]["revision"] == 2
    assert rows[("annotator2", "a.tif")]["instance_classes"] == {"1": "mitotic"}
    latest = Annotation.objects.get(created_by__username="annotator2", revision=2)
    assert rows[("annotator2", "a.tif")]["mask_sha256"] == latest.sha256


def test_status_and_annotator_filters(exported, tmp_path):
    Assignment.objects.filter(annotator__username="annotator2").update(status="expired")
    out = run("--project", "world", "--out", tmp_path / "s", "--format", "png")
    assert "exported 2 annotations" in out
    out = run("--project", "world", "--out", tmp_path / "all", "--format", "png", "--status", "all")
    assert "exported 3 annotations" in out
    out = run("--project", "world", "--out", tmp_path / "one", "--format", "png", "--status", "all",
              "--annotator", "annotator2")
    assert "exported 1 annotations" in out
    assert (tmp_path / "one" / "annotator2" / "a_masks.png").is_file()
    assert not (tmp_path / "one" / "annotator").exists()


def test_export_then_import_as_another_annotator_gives_identical_masks(exported, tmp_path):
    """The export's names are the ones import_annotations matches."""
    run("--project", "world", "--out", tmp_path, "--format", "cellpose", "--annotator", "annotator")
    Assignment.objects.filter(annotator__username="annotator2").delete()
    out = io.StringIO()
    call_command("import_annotations", str(tmp_path / "annotator"), "--project", "world",
                 "--annotator", "annotator2", "--no-progress", stdout=out, stderr=io.StringIO())
    assert "imported 2, skipped 0, failed 0" in out.getvalue()
    for name in ("a.tif", "b.png"):
        mine = Annotation.objects.get(created_by__username="annotator", assignment__image__original_name=name)
        theirs = Annotation.objects.get(created_by__username="annotator2", assignment__image__original_name=name)
        assert theirs.sha256 == mine.sha256
        np.testing.assert_array_equal(annotation_labels(theirs), annotation_labels(mine))


def test_unknown_project_is_a_usage_error(tmp_path, db):
    with pytest.raises(CommandError, match="no project with slug 'nope'"):
        run("--project", "nope", "--out", tmp_path)
