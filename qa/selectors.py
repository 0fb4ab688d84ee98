"""Read-side queries of the QA workflow, scoped to what the user may see.

QA leads, managers and ML engineers read everything of their projects; annotators read
only their own scores, flags and comments, never another annotator's mask or the
consensus of an image they annotate (the API shapes their view from
:func:`image_qa_get`'s role).

The dataset side reads :func:`approved_masks_current` and :func:`approved_mask_provenance`.
"""

from __future__ import annotations

from collections import defaultdict

from django.db.models import OuterRef, QuerySet, Subquery

from annotation.access import check_project_role
from annotation.enums import OVERSIGHT_ROLES, Role
from annotation.models import Image, Project
from annotation.selectors import image_get
from config.errors import InvalidInput, NotFound
from qa.enums import ImageQaStatus, ReviewAction
from qa.models import (
    AnnotatorReliability,
    AnnotatorReliabilityPoint,
    ApprovedMask,
    AuditEvent,
    GateDecision,
    GatingPolicy,
    GoldTruth,
    ImageQaState,
    QaRun,
)

READERS = tuple(OVERSIGHT_ROLES)


# --------------------------------------------------------------------- approved masks


def approved_masks_current(
    *, project: Project, policy_version: int | None = None, include_gold: bool = True
) -> QuerySet[ApprovedMask]:
    """The latest approved mask of every approved image (excluded images left out).

    With ``policy_version``, the latest approved mask per image made under that gating
    policy version instead (images excluded since are still left out).
    """
    states = ImageQaState.objects.filter(project=project).exclude(status=ImageQaStatus.EXCLUDED)
    if not include_gold:
        states = states.filter(image__is_gold=False)
    if policy_version is None:
        ids = states.filter(status=ImageQaStatus.APPROVED, approved_mask__isnull=False).values("approved_mask_id")
        qs = ApprovedMask.objects.filter(pk__in=ids)
    else:
        latest = (
            ApprovedMask.objects.filter(image=OuterRef("image"), policy__version=policy_version)
            .order_by("-id").values("id")[:1]
        )
        qs = ApprovedMask.objects.filter(
            image__project=project, policy__version=policy_version,
            image_id__in=states.values("image_id"), pk=Subquery(latest),
        )
    return qs.select_related("image", "policy").order_by("image_id")


def approved_mask_provenance(*, approved_mask: ApprovedMask) -> dict:
    """Where an approved mask came from: annotations, annotators, guidelines, QA, policy, decision."""
    am = approved_mask
    run = am.qa_run
    annotations = []
    if run is not None:
        for m in run.members.select_related("annotation__guideline_version", "annotator").order_by("position"):
            annotations.append({
                "id": m.annotation_id, "revision": m.revision, "annotator": m.annotator.username,
                "guideline_version": m.annotation.guideline_version.version,
                "sha256": m.annotation.sha256, "weight": m.weight,
            })
    decision: dict
    if am.review_decision_id:
        rd = am.review_decision
        decision = {"kind": "review", "id": rd.pk, "action": rd.action, "by": rd.reviewer.username,
                    "at": rd.created_at.isoformat(), "comment": rd.comment}
    else:
        gd = am.gate_decision
        decision = {"kind": "gate", "id": gd.pk, "outcome": gd.outcome, "by": None,
                    "at": gd.created_at.isoformat(), "reasons": gd.reasons}
    return {
        "approved_mask": {"id": am.pk, "sha256": am.sha256, "shape": [am.height, am.width],
                          "n_cells": am.n_cells, "source": am.source, "ignore_cells": am.ignore_cells,
                          "created_at": am.created_at.isoformat()},
        "image": {"id": am.image_id, "sha256": am.image.sha256},
        "annotations": annotations,
        "annotation": am.annotation_id,
        "qa_run": None if run is None else {
            "id": run.pk, "algorithm_version": run.algorithm_version, "params": run.params,
            "weights": run.weights, "consensus_sha256": run.consensus_sha256,
        },
        "policy_version": am.policy.version if am.policy_id else None,
        "decision": decision,
    }


def approved_mask_get(*, user, project: Project, image_id: int) -> ApprovedMask:
    check_project_role(user=user, project=project, roles=READERS)
    state = ImageQaState.objects.filter(image_id=image_id, project=project).select_related("approved_mask").first()
    if state is None or state.approved_mask is None:
        raise NotFound(f"image {image_id} has no approved mask")
    return state.approved_mask


# ------------------------------------------------------------------------- QA runs


def image_qa_get(*, user, project: Project, image_id: int) -> tuple[Image, QaRun, Role]:
    """The image's latest QA run and the reader's role (annotators: only images assigned to them)."""
    image = image_get(user=user, project=project, image_id=image_id)
    role = check_project_role(user=user, project=project)
    run = QaRun.objects.filter(image=image).order_by("-id").first()
    if run is None:
        raise NotFound(f"image {image_id} has no QA run yet", code="qa_not_run")
    return image, run, role


def gate_decision_latest(*, qa_run: QaRun) -> GateDecision | None:
    return GateDecision.objects.filter(qa_run=qa_run).select_related("policy").order_by("-id").first()


# --------------------------------------------------------------------- review queue

QUEUE_FILTERS = {
    "plate": "image__plate", "well": "image__well", "site": "image__site", "batch": "image__batch",
    "modality": "image__modality", "stain": "image__stain", "is_gold": "image__is_gold",
}


