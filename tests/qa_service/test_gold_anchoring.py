"""Gold truth anchors the consensus outlines of a project's QA runs (issue 14, item 2).

Two of three annotators draw every cell 2 px too large. Without gold, the consensus sits
between them and the precise annotator, so it is too large; once a gold image has measured
each annotator's outline bias against the truth, the next QA run passes those biases to
``fuse`` and its consensus has the true cell areas.
"""

from __future__ import annotations

import numpy as np
import pytest
from skimage.segmentation import expand_labels

from annotation.models import Image
from qa.consensus import fuse
from qa.metrics import match_instances
from qa.models import AnnotatorReliability, QaRun
from qa.serializers import qa_run_output, qa_run_own_output
from qa.services import gold_set
from qa.services.masks import mask_encode, mask_read
from qa.services.reliability import estimates
from tests.qa_service.conftest import make_world

pytestmark = pytest.mark.django_db
DILATING = ("ann_b", "ann_c")


def _masks(truth: np.ndarray) -> dict[str, np.ndarray]:
    wide = expand_labels(truth, 2).astype(np.uint16)
    return {"ann_a": truth.astype(np.uint16), "ann_b": wide, "ann_c": wide.copy()}


def _area_ratio(truth: np.ndarray, labels: np.ndarray) -> float:
    m = match_instances(truth, labels)
    ta, la = np.bincount(truth.ravel()), np.bincount(labels.ravel().astype(np.int64))
    return float(la[m.pairs[:, 1]].sum() / ta[m.pairs[:, 0]].sum())


def _score_gold(world, truth, capture):
    """Image 0 becomes a gold image with ``truth``; the three annotators label it."""
    gold = world.images[0]
    Image.objects.filter(pk=gold.pk).update(is_gold=True)
    gold.refresh_from_db()
    gold_set(actor=world.users["lead"], image=gold, mask=mask_encode(truth).content)
    with capture(execute=True):
        for name, labels in _masks(truth).items():
            world.submit(0, name, labels)
    return gold


def test_gold_biases_anchor_the_next_runs_consensus(media_root, django_capture_on_commit_callbacks):
    world = make_world(n_images=2)
    truths = [s.labels for s in world.sims]
    gold = _score_gold(world, truths[0], django_capture_on_commit_callbacks)

    # the gold image's run measures each annotation's outline against the truth
    gold_run = QaRun.objects.filter(image=gold).latest("id")
    rows = {m.annotator.username: m for m in gold_run.members.select_related("annotator")}
    assert abs(rows["ann_a"].gold_outline_bias) < 0.1
    for name in DILATING:
        # 2 px where a cell is free, less where it touches a neighbour: ~1.1 px on the
        # outline as a whole
        assert 0.8 < rows[name].gold_outline_bias < 2.2
    assert all(m.gold_outline_cells >= 10 for m in rows.values())
    scores = {s["annotator"]: s for s in gold_run.gold["scores"]}
    assert scores["ann_b"]["outline_bias"] == rows["ann_b"].gold_outline_bias
    # ... and the annotators' reliability carries it
    rel = {r.annotator.username: estimates(r)
           for r in AnnotatorReliability.objects.filter(project=world.project).select_related("annotator")}
    assert rel["ann_b"]["gold_boundary_bias"] == pytest.approx(rows["ann_b"].gold_outline_bias)
    assert rel["ann_b"]["n_gold_outline_cells"] == rows["ann_b"].gold_outline_cells

    # a normal image: its consensus is anchored to the truth
    masks = _masks(truths[1])
    with django_capture_on_commit_callbacks(execute=True):
        for name, labels in masks.items():
            world.submit(1, name, labels)
    run = QaRun.objects.filter(image=world.images[1]).latest("id")
    assert run.params["anchored_to_gold"] is True
    assert run.params["gold_boundary_bias"]["ann_c"] == pytest.approx(rel["ann_c"]["gold_boundary_bias"], abs=1e-4)
    consensus = mask_read(run.consensus.name)
    ordered = [masks[n] for n in run.agreement["annotators"]]
    weights = [run.weights[n] for n in run.agreement["annotators"]]
    unanchored = fuse(ordered, weights=weights).labels
    assert _area_ratio(truths[1], unanchored) > 1.2  # two of three draw cells too large
    assert abs(_area_ratio(truths[1], consensus) - 1.0) < 0.05  # measured 0.970
    biases = {m.annotator.username: m.consensus_bias for m in run.members.select_related("annotator")}
    assert abs(biases["ann_a"]) < 0.3 and all(biases[n] > 0.8 for n in DILATING)

    # the API shows it to QA leads; an annotator sees only their own gold bias
    full = qa_run_output(run, None)
    assert {s["annotator"]: s["consensus_bias"] for s in full["scores"]} == biases
    own = qa_run_own_output(run, user=world.users["ann_b"])
    assert set(own["algorithm"]["params"]["gold_boundary_bias"]) == {"ann_b"}


