"""The manager's page in a real Chromium: three files dropped at once, one result per file."""

import base64

import numpy as np
import pytest
from playwright.sync_api import expect

from annotation.enums import Role
from annotation.models import Assignment, Image
from tests.factories import MembershipFactory, ProjectFactory, UserFactory, png_bytes, tiff_bytes
from tests.ui_pages.conftest import log_in
from tests.ui_pages.qa_world import XSS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DROP = """([selector, files]) => {
  const dt = new DataTransfer();
  for (const f of files) {
    const bytes = Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0));
    dt.items.add(new File([bytes], f.name, { type: f.type }));
  }
  const zone = document.querySelector(selector);
  zone.dispatchEvent(new DragEvent("dragover", { dataTransfer: dt, bubbles: true, cancelable: true }));
  zone.dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
}"""


def _file(name, data, kind):
    return {"name": name, "b64": base64.b64encode(data).decode(), "type": kind}


@pytest.fixture
def uploads_fit_the_test_database(settings):
    """The embedded run's in-memory SQLite is ONE connection shared by the live server's
    threads, so two uploads at once collide there ("cannot start a transaction within a
    transaction"); a deployment gives each request its own connection. Upload one file at a
    time on that database; PostgreSQL keeps the page's default parallelism."""
    from django.db import connection

    if connection.vendor == "sqlite":
        settings.CELLCURATE_UPLOAD_PARALLEL = 1


def test_manager_drops_three_images_and_sees_each_result(live_server, page, seen, screenshot_dir,
                                                         uploads_fit_the_test_database):
    boss = UserFactory(username="max")
    project = ProjectFactory(slug="upl", name=f"Upload {XSS}", annotators_per_image=1)
    MembershipFactory(user=boss, project=project, role=Role.MANAGER)
    annotator = UserFactory(username="ann")
    MembershipFactory(user=annotator, project=project, role=Role.ANNOTATOR)
    rng = np.random.default_rng(1)
    files = [
        _file("plate1_A01.png", png_bytes(rng.integers(0, 4000, (40, 50), dtype=np.uint16)), "image/png"),
        _file("plate1_A02.tif", tiff_bytes(rng.integers(0, 255, (2, 32, 32), dtype=np.uint8)), "image/tiff"),
        _file(f"notes {XSS}.txt", b"this is not an image", "text/plain"),
    ]
    log_in(page, live_server.url, "max")
    page.goto(f"{live_server.url}/manage/upl/")
    page.wait_for_selector("#manage[data-state='ready']")
    page.fill("#upload-meta input[name=plate]", "plate1")
    page.evaluate(DROP, ["#dropzone", files])
    expect(page.locator("#uploads tr[data-result]")).to_have_count(3, timeout=30000)

    results = {r.get_attribute("data-file"): r.get_attribute("data-result") for r in page.locator("#uploads tbody tr").all()}
    said = {r.get_attribute("data-file"): r.inner_text() for r in page.locator("#uploads tbody tr").all()}
    assert results == {"plate1_A01.png": "created", "plate1_A02.tif": "created", f"notes {XSS}.txt": "error"}, said
    assert "50×40" in page.inner_text("#uploads tr[data-file='plate1_A01.png']")
    assert Image.objects.filter(project=project, plate="plate1").count() == 2
    assert page.locator("#uploads tr[data-result='error'] .mg-err").inner_text().strip() != ""
    # The progress section was refreshed after the uploads: two images, both awaiting.
    expect(page.locator("#progress-states [data-state='awaiting'] strong")).to_have_text("2")

    page.click("#generate")
    page.wait_for_selector("#generate-result:has-text('Done')")
    assert Assignment.objects.filter(image__project=project, annotator=annotator).count() == 2
    expect(page.locator("#progress-assignments [data-status='pending'] strong")).to_have_text("2")
    assert page.locator("#progress-annotators tr[data-user='ann']").inner_text().split()[:2] == ["ann", "2"]
    page.screenshot(path=str(screenshot_dir / "manage_page.png"), full_page=True)
    assert seen.dialogs == [] and seen.csp == [] and seen.errors == []


def test_manager_edits_settings_members_and_filters_the_audit_log(live_server, page, seen, screenshot_dir):
    from annotation.models import Membership, Project
    from qa.models import AuditEvent

    project = ProjectFactory(slug="set", name=f"Settings {XSS}", annotators_per_image=2, gold_share=0.0)
    MembershipFactory(user=UserFactory(username="max"), project=project, role=Role.MANAGER)
    MembershipFactory(user=UserFactory(username="ann"), project=project, role=Role.ANNOTATOR)
    UserFactory(username="newbie")
    log_in(page, live_server.url, "max")
    page.goto(f"{live_server.url}/manage/set/")
    page.wait_for_selector("#manage[data-state='ready']")

    # k min up from 2 to 3 together with k max 4: the page orders the two PATCHes itself.
    page.fill("#settings-form [name=annotators_per_image]", "3")
    page.fill("#settings-form [name=max_annotators_per_image]", "4")
    page.fill("#settings-form [name=gold_share]", "0.1")
    page.fill("#settings-form [name=qualification_min_f1]", "0.7")
    page.click("#settings-form button[type=submit]")
    page.wait_for_selector("#settings-result.mg-ok")
    project.refresh_from_db()
    assert (project.annotators_per_image, project.max_annotators_per_image, project.gold_share) == (3, 4, 0.1)
    assert project.qualification_min_f1 == 0.7
    # Bad input: k max below k min is refused with the field named, nothing changes.
    page.fill("#settings-form [name=max_annotators_per_image]", "1")
    page.click("#settings-form button[type=submit]")
    page.wait_for_selector("#settings-result.mg-err")
    assert "max_annotators_per_image" in page.inner_text("#settings-result")
    assert Project.objects.get(pk=project.pk).max_annotators_per_image == 4

    page.fill("#member-form [name=username]", "newbie")
    page.select_option("#member-form [name=role]", "qa_lead")
    page.click("#member-form button")
    page.wait_for_selector("#members tr[data-username='newbie']")
    assert Membership.objects.get(project=project, user__username="newbie").role == "qa_lead"
    page.select_option("#members tr[data-username='ann'] [data-role]", "ml_engineer")
    page.wait_for_selector("#member-result:has-text('ann is now ml_engineer')")
    assert Membership.objects.get(project=project, user__username="ann").role == "ml_engineer"
    page.click("#members tr[data-username='newbie'] [data-remove]")
    page.wait_for_selector("#member-result:has-text('newbie removed')")
    assert not Membership.objects.filter(project=project, user__username="newbie").exists()

    kinds = set(AuditEvent.objects.filter(project=project).values_list("kind", flat=True))
    assert "settings" in kinds
    page.goto(f"{live_server.url}/manage/set/?kind=settings&user=max#audit-log")
    rows = page.locator("#audit tbody tr[data-kind]")
    assert rows.count() == AuditEvent.objects.filter(project=project, kind="settings", actor__username="max").count() > 0
    assert {r.get_attribute("data-kind") for r in rows.all()} == {"settings"}
    page.goto(f"{live_server.url}/manage/set/?user=ann#audit-log")
    assert page.locator("#audit tbody tr[data-kind]").count() == 0
    assert "<script>" in page.inner_text("h1")
    page.goto(f"{live_server.url}/manage/set/?kind=settings&since=2026-13-45#audit-log")
    assert "since must be a day as YYYY-MM-DD" in page.inner_text("#error-since")
    page.screenshot(path=str(screenshot_dir / "manage_settings_members_audit.png"), full_page=True)
    assert seen.dialogs == [] and seen.errors == [] and seen.csp == []
