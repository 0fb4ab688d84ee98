"""The annotator workspace in a real Chromium: task flow, brush/eraser/undo, submit,
"don't paint over", window/level on a 16-bit image, autosave, rule check, XSS under CSP.

Assertions read the label map through ``window.__annotator`` and the stored mask from
storage; screenshots of each state go to the screenshot folder for a person to look at.
"""

import numpy as np
import pytest

from annotation.enums import AnnotationSource, AssignmentStatus
from annotation.models import Annotation, AnnotationDraft
from guidelines.models import Acknowledgement
from tests.ui.workspace_world import (
    XSS,
    areas,
    capsule_area,
    click_at,
    drag,
    log_in,
    make_world,
    open_task,
    ramp_image,
    set_range,
    stored_labels,
    wait_ready,
    watch,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

R = 5  # brush radius used below (size 10)


def test_brush_two_cells_erase_undo_submit_stores_two_instances(live_server, page, screenshot_dir):
    annotator, project, image, guideline, assignment = make_world()
    seen = watch(page)
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/annotate/nuclei/")
    page.screenshot(path=str(screenshot_dir / "ws-01-queue.png"), full_page=True)
    page.click("#next-task")
    # The guideline comes first, rendered from Markdown with every payload escaped.
    page.wait_for_selector("#acknowledge")
    body = page.locator("#guideline-body")
    assert body.locator("h1").inner_text() == "Outline nuclei"
    assert body.locator("strong").inner_text() == "Split"
    assert "<script>alert('xss')</script>" in body.inner_text()
    assert body.locator("script, img, a[href^=javascript]").count() == 0
    page.screenshot(path=str(screenshot_dir / "ws-02-guideline.png"), full_page=True)
    page.click("#acknowledge")
    wait_ready(page)
    assert Acknowledgement.objects.filter(user=annotator, guideline_version=guideline).exists()
    assignment.refresh_from_db()
    assert assignment.status == AssignmentStatus.IN_PROGRESS

    set_range(page, "#brush-size", 2 * R)
    page.keyboard.press("b")
    drag(page, [(40, 40), (90, 40)])
    page.keyboard.press("n")
    drag(page, [(40, 120), (110, 120)])
    two = areas(page)
    assert sorted(two) == [1, 2]
    for cell, expected in ((1, capsule_area(40, 40, 90, 40, R)), (2, capsule_area(40, 120, 110, 120, R))):
        assert abs(two[cell] - expected) <= 0.06 * expected, (cell, two[cell], expected)
    page.screenshot(path=str(screenshot_dir / "ws-03-two-cells.png"))

    # Erase across cell 1 (select it: the protected eraser removes only the active cell).
    page.keyboard.press("s")
    click_at(page, 60, 40)
    assert page.evaluate("window.__annotator.state.activeId") == 1
    page.keyboard.press("e")
    drag(page, [(65, 25), (65, 55)])
    erased = areas(page)
    assert erased[1] < two[1] - 5 * R and erased[2] == two[2]
    page.screenshot(path=str(screenshot_dir / "ws-04-erased.png"))
    page.keyboard.press("Control+z")
    assert areas(page) == two
    page.screenshot(path=str(screenshot_dir / "ws-05-undone.png"))

    page.click("#submit")
    page.wait_for_selector("#workspace[data-state=submitted]", timeout=20000)
    page.screenshot(path=str(screenshot_dir / "ws-06-submitted.png"))
    annotation = Annotation.objects.get(assignment=assignment)
    assert annotation.revision == 1 and annotation.source == AnnotationSource.MANUAL
    assert annotation.instance_count == 2
    assert annotation.time_spent_s is not None and annotation.time_spent_s >= 0
    labels = stored_labels(annotation)
    ids, counts = np.unique(labels[labels > 0], return_counts=True)
    assert dict(zip(ids.tolist(), counts.tolist(), strict=True)) == two
    assert not AnnotationDraft.objects.filter(assignment=assignment).exists()
    # Nothing else is queued: "next task" says so on the queue page.
    page.click("#next-after-submit")
    page.wait_for_selector("text=Nothing left to annotate")
    assert seen.dialogs == [] and seen.csp_errors == [] and seen.page_errors == []


def test_dont_paint_over_keeps_the_neighbour_intact(live_server, page, screenshot_dir):
    make_world()
    seen = watch(page)
    log_in(page, live_server.url)
    open_task(page, live_server.url)
    set_range(page, "#brush-size", 2 * R)
    assert page.is_checked("#protect")
    drag(page, [(60, 60), (60, 110)])
    before = page.evaluate(
        "() => Array.from(window.__annotator.labels.data).reduce((a, v, i) => (v === 1 && a.push(i), a), [])"
    )
    page.keyboard.press("n")
    drag(page, [(40, 85), (80, 85)])          # crosses cell 1
    after = page.evaluate(
        "() => Array.from(window.__annotator.labels.data).reduce((a, v, i) => (v === 1 && a.push(i), a), [])"
    )
    assert after == before                      # not one pixel of cell 1 changed
    got = areas(page)
    assert 0 < got[2] < capsule_area(40, 85, 80, 85, R)
    page.screenshot(path=str(screenshot_dir / "ws-07-protected.png"))
    # Without the protection the same stroke does take pixels from the neighbour.
    page.keyboard.press("d")
    assert not page.is_checked("#protect")
    page.keyboard.press("n")
    drag(page, [(40, 75), (80, 75)])
    assert areas(page)[1] < len(before)
    assert seen.page_errors == []


def test_window_level_changes_displayed_values_as_computed(live_server, page, screenshot_dir):
    make_world()
    watch(page)
    log_in(page, live_server.url)
    open_task(page, live_server.url)
    img = ramp_image()
    assert page.evaluate("window.__annotator.image.dtype") == "uint16"
    # Auto-contrast from the 0.5 / 99.5 percentiles of the real 16-bit samples.
    lo, hi = np.percentile(img, [0.5, 99.5], method="lower")
    got = page.evaluate("window.__annotator.image.channels[0]")
    assert abs(got["min"] - lo) <= 1 and abs(got["max"] - hi) <= 200

    page.select_option("#mask-mode", "off")
    page.evaluate("window.__annotator.setView({zoom: 8, x: 11, y: 10})")

    def shown(x, y):
        return page.evaluate(f"window.__annotator.screenPixel({x}, {y})")[:3]

    def expected(v, vmin, vmax):
        return int(np.clip(np.floor((v - vmin) / (vmax - vmin) * 255 + 0.5), 0, 255))

    for vmin, vmax in ((0, 2000), (500, 40000)):
        page.fill("#ch-0-min", str(vmin))
        page.press("#ch-0-min", "Enter")
        page.fill("#ch-0-max", str(vmax))
        page.press("#ch-0-max", "Enter")
        for x, y in ((10, 10), (11, 10), (100, 90)):
            want = expected(int(img[y, x]), vmin, vmax)
            assert page.evaluate(f"window.__annotator.displayed({x}, {y})")[:3] == [want] * 3
            if x < 20:  # in view at this zoom
                assert shown(x, y) == [want] * 3, (vmin, vmax, x, y)
        page.screenshot(path=str(screenshot_dir / f"ws-08-window-{vmin}-{vmax}.png"))
    assert shown(10, 10) == [expected(1000, 500, 40000)] * 3 == [3] * 3


def test_autosave_restores_the_draft_after_reload(live_server, page, screenshot_dir):
    _, _, _, _, assignment = make_world()
    watch(page)
    log_in(page, live_server.url)
    open_task(page, live_server.url)
    set_range(page, "#brush-size", 2 * R)
    drag(page, [(50, 50), (120, 70)])
    drawn = areas(page)
    page.wait_for_function(
        "() => window.__annotator.autosave.saves >= 1 && !window.__annotator.autosave.dirty", timeout=15000
    )
    draft = AnnotationDraft.objects.get(assignment=assignment)
    assert draft.instance_count == 1 and draft.base_revision == 0
    page.reload()
    wait_ready(page)
    assert areas(page) == drawn
    assert "Restored your draft" in page.inner_text("#status")
    page.screenshot(path=str(screenshot_dir / "ws-09-restored.png"))


def test_xss_in_names_and_guideline_raises_no_dialog(live_server, page, screenshot_dir):
    make_world(name=f"Plate {XSS}")
    seen = watch(page)
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/")
    open_task(page, live_server.url)
    page.click("summary:has-text('Guideline')")
    page.keyboard.press("?")
    page.wait_for_selector("#help[open]")
    page.screenshot(path=str(screenshot_dir / "ws-10-help-and-guideline.png"))
    page.keyboard.press("Escape")
    assert XSS in page.inner_text(".ws-bar")          # the image name, shown as text
    assert page.locator("main img, main script:not([type=module]):not([type='application/json'])").count() == 0
    assert seen.dialogs == [] and seen.csp_errors == [] and seen.page_errors == []


def test_blocking_rule_violation_is_shown_on_the_cell_and_blocks_submit(live_server, page, screenshot_dir):
    _, _, _, _, assignment = make_world(
        rules={"min_area": {"value": 150, "unit": "px", "severity": "blocking"}}
    )
    seen = watch(page)
    log_in(page, live_server.url)
    open_task(page, live_server.url)
    set_range(page, "#brush-size", 2 * R)
    drag(page, [(40, 40), (100, 40)])          # ~650 px: fine
    page.keyboard.press("n")
    set_range(page, "#brush-size", 6)
    drag(page, [(150, 130), (151, 130)])       # ~30 px: under the 150 px minimum
    small = [k for k, v in areas(page).items() if v < 150]
    assert len(small) == 1
    page.click("#submit")
    page.wait_for_selector("#violations li.blocking")
    assert "Not submitted" in page.inner_text("#status")
    assert page.locator("#violations li.blocking button").all_inner_texts() == [f"#{small[0]}"]
    flagged = page.evaluate("[...window.__annotator.mask.flagged]")
    assert flagged == small
    page.screenshot(path=str(screenshot_dir / "ws-11-blocking-violation.png"))
    assert not Annotation.objects.filter(assignment=assignment).exists()
    # Clicking the cell in the list selects it; deleting it makes the mask acceptable.
    page.click("#violations li.blocking button")
    assert page.evaluate("window.__annotator.state.selected") == small[0]
    page.keyboard.press("Delete")
    page.click("#submit")
    page.wait_for_selector("#workspace[data-state=submitted]", timeout=20000)
    assert Annotation.objects.get(assignment=assignment).instance_count == 1
    assert page.locator("#violations li").count() == 0
    assert seen.page_errors == []


def test_two_channel_composite_with_colours_windows_and_toggles(live_server, page, screenshot_dir):
    from annotation.enums import Role
    from tests.factories import (
        AcknowledgementFactory,
        AssignmentFactory,
        GuidelineVersionFactory,
        ImageFactory,
        MembershipFactory,
        ProjectFactory,
        UserFactory,
        tiff_bytes,
    )

    user = UserFactory(username="ana")
    project = ProjectFactory(slug="two-channel")
    MembershipFactory(user=user, project=project, role=Role.ANNOTATOR)
    pixels = np.zeros((60, 80, 2), np.uint16)
    pixels[..., 0] = np.arange(80, dtype=np.uint16)[None, :] * 12     # nuclei channel: ramp
    pixels[..., 1] = np.arange(60, dtype=np.uint16)[:, None] * 16     # membrane channel
    pixels[5, 5] = (500, 250)
    image = ImageFactory(project=project, content=tiff_bytes(pixels, photometric="minisblack", planarconfig="contig"),
                         height=60, width=80, channels=2, format="tiff")
    AcknowledgementFactory(user=user, guideline_version=GuidelineVersionFactory(project=project, published=True))
    assignment = AssignmentFactory(image=image, annotator=user)
    watch(page)
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/annotate/two-channel/tasks/{assignment.pk}/")
    wait_ready(page)
    assert page.evaluate("window.__annotator.image.planes.length") == 2
    assert page.input_value("#ch-0-colour") == "green" and page.input_value("#ch-1-colour") == "magenta"
    for c in (0, 1):
        page.fill(f"#ch-{c}-min", "0")
        page.press(f"#ch-{c}-min", "Enter")
        page.fill(f"#ch-{c}-max", "1000")
        page.press(f"#ch-{c}-max", "Enter")
    # 500 -> 128 in green, 250 -> 64 in magenta: added, per component.
    assert page.evaluate("window.__annotator.displayed(5, 5)") == [64, 128, 64, 255]
    page.screenshot(path=str(screenshot_dir / "ws-14-two-channels.png"))
    page.uncheck("#ch-1-on")
    assert page.evaluate("window.__annotator.displayed(5, 5)") == [0, 128, 0, 255]
    page.select_option("#ch-0-colour", "red")
    assert page.evaluate("window.__annotator.displayed(5, 5)") == [128, 0, 0, 255]