def test_without_gold_nothing_is_anchored(media_root, django_capture_on_commit_callbacks):
    world = make_world(n_images=1)
    with django_capture_on_commit_callbacks(execute=True):
        for name, labels in _masks(world.sims[0].labels).items():
            world.submit(0, name, labels)
    run = QaRun.objects.get()
    assert run.params["anchored_to_gold"] is False
    assert set(run.params["gold_boundary_bias"].values()) == {None}
    assert all(m.gold_outline_bias is None and m.gold_outline_cells == 0 for m in run.members.all())


def test_a_project_rerun_anchors_older_runs_and_keeps_human_decisions(
        media_root, django_capture_on_commit_callbacks, api_client):
    """Runs made before the gold image was scored are unanchored; re-running the project
    brings them up to date, except an image a QA lead decided on."""
    from annotation.models import Job
    from qa.models import ImageQaState
    from qa.services import review_act
    from tests.api.uploads import url

    world = make_world(n_images=3)
    truths = [s.labels for s in world.sims]
    with django_capture_on_commit_callbacks(execute=True):
        for index in (1, 2):
            for name, labels in _masks(truths[index]).items():
                world.submit(index, name, labels)
    decided = world.images[2]
    review_act(actor=world.users["lead"], image=decided, action="accept_consensus")
    before = {i: QaRun.objects.filter(image=world.images[i]).latest("id") for i in (1, 2)}
    assert not before[1].params["anchored_to_gold"]

    _score_gold(world, truths[0], django_capture_on_commit_callbacks)

    # annotators may not; a QA lead queues it as a job
    api_client.force_authenticate(world.users["ann_a"])
    assert api_client.post(url(world.project.slug, "qa", "rerun")).status_code == 403
    api_client.force_authenticate(world.users["lead"])
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(url(world.project.slug, "qa", "rerun"))
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["id"])
    assert job.status == "succeeded" and job.kind == "qa.project_qa_rerun"
    assert job.result["images"] == 3 and job.result["kept_decided"] == 1
    assert job.result["rerun"] == 2 and job.result["anchored_to_gold"] == 2
    assert job.result["errors"] == []

    after = QaRun.objects.filter(image=world.images[1]).latest("id")
    assert after.pk != before[1].pk and after.trigger == "recompute"
    assert after.params["anchored_to_gold"] is True
    consensus = mask_read(after.consensus.name)
    assert abs(_area_ratio(truths[1], consensus) - 1.0) < abs(
        _area_ratio(truths[1], mask_read(before[1].consensus.name)) - 1.0)
    # the reviewed image keeps its run, its decision and its approved mask
    assert QaRun.objects.filter(image=decided).latest("id").pk == before[2].pk
    state = ImageQaState.objects.get(image=decided)
    assert state.status == "approved" and state.latest_review.qa_run_id == before[2].pk
