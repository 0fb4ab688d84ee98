"""Hand-out (assignment_next) in a QA project: qualification first, then priority order."""

import datetime as dt

import pytest
from django.utils import timezone

from annotation.models import Assignment, Image, Project
from annotation.services import assignment_next
from guidelines.services import guideline_version_publish
from qa.models import AuditEvent, Qualification
from qa.services import (
    gold_set,
    qualification_list,
    qualified_annotator_ids,
    requalification_require,
    review_act,
)
from qa.services.masks import mask_encode
from tests.api.uploads import url
from tests.factories import AcknowledgementFactory, GuidelineVersionFactory, api_client  # noqa: F401
from tests.qa_service.conftest import make_world

pytestmark = pytest.mark.django_db

GOLD = 2  # the gold image has the highest id, so id order alone would hand it out last


def _qualifying_world():
    world = make_world(n_images=3)
    Project.objects.filter(pk=world.project.pk).update(
        qualification_gold_images=1, qualification_min_f1=0.0, qualification_min_iou=0.0)
    world.project.refresh_from_db()
    gold = world.images[GOLD]
    Image.objects.filter(pk=gold.pk).update(is_gold=True)
    gold.refresh_from_db()
    gold_set(actor=world.users["lead"], image=gold, mask=mask_encode(world.sims[GOLD].labels).content)
    return world


def _next(world, name, **kw):
    return assignment_next(actor=world.users[name], project=world.project, **kw)


def test_unqualified_annotators_get_only_gold_until_they_pass(media_root, django_capture_on_commit_callbacks):
    world = _qualifying_world()
    gold = world.images[GOLD]
    first = _next(world, "ann_a")
    assert first.image_id == gold.pk and first.status == "in_progress"
    with django_capture_on_commit_callbacks(execute=True):
        world.submit(GOLD, "ann_a")
    # Submitted but not yet judged (QA waits for k = 3): still nothing but gold, so nothing.
    assert _next(world, "ann_a") is None
    assert Assignment.objects.filter(annotator=world.users["ann_a"], status="in_progress").count() == 0
    with django_capture_on_commit_callbacks(execute=True):
        world.submit(GOLD, "ann_b")
        world.submit(GOLD, "ann_c")
    assert Qualification.objects.get(annotator=world.users["ann_a"]).status == "qualified"
    real = _next(world, "ann_a")
    assert real.image_id == world.images[0].pk and not real.image.is_gold


def test_failed_annotator_never_gets_real_tasks(media_root, django_capture_on_commit_callbacks):
    world = _qualifying_world()
    Project.objects.filter(pk=world.project.pk).update(qualification_min_f1=1.01)
    with django_capture_on_commit_callbacks(execute=True):
        for name in ("ann_a", "ann_b", "ann_c"):
            world.submit(GOLD, name)
    assert set(Qualification.objects.values_list("status", flat=True)) == {"pending"}
    for name in ("ann_a", "ann_b", "ann_c"):
        assert _next(world, name) is None
    assert not Assignment.objects.filter(status="in_progress").exists()


def test_requalification_of_a_draft_takes_effect_when_published(media_root, django_capture_on_commit_callbacks):
    world = _qualifying_world()
    gold = world.images[GOLD]
    with django_capture_on_commit_callbacks(execute=True):
        for name in ("ann_a", "ann_b", "ann_c"):
            world.submit(GOLD, name)
    everyone = {world.users[n].pk for n in ("ann_a", "ann_b", "ann_c")}
    assert qualified_annotator_ids(project=world.project) == everyone
    manager = world.users["manager"]
    draft = GuidelineVersionFactory(project=world.project)
    assert requalification_require(actor=manager, guideline_version=draft) == 0
    assert qualified_annotator_ids(project=world.project) == everyone
    assert _next(world, "ann_b").image_id == world.images[0].pk  # still qualified

    with django_capture_on_commit_callbacks(execute=True):
        guideline_version_publish(actor=manager, version=draft)
    assert qualified_annotator_ids(project=world.project) == set()
    rows = {r["annotator"]: r["status"] for r in qualification_list(actor=manager, project=world.project)}
    assert rows == {"ann_a": "pending", "ann_b": "pending", "ann_c": "pending"}
    # ann_c's next task is the gold image again, reopened with why; nothing real.
    task = _next(world, "ann_c")
    assert task.image_id == gold.pk and "requires requalification" in task.comment
    q = Qualification.objects.get(annotator=world.users["ann_c"])
    assert (q.status, q.passed, q.guideline_version_id) == ("pending", 0, draft.pk)
    assert AuditEvent.objects.filter(kind="qualification", summary__contains="ann_c pending").count() == 1
    # ann_b holds the lease on a real task it got while qualified; that lease is kept.
    assert _next(world, "ann_b").image_id == world.images[0].pk

    # Asking for work reset ann_b too: its gold image is reopened, waiting behind the lease.
    assert Assignment.objects.get(image=gold, annotator=world.users["ann_b"]).status == "pending"
    for name in ("ann_c", "ann_b"):
        AcknowledgementFactory(user=world.users[name], guideline_version=draft)
        with django_capture_on_commit_callbacks(execute=True):
            world.submit(GOLD, name, base_revision=1)
    statuses = {q.annotator.username: q.status for q in Qualification.objects.select_related("annotator")}
    # ann_a annotated the gold image only under the old guideline: it must redo it.
    assert statuses == {"ann_a": "pending", "ann_b": "qualified", "ann_c": "qualified"}
    assert qualified_annotator_ids(project=world.project) == {world.users[n].pk for n in ("ann_b", "ann_c")}
    assert _next(world, "ann_c").image_id == world.images[0].pk
    redo = _next(world, "ann_a", now=timezone.now() + dt.timedelta(minutes=1))
    assert redo.image_id == gold.pk


