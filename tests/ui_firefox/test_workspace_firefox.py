"""The annotator workspace works in Firefox too: the same flow as the Chromium tests,
driven with real pointer and key input over Marionette, asserted on pixels."""

import base64

import numpy as np
import pytest
from marionette_driver.by import By
from marionette_driver.keys import Keys

from annotation.models import Annotation
from tests.ui.workspace_world import PASSWORD, capsule_area, make_world, ramp_image, stored_labels
from tests.ui_firefox.conftest import js, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

R = 5  # brush radius (size 10)


def _log_in(ff, base_url):
    ff.navigate(f"{base_url}/accounts/login/")
    ff.find_element(By.CSS_SELECTOR, "#id_username").send_keys("ana")
    ff.find_element(By.CSS_SELECTOR, "#id_password").send_keys(PASSWORD)
    ff.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(ff, f"return location.href === {base_url + '/'!r}")


def _press(ff, key):
    ff.actions.sequence("key", "keyboard").key_down(key).key_up(key).perform()
    ff.actions.release()


def _drag(ff, points):
    client = [js(ff, "return window.__annotator.clientPoint(arguments[0], arguments[1])", *p)
              for p in points]
    seq = ff.actions.sequence("pointer", "mouse", {"pointerType": "mouse"})
    seq.pointer_move(round(client[0][0]), round(client[0][1])).pointer_down()
    for x, y in client[1:]:
        seq.pointer_move(round(x), round(y), duration=60)
    seq.pointer_up().perform()
    ff.actions.release()


def _areas(ff):
    return {int(k): v for k, v in js(ff, "return window.__annotator.areas()").items()}


def test_workspace_in_firefox_16bit_window_level_brush_undo_submit(live_server, firefox, screenshot_dir):
    annotator, project, image, guideline, assignment = make_world()
    ff = firefox
    _log_in(ff, live_server.url)
    ff.navigate(f"{live_server.url}/annotate/nuclei/")
    ff.find_element(By.CSS_SELECTOR, "#next-task").click()
    wait_for(ff, "return document.querySelector('#acknowledge')")
    # The guideline's payloads are text, not markup, in Firefox too.
    assert js(ff, "return document.querySelectorAll('#guideline-body script, #guideline-body img').length") == 0
    ff.find_element(By.CSS_SELECTOR, "#acknowledge").click()
    wait_for(ff, "return document.querySelector('#workspace[data-state=ready]')")

    # The real 16-bit samples arrived, and window/level maps them as computed.
    assert js(ff, "return window.__annotator.image.dtype") == "uint16"
    img = ramp_image()
    # max first: clearing a field commits 0, and a max at 0 would push the min below it.
    for field, value in (("#ch-0-max", "40000"), ("#ch-0-min", "500")):
        box = ff.find_element(By.CSS_SELECTOR, field)
        box.clear()
        box.send_keys(value + Keys.ENTER)
    for x, y in ((10, 10), (100, 90)):
        want = int(np.clip(np.floor((int(img[y, x]) - 500) / (40000 - 500) * 255 + 0.5), 0, 255))
        got = js(ff, "return window.__annotator.displayed(arguments[0], arguments[1])", x, y)
        assert got[:3] == [want] * 3, (x, y, got, want)

    # Two cells with the brush, an erase across the first, undone.
    js(ff, """const el = document.getElementById('brush-size'); el.value = '10';
        el.dispatchEvent(new Event('input', {bubbles: true}));
        el.dispatchEvent(new Event('change', {bubbles: true}));""")
    js(ff, "document.activeElement.blur()")  # keys go to the page, not a field
    _press(ff, "b")
    _drag(ff, [(40, 40), (90, 40)])
    _press(ff, "n")
    _drag(ff, [(40, 120), (110, 120)])
    two = _areas(ff)
    assert sorted(two) == [1, 2]
    for cell, expected in ((1, capsule_area(40, 40, 90, 40, R)), (2, capsule_area(40, 120, 110, 120, R))):
        assert abs(two[cell] - expected) <= 0.08 * expected, (cell, two[cell], expected)
    # The protected eraser removes only the active cell: select cell 1 first.
    _press(ff, "s")
    _drag(ff, [(60, 40)])
    assert js(ff, "return window.__annotator.state.activeId") == 1
    _press(ff, "e")
    _drag(ff, [(65, 25), (65, 55)])
    assert _areas(ff).get(1, 0) < two[1]
    ff.find_element(By.CSS_SELECTOR, "[data-action=undo]").click()
    assert _areas(ff) == two
    (screenshot_dir / "ff-01-two-cells.png").write_bytes(base64.b64decode(ff.screenshot(full=False)))

    ff.find_element(By.CSS_SELECTOR, "#submit").click()
    wait_for(ff, "return document.querySelector('#workspace[data-state=submitted]')")
    annotation = Annotation.objects.get(assignment=assignment)
    assert annotation.instance_count == 2
    labels = stored_labels(annotation)
    ids, counts = np.unique(labels[labels > 0], return_counts=True)
    assert dict(zip(ids.tolist(), counts.tolist(), strict=True)) == two
