"""Gate decisions at the edges of every threshold, and what a decision writes."""

import numpy as np
import pytest

from qa.enums import GateOutcome, ImageQaStatus
from qa.models import ApprovedMask, AuditEvent, GateDecision, GatingPolicy, ImageQaState, QaRun
from qa.services import gate_evaluate, gate_image
from qa.services.gating import flagged_cell_ids
from qa.services.masks import mask_read

pytestmark = pytest.mark.django_db

EPS = 1e-9


def lenient(project, **overrides) -> GatingPolicy:
    """A policy every image passes, except for the thresholds overridden."""
    fields = dict(min_agreement=0.0, reject_agreement=0.0, min_cell_support=0, min_cell_confidence=0.0,
                  min_annotation_quality=0.0, max_flagged_share=1.0, min_gold_f1=0.0,
                  flagged_cells="ignore")
    fields.update(overrides)
    return GatingPolicy(project=project, version=99, **fields)


@pytest.fixture
def run(submitted):
    return QaRun.objects.get(image=submitted.images[0])


def test_lenient_policy_approves(run, submitted):
    result = gate_evaluate(run, lenient(submitted.project))
    assert result.outcome == GateOutcome.APPROVE and result.reasons == [] and result.cells == []


def test_agreement_edge(run, submitted):
    a = run.mean_agreement
    assert 0 < a < 1
    at = gate_evaluate(run, lenient(submitted.project, min_agreement=a))
    above = gate_evaluate(run, lenient(submitted.project, min_agreement=a + EPS))
    assert at.outcome == GateOutcome.APPROVE
    assert above.outcome == GateOutcome.NEEDS_REVIEW
    assert above.reasons == [f"agreement {a:.2f} < {a + EPS:.2f}"]


def test_reject_edge(run, submitted):
    a = run.mean_agreement
    at = gate_evaluate(run, lenient(submitted.project, reject_agreement=a, min_agreement=a))
    above = gate_evaluate(run, lenient(submitted.project, reject_agreement=a + EPS, min_agreement=1.0))
    assert at.outcome == GateOutcome.APPROVE
    assert above.outcome == GateOutcome.REJECT
    assert above.reasons[0].endswith("(reject)")


def test_annotation_quality_edge(run, submitted):
    worst = min(run.members.all(), key=lambda m: m.quality)
    at = gate_evaluate(run, lenient(submitted.project, min_annotation_quality=worst.quality))
    above = gate_evaluate(run, lenient(submitted.project, min_annotation_quality=worst.quality + EPS))
    assert at.outcome == GateOutcome.APPROVE
    assert above.outcome == GateOutcome.NEEDS_REVIEW
    reason = next(r for r in above.reasons if r.startswith(f"annotation {worst.annotation_id}"))
    assert worst.annotator.username in reason and "quality" in reason


def test_cell_support_and_confidence_edges(run, submitted):
    supports = sorted({c["support"] for c in run.cells})
    lowest = supports[0]
    n_lowest = sum(c["support"] == lowest for c in run.cells)
    at = gate_evaluate(run, lenient(submitted.project, min_cell_support=lowest))
    above = gate_evaluate(run, lenient(submitted.project, min_cell_support=lowest + 1, flagged_cells="drop"))
    assert at.cells == []
    assert len(above.cells) == n_lowest and {c["outcome"] for c in above.cells} == {"drop"}
    conf = min(c["confidence"] for c in run.cells)
    at = gate_evaluate(run, lenient(submitted.project, min_cell_confidence=conf))
    above = gate_evaluate(run, lenient(submitted.project, min_cell_confidence=conf + 1e-6, flagged_cells="review"))
    assert at.cells == [] and at.outcome == GateOutcome.APPROVE
    assert above.outcome == GateOutcome.NEEDS_REVIEW
    assert all(c["outcome"] == "review" for c in above.cells) and above.cells


def test_flagged_share_edge(run, submitted):
    share = len(flagged_cell_ids(run)) / run.n_cells
    assert 0 < share < 1
    at = gate_evaluate(run, lenient(submitted.project, max_flagged_share=share))
    below = gate_evaluate(run, lenient(submitted.project, max_flagged_share=share - EPS))
    assert at.outcome == GateOutcome.APPROVE
    assert below.outcome == GateOutcome.NEEDS_REVIEW
    assert below.reasons[0].startswith(f"flagged share {share:.2f} >")


def test_approve_writes_mask_with_dropped_and_ignored_cells(run, submitted):
    lowest = min(c["support"] for c in run.cells)
    low_cells = {c["id"] for c in run.cells if c["support"] == lowest}
    for action in ("drop", "ignore"):
        policy = lenient(submitted.project, min_cell_support=lowest + 1, flagged_cells=action)
        policy.version = 10 if action == "drop" else 11
        policy.status = "draft"
        policy.save()
        decision = gate_image(qa_run=run, policy=policy)
        assert decision.outcome == GateOutcome.APPROVE
        mask = decision.approved_mask
        labels = mask_read(mask.file.name)
        consensus = mask_read(run.consensus.name)
        if action == "drop":
            assert not np.isin(labels, list(low_cells)).any()
            assert mask.n_cells == run.n_cells - len(low_cells)
            assert mask.ignore_cells == []
        else:
            assert np.array_equal(labels, consensus)
            assert mask.ignore_cells == sorted(low_cells)
        assert mask.source == "consensus" and mask.gate_decision == decision and mask.policy == policy
        state = ImageQaState.objects.get(image=run.image)
        assert state.status == ImageQaStatus.APPROVED and state.approved_mask == mask
    assert AuditEvent.objects.filter(kind="gate", links__gate_decision=decision.pk).count() == 1


def test_reject_writes_no_mask_and_keeps_the_old_decision(run, submitted):
    before = GateDecision.objects.count()
    old = GateDecision.objects.get(qa_run=run)
    policy = lenient(submitted.project, reject_agreement=1.0, min_agreement=1.0)
    policy.save()
    decision = gate_image(qa_run=run, policy=policy)
    assert decision.outcome == GateOutcome.REJECT
    assert GateDecision.objects.count() == before + 1
    assert not ApprovedMask.objects.filter(gate_decision=decision).exists()
    assert ImageQaState.objects.get(image=run.image).status == ImageQaStatus.REJECTED
    old.refresh_from_db()
    assert GateDecision.objects.get(pk=old.pk).outcome == old.outcome


def test_approved_masks_current_by_policy_version_and_gold(run, submitted):
    from annotation.models import Image
    from qa.selectors import approved_masks_current

    policy = lenient(submitted.project)
    policy.version = 7
    policy.save()
    decision = gate_image(qa_run=run, policy=policy)
    mask = decision.approved_mask
    project = submitted.project
    assert list(approved_masks_current(project=project)) == [mask]
    assert list(approved_masks_current(project=project, policy_version=7)) == [mask]
    assert list(approved_masks_current(project=project, policy_version=1)) == []
    Image.objects.filter(pk=run.image_id).update(is_gold=True)
    assert list(approved_masks_current(project=project, include_gold=False)) == []
    assert list(approved_masks_current(project=project, include_gold=True)) == [mask]
