"""Use cases for guideline versions: write drafts, publish them, acknowledge what was published.

A published version never changes: edits go into a new draft version, and publishing it
retires the previous one. The database refuses content updates of non-draft rows too
(migration ``0002``). A draft's rules are validated and stored normalised
(:func:`guidelines.rules.validate_rules`); publishing queues a re-check of the
annotations made under older versions (:mod:`guidelines.services.recheck`).
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from annotation.access import check_project_role
from annotation.enums import Role
from annotation.models import Project
from config.errors import InvalidInput
from guidelines.enums import GuidelineStatus
from guidelines.models import Acknowledgement, GuidelineVersion
from guidelines.rules import RulesError, validate_rules
from guidelines.services.recheck import guideline_recheck_schedule

EDIT_ROLES = (Role.MANAGER,)
_EDITABLE = ("title", "body", "rules", "changelog")
_TITLE_LIMIT = 200


class InvalidRules(InvalidInput):
    """A rules JSON that cannot be used (HTTP 400; the message and ``rule`` name the rule)."""

    code = "invalid_rules"

    def __init__(self, error: RulesError):
        self.rule = error.field
        super().__init__(error.message, field="rules")

    def as_payload(self) -> dict:
        return {**super().as_payload(), "rule": self.rule}


def _check_content(changes: dict, *, project: Project) -> None:
    """Check the content fields; ``changes["rules"]`` is replaced by its normalised form."""
    if "title" in changes:
        title = changes["title"]
        if not isinstance(title, str) or not title.strip():
            raise InvalidInput("title must not be empty", field="title")
        if len(title) > _TITLE_LIMIT:
            raise InvalidInput(f"title is longer than {_TITLE_LIMIT} characters", field="title")
    for name in ("body", "changelog"):
        if name in changes and not isinstance(changes[name], str):
            raise InvalidInput(f"{name} must be text", field=name)
    if "rules" in changes:
        rules = changes["rules"]
        if not isinstance(rules, dict):
            raise InvalidInput(
                f"rules must be a JSON object, got {type(rules).__name__}", field="rules"
            )
        try:
            changes["rules"] = validate_rules(rules, known_classes=project.cell_classes or [])
        except RulesError as exc:
            raise InvalidRules(exc) from None


@transaction.atomic
def guideline_version_create(
    *, actor, project: Project, title: str, body: str = "", rules: dict | None = None,
    changelog: str = "",
) -> GuidelineVersion:
    """Start a new draft version numbered one above the project's highest (managers only)."""
    check_project_role(user=actor, project=project, roles=EDIT_ROLES)
    content = {"title": title, "body": body, "rules": {} if rules is None else rules,
               "changelog": changelog}
    _check_content(content, project=project)
    Project.objects.select_for_update().filter(pk=project.pk).first()  # serialise numbering
    latest = GuidelineVersion.objects.filter(project=project).aggregate(v=Max("version"))["v"]
    return GuidelineVersion.objects.create(
        project=project, version=(latest or 0) + 1, created_by=actor,
        **{**content, "title": content["title"].strip()},
    )


def _refuse_unless_draft(version: GuidelineVersion) -> None:
    if version.status != GuidelineStatus.DRAFT:
        raise InvalidInput(
            f"guideline version {version.version} is {version.status} and cannot be changed; "
            "create a new version instead",
            field="status", code="immutable",
        )


@transaction.atomic
def guideline_version_update(*, actor, version: GuidelineVersion, **changes) -> GuidelineVersion:
    """Edit a draft's title, body, rules or changelog (managers only; drafts only)."""
    check_project_role(user=actor, project=version.project, roles=EDIT_ROLES)
    version = GuidelineVersion.objects.select_for_update().get(pk=version.pk)
    _refuse_unless_draft(version)
    unknown = sorted(set(changes) - set(_EDITABLE))
    if unknown:
        raise InvalidInput(f"cannot change {', '.join(unknown)}", field=unknown[0])
    _check_content(changes, project=version.project)
    for field, value in changes.items():
        setattr(version, field, value.strip() if field == "title" else value)
    version.save(update_fields=[*changes, "updated_at"])
    return version


@transaction.atomic
def guideline_version_publish(*, actor, version: GuidelineVersion) -> GuidelineVersion:
    """Publish a draft; the previously published version becomes retired (managers only).

    Annotations made under older versions are then re-checked against the new rules by a
    queued job (see :func:`guidelines.services.recheck.guideline_recheck_schedule`).
    """
    check_project_role(user=actor, project=version.project, roles=EDIT_ROLES)
    Project.objects.select_for_update().filter(pk=version.project_id).first()
    version = GuidelineVersion.objects.select_for_update().get(pk=version.pk)
    _refuse_unless_draft(version)
    if not version.body.strip():
        raise InvalidInput("a guideline needs a body before it is published", field="body")
    now = timezone.now()
    GuidelineVersion.objects.filter(
        project_id=version.project_id, status=GuidelineStatus.PUBLISHED
    ).update(status=GuidelineStatus.RETIRED, updated_at=now)
    version.status = GuidelineStatus.PUBLISHED
    version.published_by = actor
    version.published_at = now
    version.save(update_fields=["status", "published_by", "published_at", "updated_at"])
    guideline_recheck_schedule(actor=actor, version=version)
    return version


@transaction.atomic
def acknowledgement_create(*, actor, version: GuidelineVersion) -> tuple[Acknowledgement, bool]:
    """Record that a member read a published version; acknowledging twice returns the first."""
    check_project_role(user=actor, project=version.project)
    if version.status != GuidelineStatus.PUBLISHED:
        raise InvalidInput(
            f"guideline version {version.version} is {version.status}; only the published "
            "version can be acknowledged",
            field="status",
        )
    return Acknowledgement.objects.get_or_create(user=actor, guideline_version=version)
