"""Submitting masks over the API: revisions, idempotency, optimistic concurrency, blind labeling."""

import io

import numpy as np
import pytest
from PIL import Image as PILImage

from annotation.models import Annotation, Assignment
from tests.api.uploads import stored_files, upload, url
from tests.factories import label_mask, png_bytes

pytestmark = pytest.mark.django_db


def submit(client, world, user="annotator", *, cells=2, headers=None, **fields):
    client.force_authenticate(world.users[user])
    data = {"assignment": world.assignments[user].pk,
            "mask": upload("mask.png", png_bytes(label_mask(cells=cells))), **fields}
    return client.post(url("world", "annotations"), data, format="multipart", headers=headers or {})


def test_submit_stores_revision_one_and_marks_the_assignment_submitted(world, api_client, media_root):
    response = submit(api_client, world, cells=3, time_spent_s=42.5)
    assert response.status_code == 201
    body = response.json()
    assert (body["revision"], body["instance_count"], body["height"], body["width"]) == (1, 3, 24, 32)
    assert (body["guideline_version"], body["annotator"], body["source"]) == (1, "annotator", "manual")
    assert body["time_spent_s"] == 42.5
    assert response["ETag"] == '"1"'
    assignment = Assignment.objects.get(pk=world.assignments["annotator"].pk)
    assert assignment.status == "submitted"
    assert assignment.submitted_at is not None
    annotation = Annotation.objects.get()
    assert annotation.mask.name.startswith(f"projects/{world.project.pk}/masks/")
    assert stored_files(media_root).count(annotation.mask.name) == 1


def test_mask_download_returns_the_submitted_labels(world, api_client):
    created = submit(api_client, world, cells=5).json()
    response = api_client.get(url("world", "annotations", created["id"], "mask"))
    assert response.status_code == 200
    labels = np.asarray(PILImage.open(io.BytesIO(b"".join(response.streaming_content))))
    np.testing.assert_array_equal(labels, label_mask(cells=5))


def test_same_idempotency_key_twice_gives_one_annotation(world, api_client):
    first = submit(api_client, world, headers={"Idempotency-Key": "k-1"})
    second = submit(api_client, world, headers={"Idempotency-Key": "k-1"})
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    assert Annotation.objects.count() == 1


def test_idempotency_key_reused_for_other_content_is_a_conflict(world, api_client):
    submit(api_client, world, cells=2, headers={"Idempotency-Key": "k-1"})
    response = submit(api_client, world, cells=3, headers={"Idempotency-Key": "k-1"}, base_revision=1)
    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_reused"
    assert Annotation.objects.count() == 1


def test_edit_without_base_revision_is_refused(world, api_client):
    submit(api_client, world)
    response = submit(api_client, world, cells=3)
    assert response.status_code == 409
    assert response.json()["code"] == "revision_required"
    assert "base_revision=1" in response.json()["base_revision"][0]
    assert Annotation.objects.count() == 1


def test_edit_creates_a_new_revision_and_keeps_the_old(world, api_client):
    submit(api_client, world, cells=2)
    response = submit(api_client, world, cells=3, base_revision=1)
    assert response.status_code == 201
    assert response.json()["revision"] == 2
    rows = list(Annotation.objects.order_by("revision").values_list("revision", "instance_count"))
    assert rows == [(1, 2), (2, 3)]


def test_stale_base_revision_is_409(world, api_client):
    submit(api_client, world, cells=2)
    submit(api_client, world, cells=3, base_revision=1)
    response = submit(api_client, world, cells=4, base_revision=1)
    assert response.status_code == 409
    assert response.json()["code"] == "stale_revision"
    assert "latest revision is 2" in response.json()["base_revision"][0]
    assert Annotation.objects.count() == 2


def test_stale_if_match_is_412_and_fresh_if_match_succeeds(world, api_client):
    submit(api_client, world, cells=2)
    submit(api_client, world, cells=3, base_revision=1)
    stale = submit(api_client, world, cells=4, headers={"If-Match": '"1"'})
    assert stale.status_code == 412
    assert stale.json()["code"] == "stale_revision"
    fresh = submit(api_client, world, cells=4, headers={"If-Match": '"2"'})
    assert fresh.status_code == 201
    assert fresh.json()["revision"] == 3
    assert fresh["ETag"] == '"3"'


def test_annotators_never_see_another_mask_before_or_after_submitting_their_own(world, api_client):
    theirs = submit(api_client, world, "annotator").json()
    api_client.force_authenticate(world.users["annotator2"])
    assert api_client.get(url("world", "annotations", theirs["id"])).status_code == 404
    assert api_client.get(url("world", "annotations", theirs["id"], "mask")).status_code == 404
    assert api_client.get(url("world", "annotations")).json()["count"] == 0
    assert api_client.get(url("world", "annotations") + f"?image={world.images[0].pk}").json()["count"] == 0

    # Blind labelling holds after submitting too (else a peer's mask could be resubmitted).
    submit(api_client, world, "annotator2")
    api_client.force_authenticate(world.users["annotator2"])
    assert api_client.get(url("world", "annotations", theirs["id"], "mask")).status_code == 404
    listed = api_client.get(url("world", "annotations")).json()["results"]
    assert sorted(a["annotator"] for a in listed) == ["annotator2"]


def test_qa_lead_sees_every_mask(world, api_client):
    theirs = submit(api_client, world, "annotator").json()
    api_client.force_authenticate(world.users["qa_lead"])
    assert api_client.get(url("world", "annotations", theirs["id"], "mask")).status_code == 200


def test_annotators_see_only_their_own_assignments(world, api_client):
    api_client.force_authenticate(world.users["annotator"])
    listed = api_client.get(url("world", "assignments")).json()["results"]
    assert [a["id"] for a in listed] == [world.assignments["annotator"].pk]
    other = world.assignments["annotator2"].pk
    assert api_client.get(url("world", "assignments", other)).status_code == 404
    response = api_client.post(
        url("world", "annotations"),
        {"assignment": other, "mask": upload("m.png", png_bytes(label_mask()))}, format="multipart",
    )
    assert response.status_code == 404
    assert Annotation.objects.count() == 0


def test_next_and_skip_over_the_api(world, api_client):
    api_client.force_authenticate(world.users["annotator"])
    taken = api_client.post(url("world", "assignments", "next"))
    assert taken.status_code == 200
    assert taken.json()["id"] == world.assignments["annotator"].pk
    assert taken.json()["status"] == "in_progress"
    held = api_client.post(url("world", "assignments", "next"))  # the held lease again
    assert (held.status_code, held.json()["id"]) == (200, taken.json()["id"])
    skipped = api_client.post(url("world", "assignments", taken.json()["id"], "skip"), {"reason": "blurry"})
    assert skipped.json()["status"] == "skipped"
    assert skipped.json()["skip_reason"] == "blurry"
    assert api_client.post(url("world", "assignments", "next")).status_code == 204
    refused = submit(api_client, world)
    assert refused.status_code == 409
    assert Annotation.objects.count() == 0


def test_mask_over_the_byte_cap_is_refused_before_reading(world, api_client, settings):
    settings.CELLCURATE_MAX_IMAGE_BYTES = 50
    response = submit(api_client, world)
    assert response.status_code == 400
    assert "over the 50-byte limit" in response.json()["mask"][0]
    assert Annotation.objects.count() == 0
