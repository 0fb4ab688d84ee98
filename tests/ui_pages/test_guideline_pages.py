"""Guideline pages in a real Chromium: compare two versions, publish, read the re-check report."""

import pytest

from guidelines.models import GuidelineVersion, RuleRecheck
from guidelines.services import guideline_version_create
from tests.ui_pages.conftest import log_in
from tests.ui_pages.qa_world import XSS, make_qa_world

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_manager_compares_publishes_and_reads_the_recheck(live_server, page, seen, screenshot_dir):
    world = make_qa_world(n_images=1, slug="gl-plate")
    guideline_version_create(
        actor=world.manager, project=world.project, title=f"Nuclei v2 {XSS}",
        body=f"Outline every nucleus. {XSS}\nSkip debris under 5000 px.",
        rules={"min_area": {"value": 5000, "severity": "warning"}}, changelog=f"debris rule {XSS}",
    )
    log_in(page, live_server.url, "max")
    page.goto(f"{live_server.url}/guidelines/gl-plate/")
    page.wait_for_selector("body[data-guideline-ready='1']")
    assert page.locator("#versions tbody tr").count() == 2
    assert page.get_attribute("#versions tr[data-version='2']", "data-status") == "draft"
    assert "<script>" in page.inner_text("#versions tr[data-version='1']")  # the title stays text
    page.screenshot(path=str(screenshot_dir / "guideline_versions.png"), full_page=True)

    page.click("#compare-form button")
    page.wait_for_url("**/guidelines/gl-plate/diff/?a=1&b=2")
    assert int(page.get_attribute("#diff-body", "data-changed")) >= 1
    assert int(page.get_attribute("#diff-rules", "data-changed")) >= 1
    assert "Skip debris under 5000 px." in page.inner_text("#diff-body tr.gl-insert")
    assert '"min_area": {' in "".join(page.locator("#diff-rules tr.gl-insert").all_inner_texts())
    assert page.get_attribute("#diff-changelog", "data-changed") != "0"
    page.screenshot(path=str(screenshot_dir / "guideline_diff.png"), full_page=True)

    page.goto(f"{live_server.url}/guidelines/gl-plate/")
    page.wait_for_selector("body[data-guideline-ready='1']")
    page.click("[data-publish='2']")
    page.wait_for_url("**/guidelines/gl-plate/2/#recheck", timeout=60000)
    page.wait_for_selector("#recheck-job[data-status='succeeded']")
    assert GuidelineVersion.objects.get(project=world.project, version=2).status == "published"
    rechecks = RuleRecheck.objects.filter(guideline_version__version=2, guideline_version__project=world.project)
    assert rechecks.count() == 3 and all(r.flagged for r in rechecks)
    rows = page.locator("#recheck-table tbody tr[data-flagged='1']")
    assert rows.count() == 3
    assert "made under v1; v2 would flag min_area (warning" in rows.first.inner_text()
    assert "<script>" in page.inner_text("#guideline-body")  # Markdown with raw HTML shown as text
    page.screenshot(path=str(screenshot_dir / "guideline_recheck.png"), full_page=True)
    assert seen.dialogs == [] and seen.csp == [] and seen.errors == []
