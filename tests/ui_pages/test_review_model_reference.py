"""A registered model as a QA run's reference shows on the review page as one more viewer,
beside the annotators and never among them (real Chromium, a tiny Cellpose trained through
the real training service)."""

import numpy as np
import pytest

from qa.services import image_qa_run
from qa.services.masks import mask_read
from tests.training_service.conftest import tmodel, tworld  # noqa: F401
from tests.ui_pages.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_review_page_shows_the_reference_models_prediction(live_server, page, seen, screenshot_dir,
                                                          tworld, tmodel):  # noqa: F811
    image = tworld.images[0]
    run = image_qa_run(image=image, actor=tworld.users["qa_lead"], reference_model=tmodel.pk)
    stored = mask_read(run.model_reference.prediction.name)
    log_in(page, live_server.url, tworld.users["qa_lead"].username)
    page.goto(f"{live_server.url}/qa/{tworld.project.slug}/images/{image.pk}/")
    page.wait_for_selector("#review[data-state='ready']", timeout=30000)
    model = page.locator("#sides .qa-stage[data-mask='model']")
    assert model.count() == 1
    assert f"model {tmodel.name} v{tmodel.version} (reference)" in model.inner_text()
    # Its labels are the stored prediction's, pixel for pixel.
    shown = page.evaluate("Array.from(window.qaReview.state.maps.model.data)")
    assert np.array_equal(np.asarray(shown).reshape(stored.shape), stored)
    # It is no annotator: not a layer of the overlay, not a column of the cell table.
    assert page.locator("[data-layer='model']").count() == 0
    assert page.evaluate("window.qaReview.masks").count("consensus") == 1
    assert not any("model" in name for name in page.evaluate("window.qaReview.masks"))
    model.scroll_into_view_if_needed()
    page.screenshot(path=str(screenshot_dir / "qa_review_model_reference.png"), full_page=True)
    assert seen.dialogs == [] and seen.csp == [] and seen.errors == []


def test_the_model_labels_page_endpoint(client, tworld, tmodel):  # noqa: F811
    image, other = tworld.images[0], tworld.images[1]
    run = image_qa_run(image=image, actor=tworld.users["qa_lead"], reference_model=tmodel.pk)
    stored = mask_read(run.model_reference.prediction.name)
    base = f"/qa/{tworld.project.slug}/images"
    client.force_login(tworld.users["qa_lead"])
    response = client.get(f"{base}/{image.pk}/model-reference/labels/")
    assert response.status_code == 200
    shape = [int(x) for x in response["X-Array-Shape"].split(",")]
    assert shape == [1, *stored.shape]
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert np.array_equal(np.frombuffer(body, dtype=response["X-Array-Dtype"]).reshape(stored.shape), stored)
    assert client.get(f"{base}/{other.pk}/model-reference/labels/").status_code == 404  # no reference there
    client.force_login(tworld.users["annotator"])
    assert client.get(f"{base}/{image.pk}/model-reference/labels/").status_code == 403
