"""A hypothesis state machine over submit / revise / QA / review actions.

Whatever the order: no annotator ever sees a peer's mask or the consensus of an image
they annotate, or approves anything; no approved mask or decision ever changes; every
approved mask traces to annotations (through a QA run) or to a reviewer's upload.
"""

import hashlib
import itertools

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.test import TestCase
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from rest_framework.test import APIClient

from annotation.enums import AssignmentStatus
from annotation.models import Annotation, Assignment
from annotation.selectors import annotation_list
from config.errors import DomainError, PermissionDenied
from qa.enums import ApprovedMaskSource, ReviewAction
from qa.models import ApprovedMask, GateDecision, QaRun, ReviewDecision
from qa.services import image_qa_run, review_act
from qa.services.masks import mask_read
from tests.api.uploads import url
from tests.factories import png_bytes
from tests.qa_service.conftest import make_world

ANNOTATORS = ("ann_a", "ann_b", "ann_c")
_counter = itertools.count()


def _sha(name: str) -> str:
    with default_storage.open(name, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


class QaWorkflow(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.world = make_world(n_images=2, slug=f"sm-{next(_counter)}")
        self.client = APIClient()
        self.seen_masks: dict[int, tuple] = {}
        self.seen_gates: dict[int, tuple] = {}
        self.seen_reviews: dict[int, tuple] = {}

    # ------------------------------------------------------------------ actions

    @rule(image=st.integers(0, 1), name=st.sampled_from(ANNOTATORS), variant=st.integers(0, 3))
    def submit_or_revise(self, image, name, variant):
        world = self.world
        assignment = world.assignment(world.images[image], name)
        if assignment.status == AssignmentStatus.SUBMITTED and variant == 0:
            return  # an annotator who is done does nothing
        latest = Annotation.objects.filter(assignment=assignment).order_by("-revision").first()
        labels = world.mask_for(image, name, seed_offset=variant)
        with TestCase.captureOnCommitCallbacks(execute=True):
            world.submit(image, name, labels, base_revision=latest.revision if latest else None)

    @rule(image=st.integers(0, 1))
    def qa_on_demand(self, image):
        try:
            image_qa_run(image=self.world.images[image], actor=self.world.users["lead"])
        except DomainError as exc:
            assert exc.code == "qa_no_annotations"

    @rule(image=st.integers(0, 1), action=st.sampled_from([a.value for a in ReviewAction]),
          pick=st.integers(0, 2), lead=st.sampled_from(["lead", "lead2", "manager"]))
    def review(self, image, action, pick, lead):
        world = self.world
        im = world.images[image]
        run = QaRun.objects.filter(image=im).order_by("-id").first()
        kwargs = {}
        if action == ReviewAction.ACCEPT_ANNOTATION and run is not None:
            kwargs["annotation"] = run.members.order_by("position")[pick % run.members.count()].annotation
        elif action == ReviewAction.ACCEPT_EDITED:
            kwargs["mask"] = png_bytes(world.sims[image].labels.astype(np.uint16))
        elif action == ReviewAction.DROP_CELLS and run is not None and run.cells:
            kwargs["cells"] = [run.cells[pick % len(run.cells)]["id"]]
        elif action == ReviewAction.SEND_BACK:
            kwargs.update(annotator=world.users[ANNOTATORS[pick]], comment="please redo")
        elif action == ReviewAction.EXCLUDE:
            kwargs["reason"] = "blurred"
        try:
            with TestCase.captureOnCommitCallbacks(execute=True):
                review_act(actor=world.users[lead], image=im, action=action, **kwargs)
        except DomainError as exc:
            # Refusals are fine (nothing to accept yet, no free annotator, ...), but a
            # refusal never leaves a half-written decision (checked by the invariants).
            assert exc.status_code in (400, 409), exc.message

    @rule(image=st.integers(0, 1), name=st.sampled_from(ANNOTATORS))
    def annotator_tries_to_approve(self, image, name):
        before = (ReviewDecision.objects.count(), ApprovedMask.objects.count())
        with pytest.raises(PermissionDenied):
            review_act(actor=self.world.users[name], image=self.world.images[image], action="accept_consensus")
        assert (ReviewDecision.objects.count(), ApprovedMask.objects.count()) == before

    # --------------------------------------------------------------- invariants

    @invariant()
    def annotators_never_see_peers_or_the_consensus(self):
        world = self.world
        for name in ANNOTATORS:
            user = world.users[name]
            self.client.force_authenticate(user)
            for im in world.images:
                assignment = Assignment.objects.get(image=im, annotator=user)
                visible = annotation_list(user=user, project=world.project, filters={"image": im.pk})
                if assignment.status != AssignmentStatus.SUBMITTED:
                    assert {a.created_by_id for a in visible} <= {user.pk}
                r = self.client.get(url(world.project.slug, "images", im.pk, "qa", "consensus"))
                assert r.status_code == 404
                r = self.client.get(url(world.project.slug, "images", im.pk, "qa"))
                if r.status_code == 200:
                    body = r.json()
                    assert body["consensus"] is None and body["agreement"] is None
                    assert {s["annotator"] for s in body["scores"]} <= {name}
                    assert {a["annotator"] for a in body["annotations"]} <= {name}
                assert self.client.get(url(world.project.slug, "images", im.pk, "approved")).status_code == 403

    @invariant()
    def decisions_and_approved_masks_never_change(self):
        project = self.world.project
        for m in ApprovedMask.objects.filter(image__project=project):
            now = (m.sha256, _sha(m.file.name), m.source, tuple(m.ignore_cells), m.review_decision_id,
                   m.gate_decision_id)
            assert self.seen_masks.setdefault(m.pk, now) == now
        for g in GateDecision.objects.filter(image__project=project):
            now = (g.outcome, tuple(g.reasons), g.policy_id, g.qa_run_id)
            assert self.seen_gates.setdefault(g.pk, now) == now
        for d in ReviewDecision.objects.filter(image__project=project):
            now = (d.action, d.reviewer_id, d.qa_run_id, tuple(d.cells), d.comment)
            assert self.seen_reviews.setdefault(d.pk, now) == now

    @invariant()
    def approved_masks_trace_to_annotations_or_a_reviewer_upload(self):
        for m in ApprovedMask.objects.filter(image__project=self.world.project).select_related(
                "review_decision", "gate_decision", "qa_run", "annotation"):
            assert (m.review_decision_id is None) != (m.gate_decision_id is None)
            if m.source == ApprovedMaskSource.REVIEWER_UPLOAD:
                assert m.review_decision.action == ReviewAction.ACCEPT_EDITED
                assert m.review_decision.reviewer.username in ("lead", "lead2", "manager")
                continue
            assert m.qa_run is not None and m.qa_run.members.exists()
            assert m.qa_run.image_id == m.image_id
            if m.source == ApprovedMaskSource.ANNOTATION:
                assert m.annotation.assignment.image_id == m.image_id
                assert np.array_equal(mask_read(m.file.name), mask_read(m.annotation.mask.name))
            else:
                consensus = mask_read(m.qa_run.consensus.name)
                labels = mask_read(m.file.name)
                assert np.array_equal(labels[labels > 0], consensus[labels > 0])


@pytest.mark.django_db
def test_qa_workflow_state_machine(media_root):
    run_state_machine_as_test(
        QaWorkflow,
        settings=settings(max_examples=4, stateful_step_count=8, deadline=None,
                          suppress_health_check=list(HealthCheck)),
    )
