"""Adaptive redundancy (exactly one more assignment, never beyond k_max) and reliability."""

import numpy as np
import pytest

from annotation.models import Assignment
from qa.enums import ImageQaStatus
from qa.models import (
    AnnotatorReliability,
    AnnotatorReliabilityPoint,
    AuditEvent,
    GatingPolicy,
    ImageQaState,
    QaRun,
)
from qa.services import reliability_recompute
from qa.services.reliability import estimates
from tests.qa_service.conftest import make_world

pytestmark = pytest.mark.django_db


def _disagreeing(world, index, name):
    """A mask that shares little with the others: the truth shifted by 9 px."""
    return np.roll(world.sims[index].labels, 9, axis=1).astype(np.uint16)


def test_low_agreement_adds_exactly_one_assignment_and_stops_at_k_max(
        media_root, django_capture_on_commit_callbacks):
    world = make_world(k=2, k_max=3, annotators=("ann_a", "ann_b"), extra_annotators=("ann_c", "ann_d"))
    image = world.images[0]
    with django_capture_on_commit_callbacks(execute=True):
        world.submit(0, "ann_a")
        world.submit(0, "ann_b", _disagreeing(world, 0, "ann_b"))
    run = QaRun.objects.get(image=image)
    assert run.mean_agreement < GatingPolicy.objects.get(project=world.project).redundancy_agreement
    added = Assignment.objects.filter(image=image).exclude(annotator__username__in=["ann_a", "ann_b"])
    assert added.count() == 1
    extra = added.get()
    assert extra.annotator.username == "ann_c"  # least busy, then by name
    assert extra.comment.startswith("extra annotator: agreement")
    assert ImageQaState.objects.get(image=image).status == ImageQaStatus.MORE_ANNOTATORS
    assert AuditEvent.objects.filter(kind="redundancy", image=image).count() == 1
    # A second QA run while the extra assignment is open adds nothing.
    from qa.services import image_qa_run

    image_qa_run(image=image, actor=world.users["lead"])
    assert Assignment.objects.filter(image=image).count() == 3
    # The third annotator disagrees too; k_max = 3 is reached, so nobody else is asked.
    with django_capture_on_commit_callbacks(execute=True):
        world.submit(0, "ann_c", np.roll(world.sims[0].labels, -9, axis=0).astype(np.uint16))
    assert QaRun.objects.filter(image=image).count() == 3
    latest = QaRun.objects.filter(image=image).order_by("-id").first()
    assert latest.members.count() == 3 and latest.mean_agreement < 0.7
    assert Assignment.objects.filter(image=image).count() == 3
    assert AuditEvent.objects.filter(kind="redundancy", image=image).count() == 1


def test_no_redundancy_without_k_max(media_root, django_capture_on_commit_callbacks):
    world = make_world(k=2, annotators=("ann_a", "ann_b"), extra_annotators=("ann_c",))
    with django_capture_on_commit_callbacks(execute=True):
        world.submit(0, "ann_a")
        world.submit(0, "ann_b", _disagreeing(world, 0, "ann_b"))
    assert Assignment.objects.filter(image=world.images[0]).count() == 2


def test_incremental_reliability_equals_full_recomputation(media_root, django_capture_on_commit_callbacks):
    world = make_world(n_images=3)
    with django_capture_on_commit_callbacks(execute=True):
        for i in range(3):
            for name in ("ann_a", "ann_b", "ann_c"):
                world.submit(i, name, time_spent_s=10.0 * (i + 1))
    with django_capture_on_commit_callbacks(execute=True):
        world.submit(1, "ann_b", world.sims[1].labels.astype(np.uint16), base_revision=1)
    incremental = {r.annotator.username: estimates(r) for r in
                   AnnotatorReliability.objects.filter(project=world.project).select_related("annotator")}
    assert incremental["ann_b"]["n_annotations"] == 3  # the revision replaced, not added
    # the per-annotation quality sums match what the latest runs stored
    latest = [ImageQaState.objects.get(image=im).latest_run for im in world.images]
    q = [m.quality for run in latest for m in run.members.all() if m.annotator.username == "ann_a"]
    assert incremental["ann_a"]["quality"] == pytest.approx(np.mean(q))
    assert incremental["ann_a"]["median_time_s"] == pytest.approx(22.627, abs=1e-3)  # bin edge of 20 s
    reliability_recompute(project=world.project)
    full = {r.annotator.username: estimates(r) for r in
            AnnotatorReliability.objects.filter(project=world.project).select_related("annotator")}
    for name in incremental:
        for key, value in incremental[name].items():
            assert full[name][key] == pytest.approx(value, abs=1e-9), (name, key)
    history = AnnotatorReliabilityPoint.objects.filter(annotator=world.users["ann_a"]).count()
    assert QaRun.objects.count() == 4
    assert history == 4 + 1  # one point per run that touched ann_a, one for the recomputation


def test_weights_feed_the_next_consensus(media_root, django_capture_on_commit_callbacks):
    world = make_world(n_images=2)
    with django_capture_on_commit_callbacks(execute=True):
        for name in ("ann_a", "ann_b", "ann_c"):
            world.submit(0, name)
    first = QaRun.objects.get(image=world.images[0])
    assert set(first.weights.values()) == {1.0}  # nobody known yet
    with django_capture_on_commit_callbacks(execute=True):
        for name in ("ann_a", "ann_b", "ann_c"):
            world.submit(1, name)
    second = QaRun.objects.get(image=world.images[1])
    for m in first.members.select_related("annotator"):
        assert second.weights[m.annotator.username] == pytest.approx(max(0.05, min(1.0, m.quality)), abs=1e-6)
