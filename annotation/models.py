"""Tables of the annotation app: projects, members, images, assignments, annotations, jobs.

Invariants that concern one row live here as database constraints; use cases (and the
checks that span rows) live in :mod:`annotation.services`. Submitted annotation
revisions are immutable: the services never update them and a database trigger
(migration ``0002``) refuses an UPDATE of their content.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from annotation.enums import AnnotationSource, AssignmentStatus, JobStatus, Role, choices


class Project(models.Model):
    """A body of images labelled under one set of cell classes and guidelines."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    cell_classes = models.JSONField(default=list, blank=True)
    annotators_per_image = models.PositiveSmallIntegerField(default=2)
    gold_share = models.FloatField(default=0.0)
    # QA (qa app): adaptive redundancy adds annotators up to k_max (null: never beyond k);
    # qualification asks new annotators to pass n gold images first (0: not required).
    max_annotators_per_image = models.PositiveSmallIntegerField(null=True, blank=True)
    qualification_gold_images = models.PositiveSmallIntegerField(default=0)
    qualification_min_f1 = models.FloatField(default=0.7)
    qualification_min_iou = models.FloatField(default=0.7)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.CheckConstraint(
                condition=Q(annotators_per_image__gte=1), name="project_k_at_least_one"
            ),
            models.CheckConstraint(
                condition=Q(gold_share__gte=0.0) & Q(gold_share__lte=1.0),
                name="project_gold_share_in_unit_interval",
            ),
        ]

    def __str__(self) -> str:
        return self.slug


class Membership(models.Model):
    """One user's role in one project."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=choices(Role))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project_id", "user_id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "project"], name="membership_unique_user_project"),
            models.CheckConstraint(
                condition=Q(role__in=[r.value for r in Role]), name="membership_role_valid"
            ),
        ]

    def __str__(self) -> str:
        # Names, not ids: this is what the admin and logs show.
        return f"{self.user.username} in {self.project.slug} ({self.role})"


class Image(models.Model):
    """A microscopy image as uploaded (real dtype, channels and pages kept)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="images")
    file = models.FileField(upload_to="images/", max_length=500)
    original_name = models.CharField(max_length=255, blank=True)
    size_bytes = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    format = models.CharField(max_length=10)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    channels = models.PositiveSmallIntegerField(default=1)
    pages = models.PositiveIntegerField(default=1)
    dtype = models.CharField(max_length=16)
    plate = models.CharField(max_length=100, blank=True)
    well = models.CharField(max_length=20, blank=True)
    site = models.CharField(max_length=20, blank=True)
    batch = models.CharField(max_length=100, blank=True)
    modality = models.CharField(max_length=50, blank=True)
    stain = models.CharField(max_length=100, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    is_gold = models.BooleanField(default=False)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "sha256"], name="image_unique_sha256_per_project"),
            models.CheckConstraint(
                condition=Q(width__gte=1) & Q(height__gte=1) & Q(channels__gte=1) & Q(pages__gte=1),
                name="image_positive_dimensions",
            ),
        ]
        indexes = [models.Index(fields=["project", "plate", "well"], name="image_plate_well")]

    def __str__(self) -> str:
        return self.original_name or self.sha256[:12]


class Assignment(models.Model):
    """One image given to one annotator; leased while they work on it."""

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="assignments")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="assignments"
    )
    status = models.CharField(
        max_length=20, choices=choices(AssignmentStatus), default=AssignmentStatus.PENDING
    )
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    skip_reason = models.CharField(max_length=500, blank=True)
    # Set by QA review (qa app): why the assignment was (re)issued, e.g. a send-back
    # comment the annotator sees; higher priority is handed out first.
    comment = models.TextField(blank=True)
    priority = models.SmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["image", "annotator"], name="assignment_unique_image_annotator"),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in AssignmentStatus]),
                name="assignment_status_valid",
            ),
            models.CheckConstraint(
                condition=~Q(status=AssignmentStatus.IN_PROGRESS) | Q(lease_expires_at__isnull=False),
                name="assignment_in_progress_has_lease",
            ),
        ]
        indexes = [models.Index(fields=["annotator", "status"], name="assignment_annotator_status")]

    def __str__(self) -> str:
        return f"assignment {self.pk}: {self.image} -> {self.annotator.username}"


