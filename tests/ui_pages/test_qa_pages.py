"""The QA lead's dashboard and review page in a real Chromium, on real QA runs of three annotators."""

import re

import pytest

from qa.enums import AuditKind, ImageQaStatus, ReviewAction
from qa.models import ApprovedMask, AuditEvent, GateDecision, ImageQaState, ReviewDecision
from qa.selectors import review_queue
from tests.ui_pages.conftest import log_in
from tests.ui_pages.qa_world import make_qa_world

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_qa_lead_reviews_the_worst_image_and_accepts_the_consensus(live_server, page, seen, screenshot_dir):
    world = make_qa_world()
    worst = review_queue(user=world.lead, project=world.project).first()
    assert worst is not None and worst.status == ImageQaStatus.NEEDS_REVIEW
    log_in(page, live_server.url, "lea")

    page.goto(f"{live_server.url}/qa/{world.project.slug}/")
    page.wait_for_selector("body[data-qa-ready='1']")
    page.wait_for_selector("#trend-chart .uplot")
    page.wait_for_selector("#gate-chart .uplot")
    # Gate decisions per day as stacked bars: the top of the stack on the day is every
    # decision of that day, and each outcome's legend value is its own count.
    gate_data = page.evaluate("document.getElementById('gate-chart').chart.data")
    tops = [v for v in gate_data[1] if v]
    assert tops == [GateDecision.objects.filter(qa_run__image__project=world.project).count()]
    # The trend chart has one x step per QA run, oldest first.
    runs = page.evaluate("document.getElementById('trend-chart').chart.data[0]")
    assert runs == list(range(1, len(runs) + 1)) and len(runs) >= 3
    page.screenshot(path=str(screenshot_dir / "qa_dashboard.png"), full_page=True)
    queue_rows = page.locator("#queue-table tbody tr")
    assert queue_rows.count() == 3
    first = queue_rows.first.locator("a").first
    assert first.get_attribute("href") == f"/qa/{world.project.slug}/images/{worst.image_id}/"

    first.click()
    page.wait_for_selector("#review[data-state='ready']", timeout=30000)
    # Three annotators and the consensus, side by side, plus their toggles on the overlay.
    stages = page.locator("#sides .qa-stage")
    assert stages.count() == 4
    labels = [t.strip() for t in page.locator("#sides .qa-stage-label").all_inner_texts()]
    assert labels[0] == "consensus"
    assert sorted(n.split()[0] for n in labels[1:]) == ["ann-careless", "ann-expert", "ann-good"]
    run = worst.latest_run
    assert page.locator("#cells-table tbody tr[data-key='consensus']").count() == run.n_cells
    # each annotation's outline correction, and where the outline level comes from (no gold)
    for m in run.members.all():
        text = page.inner_text(f"#scores td[data-outline='{m.annotation_id}']")
        assert text.endswith(" px") and text.startswith("+" if m.consensus_bias > 0 else ("-", "0"))
        assert float(text.removesuffix(" px")) == pytest.approx(m.consensus_bias, abs=0.0051)
    assert "no annotator's bias against gold truth is known" in page.inner_text("#outline-level")

    # On opening, every viewer shows the whole image (none is cropped by a shared zoom).
    spans = page.evaluate("window.qaReview.state.views.map(v => { const r = v.canvas.getBoundingClientRect();"
                          " return [v.toImage(r.left + 1, r.top + 1), v.toImage(r.right - 1, r.bottom - 1)]; })")
    for (x0, y0), (x1, y1) in spans:
        assert min(x0, y0) <= 1 and x1 >= worst.image.width - 1 and y1 >= worst.image.height - 1, spans
    # A row zooms every viewer onto its cell.
    before = page.evaluate("window.qaReview.state.views.map(v => v.zoom)")
    row = page.locator("#cells-table tbody tr[data-key='consensus']").first
    cell_id = int(row.get_attribute("data-id"))
    row.locator("td").nth(1).click()
    after = page.evaluate("window.qaReview.state.views.map(v => v.zoom)")
    assert all(a > b * 1.2 for a, b in zip(after, before, strict=True))
    centres = page.evaluate("window.qaReview.state.views.map(v => v.toImage("
                            "...(r => [r.left + r.width / 2, r.top + r.height / 2])(v.canvas.getBoundingClientRect())))")
    box = page.evaluate(f"window.qaReview.state.maps.consensus.bbox({cell_id})")
    for x, y in centres:  # every viewer is centred on the cell
        assert box["x0"] - 1 <= x <= box["x1"] + 2 and box["y0"] - 1 <= y <= box["y1"] + 2
    page.check("#show-disagreement")
    for box in page.locator("[data-layer]").all():
        box.check()
    page.screenshot(path=str(screenshot_dir / "qa_review.png"), full_page=True)

    page.fill("form[data-action='accept_consensus'] input[name=reason]", "consensus looks right")
    page.click("form[data-action='accept_consensus'] button")
    page.wait_for_selector("#decision-done")
    assert "approved mask with" in page.inner_text("#decision-done")
    assert page.inner_text("#image-status") == "approved"
    page.screenshot(path=str(screenshot_dir / "qa_review_accepted.png"), full_page=True)

    decision = ReviewDecision.objects.get(image_id=worst.image_id)
    assert decision.action == ReviewAction.ACCEPT_CONSENSUS
    assert decision.reviewer == world.lead
    assert ApprovedMask.objects.get(review_decision=decision).n_cells == run.n_cells
    assert ImageQaState.objects.get(image_id=worst.image_id).status == ImageQaStatus.APPROVED
    audit = AuditEvent.objects.filter(image_id=worst.image_id, actor=world.lead)
    assert audit.exists(), list(AuditEvent.objects.values_list("kind", flat=True))
    assert {e.kind for e in audit} & {k.value for k in AuditKind}
    assert seen.dialogs == [] and seen.csp == [] and seen.errors == []


