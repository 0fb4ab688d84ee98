"""Smaller holes: a Content-Security-Policy without inline script on every page (and the
existing pages still work under it), no caching of image and mask downloads, length limits
on what managers write."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from tests.api.uploads import upload, url
from tests.factories import PASSWORD, label_mask, png_bytes

pytestmark = pytest.mark.django_db

# A <script> element that runs code inline: no src, and not a JSON data block.
INLINE_SCRIPT = re.compile(
    r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/(?:ld\+)?json\")[^>]*>\s*\S", re.I
)


def _policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {
        part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()
    }


@pytest.fixture
def staff_client(world):
    manager = world.users["manager"]
    manager.is_staff = manager.is_superuser = True
    manager.save(update_fields=["is_staff", "is_superuser"])
    client = Client()
    assert client.login(username="manager", password=PASSWORD)
    return client


PAGES = [
    "/", "/accounts/login/", "/admin/login/", "/admin/", "/admin/annotation/image/",
    "/api/docs/", "/api/v1/", "/api/v1/projects/", "/api/v1/projects/world/images/",
]


@pytest.mark.parametrize("path", PAGES)
def test_pages_carry_a_csp_without_inline_script(staff_client, path):
    client = Client() if path.endswith("/login/") else staff_client
    response = client.get(path, HTTP_ACCEPT="text/html")
    assert response.status_code == 200, (path, response.status_code)
    policy = _policy(response)
    assert policy["script-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    assert "'unsafe-eval'" not in response["Content-Security-Policy"]
    html = response.content.decode()
    assert "<html" in html.lower()
    found = INLINE_SCRIPT.search(html)
    assert found is None, f"{path} has inline script: {html[found.start():found.start() + 200]}"


def test_swagger_ui_script_is_served_as_a_file(staff_client):
    html = staff_client.get("/api/docs/").content.decode()
    sources = re.findall(r'<script[^>]*\bsrc="([^"]+)"', html)
    own = [src for src in sources if "script" in src and "swagger-ui" not in src]
    assert own, sources
    script = staff_client.get(own[0])
    assert script.status_code == 200
    assert "SwaggerUIBundle" in script.content.decode()
    assert script["Content-Type"].startswith(("application/javascript", "text/javascript"))


def test_image_and_mask_downloads_are_private_and_not_stored(world, api_client):
    api_client.force_authenticate(world.users["annotator"])
    response = api_client.post(
        url("world", "annotations"),
        {"assignment": world.assignments["annotator"].pk,
         "mask": upload("mask.png", png_bytes(label_mask(cells=2)))},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    annotation_id = response.json()["id"]
    image_id = world.assignments["annotator"].image_id
    for path in (
        url("world", "images", image_id, "file"),
        url("world", "annotations", annotation_id, "mask"),
        url("world", "annotations", annotation_id, "mask") + "?format=coco",
    ):
        download = api_client.get(path)
        assert download.status_code == 200, path
        assert download["Cache-Control"] == "private, no-store", path
        assert "Content-Security-Policy" in download


DEEP: list = [1]
for _ in range(20):
    DEEP = [DEEP]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("project", {"description": "x" * 10_001}, "description"),
        ("project", {"cell_classes": [f"c{i}" for i in range(201)]}, "cell_classes"),
        ("project", {"cell_classes": ["x" * 101]}, "cell_classes"),
        ("guideline", {"title": "t", "body": "x" * 200_001}, "body"),
        ("guideline", {"title": "t", "changelog": "x" * 10_001}, "changelog"),
        ("guideline", {"title": "t", "rules": {"min_area_px": 10, "note": "x" * 70_000}}, "rules"),
        ("guideline", {"title": "t", "rules": {"a": DEEP}}, "rules"),
    ],
)
def test_manager_text_and_json_fields_have_length_limits(world, api_client, path, body, field):
    from guidelines.models import GuidelineVersion

    api_client.force_authenticate(world.users["manager"])
    before = (world.project.description, list(world.project.cell_classes),
              GuidelineVersion.objects.count())
    if path == "project":
        response = api_client.patch(url("world"), body, format="json")
    else:
        response = api_client.post(url("world", "guidelines"), body, format="json")
    assert response.status_code == 400, response.content[:300]
    assert field in response.json()
    world.project.refresh_from_db()
    assert (world.project.description, list(world.project.cell_classes),
            GuidelineVersion.objects.count()) == before


def test_image_metadata_json_is_capped(world, api_client):
    api_client.force_authenticate(world.users["manager"])
    response = api_client.post(
        url("world", "images"),
        {"file": [upload("a.png", png_bytes(label_mask(cells=1)))],
         "metadata": '{"note": "' + "x" * 70_000 + '"}'},
        format="multipart",
    )
    assert response.status_code == 400
    assert "bytes of JSON are accepted" in response.json()["metadata"][0]


# ----------------------------------------------------------------------------- browser


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_admin_browsable_api_and_docs_work_under_the_csp(world, live_server, page):
    manager = world.users["manager"]
    manager.is_staff = manager.is_superuser = True
    manager.save(update_fields=["is_staff", "is_superuser"])
    violations: list[str] = []
    page.on("console", lambda msg: violations.append(f"{page.url}: {msg.text} {msg.location}")
            if "Content Security Policy" in msg.text else None)

    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "manager")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#content h1")
    assert page.url.endswith("/admin/")
    page.goto(f"{live_server.url}/admin/annotation/image/")
    page.wait_for_selector("#result_list")

    page.goto(f"{live_server.url}/api/v1/projects/world/")
    page.wait_for_selector(".response-info")
    assert '"slug": "world"' in page.inner_text(".response-info")

    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector(".swagger-ui .info .title", timeout=20_000)
    assert "CellCurate API" in page.inner_text(".swagger-ui .info .title")
    page.wait_for_selector(".opblock-tag", timeout=20_000)
    assert page.locator(".opblock-tag").count() > 3

    # The browsable API's log-out works without DRF's inline onclick.
    page.goto(f"{live_server.url}/api/v1/projects/world/")
    page.click(".navbar .dropdown-toggle")
    page.click("#logoutForm button")
    page.wait_for_load_state()
    assert page.locator("text=Log in").count() >= 1
    assert violations == []
