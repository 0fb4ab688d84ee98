"""Tables of the QA workflow: runs, gating policies and decisions, reviews, approved masks,
gold truth, annotator reliability, qualification and the audit trail.

Two kinds of rows live here (see ``docs/qa-workflow.md``):

- **events**, immutable once written: :class:`QaRun` (+ :class:`QaRunAnnotation`),
  :class:`GateDecision`, :class:`ReviewDecision`, :class:`ApprovedMask`,
  :class:`GoldTruth`, :class:`AnnotatorReliabilityPoint`, :class:`AuditEvent`. Their
  ``save()`` refuses an update and a database trigger (migration ``0002``) refuses an
  UPDATE from any code path; new evidence makes new rows.
- **current state**, derived from the events and rewritten by the services:
  :class:`ImageQaState` (where each image stands, for the review queue and datasets),
  :class:`AnnotatorReliability` (sufficient statistics per annotator),
  :class:`Qualification`. A published :class:`GatingPolicy` never changes either; only
  its status moves published -> retired.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotation.enums import choices
from qa.enums import (
    ApprovedMaskSource,
    AuditKind,
    FlaggedCellAction,
    GateOutcome,
    GoldSource,
    ImageQaStatus,
    PolicyStatus,
    QaRunStatus,
    QaTrigger,
    QualificationStatus,
    ReviewAction,
)

USER = settings.AUTH_USER_MODEL


class ImmutableError(Exception):
    """An attempt to change an immutable QA row."""


class ImmutableModel(models.Model):
    """A row written once: ``save()`` on an existing row raises :class:`ImmutableError`."""

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ImmutableError(
                f"{type(self).__name__} {self.pk} is immutable; new evidence makes a new row"
            )
        super().save(*args, **kwargs)


def _in(field: str, enum) -> Q:
    return Q(**{f"{field}__in": [m.value for m in enum]})


# ----------------------------------------------------------------------- gating policy


class GatingPolicy(models.Model):
    """One version of a project's gating policy: thresholds and what happens to flagged cells.

    Drafts are edited; a published version never changes (the service refuses the write),
    publishing retires the previous one and re-gates the project as a job.
    """

    project = models.ForeignKey(
        "annotation.Project", on_delete=models.CASCADE, related_name="gating_policies"
    )
    version = models.PositiveIntegerField()
    status = models.CharField(
        max_length=20, choices=choices(PolicyStatus), default=PolicyStatus.DRAFT
    )
    title = models.CharField(max_length=200, blank=True)
    changelog = models.TextField(blank=True)
    # Image: mean pairwise instance F1 at IoU 0.5 between annotators.
    min_agreement = models.FloatField(default=0.75)
    reject_agreement = models.FloatField(default=0.3)
    # Cell: consensus cells below either are "doubtful" and handled by flagged_cells.
    min_cell_support = models.PositiveSmallIntegerField(default=2)
    min_cell_confidence = models.FloatField(default=0.5)
    # Annotation: every annotation's leave-one-out quality (qa.noise) must reach this.
    min_annotation_quality = models.FloatField(default=0.5)
    # Share of consensus cells that carry a flag or are doubtful.
    max_flagged_share = models.FloatField(default=0.2)
    # Gold images: every annotation's F1 at 0.5 against the truth.
    min_gold_f1 = models.FloatField(default=0.7)
    flagged_cells = models.CharField(
        max_length=10, choices=choices(FlaggedCellAction), default=FlaggedCellAction.IGNORE
    )
    # Adaptive redundancy: one more annotator when agreement is below this or more cells
    # than this are disputed (drawn by some but not a majority), up to the project's k_max.
    redundancy_agreement = models.FloatField(default=0.7)
    redundancy_disputed_cells = models.PositiveIntegerField(default=10)
    created_by = models.ForeignKey(USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    published_by = models.ForeignKey(USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    published_at = models.DateTimeField(null=True, blank=True)

    THRESHOLDS = (
        "min_agreement", "reject_agreement", "min_cell_support", "min_cell_confidence",
        "min_annotation_quality", "max_flagged_share", "min_gold_f1", "flagged_cells",
        "redundancy_agreement", "redundancy_disputed_cells",
    )

    class Meta:
        ordering = ["project_id", "version"]
        constraints = [
            models.UniqueConstraint(fields=["project", "version"], name="gating_policy_unique_version"),
            models.UniqueConstraint(
                fields=["project"], condition=Q(status=PolicyStatus.PUBLISHED),
                name="gating_policy_one_published_per_project",
            ),
            models.CheckConstraint(condition=_in("status", PolicyStatus), name="gating_policy_status_valid"),
            models.CheckConstraint(
                condition=_in("flagged_cells", FlaggedCellAction), name="gating_policy_flagged_valid"
            ),
            models.CheckConstraint(
                condition=Q(status=PolicyStatus.DRAFT) | Q(published_at__isnull=False),
                name="gating_policy_published_has_date",
            ),
        ]

    def __str__(self) -> str:
        return f"gating policy {self.project_id} v{self.version} ({self.status})"

    def thresholds(self) -> dict:
        return {name: getattr(self, name) for name in self.THRESHOLDS}


# --------------------------------------------------------------------------- QA runs


class QaRun(ImmutableModel):
    """One QA of one image over a fixed set of annotation revisions; immutable."""

    image = models.ForeignKey("annotation.Image", on_delete=models.CASCADE, related_name="qa_runs")
    status = models.CharField(max_length=20, choices=choices(QaRunStatus))
    trigger = models.CharField(max_length=20, choices=choices(QaTrigger))
    requested_by = models.ForeignKey(USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    algorithm_version = models.CharField(max_length=50)
    params = models.JSONField(default=dict)
    # Reliability weight used per annotator: {"<user name>": weight}.
    weights = models.JSONField(default=dict)
    consensus = models.FileField(upload_to="qa/", max_length=500)
    consensus_sha256 = models.CharField(max_length=64)
    n_cells = models.PositiveIntegerField()
    # [{"id", "support", "confidence", "agreement", "members": {"<annotation id>": label}}]
    cells = models.JSONField(default=list)
    # {"annotators": [names], "annotations": [ids], "f1": [[..]], "mean_iou": [[..]], "pq": [[..]]}
    agreement = models.JSONField(default=dict)
    mean_agreement = models.FloatField(null=True, blank=True)
    # [{"annotation", "annotator", "cell" (label id or null), "kind", "score", "others"}]
    flags = models.JSONField(default=list)
    n_flags = models.PositiveIntegerField(default=0)
    n_disputed = models.PositiveIntegerField(default=0)
    # [{"annotation", "annotator", "guideline_version", "rule", "severity", "cells", "message"}]
    violations = models.JSONField(default=list)
    n_violations = models.PositiveIntegerField(default=0)
    # None unless the image is gold: {"truth": id, "scores": [{annotation, annotator, f1, ...}]}
    gold = models.JSONField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["image_id", "-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=_in("status", QaRunStatus), name="qa_run_status_valid"),
            models.CheckConstraint(condition=_in("trigger", QaTrigger), name="qa_run_trigger_valid"),
        ]
        indexes = [models.Index(fields=["image", "-id"], name="qa_run_image_latest")]

    def __str__(self) -> str:
        return f"QA run {self.pk} of image {self.image_id}"


class QaRunAnnotation(ImmutableModel):
    """One annotation revision a QA run used, with its scores (the reliability statistics)."""

    qa_run = models.ForeignKey(QaRun, on_delete=models.CASCADE, related_name="members")
    annotation = models.ForeignKey("annotation.Annotation", on_delete=models.PROTECT, related_name="qa_uses")
    annotator = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    revision = models.PositiveIntegerField()
    position = models.PositiveSmallIntegerField()
    weight = models.FloatField()
    # Leave-one-out scores from qa.noise (null with a single annotation).
    quality = models.FloatField(null=True, blank=True)
    relative_quality = models.FloatField(null=True, blank=True)
    f1 = models.FloatField(null=True, blank=True)
    mean_iou = models.FloatField(null=True, blank=True)
    recall_sure = models.FloatField(null=True, blank=True)
    plausible = models.FloatField(null=True, blank=True)
    shift_px = models.FloatField(null=True, blank=True)
    n_cells = models.PositiveIntegerField(default=0)
    missed = models.PositiveIntegerField(default=0)
    spurious = models.PositiveIntegerField(default=0)
    merged = models.PositiveIntegerField(default=0)
    split = models.PositiveIntegerField(default=0)
    boundary = models.PositiveIntegerField(default=0)
    # Against the gold truth (gold images only).
    gold_f1 = models.FloatField(null=True, blank=True)
    gold_mean_iou = models.FloatField(null=True, blank=True)
    gold_quality = models.FloatField(null=True, blank=True)
    time_spent_s = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["qa_run_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["qa_run", "annotation"], name="qa_run_annotation_unique"),
            models.UniqueConstraint(fields=["qa_run", "position"], name="qa_run_position_unique"),
        ]

    def __str__(self) -> str:
        return f"annotation {self.annotation_id} in QA run {self.qa_run_id}"


# ------------------------------------------------------------------ decisions, masks


class GateDecision(ImmutableModel):
    """What a gating policy made of one QA run: per image and per cell, with reasons."""

    qa_run = models.ForeignKey(QaRun, on_delete=models.CASCADE, related_name="gate_decisions")
    image = models.ForeignKey("annotation.Image", on_delete=models.CASCADE, related_name="gate_decisions")
    policy = models.ForeignKey(GatingPolicy, on_delete=models.PROTECT, related_name="decisions")
    outcome = models.CharField(max_length=20, choices=choices(GateOutcome))
    reasons = models.JSONField(default=list)
    # [{"cell": id, "outcome": keep/drop/ignore/review, "reasons": [...]}] for cells not kept.
    cells = models.JSONField(default=list)
    # The numbers the decision was made on (agreement, flagged share, ...).
    metrics = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["image_id", "-id"]
        constraints = [
            models.CheckConstraint(condition=_in("outcome", GateOutcome), name="gate_outcome_valid"),
        ]
        indexes = [models.Index(fields=["image", "-id"], name="gate_decision_image_latest")]

    def __str__(self) -> str:
        return f"gate {self.pk} {self.outcome} (image {self.image_id})"


class ReviewDecision(ImmutableModel):
    """One action of a QA lead or manager on an image; names its approved mask, if any."""

    image = models.ForeignKey("annotation.Image", on_delete=models.CASCADE, related_name="review_decisions")
    action = models.CharField(max_length=30, choices=choices(ReviewAction))
    reviewer = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="qa_reviews")
    qa_run = models.ForeignKey(QaRun, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    gate_decision = models.ForeignKey(
        GateDecision, null=True, blank=True, on_delete=models.PROTECT, related_name="reviews"
    )
    annotation = models.ForeignKey(
        "annotation.Annotation", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    cells = models.JSONField(default=list, blank=True)
    target_annotator = models.ForeignKey(USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    assignment = models.ForeignKey(
        "annotation.Assignment", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["image_id", "-id"]
        constraints = [
            models.CheckConstraint(condition=_in("action", ReviewAction), name="review_action_valid"),
        ]

    def __str__(self) -> str:
        return f"review {self.pk} {self.action} (image {self.image_id})"


class ApprovedMask(ImmutableModel):
    """A mask approved for training: what datasets take. Never edited; a new one supersedes it.

    Exactly one of ``review_decision`` and ``gate_decision`` is the decision that made it.
    ``ignore_cells`` lists label ids training should ignore (neither cell nor background).
    """

    image = models.ForeignKey("annotation.Image", on_delete=models.CASCADE, related_name="approved_masks")
    file = models.FileField(upload_to="qa/", max_length=500)
    sha256 = models.CharField(max_length=64)
    height = models.PositiveIntegerField()
    width = models.PositiveIntegerField()
    n_cells = models.PositiveIntegerField()
    source = models.CharField(max_length=20, choices=choices(ApprovedMaskSource))
    ignore_cells = models.JSONField(default=list, blank=True)
    qa_run = models.ForeignKey(QaRun, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    annotation = models.ForeignKey(
        "annotation.Annotation", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    review_decision = models.OneToOneField(
        ReviewDecision, null=True, blank=True, on_delete=models.PROTECT, related_name="approved_mask"
    )
    gate_decision = models.OneToOneField(
        GateDecision, null=True, blank=True, on_delete=models.PROTECT, related_name="approved_mask"
    )
    policy = models.ForeignKey(GatingPolicy, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["image_id", "-id"]
        constraints = [
            models.CheckConstraint(condition=_in("source", ApprovedMaskSource), name="approved_source_valid"),
            models.CheckConstraint(
                condition=Q(review_decision__isnull=True, gate_decision__isnull=False)
                | Q(review_decision__isnull=False, gate_decision__isnull=True),
                name="approved_mask_one_decision",
            ),
            models.CheckConstraint(
                condition=~Q(source=ApprovedMaskSource.ANNOTATION) | Q(annotation__isnull=False),
                name="approved_mask_annotation_named",
            ),
        ]

    def __str__(self) -> str:
        return f"approved mask {self.pk} of image {self.image_id} ({self.source})"

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)


class GoldTruth(ImmutableModel):
    """The truth mask of a gold image; the latest row per image is current."""

    image = models.ForeignKey("annotation.Image", on_delete=models.CASCADE, related_name="gold_truths")
    file = models.FileField(upload_to="qa/", max_length=500)
    sha256 = models.CharField(max_length=64)
    n_cells = models.PositiveIntegerField()
    source = models.CharField(max_length=20, choices=choices(GoldSource))
    approved_mask = models.ForeignKey(
        ApprovedMask, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    set_by = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["image_id", "-id"]
        constraints = [
            models.CheckConstraint(condition=_in("source", GoldSource), name="gold_source_valid"),
        ]

    def __str__(self) -> str:
        return f"gold truth {self.pk} of image {self.image_id}"


# -------------------------------------------------------------------- current state


class ImageQaState(models.Model):
    """Where one image stands (derived from the events above; the review queue reads it)."""

    image = models.OneToOneField("annotation.Image", on_delete=models.CASCADE, related_name="qa_state")
    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=20, choices=choices(ImageQaStatus), default=ImageQaStatus.AWAITING)
    latest_run = models.ForeignKey(QaRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    latest_gate = models.ForeignKey(GateDecision, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    latest_review = models.ForeignKey(ReviewDecision, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    approved_mask = models.ForeignKey(ApprovedMask, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The run whose scores the annotators' reliability statistics currently count.
    counted_run = models.ForeignKey(QaRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    agreement = models.FloatField(null=True, blank=True)
    n_flags = models.PositiveIntegerField(default=0)
    n_disputed = models.PositiveIntegerField(default=0)
    extra_requested = models.PositiveSmallIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["image_id"]
        constraints = [
            models.CheckConstraint(condition=_in("status", ImageQaStatus), name="image_qa_status_valid"),
        ]
        indexes = [models.Index(fields=["project", "status"], name="image_qa_state_queue")]

    def __str__(self) -> str:
        return f"image {self.image_id}: {self.status}"


#: Upper edges (s) of the annotation-time histogram bins (log-spaced 1 s .. 1 day, then inf).
TIME_BIN_EDGES = tuple(round(2 ** (i / 2), 3) for i in range(0, 34)) + (float("inf"),)


class AnnotatorReliability(models.Model):
    """Sufficient statistics of one annotator in one project, updated from each QA run.

    Sums over the annotator's annotations counted (the current QA run of every image);
    the estimates are ratios of sums, so adding one image and removing a superseded run
    are O(1). A full recomputation rebuilds them from the stored runs.
    """

    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="+")
    annotator = models.ForeignKey(USER, on_delete=models.CASCADE, related_name="+")
    n_annotations = models.PositiveIntegerField(default=0)
    sum_quality = models.FloatField(default=0.0)
    sum_recall = models.FloatField(default=0.0)
    sum_implausible = models.FloatField(default=0.0)
    sum_shift = models.FloatField(default=0.0)
    n_gold = models.PositiveIntegerField(default=0)
    sum_gold_f1 = models.FloatField(default=0.0)
    sum_gold_quality = models.FloatField(default=0.0)
    # Counts per bin of TIME_BIN_EDGES of the annotation times reported.
    time_histogram = models.JSONField(default=list)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["project_id", "annotator_id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "annotator"], name="reliability_unique_annotator"),
        ]

    def __str__(self) -> str:
        return f"reliability of {self.annotator_id} in {self.project_id}"


class AnnotatorReliabilityPoint(ImmutableModel):
    """One point of an annotator's reliability history (after a QA run or a recomputation)."""

    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="+")
    annotator = models.ForeignKey(USER, on_delete=models.CASCADE, related_name="+")
    qa_run = models.ForeignKey(QaRun, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    quality = models.FloatField(null=True)
    sensitivity = models.FloatField(null=True)
    false_positive_rate = models.FloatField(null=True)
    boundary_bias = models.FloatField(null=True)
    gold_score = models.FloatField(null=True)
    n_annotations = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project_id", "annotator_id", "id"]
        indexes = [models.Index(fields=["project", "annotator", "id"], name="reliability_history")]

    def __str__(self) -> str:
        return f"reliability point {self.pk} of {self.annotator_id}"


class GuidelineRequalification(models.Model):
    """A guideline version after whose publication annotators must qualify again."""

    guideline_version = models.OneToOneField(
        "guidelines.GuidelineVersion", on_delete=models.CASCADE, related_name="requalification"
    )
    marked_by = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"requalification after guideline {self.guideline_version_id}"


class Qualification(models.Model):
    """An annotator's qualification state in a project (gold images passed so far)."""

    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="+")
    annotator = models.ForeignKey(USER, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=20, choices=choices(QualificationStatus))
    guideline_version = models.ForeignKey(
        "guidelines.GuidelineVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    passed = models.PositiveIntegerField(default=0)
    attempted = models.PositiveIntegerField(default=0)
    # Annotation ids judged for this qualification, so a run seen twice counts once.
    judged = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["project_id", "annotator_id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "annotator"], name="qualification_unique_member"),
            models.CheckConstraint(condition=_in("status", QualificationStatus), name="qualification_status_valid"),
        ]

    def __str__(self) -> str:
        return f"qualification of {self.annotator_id} in {self.project_id}: {self.status}"


class AuditEvent(ImmutableModel):
    """One QA-relevant decision: who, when, what, why, and the objects it links."""

    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=30, choices=choices(AuditKind))
    actor = models.ForeignKey(USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    image = models.ForeignKey("annotation.Image", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    summary = models.CharField(max_length=500)
    reason = models.TextField(blank=True)
    # {"gate_decision": 3, "approved_mask": 5, "policy_version": 2, ...}
    links = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=_in("kind", AuditKind), name="audit_kind_valid"),
        ]
        indexes = [models.Index(fields=["project", "kind", "-id"], name="audit_project_kind")]

    def __str__(self) -> str:
        return f"audit {self.pk} {self.kind}: {self.summary}"
