"""Use cases for projects and memberships."""

from __future__ import annotations

import re
from collections.abc import Sequence

from django.db import transaction

from annotation.access import check_project_role
from annotation.enums import Role
from annotation.models import Membership, Project
from config.errors import Conflict, InvalidInput, PermissionDenied

_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_EDITABLE = ("name", "description", "cell_classes", "annotators_per_image", "gold_share")


def _check_cell_classes(cell_classes) -> list[str]:
    if not isinstance(cell_classes, list | tuple):
        raise InvalidInput("cell_classes must be a list of class names", field="cell_classes")
    names = []
    for item in cell_classes:
        if not isinstance(item, str) or not item.strip():
            raise InvalidInput(
                f"cell_classes must hold non-empty strings; got {item!r}", field="cell_classes"
            )
        names.append(item.strip())
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidInput(f"cell_classes repeats {', '.join(duplicates)}", field="cell_classes")
    return names


def _check_settings(*, annotators_per_image, gold_share) -> None:
    if isinstance(annotators_per_image, bool) or not isinstance(annotators_per_image, int):
        raise InvalidInput("annotators_per_image must be an integer", field="annotators_per_image")
    if annotators_per_image < 1:
        raise InvalidInput(
            f"annotators_per_image must be at least 1, got {annotators_per_image}",
            field="annotators_per_image",
        )
    if isinstance(gold_share, bool) or not isinstance(gold_share, int | float):
        raise InvalidInput("gold_share must be a number", field="gold_share")
    if not 0.0 <= float(gold_share) <= 1.0:
        raise InvalidInput(f"gold_share must be within 0..1, got {gold_share}", field="gold_share")


@transaction.atomic
def project_create(
    *,
    actor,
    name: str,
    slug: str,
    description: str = "",
    cell_classes: Sequence[str] = (),
    annotators_per_image: int = 2,
    gold_share: float = 0.0,
) -> Project:
    """Create a project; its creator becomes its first manager.

    Needs the ``annotation.add_project`` permission (staff the site grants it to).
    """
    if not actor.has_perm("annotation.add_project"):
        raise PermissionDenied("you may not create projects (needs annotation.add_project)")
    if not name or not name.strip():
        raise InvalidInput("name must not be empty", field="name")
    if not _SLUG.match(slug or ""):
        raise InvalidInput(
            f"slug {slug!r} must be lower-case letters, digits and single hyphens", field="slug"
        )
    if Project.objects.filter(slug=slug).exists():
        raise InvalidInput(f"a project with slug {slug!r} already exists", field="slug")
    classes = _check_cell_classes(list(cell_classes))
    _check_settings(annotators_per_image=annotators_per_image, gold_share=gold_share)
    project = Project.objects.create(
        name=name.strip(), slug=slug, description=description, cell_classes=classes,
        annotators_per_image=annotators_per_image, gold_share=float(gold_share), created_by=actor,
    )
    Membership.objects.create(user=actor, project=project, role=Role.MANAGER)
    return project


@transaction.atomic
def project_update(*, actor, project: Project, **changes) -> Project:
    """Change a project's name, description, cell classes, k or gold share (managers only)."""
    check_project_role(user=actor, project=project, roles=[Role.MANAGER])
    unknown = sorted(set(changes) - set(_EDITABLE))
    if unknown:
        raise InvalidInput(f"cannot change {', '.join(unknown)}", field=unknown[0])
    project = Project.objects.select_for_update().get(pk=project.pk)
    if "cell_classes" in changes:
        changes["cell_classes"] = _check_cell_classes(changes["cell_classes"])
    if "name" in changes and not str(changes["name"]).strip():
        raise InvalidInput("name must not be empty", field="name")
    _check_settings(
        annotators_per_image=changes.get("annotators_per_image", project.annotators_per_image),
        gold_share=changes.get("gold_share", project.gold_share),
    )
    for field, value in changes.items():
        setattr(project, field, value)
    project.save()
    return project


@transaction.atomic
def membership_add(*, actor, project: Project, user, role: str | Role) -> Membership:
    """Add a user to a project with a role (managers only)."""
    check_project_role(user=actor, project=project, roles=[Role.MANAGER])
    try:
        role = Role(role)
    except ValueError:
        raise InvalidInput(
            f"role {role!r} is not one of {', '.join(r.value for r in Role)}", field="role"
        ) from None
    if not user.is_active:
        raise InvalidInput(f"user {user.get_username()!r} is inactive", field="user")
    existing = Membership.objects.filter(project=project, user=user).first()
    if existing is not None:
        raise Conflict(
            f"{user.get_username()} is already a member of {project.slug} as {existing.role}",
            field="user",
        )
    return Membership.objects.create(project=project, user=user, role=role)


@transaction.atomic
def membership_update(*, actor, membership: Membership, role: str | Role) -> Membership:
    """Change a member's role (managers only); the last manager cannot be demoted."""
    check_project_role(user=actor, project=membership.project, roles=[Role.MANAGER])
    try:
        role = Role(role)
    except ValueError:
        raise InvalidInput(
            f"role {role!r} is not one of {', '.join(r.value for r in Role)}", field="role"
        ) from None
    membership = Membership.objects.select_for_update().get(pk=membership.pk)
    if membership.role == Role.MANAGER and role != Role.MANAGER:
        _check_not_last_manager(membership)
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def membership_remove(*, actor, membership: Membership) -> None:
    """Remove a member (managers only); the last manager cannot be removed.

    A user who thereby leaves their last project loses their API tokens too.
    """
    check_project_role(user=actor, project=membership.project, roles=[Role.MANAGER])
    if membership.role == Role.MANAGER:
        _check_not_last_manager(membership)
    membership.delete()
    if not Membership.objects.filter(user_id=membership.user_id).exists():
        from annotation.services.tokens import tokens_revoke_for_user

        tokens_revoke_for_user(user=membership.user)


def _check_not_last_manager(membership: Membership) -> None:
    managers = Membership.objects.select_for_update().filter(
        project_id=membership.project_id, role=Role.MANAGER
    )
    if managers.count() <= 1:
        raise Conflict("a project needs at least one manager", field="role")

