"""The editor's other tools in a real Chromium: polygon, fill, merge, split, delete, and
undo depth. Every step is driven by mouse and keyboard; the label map is read back."""

import pytest

from tests.ui.workspace_world import (
    areas,
    click_at,
    drag,
    log_in,
    make_world,
    open_task,
    set_range,
    watch,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def ids(page):
    return sorted(areas(page))


def test_polygon_fill_merge_split_delete(live_server, page, screenshot_dir):
    make_world()
    seen = watch(page)
    log_in(page, live_server.url)
    open_task(page, live_server.url)

    # Polygon: four clicks and Enter; pixel centres inside the 30..60 square.
    page.keyboard.press("p")
    for x, y in ((30, 30), (60, 30), (60, 60), (30, 60)):
        click_at(page, x, y)
    page.keyboard.press("Enter")
    assert areas(page) == {1: 900}

    # A ring drawn with the brush, then Fill closes its hole (and refuses open background).
    page.keyboard.press("n")
    page.keyboard.press("b")
    set_range(page, "#brush-size", 4)
    drag(page, [(100, 30), (140, 30), (140, 70), (100, 70), (100, 30)])
    ring = areas(page)[2]
    page.keyboard.press("f")
    click_at(page, 120, 50)
    filled = areas(page)[2]
    assert page.evaluate("window.__annotator.idAt(120, 50)") == 2
    assert filled > ring + 30 * 30
    click_at(page, 200, 150)
    assert "fill only closes holes" in page.inner_text("#status")
    assert areas(page)[2] == filled
    page.screenshot(path=str(screenshot_dir / "ws-12-polygon-fill.png"))

    # Merge: select cell 1, then click cell 2 with the merge tool.
    page.keyboard.press("s")
    click_at(page, 45, 45)
    page.keyboard.press("m")
    click_at(page, 120, 50)
    assert areas(page) == {1: 900 + filled}

    # Split the square part along a vertical line: the piece the line cuts off becomes a
    # new cell, the line's pixels background; the ring (not cut) stays with its half.
    page.keyboard.press("s")
    click_at(page, 45, 45)
    page.keyboard.press("x")
    drag(page, [(45.5, 20), (45.5, 70)])
    parts = areas(page)
    assert len(parts) == 2
    assert sum(parts.values()) == 900 + filled - 30   # one 30-pixel column became background
    assert page.evaluate("window.__annotator.idAt(45, 45)") == 0
    left = page.evaluate("window.__annotator.idAt(35, 45)")
    right = page.evaluate("window.__annotator.idAt(55, 45)")
    assert (left, right) == (1, 2)                        # the larger half keeps the id
    assert page.evaluate("window.__annotator.idAt(120, 50)") == 1
    assert parts[2] == 14 * 30
    page.screenshot(path=str(screenshot_dir / "ws-13-split.png"))

    # Delete the left part; undo brings it back.
    page.keyboard.press("s")
    click_at(page, 35, 45)
    page.keyboard.press("Delete")
    assert ids(page) == [right]
    page.keyboard.press("Control+z")
    assert areas(page) == parts
    assert seen.page_errors == []


def test_undo_keeps_at_least_fifty_strokes(live_server, page):
    make_world()
    watch(page)
    log_in(page, live_server.url)
    open_task(page, live_server.url)
    set_range(page, "#brush-size", 4)
    history = []
    for k in range(60):
        page.keyboard.press("n")
        click_at(page, 10 + (k % 12) * 18, 15 + (k // 12) * 30)
        history.append(areas(page))
    assert len(history[-1]) == 60
    for _ in range(55):
        page.keyboard.press("Control+z")
    assert areas(page) == history[4]
    assert page.evaluate("window.__annotator.state.undoDepth") == 5
    for _ in range(55):
        page.keyboard.press("Control+Shift+z")
    assert areas(page) == history[-1]


def test_lasso_and_zoom_pan_keep_the_point_under_the_cursor(live_server, page):
    make_world()
    seen = watch(page)
    log_in(page, live_server.url)
    open_task(page, live_server.url)
    # Lasso: drag a closed loop with the polygon tool; it closes on release.
    page.keyboard.press("p")
    drag(page, [(150, 40), (190, 40), (190, 80), (150, 80), (150, 41)], steps=8)
    lasso = areas(page)
    assert list(lasso) == [1] and abs(lasso[1] - 40 * 40) <= 0.1 * 1600
    # Wheel zoom about the cursor: the image point under it stays under it.
    x, y = page.evaluate("window.__annotator.clientPoint(120, 90)")
    page.mouse.move(x, y)
    zoom0 = page.evaluate("window.__annotator.view.zoom")
    page.mouse.wheel(0, -400)
    page.wait_for_timeout(100)
    assert page.evaluate("window.__annotator.view.zoom") > 1.5 * zoom0
    ix, iy = page.evaluate(f"window.__annotator.view.toImage({x}, {y})")
    assert abs(ix - 120) < 0.5 and abs(iy - 90) < 0.5
    # Space + drag pans by the distance dragged.
    page.keyboard.down(" ")
    page.mouse.down()
    page.mouse.move(x + 100, y + 50, steps=5)
    page.mouse.up()
    page.keyboard.up(" ")
    zoom = page.evaluate("window.__annotator.view.zoom")
    ix2, iy2 = page.evaluate(f"window.__annotator.view.toImage({x}, {y})")
    assert abs((120 - ix2) * zoom - 100) < 2 and abs((90 - iy2) * zoom - 50) < 2
    assert areas(page) == lasso                  # panning painted nothing
    assert seen.page_errors == []