def review_queue(*, user, project: Project, filters: dict | None = None) -> QuerySet[ImageQaState]:
    """Images needing review, worst first: lowest agreement, most flags, most disputed cells."""
    check_project_role(user=user, project=project, roles=READERS)
    filters = dict(filters or {})
    status = filters.pop("status", ImageQaStatus.NEEDS_REVIEW)
    annotator = filters.pop("annotator", None)
    unknown = sorted(set(filters) - set(QUEUE_FILTERS))
    if unknown:
        raise InvalidInput(f"unknown filter {', '.join(unknown)}", field=unknown[0])
    qs = ImageQaState.objects.filter(project=project, status=status)
    qs = qs.filter(**{QUEUE_FILTERS[k]: v for k, v in filters.items()})
    if annotator:
        qs = qs.filter(image__assignments__annotator__username=annotator)
    return (
        qs.select_related("image", "latest_run", "latest_gate", "latest_gate__policy")
        .order_by("agreement", "-n_flags", "-n_disputed", "image_id").distinct()
    )


# ---------------------------------------------------------------- project agreement


def project_agreement(*, user, project: Project) -> dict:
    """Mean pairwise F1 and mean IoU between annotators over the images both annotated."""
    check_project_role(user=user, project=project, roles=READERS)
    runs = QaRun.objects.filter(
        pk__in=ImageQaState.objects.filter(project=project, latest_run__isnull=False).values("latest_run_id")
    ).values_list("agreement", flat=True)
    f1 = defaultdict(float)
    iou = defaultdict(float)
    shared = defaultdict(int)
    names: set[str] = set()
    for agreement in runs:
        who = agreement.get("annotators", [])
        names.update(who)
        for i, a in enumerate(who):
            for j, b in enumerate(who):
                if i != j:
                    f1[a, b] += agreement["f1"][i][j]
                    iou[a, b] += agreement["mean_iou"][i][j]
                    shared[a, b] += 1
    order = sorted(names)

    def matrix(values, diagonal):
        return [[diagonal if a == b else (round(values[a, b] / shared[a, b], 6) if shared[a, b] else None)
                 for b in order] for a in order]

    return {
        "annotators": order, "f1": matrix(f1, 1.0), "mean_iou": matrix(iou, 1.0),
        "shared_images": [[shared[a, b] if a != b else None for b in order] for a in order],
    }


# ----------------------------------------------------------------------- reliability


def reliability_table(*, user, project: Project, history: int = 50) -> list[dict]:
    """Reliability per annotator with its recent history; annotators get only their own row."""
    from qa.services.reliability import estimates

    role = check_project_role(user=user, project=project)
    rows = AnnotatorReliability.objects.filter(project=project).select_related("annotator")
    if role == Role.ANNOTATOR:
        rows = rows.filter(annotator_id=user.pk)
    out = []
    for row in rows.order_by("annotator__username"):
        points = list(
            AnnotatorReliabilityPoint.objects.filter(project=project, annotator_id=row.annotator_id)
            .order_by("-id")[:history]
        )
        out.append({
            "annotator": row.annotator.username, **estimates(row),
            "history": [
                {"at": p.created_at.isoformat(), "qa_run": p.qa_run_id, "quality": p.quality,
                 "sensitivity": p.sensitivity, "false_positive_rate": p.false_positive_rate,
                 "boundary_bias": p.boundary_bias, "gold_score": p.gold_score,
                 "n_annotations": p.n_annotations}
                for p in reversed(points)
            ],
        })
    return out


# -------------------------------------------------------------- policies and audit


def policy_list(*, user, project: Project) -> QuerySet[GatingPolicy]:
    check_project_role(user=user, project=project)
    return GatingPolicy.objects.filter(project=project).order_by("version")


def audit_list(*, user, project: Project, filters: dict | None = None) -> QuerySet[AuditEvent]:
    check_project_role(user=user, project=project, roles=READERS)
    filters = filters or {}
    qs = AuditEvent.objects.filter(project=project).select_related("actor")
    if filters.get("kind"):
        qs = qs.filter(kind=filters["kind"])
    if filters.get("user"):
        qs = qs.filter(actor__username=filters["user"])
    if filters.get("image"):
        qs = qs.filter(image_id=filters["image"])
    if filters.get("since"):
        qs = qs.filter(created_at__gte=filters["since"])
    if filters.get("until"):
        qs = qs.filter(created_at__lte=filters["until"])
    return qs.order_by("-id")


def gold_get(*, user, project: Project, image: Image) -> GoldTruth:
    """The image's current truth mask (QA leads, managers, ML engineers)."""
    check_project_role(user=user, project=project, roles=READERS)
    truth = GoldTruth.objects.filter(image=image).select_related("set_by").order_by("-id").first()
    if truth is None:
        raise NotFound(f"image {image.pk} has no gold truth")
    return truth


def image_review_history(*, image: Image):
    return image.review_decisions.select_related("reviewer", "target_annotator").order_by("-id")


def send_back_comments(*, user, project: Project):
    """Review comments addressed to this annotator (send-backs), newest first."""
    check_project_role(user=user, project=project)
    from qa.models import ReviewDecision

    return ReviewDecision.objects.filter(
        image__project=project, action=ReviewAction.SEND_BACK, target_annotator_id=user.pk
    ).order_by("-id")


__all__ = [
    "approved_mask_get", "approved_mask_provenance", "approved_masks_current", "audit_list",
    "gate_decision_latest", "gold_get", "image_qa_get", "image_review_history", "policy_list",
    "project_agreement", "reliability_table", "review_queue", "send_back_comments",
]
