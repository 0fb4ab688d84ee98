"""The audit trail: one immutable row per QA-relevant decision."""

from __future__ import annotations

from django.db import models

from annotation.enums import choices
from qa.enums import AuditKind
from qa.models.base import USER, ImmutableModel, valid_choice


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
            models.CheckConstraint(condition=valid_choice("kind", AuditKind), name="audit_kind_valid"),
        ]
        indexes = [models.Index(fields=["project", "kind", "-id"], name="audit_project_kind")]

    def __str__(self) -> str:
        return f"audit {self.pk} {self.kind}: {self.summary}"
