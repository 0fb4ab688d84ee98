"""Use case: the QA run of one image, stored immutably with everything it found.

Loads the latest submitted revision of every assignment of the image, weights each
annotator by their current reliability, fuses the masks (:func:`qa.consensus.fuse`),
measures pairwise agreement (F1 at IoU 0.5, mean matched IoU, PQ), scores and flags
every annotation (:mod:`qa.noise`), checks each mask against the rules of the guideline
version it was made under, scores gold images against their truth, and stores it all as
one :class:`~qa.models.QaRun`. Then, in order: the run counts for the annotators'
reliability, it is gated, qualification is updated, and adaptive redundancy may ask for
one more annotator. With a reference model (asked for, or the project's setting) the run
also stores where the model's prediction disagrees with the consensus
(:mod:`qa.services.model_reference`); the model is never one of the annotators.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
from django.db.models import Max, OuterRef, Subquery

from annotation.access import check_project_role
from annotation.enums import AssignmentStatus
from annotation.models import Annotation, Image
from annotation.services.storage import staged_files
from config.errors import Conflict
from guidelines.rules import evaluate_rules, pixel_size_from_metadata
from qa.consensus import Consensus, fuse, prepare_masks
from qa.enums import QaRunStatus, QaTrigger
from qa.metrics import match_instances, pairwise_agreement
from qa.models import ImageQaState, QaRun, QaRunAnnotation
from qa.noise import flag_instances, score_annotations
from qa.services.gold import gold_current, gold_scores
from qa.services.masks import mask_encode, mask_read
from qa.services.model_reference import (
    ModelReference,
    model_reference_compute,
    model_reference_store,
    reference_model_get,
)
from qa.services.policies import ACTING_ROLES

logger = logging.getLogger(__name__)

ALGORITHM_VERSION = "cellcurate-qa/1"
IOU_THRESHOLD = 0.5
#: Flags below this score are not stored (qa.noise's own default).
MIN_FLAG_SCORE = 0.25
PARAMS = {
    "iou_threshold": IOU_THRESHOLD, "min_support": "majority", "rescue": True,
    "flags": {"reference": "consensus", "min_score": MIN_FLAG_SCORE, "image_evidence": False,
              "seed": 0},
    "scores": {"reference": "leave_one_out"},
    "weights": "annotator reliability quality, clipped to [0.05, 1], 1 for new annotators",
    "boundary_bias": "each annotator's outline bias against gold truth where known "
                     "(reliability gold_boundary_bias), else estimated from the image",
}


def annotations_for_qa(*, image: Image) -> list[Annotation]:
    """The latest revision of every submitted assignment of the image, by annotator name."""
    latest = (
        Annotation.objects.filter(assignment=OuterRef("assignment"))
        .values("assignment").annotate(r=Max("revision")).values("r")
    )
    return list(
        Annotation.objects.filter(
            assignment__image=image, assignment__status=AssignmentStatus.SUBMITTED,
            revision=Subquery(latest),
        ).select_related("created_by", "guideline_version", "assignment")
        .order_by("created_by__username", "pk")
    )


@dataclass(frozen=True)
class Analysis:
    """Everything computed for one image before it is stored."""

    consensus: Consensus
    f1: np.ndarray
    mean_iou: np.ndarray
    pq: np.ndarray
    scores: list
    flags: list


def analyse(masks: list[np.ndarray], weights: list[float],
            boundary_bias: list[float | None] | None = None) -> Analysis:
    """Fuse, compare, score and flag k label images of one image (k >= 1).

    ``boundary_bias``: each annotator's outline bias against gold truth in px (None where
    unknown); when any is known the consensus outlines are anchored to the truth.
    """
    prepared = prepare_masks(masks)  # shared by the consensus and the leave-one-out scores
    gold_bias = None
    if boundary_bias is not None and any(b is not None for b in boundary_bias):
        gold_bias = [np.nan if b is None else float(b) for b in boundary_bias]
    consensus = fuse(prepared, iou_threshold=IOU_THRESHOLD, weights=weights, boundary_bias=gold_bias)
    k = len(masks)
    if k < 2:
        one = np.ones((k, k))
        return Analysis(consensus, one, one, one, [], [])
    pa = pairwise_agreement(masks, iou_threshold=IOU_THRESHOLD)
    pq = np.eye(k)
    for i in range(k):
        for j in range(i + 1, k):
            pq[i, j] = pq[j, i] = match_instances(masks[i], masks[j], iou_threshold=IOU_THRESHOLD).panoptic_quality
    scores = score_annotations(masks, weights=weights, iou_threshold=IOU_THRESHOLD,
                               prepared=prepared)
    flags = flag_instances(masks, consensus=consensus, weights=weights, iou_threshold=IOU_THRESHOLD,
                           min_score=MIN_FLAG_SCORE, seed=0)
    return Analysis(consensus, np.asarray(pa.f1), np.asarray(pa.mean_iou), pq, scores, flags)


def _violations(annotation: Annotation, labels: np.ndarray, image: Image) -> list[dict]:
    rules = annotation.guideline_version.rules or {}
    if not rules:
        return []
    found = evaluate_rules(
        labels, rules, pixel_size_um=pixel_size_from_metadata(image.metadata),
        cell_classes={int(k): v for k, v in (annotation.instance_classes or {}).items()},
    )
    return [
        {"annotation": annotation.pk, "annotator": annotation.created_by.username,
         "guideline_version": annotation.guideline_version.version, **v.as_dict()}
        for v in found
    ]


def _round(m: np.ndarray) -> list[list[float]]:
    return [[round(float(x), 6) for x in row] for row in m]


def image_qa_run(*, image: Image, trigger: QaTrigger = QaTrigger.ON_DEMAND, actor=None,
                 follow_up: bool = True, reference_model: int | None = None) -> QaRun:
    """Run QA on an image now and store it; then reliability, gate, qualification, redundancy.

    Preconditions: the image has at least one submitted annotation (409 otherwise); an
    ``actor`` (on-demand runs) is a QA lead or manager; ``reference_model`` (a model
    version id; default: the project's QA setting) is one of the project's models.
    Automatic triggers skip the work and return the latest run when it already used
    exactly these revisions.
    """
    project = image.project
    if actor is not None:
        check_project_role(user=actor, project=project, roles=ACTING_ROLES)
    annotations = annotations_for_qa(image=image)
    if not annotations:
        raise Conflict(f"image {image.pk} has no submitted annotation to run QA on", code="qa_no_annotations")
    previous = QaRun.objects.filter(image=image).order_by("-id").first()
    if previous is not None and trigger in (QaTrigger.SUBMISSION, QaTrigger.REVISION):
        used = set(previous.members.values_list("annotation_id", flat=True))
        if used == {a.pk for a in annotations}:
            return previous

    model_version = reference_model_get(project=project, model_version_id=reference_model)
    started = time.perf_counter()
    from qa.services.reliability import reliability_priors  # after the models are loaded

    weight_of, bias_of = reliability_priors(project=project,
                                            annotator_ids=[a.created_by_id for a in annotations])
    weights = [weight_of[a.created_by_id] for a in annotations]
    boundary_bias = [bias_of[a.created_by_id] for a in annotations]
    masks = [mask_read(a.mask.name) for a in annotations]
    analysis = analyse(masks, weights, boundary_bias)
    truth = gold_current(image=image) if image.is_gold else None
    gold = gold_scores(mask_read(truth.file.name), masks) if truth is not None else None
    violations = [v for a, m in zip(annotations, masks, strict=True) for v in _violations(a, m, image)]
    duration_ms = int((time.perf_counter() - started) * 1000)  # the run's own work, without the model
    reference = None if model_version is None else model_reference_compute(
        model_version=model_version, image=image, consensus_labels=analysis.consensus.labels,
        iou_threshold=IOU_THRESHOLD)
    run = _store(image=image, trigger=trigger, actor=actor, annotations=annotations, weights=weights,
                 boundary_bias=boundary_bias, analysis=analysis, gold=gold, truth=truth,
                 violations=violations, duration_ms=duration_ms, reference=reference)
    if follow_up:
        qa_run_follow_up(qa_run=run)
    return run


def qa_run_follow_up(*, qa_run: QaRun) -> None:
    """What a new run sets off: reliability, the gate, qualification, adaptive redundancy."""
    from qa.services.gating import gate_image
    from qa.services.qualification import qualification_apply_run
    from qa.services.redundancy import redundancy_check
    from qa.services.reliability import reliability_apply_run

    reliability_apply_run(qa_run=qa_run)
    decision = gate_image(qa_run=qa_run)
    qualification_apply_run(qa_run=qa_run)
    redundancy_check(qa_run=qa_run, decision=decision)


def _store(*, image, trigger, actor, annotations, weights, boundary_bias, analysis: Analysis, gold,
           truth, violations, duration_ms, reference: ModelReference | None) -> QaRun:
    project = image.project
    c = analysis.consensus
    k = len(annotations)
    names = [a.created_by.username for a in annotations]
    ids = [a.pk for a in annotations]
    cells = [
        {"id": i + 1, "support": int(c.support[i]), "confidence": round(float(c.confidence[i]), 6),
         "agreement": round(float(c.agreement[i]), 6),
         "members": {str(ids[j]): int(c.members[i, j]) for j in range(k) if c.members[i, j]}}
        for i in range(c.n_instances)
    ]
    flags = [
        {"annotation": ids[f.annotator], "annotator": names[f.annotator],
         "cell": int(f.labels[0]) if f.labels else None, "labels": [int(x) for x in f.labels],
         "kind": str(f.kind), "score": round(float(f.score), 6),
         "others": [[ids[int(a)], int(b)] for a, b in f.others]}  # [annotation id, its label]
        for f in analysis.flags
    ]
    off = analysis.f1[~np.eye(k, dtype=bool)]
    mean_agreement = float(off.mean()) if off.size else None
    disputed = int(np.count_nonzero(c.support < k)) + int(c.rejected.shape[0]) if k >= 2 else 0
    encoded = mask_encode(c.labels)
    score_of = {s.annotator: s for s in analysis.scores}
    moved = np.zeros((k, 2), dtype=int) if c.translation is None else np.asarray(c.translation, dtype=int)
    with staged_files() as staged:
        name = staged.save(
            f"projects/{project.pk}/qa/{image.pk}/consensus-{encoded.sha256[:16]}.{encoded.ext}",
            encoded.content,
        )
        run = QaRun.objects.create(
            image=image, status=QaRunStatus.COMPLETE if k >= 2 else QaRunStatus.SINGLE,
            trigger=trigger, requested_by=actor if getattr(actor, "pk", None) else None,
            algorithm_version=ALGORITHM_VERSION,
            params={**PARAMS, "anchored_to_gold": bool(c.anchored),
                    "gold_boundary_bias": {n: None if b is None else round(float(b), 4)
                                           for n, b in zip(names, boundary_bias, strict=True)}},
            weights={n: round(w, 6) for n, w in zip(names, weights, strict=True)},
            consensus=name, consensus_sha256=encoded.sha256, n_cells=encoded.n_cells, cells=cells,
            agreement={"annotators": names, "annotations": ids, "f1": _round(analysis.f1),
                       "mean_iou": _round(analysis.mean_iou), "pq": _round(analysis.pq)},
            mean_agreement=mean_agreement, flags=flags, n_flags=len(flags), n_disputed=disputed,
            violations=violations, n_violations=len(violations),
            gold=None if gold is None else {
                "truth": truth.pk, "n_cells": truth.n_cells,
                "scores": [{"annotation": ids[j], "annotator": names[j], **g} for j, g in enumerate(gold)],
            },
            duration_ms=duration_ms,
        )
        QaRunAnnotation.objects.bulk_create([
            QaRunAnnotation(
                qa_run=run, annotation=a, annotator_id=a.created_by_id, revision=a.revision,
                position=j, weight=weights[j], time_spent_s=a.time_spent_s,
                moved_y=int(moved[j, 0]), moved_x=int(moved[j, 1]),
                consensus_bias=round(float(c.boundary_bias[j]), 4) if k >= 2 else None,
                **_score_fields(score_of.get(j)), **_gold_fields(gold[j] if gold else None),
            )
            for j, a in enumerate(annotations)
        ])
        if reference is not None:
            model_reference_store(qa_run=run, reference=reference, staged=staged)
        state, _ = ImageQaState.objects.select_for_update().get_or_create(image=image, defaults={"project": project})
        if state.latest_run_id is None or state.latest_run_id < run.pk:  # two workers raced
            state.latest_run = run
            state.agreement = mean_agreement
            state.n_flags = len(flags)
            state.n_disputed = disputed
            state.save()
    return run


def _score_fields(s) -> dict:
    if s is None:
        return {}
    return {
        "quality": s.quality, "relative_quality": s.relative_quality, "f1": s.f1, "mean_iou": s.mean_iou,
        "recall_sure": s.recall_sure, "plausible": s.plausible, "shift_px": s.shift_px,
        "n_cells": s.n_cells, "missed": s.missed, "spurious": s.spurious, "merged": s.merged,
        "split": s.split, "boundary": s.boundary,
    }


def _gold_fields(g: dict | None) -> dict:
    if g is None:
        return {}
    return {"gold_f1": g["f1"], "gold_mean_iou": g["mean_iou"], "gold_quality": g["quality"],
            "gold_outline_bias": g["outline_bias"], "gold_outline_cells": g["outline_cells"]}
