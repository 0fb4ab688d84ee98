"""Use case: record a QA-relevant decision in the audit trail (one immutable row each)."""

from __future__ import annotations

from annotation.models import Image, Project
from qa.enums import AuditKind
from qa.models import AuditEvent

_SUMMARY_LIMIT = 500


def audit_record(
    *, project: Project, kind: AuditKind, actor=None, image: Image | None = None,
    summary: str, reason: str = "", links: dict | None = None,
) -> AuditEvent:
    """Append one audit row; ``actor=None`` means the system (a task, a policy) decided.

    Callers run it inside the transaction of the decision it records, so the decision
    and its audit row are written together or not at all.
    """
    return AuditEvent.objects.create(
        project=project, kind=AuditKind(kind), actor=actor if getattr(actor, "pk", None) else None,
        image=image, summary=summary[:_SUMMARY_LIMIT], reason=reason, links=dict(links or {}),
    )
