"""Pre-annotation and the active-learning queue from the ML pages, with a tiny trained Cellpose.

The model is trained for one epoch by the real training service (randomly initialised tiny
network, CPU), so prediction, ranking and queueing run the production code paths.
"""

import pytest
from django.test.utils import override_settings

from annotation.enums import AssignmentStatus
from annotation.models import AnnotationDraft, Assignment, Job
from tests.datasets.conftest import build_world
from tests.datasets.helpers import make_snapshot
from tests.factories import AssignmentFactory, ImageFactory
from tests.training_service.conftest import TINY_HYPER, TINY_OPTIONS
from tests.ui_pages.conftest import log_in
from training.services import RunSpec, run_create
from training.services.active_learning import QUEUE_PRIORITY, RANK_TASK

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def trained():
    with override_settings(TRAINING_DEVICE="cpu"):
        world = build_world(10, slug="mla")
        snapshot = make_snapshot(world, name="nuclei")
        run = run_create(actor=world.users["ml_engineer"], project=world.project, spec=RunSpec(
            name="nuclei-cp", snapshot_id=snapshot.pk, hyperparameters={**TINY_HYPER, "epochs": 1},
            options=dict(TINY_OPTIONS)))
        run.refresh_from_db()
        assert run.model_version is not None, run.error
        world.model = run.model_version
        world.fresh = [ImageFactory(project=world.project, batch="new") for _ in range(3)]
        for image in world.fresh[:2]:  # open, not annotated: pre-annotation targets
            AssignmentFactory(image=image, annotator=world.users["annotator"])
        yield world


def test_pre_annotation_then_active_learning_queue(live_server, page, seen, screenshot_dir, trained):
    log_in(page, live_server.url, "mla-ml_engineer")
    page.goto(f"{live_server.url}/ml/mla/models/{trained.model.pk}/")
    page.wait_for_selector("body[data-ml-ready='1']")
    page.fill("#predict-form [name=batch]", "new")
    page.click("#predict-form button")
    page.wait_for_selector("#predict-result[data-drafts]", timeout=120000)
    assert page.get_attribute("#predict-result", "data-drafts") == "2"
    assert "2 of 3 images predicted" in page.inner_text("#predict-result")
    drafts = AnnotationDraft.objects.filter(assignment__image__in=trained.fresh)
    assert drafts.count() == 2 and {d.model_version_id for d in drafts} == {trained.model.pk}
    # Bad input: an image of another project is a 400 naming the field; nothing is queued.
    page.fill("#predict-form [name=batch]", "")
    page.fill("#predict-form [name=images]", "999999")
    page.click("#predict-form button")
    page.wait_for_selector("#predict-result.qa-msg-err")
    assert "images" in page.inner_text("#predict-result")
    page.screenshot(path=str(screenshot_dir / "ml_model_preannotate.png"), full_page=True)

    # Opening the page only reads: no ranking yet is said, and nothing is started until asked.
    page.goto(f"{live_server.url}/ml/mla/active-learning/?model={trained.model.pk}")
    page.wait_for_selector("#al[data-state='empty']")
    assert "No ranking by this model yet" in page.inner_text("#al-result")
    assert page.inner_text("#al-refresh") == "Rank now"
    ranking_jobs = Job.objects.filter(kind=RANK_TASK)
    assert not ranking_jobs.exists()
    page.screenshot(path=str(screenshot_dir / "ml_active_learning_none.png"), full_page=True)
    # The ML engineer ranks (a POST, followed with progress) but queueing is the manager's.
    page.click("#al-refresh")
    page.wait_for_selector("#al[data-state='ready']", timeout=120000)
    assert page.inner_text("#al-refresh") == "Rank again"
    assert f"Ranked by {trained.model.name} v{trained.model.version}" in page.inner_text("#al-result")
    assert ranking_jobs.count() == 1 and ranking_jobs.get().created_by.username == "mla-ml_engineer"
    assert page.locator("[data-queue]").count() == 0
    page.context.clear_cookies()
    log_in(page, live_server.url, "mla-manager")
    page.goto(f"{live_server.url}/ml/mla/active-learning/?model={trained.model.pk}")
    page.wait_for_selector("#al[data-state='ready']")  # the ranking computed above, read at once
    assert ranking_jobs.count() == 1
    unlabelled = page.locator("#al-unlabelled tbody tr[data-image]")
    assert sorted(int(r.get_attribute("data-image")) for r in unlabelled.all()) == sorted(i.pk for i in trained.fresh)
    scores = [float(t) for t in page.locator("#al-unlabelled tbody td:nth-child(3)").all_inner_texts()]
    assert scores == sorted(scores, reverse=True)
    assert page.locator("#al-labelled tbody tr[data-image]").count() > 0
    page.screenshot(path=str(screenshot_dir / "ml_active_learning.png"), full_page=True)

    untouched = trained.fresh[2]  # no assignment yet: queueing adds them
    page.check(f"#al-unlabelled input[value='{untouched.pk}']")
    page.click("[data-queue='unlabelled']")
    page.wait_for_selector("#al-result[data-queued]")
    added = Assignment.objects.filter(image=untouched, status=AssignmentStatus.PENDING)
    assert added.exists() and {a.priority for a in added} == {QUEUE_PRIORITY}
    assert seen.dialogs == [] and seen.csp == [] and seen.errors == []
