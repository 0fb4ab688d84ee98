"""Per-cell classes in the workspace (Chromium): the picker and the number keys set the
selected cell's class from the project's cell classes (one named with an XSS payload),
classed cells take their class colour, the legend counts them, the draft keeps them over a
reload, and the submission stores them as the annotation's instance classes."""

import numpy as np
import pytest

from annotation.models import Annotation
from tests.ui.workspace_world import (
    XSS,
    areas,
    click_at,
    log_in,
    make_world,
    open_task,
    stored_labels,
    wait_ready,
    watch,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def square(page, x0, y0, x1, y1):
    page.keyboard.press("p")
    for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1)):
        click_at(page, x, y)
    page.keyboard.press("Enter")


def select_cell(page, x, y):
    page.keyboard.press("s")
    click_at(page, x, y)


def packed(rgb):
    r, g, b = rgb
    return (b << 16) | (g << 8) | r


def test_classes_are_set_shown_escaped_kept_and_submitted(live_server, page, screenshot_dir):
    annotator, project, image, guideline, assignment = make_world()
    seen = watch(page)
    log_in(page, live_server.url)
    open_task(page, live_server.url)
    assert page.is_disabled("#cell-class")
    square(page, 30, 30, 60, 60)           # cell 1: 30 x 30
    page.keyboard.press("n")
    square(page, 100, 30, 120, 50)         # cell 2: 20 x 20
    assert areas(page) == {1: 900, 2: 400}

    select_cell(page, 45, 45)
    assert page.is_enabled("#cell-class")
    page.select_option("#cell-class", value=XSS)
    select_cell(page, 110, 40)
    page.keyboard.press("1")               # the first class: nucleus
    assert page.evaluate("window.__annotator.classOf()") == {"1": XSS, "2": "nucleus"}
    assert page.input_value("#cell-class") == "nucleus"
    legend = page.inner_text("#class-legend")
    assert "nucleus: 1" in legend and f"{XSS}: 1" in legend          # the payload as text
    assert page.evaluate("window.__annotator.mask.rgb(2)") == packed((255, 159, 10))
    assert page.evaluate("window.__annotator.mask.rgb(1)") == packed((48, 209, 88))
    page.screenshot(path=str(screenshot_dir / "ws-24-classes.png"))

    # The draft keeps the classes over a reload.
    page.wait_for_function("() => window.__annotator.autosave.saves >= 1 && !window.__annotator.autosave.dirty",
                           timeout=20000)
    page.reload()
    wait_ready(page)
    assert page.evaluate("window.__annotator.classOf()") == {"1": XSS, "2": "nucleus"}
    assert page.evaluate("window.__annotator.mask.rgb(1)") == packed((48, 209, 88))

    page.click("#submit")
    page.wait_for_selector("#after-submit:not([hidden])", timeout=20000)
    annotation = Annotation.objects.get(assignment=assignment)
    assert annotation.instance_classes == {"1": XSS, "2": "nucleus"}
    assert annotation.source == "manual"
    stored = stored_labels(annotation)
    assert np.bincount(stored.ravel()).tolist()[1:] == [900, 400]
    assert (stored[30:60, 30:60] == 1).all() and (stored[30:50, 100:120] == 2).all()
    assert seen.dialogs == [] and seen.csp_errors == [] and seen.page_errors == []


def test_deleting_a_classed_cell_drops_its_class(live_server, page):
    make_world()
    log_in(page, live_server.url)
    open_task(page, live_server.url)
    square(page, 30, 30, 60, 60)
    select_cell(page, 45, 45)
    page.keyboard.press("2")
    assert page.evaluate("window.__annotator.classOf()") == {"1": XSS}
    page.keyboard.press("Delete")
    assert page.evaluate("window.__annotator.classOf()") == {}
    page.keyboard.press("n")
    square(page, 30, 30, 60, 60)            # the same id again, unclassed
    assert areas(page) == {1: 900}
    assert page.evaluate("window.__annotator.classOf()") == {}
    assert "nucleus: 0" in page.inner_text("#class-legend")


def test_a_project_without_classes_says_so(live_server, page):
    annotator, project, image, guideline, assignment = make_world()
    project.cell_classes = []
    project.save(update_fields=["cell_classes"])
    log_in(page, live_server.url)
    open_task(page, live_server.url)
    assert page.is_hidden("#cell-class")
    assert "defines no cell classes" in page.inner_text("#cell-class-note")
