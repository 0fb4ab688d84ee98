"""The review actions not covered by the accept-consensus test, each through the page in Chromium.

Drop ticked cells, accept a corrected mask uploaded by the lead (edited in another tool;
editing in the workspace is tests/ui_pages/test_review_editor.py), send back with a comment, request another
annotator, exclude with a reason: each leaves its decision, its effect and its audit row.
"""

import numpy as np
import pytest

from annotation.enums import AssignmentStatus, Role
from annotation.models import Assignment
from qa.enums import ImageQaStatus, ReviewAction
from qa.models import ApprovedMask, AuditEvent, ImageQaState, ReviewDecision
from qa.selectors import image_qa_get
from qa.services.masks import mask_read
from tests.factories import MembershipFactory, UserFactory, png_bytes
from tests.ui_pages.conftest import log_in
from tests.ui_pages.qa_world import XSS, make_qa_world

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _open(page, base, world, image):
    page.goto(f"{base}/qa/{world.project.slug}/images/{image.pk}/")
    page.wait_for_selector("#review[data-state='ready']", timeout=30000)


def _submit(page, action):
    page.evaluate("document.getElementById('action-result').replaceChildren()")
    page.click(f"form[data-action='{action}'] button[type=submit]")
    page.wait_for_selector("#decision-done, #action-result .qa-msg-err")
    return page.inner_text("#action-result")


def test_drop_cells_and_accept_an_uploaded_correction(live_server, page, seen, screenshot_dir, tmp_path):
    world = make_qa_world(n_images=2, slug="rv-accept")
    first, second = world.images
    log_in(page, live_server.url, "lea")

    _open(page, live_server.url, world, first)
    run = image_qa_get(user=world.lead, project=world.project, image_id=first.pk)[1]
    for cell in ("1", "2"):
        page.check(f"#cells-table input[type=checkbox][value='{cell}']")
    assert sorted(page.input_value("#drop-cells").split(", ")) == ["1", "2"]
    page.fill("form[data-action='drop_cells'] input[name=reason]", f"debris {XSS}")
    assert "drop cells" in _submit(page, "drop_cells")
    decision = ReviewDecision.objects.get(image=first)
    assert decision.action == ReviewAction.DROP_CELLS
    assert ApprovedMask.objects.get(review_decision=decision).n_cells == run.n_cells - 2
    assert AuditEvent.objects.filter(image=first, actor=world.lead).exists()
    assert "<script>" in page.inner_text("#history")  # the reason stays text

    _open(page, live_server.url, world, second)
    page.click("#accept-edited summary")  # the upload is the alternative to the editor
    href = page.get_attribute("#consensus-download", "href")
    assert page.request.get(f"{live_server.url}{href}").ok  # the lead can fetch the consensus to edit
    bad = tmp_path / "notes.png"
    bad.write_bytes(b"not a label image")
    page.set_input_files("form[data-action='accept_edited'] input[name=mask]", str(bad))
    assert "mask" in _submit(page, "accept_edited")  # a 400 naming the field
    assert page.locator("#action-result .qa-msg-err").count() == 1
    assert not ReviewDecision.objects.filter(image=second).exists()  # nothing stored
    labels = mask_read(image_qa_get(user=world.lead, project=world.project, image_id=second.pk)[1].consensus.name)
    corrected = np.where(labels == labels.max(), 0, labels).astype(np.uint16)  # one cell removed
    path = tmp_path / "corrected.png"
    path.write_bytes(png_bytes(corrected))
    page.set_input_files("form[data-action='accept_edited'] input[name=mask]", str(path))
    page.fill("form[data-action='accept_edited'] input[name=reason]", "removed a false cell")
    assert "accept edited" in _submit(page, "accept_edited")
    decision = ReviewDecision.objects.get(image=second)
    assert decision.action == ReviewAction.ACCEPT_EDITED
    approved = ApprovedMask.objects.get(review_decision=decision)
    assert approved.n_cells == len(np.unique(corrected)) - 1 and approved.source == "reviewer_upload"
    assert ImageQaState.objects.get(image=second).status == ImageQaStatus.APPROVED
    page.screenshot(path=str(screenshot_dir / "qa_review_accept_edited.png"), full_page=True)
    assert seen.dialogs == [] and seen.csp == [] and seen.errors == []


def test_send_back_request_annotator_and_exclude(live_server, page, seen, screenshot_dir):
    world = make_qa_world(n_images=1, slug="rv-other")
    MembershipFactory(user=UserFactory(username="ann-extra"), project=world.project, role=Role.ANNOTATOR)
    image = world.images[0]
    log_in(page, live_server.url, "lea")
    _open(page, live_server.url, world, image)

    page.select_option("form[data-action='send_back'] select[name=annotator]", "ann-careless")
    page.fill("form[data-action='send_back'] textarea[name=comment]", f"redo the touching nuclei {XSS}")
    assert "send back" in _submit(page, "send_back")
    back = Assignment.objects.get(image=image, annotator__username="ann-careless")
    assert back.status == AssignmentStatus.PENDING and back.comment.startswith("redo the touching nuclei")

    _open(page, live_server.url, world, image)
    page.fill("form[data-action='request_annotator'] input[name=reason]", "still unsure")
    assert "request annotator" in _submit(page, "request_annotator")
    extra = Assignment.objects.get(image=image, annotator__username="ann-extra")
    assert extra.status == AssignmentStatus.PENDING

    _open(page, live_server.url, world, image)
    page.fill("form[data-action='exclude'] input[name=reason]", "out of focus")
    assert "exclude" in _submit(page, "exclude")
    assert ImageQaState.objects.get(image=image).status == ImageQaStatus.EXCLUDED
    actions = list(ReviewDecision.objects.filter(image=image).order_by("id").values_list("action", flat=True))
    assert actions == [ReviewAction.SEND_BACK, ReviewAction.REQUEST_ANNOTATOR, ReviewAction.EXCLUDE]
    assert AuditEvent.objects.filter(image=image, actor=world.lead).count() >= 3
    page.screenshot(path=str(screenshot_dir / "qa_review_excluded.png"), full_page=True)
    assert seen.dialogs == [] and seen.csp == [] and seen.errors == []
