"""``import_annotations --guideline-version N --manager USER``: masks made under an older
guideline version are imported as made under it, recorded with who vouched for them."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from annotation.models import Annotation
from guidelines.services import guideline_version_create, guideline_version_publish
from tests.factories import label_mask, png_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def newer_guideline(world, tmp_path):
    """The world after v2 is published (the annotator acknowledged only v1), and a folder
    holding one mask for each of the two images."""
    draft = guideline_version_create(
        actor=world.users["manager"], project=world.project, title="Nuclei v2",
        body="Split touching nuclei.", rules={"min_area_px": 10}, changelog="v2",
    )
    v2 = guideline_version_publish(actor=world.users["manager"], version=draft)
    folder = tmp_path / "masks"
    folder.mkdir()
    for image in world.images:
        stem = image.original_name.rsplit(".", 1)[0]
        (folder / f"{stem}_masks.png").write_bytes(png_bytes(label_mask(cells=3)))
    return world, v2, folder


def _import(folder, *args) -> str:
    out = StringIO()
    call_command(
        "import_annotations", str(folder), "--project", "world", "--annotator", "annotator",
        "--no-progress", *args, stdout=out, stderr=StringIO(),
    )
    return out.getvalue()


def test_without_the_option_the_current_version_must_be_acknowledged(newer_guideline):
    world, v2, folder = newer_guideline
    with pytest.raises(CommandError, match="has not acknowledged guideline version 2"):
        _import(folder)
    assert Annotation.objects.count() == 0


def test_a_manager_imports_them_under_the_version_they_were_made_with(newer_guideline):
    world, v2, folder = newer_guideline
    out = _import(folder, "--guideline-version", "1", "--manager", "manager")
    assert "importing under guideline version 1 (current: 2), vouched for by manager" in out
    assert "imported 2, skipped 0, failed 0" in out
    rows = list(Annotation.objects.order_by("assignment__image_id"))
    assert [a.guideline_version.version for a in rows] == [1, 1]
    assert [a.created_by.username for a in rows] == ["annotator", "annotator"]
    assert {a.source for a in rows} == {"imported"}
    assert rows[0].import_report["guideline"] == {
        "version": 1, "current_version": 2, "vouched_by": "manager",
        "note": "imported under the guideline version the masks were made with",
    }
    # Over the API the version is what a QA lead filters and reads.
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(world.users["qa_lead"])
    listed = client.get("/api/v1/projects/world/annotations/?guideline_version=1").json()
    assert listed["count"] == 2
    assert {r["guideline_version"] for r in listed["results"]} == {1}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--guideline-version", "1"], "--guideline-version needs --manager USER"),
        (["--manager", "manager"], "--manager is only needed with --guideline-version"),
        (["--guideline-version", "1", "--manager", "qa_lead"], "this needs manager"),
        (["--guideline-version", "1", "--manager", "ghost"], "no active user 'ghost'"),
        (["--guideline-version", "7", "--manager", "manager"],
         "no published guideline version 7; published versions: 1, 2"),
    ],
    ids=["no-manager", "manager-alone", "not-a-manager", "unknown-user", "unknown-version"],
)
def test_refusals_name_the_problem_and_import_nothing(newer_guideline, args, message):
    world, v2, folder = newer_guideline
    with pytest.raises(CommandError, match=message):
        _import(folder, *args)
    assert Annotation.objects.count() == 0


def test_a_draft_version_cannot_be_vouched_for(newer_guideline):
    world, v2, folder = newer_guideline
    guideline_version_create(
        actor=world.users["manager"], project=world.project, title="v3 draft", body="...",
        rules={}, changelog="",
    )
    with pytest.raises(CommandError, match="no published guideline version 3"):
        _import(folder, "--guideline-version", "3", "--manager", "manager")
    assert Annotation.objects.count() == 0
