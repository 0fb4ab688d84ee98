"""Logging in and landing on the project list, in a real browser."""

import pytest

from annotation.enums import Role
from tests.factories import PASSWORD, MembershipFactory, ProjectFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_log_in_and_see_your_projects_with_your_role(live_server, page, screenshot_dir):
    user = UserFactory(username="ana")
    mine = ProjectFactory(name="Nuclei HCS plate 7", slug="nuclei-p7")
    MembershipFactory(user=user, project=mine, role=Role.QA_LEAD)
    ProjectFactory(name="Someone else's project", slug="hidden")

    page.goto(f"{live_server.url}/")
    assert "/accounts/login/" in page.url  # anonymous users are sent to log in
    page.fill("#id_username", "ana")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("h1:has-text('Your projects')")
    page.screenshot(path=str(screenshot_dir / "home.png"), full_page=True)

    rows = page.locator("tbody tr")
    assert rows.count() == 1
    assert "Nuclei HCS plate 7" in rows.first.inner_text()
    assert "qa lead" in rows.first.inner_text().lower()
    assert "Someone else's project" not in page.content()


def test_wrong_password_shows_an_error_and_stays_logged_out(live_server, page):
    UserFactory(username="ben")
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "ben")
    page.fill("#id_password", "not-the-password")
    page.click("button[type=submit]")
    assert page.locator(".errorlist").inner_text().startswith("Your username and password didn't match")
    page.goto(f"{live_server.url}/")
    assert "/accounts/login/" in page.url


def test_api_docs_page_renders_the_schema_offline(live_server, page):
    UserFactory(username="cy")
    page.goto(f"{live_server.url}/api/docs/")
    # Swagger UI is served from our own static files (no CDN): the title comes from the schema.
    page.wait_for_selector("text=CellCurate API", timeout=15000)
    assert page.locator(".opblock-tag").count() >= 2
