"""``?annotator=`` takes the user name the API shows, and ``?latest=true`` keeps the newest
revision of each assignment (what a QA lead reads)."""

from __future__ import annotations

import pytest

from tests.api.uploads import url
from tests.factories import AnnotationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def revised(world):
    """annotator: revisions 1, 2, 3 of one assignment; annotator2: revision 1 of theirs."""
    mine, theirs = world.assignments["annotator"], world.assignments["annotator2"]
    rows = {
        (name, r): AnnotationFactory(assignment=a, revision=r, created_by=a.annotator)
        for name, a, revisions in (("annotator", mine, (1, 2, 3)), ("annotator2", theirs, (1,)))
        for r in revisions
    }
    return world, rows


def _ids(response) -> list[int]:
    assert response.status_code == 200, response.json()
    return [row["id"] for row in response.json()["results"]]


def test_annotator_filter_takes_the_user_name(revised, api_client):
    world, rows = revised
    api_client.force_authenticate(world.users["qa_lead"])
    got = _ids(api_client.get(url("world", "annotations") + "?annotator=annotator2"))
    assert got == [rows[("annotator2", 1)].pk]
    listed = api_client.get(url("world", "annotations") + "?annotator=annotator").json()
    assert {row["annotator"] for row in listed["results"]} == {"annotator"}
    assert listed["count"] == 3
    # The same name works on assignments.
    assignments = api_client.get(url("world", "assignments") + "?annotator=annotator2").json()
    assert [a["id"] for a in assignments["results"]] == [world.assignments["annotator2"].pk]
    assert assignments["results"][0]["annotator"] == "annotator2"


def test_annotator_filter_still_takes_a_user_id(revised, api_client):
    world, rows = revised
    api_client.force_authenticate(world.users["qa_lead"])
    user_id = world.users["annotator2"].pk
    assert _ids(api_client.get(url("world", "annotations") + f"?annotator={user_id}")) == [
        rows[("annotator2", 1)].pk
    ]


def test_unknown_annotator_name_is_a_400_naming_it(revised, api_client):
    world, _ = revised
    api_client.force_authenticate(world.users["qa_lead"])
    for resource in ("annotations", "assignments"):
        response = api_client.get(url("world", resource) + "?annotator=nobody")
        assert response.status_code == 400
        assert response.json()["annotator"] == ["no annotator named 'nobody' in project 'world'"]
    # A user of no concern to this project is not findable through it either.
    response = api_client.get(url("world", "annotations") + "?annotator=non_member")
    assert response.status_code == 400


def test_latest_keeps_the_newest_revision_per_assignment(revised, api_client):
    world, rows = revised
    api_client.force_authenticate(world.users["qa_lead"])
    assert _ids(api_client.get(url("world", "annotations") + "?latest=true")) == [
        rows[("annotator", 3)].pk, rows[("annotator2", 1)].pk,
    ]
    assert len(_ids(api_client.get(url("world", "annotations") + "?latest=false"))) == 4
    assert len(_ids(api_client.get(url("world", "annotations")))) == 4
    both = api_client.get(url("world", "annotations") + "?latest=true&annotator=annotator").json()
    assert [(r["id"], r["revision"]) for r in both["results"]] == [(rows[("annotator", 3)].pk, 3)]
    bad = api_client.get(url("world", "annotations") + "?latest=maybe")
    assert bad.status_code == 400 and "latest" in bad.json()


def test_latest_keeps_blind_labelling(revised, api_client):
    """annotator2 has not submitted: they see only their own work, latest or not."""
    world, rows = revised
    world.assignments["annotator2"].status = "pending"
    world.assignments["annotator2"].save()
    api_client.force_authenticate(world.users["annotator2"])
    assert _ids(api_client.get(url("world", "annotations") + "?latest=true")) == [
        rows[("annotator2", 1)].pk
    ]
    assert _ids(
        api_client.get(url("world", "annotations") + "?latest=true&annotator=annotator")
    ) == []