class Annotation(models.Model):
    """One submitted revision of an annotator's label mask for an assignment. Immutable."""

    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="annotations")
    guideline_version = models.ForeignKey(
        "guidelines.GuidelineVersion", on_delete=models.RESTRICT, related_name="annotations"
    )
    revision = models.PositiveIntegerField()
    mask = models.FileField(upload_to="masks/", max_length=500)
    sha256 = models.CharField(max_length=64)
    height = models.PositiveIntegerField()
    width = models.PositiveIntegerField()
    dtype = models.CharField(max_length=16)
    instance_count = models.PositiveIntegerField()
    source = models.CharField(
        max_length=20, choices=choices(AnnotationSource), default=AnnotationSource.MANUAL
    )
    time_spent_s = models.FloatField(null=True, blank=True)
    submitted_at = models.DateTimeField()
    idempotency_key = models.CharField(max_length=255, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="annotations"
    )
    # Class of each instance, {"<instance id>": "<project cell class>"}; instances absent
    # from the map are unclassified (plain label images carry no classes).
    instance_classes = models.JSONField(default=dict, blank=True)
    # Format the mask was uploaded in (png, tiff, coco, cellpose, imagej, geojson, labelstudio).
    upload_format = models.CharField(max_length=20, blank=True, default="")
    # What the importer changed or left out: {"warnings": [...], "skipped": [[name, reason], ...]}.
    import_report = models.JSONField(default=dict, blank=True)
    # Warning-severity guideline rule violations found on submit, as
    # guidelines.rules.Violation.as_dict() records (blocking ones refuse the submission).
    rule_warnings = models.JSONField(default=list, blank=True)
    # The registered model whose prediction this mask started from (``source`` is then
    # ``model_assisted``): submitted from a pre-annotated draft, or revising such a mask.
    model_version = models.ForeignKey(
        "training.ModelVersion", null=True, blank=True, on_delete=models.RESTRICT, related_name="+"
    )

    class Meta:
        ordering = ["assignment_id", "revision"]
        constraints = [
            models.UniqueConstraint(fields=["assignment", "revision"], name="annotation_unique_revision"),
            models.UniqueConstraint(
                fields=["created_by", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="annotation_unique_idempotency_key",
            ),
            models.CheckConstraint(condition=Q(revision__gte=1), name="annotation_revision_positive"),
            models.CheckConstraint(
                condition=Q(source__in=[s.value for s in AnnotationSource]),
                name="annotation_source_valid",
            ),
            models.CheckConstraint(
                condition=Q(time_spent_s__isnull=True) | Q(time_spent_s__gte=0),
                name="annotation_time_spent_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"annotation {self.pk} (assignment {self.assignment_id} r{self.revision})"


class Job(models.Model):
    """Asynchronous work (assignment generation, QA, export, training) with pollable progress."""

    kind = models.CharField(max_length=100)
    status = models.CharField(max_length=20, choices=choices(JobStatus), default=JobStatus.QUEUED)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(null=True, blank=True)
    message = models.CharField(max_length=500, blank=True)
    params = models.JSONField(default=dict, blank=True)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.CASCADE, related_name="jobs"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="jobs",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in JobStatus]), name="job_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(progress_total__isnull=True) | Q(progress_done__lte=F("progress_total")),
                name="job_progress_within_total",
            ),
        ]

    def __str__(self) -> str:
        return f"job {self.pk} {self.kind} {self.status}"


class AnnotationDraft(models.Model):
    """An annotator's unsubmitted work on an assignment, autosaved by the workspace.

    One per assignment, overwritten by each autosave and deleted when a revision is
    submitted from it. ``base_revision`` is the revision the draft edits (0: none yet),
    so a draft made before someone else's revision is recognised as stale.
    """

    assignment = models.OneToOneField(Assignment, on_delete=models.CASCADE, related_name="draft")
    labels = models.FileField(upload_to="drafts/", max_length=500)
    sha256 = models.CharField(max_length=64)
    height = models.PositiveIntegerField()
    width = models.PositiveIntegerField()
    instance_count = models.PositiveIntegerField()
    base_revision = models.PositiveIntegerField(default=0)
    # Editor state worth restoring with the pixels: instance classes, time spent, next id.
    state = models.JSONField(default=dict, blank=True)
    saves = models.PositiveIntegerField(default=0)
    # Written by pre-annotation from a model's prediction (``saves`` stays 0 until the
    # annotator saves over it); the mark stays through the annotator's edits.
    model_assisted = models.BooleanField(default=False)
    model_version = models.ForeignKey(
        "training.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    saved_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"draft of assignment {self.assignment_id} (base r{self.base_revision})"


class ApiToken(models.Model):
    """A named API token of one user: stored hashed, expiring, revocable by its owner.

    The token itself (``cc_<prefix>_<secret>``) is shown once, when created; the row keeps
    its public ``prefix`` (to find the row) and the SHA-256 of the whole token. A token
    is valid only while its user's password is the one it was created under
    (``password_fingerprint``, Django's session auth hash), so a password change revokes
    every token of the user.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    digest = models.CharField(max_length=64)
    password_fingerprint = models.CharField(max_length=128)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"token {self.prefix} ({self.name}) of user {self.user_id}"
