"""QA runs: when they happen, what they store, and that the stored consensus is ``fuse``'s."""

import numpy as np
import pytest
from django.db import IntegrityError, transaction

from annotation.models import Annotation
from qa.consensus import fuse
from qa.enums import QaRunStatus, QaTrigger
from qa.metrics import pairwise_agreement
from qa.models import (
    AnnotatorReliability,
    AuditEvent,
    GateDecision,
    ImageQaState,
    ImmutableError,
    QaRun,
)
from qa.noise import score_annotations
from qa.services import image_qa_run
from qa.services.masks import mask_read
from tests.qa_service.conftest import make_world

pytestmark = pytest.mark.django_db


def test_no_run_before_the_kth_submission(qa_world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        qa_world.submit(0, "ann_a")
        qa_world.submit(0, "ann_b")
    assert QaRun.objects.count() == 0
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        qa_world.submit(0, "ann_c")
    assert len(callbacks) == 1
    run = QaRun.objects.get()
    assert run.trigger == QaTrigger.SUBMISSION
    assert run.status == QaRunStatus.COMPLETE
    assert sorted(run.members.values_list("annotator__username", flat=True)) == ["ann_a", "ann_b", "ann_c"]


def test_stored_consensus_equals_fuse_on_the_same_masks_and_weights(submitted):
    run = QaRun.objects.get(image=submitted.images[0])
    members = list(run.members.order_by("position").select_related("annotation"))
    masks = [mask_read(m.annotation.mask.name) for m in members]
    weights = [m.weight for m in members]
    expected = fuse(masks, iou_threshold=run.params["iou_threshold"], weights=weights)
    stored = mask_read(run.consensus.name)
    assert np.array_equal(stored, expected.labels)
    assert run.n_cells == expected.n_instances > 0
    assert [c["support"] for c in run.cells] == expected.support.tolist()
    assert [c["confidence"] for c in run.cells] == pytest.approx(expected.confidence.tolist(), abs=1e-6)
    assert [c["agreement"] for c in run.cells] == pytest.approx(expected.agreement.tolist(), abs=1e-6)
    # members name each annotation's own label ids
    first = run.cells[0]
    for ann_id, label in first["members"].items():
        j = [m.annotation_id for m in members].index(int(ann_id))
        assert label == int(expected.members[0, j])


def test_run_stores_agreement_scores_and_revisions(submitted):
    run = QaRun.objects.get()
    members = list(run.members.order_by("position").select_related("annotation", "annotator"))
    masks = [mask_read(m.annotation.mask.name) for m in members]
    pa = pairwise_agreement(masks)
    assert run.agreement["annotators"] == [m.annotator.username for m in members]
    assert np.allclose(run.agreement["f1"], pa.f1, atol=1e-6)
    assert np.allclose(run.agreement["mean_iou"], pa.mean_iou, atol=1e-6)
    off = pa.f1[~np.eye(3, dtype=bool)]
    assert run.mean_agreement == pytest.approx(off.mean())
    scores = score_annotations(masks, weights=[m.weight for m in members])
    assert [m.quality for m in members] == pytest.approx([s.quality for s in scores])
    assert [m.missed for m in members] == [s.missed for s in scores]
    assert all(m.revision == 1 for m in members)
    assert run.algorithm_version == "cellcurate-qa/1"
    assert run.params["iou_threshold"] == 0.5
    # follow-ups: a gate decision, reliability rows, audit
    assert GateDecision.objects.filter(qa_run=run).count() == 1
    assert AnnotatorReliability.objects.filter(project=submitted.project).count() == 3
    assert AuditEvent.objects.filter(kind="gate", image=submitted.images[0]).count() == 1
    state = ImageQaState.objects.get(image=submitted.images[0])
    assert state.latest_run == run and state.counted_run == run


def test_revision_makes_a_new_run_and_leaves_the_old_one(submitted, django_capture_on_commit_callbacks):
    first = QaRun.objects.get()
    first_cells = list(first.cells)
    better = submitted.sims[0].labels
    with django_capture_on_commit_callbacks(execute=True):
        submitted.submit(0, "ann_c", better, base_revision=1)
    runs = list(QaRun.objects.order_by("id"))
    assert len(runs) == 2
    second = runs[1]
    assert second.trigger == QaTrigger.REVISION
    used = {m.annotator.username: m.revision for m in second.members.select_related("annotator")}
    assert used == {"ann_a": 1, "ann_b": 1, "ann_c": 2}
    first.refresh_from_db()
    assert first.cells == first_cells
    assert {m.revision for m in first.members.all()} == {1}
    # reliability counts the image once: the new run replaced the old one
    row = AnnotatorReliability.objects.get(annotator=submitted.users["ann_c"])
    assert row.n_annotations == 1


def test_runs_are_immutable(submitted):
    run = QaRun.objects.get()
    run.n_flags = 999
    with pytest.raises(ImmutableError):
        run.save()
    with pytest.raises(IntegrityError), transaction.atomic():
        QaRun.objects.filter(pk=run.pk).update(n_flags=999)
    with pytest.raises(IntegrityError), transaction.atomic():
        GateDecision.objects.filter(qa_run=run).update(outcome="approve")
    run.refresh_from_db()
    assert run.n_flags != 999


def test_same_revisions_do_not_run_twice_but_on_demand_does(submitted):
    image = submitted.images[0]
    again = image_qa_run(image=image, trigger=QaTrigger.SUBMISSION)
    assert QaRun.objects.count() == 1 and again == QaRun.objects.get()
    fresh = image_qa_run(image=image, trigger=QaTrigger.ON_DEMAND, actor=submitted.users["lead"])
    assert QaRun.objects.count() == 2 and fresh.requested_by == submitted.users["lead"]


def test_rule_violations_are_part_of_the_run(db, media_root, django_capture_on_commit_callbacks):
    # A rule every mask breaks, on the guideline version the annotations are made under.
    world = make_world(rules={"max_area": {"value": 5, "severity": "warning"}})
    with django_capture_on_commit_callbacks(execute=True):
        for name in ("ann_a", "ann_b", "ann_c"):
            world.submit(0, name)
    run = QaRun.objects.get()
    assert run.n_violations == 3
    v = run.violations[0]
    assert v["rule"] == "max_area" and v["guideline_version"] == world.guideline.version
    assert v["severity"] == "warning"
    assert v["annotation"] in set(Annotation.objects.values_list("pk", flat=True))
    assert len(v["cells"]) == Annotation.objects.get(pk=v["annotation"]).instance_count


def test_a_failing_qa_run_never_fails_the_submission(qa_world, django_capture_on_commit_callbacks, caplog):
    from django.core.files.storage import default_storage

    with django_capture_on_commit_callbacks(execute=True):
        first = qa_world.submit(0, "ann_a")
        qa_world.submit(0, "ann_b")
    default_storage.delete(first.mask.name)  # storage lost a file: QA cannot read it
    with django_capture_on_commit_callbacks(execute=True):
        third = qa_world.submit(0, "ann_c")
    assert Annotation.objects.filter(pk=third.pk).exists()  # the submission stands
    assert QaRun.objects.count() == 0
    assert any("could not be run or queued" in r.getMessage() for r in caplog.records)
