"""Every review action leaves the decision, the audit row and the files expected."""

import hashlib

import numpy as np
import pytest
from django.core.files.storage import default_storage

from annotation.enums import AssignmentStatus
from annotation.models import Annotation, Assignment
from config.errors import InvalidInput, PermissionDenied
from qa.enums import ImageQaStatus
from qa.models import ApprovedMask, AuditEvent, ImageQaState, QaRun, ReviewDecision
from qa.selectors import approved_mask_provenance, approved_masks_current
from qa.services import review_act
from qa.services.masks import mask_read
from tests.factories import png_bytes

pytestmark = pytest.mark.django_db


def _file_sha(name: str) -> str:
    with default_storage.open(name, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def _approved(decision) -> ApprovedMask:
    mask = ApprovedMask.objects.get(review_decision=decision)
    assert _file_sha(mask.file.name) == mask.sha256
    assert (mask.height, mask.width) == (96, 96)
    return mask


def _audit(decision, kind="review") -> AuditEvent:
    row = AuditEvent.objects.get(links__review_decision=decision.pk)
    assert row.kind == kind and row.actor == decision.reviewer and row.image_id == decision.image_id
    return row


def test_accept_consensus(submitted):
    image = submitted.images[0]
    run = QaRun.objects.get(image=image)
    d = review_act(actor=submitted.users["lead"], image=image, action="accept_consensus")
    mask = _approved(d)
    assert mask.source == "consensus" and mask.qa_run == run
    consensus = mask_read(run.consensus.name)
    labels = mask_read(mask.file.name)
    assert np.array_equal(labels[labels > 0], consensus[labels > 0])
    assert _audit(d).links["approved_mask"] == mask.pk
    state = ImageQaState.objects.get(image=image)
    assert state.status == ImageQaStatus.APPROVED and state.approved_mask == mask
    assert list(approved_masks_current(project=submitted.project)) == [mask]
    prov = approved_mask_provenance(approved_mask=mask)
    assert [a["annotator"] for a in prov["annotations"]] == ["ann_a", "ann_b", "ann_c"]
    assert prov["decision"] == {**prov["decision"], "kind": "review", "id": d.pk, "by": "lead"}
    assert prov["qa_run"]["algorithm_version"] == "cellcurate-qa/1"
    assert prov["policy_version"] == 1
    assert all(a["guideline_version"] == submitted.guideline.version for a in prov["annotations"])


def test_accept_annotation_traces_to_it(submitted):
    image = submitted.images[0]
    ann = Annotation.objects.get(created_by=submitted.users["ann_b"], assignment__image=image)
    d = review_act(actor=submitted.users["lead"], image=image, action="accept_annotation", annotation=ann)
    mask = _approved(d)
    assert mask.source == "annotation" and mask.annotation == ann
    assert np.array_equal(mask_read(mask.file.name), mask_read(ann.mask.name))
    assert _audit(d).links["annotation"] == ann.pk


def test_accept_edited_stores_the_reviewer_upload(submitted):
    image = submitted.images[0]
    edited = submitted.sims[0].labels.astype(np.uint16)
    d = review_act(actor=submitted.users["manager"], image=image, action="accept_edited",
                   mask=png_bytes(edited))
    mask = _approved(d)
    assert mask.source == "reviewer_upload"
    assert np.array_equal(mask_read(mask.file.name), edited)
    assert mask.n_cells == len(np.unique(edited)) - 1


def test_accept_edited_refuses_a_wrong_shape_and_stores_nothing(submitted):
    image = submitted.images[0]
    before = (ReviewDecision.objects.count(), ApprovedMask.objects.count(), AuditEvent.objects.count())
    with pytest.raises(InvalidInput) as err:
        review_act(actor=submitted.users["lead"], image=image, action="accept_edited",
                   mask=png_bytes(np.zeros((10, 10), np.uint16)))
    assert err.value.field == "mask" and "96 x 96" in err.value.message
    assert (ReviewDecision.objects.count(), ApprovedMask.objects.count(), AuditEvent.objects.count()) == before


def test_drop_cells(submitted):
    image = submitted.images[0]
    run = QaRun.objects.get(image=image)
    drop = [run.cells[0]["id"], run.cells[-1]["id"]]
    d = review_act(actor=submitted.users["lead"], image=image, action="drop_cells", cells=drop)
    mask = _approved(d)
    labels = mask_read(mask.file.name)
    assert not np.isin(labels, drop).any()
    assert d.cells == drop and _audit(d).links["cells"] == drop
    with pytest.raises(InvalidInput) as err:
        review_act(actor=submitted.users["lead"], image=image, action="drop_cells", cells=[10_000])
    assert err.value.field == "cells"


def test_send_back_reopens_the_assignment_with_the_comment(submitted):
    image = submitted.images[0]
    d = review_act(actor=submitted.users["lead"], image=image, action="send_back",
                   annotator=submitted.users["ann_c"], comment="You missed the dim cells top left.")
    assignment = Assignment.objects.get(image=image, annotator=submitted.users["ann_c"])
    assert assignment.status == AssignmentStatus.PENDING
    assert assignment.comment == "You missed the dim cells top left." and assignment.priority == 2
    assert d.assignment == assignment and d.target_annotator == submitted.users["ann_c"]
    assert not ApprovedMask.objects.filter(review_decision=d).exists()
    assert _audit(d, kind="send_back").reason == "You missed the dim cells top left."
    assert ImageQaState.objects.get(image=image).status == ImageQaStatus.SENT_BACK


def test_request_annotator_adds_one_assignment(db, media_root, django_capture_on_commit_callbacks):
    from tests.qa_service.conftest import make_world

    world = make_world(extra_annotators=("ann_d",))
    with django_capture_on_commit_callbacks(execute=True):
        for name in ("ann_a", "ann_b", "ann_c"):
            world.submit(0, name)
    image = world.images[0]
    d = review_act(actor=world.users["lead"], image=image, action="request_annotator")
    assert d.assignment.annotator == world.users["ann_d"]
    assert Assignment.objects.filter(image=image).count() == 4
    assert _audit(d).links["assignment"] == d.assignment.pk
    assert ImageQaState.objects.get(image=image).status == ImageQaStatus.MORE_ANNOTATORS


def test_exclude_leaves_the_image_out_of_approved_masks(submitted):
    image = submitted.images[0]
    review_act(actor=submitted.users["lead"], image=image, action="accept_consensus")
    assert approved_masks_current(project=submitted.project).count() == 1
    d = review_act(actor=submitted.users["lead"], image=image, action="exclude", reason="out of focus")
    assert _audit(d, kind="exclude").reason == "out of focus"
    assert approved_masks_current(project=submitted.project).count() == 0
    assert ImageQaState.objects.get(image=image).status == ImageQaStatus.EXCLUDED
    assert ApprovedMask.objects.count() == 1  # the earlier approved mask is kept, not deleted


def test_a_reviewer_never_approves_their_own_annotation(submitted):
    image = submitted.images[0]
    # ann_a later became a QA lead of the project.
    submitted.project.memberships.filter(user=submitted.users["ann_a"]).update(role="qa_lead")
    with pytest.raises(PermissionDenied) as err:
        review_act(actor=submitted.users["ann_a"], image=image, action="accept_consensus")
    assert err.value.code == "own_annotation"
    assert ReviewDecision.objects.count() == 0


def test_annotators_and_ml_engineers_cannot_act(submitted):
    image = submitted.images[0]
    for name in ("ann_b", "ml"):
        with pytest.raises(PermissionDenied):
            review_act(actor=submitted.users[name], image=image, action="accept_consensus")
    assert ReviewDecision.objects.count() == 0 and ApprovedMask.objects.filter(review_decision__isnull=False).count() == 0
