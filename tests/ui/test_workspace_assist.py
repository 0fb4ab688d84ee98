"""SAM assist in the workspace, in a real Chromium against the real assist endpoint: the
classical fallback (no SAM weights) and a tiny randomly initialised SAM. A box (drag) or
points (Shift/Alt+click) ask for a cell; the proposal is accepted as a new cell in one
undo step, respecting "don't paint over", or rejected. Pixels are read back through
``window.__annotator``."""

import numpy as np
import pytest

from tests.ui.workspace_world import (
    HEIGHT,
    WIDTH,
    areas,
    capsule_area,
    click_at,
    drag,
    log_in,
    make_world,
    open_task,
    set_range,
    watch,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The first bright disc of ramp_image(): centre (x=60, y=50), radius 15.
DISC = int((((np.mgrid[0:HEIGHT, 0:WIDTH][0] - 50) ** 2 + (np.mgrid[0:HEIGHT, 0:WIDTH][1] - 60) ** 2) < 225).sum())


def start(page, live_server, settings, *, sam_weights: str = ""):
    """A task opened with assist answered by SAM (these weights) or the classical fallback."""
    settings.ASSIST_SAM_WEIGHTS = sam_weights
    settings.TRAINING_DEVICE = "cpu"
    make_world()
    seen = watch(page)
    log_in(page, live_server.url)
    open_task(page, live_server.url)
    return seen


def wait_answer(page, requests: int) -> dict:
    page.wait_for_function(
        "n => { const s = window.__annotator.assist.state; return s.requests >= n && !s.busy; }",
        arg=requests, timeout=20000,
    )
    return page.evaluate("window.__annotator.assist.state")


def box_prompt(page, x0, y0, x1, y1, requests: int) -> dict:
    drag(page, [(x0, y0), (x1, y1)])
    return wait_answer(page, requests)


def test_box_assist_adds_the_bright_cell_as_one_undoable_cell(live_server, page, screenshot_dir, settings):
    seen = start(page, live_server, settings)
    assert page.is_enabled("#assist")
    assert page.inner_text("#assist-note") == ""

    page.keyboard.press("i")
    assert page.evaluate("window.__annotator.state.tool") == "assist"
    assert page.get_attribute("#assist", "aria-pressed") == "true"
    state = box_prompt(page, 38, 28, 82, 72, 1)
    proposal = state["proposal"]
    assert proposal["method"] == "classical:otsu+watershed"
    assert abs(proposal["area"] - DISC) < 0.12 * DISC
    assert "classical:otsu+watershed" in page.inner_text("#assist-method")
    assert "classical fallback" in page.inner_text("#assist-method")
    assert areas(page) == {}                      # a proposal is not an edit
    page.screenshot(path=str(screenshot_dir / "ws-20-assist-proposal.png"))

    page.keyboard.press("Enter")
    assert areas(page) == {1: proposal["area"]}
    for x, y in ((60, 50), (48, 50), (72, 50), (60, 38), (60, 62)):
        assert page.evaluate(f"window.__annotator.idAt({x}, {y})") == 1
    for x, y in ((40, 30), (80, 70), (60, 80)):
        assert page.evaluate(f"window.__annotator.idAt({x}, {y})") == 0
    assert page.is_hidden("#assist-panel")
    assert page.evaluate("window.__annotator.state.undoDepth") == 1
    assert page.evaluate("window.__annotator.state.selected") == 1
    page.screenshot(path=str(screenshot_dir / "ws-21-assist-accepted.png"))

    page.keyboard.press("Control+z")
    assert areas(page) == {}
    page.keyboard.press("Control+Shift+z")
    assert areas(page) == {1: proposal["area"]}

    # Reject: the other disc's proposal goes away and nothing is written.
    state = box_prompt(page, 150, 100, 190, 140, 2)
    assert state["proposal"]["area"] > 500
    page.click("#assist-reject")
    assert page.evaluate("window.__annotator.assist.state.proposal") is None
    assert areas(page) == {1: proposal["area"]}

    # Points alone: the classical fallback needs a box, and says so (400 from the server).
    page.keyboard.down("Shift")
    click_at(page, 170, 120)
    page.keyboard.up("Shift")
    state = wait_answer(page, 3)
    assert state["proposal"] is None and state["box"] is None
    assert [round(v) for v in state["points"][0]] == [170, 120, 1] and len(state["points"]) == 1
    assert "needs a box" in page.inner_text("#assist-method")
    assert seen.dialogs == [] and seen.csp_errors == [] and seen.page_errors == []


def test_assist_respects_dont_paint_over(live_server, page, screenshot_dir, settings):
    seen = start(page, live_server, settings)

    # A neighbour drawn with the brush across the disc's right half.
    set_range(page, "#brush-size", 10)
    drag(page, [(66, 40), (66, 60)])
    neighbour = capsule_area(66, 40, 66, 60, 5)
    assert areas(page) == {1: neighbour}

    page.keyboard.press("n")
    page.keyboard.press("i")
    proposal = box_prompt(page, 38, 28, 82, 72, 1)["proposal"]
    page.click("#assist-accept")
    cells = areas(page)
    assert cells[1] == neighbour                           # the neighbour is intact
    assert 0 < cells[2] < proposal["area"]                 # the new cell is what was free
    assert page.evaluate("window.__annotator.idAt(66, 50)") == 1
    assert page.evaluate("window.__annotator.idAt(52, 50)") == 2
    assert "were kept" in page.inner_text("#status")
    page.screenshot(path=str(screenshot_dir / "ws-22-assist-protect.png"))
    assert seen.dialogs == [] and seen.page_errors == []


def test_assist_with_a_tiny_sam_answers_points_and_names_the_model(live_server, page, settings, tmp_path):
    from tests.training_service.test_assist import _tiny_sam_file

    seen = start(page, live_server, settings, sam_weights=str(_tiny_sam_file(tmp_path / "tiny_sam.pt")))
    page.keyboard.press("i")
    page.keyboard.down("Shift")
    click_at(page, 60, 50)
    page.keyboard.up("Shift")
    state = wait_answer(page, 1)
    # Untrained: the mask is whatever the random decoder says (seed 0: a large blob); the
    # page must show it as SAM's and write exactly its pixels.
    assert state["lastMethod"] == "sam:tiny_sam.pt" and state["proposal"]["area"] > 0
    assert "sam:tiny_sam.pt" in page.inner_text("#assist-method")
    assert "fallback" not in page.inner_text("#assist-method")
    page.keyboard.press("Enter")
    assert areas(page) == {1: state["proposal"]["area"]}
    assert page.evaluate("window.__annotator.state.undoDepth") == 1
    assert seen.page_errors == []