def test_agreement_matrix_cell_lists_that_pairs_images(live_server, page, seen, screenshot_dir):
    world = make_qa_world()
    log_in(page, live_server.url, "lea")
    page.goto(f"{live_server.url}/qa/{world.project.slug}/")
    page.wait_for_selector("body[data-qa-ready='1']")
    cells = page.locator("#agreement-matrix a[data-a]")
    assert cells.count() == 6  # 3 annotators: every ordered pair but the diagonal
    cell = page.locator("#agreement-matrix a[data-a='ann-careless'][data-b='ann-expert']")
    assert re.fullmatch(r"0\.\d\d|1\.00", cell.inner_text().strip())
    cell.click()
    page.wait_for_selector("#pair-table")
    assert "ann-careless vs ann-expert" in page.inner_text("#pair-panel h3")
    rows = page.locator("#pair-table tbody tr")
    assert rows.count() == 3
    f1s = [float(rows.nth(i).locator("td").nth(1).inner_text()) for i in range(3)]
    assert f1s == sorted(f1s)  # worst first
    assert "a=ann-careless" in page.url  # the address can be shared
    page.screenshot(path=str(screenshot_dir / "qa_dashboard_pair.png"), full_page=True)
    # The XSS payloads in the project name, cell classes and file names stay text.
    assert "<script>" in page.inner_text("h1")
    assert seen.dialogs == [] and seen.csp == [] and seen.errors == []


def test_gating_policy_preview_save_and_publish(live_server, page, seen, screenshot_dir):
    from qa.models import GatingPolicy

    world = make_qa_world(n_images=2)
    log_in(page, live_server.url, "lea")
    page.goto(f"{live_server.url}/qa/{world.project.slug}/policies/")
    page.wait_for_selector("body[data-qa-ready='1']")

    def preview():
        cells = page.locator("#preview-proposed td").all_inner_texts()
        return dict(zip(["approve", "needs_review", "reject"], map(int, cells), strict=True))

    # Every threshold says what it decides.
    helps = page.locator("#policy-form .qa-help").all_inner_texts()
    assert len(helps) == len(GatingPolicy.THRESHOLDS) and all(h.strip() for h in helps)
    assert "pairwise F1" in page.locator("#policy-form label:has([name=min_agreement]) .qa-help").inner_text()
    published = page.locator("#preview tbody tr").first.locator("td").all_inner_texts()
    assert list(preview().values()) == [int(v) for v in published]  # unchanged thresholds: same outcome
    assert sum(preview().values()) == 2 and preview()["approve"] == 0
    # Lenient thresholds: nothing is low enough to need a look any more.
    for name, value in [("min_agreement", "0.05"), ("reject_agreement", "0"), ("min_annotation_quality", "0"),
                        ("max_flagged_share", "1"), ("min_cell_support", "0"), ("min_cell_confidence", "0")]:
        page.fill(f"#policy-form [name={name}]", value)
    page.select_option("#policy-form [name=flagged_cells]", "drop")
    page.click("#policy-form button[type=submit]")
    page.wait_for_selector("body[data-qa-ready='1']")
    assert preview() == {"approve": 2, "needs_review": 0, "reject": 0}
    assert GatingPolicy.objects.filter(project=world.project, status="draft").count() == 0  # preview stores nothing
    page.screenshot(path=str(screenshot_dir / "qa_policies.png"), full_page=True)

    page.click("#save-draft")
    page.wait_for_url("**/policies/?saved=*")
    draft = GatingPolicy.objects.get(project=world.project, status="draft")
    assert draft.min_agreement == 0.05 and draft.max_flagged_share == 1.0
    page.click("#publish")
    page.wait_for_selector("#policy-result.qa-msg-ok")
    draft.refresh_from_db()
    assert draft.status == "published"
    assert seen.dialogs == [] and seen.csp == [] and seen.errors == []


def test_run_qa_again_from_the_dashboard(live_server, page, seen, screenshot_dir):
    """The button queues the project re-run, follows the job and says what it did."""
    from django.contrib.auth import get_user_model

    from qa.models import QaRun
    from qa.services import review_act

    world = make_qa_world()
    decided = ImageQaState.objects.filter(project=world.project).order_by("image_id").first()
    before = {s.image_id: s.latest_run_id for s in ImageQaState.objects.filter(project=world.project)}
    log_in(page, live_server.url, "lea")
    page.goto(f"{live_server.url}/qa/{world.project.slug}/")
    page.wait_for_selector("body[data-qa-ready='1']")
    # A QA lead decides on one image first: that one keeps its run.
    review_act(actor=get_user_model().objects.get(username="lea"), image=decided.image,
               action="exclude", reason="out of focus")
    page.click("#rerun")
    result = page.locator("#rerun-result")
    result.filter(has_text="Ran QA again").wait_for(timeout=60000)
    text = result.inner_text()
    assert f"on {len(before) - 1} of {len(before)} images" in text and "1 decided by a person" in text
    after = {s.image_id: s.latest_run_id for s in ImageQaState.objects.filter(project=world.project)}
    assert after[decided.image_id] == before[decided.image_id]
    assert all(after[i] > before[i] for i in before if i != decided.image_id)
    assert QaRun.objects.filter(image_id__in=list(before), trigger="recompute").count() == len(before) - 1
    page.screenshot(path=str(screenshot_dir / "qa_dashboard_rerun.png"), full_page=True)
    assert seen.dialogs == [] and seen.csp == [] and seen.errors == []