def test_a_published_version_marked_resets_at_once(media_root, django_capture_on_commit_callbacks):
    world = _qualifying_world()
    with django_capture_on_commit_callbacks(execute=True):
        for name in ("ann_a", "ann_b", "ann_c"):
            world.submit(GOLD, name)
    manager = world.users["manager"]
    assert requalification_require(actor=manager, guideline_version=world.guideline) == 3
    # Marking it again asks nothing new of them.
    assert requalification_require(actor=manager, guideline_version=world.guideline) == 0
    assert set(Qualification.objects.values_list("status", flat=True)) == {"pending"}
    reopened = Assignment.objects.filter(image=world.images[GOLD])
    assert set(reopened.values_list("status", flat=True)) == {"pending"}
    assert set(reopened.values_list("priority", flat=True)) == {1}
    assert _next(world, "ann_a").image_id == world.images[GOLD].pk
    # Annotations from before the requalification do not count; new ones do.
    with django_capture_on_commit_callbacks(execute=True):
        for name in ("ann_a", "ann_b", "ann_c"):
            world.submit(GOLD, name, base_revision=1)
    assert set(Qualification.objects.values_list("status", flat=True)) == {"qualified"}
    assert set(Qualification.objects.values_list("attempted", flat=True)) == {1}


def test_higher_priority_is_leased_before_older_assignments(media_root):
    world = make_world(n_images=3)
    newest = world.assignment(world.images[2], "ann_a")
    Assignment.objects.filter(pk=newest.pk).update(priority=5)
    Assignment.objects.filter(pk=world.assignment(world.images[1], "ann_a").pk).update(priority=1)
    now = timezone.now()
    order = []
    for minute in range(3):
        task = _next(world, "ann_a", now=now + dt.timedelta(minutes=61 * minute))
        order.append(task.image_id)
        Assignment.objects.filter(pk=task.pk).update(status="skipped")
    assert order == [world.images[2].pk, world.images[1].pk, world.images[0].pk]


def test_a_sent_back_task_comes_first(media_root, django_capture_on_commit_callbacks):
    world = make_world(n_images=3)
    with django_capture_on_commit_callbacks(execute=True):
        for name in ("ann_a", "ann_b", "ann_c"):
            world.submit(1, name)
    review_act(actor=world.users["lead"], image=world.images[1], action="send_back",
               annotator=world.users["ann_b"], comment="split the clump at the top left")
    task = _next(world, "ann_b")
    assert task.image_id == world.images[1].pk
    assert (task.priority, task.comment) == (2, "split the clump at the top left")
    # Others are unaffected: ann_a gets its oldest open task.
    assert _next(world, "ann_a").image_id == world.images[0].pk


def test_requalification_over_the_api(qa_world, api_client):  # noqa: F811 (fixture)
    endpoint = url(qa_world.project.slug, "qa", "qualification", "requalify")
    api_client.force_authenticate(qa_world.users["lead"])
    assert api_client.post(endpoint, {"guideline_version": 1}, format="json").status_code == 403
    api_client.force_authenticate(qa_world.users["manager"])
    missing = api_client.post(endpoint, {"guideline_version": 9}, format="json")
    assert missing.status_code == 400 and "guideline_version" in missing.json()
    assert not AuditEvent.objects.filter(kind="qualification").exists()
    draft = GuidelineVersionFactory(project=qa_world.project)
    marked = api_client.post(endpoint, {"guideline_version": draft.version}, format="json")
    assert marked.status_code == 200
    assert marked.json() == {"guideline_version": draft.version, "status": "draft", "pending_now": 0}
    done = api_client.post(endpoint, {"guideline_version": 1}, format="json").json()
    assert done == {"guideline_version": 1, "status": "published", "pending_now": 3}
    assert AuditEvent.objects.filter(kind="qualification").count() == 2
