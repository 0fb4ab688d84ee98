"""Guideline use cases: drafts, publishing (retiring the previous), acknowledgements."""

import pytest

from config.errors import InvalidInput, PermissionDenied
from guidelines.models import Acknowledgement, GuidelineVersion
from guidelines.services import (
    acknowledgement_create,
    guideline_version_create,
    guideline_version_publish,
    guideline_version_update,
)
from tests.api.uploads import url

pytestmark = pytest.mark.django_db


def test_versions_are_numbered_and_publishing_retires_the_previous(world):
    manager = world.users["manager"]
    v2 = guideline_version_create(actor=manager, project=world.project, title=" v2 ", body="b",
                                  rules={"max_instances": 500}, changelog="split rule")
    v3 = guideline_version_create(actor=manager, project=world.project, title="v3", body="c")
    assert (v2.version, v3.version, v2.title, v2.status) == (2, 3, "v2", "draft")
    guideline_version_publish(actor=manager, version=v2)
    statuses = dict(GuidelineVersion.objects.filter(project=world.project).values_list("version", "status"))
    assert statuses == {1: "retired", 2: "published", 3: "draft"}
    v2.refresh_from_db()
    assert v2.published_by == manager
    assert v2.published_at is not None


def test_service_refuses_to_edit_a_published_version(world):
    with pytest.raises(InvalidInput, match="is published and cannot be changed") as info:
        guideline_version_update(actor=world.users["manager"], version=world.guideline, body="x")
    assert info.value.field == "status"
    world.guideline.refresh_from_db()
    assert world.guideline.body.startswith("Outline every nucleus")


def test_drafts_can_be_edited_by_managers_only(world):
    draft = guideline_version_create(actor=world.users["manager"], project=world.project, title="d")
    updated = guideline_version_update(actor=world.users["manager"], version=draft, body="new body")
    assert updated.body == "new body"
    with pytest.raises(PermissionDenied):
        guideline_version_update(actor=world.users["qa_lead"], version=draft, body="sneaky")
    assert GuidelineVersion.objects.get(pk=draft.pk).body == "new body"


@pytest.mark.parametrize(
    ("rules", "message"),
    [([1, 2], "rules must be a JSON object, got list"), ("x", "rules must be a JSON object, got str")],
)
def test_rules_must_be_a_json_object(world, rules, message):
    with pytest.raises(InvalidInput, match=message):
        guideline_version_create(actor=world.users["manager"], project=world.project, title="t", rules=rules)


def test_publishing_needs_a_body(world):
    draft = guideline_version_create(actor=world.users["manager"], project=world.project, title="d")
    with pytest.raises(InvalidInput, match="needs a body"):
        guideline_version_publish(actor=world.users["manager"], version=draft)
    assert GuidelineVersion.objects.get(pk=draft.pk).status == "draft"


def test_acknowledging_twice_keeps_one_row_and_drafts_cannot_be_acknowledged(world):
    qa = world.users["qa_lead"]
    first, created = acknowledgement_create(actor=qa, version=world.guideline)
    again, created_again = acknowledgement_create(actor=qa, version=world.guideline)
    assert (created, created_again, first.pk) == (True, False, again.pk)
    draft = guideline_version_create(actor=world.users["manager"], project=world.project, title="d")
    with pytest.raises(InvalidInput, match="only the published version can be acknowledged"):
        acknowledgement_create(actor=qa, version=draft)
    assert Acknowledgement.objects.filter(user=qa).count() == 1


def test_guideline_api_create_edit_publish_acknowledge(world, api_client):
    api_client.force_authenticate(world.users["manager"])
    created = api_client.post(url("world", "guidelines"),
                              {"title": "v2", "body": "Body", "rules": {"min_area_px": 12}}, format="json")
    assert created.status_code == 201
    assert (created.json()["version"], created.json()["status"]) == (2, "draft")
    edited = api_client.patch(url("world", "guidelines", 2), {"changelog": "bigger cells"}, format="json")
    assert edited.json()["changelog"] == "bigger cells"
    published = api_client.post(url("world", "guidelines", 2, "publish"))
    assert published.json()["status"] == "published"
    api_client.force_authenticate(world.users["annotator"])
    listing = api_client.get(url("world", "guidelines") + "?status=published").json()["results"]
    assert [(g["version"], g["acknowledged"]) for g in listing] == [(2, False)]
    ack = api_client.post(url("world", "guidelines", 2, "acknowledge"))
    assert (ack.status_code, ack.json()["version"], ack.json()["username"]) == (201, 2, "annotator")
    assert api_client.get(url("world", "guidelines", 2)).json()["acknowledged"] is True
