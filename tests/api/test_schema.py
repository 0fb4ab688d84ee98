"""The OpenAPI schema validates without warnings and documents every endpoint family."""

import pytest
import yaml
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_schema_validates_without_warnings(tmp_path):
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    paths = set(yaml.safe_load(out.read_text())["paths"])
    expected = {
        "/api/v1/projects/", "/api/v1/projects/{slug}/members/", "/api/v1/projects/{slug}/images/",
        "/api/v1/projects/{slug}/assignments/next/", "/api/v1/projects/{slug}/annotations/",
        "/api/v1/projects/{slug}/annotations/{id}/mask/",
        "/api/v1/projects/{slug}/guidelines/{version}/publish/", "/api/v1/jobs/{id}/",
    }
    assert expected <= paths


def test_schema_and_docs_are_served(world, api_client):
    api_client.force_authenticate(world.users["annotator"])
    schema = api_client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/projects/{slug}/annotations/" in schema.content
    docs = api_client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger" in docs.content.lower()
