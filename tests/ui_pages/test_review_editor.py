"""Accept with edits in the editor: a QA lead opens the annotator's editor in review mode from
the review page, corrects the consensus with the mouse, and accepts it as the approved mask.

Real Chromium, real input; the stored approved mask is read back and compared with what the
editor held, pixel by pixel. The guideline's rules advise the lead (a blocking violation
asks for a second click) instead of refusing.
"""

import numpy as np
import pytest
from django.core.files.storage import default_storage

from annotation.masks import read_label_image
from guidelines.services import guideline_version_create, guideline_version_publish
from qa.enums import ApprovedMaskSource, ImageQaStatus, ReviewAction
from qa.models import ApprovedMask, AuditEvent, ImageQaState, ReviewDecision
from qa.selectors import image_qa_get
from qa.services.masks import mask_read
from tests.ui.workspace_world import click_at, set_range
from tests.ui_pages.conftest import log_in
from tests.ui_pages.qa_world import XSS, make_qa_world

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _page_labels(page) -> np.ndarray:
    hook = "window.__annotator"
    width, height = page.evaluate(f"[{hook}.labels.width, {hook}.labels.height]")
    flat = page.evaluate(f"Array.from({hook}.labels.data)")
    return np.asarray(flat, dtype=np.int64).reshape(height, width)


def _same_cells(a: np.ndarray, b: np.ndarray) -> bool:
    """Same partition into cells (ids may be renumbered): one-to-one id pairs, same background."""
    if not np.array_equal(a > 0, b > 0):
        return False
    pairs = np.unique(np.stack([a[a > 0], b[a > 0]]), axis=1)
    return len(set(pairs[0])) == len(set(pairs[1])) == pairs.shape[1]


def _wait_editor(page):
    page.wait_for_selector("#workspace[data-state='ready']", timeout=30000)


