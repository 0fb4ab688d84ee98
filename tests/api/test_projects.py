"""Creating projects and managing members over the API."""

import pytest
from django.contrib.auth.models import Permission

from annotation.models import Membership, Project
from tests.api.uploads import url
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_creating_a_project_needs_the_permission_and_makes_the_creator_manager(api_client):
    user = UserFactory(username="lead")
    api_client.force_authenticate(user)
    payload = {"name": "Plate screen", "slug": "plate-screen", "cell_classes": ["nucleus", "mitotic"],
               "annotators_per_image": 3, "gold_share": 0.1}
    refused = api_client.post("/api/v1/projects/", payload, format="json")
    assert refused.status_code == 403
    assert Project.objects.count() == 0

    user.user_permissions.add(Permission.objects.get(codename="add_project"))
    user = type(user).objects.get(pk=user.pk)
    api_client.force_authenticate(user)
    created = api_client.post("/api/v1/projects/", payload, format="json")
    assert created.status_code == 201
    assert created.json()["role"] == "manager"
    assert (created.json()["annotators_per_image"], created.json()["cell_classes"]) == (3, ["nucleus", "mitotic"])
    assert Membership.objects.get(project__slug="plate-screen").user == user


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({"annotators_per_image": 0}, "annotators_per_image", "must be at least 1"),
        ({"gold_share": 1.5}, "gold_share", "within 0..1"),
        ({"slug": "Bad Slug"}, "slug", "lower-case letters"),
        ({"cell_classes": ["a", "a"]}, "cell_classes", "repeats a"),
    ],
)
def test_project_settings_are_validated(api_client, payload, field, message):
    user = UserFactory()
    user.user_permissions.add(Permission.objects.get(codename="add_project"))
    api_client.force_authenticate(type(user).objects.get(pk=user.pk))
    response = api_client.post("/api/v1/projects/", {"name": "P", "slug": "p", **payload}, format="json")
    assert response.status_code == 400
    assert message in response.json()[field][0]
    assert Project.objects.count() == 0


def test_manager_adds_changes_and_removes_members_but_not_the_last_manager(world, api_client):
    api_client.force_authenticate(world.users["manager"])
    UserFactory(username="newbie")
    added = api_client.post(url("world", "members"), {"username": "newbie", "role": "annotator"}, format="json")
    assert (added.status_code, added.json()["role"]) == (201, "annotator")
    again = api_client.post(url("world", "members"), {"username": "newbie", "role": "qa_lead"}, format="json")
    assert again.status_code == 409
    assert "already a member" in again.json()["user"][0]
    unknown = api_client.post(url("world", "members"), {"username": "ghost", "role": "annotator"}, format="json")
    assert (unknown.status_code, unknown.json()["username"]) == (400, ["no active user 'ghost'"])
    changed = api_client.patch(url("world", "members", added.json()["id"]), {"role": "qa_lead"}, format="json")
    assert changed.json()["role"] == "qa_lead"
    assert api_client.delete(url("world", "members", added.json()["id"])).status_code == 204
    me = Membership.objects.get(user=world.users["manager"])
    last = api_client.delete(url("world", "members", me.pk))
    assert last.status_code == 409
    assert "at least one manager" in last.json()["role"][0]
    assert Membership.objects.filter(project=world.project, role="manager").count() == 1
    filtered = api_client.get(url("world", "members") + "?role=annotator").json()["results"]
    assert sorted(m["username"] for m in filtered) == ["annotator", "annotator2"]
