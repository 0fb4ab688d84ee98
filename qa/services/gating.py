"""Use cases: turn a QA run into a gate decision under a gating policy; re-gate a project.

:func:`gate_evaluate` is the decision itself, a pure function of the run's numbers and
the policy's thresholds (minimums pass at equality, maximums pass at equality), so the
edges of every threshold are easy to test. :func:`gate_image` stores its result as an
immutable :class:`~qa.models.GateDecision`, an approved mask when it approves, the
image's new state and an audit row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from django.db import transaction

from annotation.models import Project
from annotation.services.storage import staged_files
from qa.enums import (
    ApprovedMaskSource,
    AuditKind,
    CellOutcome,
    FlaggedCellAction,
    GateOutcome,
    ImageQaStatus,
    QaRunStatus,
)
from qa.models import ApprovedMask, GateDecision, GatingPolicy, ImageQaState, QaRun
from qa.services.audit import audit_record
from qa.services.masks import mask_encode, mask_read
from qa.services.policies import policy_current

#: Severity of a guideline rule violation that sends an image to review.
BLOCKING_SEVERITY = "blocking"


@dataclass(frozen=True)
class GateResult:
    """The outcome for an image, per cell (cells not kept), the reasons and the numbers."""

    outcome: GateOutcome
    reasons: list[str]
    cells: list[dict]
    metrics: dict = field(default_factory=dict)

    def cell_outcomes(self) -> dict[int, str]:
        return {c["cell"]: c["outcome"] for c in self.cells}


def _fmt(x: float) -> str:
    return f"{x:.2f}"


def _names(names: list[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def flagged_cell_ids(qa_run: QaRun) -> set[int]:
    """Consensus cells implicated in a noise flag (through the flagged annotator's labels)."""
    by_member: dict[tuple[int, int], int] = {}
    for cell in qa_run.cells:
        for ann, label in cell["members"].items():
            by_member[(int(ann), int(label))] = cell["id"]
    flagged: set[int] = set()
    for flag in qa_run.flags:
        if flag.get("cell") is not None:
            hit = by_member.get((flag["annotation"], flag["cell"]))
            if hit is not None:
                flagged.add(hit)
        for annotation_id, label in flag.get("others", []):
            hit = by_member.get((int(annotation_id), int(label)))
            if hit is not None:
                flagged.add(hit)
    return flagged


def gate_evaluate(qa_run: QaRun, policy: GatingPolicy) -> GateResult:
    """Decide approve / needs_review / reject for a stored QA run under ``policy``."""
    reject: list[str] = []
    review: list[str] = []
    members = list(qa_run.members.all().select_related("annotator"))
    names = [m.annotator.username for m in members]
    agreement = qa_run.mean_agreement

    if qa_run.status == QaRunStatus.SINGLE or len(members) < 2:
        review.append("only one annotation: nobody to agree with")
    elif agreement is not None:
        if agreement < policy.reject_agreement:
            reject.append(f"agreement {_fmt(agreement)} < {_fmt(policy.reject_agreement)} (reject)")
        elif agreement < policy.min_agreement:
            review.append(f"agreement {_fmt(agreement)} < {_fmt(policy.min_agreement)}")

    for m in members:
        if m.quality is not None and m.quality < policy.min_annotation_quality:
            others = _names([n for n in names if n != m.annotator.username])
            detail = f"; missed {m.missed} cells that {others} drew" if m.missed else ""
            review.append(
                f"annotation {m.annotation_id} by {m.annotator.username}: quality "
                f"{_fmt(m.quality)} < {_fmt(policy.min_annotation_quality)}{detail}"
            )
        if m.gold_f1 is not None and m.gold_f1 < policy.min_gold_f1:
            review.append(
                f"gold: annotation {m.annotation_id} by {m.annotator.username} has F1 "
                f"{_fmt(m.gold_f1)} < {_fmt(policy.min_gold_f1)} against the truth"
            )

    cells: list[dict] = []
    action = FlaggedCellAction(policy.flagged_cells)
    outcome_of = {
        FlaggedCellAction.DROP: CellOutcome.DROP, FlaggedCellAction.IGNORE: CellOutcome.IGNORE,
        FlaggedCellAction.REVIEW: CellOutcome.REVIEW,
    }[action]
    for cell in qa_run.cells:
        why = []
        if len(members) >= 2 and cell["support"] < policy.min_cell_support:
            why.append(f"support {cell['support']} < {policy.min_cell_support}")
        if len(members) >= 2 and cell["confidence"] < policy.min_cell_confidence:
            why.append(f"confidence {_fmt(cell['confidence'])} < {_fmt(policy.min_cell_confidence)}")
        if why:
            cells.append({"cell": cell["id"], "outcome": outcome_of.value, "reasons": why})
    if cells and action == FlaggedCellAction.REVIEW:
        review.append(f"{len(cells)} doubtful cells to review (support or confidence too low)")

    flagged = flagged_cell_ids(qa_run) | {c["cell"] for c in cells}
    share = len(flagged) / qa_run.n_cells if qa_run.n_cells else 0.0
    if len(members) >= 2 and share > policy.max_flagged_share:
        review.append(
            f"flagged share {_fmt(share)} > {_fmt(policy.max_flagged_share)} "
            f"({len(flagged)} of {qa_run.n_cells} cells)"
        )

    errors = [v for v in qa_run.violations if v.get("severity") == BLOCKING_SEVERITY]
    if errors:
        rules = sorted({v["rule"] for v in errors})
        review.append(f"{len(errors)} guideline rule violations ({', '.join(rules)})")

    if reject:
        outcome = GateOutcome.REJECT
    elif review:
        outcome = GateOutcome.NEEDS_REVIEW
    else:
        outcome = GateOutcome.APPROVE
    metrics = {
        "agreement": agreement, "flagged_share": share, "n_flagged_cells": len(flagged),
        "n_cells": qa_run.n_cells, "n_doubtful_cells": len(cells),
        "n_annotations": len(members), "n_rule_errors": len(errors),
    }
    return GateResult(outcome=outcome, reasons=reject + review, cells=cells, metrics=metrics)


def approved_labels_from_consensus(
    labels: np.ndarray, *, drop: set[int] | frozenset[int] = frozenset()
) -> np.ndarray:
    """The consensus label image with the ``drop`` cells set to background (ids kept)."""
    if not drop:
        return labels
    out = labels.copy()
    out[np.isin(out, np.fromiter(drop, dtype=np.int64))] = 0
    return out


def _human_decision_stands(state: ImageQaState, qa_run: QaRun) -> bool:
    """A review decision made on this very run stands against a re-gate of it."""
    review = state.latest_review
    return review is not None and review.qa_run_id == qa_run.pk


def gate_image(*, qa_run: QaRun, policy: GatingPolicy | None = None) -> GateDecision:
    """Gate a QA run under ``policy`` (default: the project's current published one).

    Writes the decision, on approve the approved mask (dropped cells removed, ignored
    ones listed), the image's state (unless a QA lead already decided on this run, or
    excluded the image) and an audit row, all in one transaction.
    """
    image = qa_run.image
    project = image.project
    policy = policy or policy_current(project=project)
    result = gate_evaluate(qa_run, policy)
    with staged_files() as staged:
        state, _ = ImageQaState.objects.select_for_update().get_or_create(
            image=image, defaults={"project": project}
        )
        decision = GateDecision.objects.create(
            qa_run=qa_run, image=image, policy=policy, outcome=result.outcome,
            reasons=result.reasons, cells=result.cells, metrics=result.metrics,
        )
        keep_state = state.status == ImageQaStatus.EXCLUDED or _human_decision_stands(state, qa_run)
        approved = None
        if result.outcome == GateOutcome.APPROVE and not keep_state:
            outcomes = result.cell_outcomes()
            labels = approved_labels_from_consensus(
                mask_read(qa_run.consensus.name),
                drop={c for c, o in outcomes.items() if o == CellOutcome.DROP},
            )
            encoded = mask_encode(labels)
            name = staged.save(
                f"projects/{project.pk}/approved/{image.pk}/gate{decision.pk}-{encoded.sha256[:16]}.{encoded.ext}",
                encoded.content,
            )
            approved = ApprovedMask.objects.create(
                image=image, file=name, sha256=encoded.sha256, height=encoded.shape[0],
                width=encoded.shape[1], n_cells=encoded.n_cells, source=ApprovedMaskSource.CONSENSUS,
                ignore_cells=sorted(c for c, o in outcomes.items() if o == CellOutcome.IGNORE),
                qa_run=qa_run, gate_decision=decision, policy=policy,
            )
        if not keep_state:
            state.latest_gate = decision
            state.status = {
                GateOutcome.APPROVE: ImageQaStatus.APPROVED,
                GateOutcome.NEEDS_REVIEW: ImageQaStatus.NEEDS_REVIEW,
                GateOutcome.REJECT: ImageQaStatus.REJECTED,
            }[GateOutcome(result.outcome)]
            state.approved_mask = approved
            state.save()
        audit_record(
            project=project, kind=AuditKind.GATE, image=image,
            summary=f"image {image.pk}: {result.outcome} under gating policy v{policy.version}",
            reason="; ".join(result.reasons),
            links={
                "gate_decision": decision.pk, "qa_run": qa_run.pk, "policy_version": policy.version,
                "approved_mask": approved.pk if approved else None, "state_kept": keep_state,
            },
        )
    return decision


def project_regate(
    *, project: Project, policy: GatingPolicy | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Gate the latest QA run of every image again (after a policy is published)."""
    policy = policy or policy_current(project=project)
    run_ids = list(
        ImageQaState.objects.filter(project=project, latest_run__isnull=False)
        .order_by("image_id").values_list("latest_run_id", flat=True)
    )
    counts = {o.value: 0 for o in GateOutcome}
    for done, run_id in enumerate(run_ids, start=1):
        run = QaRun.objects.select_related("image__project").get(pk=run_id)
        with transaction.atomic():
            decision = gate_image(qa_run=run, policy=policy)
        counts[decision.outcome] += 1
        if progress is not None:
            progress(done, len(run_ids))
    return {"images": len(run_ids), "policy_version": policy.version, "outcomes": counts}
