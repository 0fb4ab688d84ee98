"""A model's pre-annotation in the workspace: the draft row a prediction leaves (created
here directly) opens as the starting label map under a clear badge naming the model; the
annotator corrects it and the submission is recorded as model-assisted."""

import hashlib

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from annotation.models import Annotation, AnnotationDraft
from tests.factories import png_bytes
from tests.ui.workspace_world import (
    HEIGHT,
    WIDTH,
    XSS,
    areas,
    drag,
    log_in,
    make_world,
    open_task,
    stored_labels,
    watch,
)
from training.models import ModelVersion

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def prediction() -> np.ndarray:
    """Two predicted cells: a 20 x 20 square (id 4) and a 10 x 30 bar (id 9)."""
    labels = np.zeros((HEIGHT, WIDTH), np.uint16)
    labels[40:60, 50:70] = 4
    labels[110:120, 150:180] = 9
    return labels


def preannotated_draft(assignment, model) -> AnnotationDraft:
    content = png_bytes(prediction())
    name = default_storage.save(f"projects/{assignment.image.project_id}/drafts/{assignment.pk}/p.png",
                                ContentFile(content))
    return AnnotationDraft.objects.create(
        assignment=assignment, labels=name, sha256=hashlib.sha256(content).hexdigest(),
        height=HEIGHT, width=WIDTH, instance_count=2, base_revision=0, state={}, saves=0,
        model_assisted=True, model_version=model,
    )


def test_preannotated_draft_opens_with_its_badge_and_submits_as_model_assisted(live_server, page, screenshot_dir):
    annotator, project, image, guideline, assignment = make_world()
    model = ModelVersion.objects.create(
        project=project, name=f"cyto-ft{XSS}", version=3, backbone="cellpose", weights="models/x.pt",
        weights_sha256="0" * 64, code_version="test",
    )
    preannotated_draft(assignment, model)
    seen = watch(page)
    log_in(page, live_server.url)
    open_task(page, live_server.url)

    badge = page.inner_text("#model-badge")
    assert badge == f"pre-annotated by model cyto-ft{XSS} v3 — correct it"   # shown as text
    assert "Pre-annotated by model" in page.inner_text("#status")
    assert areas(page) == {4: 400, 9: 300}
    page.screenshot(path=str(screenshot_dir / "ws-23-preannotated.png"))

    # Correct it: erase the bar's right third, then submit.
    page.keyboard.press("s")
    page.mouse.click(*page.evaluate("window.__annotator.clientPoint(160, 115)"))
    page.keyboard.press("e")
    page.keyboard.press("d")            # eraser without protect: erases any cell
    page.eval_on_selector("#brush-size", "el => { el.value = '12'; el.dispatchEvent(new Event('input')); }")
    drag(page, [(176, 105), (176, 125)])
    corrected = areas(page)
    assert corrected == {4: 400, 9: 200}              # columns 170..179 of the bar erased
    page.click("#submit")
    page.wait_for_selector("#after-submit:not([hidden])", timeout=20000)

    annotation = Annotation.objects.get(assignment=assignment)
    assert annotation.source == "model_assisted"
    stored = stored_labels(annotation)
    assert sorted(np.bincount(stored.ravel())[1:][np.bincount(stored.ravel())[1:] > 0].tolist()) == sorted(
        corrected.values())
    assert seen.dialogs == [] and seen.csp_errors == [] and seen.page_errors == []


def test_an_ordinary_draft_shows_no_model_badge(live_server, page):
    annotator, project, image, guideline, assignment = make_world()
    draft = preannotated_draft(assignment, None)
    AnnotationDraft.objects.filter(pk=draft.pk).update(model_assisted=False, saves=2)
    log_in(page, live_server.url)
    open_task(page, live_server.url)
    assert page.query_selector("#model-badge") is None
    assert "Restored your draft" in page.inner_text("#status")
    assert areas(page) == {4: 400, 9: 300}
