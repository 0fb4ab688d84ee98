"""Bad input is a 400 whose message names the problem, and leaves no row or file behind."""

import numpy as np
import pytest

from annotation.models import Annotation, Image
from guidelines.models import Acknowledgement, GuidelineVersion
from tests.api.uploads import png_claiming, stored_files, upload, url
from tests.factories import label_mask, png_bytes, synthetic_image, tiff_bytes

pytestmark = pytest.mark.django_db


def _truncated_tiff() -> bytes:
    whole = tiff_bytes(np.ones((64, 64), dtype=np.uint16))
    return whole[: len(whole) // 2]


BAD_IMAGES = [
    pytest.param("empty.tif", b"", "empty (0 bytes)", id="zero-bytes"),
    pytest.param("cut.tif", _truncated_tiff(), "Truncated TIFF", id="truncated-tiff"),
    pytest.param("bomb.png", png_claiming(100_000, 100_000), "100000 x 100000", id="png-pixel-bomb"),
    pytest.param(
        "vector.tif", b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>',
        "SVG document", id="svg-named-tif",
    ),
    pytest.param(
        "page.tif", b"<!DOCTYPE html><html><body>not an image</body></html>", "HTML page",
        id="html-named-tif",
    ),
]


@pytest.mark.parametrize(("name", "data", "expected"), BAD_IMAGES)
def test_bad_image_upload_is_refused_and_leaves_nothing(world, api_client, media_root, name, data, expected):
    before_files = stored_files(media_root)
    before_rows = Image.objects.count()
    api_client.force_authenticate(world.users["manager"])
    response = api_client.post(
        url("world", "images"), {"file": [upload(name, data)]}, format="multipart"
    )
    assert response.status_code == 400
    message = " ".join(response.json()["file"])
    assert expected in message
    assert name in message
    assert Image.objects.count() == before_rows
    assert stored_files(media_root) == before_files


def test_one_bad_file_keeps_the_good_ones_and_reports_each_file(world, api_client, media_root):
    before_files = stored_files(media_root)
    api_client.force_authenticate(world.users["manager"])
    good = upload("good.png", png_bytes(synthetic_image(999)))
    also_good = upload("also.png", png_bytes(synthetic_image(998)))
    response = api_client.post(
        url("world", "images"),
        {"file": [good, upload("bad.tif", b""), also_good, upload("page.tif", b"<html></html>")]},
        format="multipart",
    )
    assert response.status_code == 207
    body = response.json()
    assert [entry["file"] for entry in body] == ["good.png", "bad.tif", "also.png", "page.tif"]
    assert [entry["created"] for entry in body] == [True, False, True, False]
    assert body[1]["image"] is None and "bad.tif: the file is empty (0 bytes)" in body[1]["error"]
    assert body[3]["image"] is None and "page.tif" in body[3]["error"]
    assert "error" not in body[0] and body[0]["image"]["original_name"] == "good.png"
    kept = Image.objects.filter(project=world.project).exclude(pk__in=[i.pk for i in world.images])
    assert sorted(kept.values_list("original_name", flat=True)) == ["also.png", "good.png"]
    assert len(set(stored_files(media_root)) - set(before_files)) == 2


def test_a_batch_of_only_bad_files_is_a_400_naming_each(world, api_client, media_root):
    before_files = stored_files(media_root)
    api_client.force_authenticate(world.users["manager"])
    response = api_client.post(
        url("world", "images"), {"file": [upload("a.tif", b""), upload("b.tif", b"xx")]},
        format="multipart",
    )
    assert response.status_code == 400
    message = response.json()["file"][0]
    assert "a.tif: the file is empty" in message and "b.tif" in message
    assert Image.objects.filter(project=world.project).count() == 2
    assert stored_files(media_root) == before_files


def _submit(api_client, world, mask_bytes, *, user="annotator"):
    api_client.force_authenticate(world.users[user])
    return api_client.post(
        url("world", "annotations"),
        {"assignment": world.assignments[user].pk, "mask": upload("mask.png", mask_bytes)},
        format="multipart",
    )


BAD_MASKS = [
    pytest.param(png_bytes(label_mask(height=10, width=10)), "is 10 x 10 (H x W), but the image is 24 x 32", id="wrong-shape"),
    pytest.param(tiff_bytes(np.full((24, 32), 1.5, dtype=np.float32)), "float", id="float"),
    pytest.param(tiff_bytes(np.full((24, 32), -1, dtype=np.int16)), "negative", id="negative"),
    pytest.param(b"", "empty", id="empty"),
]


@pytest.mark.parametrize(("data", "expected"), BAD_MASKS)
def test_bad_mask_is_refused_and_leaves_nothing(world, api_client, media_root, data, expected):
    before_files = stored_files(media_root)
    response = _submit(api_client, world, data)
    assert response.status_code == 400
    message = " ".join(response.json()["mask"])
    assert expected in message
    assert Annotation.objects.count() == 0
    assert stored_files(media_root) == before_files
    world.assignments["annotator"].refresh_from_db()
    assert world.assignments["annotator"].status == "pending"


def test_submission_before_acknowledging_the_guideline_is_refused(world, api_client, media_root):
    Acknowledgement.objects.filter(user=world.users["annotator"]).delete()
    before_files = stored_files(media_root)
    response = _submit(api_client, world, png_bytes(label_mask()))
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "guideline_not_acknowledged"
    assert "acknowledge guideline version 1" in body["guideline"][0]
    assert Annotation.objects.count() == 0
    assert stored_files(media_root) == before_files


def test_submission_needs_the_current_version_acknowledged(world, api_client, media_root):
    from guidelines.services import guideline_version_create, guideline_version_publish

    v2 = guideline_version_create(
        actor=world.users["manager"], project=world.project, title="v2", body="Stricter."
    )
    guideline_version_publish(actor=world.users["manager"], version=v2)
    response = _submit(api_client, world, png_bytes(label_mask()))
    assert response.status_code == 400
    assert "acknowledge guideline version 2" in response.json()["guideline"][0]
    assert Annotation.objects.count() == 0


@pytest.mark.parametrize(
    "payload", [{"body": "rewritten"}, {"rules": {"min_area_px": 1}}, {"title": "new title"}]
)
def test_write_to_a_published_guideline_version_is_refused(world, api_client, payload):
    api_client.force_authenticate(world.users["manager"])
    response = api_client.patch(url("world", "guidelines", 1), payload, format="json")
    assert response.status_code == 400
    assert "is published and cannot be changed" in response.json()["status"][0]
    world.guideline.refresh_from_db()
    assert world.guideline.body == GuidelineVersion.objects.get(pk=world.guideline.pk).body
    assert world.guideline.rules == {"min_area_px": 10}
    assert world.guideline.title == "Guideline v1"


def test_unknown_and_read_only_fields_are_named(world, api_client):
    api_client.force_authenticate(world.users["manager"])
    response = api_client.patch(
        url("world"), {"name": "Renamed", "colour": "red", "slug": "other"}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {"colour": ["Unknown field."], "slug": ["This field is read-only."]}
    world.project.refresh_from_db()
    assert world.project.name != "Renamed"
    assert world.project.slug == "world"


def test_unknown_filter_is_refused_by_name(world, api_client):
    api_client.force_authenticate(world.users["qa_lead"])
    response = api_client.get(url("world", "images") + "?plate=P1&colour=red")
    assert response.status_code == 400
    assert response.json() == {"colour": ["Unknown field."]}


def test_allow_listed_filter_filters(world, api_client):
    Image.objects.filter(pk=world.images[0].pk).update(plate="P1")
    api_client.force_authenticate(world.users["qa_lead"])
    response = api_client.get(url("world", "images") + "?plate=P1")
    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [world.images[0].pk]
