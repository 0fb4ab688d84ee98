"""The browsable API: every list page renders as HTML for every role, and ``/api/v1/`` is a
root that lists the resources (the pages' header links to it)."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from annotation.enums import Role
from tests.factories import AnnotationFactory, JobFactory

pytestmark = pytest.mark.django_db

LIST_PAGES = {
    "projects": "/api/v1/projects/",
    "members": "/api/v1/projects/world/members/",
    "images": "/api/v1/projects/world/images/",
    "assignments": "/api/v1/projects/world/assignments/",
    "annotations": "/api/v1/projects/world/annotations/",
    "guidelines": "/api/v1/projects/world/guidelines/",
    "jobs": "/api/v1/jobs/",
}
ROLES = [r.value for r in Role]


@pytest.fixture
def filled(world):
    """The world with one submitted annotation (its annotator's) and one job of the project."""
    AnnotationFactory(assignment=world.assignments["annotator"], created_by=world.users["annotator"])
    JobFactory(project=world.project, created_by=world.users["manager"])
    return world


def _html_client(user) -> Client:
    client = Client(HTTP_ACCEPT="text/html")
    client.force_login(user)
    return client


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("page", sorted(LIST_PAGES))
def test_list_page_renders_as_html_for_every_role(filled, role, page):
    response = _html_client(filled.users[role]).get(LIST_PAGES[page])
    assert response.status_code == 200, response.content[:2000]
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    # The browsable API's own page, with the JSON body shown in it.
    assert 'class="response-info"' in html
    assert "&quot;count&quot;: " in html and "&quot;results&quot;: [" in html


@pytest.mark.parametrize("role", ROLES)
def test_list_page_html_shows_the_same_rows_as_json(filled, role):
    """The HTML page is a view of the same data: the annotator sees only their own assignment."""
    client = _html_client(filled.users[role])
    json_count = client.get(LIST_PAGES["assignments"], HTTP_ACCEPT="application/json").json()["count"]
    html = client.get(LIST_PAGES["assignments"]).content.decode()
    assert f"&quot;count&quot;: {json_count}," in html
    assert json_count == (1 if role == Role.ANNOTATOR else 2)


def test_filter_form_lists_the_allow_listed_filters_and_a_blank_field_is_no_filter(filled):
    client = _html_client(filled.users["manager"])
    html = client.get(LIST_PAGES["images"]).content.decode()
    for field in ("plate", "well", "batch", "is_gold", "sha256"):
        assert f'name="{field}"' in html
    # What the form sends with every field left blank: all rows, not a 400.
    response = client.get(
        LIST_PAGES["images"] + "?format=api&plate=&well=&site=&batch=&modality=&stain=&sha256=",
    )
    assert response.status_code == 200
    data = client.get(LIST_PAGES["images"] + "?plate=&well=", HTTP_ACCEPT="application/json").json()
    assert data["count"] == 2
    # An unknown filter is still refused by name, in HTML as in JSON.
    assert client.get(LIST_PAGES["images"] + "?colour=red").status_code == 400


def test_detail_pages_render_as_html(filled):
    client = _html_client(filled.users["qa_lead"])
    a = filled.assignments["annotator"]
    for path in (
        "/api/v1/projects/world/",
        f"/api/v1/projects/world/images/{filled.images[0].pk}/",
        f"/api/v1/projects/world/assignments/{a.pk}/",
        f"/api/v1/projects/world/annotations/{a.annotations.get().pk}/",
        f"/api/v1/projects/world/guidelines/{filled.guideline.version}/",
    ):
        response = client.get(path)
        assert response.status_code == 200, (path, response.content[:2000])
        assert response["Content-Type"].startswith("text/html")


def test_api_root_lists_every_collection_with_working_links(filled):
    client = _html_client(filled.users["annotator"])
    body = client.get("/api/v1/", HTTP_ACCEPT="application/json").json()
    assert body["projects"] == "http://testserver/api/v1/projects/"
    assert body["jobs"] == "http://testserver/api/v1/jobs/"
    assert body["schema"] == "http://testserver/api/schema/"
    assert body["docs"] == "http://testserver/api/docs/"
    world = body["projects_detail"]["world"]
    for resource in ("members", "images", "assignments", "annotations", "guidelines"):
        assert world[resource] == f"http://testserver{LIST_PAGES[resource]}"
    assert world["project"] == "http://testserver/api/v1/projects/world/"
    # Every link it gives is a real route: 200, or 403 where this role may not read that
    # collection (other apps add theirs to the root; none answers 404 or 500).
    links = [v for k, v in body.items() if k != "projects_detail"] + list(world.values())
    core = {f"http://testserver{path}" for path in LIST_PAGES.values()}
    for link in links:
        accept = "text/html" if link.endswith("/docs/") else "application/json"
        code = client.get(link, HTTP_ACCEPT=accept).status_code
        assert code == 200 if link in core else code in (200, 403), (link, code)


def test_api_root_lists_only_the_users_projects(filled):
    body = _html_client(filled.users["non_member"]).get("/api/v1/", HTTP_ACCEPT="application/json").json()
    assert body["projects_detail"] == {}
    assert body["projects"] == "http://testserver/api/v1/projects/"


def test_api_root_renders_as_html_and_is_what_the_header_links_to(filled):
    client = _html_client(filled.users["manager"])
    html = client.get("/api/v1/").content.decode()
    assert client.get("/api/v1/").status_code == 200
    assert "http://testserver/api/v1/projects/world/assignments/" in html
    home = client.get("/").content.decode()
    assert re.search(r'<a href="/api/v1/">Browsable API</a>', home)


def test_api_root_needs_a_login():
    response = Client().get("/api/v1/", HTTP_ACCEPT="application/json")
    assert response.status_code in (401, 403)
    assert "projects_detail" not in response.content.decode()


@pytest.mark.parametrize("role", ROLES)
def test_every_collection_the_root_lists_renders_as_html(filled, role):
    """Collections other apps add to the root render too (or refuse the role: 403)."""
    client = _html_client(filled.users[role])
    body = client.get("/api/v1/", HTTP_ACCEPT="application/json").json()
    links = [v for k, v in body.items() if k not in ("projects_detail", "schema", "docs")]
    links += [v for k, v in body["projects_detail"]["world"].items() if k != "project"]
    assert len(links) >= len(LIST_PAGES)
    for link in links:
        response = client.get(link)
        assert response.status_code in (200, 403), (link, response.status_code)
        assert response["Content-Type"].startswith("text/html"), link
