"""Qualification on gold images, requalification, QA settings; only qualified annotators get extra work."""

import numpy as np
import pytest

from annotation.models import Assignment, Image, Project
from qa.models import AuditEvent, Qualification
from qa.services import (
    gold_set,
    qualification_list,
    qualified_annotator_ids,
    requalification_require,
)
from qa.services.masks import mask_encode
from tests.api.uploads import url
from tests.qa_service.conftest import make_world

pytestmark = pytest.mark.django_db


def test_passing_gold_images_qualifies(media_root, django_capture_on_commit_callbacks):
    world = make_world()
    Project.objects.filter(pk=world.project.pk).update(
        qualification_gold_images=1, qualification_min_f1=0.0, qualification_min_iou=0.0)
    world.project.refresh_from_db()
    assert qualified_annotator_ids(project=world.project) == set()
    rows = qualification_list(actor=world.users["manager"], project=world.project)
    assert {r["status"] for r in rows} == {"pending"} and rows[0]["required"] == 1
    gold = world.images[0]
    Image.objects.filter(pk=gold.pk).update(is_gold=True)
    gold.refresh_from_db()
    gold_set(actor=world.users["lead"], image=gold, mask=mask_encode(world.sims[0].labels).content)
    with django_capture_on_commit_callbacks(execute=True):
        for name in ("ann_a", "ann_b", "ann_c"):
            world.submit(0, name)
    statuses = {q.annotator.username: q.status for q in Qualification.objects.select_related("annotator")}
    assert statuses == {"ann_a": "qualified", "ann_b": "qualified", "ann_c": "qualified"}
    assert qualified_annotator_ids(project=world.project) == {world.users[n].pk for n in ("ann_a", "ann_b", "ann_c")}
    assert AuditEvent.objects.filter(kind="qualification").count() == 3
    # A guideline version that requires requalification puts everyone back to pending.
    n = requalification_require(actor=world.users["manager"], guideline_version=world.guideline)
    assert n == 3 and set(Qualification.objects.values_list("status", flat=True)) == {"pending"}
    assert qualified_annotator_ids(project=world.project) == set()


def test_failing_gold_keeps_the_annotator_out_of_extra_work(media_root, django_capture_on_commit_callbacks):
    world = make_world(extra_annotators=("ann_d",))
    Project.objects.filter(pk=world.project.pk).update(
        qualification_gold_images=1, qualification_min_f1=0.99, qualification_min_iou=0.99)
    gold = world.images[0]
    Image.objects.filter(pk=gold.pk).update(is_gold=True)
    gold.refresh_from_db()
    gold_set(actor=world.users["lead"], image=gold, mask=mask_encode(world.sims[0].labels).content)
    with django_capture_on_commit_callbacks(execute=True):
        world.submit(0, "ann_a", world.sims[0].labels.astype(np.uint16))  # perfect
        world.submit(0, "ann_b")
        world.submit(0, "ann_c", np.roll(world.sims[0].labels, 7, axis=0).astype(np.uint16))
    q = {q.annotator.username: (q.status, q.passed, q.attempted) for q in Qualification.objects.select_related("annotator")}
    assert q["ann_a"] == ("qualified", 1, 1)
    assert q["ann_c"] == ("pending", 0, 1)
    # ann_d never qualified: a request for one more annotator finds nobody.
    from config.errors import Conflict
    from qa.services import review_act

    with pytest.raises(Conflict) as err:
        review_act(actor=world.users["lead"], image=Image.objects.get(pk=world.images[1].pk),
                   action="request_annotator")
    assert err.value.code == "no_annotator_available"
    assert Assignment.objects.filter(image=world.images[1]).count() == 3


def test_qa_settings_api(qa_world, api_client):
    api_client.force_authenticate(qa_world.users["manager"])
    got = api_client.get(url("qa", "qa", "settings")).json()
    assert got["k_min"] == 3 and got["k_max"] is None and got["qualification_gold_images"] == 0
    bad = api_client.patch(url("qa", "qa", "settings"), {"max_annotators_per_image": 2}, format="json")
    assert bad.status_code == 400 and "max_annotators_per_image" in bad.json()
    ok = api_client.patch(url("qa", "qa", "settings"), {"max_annotators_per_image": 5,
                                                        "qualification_gold_images": 2}, format="json")
    assert ok.status_code == 200 and ok.json()["k_max"] == 5
    qa_world.project.refresh_from_db()
    assert qa_world.project.max_annotators_per_image == 5
    assert AuditEvent.objects.filter(kind="settings").count() == 1
    api_client.force_authenticate(qa_world.users["lead"])
    assert api_client.patch(url("qa", "qa", "settings"), {"max_annotators_per_image": 4},
                            format="json").status_code == 403
    members = api_client.get(url("qa", "qa", "qualification")).json()["members"]
    assert [m["annotator"] for m in members] == ["ann_a", "ann_b", "ann_c"]
    assert {m["status"] for m in members} == {"pending"}
