"""The permission matrix: every role and a non-member x every endpoint family x read/write.

Each row asserts the status and, for refused writes, that nothing changed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from annotation.models import Annotation, Assignment, Image, Job, Membership
from guidelines.models import Acknowledgement, GuidelineVersion
from tests.api.uploads import stored_files, upload, url
from tests.factories import JobFactory, UserFactory, label_mask, png_bytes, synthetic_image

pytestmark = pytest.mark.django_db

ROLES = ["manager", "qa_lead", "ml_engineer", "annotator", "non_member"]


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: Callable
    expected: dict
    data: Callable | None = None
    multipart: bool = False
    snapshot: Callable | None = None


def members_only(ok: int) -> dict:
    return {"manager": ok, "qa_lead": ok, "ml_engineer": ok, "annotator": ok, "non_member": 404}


def manager_only(ok: int) -> dict:
    return {"manager": ok, "qa_lead": 403, "ml_engineer": 403, "annotator": 403, "non_member": 404}


def _project_snapshot(w):
    w.project.refresh_from_db()
    return (w.project.name, w.project.description, w.project.annotators_per_image)


def _job_for(w):
    return JobFactory(project=w.project, created_by=w.users["manager"]).pk


CASES = [
    Case("project-read", "get", lambda w: url("world"), members_only(200)),
    Case("project-write", "patch", lambda w: url("world"), manager_only(200),
         data=lambda w: {"description": "changed"}, snapshot=_project_snapshot),
    Case("members-read", "get", lambda w: url("world", "members"), members_only(200)),
    Case("members-write", "post", lambda w: url("world", "members"), manager_only(201),
         data=lambda w: {"username": UserFactory(username="newbie").username, "role": "annotator"},
         snapshot=lambda w: sorted(Membership.objects.values_list("user__username", "role"))),
    Case("member-role-write", "patch",
         lambda w: url("world", "members", Membership.objects.get(user=w.users["ml_engineer"]).pk),
         manager_only(200), data=lambda w: {"role": "qa_lead"},
         snapshot=lambda w: sorted(Membership.objects.values_list("user__username", "role"))),
    Case("images-read", "get", lambda w: url("world", "images"), members_only(200)),
    Case("images-write", "post", lambda w: url("world", "images"), manager_only(201),
         data=lambda w: {"file": [upload("new.png", png_bytes(synthetic_image(12345)))]},
         multipart=True, snapshot=lambda w: Image.objects.count()),
    Case("assignments-read", "get", lambda w: url("world", "assignments"), members_only(200)),
    Case("assignments-generate", "post", lambda w: url("world", "assignments", "generate"),
         manager_only(202), snapshot=lambda w: (Job.objects.count(), Assignment.objects.count())),
    Case("assignments-next", "post", lambda w: url("world", "assignments", "next"),
         {"manager": 403, "qa_lead": 403, "ml_engineer": 403, "annotator": 200, "non_member": 404},
         snapshot=lambda w: sorted(Assignment.objects.values_list("id", "status"))),
    Case("annotations-read", "get", lambda w: url("world", "annotations"), members_only(200)),
    Case("annotations-write", "post", lambda w: url("world", "annotations"),
         {"manager": 403, "qa_lead": 403, "ml_engineer": 403, "annotator": 201, "non_member": 404},
         data=lambda w: {"assignment": w.assignments["annotator"].pk,
                         "mask": upload("m.png", png_bytes(label_mask()))},
         multipart=True, snapshot=lambda w: Annotation.objects.count()),
    Case("guidelines-read", "get", lambda w: url("world", "guidelines"), members_only(200)),
    Case("guidelines-write", "post", lambda w: url("world", "guidelines"), manager_only(201),
         data=lambda w: {"title": "v2", "body": "More rules."},
         snapshot=lambda w: GuidelineVersion.objects.count()),
    Case("guideline-publish", "post", lambda w: url("world", "guidelines", 1, "publish"),
         {"manager": 400, "qa_lead": 403, "ml_engineer": 403, "annotator": 403, "non_member": 404},
         snapshot=lambda w: sorted(GuidelineVersion.objects.values_list("version", "status"))),
    Case("guideline-acknowledge", "post", lambda w: url("world", "guidelines", 1, "acknowledge"),
         {"manager": 201, "qa_lead": 201, "ml_engineer": 201, "annotator": 200, "non_member": 404},
         snapshot=lambda w: Acknowledgement.objects.count()),
    Case("jobs-read", "get", lambda w: f"/api/v1/jobs/{_job_for(w)}/",
         {"manager": 200, "qa_lead": 200, "ml_engineer": 200, "annotator": 404, "non_member": 404}),
    Case("jobs-write", "post", lambda w: "/api/v1/jobs/",
         {"manager": 405, "qa_lead": 405, "ml_engineer": 405, "annotator": 405, "non_member": 405},
         data=lambda w: {"kind": "x"}, snapshot=lambda w: Job.objects.count()),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_permission_matrix(world, api_client, media_root, case, role):
    path = case.path(world)
    data = case.data(world) if case.data else None
    before = case.snapshot(world) if case.snapshot else None
    files_before = stored_files(media_root)
    api_client.force_authenticate(world.users[role])
    kwargs = {"format": "multipart" if case.multipart else "json"}
    response = getattr(api_client, case.method)(path, data, **kwargs)
    expected = case.expected[role]
    assert response.status_code == expected, response.content
    if expected >= 400 and case.snapshot is not None:
        assert case.snapshot(world) == before
        assert stored_files(media_root) == files_before
    if expected == 404:
        assert "world" not in str(response.json().get("results", ""))


def test_anonymous_requests_are_refused(world, api_client):
    response = api_client.get(url("world"))
    assert response.status_code == 401
    assert response.json()["detail"] == "Authentication credentials were not provided."


def test_token_auth_reads_and_session_writes_need_csrf(world):
    from rest_framework.test import APIClient

    from annotation.services.tokens import token_create

    token = token_create(user=world.users["qa_lead"], name="test")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.get(url("world")).json()["slug"] == "world"

    session = APIClient(enforce_csrf_checks=True)
    assert session.login(username="manager", password="factory-password-1")
    response = session.patch(url("world"), {"description": "csrf-less"}, format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    world.project.refresh_from_db()
    assert world.project.description == ""


def test_non_member_project_list_is_empty(world, api_client):
    api_client.force_authenticate(world.users["non_member"])
    response = api_client.get("/api/v1/projects/")
    assert response.status_code == 200
    assert response.json()["count"] == 0


def test_member_project_list_shows_role(world, api_client):
    api_client.force_authenticate(world.users["qa_lead"])
    response = api_client.get("/api/v1/projects/")
    assert [(p["slug"], p["role"]) for p in response.json()["results"]] == [("world", "qa_lead")]
