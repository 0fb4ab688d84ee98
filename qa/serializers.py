"""Input validation and JSON shapes of the QA API (the contract of issue 13, item 9).

JSON names may grow, never change. Annotators get :func:`qa_run_own_output`: their own
annotation, scores, flags and violations only.
"""

from __future__ import annotations

from rest_framework import serializers

from annotation.serializers import FilterSerializer, StrictSerializer
from qa.enums import AuditKind, FlaggedCellAction, ImageQaStatus, ReviewAction
from qa.models import (
    ApprovedMask,
    AuditEvent,
    GateDecision,
    GatingPolicy,
    QaModelReference,
    QaRun,
    ReviewDecision,
)

SCORE_FIELDS = ("quality", "relative_quality", "f1", "mean_iou", "recall_sure", "plausible",
                "shift_px", "n_cells", "missed", "spurious", "merged", "split", "boundary",
                "gold_f1", "gold_mean_iou", "weight", "consensus_bias", "gold_outline_bias",
                "gold_outline_cells")


def decision_output(decision: GateDecision | None) -> dict | None:
    if decision is None:
        return None
    return {
        "id": decision.pk, "outcome": decision.outcome, "reasons": decision.reasons,
        "policy_version": decision.policy.version, "cells": decision.cells,
        "metrics": decision.metrics, "created_at": decision.created_at.isoformat(),
    }


def approved_output(mask: ApprovedMask | None) -> dict | None:
    if mask is None:
        return None
    return {
        "id": mask.pk, "sha256": mask.sha256, "shape": [mask.height, mask.width],
        "n_cells": mask.n_cells, "source": mask.source, "ignore_cells": mask.ignore_cells,
        "policy_version": mask.policy.version if mask.policy_id else None,
        "review_decision": mask.review_decision_id, "gate_decision": mask.gate_decision_id,
        "created_at": mask.created_at.isoformat(),
    }


def gold_output(truth) -> dict:
    return {
        "id": truth.pk, "image": truth.image_id, "sha256": truth.sha256, "n_cells": truth.n_cells,
        "source": truth.source, "approved_mask": truth.approved_mask_id,
        "set_by": truth.set_by.username, "comment": truth.comment,
        "created_at": truth.created_at.isoformat(),
    }


def _members(run: QaRun):
    return list(run.members.select_related("annotator").order_by("position"))


def _score(m) -> dict:
    return {"annotation": m.annotation_id, "annotator": m.annotator.username, "revision": m.revision,
            **{f: getattr(m, f) for f in SCORE_FIELDS}}


def qa_run_output(run: QaRun, decision: GateDecision | None, *, state=None) -> dict:
    """The full QA run, for QA leads, managers and ML engineers."""
    members = _members(run)
    return {
        "id": run.pk, "image": run.image_id, "status": run.status, "trigger": run.trigger,
        "created_at": run.created_at.isoformat(), "duration_ms": run.duration_ms,
        "annotations": [{"id": m.annotation_id, "annotator": m.annotator.username,
                         "revision": m.revision, "moved_by": [m.moved_y, m.moved_x]} for m in members],
        "consensus": {"n_cells": run.n_cells, "sha256": run.consensus_sha256, "cells": run.cells,
                      "n_disputed": run.n_disputed},
        "agreement": {**run.agreement, "mean_f1": run.mean_agreement},
        "scores": [_score(m) for m in members],
        "flags": run.flags,
        "violations": run.violations,
        "gold": run.gold,
        "algorithm": {"version": run.algorithm_version, "params": run.params, "weights": run.weights},
        "decision": decision_output(decision),
        "image_status": state.status if state is not None else None,
        "approved": approved_output(state.approved_mask) if state is not None else None,
        "model_reference": model_reference_output(run),
    }


def model_reference_output(run: QaRun) -> dict | None:
    """The model the run was compared with and where it disagrees with the consensus."""
    try:
        ref = run.model_reference
    except QaModelReference.DoesNotExist:
        return None
    mv = ref.model_version
    return {
        "model": {"id": mv.pk, "name": mv.name, "version": mv.version, "backbone": mv.backbone},
        "flags": ref.flags, "n_flags": ref.n_flags, "n_cells": ref.n_cells,
        "prediction_sha256": ref.prediction_sha256, "iou_threshold": ref.iou_threshold,
        "error": ref.error or None, "duration_ms": ref.duration_ms,
    }


def _own_params(params: dict, mine: list) -> dict:
    """The run's parameters without the other annotators' gold outline biases."""
    out = dict(params)
    if "gold_boundary_bias" in out:
        names = {m.annotator.username for m in mine}
        out["gold_boundary_bias"] = {n: b for n, b in out["gold_boundary_bias"].items() if n in names}
    return out


def qa_run_own_output(run: QaRun, *, user) -> dict:
    """An annotator's view: their own annotation, scores, flags and rule violations only."""
    mine = [m for m in _members(run) if m.annotator_id == user.pk]
    ids = {m.annotation_id for m in mine}
    return {
        "id": run.pk, "image": run.image_id, "status": run.status,
        "created_at": run.created_at.isoformat(),
        "annotations": [{"id": m.annotation_id, "annotator": m.annotator.username,
                         "revision": m.revision} for m in mine],
        "consensus": None, "agreement": None,
        "scores": [_score(m) for m in mine],
        "flags": [{k: v for k, v in f.items() if k != "others"} for f in run.flags if f["annotation"] in ids],
        "violations": [v for v in run.violations if v["annotation"] in ids],
        "gold": None if run.gold is None else {
            "scores": [s for s in run.gold["scores"] if s["annotation"] in ids]},
        "algorithm": {"version": run.algorithm_version, "params": _own_params(run.params, mine)},
        "decision": None, "model_reference": None,
    }


