"""Who may do what in a project: role look-ups and the checks services run first.

Non-members are told an object does not exist (:class:`~config.errors.NotFound`, HTTP
404) so that project names and ids do not leak; members without the needed role get
:class:`~config.errors.PermissionDenied` (HTTP 403).
"""

from __future__ import annotations

from collections.abc import Iterable

from annotation.enums import Role
from annotation.models import Membership, Project
from config.errors import NotFound, PermissionDenied


def project_role_get(*, user, project: Project) -> Role | None:
    """The user's role in the project, or None for non-members and anonymous users."""
    if user is None or not user.is_authenticated:
        return None
    role = (
        Membership.objects.filter(user_id=user.pk, project_id=project.pk)
        .values_list("role", flat=True)
        .first()
    )
    return Role(role) if role is not None else None


def check_project_role(*, user, project: Project, roles: Iterable[Role] | None = None) -> Role:
    """Return the user's role, raising NotFound for non-members and PermissionDenied otherwise.

    ``roles=None`` admits every member.
    """
    role = project_role_get(user=user, project=project)
    if role is None:
        raise NotFound(f"project {project.slug!r} not found")
    allowed = set(Role) if roles is None else set(roles)
    if role not in allowed:
        names = ", ".join(sorted(r.value for r in allowed))
        raise PermissionDenied(
            f"your role in project {project.slug!r} is {role.value}; this needs {names}"
        )
    return role
