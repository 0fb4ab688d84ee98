"""The workspace's endpoints: raw pixels in the real dtype, raw label images, drafts."""

import gzip

import numpy as np
import pytest

from annotation.models import AnnotationDraft, Image
from tests.api.uploads import stored_files, upload, url
from tests.factories import AnnotationFactory, ImageFactory, label_mask, png_bytes, tiff_bytes

pytestmark = pytest.mark.django_db


def raw(response) -> np.ndarray:
    dtype = np.dtype(response["X-Array-Dtype"]).newbyteorder("<")
    shape = tuple(int(v) for v in response["X-Array-Shape"].split(","))
    body = b"".join(response.streaming_content) if response.streaming else response.content
    if response.get("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    return np.frombuffer(body, dtype=dtype).reshape(shape)


def test_pixels_are_the_real_16bit_samples_planar_little_endian(world, api_client):
    image = world.images[0]
    api_client.force_authenticate(world.users["annotator"])
    response = api_client.get(url("world", "images", image.pk, "pixels"))
    assert response.status_code == 200
    assert response["X-Array-Dtype"] == "uint16" and response["X-Array-Shape"] == "1,24,32"
    assert "Content-Encoding" not in response  # samples are sent as they are
    from tests.factories import synthetic_image

    seed = int(image.original_name[3:-4])
    assert np.array_equal(raw(response)[0], synthetic_image(seed, height=24, width=32))


def test_pixels_of_a_three_channel_tiff_come_one_plane_per_channel(world, api_client):
    rng = np.random.default_rng(3)
    arr = rng.integers(0, 60000, size=(20, 30, 3), dtype=np.uint16)
    image = ImageFactory(project=world.project, content=tiff_bytes(arr, photometric="rgb"),
                         height=20, width=30, channels=3, format="tiff")
    image.assignments.create(annotator=world.users["annotator"])
    api_client.force_authenticate(world.users["annotator"])
    response = api_client.get(url("world", "images", image.pk, "pixels"))
    assert response["X-Array-Shape"] == "3,20,30"
    assert np.array_equal(raw(response), np.moveaxis(arr, -1, 0))


def test_pixels_follow_image_visibility(world, api_client):
    other = ImageFactory(project=world.project)   # assigned to nobody
    api_client.force_authenticate(world.users["annotator"])
    assert api_client.get(url("world", "images", other.pk, "pixels")).status_code == 404
    api_client.force_authenticate(world.users["non_member"])
    assert api_client.get(url("world", "images", world.images[0].pk, "pixels")).status_code == 404
    api_client.force_authenticate(world.users["qa_lead"])
    assert api_client.get(url("world", "images", other.pk, "pixels")).status_code == 200


def test_annotation_labels_are_raw_ids_gzipped_and_blind(world, api_client):
    annotation = AnnotationFactory(assignment=world.assignments["annotator"])
    api_client.force_authenticate(world.users["annotator"])
    response = api_client.get(
        url("world", "annotations", annotation.pk, "labels"), HTTP_ACCEPT_ENCODING="gzip"
    )
    assert response.status_code == 200 and response["Content-Encoding"] == "gzip"
    assert np.array_equal(raw(response)[0], label_mask(height=24, width=32))
    api_client.force_authenticate(world.users["annotator2"])  # has not submitted: blind
    assert api_client.get(url("world", "annotations", annotation.pk, "labels")).status_code == 404


def put_draft(client, world, labels, user="annotator", **fields):
    client.force_authenticate(world.users[user])
    data = {"labels": upload("draft.png", png_bytes(labels)), **fields}
    return client.put(url("world", "assignments", world.assignments[user].pk, "draft"), data,
                      format="multipart")


def test_draft_save_replace_read_and_discard(
    world, api_client, media_root, django_capture_on_commit_callbacks
):
    first = put_draft(api_client, world, label_mask(cells=2), state='{"timeSpentS": 12}')
    assert first.status_code == 200
    assert (first.json()["instance_count"], first.json()["saves"]) == (2, 1)
    with django_capture_on_commit_callbacks(execute=True):  # the replaced file is deleted
        second = put_draft(api_client, world, label_mask(cells=5), state='{"timeSpentS": 30}')
    assert (second.json()["instance_count"], second.json()["saves"]) == (5, 2)
    draft = AnnotationDraft.objects.get()
    assert draft.state == {"timeSpentS": 30} and draft.base_revision == 0
    assert [n for n in stored_files(media_root) if "/drafts/" in n] == [draft.labels.name]
    a = world.assignments["annotator"].pk
    labels = api_client.get(url("world", "assignments", a, "draft", "labels"))
    assert np.array_equal(raw(labels)[0], label_mask(cells=5))
    assert api_client.delete(url("world", "assignments", a, "draft")).status_code == 204
    assert not AnnotationDraft.objects.exists()
    assert api_client.get(url("world", "assignments", a, "draft")).status_code == 404


def test_draft_refuses_wrong_size_stale_revision_and_other_annotators(world, api_client):
    bad = put_draft(api_client, world, label_mask(height=10, width=10))
    assert bad.status_code == 400 and "labels" in bad.json()
    AnnotationFactory(assignment=world.assignments["annotator"])  # revision 1 exists now
    stale = put_draft(api_client, world, label_mask(), base_revision=0)
    assert stale.status_code == 409 and stale.json()["code"] == "stale_revision"
    assert put_draft(api_client, world, label_mask(), base_revision=1).status_code == 200
    api_client.force_authenticate(world.users["annotator2"])
    a = world.assignments["annotator"].pk
    assert api_client.get(url("world", "assignments", a, "draft")).status_code == 404
    assert AnnotationDraft.objects.get().base_revision == 1
    assert Image.objects.count() == 2


def test_draft_labels_come_as_the_stored_png_and_revalidate(world, api_client, media_root):
    import io

    from PIL import Image as PILImage

    assert put_draft(api_client, world, label_mask(cells=3)).status_code == 200
    a = world.assignments["annotator"].pk
    labels_url = url("world", "assignments", a, "draft", "labels")
    response = api_client.get(labels_url + "?encoding=png")
    assert response.status_code == 200 and response["X-Array-Encoding"] == "png"
    draft = AnnotationDraft.objects.get()
    with draft.labels.open("rb") as fh:
        assert response.content == fh.read()  # the stored file as it is, not re-encoded
    assert np.array_equal(np.asarray(PILImage.open(io.BytesIO(response.content))), label_mask(cells=3))
    again = api_client.get(labels_url + "?encoding=png", HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304
    # A new save changes the ETag: the old copy is no longer current.
    assert put_draft(api_client, world, label_mask(cells=4)).status_code == 200
    fresh = api_client.get(labels_url + "?encoding=png", HTTP_IF_NONE_MATCH=response["ETag"])
    assert fresh.status_code == 200 and fresh["ETag"] != response["ETag"]
    assert api_client.get(labels_url + "?encoding=jpeg").status_code == 400