def review_output(d: ReviewDecision) -> dict:
    try:
        approved = d.approved_mask
    except ApprovedMask.DoesNotExist:
        approved = None
    return {
        "id": d.pk, "image": d.image_id, "action": d.action, "reviewer": d.reviewer.username,
        "qa_run": d.qa_run_id, "gate_decision": d.gate_decision_id, "annotation": d.annotation_id,
        "cells": d.cells, "annotator": d.target_annotator.username if d.target_annotator_id else None,
        "assignment": d.assignment_id, "comment": d.comment, "created_at": d.created_at.isoformat(),
        "approved_mask": approved_output(approved),
    }


class PolicyOutput(serializers.ModelSerializer):
    # Plain strings in the schema: "status" enums of other apps share the name.
    status = serializers.CharField(read_only=True, help_text="draft, published or retired")
    flagged_cells = serializers.CharField(read_only=True, help_text="drop, ignore or review")
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    published_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = GatingPolicy
        fields = ["version", "status", "title", "changelog", *GatingPolicy.THRESHOLDS,
                  "created_by", "created_at", "published_by", "published_at"]


class PolicyInput(StrictSerializer):
    """Fields of a draft; each optional (a new draft starts from the latest version)."""

    title = serializers.CharField(max_length=200, required=False, allow_blank=True)
    changelog = serializers.CharField(max_length=10_000, required=False, allow_blank=True)
    min_agreement = serializers.FloatField(min_value=0, max_value=1, required=False)
    reject_agreement = serializers.FloatField(min_value=0, max_value=1, required=False)
    min_cell_support = serializers.IntegerField(min_value=0, max_value=100, required=False)
    min_cell_confidence = serializers.FloatField(min_value=0, max_value=1, required=False)
    min_annotation_quality = serializers.FloatField(min_value=0, max_value=1, required=False)
    max_flagged_share = serializers.FloatField(min_value=0, max_value=1, required=False)
    min_gold_f1 = serializers.FloatField(min_value=0, max_value=1, required=False)
    flagged_cells = serializers.ChoiceField(choices=[a.value for a in FlaggedCellAction], required=False)
    redundancy_agreement = serializers.FloatField(min_value=0, max_value=1, required=False)
    redundancy_disputed_cells = serializers.IntegerField(min_value=0, required=False)



class ReviewInput(StrictSerializer):
    action = serializers.ChoiceField(choices=[a.value for a in ReviewAction])
    annotation = serializers.IntegerField(required=False, min_value=1)
    mask = serializers.FileField(required=False)
    cells = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False,
                                  max_length=100_000)
    annotator = serializers.CharField(required=False, max_length=150)
    comment = serializers.CharField(required=False, allow_blank=True, max_length=5000, default="")
    reason = serializers.CharField(required=False, allow_blank=True, max_length=5000, default="")
    dry_run = serializers.BooleanField(
        required=False, default=False,
        help_text="accept_edited only: check the corrected mask against the published guideline's "
        "rules and store nothing (200 with the violations)")

    def validate(self, attrs):
        if attrs.get("dry_run") and attrs.get("action") != "accept_edited":
            raise serializers.ValidationError({"dry_run": "only accept_edited has a dry run (a rule check)"})
        return attrs


class GoldInput(StrictSerializer):
    mask = serializers.FileField(required=False)
    approved_mask = serializers.IntegerField(required=False, min_value=1)
    comment = serializers.CharField(required=False, allow_blank=True, max_length=5000, default="")


class ReviewQueueFilter(FilterSerializer):
    status = serializers.CharField(required=False, max_length=20,
                                   help_text=f"one of {', '.join(s.value for s in ImageQaStatus)}")
    annotator = serializers.CharField(required=False, max_length=150)
    plate = serializers.CharField(required=False, max_length=100)
    well = serializers.CharField(required=False, max_length=20)
    site = serializers.CharField(required=False, max_length=20)
    batch = serializers.CharField(required=False, max_length=100)
    modality = serializers.CharField(required=False, max_length=50)
    stain = serializers.CharField(required=False, max_length=100)
    is_gold = serializers.BooleanField(required=False, allow_null=True, default=None)


    def validate_status(self, value):
        if value not in {s.value for s in ImageQaStatus}:
            raise serializers.ValidationError(
                f"{value!r} is not one of {', '.join(s.value for s in ImageQaStatus)}")
        return value


class AuditFilter(FilterSerializer):
    kind = serializers.ChoiceField(choices=[k.value for k in AuditKind], required=False)
    user = serializers.CharField(required=False, max_length=150)
    image = serializers.IntegerField(required=False, min_value=1)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)


class AuditOutput(serializers.ModelSerializer):
    actor = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = AuditEvent
        fields = ["id", "kind", "actor", "image", "summary", "reason", "links", "created_at"]


class QaSettingsInput(StrictSerializer):
    max_annotators_per_image = serializers.IntegerField(min_value=1, max_value=50, required=False,
                                                        allow_null=True)
    qualification_gold_images = serializers.IntegerField(min_value=0, max_value=100, required=False)
    qualification_min_f1 = serializers.FloatField(min_value=0, max_value=1, required=False)
    qualification_min_iou = serializers.FloatField(min_value=0, max_value=1, required=False)
    reference_model = serializers.IntegerField(min_value=1, required=False, allow_null=True)


class RequalificationInput(StrictSerializer):
    guideline_version = serializers.IntegerField(min_value=1)


class QaRunInput(StrictSerializer):
    reference_model = serializers.IntegerField(min_value=1, required=False, allow_null=True)
