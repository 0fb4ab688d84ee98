"""Blind labelling holds on every path, before and after submission; gold is blind to annotators."""

from __future__ import annotations

import pytest

from annotation.models import Annotation, Image
from tests.api.uploads import upload, url
from tests.factories import label_mask, png_bytes

pytestmark = pytest.mark.django_db


def _submit(client, world, user: str, *, cells: int) -> dict:
    client.force_authenticate(world.users[user])
    response = client.post(
        url("world", "annotations"),
        {"assignment": world.assignments[user].pk,
         "mask": upload("mask.png", png_bytes(label_mask(cells=cells)))},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    return response.json()


def _peer_paths(annotation_id: int) -> list[str]:
    return [
        url("world", "annotations", annotation_id),
        url("world", "annotations", annotation_id, "mask"),
        url("world", "annotations", annotation_id, "mask") + "?format=png",
        url("world", "annotations", annotation_id, "mask") + "?format=coco",
    ]


def _visible_ids(client, *query: str) -> list[int]:
    response = client.get(url("world", "annotations") + "".join(query))
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def test_annotator_never_reads_a_peers_mask_before_or_after_submitting(world, api_client):
    peer = _submit(api_client, world, "annotator2", cells=3)

    # Before annotator has submitted: the peer's annotation does not exist for them.
    api_client.force_authenticate(world.users["annotator"])
    for path in _peer_paths(peer["id"]):
        assert api_client.get(path).status_code == 404, path
    assert _visible_ids(api_client) == []
    image_id = world.assignments["annotator"].image_id
    assert _visible_ids(api_client, f"?image={image_id}") == []

    # After submitting their own mask of the same image: still 404, still only their own.
    own = _submit(api_client, world, "annotator", cells=1)
    api_client.force_authenticate(world.users["annotator"])
    for path in _peer_paths(peer["id"]):
        response = api_client.get(path)
        assert response.status_code == 404, path
        assert response.json() == {
            "detail": f"annotation {peer['id']} not found", "code": "not_found"
        }
    assert _visible_ids(api_client) == [own["id"]]
    assert _visible_ids(api_client, f"?image={image_id}") == [own["id"]]
    assert _visible_ids(api_client, f"?annotator={world.users['annotator2'].pk}") == []
    assert api_client.get(url("world", "annotations", own["id"], "mask")).status_code == 200

    # Oversight roles read both masks.
    for role in ("qa_lead", "ml_engineer", "manager"):
        api_client.force_authenticate(world.users[role])
        assert sorted(_visible_ids(api_client)) == sorted([own["id"], peer["id"]]), role
        assert api_client.get(url("world", "annotations", peer["id"], "mask")).status_code == 200
    assert Annotation.objects.count() == 2


@pytest.fixture
def gold_world(world):
    gold, plain = world.images
    Image.objects.filter(pk=gold.pk).update(is_gold=True)
    return world, gold, plain


def test_gold_is_invisible_to_annotators(gold_world, api_client):
    world, gold, _ = gold_world
    assert world.assignments["annotator"].image_id == gold.pk
    api_client.force_authenticate(world.users["annotator"])

    listed = api_client.get(url("world", "images")).json()["results"]
    assert [row["id"] for row in listed] == [gold.pk]
    assert "is_gold" not in listed[0]
    assert "is_gold" not in api_client.get(url("world", "images", gold.pk)).json()
    assignment = api_client.get(url("world", "assignments", world.assignments["annotator"].pk))
    assert "is_gold" not in assignment.json()["image"]
    assert all("is_gold" not in row["image"]
               for row in api_client.get(url("world", "assignments")).json()["results"])

    # Filtering by gold is refused like any unknown filter, whatever the value.
    for value in ("true", "false"):
        response = api_client.get(url("world", "images") + f"?is_gold={value}")
        assert response.status_code == 400
        assert response.json() == {"is_gold": ["unknown filter is_gold"], "code": "invalid"}


def test_omitted_gold_filter_does_not_filter(gold_world, api_client):
    world, gold, plain = gold_world
    for role in ("manager", "qa_lead", "ml_engineer"):
        api_client.force_authenticate(world.users[role])
        rows = api_client.get(url("world", "images")).json()["results"]
        assert [(r["id"], r["is_gold"]) for r in rows] == [(gold.pk, True), (plain.pk, False)]
        only_gold = api_client.get(url("world", "images") + "?is_gold=true").json()["results"]
        assert [r["id"] for r in only_gold] == [gold.pk]
        not_gold = api_client.get(url("world", "images") + "?is_gold=false").json()["results"]
        assert [r["id"] for r in not_gold] == [plain.pk]
        assert api_client.get(url("world", "images", gold.pk)).json()["is_gold"] is True