def _background_point(labels: np.ndarray) -> tuple[int, int]:
    """A background pixel 3 px or more from any cell and the border (for a small new cell)."""
    from scipy import ndimage

    far = ndimage.distance_transform_edt(labels == 0) >= 4
    far[:6, :] = far[-6:, :] = far[:, :6] = far[:, -6:] = False
    ys, xs = np.nonzero(far)
    return int(xs[len(xs) // 2]), int(ys[len(ys) // 2])


def test_lead_corrects_the_consensus_in_the_editor_and_accepts_it(live_server, page, seen, screenshot_dir):
    world = make_qa_world(n_images=1, slug="rv-edit")
    image = world.images[0]
    # A blocking rule the correction will break: cells of at least 40 px.
    version = guideline_version_create(
        actor=world.manager, project=world.project, title=f"Nuclei v2 {XSS}", body="Cells of 40 px or more.",
        rules={"min_area": {"value": 40, "severity": "blocking"}},
    )
    guideline_version_publish(actor=world.manager, version=version)
    run = image_qa_get(user=world.lead, project=world.project, image_id=image.pk)[1]
    consensus = mask_read(run.consensus.name)
    members = list(run.members.select_related("annotator").order_by("position"))
    log_in(page, live_server.url, "lea")

    # From the review page; starting from one annotator's annotation shows exactly it.
    page.goto(f"{live_server.url}/qa/{world.project.slug}/images/{image.pk}/")
    page.wait_for_selector("#review[data-state='ready']", timeout=30000)
    careless = next(m for m in members if m.annotator.username == "ann-careless")
    page.click(f"a[data-edit-from='{careless.annotation_id}']")
    _wait_editor(page)
    assert page.evaluate("window.__annotator.mode") == "review"
    assert "ann-careless" in page.inner_text("#start-badge")
    stored = read_label_image(default_storage.open(careless.annotation.mask.name, "rb").read(), max_pixels=10**8)
    assert _same_cells(_page_labels(page), stored)

    # The consensus is the default start.
    page.goto(f"{live_server.url}/qa/{world.project.slug}/images/{image.pk}/")
    page.wait_for_selector("#review[data-state='ready']", timeout=30000)
    page.click("#edit-in-editor")
    _wait_editor(page)
    assert "the consensus" in page.inner_text("#start-badge")
    assert _same_cells(_page_labels(page), consensus)

    # The disputed cells are listed, least confident first; a click selects one and zooms to it.
    k = len(members)
    disputed = sorted((c for c in run.cells if c["support"] < k or c["confidence"] < 0.5),
                      key=lambda c: (c["confidence"], c["id"]))
    assert disputed, "the careless annotator leaves some cells disputed"
    buttons = page.locator("#disputed button")
    assert [int(b) for b in buttons.evaluate_all("bs => bs.map(b => b.dataset.cell)")] == [c["id"] for c in disputed]
    assert page.evaluate("[...window.__annotator.mask.marked].sort((a, b) => a - b)") == sorted(c["id"] for c in disputed)
    zoom = page.evaluate("window.__annotator.view.zoom")
    buttons.first.click()
    assert page.evaluate("window.__annotator.state.selected") == disputed[0]["id"]
    assert page.evaluate("window.__annotator.view.zoom") > zoom
    page.uncheck("#mark-disputed")
    assert page.evaluate("window.__annotator.mask.marked.size") == 0

    # Cells one annotator drew that the consensus left out: "Add" copies one in as a new cell.
    left_out = sorted((f for f in run.flags if f["kind"] == "spurious" and f.get("cell")),
                      key=lambda f: (f["score"], f["annotation"], f["cell"]))
    assert left_out, "the careless annotator draws cells the others did not"
    rows = page.locator("#left-out button")
    assert rows.count() == len(left_out)
    first = left_out[0]
    source = read_label_image(default_storage.open(
        next(m.annotation for m in members if m.annotation_id == first["annotation"]).mask.name, "rb").read(),
        max_pixels=10**8)
    before = _page_labels(page)
    rows.first.click()
    page.wait_for_selector("#left-out button:has-text('Added as cell')")
    after = _page_labels(page)
    new_id = int(before.max()) + 1
    free = (source == first["cell"]) & (before == 0)
    assert free.any() and np.array_equal(after == new_id, free)  # its free pixels, nothing else
    assert np.array_equal(after[~free], before[~free])
    page.focus("#stage")
    page.keyboard.press("Control+z")  # one undo step removes it again
    assert np.array_equal(_page_labels(page), before)
    page.keyboard.press("0")  # fit the whole image again
    assert page.locator("#time-spent").count() == 0  # no timer, no draft in review mode

    # Delete the largest consensus cell, add a small one (breaks min_area).
    ids, counts = np.unique(consensus[consensus > 0], return_counts=True)
    largest = int(ids[np.argmax(counts)])
    ys, xs = np.nonzero(consensus == largest)
    inside = int(np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2))
    page.keyboard.press("s")
    click_at(page, xs[inside] + 0.5, ys[inside] + 0.5)
    page.keyboard.press("Delete")
    assert page.evaluate(f"window.__annotator.idAt({xs[inside]}, {ys[inside]})") == 0
    bx, by = _background_point(consensus)
    page.keyboard.press("n")
    page.keyboard.press("b")
    set_range(page, "#brush-size", 3)
    click_at(page, bx + 0.5, by + 0.5)
    new_id = page.evaluate(f"window.__annotator.idAt({bx}, {by})")
    assert new_id > 0 and page.evaluate("window.__annotator.dirty") is True
    edited = _page_labels(page)

    # The first accept shows the blocking violation and stores nothing.
    page.fill("#review-reason", f"removed debris, added a missed nucleus {XSS}")
    page.click("#submit")
    page.wait_for_selector("#violations li")
    assert "blocking rule violation" in page.inner_text("#status")
    assert "min_area" in page.inner_text("#violations") or "40" in page.inner_text("#violations")
    assert not ReviewDecision.objects.filter(image=image).exists()
    page.screenshot(path=str(screenshot_dir / "qa_review_editor_violation.png"), full_page=True)

    # The second accepts anyway: decision, approved mask equal to the editor's labels, audit row.
    page.click("#submit")
    page.wait_for_selector("#workspace[data-state='submitted']", timeout=30000)
    assert "Accepted with edits" in page.inner_text("#status")
    decision = ReviewDecision.objects.get(image=image)
    assert decision.action == ReviewAction.ACCEPT_EDITED and decision.reviewer == world.lead
    assert "removed debris" in decision.comment
    approved = ApprovedMask.objects.get(review_decision=decision)
    assert approved.source == ApprovedMaskSource.REVIEWER_UPLOAD
    assert _same_cells(mask_read(approved.file.name), edited)
    assert approved.n_cells == len(ids)  # one removed, one added
    assert ImageQaState.objects.get(image=image).status == ImageQaStatus.APPROVED
    assert AuditEvent.objects.filter(image=image, actor=world.lead).exists()
    assert page.is_visible("#back-after-submit")
    page.screenshot(path=str(screenshot_dir / "qa_review_editor_accepted.png"), full_page=True)

    # The review page's history shows it, the reason as text.
    page.click("#back-after-submit")
    page.wait_for_selector("#review[data-state='ready']", timeout=30000)
    assert "accept_edited" in page.inner_text("#history")
    assert seen.dialogs == [] and seen.csp == [] and seen.errors == []


def test_only_leads_and_managers_open_the_review_editor(live_server, page, seen):
    world = make_qa_world(n_images=1, slug="rv-edit-roles")
    image = world.images[0]
    url = f"{live_server.url}/qa/{world.project.slug}/images/{image.pk}/edit/"
    for username, expected in (("ann-good", 403), ("mia", 403), ("max", 200)):
        page.context.clear_cookies()
        log_in(page, live_server.url, username)
        assert page.goto(url).status == expected, username
    assert page.goto(url + "?from=999999").status == 404  # not an annotation of this run
    assert seen.dialogs == []
